//! The Git LFS compatible object store (`<git common dir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`):
//! content is hashed while it is copied in (one read per file) and written through a temporary file
//! and a rename. A good object is never overwritten; one whose size is wrong (truncated by a crash,
//! a full disk) is replaced by the new, correctly hashed bytes, so re-committing the original file
//! repairs it. Same-size corruption needs a re-hash: `mlgit verify --repair`.

pub mod attributes;
pub mod pointer;
pub mod stat_cache;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
pub use pointer::{LfsOid, Pointer};

/// Files up to this size are read into memory in one go; larger ones are streamed in chunks of this
/// size, so memory stays flat whatever the file sizes.
pub const CHUNK: usize = 1 << 20;

/// The local LFS store of a repository.
#[derive(Debug)]
pub struct LfsStore {
    objects: PathBuf,
    tmp: PathBuf,
    /// Fan-out folders known to exist, so each is created once and never stat'ed twice.
    known_dirs: Mutex<HashSet<[u8; 2]>>,
}

/// The result of storing one file.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub pointer: Pointer,
    /// False when the store already had the object.
    pub new: bool,
}

/// What [`LfsStore::presence`] found for one object, by its size alone (no re-hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Missing,
    /// There, but with this size instead of the pointer's: corrupt (truncated, or overwritten).
    WrongSize(u64),
    /// There with the right size (the content is trusted; `check` re-hashes it).
    Present,
}

/// What [`LfsStore::check`] found for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    Ok,
    Missing,
    /// The object's bytes do not hash to its name (or its size is wrong).
    Corrupt,
}

impl LfsStore {
    /// The store under `common_dir` (a repository's `.git`, shared by all its worktrees).
    pub fn new(common_dir: &Path) -> Self {
        let lfs = common_dir.join("lfs");
        LfsStore {
            objects: lfs.join("objects"),
            tmp: lfs.join("tmp"),
            known_dirs: Mutex::new(HashSet::new()),
        }
    }

