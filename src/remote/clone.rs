//! `mlgit clone`: a git clone in which every convention branch of origin is a local branch
//! tracking it, with the tags; then only the LFS objects the named refs and paths need; then main
//! checked out through the restore path (real content where the object is here, pointer text
//! elsewhere; `git status` clean either way).
//!
//! The clone is made in a temporary folder beside the target and renamed into place at the end,
//! so an interrupted or killed clone never leaves a half-made repository at the target.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::{BranchType, Oid, Repository};
use serde::Serialize;

use super::git_cli;
use super::select::{check_patterns_select, objects_for_trees};
use super::Remote;
use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::hooks::HookInstall;
use crate::interrupt::Interrupt;
use crate::lfs::{self, Object, Operation, TransferOptions, TransferReport};
use crate::progress::Progress;
use crate::repo::worktree::{find_checkout, sync_checkout};
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// The repository to clone (URL or path).
    pub url: String,
    /// Where (None: the URL's last part without `.git`, in `cwd`).
    pub dir: Option<PathBuf>,
    /// The folder relative paths are taken from.
    pub cwd: PathBuf,
    /// Branches or tags whose LFS objects to get (empty: main).
    pub refs: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub jobs: Option<usize>,
    pub interrupt: Interrupt,
}

#[derive(Debug, Clone, Serialize)]
pub struct CloneOutcome {
    pub url: String,
    pub path: PathBuf,
    /// Local branches made, each tracking origin's.
    pub branches: Vec<String>,
    pub tags: usize,
    /// The refs whose trees chose the LFS objects.
    pub refs: Vec<String>,
    /// LFS objects those trees need (after --include/--exclude).
    pub objects: usize,
    pub lfs: TransferReport,
    /// The branch checked out, and how many of its files hold pointer text (objects not fetched).
    pub checked_out: String,
    pub files: usize,
    pub pointer_files: usize,
    /// The pre-push hook installed (paths as in the finished clone).
    pub hook: HookInstall,
    pub seconds: f64,
}

/// Clone an mlgit repository.
pub fn clone(opts: &CloneOptions, progress: &dyn Progress) -> Result<CloneOutcome> {
    let start = Instant::now();
    let target = match &opts.dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => opts.cwd.join(d),
        None => opts.cwd.join(dir_name_of(&opts.url)?),
    };
    let target = normalize(&target)?;
    let parent = target.parent().map(Path::to_path_buf).unwrap_or_else(|| opts.cwd.clone());
    // An existing empty folder on another file system than its parent (a mount point: a CI or
    // container volume) gets the clone built inside it, so the final moves never cross devices.
    let inside = other_device(&parent, &target);
    if inside {
        remove_dead_attempts(&target, "");
    }
    check_target(&target)?;
    fs::create_dir_all(&parent).map_err(|e| {
        Error::io("create", &parent, e)
            .with_hint("the folder the clone goes into must be creatable: is a part of that path a file? choose another DIR")
    })?;
    let (stage_in, base) = match inside {
        true => (target.clone(), String::new()),
        false => {
            (parent.clone(), target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
        }
    };
    if !inside {
        remove_dead_attempts(&stage_in, &base);
    }
    let tmp = stage_in.join(format!(".{base}.mlgit-clone-{}", std::process::id()));
    let parent = stage_in;
    let _ = fs::remove_dir_all(&tmp);
    // The URL as the user typed it is relative to where mlgit runs, not to the target's parent.
    let url = absolute_local_url(&opts.url, &opts.cwd);
    let result = clone_into(opts, &url, &parent, &tmp, progress);
    let mut outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    before_move_hook();
    if let Err(e) = move_into_place(&tmp, &target) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    outcome.hook.hook = rebase(&outcome.hook.hook, &tmp, &target);
    outcome.hook.chained = outcome.hook.chained.as_deref().map(|p| rebase(p, &tmp, &target));
    outcome.url = opts.url.clone();
    outcome.path = crate::repo::absolute(&target);
    outcome.seconds = start.elapsed().as_secs_f64();
    Ok(outcome)
}

