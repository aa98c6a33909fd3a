//! `mlgit train-tag`: the snapshot. In a worktree of a `stable/*` branch, pick and reserve the tag
//! name, run the training command with the name in its environment, then commit the outputs (large
//! files into the LFS store), a tracking record and a model card on the branch, and tag that commit.
//! Nothing is committed, no tag is made and the reservation is released unless every step succeeded.
//!
//! Concurrency: one run per stable branch and repository at a time (an OS file lock, released even
//! when the process dies), since runs in one worktree would overwrite each other's outputs. Tag names
//! are reserved under `refs/mlgit/reserved/<tag>` by compare-and-swap creation, so runs on different
//! stable branches never pick the same name either.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{FileMode, Oid, Repository};
use serde::Serialize;

use super::record::{CodeRef, DataRef, MlflowRef, ModelFile, RunRecord, SCHEMA};
use super::{is_output, BranchLock};
use crate::config::{BranchKind, Config};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::repo::lfs_tree::{self, classify};
use crate::repo::lineage_walk::{lineage, Lineage};
use crate::repo::refs::{commit_with_retry, compare_and_swap_ref, Committed, NewCommit};
use crate::repo::trailers::{keys, Message};
use crate::repo::tree::{validate_path, Entry, TreeEdits};
use crate::repo::worktree::{dirty_paths, remove_file, stat_entry, write_file};
use crate::repo::{format_time, host_name, Repo};
use crate::snapshot::RUN_RECORD;
use crate::store::{hash_reader, Pointer};

/// Where tag names are reserved while a run is in progress.
pub const RESERVED_PREFIX: &str = "refs/mlgit/reserved/";
/// The model card train-tag writes when training did not.
pub const MODEL_CARD: &str = "MODEL_CARD.md";

#[derive(Debug, Clone, Default)]
pub struct TrainTagOptions {
    /// The tag name; None: from `snapshot.tag_pattern`.
    pub name: Option<String>,
    /// Commit outputs that are already there instead of running a command.
    pub no_run: bool,
    /// Replace LFS pointer text in the worktree by the real content from the local store.
    pub materialize: bool,
    /// The training command and its arguments.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainTagOutcome {
    pub tag: String,
    pub branch: String,
    pub commit: String,
    /// False when the branch moved on to other code or data during training: the snapshot commit
    /// is then tagged but not on the branch.
    pub on_branch: bool,
    pub record: RunRecord,
    pub files: usize,
    pub lfs_files: usize,
    /// Data files whose pointer text was replaced by their content before training.
    pub materialized: usize,
    /// Things the user should know (skipped non-numeric metrics, generated model card…).
    pub notes: Vec<String>,
}

/// Called with the tag name and environment just before the command starts (the CLI prints it).
pub type OnStart<'a> = &'a dyn Fn(&str, &[(String, String)]);