    /// Where the object with this id lives.
    pub fn object_path(&self, oid: &LfsOid) -> PathBuf {
        let hex = oid.to_hex();
        self.objects.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Whether the store holds the object with the right size (the content is trusted; see `check`).
    pub fn contains(&self, pointer: &Pointer) -> bool {
        self.presence(pointer) == Presence::Present
    }

    /// The folder of temporary files (`lfs/tmp`), which `mlgit gc` cleans.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The folder of objects (`lfs/objects`).
    pub fn objects_dir(&self) -> &Path {
        &self.objects
    }

    /// Whether the store holds the object, and with the right size.
    pub fn presence(&self, pointer: &Pointer) -> Presence {
        match fs::metadata(self.object_path(&pointer.oid)) {
            Ok(m) if m.is_file() && m.len() == pointer.size => Presence::Present,
            Ok(m) => Presence::WrongSize(m.len()),
            Err(_) => Presence::Missing,
        }
    }

    /// Store the file at `path`: hash and copy in one pass. `expected` is the metadata the caller
    /// saw when it listed the file; if the file's size or mtime differ before or after the read, it
    /// changed while being read and is refused.
    pub fn store_file(&self, path: &Path, expected: Option<&fs::Metadata>) -> Result<Stored> {
        let mut file = File::open(path).map_err(|e| Error::io("read", path, e))?;
        let before = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        if let Some(seen) = expected {
            check_unchanged(path, seen, &before)?;
        }
        let stored = if before.len() <= CHUNK as u64 {
            let mut data = Vec::with_capacity(before.len() as usize);
            file.read_to_end(&mut data).map_err(|e| Error::io("read", path, e))?;
            self.store_bytes(&data)?
        } else {
            self.store_reader(&mut file, path)?
        };
        let after = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        check_unchanged(path, &before, &after)?;
        if stored.pointer.size != after.len() {
            return Err(changed_while_reading(path));
        }
        Ok(stored)
    }

    /// Store bytes already in memory.
    pub fn store_bytes(&self, data: &[u8]) -> Result<Stored> {
        let oid = LfsOid(Sha256::digest(data).into());
        let pointer = Pointer { oid, size: data.len() as u64 };
        if self.contains(&pointer) {
            return Ok(Stored { pointer, new: false });
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(data).map_err(|e| Error::io("write", tmp.path(), e))?;
        let new = self.persist(tmp, &oid, pointer.size)?;
        Ok(Stored { pointer, new })
    }

    /// Copy a large file (already opened, read from where it stands; `path` names it in errors)
    /// into a temporary file while hashing it, then move it into place.
    pub fn store_reader(&self, file: &mut impl Read, path: &Path) -> Result<Stored> {
        let (tmp, oid, size) = self.copy_hashing(file, path)?;
        let new = self.persist(tmp, &oid, size)?;
        Ok(Stored { pointer: Pointer { oid, size }, new })
    }

    /// Copy `file` into a new temporary file of the store, hashing it on the way.
    fn copy_hashing(
        &self,
        file: &mut impl Read,
        path: &Path,
    ) -> Result<(tempfile::NamedTempFile, LfsOid, u64)> {
        let mut tmp = self.temp_file()?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", path, e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(|e| Error::io("write", tmp.path(), e))?;
            size += n as u64;
        }
        Ok((tmp, LfsOid(hasher.finalize().into()), size))
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        use std::os::unix::fs::PermissionsExt;
        // Objects are read-only content anyone who can read the repository may read, as git-lfs
        // writes them (a temporary file would otherwise be 0600, and so would copies of it).
        let create =
            || tempfile::Builder::new().permissions(fs::Permissions::from_mode(0o644)).tempfile_in(&self.tmp);
        match create() {
            Ok(f) => Ok(f),
            Err(_) => {
                fs::create_dir_all(&self.tmp).map_err(|e| Error::io("create", &self.tmp, e))?;
                create().map_err(|e| Error::io("create a file in", &self.tmp, e))
            }
        }
    }

    /// Move a finished temporary file (`size` bytes just hashed to `oid`) to the object's path.
    /// A good object there is kept (the temporary file is dropped); one of the wrong size
    /// (truncated, half-copied by another tool) is replaced atomically: the temporary file is
    /// known good, the object known bad, so the no-clobber rule must not keep the damage.
    /// Returns whether the object was written.
    fn persist(&self, tmp: tempfile::NamedTempFile, oid: &LfsOid, size: u64) -> Result<bool> {
        let dest = self.object_path(oid);
        self.ensure_dir(oid, &dest)?;
        match tmp.persist_noclobber(&dest) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                if self.presence(&Pointer { oid: *oid, size }) == Presence::Present {
                    return Ok(false);
                }
                e.file.persist(&dest).map_err(|e| Error::io("replace", &dest, e.error))?;
                Ok(true)
            }
            Err(e) => Err(Error::io("write", &dest, e.error)),
        }
    }

    /// Where a download of `oid` in progress is kept, so that the next download resumes it.
    pub fn part_path(&self, oid: &LfsOid) -> PathBuf {
        self.tmp.join(format!("{}.part", oid.to_hex()))
    }

    /// A new, empty temporary file in `lfs/tmp` (readable by all, as objects are), for a copy
    /// that is checked before [`LfsStore::install_checked`] moves it into place.
    pub fn new_temp_file(&self) -> Result<tempfile::NamedTempFile> {
        self.temp_file()
    }

    /// Move `file` (in `lfs/tmp`), whose bytes the caller has just hashed to `pointer`, to the
    /// object's path. A good object already there is kept and `file` removed. Returns whether
    /// the object was written.
    pub fn install_checked(&self, file: &Path, pointer: &Pointer) -> Result<bool> {
        if self.contains(pointer) {
            let _ = fs::remove_file(file);
            return Ok(false);
        }
        let dest = self.object_path(&pointer.oid);
        self.ensure_dir(&pointer.oid, &dest)?;
        fs::rename(file, &dest).map_err(|e| Error::io("write", &dest, e))?;
        Ok(true)
    }

    /// Rewrite the object of `pointer` from `source` if the source's bytes hash right (hashed
    /// while copied, then renamed over whatever is in the store). Returns false, leaving the
    /// store untouched, when the source's content is something else.
    pub fn repair_from(&self, pointer: &Pointer, source: &Path) -> Result<bool> {
        let mut file = match File::open(source) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", source, e)),
        };
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() == pointer.size => {}
            Ok(_) => return Ok(false),
            Err(e) => return Err(Error::io("stat", source, e)),
        }
        let (tmp, oid, size) = self.copy_hashing(&mut file, source)?;
        if oid != pointer.oid || size != pointer.size {
            return Ok(false);
        }
        let dest = self.object_path(&pointer.oid);
        self.ensure_dir(&pointer.oid, &dest)?;
        tmp.persist(&dest).map_err(|e| Error::io("replace", &dest, e.error))?;
        Ok(true)
    }

    fn ensure_dir(&self, oid: &LfsOid, dest: &Path) -> Result<()> {
        let key = [oid.0[0], oid.0[1]];
        let known = self.known_dirs.lock().map(|set| set.contains(&key)).unwrap_or(false);
        if !known {
            let dir = dest.parent().unwrap_or(&self.objects);
            fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
            if let Ok(mut set) = self.known_dirs.lock() {
                set.insert(key);
            }
        }
        Ok(())
    }

    /// Open an object for reading.
    pub fn open(&self, pointer: &Pointer) -> Result<File> {
        let path = self.object_path(&pointer.oid);
        File::open(&path).map_err(|e| {
            Error::io("read LFS object", &path, e)
                .with_hint("fetch it with `git lfs fetch` (or `git lfs pull`), then retry; `mlgit verify` lists every missing object")
        })
    }

    /// Read a whole object into memory (for validation of small files).
    pub fn read(&self, pointer: &Pointer) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(pointer.size.min(64 << 20) as usize);
        self.open(pointer)?
            .read_to_end(&mut data)
            .map_err(|e| Error::io("read", &self.object_path(&pointer.oid), e))?;
        Ok(data)
    }

    /// Copy an object's content to `dest` (created or truncated), hashing it on the way: a
    /// missing object is NotFound, bytes that are not the object's are a check failure and leave
    /// no file at `dest`. (Trees are restored through `crate::restore`; this is for single files.)
    pub fn copy_to(&self, pointer: &Pointer, dest: &Path) -> Result<()> {
        let src = self.object_path(&pointer.oid);
        let mut input = File::open(&src).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::not_found(format!("LFS object {} is not in the local store", pointer.oid)).with_hint(
                    "fetch it with `git lfs fetch`, then retry; `mlgit verify` lists every missing object",
                )
            }
            _ => Error::io("read", &src, e),
        })?;
        let mut out = File::create(dest).map_err(|e| Error::io("write", dest, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; (pointer.size as usize).clamp(1, CHUNK)];
        let mut size = 0u64;
        let copied = loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Error::io("read", &src, e)),
            };
            size += n as u64;
            hasher.update(&buf[..n]);
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(Error::io("write", dest, e));
            }
        };
        let good = copied.is_ok() && size == pointer.size && LfsOid(hasher.finalize().into()) == pointer.oid;
        if !good {
            drop(out);
            let _ = fs::remove_file(dest);
            copied?;
            return Err(Error::new(
                ErrorKind::CheckFailed,
                format!("LFS object {} is corrupt ({size} bytes, its pointer says {}); {} was not written", pointer.oid, pointer.size, dest.display()),
            )
            .with_hint("repair the store with `mlgit verify --repair <ref>` (or delete the object and `git lfs fetch` it again)"));
        }
        Ok(())
    }

    /// Re-hash an object and compare it with its name and size.
    pub fn check(&self, pointer: &Pointer) -> Result<ObjectState> {
        let path = self.object_path(&pointer.oid);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ObjectState::Missing),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let (oid, size) = hash_reader(&mut file).map_err(|e| Error::io("read", &path, e))?;
        Ok(if oid == pointer.oid && size == pointer.size { ObjectState::Ok } else { ObjectState::Corrupt })
    }
}

