//! The transform sandbox of `mlgit clean --run`: the validated data is materialized read-only into a
//! temporary folder beside a copy of the committed `transform/`, the command runs there, anything it
//! writes outside `MLGIT_OUTPUT` is refused, and `MLGIT_OUTPUT` becomes the clean data.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use git2::{FileMode, Oid, Repository};
use serde::Serialize;

use super::flow::DATA_DIR;
use super::materialize::write_tree;
use crate::config::BranchKind;
use crate::error::{Error, ErrorKind, Result};
use crate::ingest::{self, LfsRule, Policy, WalkedFile};
use crate::interrupt::Interrupt;
use crate::process::{self, ChildCommand};
use crate::progress::Progress;
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::Repo;

/// The transformation that produced the clean data (with `--run`).
#[derive(Debug, Clone, Serialize)]
pub struct TransformRecord {
    pub command: String,
    /// The transform folder in the clean tree (`transform/`), its tree id, and each file's blob id.
    pub dir: String,
    pub tree: Option<String>,
    pub files: Vec<TransformFile>,
    pub output_files: u64,
    pub output_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformFile {
    pub path: String,
    pub blob: String,
}

/// `transform/` without its trailing slash (a tree path).
pub(super) fn transform_dir(repo: &Repo) -> String {
    let d = repo.config().clean.transform_dir.trim_matches('/');
    if d.is_empty() {
        "transform".into()
    } else {
        d.to_string()
    }
}

/// Materialize the validated data, run CMD on it, and store its output. Returns the clean data
/// tree, the transform record and the transform folder's tree (None: no transform folder).
pub(super) fn run_transform(
    repo: &Repo,
    cmd: &str,
    raw: Oid,
    validated: Oid,
    clean_tree: Oid,
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<(Oid, TransformRecord, Option<Oid>)> {
    let git = repo.git();
    let dir_name = transform_dir(repo);
    let tmp = Sandbox::create()?;
    let root = tmp.path().to_path_buf();
    let input = root.join("input");
    let output = root.join("output");
    let work = root.join("work");
    for d in [&input, &output, &work] {
        fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    write_tree(repo, validated, &input, &|_| true, progress)?;

    // The transform folder: the worktree's (where the user edits it), else the clean branch's.
    let local = repo.workdir().join(&dir_name);
    let transform_tree = if local.is_dir() {
        Some(store_folder_as_blobs(git, &local)?)
    } else {
        flow_subtree(git, clean_tree, &dir_name)?
    };
    let work_transform = work.join(&dir_name);
    if let Some(t) = transform_tree {
        write_tree(repo, t, &work_transform, &|_| true, &crate::progress::NoProgress)?;
    }

    set_read_only(&input, true)?;
    let before = match listing(&root, &output) {
        Ok(l) => l,
        Err(e) => {
            // Leave a removable temporary folder behind whatever happens.
            let _ = set_read_only(&input, false);
            return Err(e);
        }
    };
    let child = ChildCommand::new("sh", &work)
        .arg("-c")
        .arg(cmd)
        .env("MLGIT_INPUT", &input)
        .env("MLGIT_OUTPUT", &output)
        .env("MLGIT_SOURCE_COMMIT", raw.to_string())
        .env("MLGIT_TRANSFORM_DIR", &work_transform);
    let ran = process::run(&child, interrupt, &format!("the transformation `{cmd}`"));
    // Make the input writable again whatever happened, so the temporary folder can be removed.
    let restored = set_read_only(&input, false);
    ran.map_err(|e| match e.kind() {
        // docs/clean.md: a failed transformation is exit 1, whatever its own code.
        ErrorKind::ChildFailed(code) => {
            let hint = match code {
                126 | 127 => e.hint().unwrap_or_default().to_string(),
                _ => "fix the command (it runs with `sh -c` in a folder holding transform/, reading $MLGIT_INPUT and writing $MLGIT_OUTPUT), then retry".into(),
            };
            Error::new(
                ErrorKind::ChildFailed(1),
                format!("the transformation `{cmd}` failed (exit status {code}); nothing was committed"),
            )
            .with_hint(hint)
        }
        _ => e,
    })?;
    restored?;
    let after = listing(&root, &output)?;
    if before != after {
        let changed = diff_listings(&before, &after);
        return Err(Error::invalid(format!(
            "the transformation `{cmd}` wrote outside MLGIT_OUTPUT ({}); nothing was committed",
            changed.join(", ")
        ))
        .with_hint("write results only under $MLGIT_OUTPUT; $MLGIT_INPUT is read-only and the working folder must stay as it was"));
    }

    let outputs = output_files(&output)?;
    if outputs.is_empty() {
        return Err(Error::invalid(format!(
            "the transformation `{cmd}` succeeded but wrote nothing into MLGIT_OUTPUT; nothing was committed"
        ))
        .with_hint("write the clean files under $MLGIT_OUTPUT (folders are kept: $MLGIT_OUTPUT/a/b.csv becomes data/a/b.csv)"));
    }
    let stored = store_outputs(repo, &outputs, interrupt, progress)?;
    let mut edits = TreeEdits::new();
    let mut bytes = 0;
    for (rel, entry, size) in &stored {
        edits.set(rel, *entry)?;
        bytes += size;
    }
    let tree = edits.write(git, None)?;
    let mut files = Vec::new();
    if let Some(t) = transform_tree {
        for f in crate::repo::tree::list_files(git, t)? {
            files.push(TransformFile { path: format!("{dir_name}/{}", f.path), blob: f.oid.to_string() });
        }
    }
    let record = TransformRecord {
        command: cmd.to_string(),
        dir: format!("{dir_name}/"),
        tree: transform_tree.map(|t| t.to_string()),
        files,
        output_files: stored.len() as u64,
        output_bytes: bytes,
    };
    Ok((tree, record, transform_tree))
}

fn flow_subtree(git: &Repository, tree: Oid, path: &str) -> Result<Option<Oid>> {
    Ok(crate::repo::tree::entry_at(git, tree, path)?.filter(|e| e.mode == FileMode::Tree).map(|e| e.oid))
}

/// Store a folder's files as git blobs and return its tree (the transform scripts are code, not
/// data), by the ingest policy.
fn store_folder_as_blobs(git: &Repository, dir: &Path) -> Result<Oid> {
    let files = ingest::walk(dir, &[], &Policy::default())?;
    let mut worker = ingest::LazyRepo::new(git.path());
    let store = crate::store::LfsStore::new(git.commondir());
    let mut edits = TreeEdits::new();
    for f in &files {
        let i = ingest::ingest_file(&mut worker, &store, f, false, false)?;
        edits.set(&f.rel, Entry { oid: i.blob, mode: i.mode })?;
    }
    edits.write(git, None)
}

/// The files under MLGIT_OUTPUT, by the ingest policy (symlinks, special files, reserved and
/// unstorable names are refused: a link could point anywhere on this machine, a `.gitattributes`
/// would change how git and git-lfs read the data).
fn output_files(output: &Path) -> Result<Vec<WalkedFile>> {
    ingest::walk(output, &[], &Policy::default()).map_err(|e| {
        let hint = format!("in $MLGIT_OUTPUT: {}", e.hint().unwrap_or_default());
        Error::new(e.kind(), format!("the transformation's output: {}", e.message())).with_hint(hint)
    })
}

/// Store the output files as `data/<rel>` by the clean branches' blob-or-LFS rule, reading each
/// once; returns each file's relative path, tree entry and size.
fn store_outputs(
    repo: &Repo,
    outputs: &[WalkedFile],
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<Vec<(String, Entry, u64)>> {
    let git = repo.git();
    let rule = LfsRule::for_kind(repo.config(), BranchKind::Clean)?;
    let total = outputs.iter().map(WalkedFile::size).sum();
    progress.begin("store", outputs.len() as u64, total);
    let lfs = |f: &WalkedFile| rule.storage(&format!("{DATA_DIR}/{}", f.rel), f.size()).lfs;
    let ingested =
        ingest::ingest_files(git.path(), repo.store(), outputs, &lfs, interrupt, "clean", progress)?;
    progress.end();
    ingest::write_pointer_blobs(git, &ingested)?;
    Ok(outputs
        .iter()
        .zip(ingested)
        .map(|(f, i)| (f.rel.clone(), Entry { oid: i.blob, mode: i.mode }, i.size))
        .collect())
}

/// The temporary folder of one transform run (`$TMPDIR/mlgit-clean-<pid>-<random>`). It is removed
/// on every way out of the run (success, error, interrupt), even when the transform left read-only
/// folders in it; one left by a run that was killed (its pid is gone) is removed by the next run.
struct Sandbox {
    dir: Option<tempfile::TempDir>,
}

const SANDBOX_PREFIX: &str = "mlgit-clean-";

impl Sandbox {
    fn create() -> Result<Sandbox> {
        sweep_stale_sandboxes();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SANDBOX_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| {
                Error::io("create a temporary folder in", &std::env::temp_dir(), e).with_hint(
                    "make the temporary folder ($TMPDIR, else /tmp) writable, or point TMPDIR elsewhere",
                )
            })?;
        Ok(Sandbox { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).unwrap_or(Path::new(""))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            remove_all(&dir.keep());
        }
    }
}

/// Remove the sandboxes of transform runs that were killed (their process no longer exists), owned
/// by this user. Best effort: a sandbox that cannot be removed now is tried again by the next run.
pub fn sweep_stale_sandboxes() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SANDBOX_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(meta) = e.path().symlink_metadata() else { continue };
        if !meta.is_dir() || meta.uid() != me || pid <= 0 || process_exists(pid) {
            continue;
        }
        remove_all(&e.path());
    }
}

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Remove a folder tree, first making its folders writable (a transform may leave read-only ones).
fn remove_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if fs::remove_dir_all(dir).is_ok() {
        return;
    }
    for e in walkdir::WalkDir::new(dir).follow_links(false).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    let _ = fs::remove_dir_all(dir);
}

