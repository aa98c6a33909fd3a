//! Worktrees that have a branch checked out: finding them (main worktree and linked ones), telling
//! whether they are clean (LFS files whose content matches their pointer count as clean), and
//! bringing them up to date after mlgit moved the branch without a checkout — files written with
//! their LFS content resolved, and index entries written with fresh stat data so `git status` stays
//! clean, as after `git checkout` with git-lfs — and without it (see `write_index`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{Delta, DiffOptions, Index, IndexEntry, IndexTime, Oid, Repository, Status, StatusOptions};

use crate::error::{Context, Error, Result};
use crate::store::pointer::MAX_POINTER_SIZE;
use crate::store::stat_cache::Stat;
use crate::store::{hash_reader, LfsStore, Pointer};

/// A worktree with a given branch checked out.
pub struct Checkout {
    pub path: PathBuf,
    pub repo: Repository,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout").field("path", &self.path).finish()
    }
}

fn head_is(repo: &Repository, branch: &str) -> bool {
    let full = format!("refs/heads/{branch}");
    match repo.find_reference("HEAD") {
        Ok(head) => head.symbolic_target() == Some(full.as_str()),
        Err(_) => false,
    }
}

/// The worktree (main or linked) where `branch` is checked out, if any.
pub fn find_checkout(git: &Repository, branch: &str) -> Result<Option<Checkout>> {
    // Always look from the main repository so linked worktrees see each other.
    let main = Repository::open(git.commondir()).context("open the main repository")?;
    if !main.is_bare() && head_is(&main, branch) {
        let path = main.workdir().map(Path::to_path_buf).unwrap_or_default();
        return Ok(Some(Checkout { path, repo: main }));
    }
    let names = main.worktrees().context("list worktrees")?;
    for name in names.iter().flatten() {
        let Ok(wt) = main.find_worktree(name) else { continue };
        if wt.validate().is_err() {
            continue; // pruned or moved: nothing checked out there
        }
        let Ok(repo) = Repository::open_from_worktree(&wt) else { continue };
        if head_is(&repo, branch) {
            return Ok(Some(Checkout { path: wt.path().to_path_buf(), repo }));
        }
    }
    Ok(None)
}

/// The paths with uncommitted changes to tracked files in a worktree (untracked files are ignored).
/// An LFS-tracked file whose content hashes to its pointer is not a change.
pub fn dirty_paths(repo: &Repository) -> Result<Vec<String>> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false).include_ignored(false).exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts)).context("read the worktree's status")?;
    let index = repo.index().context("read the index")?;
    let workdir = repo.workdir().map(Path::to_path_buf).unwrap_or_default();
    let mut dirty = Vec::new();
    for s in statuses.iter() {
        let Some(path) = s.path() else { continue };
        let st = s.status();
        if st == Status::WT_MODIFIED && matches_pointer(repo, &index, &workdir, path) {
            continue;
        }
        // Outside a sparse checkout's cone the file is meant to be absent (libgit2's status does
        // not know the skip-worktree bit; git does).
        if skip_worktree(&index, path)
            && !st.intersects(Status::INDEX_NEW | Status::INDEX_MODIFIED | Status::INDEX_DELETED)
        {
            continue;
        }
        if st.intersects(
            Status::INDEX_NEW
                | Status::INDEX_MODIFIED
                | Status::INDEX_DELETED
                | Status::INDEX_RENAMED
                | Status::INDEX_TYPECHANGE
                | Status::WT_MODIFIED
                | Status::WT_DELETED
                | Status::WT_TYPECHANGE
                | Status::WT_RENAMED
                | Status::CONFLICTED,
        ) {
            dirty.push(path.to_string());
        }
    }
    Ok(dirty)
}

/// Whether the worktree file at `path` is the content of the LFS pointer the index holds for it.
fn matches_pointer(repo: &Repository, index: &git2::Index, workdir: &Path, path: &str) -> bool {
    let Some(entry) = index.get_path(Path::new(path), 0) else { return false };
    let Ok(blob) = repo.find_blob(entry.id) else { return false };
    let Some(pointer) = Pointer::from_blob(blob.content()) else { return false };
    let Ok(mut file) = fs::File::open(workdir.join(path)) else { return false };
    matches!(hash_reader(&mut file), Ok((oid, size)) if oid == pointer.oid && size == pointer.size)
}

