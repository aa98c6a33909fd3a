//! Snapshots: a `stable/*` commit holding code, the `data/` tree of a split commit, the trained model
//! and its tracking record, and the annotated tag on it. `stable update` prepares the branch,
//! `train-tag` makes the snapshot, `show` and `checkout` read it back.

pub mod checkout;
pub mod mlruns;
pub mod record;
pub mod show;
pub mod stable;
pub mod train_tag;

use crate::config::Config;
use crate::error::Result;
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
