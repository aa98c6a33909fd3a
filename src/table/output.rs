//! The file a table writer writes into: a temporary file of the LFS store, hashed (sha256) as it
//! is written, so that the finished output becomes an LFS object (or a blob) without being read
//! again.

use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{LfsOid, LfsStore, Pointer};

/// A buffered, hashing writer into a temporary file of the store.
pub struct HashingFile {
    file: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    size: u64,
}

/// A finished output: its temporary file and the pointer its bytes hash to.
pub struct Finished {
    pub file: tempfile::NamedTempFile,
    pub pointer: Pointer,
}

impl HashingFile {
    /// A new, empty output in the store's temporary folder.
    pub fn create(store: &LfsStore) -> Result<HashingFile> {
        let tmp = store.new_temp_file()?;
        Ok(HashingFile { file: BufWriter::with_capacity(1 << 20, tmp), hasher: Sha256::new(), size: 0 })
    }

    /// Flush and hash: the temporary file and its pointer.
    pub fn finish(self) -> Result<Finished> {
        let HashingFile { file, hasher, size } = self;
        let file = file.into_inner().map_err(|e| {
            let (err, writer) = e.into_parts();
            Error::io("write", writer.get_ref().path(), err)
        })?;
        Ok(Finished { file, pointer: Pointer { oid: LfsOid(hasher.finalize().into()), size } })
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