/// After a branch moved from `old_tree` to `new_tree` without a checkout, bring the clean worktree
/// that has it checked out up to date: changed files are written (LFS content from the local store
/// where present, pointer text otherwise) and the index gets matching entries.
///
/// Files in `in_place` already hold their committed content in the worktree (they were read from
/// there): only their index entries are written, and only if their stat data is still what was read.
pub fn sync_checkout(
    co: &Checkout,
    store: &LfsStore,
    old_tree: Option<Oid>,
    new_tree: Oid,
    in_place: &HashMap<String, Stat>,
) -> Result<()> {
    let repo = &co.repo;
    let old = match old_tree {
        Some(t) => Some(repo.find_tree(t).context("read the old tree")?),
        None => None,
    };
    let new = repo.find_tree(new_tree).context("read the new tree")?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo.diff_tree_to_tree(old.as_ref(), Some(&new), Some(&mut opts)).context("compare trees")?;
    let mut index = repo.index().context("read the index")?;
    // The entries written with fresh stat data, for `write_index`.
    let mut added = Vec::new();
    for delta in diff.deltas() {
        let old_path = delta.old_file().path().map(Path::to_path_buf);
        let new_file = delta.new_file();
        match delta.status() {
            Delta::Deleted => {
                if let Some(p) = old_path {
                    remove_file(&co.path, &p)?;
                    let _ = index.remove_path(&p);
                }
            }
            Delta::Added | Delta::Modified | Delta::Typechange => {
                let Some(path) = new_file.path().map(Path::to_path_buf) else { continue };
                let mode: i32 = new_file.mode().into();
                if let Some(mut entry) =
                    index.get_path(&path, 0).filter(|e| e.flags_extended & SKIP_WORKTREE != 0)
                {
                    // Outside the sparse cone: the index follows the branch, the folder stays empty.
                    entry.id = new_file.id();
                    entry.mode = mode as u32;
                    index.add(&entry).context(format!("update the index entry of {}", path.display()))?;
                    continue;
                }
                let seen = path.to_str().and_then(|p| in_place.get(p));
                let current = fs::symlink_metadata(co.path.join(&path)).ok().map(|m| Stat::of(&m));
                let entry = match seen {
                    Some(seen) if current.as_ref() == Some(seen) => {
                        stat_entry(&co.path, &path, new_file.id(), mode)?
                    }
                    _ => write_file(repo, store, &co.path, &path, new_file.id(), mode)?,
                };
                index.add(&entry).context(format!("update the index entry of {}", path.display()))?;
                added.push(entry);
            }
            _ => {}
        }
    }
    write_index(repo, &mut index, &added)
}

/// Write `index`, to which `added` (entries with fresh stat data) were just added, so that git and
/// libgit2 trust the stat data of files that hold LFS content while their blob is the pointer.
///
/// Both re-read a file whose mtime is not older than the index file's own mtime ("racily clean"):
/// git compares whole seconds (`<=`; with USE_NSEC, and libgit2 with GIT_USE_NSEC, the full time),
/// and libgit2 also smudges such entries when it writes an index. Without git-lfs's clean filter
/// that re-read sees bytes that are not the committed pointer, and `git status` calls the file
/// modified. So when such a file has an mtime in the current second, the index is written once
/// the filesystem's clock has passed that second (index mtime second > file mtime second holds
/// for every variant of the rule): at most a second's wait, and none when no LFS content was
/// written. Files holding their blob's bytes need nothing: a re-read finds them unchanged.
pub fn write_index(repo: &Repository, index: &mut Index, added: &[IndexEntry]) -> Result<()> {
    let root = repo.workdir().map(Path::to_path_buf).unwrap_or_default();
    let odb = repo.odb().context("open the object database")?;
    let content: Vec<&IndexEntry> =
        added.iter().filter(|e| holds_other_bytes(repo, &odb, &root, e)).collect();
    let Some(newest) = content.iter().map(|e| e.mtime.seconds() as i64).max() else {
        return index.write().context("write the index");
    };
    let index_file = repo.path().join("index");
    let after = |second: i64| std::time::UNIX_EPOCH + Duration::from_secs((second + 1).max(0) as u64);
    // File timestamps come from the kernel's coarse clock, a tick behind the one `now` reads.
    let margin = Duration::from_millis(15);
    sleep_until(after(newest) + margin);
    for _ in 0..4 {
        index.write().context("write the index")?;
        let meta = fs::metadata(&index_file).map_err(|e| Error::io("stat", &index_file, e))?;
        let written = meta.modified().map_err(|e| Error::io("stat", &index_file, e))?;
        if written >= after(newest) {
            return Ok(());
        }
        // The filesystem's clock is behind ours (a file server's): wait by its clock, then write
        // again. libgit2 checks the entries it did not just add against the new index's mtime,
        // so the settled entries are added again first.
        let lag = after(newest).duration_since(written).unwrap_or_default();
        std::thread::sleep(lag.min(Duration::from_secs(2)) + margin);
        for e in &content {
            index.add(e).context("update an index entry")?;
        }
    }
    // The clock never passed: the files and the index are right, git only re-reads those files
    // (and, without git-lfs, calls them modified until `git add` refreshes them).
    Ok(())
}

