//! A lock file serialising mlgit processes around one shared resource (e.g. a checked-out worktree
//! that several processes update): created with `O_EXCL`, removed when dropped. A process killed
//! while holding it leaves the file behind; waiters then time out with a hint naming it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A held lock; the file is removed on drop.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
}

impl FileLock {
    /// Wait up to `timeout` for the lock at `path` (its folder is created), for `what` (named in
    /// the error when it times out).
    pub fn acquire(path: &Path, what: &str, timeout: Duration) -> Result<FileLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    // The holder's pid, for a human looking at a stale lock.
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(FileLock { path: path.to_path_buf() });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() >= timeout {
                        return Err(Error::conflict(format!(
                            "another mlgit process holds {} ({what}) for over {} s",
                            path.display(),
                            timeout.as_secs()
                        ))
                        .with_hint(format!(
                            "wait for it to finish; if no mlgit process is running, remove {}",
                            path.display()
                        )));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::io("create the lock file", path, e)),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_blocks_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let held = FileLock::acquire(&path, "test", Duration::from_secs(1)).unwrap();
        let err = FileLock::acquire(&path, "test", Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("x.lock") && err.hint().unwrap().contains("remove"), "{err}");
        drop(held);
        assert!(!path.exists());
        FileLock::acquire(&path, "test", Duration::ZERO).unwrap();
    }
}
