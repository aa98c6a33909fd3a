//! Checks made before anything is reserved or run: the branch, a worktree without code changes, and
//! data files that are still Git LFS pointer text.

use std::fs;
use std::path::Path;

use git2::{Oid, Repository};

use crate::config::{BranchKind, Config};
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree::classify;
use crate::repo::worktree::{write_file, write_index};
use crate::repo::Repo;
use crate::store::Pointer;

pub(super) fn list_some(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
    let more = if paths.len() > 5 { format!(" and {} more", paths.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// The stable branch HEAD is on, or a clear refusal.
pub(super) fn current_stable_branch(git: &Repository, config: &Config) -> Result<String> {
    let head = git.find_reference("HEAD").context("read HEAD")?;
    let branch = head.symbolic_target().and_then(|t| t.strip_prefix("refs/heads/")).map(str::to_string);
    let hint = format!(
        "training runs on a stable branch: `git checkout {0}` (or `git worktree add ../train {0}`), then retry",
        config.branches.stable
    );
    match branch {
        Some(b) if config.branch_kind(&b) == BranchKind::Stable => {
            if git.head().is_err() {
                return Err(Error::not_found(format!("branch '{b}' has no commit yet")).with_hint(hint));
            }
            Ok(b)
        }
        Some(b) => Err(Error::invalid(format!("not on a stable branch: HEAD is '{b}'")).with_hint(hint)),
        None => Err(Error::invalid("not on a stable branch: HEAD is detached").with_hint(hint)),
    }
}

/// Refuse (or fix, with `materialize`) data files that are LFS pointer text in the worktree.
pub(super) fn check_pointer_text(repo: &Repo, workdir: &Path, tree: Oid, materialize: bool) -> Result<usize> {
    let git = repo.git();
    let mut pointer_text = Vec::new();
    for f in classify(git, tree)? {
        let Some(pointer) = f.pointer else { continue };
        let full = workdir.join(&f.entry.path);
        let Ok(meta) = fs::symlink_metadata(&full) else { continue };
        // Only a small regular file can be pointer text (a FIFO would block the read).
        if !meta.file_type().is_file() || meta.len() > crate::store::pointer::MAX_POINTER_SIZE as u64 {
            continue;
        }
        let Ok(bytes) = fs::read(&full) else { continue };
        // Pointer text of this very file (not content that happens to look like a pointer).
        if Pointer::from_blob(&bytes) == Some(pointer) {
            pointer_text.push((f, pointer));
        }
    }
    if pointer_text.is_empty() {
        return Ok(0);
    }
    let paths: Vec<String> = pointer_text.iter().map(|(f, _)| f.entry.path.clone()).collect();
    if !materialize {
        return Err(Error::conflict(format!(
            "{} file(s) in the worktree are Git LFS pointer text, not data: {}",
            paths.len(),
            list_some(&paths)
        ))
        .with_hint("fetch the content with `git lfs pull`, or rerun with --materialize to write it from the local store"));
    }
    let missing: Vec<String> = pointer_text
        .iter()
        .filter(|(_, p)| !repo.store().contains(p))
        .map(|(f, _)| f.entry.path.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::not_found(format!(
            "the local LFS store lacks the content of {} file(s): {}",
            missing.len(),
            list_some(&missing)
        ))
        .with_hint("download it with `git lfs pull` (or `git lfs fetch`), then retry"));
    }
    let mut index = git.index().context("read the index")?;
    let mut added = Vec::with_capacity(pointer_text.len());
    for (f, _) in &pointer_text {
        let entry = write_file(
            git,
            repo.store(),
            workdir,
            Path::new(&f.entry.path),
            f.entry.oid,
            f.entry.mode.into(),
        )?;
        index.add(&entry).context(format!("update the index entry of {}", f.entry.path))?;
        added.push(entry);
    }
    // Pointer text here means no git-lfs: its git must trust these entries without re-reading.
    write_index(git, &mut index, &added)?;
    Ok(pointer_text.len())
}