/// Sleep until `t` by our clock, a second and a bit at most (a file server's clock may be ahead:
/// the check of the index's own mtime takes over then).
fn sleep_until(t: SystemTime) {
    if let Ok(wait) = t.duration_since(SystemTime::now()) {
        std::thread::sleep(wait.min(Duration::from_millis(1100)));
    }
}

/// Whether the file of `entry` holds bytes other than its blob: LFS content for a pointer. Blobs
/// too big to be a pointer are written as they are; in doubt, yes (the cost is a short wait).
fn holds_other_bytes(repo: &Repository, odb: &git2::Odb, root: &Path, entry: &IndexEntry) -> bool {
    use std::io::Read;
    if entry.mode == 0o120000 || entry.mode == 0o160000 {
        return false;
    }
    let Ok((size, _)) = odb.read_header(entry.id) else { return true };
    if size > MAX_POINTER_SIZE {
        return false;
    }
    if entry.file_size as usize != size {
        return true;
    }
    let Ok(blob) = repo.find_blob(entry.id) else { return true };
    if Pointer::from_blob(blob.content()).is_none() {
        return false;
    }
    let full = root.join(String::from_utf8_lossy(&entry.path).as_ref());
    let mut bytes = Vec::with_capacity(size + 1);
    match fs::File::open(full).and_then(|f| f.take(size as u64 + 1).read_to_end(&mut bytes)) {
        Ok(_) => bytes != blob.content(),
        Err(_) => true,
    }
}

/// The index entry flag git sets on paths outside a sparse checkout's cone.
const SKIP_WORKTREE: u16 = 1 << 14;

fn skip_worktree(index: &git2::Index, path: &str) -> bool {
    index.get_path(Path::new(path), 0).is_some_and(|e| e.flags_extended & SKIP_WORKTREE != 0)
}

/// Remove a worktree file (gone already is fine) and the folders it leaves empty, through the one
/// restore path: nothing below a symlink is touched.
pub fn remove_file(root: &Path, rel: &Path) -> Result<()> {
    crate::restore::remove_file(root, rel)
}

/// Write one file of a tree into a worktree through the one restore path (never through a link,
/// LFS content hashed while copied) and return its index entry (with fresh stat data).
pub fn write_file(
    repo: &Repository,
    store: &LfsStore,
    root: &Path,
    rel: &Path,
    oid: Oid,
    mode: i32,
) -> Result<IndexEntry> {
    crate::restore::restore_file(repo, store, root, rel, oid, mode)?;
    stat_entry(root, rel, oid, mode)
}

/// The index entry of a worktree file whose committed blob is `oid` (fresh stat data, so git sees
/// the file as unchanged without re-reading it). For files already in place, e.g. outputs that were
/// just committed from the worktree.
pub fn stat_entry(root: &Path, rel: &Path, oid: Oid, mode: i32) -> Result<IndexEntry> {
    use std::os::unix::fs::MetadataExt;
    let full = root.join(rel);
    let meta = fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
    let path = rel.to_string_lossy().into_owned().into_bytes();
    Ok(IndexEntry {
        ctime: IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
        mtime: IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        mode: mode as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        file_size: meta.len() as u32,
        id: oid,
        flags: (path.len().min(0xfff)) as u16,
        flags_extended: 0,
        path,
    })
}