/// Make a snapshot of the stable branch checked out in `repo`'s worktree.
pub fn train_tag(repo: &Repo, opts: &TrainTagOptions, on_start: OnStart<'_>) -> Result<TrainTagOutcome> {
    let git = repo.git();
    let config = repo.config();
    let workdir =
        git.workdir().map(Path::to_path_buf).ok_or_else(|| Error::invalid("train-tag needs a worktree"))?;
    if opts.no_run && !opts.command.is_empty() {
        return Err(Error::invalid("--no-run takes no command")
            .with_hint("drop the command to commit outputs already there, or drop --no-run to train"));
    }
    if !opts.no_run && opts.command.is_empty() {
        return Err(Error::invalid("no training command given").with_hint(
            "put it after `--`: `mlgit train-tag -- ./train.sh` (or --no-run to commit existing outputs)",
        ));
    }
    let branch = current_stable_branch(git, config)?;
    let signals = Signals::install()?;
    let _lock = BranchLock::acquire(git, &branch, "mlgit train-tag")?;
    let base = git.head().and_then(|h| h.peel_to_commit()).context("read HEAD")?;
    let base_id = base.id();

    let dirty: Vec<String> = dirty_paths(git)?.into_iter().filter(|p| !is_output(config, p)).collect();
    if !dirty.is_empty() {
        return Err(Error::conflict(format!(
            "the worktree of '{branch}' has changes outside the training outputs: {}",
            list_some(&dirty)
        ))
        .with_hint(format!(
            "stable branches get no new code: commit it on {} and run `mlgit stable update`, \
             or undo the changes (`git stash`)",
            config.branches.dev
        )));
    }
    let materialized = check_pointer_text(repo, &workdir, base.tree_id(), opts.materialize)?;
    let links = lineage(git, base_id)?;
    let code_commit = links.code.clone().unwrap_or_else(|| base_id.to_string());

    let reservation = reserve_tag(git, config, &branch, opts.name.as_deref(), base_id)?;
    let tag = reservation.tag.clone();
    let env = vec![
        ("MLGIT_TAG".to_string(), tag.clone()),
        ("MLGIT_BRANCH".to_string(), branch.clone()),
        ("MLGIT_DATA_COMMIT".to_string(), links.split.clone().unwrap_or_default()),
        ("MLGIT_CODE_COMMIT".to_string(), code_commit.clone()),
    ];
    let started = Instant::now();
    // From here until the commit, a failure puts the committed outputs back in the worktree.
    let mut restore = RestoreOutputs { repo, workdir: &workdir, tree: base.tree_id(), armed: false };
    if !opts.no_run {
        restore.armed = true;
        clear_outputs(config, &workdir)?;
        on_start(&tag, &env);
        run_command(&opts.command, &workdir, &env, &signals)?;
    }
    let duration_s = if opts.no_run { 0.0 } else { started.elapsed().as_secs_f64() };

    let mut notes = Vec::new();
    let outputs = collect_outputs(repo, &workdir)?;
    if outputs.is_empty() {
        return Err(Error::not_found(format!(
            "no training outputs in {} (looked for {})",
            workdir.display(),
            config.snapshot.outputs.join(", ")
        ))
        .with_hint("the command must write them (e.g. model/ and metrics.json); the paths are snapshot.outputs in mlgit.yaml"));
    }
    let tracked = read_tracking(config, &workdir, &tag, &outputs, &mut notes)?;

    let sig = repo.signature()?;
    let record = RunRecord {
        schema: SCHEMA,
        tag: tag.clone(),
        branch: branch.clone(),
        created_at: format_time(sig.when()),
        duration_s: (duration_s * 1000.0).round() / 1000.0,
        command: opts.command.clone(),
        params: tracked.params,
        metrics: tracked.metrics,
        code: CodeRef { commit: Some(code_commit) },
        data: DataRef { split: links.split.clone(), clean: links.clean.clone(), raw: links.raw.clone() },
        model: model_files(config, &outputs),
        host: host_name(),
        mlgit: crate::VERSION.to_string(),
        mlflow: tracked.mlflow,
    };

    // The snapshot tree: the base without old outputs, plus the new outputs, record and card.
    // In two steps: TreeEdits merges a set below a removed folder into the folder's old content.
    let without_outputs = {
        let mut e = TreeEdits::new();
        super::remove_outputs(&mut e, config)?;
        e.write(git, Some(base.tree_id()))?
    };
    let mut edits = TreeEdits::new();
    for o in &outputs {
        edits.set(&o.path, o.entry)?;
    }
    edits
        .set(RUN_RECORD, Entry::blob(git.blob(&record.to_bytes()?).context("write the tracking record")?))?;
    if !outputs.iter().any(|o| o.path == MODEL_CARD) {
        let card = model_card(config, &record, &links);
        edits.set(MODEL_CARD, Entry::blob(git.blob(card.as_bytes()).context("write the model card")?))?;
        notes.push(format!("wrote {MODEL_CARD} (training did not write one)"));
    }
    let patterns = lfs_tree::compile_patterns(config.lfs_patterns(BranchKind::Stable))?;
    let tree = edits.write(git, Some(without_outputs))?;
    let tree = lfs_tree::refresh_attributes(git, tree, &patterns)?;

    let message = commit_message(config, &record, &links);
    // Last moment to stop cleanly; from here on the commit and tag are written in one go.
    signals.check()?;
    let stripped_base = strip_outputs(git, config, base.tree_id())?;
    let mut diverged = false;
    let committed = commit_with_retry(git, &branch, false, |tip| {
        let Some(tip) = tip else { return Ok(None) };
        // Another writer moved the branch: fine if it only touched outputs; if it brought other
        // code or data (stable update), this snapshot stays off the branch rather than undo that.
        diverged = tip.id() != base_id && strip_outputs(git, config, tip.tree_id())? != stripped_base;
        if diverged {
            return Ok(None);
        }
        Ok(Some(NewCommit { tree, extra_parents: vec![], message: message.clone() }))
    })?;
    let (commit, previous, on_branch) = match committed {
        Committed::Moved { commit, previous, .. } => (commit, previous, true),
        Committed::Unchanged { .. } => {
            let t = git.find_tree(tree).context("read the snapshot tree")?;
            let c =
                git.commit(None, &sig, &sig, &message, &t, &[&base]).context("write the snapshot commit")?;
            notes.push(format!(
                "'{branch}' moved on to other code or data during training: {tag} tags a commit beside the branch"
            ));
            (c, None, false)
        }
    };
    // Through the main repository: from a linked worktree libgit2 would not see an existing tag.
    let tagged = Repository::open(git.commondir()).and_then(|main| {
        let target = main.find_object(commit, Some(git2::ObjectType::Commit))?;
        main.tag(&tag, &target, &sig, &tag_message(config, &record, &links), false)
    });
    if let Err(e) = tagged {
        // Only a tag made outside train-tag (the name was reserved) gets here: take the commit
        // back off the branch, so a failed run leaves nothing behind.
        if let (true, Some(prev)) = (on_branch, previous) {
            crate::repo::refs::compare_and_swap(git, &branch, prev, Some(commit), "mlgit train-tag: undo")?;
        }
        return Err(Error::git(format!("create the tag '{tag}'"), e)
            .with_hint("someone created that tag meanwhile outside train-tag; nothing was kept: run again (with another --name)"));
    }
    restore.armed = false;
    drop(reservation);
    if on_branch {
        // The snapshot is complete; a worktree that cannot be brought in step is worth a note, not a failure.
        if let Err(e) = sync_index(repo, &workdir, base.tree_id(), tree, &outputs) {
            notes.push(format!(
                "the worktree's index was not brought up to date ({e}): run `git reset` there to resync it"
            ));
        }
    }
    let lfs_files = outputs.iter().filter(|o| o.lfs).count();
    Ok(TrainTagOutcome {
        tag,
        branch,
        commit: commit.to_string(),
        on_branch,
        record,
        files: outputs.len(),
        lfs_files,
        materialized,
        notes,
    })
}

