//! The one restore path: how materialize, checkout, the worktree sync and train-tag write a tree's
//! files onto disk. It writes only inside its target:
//!
//! - every folder is opened from the target's descriptor with `O_NOFOLLOW`, so a symlink already in
//!   the target (in a parent folder too) is never written through. Where the tree has a folder and
//!   the target has a link or a file, the entry is replaced: the link itself is removed (never its
//!   target) and a real folder made; nothing is ever written below a link;
//! - a target inside any `.git` folder is refused (see [`Target::create`]);
//! - each file is written to a temporary name in its destination folder and renamed into place; LFS
//!   content is hashed while it is copied, and a mismatch (corrupt or truncated object) is exit 3,
//!   naming the path and the object, with the temporary file removed.

mod at;
mod target;

use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::lfs_tree::{read_pointer, TreeFile};
use crate::repo::tree::{list_files, validate_path};
use crate::repo::Repo;
use crate::store::{LfsOid, LfsStore, Pointer, Presence, CHUNK};
pub use target::Target;

/// The marker present at the top of a folder while a tree is being restored into it. A tree
/// file or folder of the same name is written after the marker is removed, so it is never lost.
pub const INCOMPLETE_MARKER: &str = ".mlgit-incomplete";

/// Counts of what [`restore_tree`] wrote.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Written {
    pub files: u64,
    pub lfs_files: u64,
    pub bytes: u64,
}

