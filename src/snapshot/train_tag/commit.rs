//! The last step of a snapshot, in one function: build the snapshot tree, write the commit, move
//! the branch by compare-and-swap, create the annotated tag and bring the worktree's index in step.
//! Every branch write of train-tag goes through [`write_snapshot`].

use std::collections::BTreeSet;
use std::path::Path;

use git2::{Oid, Repository};

use crate::config::{BranchKind, Config};
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree;
use crate::repo::refs::{commit_with_retry, Committed, NewCommit};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::worktree::{remove_file, stat_entry, write_file};
use crate::repo::Repo;

/// What goes into the snapshot commit.
pub(super) struct Snapshot<'a> {
    pub branch: &'a str,
    pub tag: &'a str,
    /// The commit trained on: the parent, and the tree whose outputs are replaced.
    pub base: &'a git2::Commit<'a>,
    /// Every file the snapshot sets (outputs, tracking record, model card…), '/'-separated paths.
    pub files: Vec<(String, Entry)>,
    /// Paths of `files` that are in the worktree already as committed (the training wrote them):
    /// the index sync only refreshes their stat data and never rewrites them.
    pub in_worktree: BTreeSet<String>,
    pub message: String,
    pub tag_message: String,
}

/// The snapshot as written.
pub(super) struct Written {
    pub commit: Oid,
    /// False when the branch moved on to other code or data meanwhile: the commit is beside it.
    pub on_branch: bool,
    pub notes: Vec<String>,
}

/// Write the snapshot commit, put it on the branch (or beside it, if the branch moved on to other
/// code or data), tag it, and sync the worktree's index. A tag that cannot be created takes the
/// commit back off the branch, so a failure leaves refs as they were.
pub(super) fn write_snapshot(repo: &Repo, snap: &Snapshot<'_>) -> Result<Written> {
    let git = repo.git();
    let config = repo.config();
    let sig = repo.signature()?;
    let base = snap.base;
    let base_id = base.id();
    let mut notes = Vec::new();

    // The base without old outputs, plus the new files. In two steps: TreeEdits merges a set below
    // a removed folder into the folder's old content.
    let without_outputs = {
        let mut e = TreeEdits::new();
        crate::snapshot::remove_outputs(&mut e, config)?;
        e.write(git, Some(base.tree_id()))?
    };
    let mut edits = TreeEdits::new();
    for (path, entry) in &snap.files {
        edits.set(path, *entry)?;
    }
    let patterns = lfs_tree::compile_patterns(config.lfs_patterns(BranchKind::Stable))?;
    let tree = edits.write(git, Some(without_outputs))?;
    let tree = lfs_tree::refresh_attributes(git, tree, &patterns)?;

    let stripped_base = strip_outputs(git, config, base.tree_id())?;
    let mut diverged = false;
    let committed = commit_with_retry(git, snap.branch, false, |tip| {
        let Some(tip) = tip else { return Ok(None) };
        // Another writer moved the branch: fine if it only touched outputs; if it brought other
        // code or data (stable update), this snapshot stays off the branch rather than undo that.
        diverged = tip.id() != base_id && strip_outputs(git, config, tip.tree_id())? != stripped_base;
        if diverged {
            return Ok(None);
        }
        Ok(Some(NewCommit { tree, extra_parents: vec![], message: snap.message.clone() }))
    })?;
    let (commit, previous, on_branch) = match committed {
        Committed::Moved { commit, previous, .. } => (commit, previous, true),
        Committed::Unchanged { .. } => {
            let t = git.find_tree(tree).context("read the snapshot tree")?;
            let c = git
                .commit(None, &sig, &sig, &snap.message, &t, &[base])
                .context("write the snapshot commit")?;
            notes.push(format!(
                "'{}' moved on to other code or data during training: {} tags a commit beside the branch",
                snap.branch, snap.tag
            ));
            (c, None, false)
        }
    };
    // Through the main repository: from a linked worktree libgit2 would not see an existing tag.
    let tagged = Repository::open(git.commondir()).and_then(|main| {
        let target = main.find_object(commit, Some(git2::ObjectType::Commit))?;
        main.tag(snap.tag, &target, &sig, &snap.tag_message, false)
    });
    if let Err(e) = tagged {
        // Only a tag made outside train-tag (the name was reserved) gets here: take the commit
        // back off the branch, so a failed run leaves nothing behind.
        if let (true, Some(prev)) = (on_branch, previous) {
            crate::repo::refs::compare_and_swap(
                git,
                snap.branch,
                prev,
                Some(commit),
                "mlgit train-tag: undo",
            )?;
        }
        return Err(Error::git(format!("create the tag '{}'", snap.tag), e)
            .with_hint("someone created that tag meanwhile outside train-tag; nothing was kept: run again (with another --name)"));
    }
    if on_branch {
        // The snapshot is complete; a worktree that cannot be brought in step is worth a note, not a failure.
        let workdir = git.workdir().unwrap_or(Path::new("."));
        if let Err(e) = sync_index(repo, workdir, base.tree_id(), tree, snap) {
            notes.push(format!(
                "the worktree's index was not brought up to date ({e}): run `git reset` there to resync it"
            ));
        }
    }
    Ok(Written { commit, on_branch, notes })
}

/// A tree with the output paths and the tracking record removed (to compare code and data).
pub(super) fn strip_outputs(git: &Repository, config: &Config, tree: Oid) -> Result<Oid> {
    let mut edits = TreeEdits::new();
    crate::snapshot::remove_outputs(&mut edits, config)?;
    edits.remove(crate::store::attributes::FILE)?;
    edits.write(git, Some(tree))
}

/// Bring the index (and generated files) in line with the snapshot commit: the files the training
/// wrote are in the worktree already, so their entries only get fresh stat data; the record, the
/// model card and `.gitattributes` are written; paths the snapshot dropped are removed.
fn sync_index(repo: &Repo, workdir: &Path, old_tree: Oid, new_tree: Oid, snap: &Snapshot<'_>) -> Result<()> {
    let git = repo.git();
    let mut index = git.index().context("read the index")?;
    for (path, entry) in snap.files.iter().filter(|(p, _)| snap.in_worktree.contains(p)) {
        let e = stat_entry(workdir, Path::new(path), entry.oid, entry.mode.into())?;
        index.add(&e).context(format!("update the index entry of {path}"))?;
    }
    let old = git.find_tree(old_tree).context("read the old tree")?;
    let new = git.find_tree(new_tree).context("read the new tree")?;
    let diff = git.diff_tree_to_tree(Some(&old), Some(&new), None).context("compare trees")?;
    for delta in diff.deltas() {
        match delta.status() {
            git2::Delta::Deleted => {
                if let Some(p) = delta.old_file().path() {
                    remove_file(workdir, p)?;
                    let _ = index.remove_path(p);
                }
            }
            git2::Delta::Added | git2::Delta::Modified | git2::Delta::Typechange => {
                let f = delta.new_file();
                let Some(p) = f.path() else { continue };
                if snap.in_worktree.contains(p.to_string_lossy().as_ref()) {
                    continue;
                }
                let entry = write_file(git, repo.store(), workdir, p, f.id(), f.mode().into())?;
                index.add(&entry).context(format!("update the index entry of {}", p.display()))?;
            }
            _ => {}
        }
    }
    index.write().context("write the index")
}