fn list_some(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
    let more = if paths.len() > 5 { format!(" and {} more", paths.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// The stable branch HEAD is on, or a clear refusal.
fn current_stable_branch(git: &Repository, config: &Config) -> Result<String> {
    let head = git.find_reference("HEAD").context("read HEAD")?;
    let branch = head.symbolic_target().and_then(|t| t.strip_prefix("refs/heads/")).map(str::to_string);
    let hint = format!(
        "training runs on a stable branch: `git checkout {0}` (or `git worktree add ../train {0}`), then retry",
        config.branches.stable
    );
    match branch {
        Some(b) if config.branch_kind(&b) == BranchKind::Stable => {
            if git.head().is_err() {
                return Err(Error::not_found(format!("branch '{b}' has no commit yet")).with_hint(hint));
            }
            Ok(b)
        }
        Some(b) => Err(Error::invalid(format!("not on a stable branch: HEAD is '{b}'")).with_hint(hint)),
        None => Err(Error::invalid("not on a stable branch: HEAD is detached").with_hint(hint)),
    }
}

/// Refuse (or fix, with `materialize`) data files that are LFS pointer text in the worktree.
fn check_pointer_text(repo: &Repo, workdir: &Path, tree: Oid, materialize: bool) -> Result<usize> {
    let git = repo.git();
    let mut pointer_text = Vec::new();
    for f in classify(git, tree)? {
        let Some(pointer) = f.pointer else { continue };
        let full = workdir.join(&f.entry.path);
        let Ok(meta) = fs::symlink_metadata(&full) else { continue };
        if meta.len() > crate::store::pointer::MAX_POINTER_SIZE as u64 {
            continue;
        }
        let Ok(bytes) = fs::read(&full) else { continue };
        // Pointer text of this very file (not content that happens to look like a pointer).
        if Pointer::from_blob(&bytes) == Some(pointer) {
            pointer_text.push((f, pointer));
        }
    }
    if pointer_text.is_empty() {
        return Ok(0);
    }
    let paths: Vec<String> = pointer_text.iter().map(|(f, _)| f.entry.path.clone()).collect();
    if !materialize {
        return Err(Error::conflict(format!(
            "{} file(s) in the worktree are Git LFS pointer text, not data: {}",
            paths.len(),
            list_some(&paths)
        ))
        .with_hint("fetch the content with `git lfs pull`, or rerun with --materialize to write it from the local store"));
    }
    let missing: Vec<String> = pointer_text
        .iter()
        .filter(|(_, p)| !repo.store().contains(p))
        .map(|(f, _)| f.entry.path.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::not_found(format!(
            "the local LFS store lacks the content of {} file(s): {}",
            missing.len(),
            list_some(&missing)
        ))
        .with_hint("download it with `git lfs pull` (or `git lfs fetch`), then retry"));
    }
    let mut index = git.index().context("read the index")?;
    for (f, _) in &pointer_text {
        let entry = write_file(
            git,
            repo.store(),
            workdir,
            Path::new(&f.entry.path),
            f.entry.oid,
            f.entry.mode.into(),
        )?;
        index.add(&entry).context(format!("update the index entry of {}", f.entry.path))?;
    }
    index.write().context("write the index")?;
    Ok(pointer_text.len())
}

/// A reserved tag name; dropping it deletes the reservation (only if it is still ours).
struct Reservation<'r> {
    git: &'r Repository,
    tag: String,
    refname: String,
    target: Oid,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.git.find_reference(&self.refname) {
            if r.target() == Some(self.target) {
                let _ = r.delete();
            }
        }
    }
}

fn tag_exists(git: &Repository, tag: &str) -> bool {
    git.find_reference(&format!("refs/tags/{tag}")).is_ok()
}