/// Write the files of `tree` that `filter` accepts into `into` (created if missing; entries at
/// the same paths are replaced, other files are left alone). Every LFS object needed is checked
/// to be present with its size before the first file is written.
pub fn restore_tree(
    repo: &Repo,
    tree: Oid,
    into: &Path,
    filter: &(dyn Fn(&str) -> bool + Sync),
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<Written> {
    let files = classify(repo, tree, filter)?;
    let target = Target::create(repo.git(), into)?;
    let (late, early): (Vec<&TreeFile>, Vec<&TreeFile>) =
        files.iter().partition(|f| first_component(&f.entry.path) == INCOMPLETE_MARKER);
    let marker = at::c_name(OsStr::new(INCOMPLETE_MARKER)).map_err(|e| Error::io("write", into, e))?;
    // A marker already there means an earlier run stopped half-way: a killed one may have left
    // temporary files in the folders it was writing.
    let resumed = at::kind(target.fd(), &marker).map_err(|e| Error::io("read", into, e))?.is_some();
    write_marker(&target, &marker)?;

    // Folders first, parents before children, each made once (replacing a link or file in the way).
    let mut dirs: Vec<&str> = early.iter().filter_map(|f| parent(&f.entry.path)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in &dirs {
        target.dir(Path::new(d), true)?;
    }
    if resumed {
        for d in std::iter::once("").chain(dirs.iter().copied()) {
            remove_stale_temp_files(&target, d)?;
        }
    }

    let total: u64 = files.iter().map(|f| f.pointer.map(|p| p.size).unwrap_or(0)).sum();
    progress.begin("restoring", files.len() as u64, total);
    let store = repo.store();
    let git_dir = repo.git().path().to_path_buf();
    let bytes = AtomicU64::new(0);
    early
        .par_iter()
        .map_init(
            // Each worker keeps the last folder it wrote into open: files are in path order, so
            // most files of a folder go to the same worker.
            || (Repository::open(&git_dir), None::<(String, OwnedFd)>),
            |(git, cache), f| -> Result<()> {
                interrupt.check("writing the files")?;
                let git = git.as_ref().map_err(open_error)?;
                let dir_rel = parent(&f.entry.path).unwrap_or("");
                if cache.as_ref().map(|(d, _)| d.as_str()) != Some(dir_rel) {
                    // Folders exist by now: open them without creating or replacing anything.
                    *cache = Some((dir_rel.to_string(), target.dir(Path::new(dir_rel), false)?));
                }
                let Some((_, dir)) = cache.as_ref() else { return Ok(()) };
                let n = write_entry(git, store, dir.as_fd(), target.path(), f)?;
                bytes.fetch_add(n, Ordering::Relaxed);
                progress.advance(1, f.pointer.map(|p| p.size).unwrap_or(0));
                Ok(())
            },
        )
        .collect::<Result<()>>()?;
    at::unlink(target.fd(), &marker).map_err(|e| Error::io("remove", &into.join(INCOMPLETE_MARKER), e))?;
    for f in late {
        interrupt.check("writing the files")?;
        let dir = target.dir(Path::new(parent(&f.entry.path).unwrap_or("")), true)?;
        let n = write_entry(repo.git(), store, dir.as_fd(), target.path(), f)?;
        bytes.fetch_add(n, Ordering::Relaxed);
        progress.advance(1, f.pointer.map(|p| p.size).unwrap_or(0));
    }
    progress.end();
    Ok(Written {
        files: files.len() as u64,
        lfs_files: files.iter().filter(|f| f.pointer.is_some()).count() as u64,
        bytes: bytes.into_inner(),
    })
}

/// Write one file of a tree into a worktree (`rel` relative to its top), LFS content resolved
/// from the store when the object is there (pointer text otherwise, as git-lfs leaves it).
pub fn restore_file(
    git: &Repository,
    store: &LfsStore,
    root: &Path,
    rel: &Path,
    oid: Oid,
    mode: i32,
) -> Result<()> {
    let target = Target::worktree(root)?;
    let path = rel.to_str().ok_or_else(|| {
        Error::invalid(format!("cannot write {}: the path is not UTF-8", rel.display()))
            .with_hint("rename the file in the tree; mlgit stores UTF-8 paths only")
    })?;
    validate_path(path)?;
    let mode = match mode {
        0o120000 => FileMode::Link,
        0o100755 => FileMode::BlobExecutable,
        _ => FileMode::Blob,
    };
    let pointer = if mode == FileMode::Link {
        None
    } else {
        let odb = git.odb().context("open the object database")?;
        read_pointer(git, &odb, oid)?.filter(|p| store.presence(p) != Presence::Missing)
    };
    let file =
        TreeFile { entry: crate::repo::tree::FileEntry { path: path.to_string(), oid, mode }, pointer };
    let dir = target.dir(Path::new(parent(path).unwrap_or("")), true)?;
    write_entry(git, store, dir.as_fd(), root, &file)?;
    Ok(())
}

/// Remove one file of a worktree (gone already is fine) and the folders it leaves empty. A path
/// below a link is not the worktree's: nothing is removed there.
pub fn remove_file(root: &Path, rel: &Path) -> Result<()> {
    let target = Target::worktree(root)?;
    let names = target::names(rel)?;
    let Some((name, parents)) = names.split_last() else { return Ok(()) };
    let parent_rel: PathBuf = parents.iter().collect();
    let Some(chain) = target.existing_chain(&parent_rel)? else { return Ok(()) };
    let Some(dir) = chain.last() else { return Ok(()) };
    let c = at::c_name(name).map_err(|e| Error::io("remove", &root.join(rel), e))?;
    match at::unlink(dir.as_fd(), &c) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(Error::io("remove", &root.join(rel), e)),
    }
    // Remove the folders left empty, deepest first, as git checkout does.
    for (i, name) in parents.iter().enumerate().rev() {
        let c = at::c_name(name).map_err(|e| Error::io("remove", &root.join(rel), e))?;
        if at::rmdir(chain[i].as_fd(), &c).is_err() {
            break;
        }
    }
    Ok(())
}

/// The files of `tree` that `filter` accepts, with their pointers; fails before anything is
/// written when an LFS object is missing or has the wrong size.
fn classify(repo: &Repo, tree: Oid, filter: &(dyn Fn(&str) -> bool + Sync)) -> Result<Vec<TreeFile>> {
    let entries: Vec<_> = list_files(repo.git(), tree)?.into_iter().filter(|f| filter(&f.path)).collect();
    for f in &entries {
        validate_path(&f.path)?;
    }
    let store = repo.store();
    let git_dir = repo.git().path().to_path_buf();
    let files: Vec<(TreeFile, Presence)> = entries
        .into_par_iter()
        .map_init(
            || Repository::open(&git_dir),
            |git, entry| -> Result<(TreeFile, Presence)> {
                let git = git.as_ref().map_err(open_error)?;
                let pointer = if entry.mode == FileMode::Link {
                    None
                } else {
                    let odb = git.odb().context("open the object database")?;
                    read_pointer(git, &odb, entry.oid)?
                };
                let presence = pointer.map(|p| store.presence(&p)).unwrap_or(Presence::Present);
                Ok((TreeFile { entry, pointer }, presence))
            },
        )
        .collect::<Result<_>>()?;
    let listed = |want: fn(&Presence) -> bool| -> (usize, String) {
        let paths: Vec<String> = files
            .iter()
            .filter(|(_, p)| want(p))
            .map(|(f, _)| match f.pointer {
                Some(p) => format!("{} (object {})", f.entry.path, p.oid),
                None => f.entry.path.clone(),
            })
            .collect();
        let more = if paths.len() > 10 { format!(" and {} more", paths.len() - 10) } else { String::new() };
        (paths.len(), format!("{}{more}", paths.iter().take(10).cloned().collect::<Vec<_>>().join(", ")))
    };
    let (corrupt, list) = listed(|p| matches!(p, Presence::WrongSize(_)));
    if corrupt > 0 {
        return Err(Error::new(
            ErrorKind::CheckFailed,
            format!("{corrupt} LFS object(s) in the local store are corrupt (wrong size), for: {list}"),
        )
        .with_hint("repair them with `mlgit verify --repair <ref>` (or delete them and `git lfs fetch` again); nothing was written"));
    }
    let (missing, list) = listed(|p| *p == Presence::Missing);
    if missing > 0 {
        return Err(Error::not_found(format!("{missing} LFS object(s) are not in the local store, for: {list}"))
            .with_hint("fetch them with `git lfs fetch origin <ref>` (or `git lfs pull`), then retry; nothing was written"));
    }
    Ok(files.into_iter().map(|(f, _)| f).collect())
}

fn first_component(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(dir, _)| dir)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, name)| name).unwrap_or(path)
}

