//! Snapshots: a `stable/*` commit holding code, the `data/` tree of a split commit, the trained model
//! and its tracking record, and the annotated tag on it. `stable update` prepares the branch,
//! `train-tag` makes the snapshot, `show` and `checkout` read it back.

pub mod checkout;
pub mod mlflow_sqlite;
pub mod mlruns;
pub mod record;
pub mod show;
pub mod stable;
pub mod train_tag;

use git2::Repository;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::repo::lock::{lock_path, FileLock, TryLock};
use crate::repo::tree::TreeEdits;

/// Where a snapshot keeps its tracking record.
pub const RUN_RECORD: &str = "tracking/run.json";

/// The folder of a snapshot tree that holds the data grafted from `split`.
pub const DATA_DIR: &str = "data";

/// The commit a tag names, if it names one (peeled through an annotated tag).
pub fn tag_commit(git: &Repository, tag: &str) -> Option<git2::Oid> {
    git.find_reference(&format!("refs/tags/{tag}")).ok().and_then(|r| r.peel_to_commit().ok()).map(|c| c.id())
}

/// The snapshot a tag names: its commit and tracking record. A tag that does not exist, or names a
/// commit without a record, is "unknown" with `hint` saying where snapshots come from.
pub fn tagged(git: &Repository, tag: &str, hint: &str) -> Result<(git2::Oid, record::RunRecord)> {
    let unknown = || {
        Error::not_found(format!("unknown tag '{tag}': it is not a snapshot of this repository"))
            .with_hint(hint)
    };
    let commit = tag_commit(git, tag).ok_or_else(unknown)?;
    let commit =
        git.find_commit(commit).map_err(|e| Error::git(format!("read the commit of tag '{tag}'"), e))?;
    let record = record::RunRecord::read(git, &commit)?.ok_or_else(unknown)?;
    Ok((commit.id(), record))
}

/// Remove every configured output path (and the tracking record) from a tree under construction.
pub(crate) fn remove_outputs(edits: &mut TreeEdits, config: &Config) -> Result<()> {
    for out in &config.snapshot.outputs {
        let path = out.trim_end_matches('/');
        if !path.is_empty() {
            edits.remove(path)?;
        }
    }
    edits.remove(RUN_RECORD)
}

/// Whether `path` (a '/'-separated file path) is one of the configured outputs or below one.
pub fn is_output(config: &Config, path: &str) -> bool {
    path == RUN_RECORD
        || config.snapshot.outputs.iter().any(|out| {
            let dir = out.trim_end_matches('/');
            !dir.is_empty()
                && (path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/')))
        })
}

/// The per-branch lock of a stable branch, held by `train-tag` for the whole run and by `stable
/// update` while it writes (see [`crate::repo::lock`]: released however the process ends). Runs in
/// one worktree would overwrite each other's outputs, and an update would change the data under a
/// running training.
pub(crate) struct BranchLock {
    _lock: FileLock,
}

impl BranchLock {
    /// Take the lock of `branch` for `what` (e.g. "mlgit train-tag"), or refuse at once.
    pub(crate) fn acquire(git: &Repository, branch: &str, what: &str) -> Result<BranchLock> {
        match FileLock::try_acquire(&lock_path(git, &format!("train-{branch}")), what)? {
            TryLock::Acquired(lock) => Ok(BranchLock { _lock: lock }),
            TryLock::Busy { holder } => Err(Error::conflict(format!(
                "'{branch}' is busy: {holder} is running on it"
            ))
            .with_hint(format!(
                "wait for it to finish, then retry `{what}` (or train on another stable/ branch)"
            ))),
        }
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