fn validate_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || !git2::Reference::is_valid_name(&format!("refs/tags/{tag}")) || tag.starts_with('-')
    {
        return Err(Error::invalid(format!("'{tag}' is not a valid tag name")).with_hint(
            "use letters, digits, '.', '-', '_' and '/' (see `git check-ref-format`), e.g. churn-v3",
        ));
    }
    Ok(())
}

/// Pick the tag name and reserve it by creating `refs/mlgit/reserved/<tag>` (fails if it exists).
fn reserve_tag<'r>(
    git: &'r Repository,
    config: &Config,
    branch: &str,
    name: Option<&str>,
    target: Oid,
) -> Result<Reservation<'r>> {
    let try_reserve = |tag: &str| -> Result<Option<Reservation<'r>>> {
        let refname = format!("{RESERVED_PREFIX}{tag}");
        if !compare_and_swap_ref(git, &refname, target, None, "mlgit train-tag: reserve")? {
            return Ok(None);
        }
        let r = Reservation { git, tag: tag.to_string(), refname, target };
        // A tag made between our check and the reservation: give the name back.
        if tag_exists(git, tag) {
            return Ok(None);
        }
        Ok(Some(r))
    };
    if let Some(tag) = name {
        validate_tag(tag)?;
        if tag_exists(git, tag) {
            return Err(Error::new(ErrorKind::AlreadyExists, format!("the tag '{tag}' already exists"))
                .with_hint(
                    "snapshots are permanent: choose another --name, or leave it out to use the tag pattern",
                ));
        }
        return try_reserve(tag)?.ok_or_else(|| {
            Error::conflict(format!("the tag name '{tag}' is reserved by another train-tag run")).with_hint(
                format!(
                    "choose another --name; if no run is active, the reservation is left over from a crash: \
                     `git update-ref -d {RESERVED_PREFIX}{tag}`"
                ),
            )
        });
    }
    let pattern = config.snapshot.tag_pattern.replace("{model}", config.model_name(branch));
    let Some((prefix, suffix)) = pattern.split_once("{n}") else {
        validate_tag(&pattern)?;
        if tag_exists(git, &pattern) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "the tag pattern '{}' gives '{pattern}', which already exists (a pattern without {{n}} names one snapshot only)",
                    config.snapshot.tag_pattern
                ),
            )
            .with_hint("add {n} to snapshot.tag_pattern in mlgit.yaml (e.g. '{model}-v{n}'), or pass --name"));
        }
        return try_reserve(&pattern)?.ok_or_else(|| {
            Error::conflict(format!("the tag name '{pattern}' is reserved by another train-tag run"))
                .with_hint("pass --name, or add {n} to snapshot.tag_pattern in mlgit.yaml")
        });
    };
    validate_tag(&pattern.replace("{n}", "1"))?;
    let number = |name: &str| -> Option<u64> {
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let mut highest = 0;
    for r in git.references().context("list refs")?.flatten() {
        let Some(name) = r.name() else { continue };
        let short = name.strip_prefix("refs/tags/").or_else(|| name.strip_prefix(RESERVED_PREFIX));
        if let Some(n) = short.and_then(number) {
            highest = highest.max(n);
        }
    }
    for n in highest + 1..highest + 1000 {
        let tag = format!("{prefix}{n}{suffix}");
        if tag_exists(git, &tag) {
            continue;
        }
        if let Some(r) = try_reserve(&tag)? {
            return Ok(r);
        }
    }
    Err(Error::conflict("could not reserve a tag name: too many concurrent runs")
        .with_hint("retry, or pass --name"))
}

/// After a failed or interrupted run, write the outputs the commit trained on holds back into the
/// worktree (and their index entries), so a failed run leaves `git status` as it found it. Files
/// the run wrote at other paths stay for inspection.
struct RestoreOutputs<'a> {
    repo: &'a Repo,
    workdir: &'a Path,
    tree: Oid,
    armed: bool,
}

impl RestoreOutputs<'_> {
    fn restore(&self) -> Result<()> {
        let git = self.repo.git();
        let config = self.repo.config();
        let mut index = git.index().context("read the index")?;
        for f in crate::repo::tree::list_files(git, self.tree)? {
            if !is_output(config, &f.path) {
                continue;
            }
            let entry =
                write_file(git, self.repo.store(), self.workdir, Path::new(&f.path), f.oid, f.mode.into())?;
            index.add(&entry).context(format!("update the index entry of {}", f.path))?;
        }
        index.write().context("write the index")
    }
}

impl Drop for RestoreOutputs<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the run already failed with its own error, which is the one to report.
            let _ = self.restore();
        }
    }
}

