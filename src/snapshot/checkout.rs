//! `mlgit checkout TAG --into DIR`: everything a snapshot's model needs — code, data, model — written
//! into a folder with LFS content resolved from the local store, then the model files checked
//! against the sha256 and size in the tracking record.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::show::read_snapshot;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::restore::restore_tree;
use crate::store::hash_reader;

#[derive(Debug, Clone, Serialize)]
pub struct CheckoutOutcome {
    pub tag: String,
    pub commit: String,
    pub into: PathBuf,
    pub files: u64,
    pub lfs_files: u64,
    pub bytes: u64,
    /// Model files checked against the tracking record.
    pub verified: Vec<String>,
}

/// One model file whose bytes differ from the tracking record.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub path: String,
    pub expected_sha256: String,
    pub actual_sha256: Option<String>,
}

/// Check the snapshot `rev` out into `into` (new or empty) through the one restore path; a corrupt
/// LFS object fails the run (exit 3) before its file is written.
pub fn checkout(
    repo: &Repo,
    rev: &str,
    into: &Path,
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<CheckoutOutcome> {
    let (commit, record) = read_snapshot(repo, rev)?;
    if fs::read_dir(into).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(Error::new(ErrorKind::AlreadyExists, format!("{} is not empty", into.display()))
            .with_hint("check a snapshot out into a new or empty folder, so no stale file sits beside it"));
    }
    let written = restore_tree(repo, commit.tree_id(), into, &|_| true, interrupt, progress)?;
    let mut verified = Vec::new();
    let mut bad = Vec::new();
    for m in &record.model {
        let full = into.join(&m.path);
        let actual = fs::File::open(&full).and_then(|mut f| hash_reader(&mut f)).ok();
        match actual {
            Some((oid, size)) if oid.to_hex() == m.sha256 && size == m.size => verified.push(m.path.clone()),
            other => bad.push(Mismatch {
                path: m.path.clone(),
                expected_sha256: m.sha256.clone(),
                actual_sha256: other.map(|(o, _)| o.to_hex()),
            }),
        }
    }
    if !bad.is_empty() {
        let list: Vec<String> = bad
            .iter()
            .map(|b| {
                format!(
                    "{} (expected {}, got {})",
                    b.path,
                    &b.expected_sha256[..12.min(b.expected_sha256.len())],
                    b.actual_sha256.as_deref().map(|s| &s[..12]).unwrap_or("no file")
                )
            })
            .collect();
        return Err(Error::new(
            ErrorKind::CheckFailed,
            format!(
                "model files in {} do not match the tracking record of {rev}: {}",
                into.display(),
                list.join("; ")
            ),
        )
        .with_hint(
            "the local LFS store may be corrupt: run `git lfs fsck` and `git lfs pull`, then check out again",
        ));
    }
    Ok(CheckoutOutcome {
        tag: rev.to_string(),
        commit: commit.id().to_string(),
        into: crate::repo::absolute(into),
        files: written.files,
        lfs_files: written.lfs_files,
        bytes: written.bytes,
        verified,
    })
}
