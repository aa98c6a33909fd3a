//! Checking an LFS object beside the reading of its table: a Parquet file is read out of order, so
//! it cannot be hashed as it is read (as the text formats are); a thread hashes it meanwhile, and
//! the reader asks for the verdict at the table's end, or when reading fails (so a corrupt object
//! is reported as corrupt, not as whatever the parser stumbled on). Nothing is committed from a
//! table before its reader reached the end, so corrupt bytes are never taken for data.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{corrupt_object, CORRUPT_HINT};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{hash_reader, LfsOid, Pointer};

/// A hash of an object's bytes under way.
pub(crate) struct ObjectCheck {
    thread: Option<JoinHandle<std::io::Result<(LfsOid, u64)>>>,
    stop: Arc<AtomicBool>,
    pointer: Pointer,
    name: String,
}

/// Reads a file from its start by position (`pread`), leaving the offset it shares with its
/// clones alone, until told to stop.
struct Positional {
    file: File,
    at: u64,
    stop: Arc<AtomicBool>,
}

impl Read for Positional {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped"));
        }
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl ObjectCheck {
    /// Start hashing `file` (the object of `pointer`; `name` says which file it is in errors).
    pub(crate) fn start(file: &File, pointer: Pointer, name: String) -> Result<ObjectCheck> {
        let clone = file.try_clone().map_err(super::read_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = Positional { file: clone, at: 0, stop: Arc::clone(&stop) };
        let thread = std::thread::Builder::new()
            .name("mlgit-object-check".into())
            .spawn(move || hash_reader(&mut reader))
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a hashing thread: {e}")))?;
        Ok(ObjectCheck { thread: Some(thread), stop, pointer, name })
    }

    /// Wait for the hash: an error unless the bytes are the object the pointer names.
    pub(crate) fn finish(mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let (oid, size) = thread
            .join()
            .map_err(|_| {
                Error::new(ErrorKind::Io, format!("the hash of {} stopped unexpectedly", self.name))
            })?
            .map_err(super::read_error)?;
        if oid != self.pointer.oid || size != self.pointer.size {
            return Err(Error::new(ErrorKind::Conflict, corrupt_object(&self.name, &self.pointer, size))
                .with_hint(CORRUPT_HINT));
        }
        Ok(())
    }
}

impl Drop for ObjectCheck {
    /// A reader dropped before the end (an error elsewhere): stop hashing.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