/// SHA-256 and length of everything a reader yields, in fixed-size chunks.
pub fn hash_reader(reader: &mut impl Read) -> std::io::Result<(LfsOid, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((LfsOid(hasher.finalize().into()), size))
}

fn changed_while_reading(path: &Path) -> Error {
    Error::conflict(format!("{} changed while it was being read", path.display()))
        .with_hint("wait until whatever writes the folder has finished, then run the command again")
}

fn check_unchanged(path: &Path, a: &fs::Metadata, b: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if a.len() != b.len() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() {
        return Err(changed_while_reading(path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_small_and_large_files_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = LfsStore::new(&dir.path().join(".git"));
        let small = dir.path().join("small");
        fs::write(&small, b"hello\n").unwrap();
        let s = store.store_file(&small, None).unwrap();
        assert!(s.new);
        assert_eq!(
            s.pointer.oid.to_hex(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        let path = store.object_path(&s.pointer.oid);
        assert!(path.ends_with("58/91/5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"));
        assert_eq!(fs::read(&path).unwrap(), b"hello\n");
        assert!(!store.store_file(&small, None).unwrap().new);

        let large = dir.path().join("large");
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        fs::write(&large, &data).unwrap();
        let l = store.store_file(&large, None).unwrap();
        assert_eq!(l.pointer.size, data.len() as u64);
        assert_eq!(l.pointer.oid, LfsOid(Sha256::digest(&data).into()));
        assert_eq!(store.check(&l.pointer).unwrap(), ObjectState::Ok);
        assert_eq!(
            fs::read_dir(dir.path().join(".git/lfs/tmp")).unwrap().count(),
            0,
            "no temporary file left"
        );
    }

    #[test]
    fn a_wrong_size_object_is_replaced_and_a_good_one_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = LfsStore::new(dir.path());
        let s = store.store_bytes(b"hello world").unwrap();
        let path = store.object_path(&s.pointer.oid);
        fs::write(&path, b"hello").unwrap();
        assert_eq!(store.presence(&s.pointer), Presence::WrongSize(5));
        assert!(store.store_bytes(b"hello world").unwrap().new, "the truncated object is rewritten");
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
        // Same size, other bytes: not detectable without a re-hash, so left to `verify --repair`.
        fs::write(&path, b"hello WORLD").unwrap();
        assert!(!store.store_bytes(b"hello world").unwrap().new);
        let copy = dir.path().join("copy");
        let err = store.copy_to(&s.pointer, &copy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CheckFailed);
        assert!(!copy.exists(), "copy_to left the corrupt bytes behind");
        let source = dir.path().join("good");
        fs::write(&source, b"hello world").unwrap();
        let bad = dir.path().join("bad");
        fs::write(&bad, b"hello WORLD").unwrap();
        assert!(!store.repair_from(&s.pointer, &bad).unwrap(), "a source with other bytes is never used");
        assert!(store.repair_from(&s.pointer, &source).unwrap());
        assert_eq!(store.check(&s.pointer).unwrap(), ObjectState::Ok);
        store.copy_to(&s.pointer, &copy).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"hello world");
    }

    #[test]
    fn check_finds_missing_and_corrupt_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LfsStore::new(dir.path());
        let s = store.store_bytes(b"abc").unwrap();
        fs::write(store.object_path(&s.pointer.oid), b"abd").unwrap();
        assert_eq!(store.check(&s.pointer).unwrap(), ObjectState::Corrupt);
        fs::remove_file(store.object_path(&s.pointer.oid)).unwrap();
        assert_eq!(store.check(&s.pointer).unwrap(), ObjectState::Missing);
    }
}
