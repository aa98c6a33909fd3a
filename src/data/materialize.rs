//! `mlgit materialize`: write the files of a branch, tag or commit into a folder with LFS content
//! resolved from the local store — no checkout, no git-lfs — in parallel, at copy speed.
//!
//! The writing is the one restore path ([`crate::restore`]): every LFS object needed is checked
//! before the first file is written, content is hashed while it is copied, and nothing is written
//! through a link in the folder or into a `.git` folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::Oid;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::tree::list_files;
use crate::repo::Repo;
use crate::restore::restore_tree;
pub use crate::restore::{Written, INCOMPLETE_MARKER};
use crate::store::attributes::Pattern;

#[derive(Debug, Clone, Default)]
pub struct MaterializeOptions {
    /// A branch, tag or commit.
    pub rev: String,
    pub into: PathBuf,
    /// Only paths matching one of these (gitattributes-style patterns, or folder prefixes).
    pub include: Vec<String>,
    /// Checked between files: a set flag stops the run, leaving the marker and no temporary file.
    pub interrupt: Interrupt,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaterializeOutcome {
    pub rev: String,
    pub commit: String,
    pub into: PathBuf,
    pub files: u64,
    pub lfs_files: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Paths to include: a pattern (`*.csv`, `data/train/**`) or a folder prefix (`data/train`).
#[derive(Debug, Default)]
pub struct Include {
    patterns: Vec<(Pattern, String)>,
}

impl Include {
    pub fn new(specs: &[String]) -> Result<Include> {
        let patterns = specs
            .iter()
            .map(|s| Ok((Pattern::new(s)?, s.trim_end_matches('/').to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Include { patterns })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|(p, prefix)| {
                p.is_match(path)
                    || (path.len() > prefix.len()
                        && path.starts_with(prefix.as_str())
                        && path.as_bytes()[prefix.len()] == b'/')
            })
    }
}

/// Materialize `opts.rev` into `opts.into`.
pub fn materialize(
    repo: &Repo,
    opts: &MaterializeOptions,
    progress: &dyn Progress,
) -> Result<MaterializeOutcome> {
    let start = Instant::now();
    let commit = repo.resolve(&opts.rev)?;
    let include = Include::new(&opts.include)?;
    if !opts.include.is_empty() {
        // Check the patterns select something before writing anything.
        let files = list_files(repo.git(), commit.tree_id())?;
        if !files.iter().any(|f| include.matches(&f.path)) {
            return Err(Error::invalid(format!(
                "no file of {} matches --include {}",
                opts.rev,
                opts.include.join(" ")
            ))
            .with_hint(format!("list the files with `git ls-tree -r --name-only {}`", opts.rev)));
        }
    }
    let written =
        restore_tree(repo, commit.tree_id(), &opts.into, &|p| include.matches(p), &opts.interrupt, progress)?;
    Ok(MaterializeOutcome {
        rev: opts.rev.clone(),
        commit: commit.id().to_string(),
        into: crate::repo::absolute(&opts.into),
        files: written.files,
        lfs_files: written.lfs_files,
        bytes: written.bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Write the files of `tree` that `filter` accepts into `into`, through the one restore path
/// (see [`crate::restore`]), for callers that cannot be interrupted half-way.
pub fn write_tree(
    repo: &Repo,
    tree: Oid,
    into: &Path,
    filter: &(dyn Fn(&str) -> bool + Sync),
    progress: &dyn Progress,
) -> Result<Written> {
    restore_tree(repo, tree, into, filter, &Interrupt::default(), progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_takes_patterns_and_folder_prefixes() {
        let inc = Include::new(&["data/train".into(), "*.json".into()]).unwrap();
        assert!(inc.matches("data/train/a.csv"));
        assert!(!inc.matches("data/training/a.csv"));
        assert!(inc.matches("x/y.json"));
        assert!(!inc.matches("data/test/a.csv"));
        assert!(Include::new(&[]).unwrap().matches("anything"));
    }
}
