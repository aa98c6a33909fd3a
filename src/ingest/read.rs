//! Reading what the walk listed: each file is opened once with `O_NOFOLLOW | O_NONBLOCK`, checked on
//! the open descriptor against what the walk saw, and hashed while it is copied into the LFS store
//! (or written as a git blob).

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::walk::WalkedFile;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::store::{hash_reader, LfsOid, LfsStore, Pointer, CHUNK};

/// A file after reading: its content's identity and the blob its tree entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub sha256: LfsOid,
    pub size: u64,
    /// The pointer's blob (LFS) or the content's blob.
    pub blob: Oid,
    pub lfs: bool,
    pub mode: FileMode,
}

/// A repository handle per worker, opened only when a worker needs git (plain blobs): LFS files
/// never touch the object database.
pub struct LazyRepo<'a> {
    path: &'a Path,
    repo: Option<Repository>,
}

impl<'a> LazyRepo<'a> {
    /// `git_dir`: the repository's `.git` (or a worktree's git folder).
    pub fn new(git_dir: &'a Path) -> LazyRepo<'a> {
        LazyRepo { path: git_dir, repo: None }
    }

    pub fn get(&mut self) -> Result<&Repository> {
        if self.repo.is_none() {
            self.repo = Some(Repository::open(self.path).context(format!("open {}", self.path.display()))?);
        }
        self.repo.as_ref().ok_or_else(|| Error::new(ErrorKind::Git, "cannot open the repository"))
    }
}

/// Read one walked file once and store it: into the LFS store when `lfs` (then the pointer's blob
/// is computed, not written: callers write pointers with their trees), else as a git blob. With
/// `dry_run` nothing is written, only hashed.
pub fn ingest_file(
    git: &mut LazyRepo<'_>,
    store: &LfsStore,
    file: &WalkedFile,
    lfs: bool,
    dry_run: bool,
) -> Result<Ingested> {
    let path = file.path.as_path();
    let mut fd = open_checked(file)?;
    let size = file.size();
    let (sha256, blob) = if lfs {
        let pointer = if dry_run {
            let (oid, n) = hash_reader(&mut fd).map_err(|e| read_error(path, e))?;
            Pointer { oid, size: n }
        } else if size <= CHUNK as u64 {
            store.store_bytes(&read_whole(&mut fd, path, size)?)?.pointer
        } else {
            store.store_reader(&mut fd, path)?.pointer
        };
        check_after(&fd, file, pointer.size)?;
        (pointer.oid, pointer.blob_id())
    } else {
        // A plain git blob: at most lfs.max_blob_size bytes, so it is read whole.
        let data = read_whole(&mut fd, path, size)?;
        check_after(&fd, file, data.len() as u64)?;
        let sha256 = LfsOid(Sha256::digest(&data).into());
        let blob = if dry_run {
            Oid::hash_object(git2::ObjectType::Blob, &data).context("hash a blob")?
        } else {
            git.get()?.blob(&data).context(format!("write the blob of {}", path.display()))?
        };
        (sha256, blob)
    };
    Ok(Ingested { sha256, size, blob, lfs, mode: file.mode() })
}

/// Ingest every file in parallel (the walk's order is kept); `lfs(file)` is the caller's
/// blob-or-LFS decision (an [`super::LfsRule`] on the file's tree path). Stops at the first error,
/// or when `interrupt` is set. Advances `progress` by one file and its bytes per file (the caller
/// begins and ends it). Pointer blobs are not written: see [`write_pointer_blobs`].
pub fn ingest_files(
    git_dir: &Path,
    store: &LfsStore,
    files: &[WalkedFile],
    lfs: &(dyn Fn(&WalkedFile) -> bool + Sync),
    interrupt: &Interrupt,
    what: &str,
    progress: &dyn Progress,
) -> Result<Vec<Ingested>> {
    let bytes = AtomicU64::new(0);
    files
        .par_iter()
        .map_init(
            || LazyRepo::new(git_dir),
            |git, f| {
                interrupt.check(what)?;
                let r = ingest_file(git, store, f, lfs(f), false)?;
                bytes.fetch_add(r.size, Ordering::Relaxed);
                progress.advance(1, r.size);
                Ok(r)
            },
        )
        .collect()
}

/// Write the pointer blobs of the LFS files among `ingested` into the object database (commit-data
/// writes its own into one pack instead).
pub fn write_pointer_blobs(git: &Repository, ingested: &[Ingested]) -> Result<()> {
    for i in ingested.iter().filter(|i| i.lfs) {
        let id =
            git.blob(&Pointer { oid: i.sha256, size: i.size }.to_bytes()).context("write a pointer blob")?;
        debug_assert_eq!(id, i.blob);
    }
    Ok(())
}

/// Open without following a symlink and without blocking on a FIFO, then check on the descriptor
/// that it is the regular file the walk saw (same device and inode, size and mtime).
fn open_checked(file: &WalkedFile) -> Result<File> {
    let path = file.path.as_path();
    let fd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => swapped(path, "it is now a symlink"),
            _ => read_error(path, e),
        })?;
    let now = fd.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !now.is_file() {
        return Err(swapped(path, "it is no longer a regular file"));
    }
    let seen = &file.meta;
    if now.dev() != seen.dev() || now.ino() != seen.ino() {
        return Err(swapped(path, "it is now a different file"));
    }
    if !same_content_stat(seen, &now) {
        return Err(changed_while_reading(path));
    }
    Ok(fd)
}

fn read_whole(fd: &mut File, path: &Path, size: u64) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size.min(CHUNK as u64 * 64) as usize);
    fd.read_to_end(&mut data).map_err(|e| read_error(path, e))?;
    Ok(data)
}

/// The descriptor must still show what the walk saw, and the read must have got every byte.
fn check_after(fd: &File, file: &WalkedFile, read: u64) -> Result<()> {
    let after = fd.metadata().map_err(|e| Error::io("stat", &file.path, e))?;
    if read != file.size() || !same_content_stat(&file.meta, &after) {
        return Err(changed_while_reading(&file.path));
    }
    Ok(())
}

fn same_content_stat(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.mtime() == b.mtime() && a.mtime_nsec() == b.mtime_nsec()
}

fn swapped(path: &Path, what: &str) -> Error {
    Error::conflict(format!(
        "{} was replaced after the folder was listed ({what}); it was not read",
        path.display()
    ))
    .with_hint("files must stay in place while mlgit reads the folder: wait until whatever changes it has finished, then run the command again; nothing was committed")
}

fn changed_while_reading(path: &Path) -> Error {
    Error::conflict(format!("{} changed while it was being read", path.display()))
        .with_hint("wait until whatever writes the folder has finished, then run the command again; nothing was committed")
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::io("read", path, e).with_hint(format!(
        "make {} readable by this user (or move it out of the folder); nothing was committed",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{walk, Policy};

    #[test]
    fn a_file_swapped_for_a_symlink_after_the_walk_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("a.bin"), b"public").unwrap();
        fs::write(dir.path().join("secret"), b"SECRET").unwrap();
        let files = walk(&src, &[], &Policy::default()).unwrap();
        fs::remove_file(src.join("a.bin")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), src.join("a.bin")).unwrap();
        let store = LfsStore::new(&dir.path().join(".git"));
        let git_dir = dir.path().join("nogit");
        let err = ingest_file(&mut LazyRepo::new(&git_dir), &store, &files[0], true, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.message().contains("now a symlink"), "{}", err.message());
    }
}
