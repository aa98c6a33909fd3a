//! Advisory locks between mlgit processes (a checked-out worktree several processes update, a
//! stable branch a training runs on): a file under `.git/mlgit/locks/` held with flock(2), so the
//! kernel releases it when the holder exits, however it exits — a killed process leaves no stale lock.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

/// The outcome of [`FileLock::try_acquire`].
#[derive(Debug)]
pub enum TryLock {
    Acquired(FileLock),
    /// Another process holds it; its own description of itself.
    Busy {
        holder: String,
    },
}

impl FileLock {
    /// Take the lock at `path` now, or say who holds it. `holder` describes this process for others
    /// (e.g. "mlgit train-tag").
    pub fn try_acquire(path: &Path, holder: &str) -> Result<TryLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open the lock file", path, e))?;
        // flock(2) rather than File::try_lock, which needs a newer Rust than the crate's MSRV.
        // SAFETY: flock on a file descriptor owned by `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::io("lock", path, err));
            }
            let holder = fs::read_to_string(path).unwrap_or_default().trim().to_string();
            return Ok(TryLock::Busy { holder });
        }
        // Who holds it, for the messages of waiting processes (the lock itself is what counts).
        let _ = file.set_len(0);
        let _ = writeln!(file, "{holder} (pid {} on {})", std::process::id(), super::host_name());
        Ok(TryLock::Acquired(FileLock { _file: file, path: path.to_path_buf() }))
    }

    /// Wait up to `timeout` for the lock at `path`, for `what` (named in the error on time-out).
    pub fn acquire(path: &Path, what: &str, timeout: Duration) -> Result<FileLock> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match Self::try_acquire(path, what)? {
                TryLock::Acquired(lock) => return Ok(lock),
                TryLock::Busy { holder } => {
                    if start.elapsed() >= timeout {
                        return Err(Error::conflict(format!(
                            "{what} is busy: {holder} has held it for over {} s",
                            timeout.as_secs()
                        ))
                        .with_hint("wait for that process to finish, then retry"));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file for `name` under a repository's common git dir.
pub fn lock_path(git: &git2::Repository, name: &str) -> PathBuf {
    git.commondir().join("mlgit").join("locks").join(format!("{}.lock", encode_name(name)))
}

/// A ref-like name as one file name: '%' and '/' percent-encoded, so `a/b` and `a%2Fb` never share
/// a file.
pub fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// The inverse of [`encode_name`].
pub fn decode_name(file: &str) -> String {
    file.replace("%2F", "/").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_names_never_collide() {
        assert_ne!(encode_name("exp/a"), encode_name("exp%2Fa"));
        for n in ["exp/a", "exp%2Fa", "a%25/b", "raw"] {
            assert_eq!(decode_name(&encode_name(n)), n);
        }
    }

    #[test]
    fn a_held_lock_is_busy_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let held = FileLock::acquire(&path, "the test", Duration::from_secs(1)).unwrap();
        match FileLock::try_acquire(&path, "other").unwrap() {
            TryLock::Busy { holder } => assert!(holder.starts_with("the test (pid"), "{holder}"),
            TryLock::Acquired(_) => panic!("a held lock was taken twice"),
        }
        let err = FileLock::acquire(&path, "the checkout", Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("the checkout is busy"), "{err}");
        drop(held);
        FileLock::acquire(&path, "the test", Duration::ZERO).unwrap();
    }
}