/// Remove the output paths from the worktree before training, so a file the new run does not
/// write (an old checkpoint) cannot slip into its snapshot. Committed outputs stay in git.
fn clear_outputs(config: &Config, workdir: &Path) -> Result<()> {
    for out in &config.snapshot.outputs {
        let rel = out.trim_end_matches('/');
        if rel.is_empty() || validate_path(rel).is_err() {
            continue;
        }
        let full = workdir.join(rel);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&full).map_err(|e| Error::io("remove", &full, e))?,
            Ok(_) => fs::remove_file(&full).map_err(|e| Error::io("remove", &full, e))?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// SIGINT/SIGTERM handlers for the whole run: a signal is recorded (and forwarded to the training
/// command while it runs) instead of killing mlgit, so the run can stop at a safe point with nothing
/// committed and the reservation released. Dropping the guard unregisters the handlers.
struct Signals {
    received: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn install() -> Result<Signals> {
        let received = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let id = signal_hook::flag::register_usize(sig, Arc::clone(&received), sig as usize)
                .map_err(|e| Error::io("install a signal handler for", Path::new("train-tag"), e))?;
            ids.push(id);
        }
        Ok(Signals { received, ids })
    }

    /// The signal received since the last call (None: none).
    fn take(&self) -> Option<i32> {
        match self.received.swap(0, Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as i32),
        }
    }

    /// Fail with `Interrupted` if a signal arrived.
    fn check(&self) -> Result<()> {
        match self.take() {
            Some(sig) => Err(interrupted_err(sig)),
            None => Ok(()),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

fn interrupted_err(sig: i32) -> Error {
    Error::new(
        ErrorKind::Interrupted,
        format!("training was interrupted ({}); nothing committed, no tag", signal_name(sig)),
    )
    .with_hint("run `mlgit train-tag` again to train from the start")
}

/// Run the training command, streaming its output, forwarding SIGINT/SIGTERM to it.
fn run_command(
    command: &[String],
    workdir: &Path,
    env: &[(String, String)],
    signals: &Signals,
) -> Result<()> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let (program, args) = command.split_first().ok_or_else(|| Error::invalid("no training command given"))?;
    // Its own process group: a terminal's Ctrl-C reaches only mlgit, which forwards it exactly once.
    let spawned = std::process::Command::new(program)
        .args(args)
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .process_group(0)
        // Its output is progress for the user, not mlgit's result: stdout stays for the result
        // (one JSON document with --json).
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("check the command name; a script in the branch is run as ./{program}")
            } else {
                "check that the command is executable (`chmod +x`)".to_string()
            };
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("cannot run the training command '{program}'"),
            )
            .with_source(e)
            .with_hint(hint));
        }
    };
    let mut interrupted = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::io("wait for", Path::new(program), e));
            }
        }
        if let Some(sig) = signals.take() {
            interrupted = Some(sig);
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, sig as libc::c_int);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let name = command.join(" ");
    if let Some(sig) = interrupted {
        return Err(interrupted_err(sig));
    }
    if let Some(code) = status.code() {
        if code != 0 {
            return Err(Error::new(
                ErrorKind::ChildFailed(code),
                format!(
                    "the training command `{name}` failed with exit code {code}; nothing committed, no tag"
                ),
            )
            .with_hint("fix the training (its output is above) and run `mlgit train-tag` again"));
        }
        return Ok(());
    }
    let sig = status.signal().unwrap_or(0);
    Err(Error::new(
        ErrorKind::ChildFailed(128 + sig),
        format!(
            "the training command `{name}` was killed by {}; nothing committed, no tag",
            signal_name(sig)
        ),
    )
    .with_hint("see why it was killed (out of memory? a timeout?) and run `mlgit train-tag` again"))
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        n => format!("signal {n}"),
    }
}

/// One output file, stored and ready for the tree.
#[derive(Debug, Clone)]
struct Output {
    path: String,
    entry: Entry,
    lfs: bool,
    sha256: String,
    size: u64,
}

