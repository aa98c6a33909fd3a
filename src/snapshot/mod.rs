//! Snapshots: a `stable/*` commit holding code, the `data/` tree of a split commit, the trained model
//! and its tracking record, and the annotated tag on it. `stable update` prepares the branch,
//! `train-tag` makes the snapshot, `show` and `checkout` read it back.

pub mod checkout;
pub mod mlruns;
pub mod record;
pub mod show;
pub mod stable;
pub mod train_tag;

use std::fs;
use std::io::Write as _;

use git2::Repository;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::repo::host_name;
use crate::repo::tree::TreeEdits;

/// The folder of a snapshot tree that holds the data grafted from `split`.
pub const DATA_DIR: &str = "data";

/// Remove every configured output path (and the tracking record) from a tree under construction.
pub(crate) fn remove_outputs(edits: &mut TreeEdits, config: &Config) -> Result<()> {
    for out in &config.snapshot.outputs {
        let path = out.trim_end_matches('/');
        if !path.is_empty() {
            edits.remove(path)?;
        }
    }
    edits.remove(crate::status::RUN_RECORD)
}

/// Whether `path` (a '/'-separated file path) is one of the configured outputs or below one.
pub fn is_output(config: &Config, path: &str) -> bool {
    path == crate::status::RUN_RECORD
        || config.snapshot.outputs.iter().any(|out| {
            let dir = out.trim_end_matches('/');
            !dir.is_empty()
                && (path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/')))
        })
}

/// The per-branch lock of a stable branch, held by `train-tag` for the whole run and by `stable
/// update` while it writes: a file under the common git dir held with flock(2), so it is released
/// when the process ends however it ends. Runs in one worktree would overwrite each other's
/// outputs, and an update would change the data under a running training.
pub(crate) struct BranchLock {
    _file: fs::File,
}

impl BranchLock {
    /// Take the lock of `branch` for `what` (e.g. "mlgit train-tag"), or refuse at once.
    pub(crate) fn acquire(git: &Repository, branch: &str, what: &str) -> Result<BranchLock> {
        let dir = git.commondir().join("mlgit").join("locks");
        fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let path = dir.join(format!("train-{}.lock", branch.replace('/', "%2F")));
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        use std::os::unix::io::AsRawFd;
        // flock(2) rather than File::try_lock, which needs a newer Rust than the crate's MSRV.
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::io("lock", &path, err));
            }
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::conflict(format!("'{branch}' is busy: {} is running on it", holder.trim()))
                .with_hint(format!(
                    "wait for it to finish, then retry `{what}` (or train on another stable/ branch)"
                )));
        }
        // Who holds it, for the message above (best effort: the lock itself is what counts).
        let _ = file.set_len(0);
        let _ = writeln!(file, "{what} (pid {} on {})", std::process::id(), host_name());
        Ok(BranchLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_match_files_and_folders_exactly() {
        let c = Config::default();
        assert!(is_output(&c, "model/model.json"));
        assert!(is_output(&c, "metrics.json"));
        assert!(is_output(&c, "tracking/run.json"));
        assert!(!is_output(&c, "modelx/a"));
        assert!(!is_output(&c, "train.sh"));
        assert!(!is_output(&c, "sub/metrics.json"));
    }
}
