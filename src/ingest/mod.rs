//! The one ingest policy: how every command that reads files into a tree (commit-data's source,
//! clean's transform output, train-tag's outputs) decides what may be stored, and reads it safely.
//!
//! - [`walk`] lists a folder (or a list of paths under it) from stat data alone and refuses, all
//!   listed in one error, what a tree cannot hold faithfully: names that are not UTF-8 or hold a
//!   control character (newline, tab, NUL…); `.git`, `.gitattributes` and `.gitmodules` components at any
//!   depth, as files or folders, in any case; symlinks (unless followed, and only inside the
//!   folder); FIFOs, sockets and devices, which are never opened.
//! - [`LfsRule`] is the blob-or-LFS decision (the branch kind's patterns plus `lfs.max_blob_size`).
//! - [`read::ingest_file`] reads each file once, opened with `O_NOFOLLOW | O_NONBLOCK` and checked
//!   on the open descriptor (regular file, the inode the walk saw, size and mtime unchanged), so a
//!   file swapped for a symlink or a FIFO after the walk is refused, never followed or blocked on.

pub mod read;
pub mod walk;

use git2::FileMode;

use crate::config::{BranchKind, Config};
use crate::error::Result;
use crate::repo::lfs_tree::compile_patterns;
use crate::store::attributes::Pattern;

pub use read::{ingest_file, ingest_files, write_pointer_blobs, Ingested, LazyRepo};
pub use walk::{walk, walk_filtered, Policy, WalkedFile};

/// How a file is stored, as [`LfsRule::storage`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    /// The content goes to the LFS store and the tree gets a pointer.
    pub lfs: bool,
    /// The path is marked `filter=lfs` in `.gitattributes`: every pointer, and empty files an LFS
    /// rule covers (git-lfs keeps an empty file as the empty blob, never as a pointer, so a pointer
    /// there would make a fresh clone dirty).
    pub marked: bool,
}

/// The blob-or-LFS decision of one branch kind: its `lfs.patterns`, plus the size guard (a file over
/// `lfs.max_blob_size` goes to LFS whatever its name).
#[derive(Debug, Clone)]
pub struct LfsRule {
    patterns: Vec<Pattern>,
    max_blob: u64,
}

impl LfsRule {
    pub fn new(patterns: Vec<Pattern>, max_blob: u64) -> LfsRule {
        LfsRule { patterns, max_blob }
    }

    /// The rule of the branches of `kind`, from the config.
    pub fn for_kind(config: &Config, kind: BranchKind) -> Result<LfsRule> {
        Ok(LfsRule::new(compile_patterns(config.lfs_patterns(kind))?, config.lfs.max_blob_size))
    }

    /// How the file at `tree_path` (its full path in the branch's tree) of `size` bytes is stored.
    pub fn storage(&self, tree_path: &str, size: u64) -> Storage {
        let marked = size > self.max_blob || self.patterns.iter().any(|p| p.is_match(tree_path));
        Storage { lfs: marked && size > 0, marked }
    }

    /// The patterns, for the managed `.gitattributes` block.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
}

/// The tree mode of a file: executable when its owner may execute it, as git decides.
pub fn file_mode(meta: &std::fs::Metadata) -> FileMode {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o100 != 0 {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_rule_uses_patterns_and_the_size_guard_and_keeps_empty_files_as_blobs() {
        let rule = LfsRule::new(compile_patterns(&["data/**".to_string()]).unwrap(), 10);
        assert_eq!(rule.storage("data/a.csv", 3), Storage { lfs: true, marked: true });
        assert_eq!(rule.storage("data/empty", 0), Storage { lfs: false, marked: true });
        assert_eq!(rule.storage("README.md", 3), Storage { lfs: false, marked: false });
        assert_eq!(rule.storage("README.md", 11), Storage { lfs: true, marked: true });
    }
}