/// Hash and store every file under the output paths (large ones into the LFS store).
fn collect_outputs(repo: &Repo, workdir: &Path) -> Result<Vec<Output>> {
    use std::os::unix::fs::PermissionsExt;
    let git = repo.git();
    let config = repo.config();
    let patterns = lfs_tree::compile_patterns(config.lfs_patterns(BranchKind::Stable))?;
    let mut files: BTreeSet<(String, PathBuf)> = BTreeSet::new();
    for out in &config.snapshot.outputs {
        let rel = out.trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        let full = workdir.join(rel);
        if !full.exists() {
            continue;
        }
        for e in walkdir::WalkDir::new(&full).follow_links(false) {
            let e =
                e.map_err(|e| Error::invalid(format!("cannot list {}", full.display())).with_source(e))?;
            if e.file_type().is_dir() {
                continue;
            }
            let Ok(rel) = e.path().strip_prefix(workdir) else { continue };
            let rel_str = rel.to_string_lossy().into_owned();
            if git.is_path_ignored(rel).unwrap_or(false) {
                continue;
            }
            validate_path(&rel_str)?;
            files.insert((rel_str, e.path().to_path_buf()));
        }
    }
    let mut out = Vec::new();
    for (path, full) in files {
        let meta = fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(|e| Error::io("read the link", &full, e))?;
            let bytes = target.to_string_lossy().into_owned().into_bytes();
            let oid = git.blob(&bytes).context(format!("store {path}"))?;
            let sha = crate::store::LfsOid(
                sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes)).into(),
            );
            out.push(Output {
                path,
                entry: Entry { oid, mode: FileMode::Link },
                lfs: false,
                sha256: sha.to_hex(),
                size: bytes.len() as u64,
            });
            continue;
        }
        let mode =
            if meta.permissions().mode() & 0o111 != 0 { FileMode::BlobExecutable } else { FileMode::Blob };
        let lfs = patterns.iter().any(|p| p.is_match(&path)) || meta.len() > config.lfs.max_blob_size;
        if lfs {
            let stored = repo.store().store_file(&full, Some(&meta))?;
            let oid = git.blob(&stored.pointer.to_bytes()).context(format!("store the pointer of {path}"))?;
            out.push(Output {
                path,
                entry: Entry { oid, mode },
                lfs: true,
                sha256: stored.pointer.oid.to_hex(),
                size: stored.pointer.size,
            });
        } else {
            let bytes = fs::read(&full).map_err(|e| Error::io("read", &full, e))?;
            let (sha, size) = hash_reader(&mut bytes.as_slice()).map_err(|e| Error::io("hash", &full, e))?;
            let oid = git.blob(&bytes).context(format!("store {path}"))?;
            out.push(Output { path, entry: Entry { oid, mode }, lfs: false, sha256: sha.to_hex(), size });
        }
    }
    Ok(out)
}

/// The model files of the record: outputs other than metrics, params, model card and `mlruns/`.
fn model_files(config: &Config, outputs: &[Output]) -> Vec<ModelFile> {
    let t = &config.tracking;
    outputs
        .iter()
        .filter(|o| {
            o.path != t.metrics_file
                && !t.params_files.contains(&o.path)
                && o.path != MODEL_CARD
                && !o.path.starts_with("mlruns/")
        })
        .map(|o| ModelFile { path: o.path.clone(), sha256: o.sha256.clone(), size: o.size })
        .collect()
}

struct Tracked {
    params: BTreeMap<String, serde_json::Value>,
    metrics: BTreeMap<String, f64>,
    mlflow: Option<MlflowRef>,
}

/// Params and metrics from the configured files, else from the MLflow run that carries the tag.
fn read_tracking(
    config: &Config,
    workdir: &Path,
    tag: &str,
    outputs: &[Output],
    notes: &mut Vec<String>,
) -> Result<Tracked> {
    let t = &config.tracking;
    let mut params = BTreeMap::new();
    let mut metrics = None;
    let mlflow_run = if outputs.iter().any(|o| o.path.starts_with("mlruns/")) {
        super::mlruns::find_run(&workdir.join("mlruns"), tag)?
    } else {
        None
    };
    for file in &t.params_files {
        let full = workdir.join(file);
        let Ok(text) = fs::read_to_string(&full) else { continue };
        let value: serde_json::Value = if file.ends_with(".yaml") || file.ends_with(".yml") {
            serde_yaml::from_str(&text).map_err(|e| {
                Error::invalid(format!("the params file {file} is not valid YAML"))
                    .with_source(e)
                    .with_hint("fix what the training writes there; nothing was committed")
            })?
        } else {
            serde_json::from_str(&text).map_err(|e| {
                Error::invalid(format!("the params file {file} is not valid JSON"))
                    .with_source(e)
                    .with_hint("fix what the training writes there; nothing was committed")
            })?
        };
        match value {
            serde_json::Value::Object(map) => params.extend(map),
            serde_json::Value::Null => {}
            _ => {
                return Err(Error::invalid(format!(
                    "the params file {file} must hold an object (name: value)"
                ))
                .with_hint("fix what the training writes there; nothing was committed"))
            }
        }
    }
    let metrics_path = workdir.join(&t.metrics_file);
    if let Ok(bytes) = fs::read(&metrics_path) {
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!("the metrics file {} is not valid JSON", t.metrics_file))
                .with_source(e)
                .with_hint("the training must write a JSON object of metric names to numbers, e.g. {\"accuracy\": 0.91}; nothing was committed")
        })?;
        metrics = Some(numeric_metrics(&value, &t.metrics_file, &t.primary_metric, notes)?);
    }
    let mut mlflow = None;
    if let Some(run) = mlflow_run {
        if metrics.is_none() {
            metrics = Some(run.metrics.clone());
        }
        if params.is_empty() {
            params =
                run.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        }
        mlflow = Some(MlflowRef { experiment_id: run.experiment_id, run_id: run.run_id });
    }
    let metrics = metrics.unwrap_or_default();
    if metrics.is_empty() {
        notes
            .push(format!("no metrics: neither {} nor an MLflow run tagged {tag} was found", t.metrics_file));
    } else if !metrics.contains_key(&t.primary_metric) {
        notes.push(format!("the primary metric '{}' is not among the metrics", t.primary_metric));
    }
    Ok(Tracked { params, metrics, mlflow })
}