fn clone_into(
    opts: &CloneOptions,
    url: &str,
    parent: &Path,
    tmp: &Path,
    progress: &dyn Progress,
) -> Result<CloneOutcome> {
    progress.begin("cloning", 0, 0);
    let cloned = git_cli::clone_no_checkout(parent, url, tmp, &opts.interrupt);
    progress.end();
    cloned?;
    let git = Repository::open(tmp).context(format!("open the clone in {}", tmp.display()))?;
    let main = crate::repo::main_branch_name(&git);
    let origin_main = git.refname_to_id(&format!("refs/remotes/origin/{main}")).ok();
    let is_mlgit = origin_main.is_some_and(|tip| {
        git.find_commit(tip)
            .and_then(|c| c.tree())
            .map(|t| t.get_name(crate::config::CONFIG_FILE).is_some())
            .unwrap_or(false)
    });
    if git.references().map(|mut r| r.next().is_none()).unwrap_or(false) {
        return Err(Error::not_found(format!(
            "{} is an empty repository: there is nothing to clone",
            opts.url
        ))
        .with_hint("push an mlgit repository there first (`mlgit push` from it)"));
    }
    let Some(origin_main) = origin_main.filter(|_| is_mlgit) else {
        return Err(Error::not_found(format!(
            "{} is not an mlgit repository: it has no '{main}' branch with an {}",
            opts.url,
            crate::config::CONFIG_FILE
        ))
        .with_hint(
            "clone it with `git clone`; to make it an mlgit repository, run `mlgit init` in that clone",
        ));
    };
    // Local main first: the config (and so the convention branch names) is read from it.
    make_tracking_branch(&git, &main, origin_main)?;
    git.set_head(&format!("refs/heads/{main}")).context("point HEAD at main")?;
    let repo =
        Repo::from_parts(Repository::open(tmp).context("open the clone")?, crate::repo::load_config(&git)?);
    let mut branches = vec![main.clone()];
    let remote_branches: Vec<(String, Oid)> = git
        .branches(Some(BranchType::Remote))
        .context("list origin's branches")?
        .flatten()
        .filter_map(|(b, _)| {
            let name = b.name().ok().flatten()?.strip_prefix("origin/")?.to_string();
            Some((name, b.get().target()?))
        })
        .collect();
    for (name, tip) in remote_branches {
        if name == "HEAD" || name == main || repo.config().branch_kind(&name) == BranchKind::Other {
            continue;
        }
        make_tracking_branch(&git, &name, tip)?;
        branches.push(name);
    }
    branches.sort();
    let tags = git.tag_names(None).map(|t| t.len()).unwrap_or(0);

    // The objects the refs asked for need.
    let wanted = if opts.refs.is_empty() { vec![main.clone()] } else { opts.refs.clone() };
    let mut targets = Vec::new();
    for r in &wanted {
        let oid = git
            .refname_to_id(&format!("refs/heads/{r}"))
            .or_else(|_| git.refname_to_id(&format!("refs/tags/{r}")))
            // A branch of origin that is no convention branch has no local branch, but is here.
            .or_else(|_| git.refname_to_id(&format!("refs/remotes/origin/{r}")))
            .map_err(|_| {
                Error::not_found(format!("origin has no branch or tag '{r}'"))
                    .with_hint(format!("the branches cloned are: {}", branches.join(", ")))
            })?;
        targets.push((r.clone(), oid));
    }
    check_patterns_select(&repo, &targets, &opts.include, &opts.exclude)?;
    progress.begin("finding the LFS objects needed", 0, 0);
    let objects = objects_for_trees(&repo, &targets, &opts.include, &opts.exclude);
    progress.end();
    let objects = objects?;
    let missing: Vec<Object> =
        objects.iter().filter(|o| !repo.store().contains(&o.pointer)).cloned().collect();
    let mut report = TransferReport::default();
    if !missing.is_empty() {
        opts.interrupt.check("the clone")?;
        let remote = Remote::find(repo.git(), "origin")?;
        let tree = repo.git().find_commit(origin_main).and_then(|c| c.tree()).context("read main's tree")?;
        let endpoint = lfs::endpoint(&repo, &remote, Operation::Download, Some(tree.id()))?;
        let transfer = TransferOptions {
            interrupt: opts.interrupt.clone(),
            progress,
            jobs: opts.jobs,
            refspec: Some(format!("refs/heads/{}", wanted[0])),
            dry_run: false,
        };
        report = lfs::download(&repo, &endpoint, &missing, &transfer)?;
    }

    // Main's files, through the worktree sync (the restore path): content where the object is
    // here, pointer text elsewhere, and index entries with fresh stat data that git trusts with
    // or without git-lfs (see `worktree::write_index`).
    opts.interrupt.check("the clone")?;
    let tree = repo.git().find_commit(origin_main).and_then(|c| c.tree()).context("read main's tree")?;
    let files = crate::repo::lfs_tree::classify(repo.git(), tree.id())?;
    let pointer_files =
        files.iter().filter(|f| f.pointer.as_ref().is_some_and(|p| !repo.store().contains(p))).count();
    let checkout = find_checkout(repo.git(), &main)?.ok_or_else(|| {
        Error::not_found("the clone has no worktree for main").with_hint("report this as a bug")
    })?;
    progress.begin("checking out main", files.len() as u64, 0);
    let synced = sync_checkout(&checkout, repo.store(), None, tree.id(), &HashMap::new());
    progress.end();
    synced?;

    // A plain `git push` from the clone carries the LFS objects too.
    let hook = crate::hooks::install(repo.git())?;
    Ok(CloneOutcome {
        url: url.to_string(),
        path: tmp.to_path_buf(),
        branches,
        tags,
        refs: wanted,
        objects: objects.len(),
        lfs: report,
        checked_out: main,
        files: files.len(),
        pointer_files,
        hook,
        seconds: 0.0,
    })
}