fn open_error(e: &git2::Error) -> Error {
    Error::new(ErrorKind::Git, format!("cannot open the repository: {e}"))
}

fn write_marker(target: &Target, marker: &CString) -> Result<()> {
    let path = target.path().join(INCOMPLETE_MARKER);
    let mut tmp = Temp::new(target.fd(), &path, 0o644)?;
    if let Some(f) = tmp.file.as_mut() {
        f.write_all(b"mlgit is writing this folder; if this file stays, the run failed\n")
            .map_err(|e| Error::io("write", &path, e))?;
    }
    tmp.commit(marker, &path)
}

/// Remove the temporary files (`.mlgit-tmp-<pid>-<n>`) a killed run left in the folders `dirs`
/// (relative to the checkout `root`; "" is the root) of a checkout. Folders that do not exist, or
/// that a symlink stands in for, are left alone.
pub fn remove_temp_files(root: &Path, dirs: &[String]) -> Result<()> {
    let target = Target::worktree(root)?;
    for rel in dirs {
        let Some(chain) = target.existing_chain(Path::new(rel))? else { continue };
        let Some(dir) = chain.last() else { continue };
        unlink_temp_files(dir.as_fd(), &root.join(rel))?;
    }
    Ok(())
}

/// Remove the temporary files a killed run left in the target folder `rel`.
fn remove_stale_temp_files(target: &Target, rel: &str) -> Result<()> {
    let dir = target.dir(Path::new(rel), false)?;
    unlink_temp_files(dir.as_fd(), &target.path().join(rel))
}

/// Unlink every `.mlgit-tmp-*` entry of the open folder `dir` (at `path`, for messages).
fn unlink_temp_files(dir: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let listing = dir.try_clone_to_owned().and_then(at::list).map_err(|e| Error::io("read", path, e))?;
    for name in listing.iter().filter(|n| is_temp_name(n.to_bytes())) {
        match at::unlink(dir, name) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(Error::io("remove", &path.join(name.to_string_lossy().as_ref()), e)),
        }
    }
    Ok(())
}

/// Whether a name is one [`Temp`] makes: `.mlgit-tmp-<pid>-<n>`.
fn is_temp_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b".mlgit-tmp-") else { return false };
    let mut parts = rest.split(|b| *b == b'-');
    let digits = |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// A temporary entry in a destination folder, removed unless renamed into place.