/// Keep the numeric metrics; skip other values with a note, except the primary metric, which must
/// be a number (leaderboards sort on it). A file with values but no number at all is refused.
pub fn numeric_metrics(
    value: &serde_json::Value,
    origin: &str,
    primary: &str,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, f64>> {
    let hint = "the training must write a JSON object of metric names to numbers, e.g. {\"accuracy\": 0.91}; nothing was committed";
    let Some(map) = value.as_object() else {
        return Err(
            Error::invalid(format!("the metrics file {origin} must hold a JSON object")).with_hint(hint)
        );
    };
    let mut out = BTreeMap::new();
    let mut skipped = Vec::new();
    for (k, v) in map {
        match v.as_f64() {
            Some(x) => {
                out.insert(k.clone(), x);
            }
            None if k == primary => {
                return Err(Error::invalid(format!(
                    "the primary metric '{k}' in {origin} is not a number: {v}"
                ))
                .with_hint(hint))
            }
            None => skipped.push(k.clone()),
        }
    }
    if out.is_empty() && !skipped.is_empty() {
        return Err(Error::invalid(format!(
            "the metrics file {origin} holds no numeric metric ({} are not numbers)",
            skipped.join(", ")
        ))
        .with_hint(hint));
    }
    if !skipped.is_empty() {
        notes.push(format!("{origin}: kept out of the metrics (not numbers): {}", skipped.join(", ")));
    }
    Ok(out)
}

/// A tree with the output paths and the tracking record removed (to compare code and data).
fn strip_outputs(git: &Repository, config: &Config, tree: Oid) -> Result<Oid> {
    let mut edits = TreeEdits::new();
    super::remove_outputs(&mut edits, config)?;
    edits.remove(crate::store::attributes::FILE)?;
    edits.write(git, Some(tree))
}

fn short(s: &Option<String>) -> String {
    s.as_deref().map(|s| s[..7.min(s.len())].to_string()).unwrap_or_else(|| "-".into())
}

fn metrics_lines(record: &RunRecord) -> String {
    record.metrics.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

fn lineage_lines(record: &RunRecord, links: &Lineage) -> String {
    format!(
        "code:  dev {}\ndata:  split {} <- clean {} <- raw {}\ncommand: {}\n",
        short(&record.code.commit),
        short(&links.split),
        short(&links.clean),
        short(&links.raw),
        if record.command.is_empty() { "(--no-run)".to_string() } else { record.command.join(" ") }
    )
}

fn commit_message(config: &Config, record: &RunRecord, links: &Lineage) -> String {
    let primary = &config.tracking.primary_metric;
    let mut subject = format!("Snapshot {}", record.tag);
    if let Some(v) = record.metrics.get(primary) {
        subject.push_str(&format!(": {primary} {v}"));
    }
    let mut msg = Message::new(subject)
        .body(format!("{}\n{}", metrics_lines(record), lineage_lines(record, links)))
        .trailer(keys::SNAPSHOT, &record.tag);
    if let Some(c) = &links.code {
        msg = msg.trailer(keys::DERIVED_FROM, format!("dev {c}"));
    }
    if let Some(s) = &links.split {
        msg = msg.trailer(keys::DERIVED_FROM, format!("split {s}"));
    }
    msg.trailer(keys::HOST, &record.host).render()
}

fn tag_message(config: &Config, record: &RunRecord, links: &Lineage) -> String {
    let primary = &config.tracking.primary_metric;
    let head = match record.metrics.get(primary) {
        Some(v) => format!("{} on {}: {primary} {v}", record.tag, record.branch),
        None => format!("{} on {}", record.tag, record.branch),
    };
    format!("{head}\n\nMetrics\n{}\nLineage\n{}", metrics_lines(record), lineage_lines(record, links))
}

/// A Hugging Face style model card: YAML front matter with the metrics, then lineage and how to
/// reproduce the snapshot.
fn model_card(config: &Config, record: &RunRecord, links: &Lineage) -> String {
    let metrics: Vec<serde_json::Value> =
        record.metrics.iter().map(|(k, v)| serde_json::json!({"type": k, "name": k, "value": v})).collect();
    let front = serde_json::json!({
        "tags": ["mlgit", "snapshot"],
        "model-index": [{
            "name": record.tag,
            "results": [{
                "task": {"type": "other", "name": config.project},
                "dataset": {"name": format!("{} split {}", config.project, short(&links.split)), "type": "split"},
                "metrics": metrics,
            }],
        }],
    });
    let yaml = serde_yaml::to_string(&front).unwrap_or_default();
    let mut s = format!("---\n{yaml}---\n\n# {}\n\n", record.tag);
    s.push_str(&format!(
        "Snapshot of `{}` made by `mlgit train-tag` on {} ({}).\n\n## Metrics\n\n",
        record.branch, record.created_at, record.host
    ));
    if record.metrics.is_empty() {
        s.push_str("None recorded.\n");
    } else {
        s.push_str("| metric | value |\n|---|---|\n");
        for (k, v) in &record.metrics {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    s.push_str("\n## Lineage\n\n");
    let full = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
    s.push_str(&format!("- code: dev commit `{}`\n", full(&record.code.commit)));
    s.push_str(&format!("- data: split commit `{}`\n", full(&links.split)));
    s.push_str(&format!("  - from clean commit `{}`\n", full(&links.clean)));
    s.push_str(&format!("  - from raw commit `{}`\n", full(&links.raw)));
    if !record.model.is_empty() {
        s.push_str("\n## Model files\n\n| path | sha256 | bytes |\n|---|---|---|\n");
        for m in &record.model {
            s.push_str(&format!("| {} | `{}` | {} |\n", m.path, m.sha256, m.size));
        }
    }
    s.push_str(&format!(
        "\n## How to reproduce\n\n```sh\ngit checkout {tag} && git lfs pull   # or: mlgit checkout {tag} --into DIR\n{cmd}\n```\n\n\
         The tracking record is `{RUN_RECORD}`.\n",
        tag = record.tag,
        cmd = if record.command.is_empty() { "# trained elsewhere (--no-run)".to_string() } else { record.command.join(" ") },
    ));
    s
}

/// Bring the index (and generated files) in line with the snapshot commit: the outputs are in the
/// worktree already, so their entries only get fresh stat data; the record, the model card and
/// `.gitattributes` are written; paths the snapshot dropped are removed.
fn sync_index(repo: &Repo, workdir: &Path, old_tree: Oid, new_tree: Oid, outputs: &[Output]) -> Result<()> {
    let git = repo.git();
    let mut index = git.index().context("read the index")?;
    let produced: BTreeMap<&str, &Output> = outputs.iter().map(|o| (o.path.as_str(), o)).collect();
    for o in outputs {
        let entry = stat_entry(workdir, Path::new(&o.path), o.entry.oid, o.entry.mode.into())?;
        index.add(&entry).context(format!("update the index entry of {}", o.path))?;
    }
    let old = git.find_tree(old_tree).context("read the old tree")?;
    let new = git.find_tree(new_tree).context("read the new tree")?;
    let diff = git.diff_tree_to_tree(Some(&old), Some(&new), None).context("compare trees")?;
    for delta in diff.deltas() {
        match delta.status() {
            git2::Delta::Deleted => {
                if let Some(p) = delta.old_file().path() {
                    remove_file(workdir, p)?;
                    let _ = index.remove_path(p);
                }
            }
            git2::Delta::Added | git2::Delta::Modified | git2::Delta::Typechange => {
                let f = delta.new_file();
                let Some(p) = f.path() else { continue };
                if produced.contains_key(p.to_string_lossy().as_ref()) {
                    continue;
                }
                let entry = write_file(git, repo.store(), workdir, p, f.id(), f.mode().into())?;
                index.add(&entry).context(format!("update the index entry of {}", p.display()))?;
            }
            _ => {}
        }
    }
    index.write().context("write the index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kept_and_other_values_skipped_with_a_note() {
        let mut notes = Vec::new();
        let v = serde_json::json!({"accuracy": 0.61, "n_train": 250, "eval_on": "validation"});
        let m = numeric_metrics(&v, "metrics.json", "accuracy", &mut notes).unwrap();
        assert_eq!(m, BTreeMap::from([("accuracy".to_string(), 0.61), ("n_train".to_string(), 250.0)]));
        assert!(notes[0].contains("eval_on"), "{notes:?}");
    }

    #[test]
    fn a_primary_metric_that_is_not_a_number_or_no_number_at_all_is_refused() {
        let mut notes = Vec::new();
        let bad = serde_json::json!({"accuracy": "high", "loss": 0.2});
        let e = numeric_metrics(&bad, "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("primary metric 'accuracy'"), "{}", e.message());
        let none = serde_json::json!({"loss": "low"});
        let e = numeric_metrics(&none, "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("no numeric metric"), "{}", e.message());
        let e = numeric_metrics(&serde_json::json!([1]), "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("JSON object"), "{}", e.message());
        assert!(numeric_metrics(&serde_json::json!({}), "m", "accuracy", &mut notes).unwrap().is_empty());
    }

    #[test]
    fn tag_names_are_checked_as_git_does() {
        for ok in ["model-v1", "churn/v2", "a.b_c"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "a b", "-x", "x.lock", "a~1", "a:b", "@{x}"] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }
}