/// Make a folder tree read-only (or writable again).
fn set_read_only(dir: &Path, read_only: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entries: Vec<_> = walkdir::WalkDir::new(dir).into_iter().filter_map(|e| e.ok()).collect();
    // Files first when locking, folders first when unlocking, so every step is permitted.
    let mut ordered = entries;
    if !read_only {
        ordered.sort_by_key(|e| e.depth());
    } else {
        ordered.sort_by_key(|e| std::cmp::Reverse(e.depth()));
    }
    for e in ordered {
        let is_dir = e.file_type().is_dir();
        if e.file_type().is_symlink() {
            continue;
        }
        let mode = match (is_dir, read_only) {
            (true, true) => 0o555,
            (true, false) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode))
            .map_err(|err| Error::io("change the permissions of", e.path(), err))?;
    }
    Ok(())
}

/// (path, size, mtime, mode) of everything under `root` except `skip`.
fn listing(root: &Path, skip: &Path) -> Result<BTreeMap<String, (u64, i64, i64, u32)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| e.path() != skip) {
        let e = e.map_err(|e| Error::invalid(format!("cannot list {}: {e}", root.display())))?;
        let meta = fs::symlink_metadata(e.path()).map_err(|err| Error::io("stat", e.path(), err))?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path()).to_string_lossy().into_owned();
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        let size = if meta.is_dir() { 0 } else { meta.len() };
        out.insert(rel, (size, meta.mtime(), meta.mtime_nsec(), meta.mode() & !0o777));
    }
    Ok(out)
}

fn diff_listings(
    a: &BTreeMap<String, (u64, i64, i64, u32)>,
    b: &BTreeMap<String, (u64, i64, i64, u32)>,
) -> Vec<String> {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    let is_dir = |v: &(u64, i64, i64, u32)| v.3 & S_IFMT == S_IFDIR;
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for (k, v) in b {
        match a.get(k) {
            None => files.push(format!("created {k}")),
            Some(old) if old != v && is_dir(v) => folders.push(format!("changed the folder {k}")),
            Some(old) if old != v => files.push(format!("changed {k}")),
            _ => {}
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) {
            files.push(format!("removed {k}"));
        }
    }
    // A folder's mtime changes with every entry made or removed in it: name it only when no file
    // change explains it (a file created and deleted again).
    let mut out = if files.is_empty() { folders } else { files };
    let n = out.len();
    out.truncate(5);
    if n > 5 {
        out.push(format!("{} more", n - 5));
    }
    out
}
