//! `mlgit gc`: remove LFS objects nothing reaches any more, and the temporary files that killed
//! runs leave behind.
//!
//! An object is kept when any ref (branches, tags, remotes, stash, notes…), any reflog entry, the
//! HEAD or the index of the main worktree or of a linked worktree reaches a pointer to it. Removal
//! is also held back for anything younger than [`GRACE`]: a command running right now (mlgit,
//! git-lfs, git) may have written an object or a temporary file whose ref has not moved yet.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{ObjectType, Oid, Repository};
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::repo::Repo;
use crate::store::pointer::MAX_POINTER_SIZE;
use crate::store::{LfsOid, Pointer};

/// Objects and temporary files younger than this are never removed.
pub const GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// List what would be removed, remove nothing.
    pub dry_run: bool,
    pub interrupt: Interrupt,
}

/// One LFS object removed (or that would be).
#[derive(Debug, Clone, Serialize)]
pub struct RemovedObject {
    pub oid: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GcOutcome {
    pub dry_run: bool,
    /// LFS objects in the store that something reaches (kept).
    pub reachable: u64,
    /// Unreachable objects kept because they are younger than the grace period.
    pub recent: u64,
    pub removed_objects: Vec<RemovedObject>,
    /// Leftover temporary files and folders removed (or that would be).
    pub removed_temporary: Vec<PathBuf>,
    /// Bytes freed (or that would be).
    pub bytes: u64,
}

/// Run gc on the repository (the whole repository: every worktree shares the store).
pub fn gc(repo: &Repo, opts: &GcOptions) -> Result<GcOutcome> {
    let main = Repository::open(repo.git().commondir()).context("open the main repository")?;
    let needed = reachable_objects(&main, &opts.interrupt)?;
    let store = repo.store();
    let cutoff = SystemTime::now().checked_sub(GRACE).unwrap_or(SystemTime::UNIX_EPOCH);
    let old = |meta: &fs::Metadata| meta.modified().map(|m| m < cutoff).unwrap_or(false);

    let mut out = GcOutcome {
        dry_run: opts.dry_run,
        reachable: 0,
        recent: 0,
        removed_objects: Vec::new(),
        removed_temporary: Vec::new(),
        bytes: 0,
    };
    for (oid, path) in store_objects(store.objects_dir())? {
        opts.interrupt.check("gc")?;
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("stat", &path, e))?;
        if needed.contains(&oid) {
            out.reachable += 1;
        } else if !old(&meta) {
            out.recent += 1;
        } else {
            if !opts.dry_run {
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
            out.bytes += meta.len();
            out.removed_objects.push(RemovedObject { oid: oid.to_hex(), size: meta.len() });
        }
    }
    out.removed_objects.sort_by(|a, b| a.oid.cmp(&b.oid));

    let mut leftovers: Vec<PathBuf> = Vec::new();
    leftovers.extend(entries(store.tmp_dir(), |_| true)?);
    let pack = main.path().join("objects").join("pack");
    leftovers.extend(entries(&pack, |n| n.starts_with("pack_git2_") || n.starts_with("tmp_"))?);
    let held = held_paths();
    for dir in entries(&std::env::temp_dir(), |n| n.starts_with("mlgit-clean-"))? {
        if !held.iter().any(|h| h.starts_with(&dir)) {
            leftovers.push(dir);
        }
    }
    for path in leftovers {
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if !old(&meta) {
            continue;
        }
        if !opts.dry_run {
            remove_any(&path, &meta)?;
        }
        out.bytes += if meta.is_dir() { 0 } else { meta.len() };
        out.removed_temporary.push(path);
    }
    out.removed_temporary.sort();
    Ok(out)
}

/// Remove the files in `dir` (an LFS store's `tmp`) older than [`GRACE`]: what transfers killed
/// there left. Best effort: a file that cannot be removed is left for `mlgit gc`. Used on a
/// `file://` remote's store, which no `mlgit gc` of ours ever sees.
pub fn remove_stale_temporary(dir: &Path) {
    let cutoff = SystemTime::now().checked_sub(GRACE).unwrap_or(SystemTime::UNIX_EPOCH);
    let Ok(found) = entries(dir, |_| true) else { return };
    for path in found {
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if meta.is_file() && meta.modified().is_ok_and(|m| m < cutoff) {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// The LFS objects reachable from every ref, reflog entry, worktree HEAD and index.
fn reachable_objects(main: &Repository, interrupt: &Interrupt) -> Result<HashSet<LfsOid>> {
    let mut tips: Vec<Oid> = Vec::new();
    let mut names: Vec<String> = vec!["HEAD".to_string()];
    for r in main.references().context("list refs")?.flatten() {
        if let Some(t) = r.target() {
            tips.push(t);
        }
        if let Some(name) = r.name() {
            names.push(name.to_string());
        }
    }
    let mut repos = vec![Repository::open(main.path()).context("open the main repository")?];
    for name in main.worktrees().context("list worktrees")?.iter().flatten() {
        let Ok(wt) = main.find_worktree(name) else { continue };
        if let Ok(r) = Repository::open_from_worktree(&wt) {
            repos.push(r);
        }
    }
    let mut index_blobs: Vec<Oid> = Vec::new();
    for r in &repos {
        if let Ok(head) = r.head() {
            tips.extend(head.target());
        }
        // HEAD's reflog is per worktree; the other refs' reflogs are shared.
        for name in &names {
            if let Ok(log) = r.reflog(name) {
                for e in log.iter() {
                    tips.extend([e.id_old(), e.id_new()].into_iter().filter(|id| !id.is_zero()));
                }
            }
        }
        if r.workdir().is_some() {
            if let Ok(index) = r.index() {
                index_blobs.extend(index.iter().map(|e| e.id));
            }
        }
    }

    let odb = main.odb().context("open the object database")?;
    let mut walk = main.revwalk().context("walk the history")?;
    let mut trees: Vec<Oid> = Vec::new();
    let mut blobs: Vec<Oid> = index_blobs;
    for tip in tips {
        let Ok(mut peeled) = main.find_object(tip, None) else { continue };
        while let Some(target) = peeled.as_tag().and_then(|t| t.target().ok()) {
            peeled = target;
        }
        match peeled.kind() {
            Some(ObjectType::Commit) => walk.push(peeled.id()).context("walk the history")?,
            Some(ObjectType::Tree) => trees.push(peeled.id()),
            Some(ObjectType::Blob) => blobs.push(peeled.id()),
            _ => {}
        }
    }
    for oid in walk {
        interrupt.check("gc")?;
        let oid = oid.context("walk the history")?;
        let commit = main.find_commit(oid).context(format!("read commit {oid}"))?;
        trees.push(commit.tree_id());
    }
    // Every tree once (an unchanged subtree is shared by many commits), every small blob once.
    let mut seen_trees: HashSet<Oid> = HashSet::new();
    let mut seen_blobs: HashSet<Oid> = HashSet::new();
    let mut needed = HashSet::new();
    while let Some(t) = trees.pop() {
        if !seen_trees.insert(t) {
            continue;
        }
        let Ok(tree) = main.find_tree(t) else { continue };
        for e in tree.iter() {
            match e.kind() {
                Some(ObjectType::Tree) => trees.push(e.id()),
                Some(ObjectType::Blob) => blobs.push(e.id()),
                _ => {}
            }
        }
    }
    for b in blobs {
        if !seen_blobs.insert(b) {
            continue;
        }
        let Ok((size, kind)) = odb.read_header(b) else { continue };
        if kind != ObjectType::Blob || size > MAX_POINTER_SIZE {
            continue;
        }
        if let Ok(blob) = main.find_blob(b) {
            if let Some(p) = Pointer::from_blob(blob.content()) {
                needed.insert(p.oid);
            }
        }
    }
    Ok(needed)
}

/// Every object file of the store (`xx/yy/<64 hex>`); other files are not ours to judge.
fn store_objects(objects: &Path) -> Result<Vec<(LfsOid, PathBuf)>> {
    let mut out = Vec::new();
    for a in entries(objects, |n| n.len() == 2)? {
        for b in entries(&a, |n| n.len() == 2)? {
            for f in entries(&b, |n| n.len() == 64)? {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if let Some(oid) = LfsOid::from_hex(name) {
                    out.push((oid, f));
                }
            }
        }
    }
    Ok(out)
}

/// The entries of `dir` whose name `keep` accepts (a missing folder has none).
fn entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", dir, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        if entry.file_name().to_str().is_some_and(&keep) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Paths some running process holds (its working folder or an open file), from `/proc`; empty
/// where there is no `/proc` (then only the grace period protects a running transform).
fn held_paths() -> Vec<PathBuf> {
    let mut held = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else { return held };
    for p in procs.flatten() {
        if !p.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let base = p.path();
        held.extend(fs::read_link(base.join("cwd")));
        if let Ok(fds) = fs::read_dir(base.join("fd")) {
            held.extend(fds.flatten().filter_map(|fd| fs::read_link(fd.path()).ok()));
        }
    }
    held
}

/// Remove a file, or a folder with everything in it (a transform may have left parts read-only;
/// links inside are removed, never followed).
fn remove_any(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| Error::io("remove", path, e));
    }
    for entry in walkdir::WalkDir::new(path).follow_links(false).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
        }
    }
    fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))
}
