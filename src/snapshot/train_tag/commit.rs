//! The last step of a snapshot, in one function: build the snapshot tree and commit it through the
//! branch transaction, which writes the commit, moves the branch by compare-and-swap, creates the
//! annotated tag and brings the worktree in step (the outputs already there are not rewritten).

use std::collections::HashMap;

use git2::{Oid, Repository};

use crate::config::Config;
use crate::error::Result;
use crate::repo::transaction::{Change, Step, TagSpec, Transaction, TxOptions};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::Repo;
use crate::store::stat_cache::Stat;

/// What goes into the snapshot commit.
pub(super) struct Snapshot<'a> {
    pub branch: &'a str,
    pub tag: &'a str,
    /// The commit trained on: the parent, and the tree whose outputs are replaced.
    pub base: &'a git2::Commit<'a>,
    /// Every file the snapshot sets (outputs, tracking record, model card…), '/'-separated paths.
    pub files: Vec<(String, Entry)>,
    /// Files of `files` that are in the worktree already as committed (the training wrote them),
    /// with the stat data seen when they were read: the worktree sync never rewrites them.
    pub in_place: HashMap<String, Stat>,
    /// Blob id → whether it is an LFS pointer, for the blobs of `files`.
    pub pointers: HashMap<Oid, bool>,
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

/// Write the snapshot commit through the branch transaction: on the branch, or beside it (parent:
/// the commit trained on) if the branch moved on to other code or data; tagged either way. A tag
/// that cannot be created leaves refs as they were.
pub(super) fn write_snapshot(repo: &Repo, snap: Snapshot<'_>) -> Result<Written> {
    let git = repo.git();
    let config = repo.config();
    let base = snap.base;
    let base_id = base.id();

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
    let tree = edits.write(git, Some(without_outputs))?;
    let stripped_base = strip_outputs(git, config, base.tree_id())?;

    let tx = Transaction::open(
        repo,
        snap.branch,
        TxOptions { create: false, writer: "mlgit train-tag".into(), from_checkout: true },
    )?;
    let outcome = tx.commit(|tip| {
        let mut change = Change::new(tree, snap.message.clone());
        change.tag = Some(TagSpec { name: snap.tag.to_string(), message: snap.tag_message.clone() });
        change.pointers = snap.pointers.clone();
        // Another writer moved the branch: fine if it only touched outputs; if it brought other
        // code or data (stable update), this snapshot stays off the branch rather than undo that.
        let moved_on = match tip {
            Some(t) => t.id() != base_id && strip_outputs(git, config, t.tree_id())? != stripped_base,
            None => true,
        };
        if moved_on {
            change.beside = true;
            change.extra_parents = vec![base_id];
        } else {
            change.in_place = snap.in_place.clone();
        }
        Ok(Step::Commit(Box::new(change)))
    })?;
    let mut notes = Vec::new();
    if !outcome.on_branch {
        notes.push(format!(
            "'{}' moved on to other code or data during training: {} tags a commit beside the branch",
            snap.branch, snap.tag
        ));
    }
    if let Some(e) = outcome.sync_error {
        notes.push(format!("the snapshot is made, but {e}; the next mlgit command finishes it"));
    }
    let commit = outcome.commit.ok_or_else(|| {
        crate::error::Error::invalid(format!("the snapshot commit of {} was not written", snap.tag))
            .with_hint("run `mlgit train-tag --no-run` to tag the outputs")
    })?;
    Ok(Written { commit, on_branch: outcome.on_branch, notes })
}

/// A tree with the output paths and the tracking record removed (to compare code and data).
pub(super) fn strip_outputs(git: &Repository, config: &Config, tree: Oid) -> Result<Oid> {
    let mut edits = TreeEdits::new();
    crate::snapshot::remove_outputs(&mut edits, config)?;
    edits.remove(crate::store::attributes::FILE)?;
    edits.write(git, Some(tree))
}