struct Temp<'a> {
    dir: BorrowedFd<'a>,
    name: CString,
    file: Option<std::fs::File>,
    done: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl<'a> Temp<'a> {
    fn fresh_name() -> CString {
        static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let pid = *PID.get_or_init(std::process::id);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // A pid and a counter: no NUL inside, so this cannot fail.
        CString::new(format!(".mlgit-tmp-{pid}-{n}")).unwrap_or_default()
    }

    /// A new file, created exclusively (never an existing entry, never through a link).
    fn new(dir: BorrowedFd<'a>, dest: &Path, mode: u32) -> Result<Temp<'a>> {
        loop {
            let name = Temp::fresh_name();
            match at::create_new(dir, &name, mode) {
                Ok(file) => return Ok(Temp { dir, name, file: Some(file), done: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create a file beside", dest, e)),
            }
        }
    }

    /// A new symlink.
    fn symlink(dir: BorrowedFd<'a>, dest: &Path, target: &[u8]) -> Result<Temp<'a>> {
        loop {
            let name = Temp::fresh_name();
            match at::symlink(target, dir, &name) {
                Ok(()) => return Ok(Temp { dir, name, file: None, done: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create the symlink", dest, e)),
            }
        }
    }

    /// Rename into place as `name`, replacing what is there (a folder is removed first, through
    /// descriptors; a link is replaced itself).
    fn commit(mut self, name: &CString, dest: &Path) -> Result<()> {
        self.file = None;
        match at::rename(self.dir, &self.name, name) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
                ) =>
            {
                at::remove_entry(self.dir, name).map_err(|e| Error::io("replace", dest, e))?;
                at::rename(self.dir, &self.name, name).map_err(|e| Error::io("write", dest, e))?;
            }
            Err(e) => return Err(Error::io("write", dest, e)),
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.file = None;
            let _ = at::unlink(self.dir, &self.name);
        }
    }
}

/// Write one tree file into the open folder `dir` (its parent); returns the bytes written.
fn write_entry(
    git: &Repository,
    store: &LfsStore,
    dir: BorrowedFd<'_>,
    root: &Path,
    f: &TreeFile,
) -> Result<u64> {
    let dest = root.join(&f.entry.path);
    let name = at::c_name(OsStr::new(file_name(&f.entry.path))).map_err(|e| Error::io("write", &dest, e))?;
    if f.entry.mode == FileMode::Link {
        let blob = git.find_blob(f.entry.oid).context(format!("read {}", f.entry.path))?;
        Temp::symlink(dir, &dest, blob.content())?.commit(&name, &dest)?;
        return Ok(0);
    }
    let mode = if f.entry.mode == FileMode::BlobExecutable { 0o755 } else { 0o644 };
    let fill = |out: &mut std::fs::File| -> Result<u64> {
        match f.pointer {
            Some(p) => copy_object(store, &p, Some(out), &f.entry.path, &dest),
            None => {
                let blob = git.find_blob(f.entry.oid).context(format!("read {}", f.entry.path))?;
                out.write_all(blob.content()).map_err(|e| Error::io("write", &dest, e))?;
                Ok(blob.size() as u64)
            }
        }
    };
    // Nothing at the name yet (a fresh folder): create the file itself exclusively — never an
    // existing entry, never through a link — and remove it again if its content is refused. That
    // spares a rename per file; only a name already taken goes through a temporary file.
    match at::create_new(dir, &name, mode) {
        Ok(mut out) => {
            let written = fill(&mut out);
            if written.is_err() {
                drop(out);
                let _ = at::unlink(dir, &name);
            }
            return written;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create", &dest, e)),
    }
    let mut tmp = Temp::new(dir, &dest, mode)?;
    let written = match tmp.file.as_mut() {
        Some(out) => fill(out)?,
        None => 0,
    };
    tmp.commit(&name, &dest)?;
    Ok(written)
}

/// Copy an LFS object into `out` while hashing it; a wrong hash or size is a check failure.
fn copy_object(
    store: &LfsStore,
    p: &Pointer,
    out: Option<&mut std::fs::File>,
    path: &str,
    dest: &Path,
) -> Result<u64> {
    let Some(out) = out else { return Ok(0) };
    let mut src = store.open(p)?;
    let object = store.object_path(&p.oid);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; (p.size as usize).clamp(1, CHUNK)];
    // Read exactly the pointer's size (no extra read for the end of the file): fewer bytes is a
    // truncated object; bytes beyond it are not copied, and `presence` already saw the size.
    let mut size = 0u64;
    while size < p.size {
        let want = buf.len().min((p.size - size) as usize);
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", &object, e)),
        };
        size += n as u64;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io("write", dest, e))?;
    }
    let oid = LfsOid(hasher.finalize().into());
    if size != p.size || oid != p.oid {
        return Err(corrupt_object(path, p, size, &object));
    }
    Ok(size)
}

/// The error for an object whose bytes are not what its pointer says.
pub fn corrupt_object(path: &str, p: &Pointer, size: u64, object: &Path) -> Error {
    let what = if size != p.size {
        format!("it has {size} bytes where its pointer says {}", p.size)
    } else {
        "its bytes do not hash to its name".to_string()
    };
    Error::new(
        ErrorKind::CheckFailed,
        format!("LFS object {} for {path} is corrupt: {what} ({}); {path} was not written", p.oid, object.display()),
    )
    .with_hint("repair the store with `mlgit verify --repair <ref>` (or delete the object and `git lfs fetch` it again), then retry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised_exactly() {
        assert!(is_temp_name(Temp::fresh_name().to_bytes()));
        assert!(is_temp_name(b".mlgit-tmp-12-0"));
        for other in [
            &b".mlgit-tmp-12"[..],
            b".mlgit-tmp-1-2-3",
            b".mlgit-tmp-a-1",
            b"mlgit-tmp-1-2",
            b".mlgit-tmp--1",
        ] {
            assert!(!is_temp_name(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn remove_file_never_removes_below_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("wt"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("x"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        remove_file(&root, Path::new("link/x")).unwrap();
        assert!(outside.join("x").exists(), "removed a file through a link");
        std::fs::write(root.join("a/b/f"), b"x").unwrap();
        remove_file(&root, Path::new("a/b/f")).unwrap();
        assert!(!root.join("a").exists(), "folders left empty are removed");
        assert!(root.exists());
        assert!(remove_file(&root, Path::new("../outside/x")).is_err());
        assert!(outside.join("x").exists());
    }
}