/// Put the finished clone at `target`: a rename of the whole folder when there is none, else (an
/// empty folder, maybe the current one: it must stay the same folder) its entries moved in, `.git`
/// last, and the index's stat data refreshed (a rename changes a file's ctime, which git compares).
fn move_into_place(tmp: &Path, target: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        return fs::rename(tmp, target).map_err(|e| Error::io("move the finished clone to", target, e));
    }
    let entries = fs::read_dir(tmp).map_err(|e| Error::io("read", tmp, e))?;
    let mut names: Vec<std::ffi::OsString> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort_by_key(|n| n == ".git");
    let mut moved = Vec::new();
    for name in &names {
        let to = target.join(name);
        // Never replace what someone put into the folder while the clone ran: the move fails
        // instead, and the entries already moved go back, so the folder is as they left it.
        if let Err(e) = rename_noreplace(&tmp.join(name), &to) {
            for done in moved.iter().rev() {
                let _ = rename_noreplace(&target.join(done), &tmp.join(done));
            }
            let err = Error::io("move the finished clone to", &to, e);
            return Err(if to.exists() {
                Error::new(
                    crate::ErrorKind::AlreadyExists,
                    format!("{} gained '{}' while the clone ran", target.display(), to.display()),
                )
                .with_hint("the folder must stay empty while mlgit clones into it; nothing in it was changed: move that away and clone again")
            } else {
                err
            });
        }
        moved.push(name.clone());
    }
    let _ = fs::remove_dir(tmp);
    let git = Repository::open(target).context(format!("open the clone in {}", target.display()))?;
    let mut index = git.index().context("read the index")?;
    let entries: Vec<git2::IndexEntry> = index.iter().collect();
    for entry in entries {
        let Ok(path) = std::str::from_utf8(&entry.path) else { continue };
        if fs::symlink_metadata(target.join(path)).is_err() {
            continue;
        }
        let fresh = crate::repo::worktree::stat_entry(target, Path::new(path), entry.id, entry.mode as i32)?;
        index.add(&fresh).context(format!("update the index entry of {path}"))?;
    }
    index.write().context("write the index")
}

/// Tests make the race with the user deterministic: in debug builds only, the shell command in
/// `MLGIT_TEST_BEFORE_CLONE_MOVE` runs when the clone is finished and before it is moved into place.
fn before_move_hook() {
    if cfg!(debug_assertions) {
        if let Some(cmd) = std::env::var_os("MLGIT_TEST_BEFORE_CLONE_MOVE") {
            let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}

/// `rename(2)` that fails with `EEXIST` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a path"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them as plain paths.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether `target` is an existing folder on another device than `parent` (a mount point).
fn other_device(parent: &Path, target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(parent), fs::symlink_metadata(target)) {
        (Ok(p), Ok(t)) => t.is_dir() && p.dev() != t.dev(),
        _ => false,
    }
}

/// The target without `.` components (`mlgit clone URL .`); a `..` at the end is resolved on disk.
fn normalize(path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.ends_with("..") || out.file_name().is_none() {
        return fs::canonicalize(&out).map_err(|e| Error::io("find", &out, e));
    }
    Ok(out)
}

/// `path` under `from`, as it is under `to` once `from` was renamed to `to`.
fn rebase(path: &Path, from: &Path, to: &Path) -> PathBuf {
    path.strip_prefix(from).map(|rel| to.join(rel)).unwrap_or_else(|_| path.to_path_buf())
}

/// A local branch at `tip` tracking `origin/<name>` (made by `git clone` for the default branch).
fn make_tracking_branch(git: &Repository, name: &str, tip: Oid) -> Result<()> {
    let mut branch = match git.find_branch(name, BranchType::Local) {
        Ok(b) => b,
        Err(_) => {
            let commit = git.find_commit(tip).context(format!("read origin/{name}"))?;
            git.branch(name, &commit, false).context(format!("create branch '{name}'"))?
        }
    };
    branch
        .set_upstream(Some(&format!("origin/{name}")))
        .context(format!("make '{name}' track origin/{name}"))?;
    Ok(())
}

/// The folder name git would pick: the URL's last part without `.git`.
fn dir_name_of(url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/').trim_end_matches("/.git");
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or("");
    let name = last.strip_suffix(".git").unwrap_or(last);
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::invalid(format!("cannot tell a folder name from '{url}'"))
            .with_hint("name the folder: `mlgit clone URL DIR`"));
    }
    Ok(name.to_string())
}

/// A target that exists must be an empty folder.
fn check_target(target: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(target) else { return Ok(()) };
    let empty_dir = |p: &Path| fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false);
    if meta.is_dir() && empty_dir(target) {
        return Ok(());
    }
    if meta.file_type().is_symlink() {
        return Err(Error::new(
            crate::ErrorKind::AlreadyExists,
            format!("{} is a symlink", target.display()),
        )
        .with_hint("clone into a real folder: remove the link or choose another DIR"));
    }
    Err(Error::new(
        crate::ErrorKind::AlreadyExists,
        format!("{} already exists and is not an empty folder", target.display()),
    )
    .with_hint("choose another DIR, or remove that one first"))
}

/// Folders left by clones of the same target that were killed (their process is gone).
fn remove_dead_attempts(parent: &Path, base: &str) {
    let prefix = format!(".{base}.mlgit-clone-");
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM };
        if !alive {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A relative local path made absolute from `cwd` (git runs in the target's parent).
fn absolute_local_url(url: &str, cwd: &Path) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    match super::local_path(url) {
        Some(p) if p.is_relative() => cwd.join(p).to_string_lossy().into_owned(),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_come_from_the_url() {
        assert_eq!(dir_name_of("https://h/org/proj.git").unwrap(), "proj");
        assert_eq!(dir_name_of("git@h:org/proj.git").unwrap(), "proj");
        assert_eq!(dir_name_of("/srv/proj/").unwrap(), "proj");
        assert_eq!(dir_name_of("/srv/proj/.git").unwrap(), "proj");
        assert!(dir_name_of("/").is_err());
    }
}
