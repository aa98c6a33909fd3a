//! `mlgit stable update`: bring code from a `dev/` commit and data from a `split` commit into a
//! `stable/` branch in one commit, without a checkout. The tree is the dev tree without `data/` and
//! without the outputs of earlier training (a stale model must never sit beside new data), with the
//! split commit's `data/` tree grafted in by id (zero-copy). Parents: the stable tip, then the dev
//! and split commits, so the lineage is in git's own history; `Derived-From` trailers say the same.

use git2::Oid;
use serde::Serialize;

use super::{remove_outputs, DATA_DIR};
use crate::config::BranchKind;
use crate::error::{Error, Result};
use crate::repo::lineage_walk::find_source;
use crate::repo::trailers::{keys, Message};
use crate::repo::transaction::{Change, Step, Transaction, TxOptions};
use crate::repo::tree::{entry_at, TreeEdits};
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct StableUpdateOptions {
    /// The stable branch (default: `branches.stable`).
    pub branch: Option<String>,
    /// Where the code comes from. When only `data` is given, the stable branch keeps its code.
    pub code: Option<String>,
    /// Where `data/` comes from. When only `code` is given, the stable branch keeps its data.
    pub data: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StableUpdateOutcome {
    pub branch: String,
    /// The new commit, or None when the branch already had this code and data.
    pub commit: Option<String>,
    pub previous: Option<String>,
    pub changed: bool,
    /// The dev commit the branch's code now comes from (None: never updated from dev).
    pub code: Option<String>,
    /// The split commit the branch's data now comes from.
    pub data: Option<String>,
    /// The worktree that had the branch checked out and was brought up to date.
    pub worktree_updated: Option<String>,
    /// Why the worktree that has the branch checked out could not be brought up to date (the next
    /// mlgit command finishes it).
    pub worktree_error: Option<String>,
}

/// Update the stable branch from dev and/or split.
pub fn stable_update(repo: &Repo, opts: &StableUpdateOptions) -> Result<StableUpdateOutcome> {
    let config = repo.config();
    let git = repo.git();
    let branch = opts.branch.clone().unwrap_or_else(|| config.branches.stable.clone());
    if config.branch_kind(&branch) != BranchKind::Stable {
        return Err(Error::invalid(format!("'{branch}' is not a stable branch")).with_hint(format!(
            "stable branches are named like '{}' (branches.stable in mlgit.yaml)",
            config.branches.stable
        )));
    }
    // Neither given: both from the configured defaults. One given: the other side stays as it is.
    let (code_rev, data_rev) = match (&opts.code, &opts.data) {
        (None, None) => (Some(config.branches.dev.clone()), Some(config.branches.split.clone())),
        (c, d) => (c.clone(), d.clone()),
    };
    let code = code_rev.as_deref().map(|r| repo.resolve(r).map(|c| (c.id(), c.tree_id()))).transpose()?;
    let data = data_rev.as_deref().map(|r| repo.resolve(r).map(|c| (c.id(), c.tree_id()))).transpose()?;
    let data_tree = match data {
        Some((id, tree)) => {
            let entry = entry_at(git, tree, DATA_DIR)?;
            match entry {
                Some(e) if e.mode == git2::FileMode::Tree => Some(e.oid),
                _ => {
                    return Err(Error::not_found(format!(
                        "{} ({}) has no {DATA_DIR}/ folder",
                        data_rev.as_deref().unwrap_or_default(),
                        &id.to_string()[..7]
                    ))
                    .with_hint(
                        "split the clean data first (`mlgit split`), or pass --data with a split commit",
                    ))
                }
            }
        }
        None => None,
    };
    // Not while a training runs on the branch: its data would change under it.
    let _lock = super::BranchLock::acquire(git, &branch, "mlgit stable update")?;
    let tx = Transaction::open(
        repo,
        &branch,
        TxOptions { create: true, writer: "mlgit stable update".into(), ..Default::default() },
    )?;
    let exists = repo.branch_tip(&branch)?.is_some();
    if !exists && (code.is_none() || data.is_none()) {
        return Err(Error::not_found(format!("branch '{branch}' does not exist")).with_hint(
            "create it with both code and data: `mlgit stable update --branch NAME` (defaults for both)",
        ));
    }

    let mut links: (Option<Oid>, Option<Oid>) = (None, None);
    let result = tx.commit(|tip| {
        let base = match (code, tip) {
            (Some((_, tree)), _) => tree,
            (None, Some(t)) => t.tree_id(),
            (None, None) => unreachable_base()?,
        };
        let mut edits = TreeEdits::new();
        remove_outputs(&mut edits, config)?;
        match (data_tree, tip) {
            (Some(d), _) => edits.graft(DATA_DIR, d)?,
            (None, Some(t)) => match entry_at(git, t.tree_id(), DATA_DIR)? {
                Some(e) if e.mode == git2::FileMode::Tree => edits.graft(DATA_DIR, e.oid)?,
                _ => edits.remove(DATA_DIR)?,
            },
            (None, None) => edits.remove(DATA_DIR)?,
        }
        let tree = edits.write(git, Some(base))?;
        // Lineage after this commit: the new sources, or what the branch already derived from.
        let inherited = |kind: &str| match tip {
            Some(t) => find_source(git, t.id(), kind),
            None => Ok(None),
        };
        let dev = match code {
            Some((id, _)) => Some(id),
            None => inherited("dev")?,
        };
        let split = match data {
            Some((id, _)) => Some(id),
            None => inherited("split")?,
        };
        links = (dev, split);
        let short = |o: Option<Oid>| o.map(|o| o.to_string()[..7].to_string()).unwrap_or_else(|| "-".into());
        let mut subject = format!("Update {branch}:");
        if let Some(r) = &code_rev {
            subject.push_str(&format!(" code from {r} {}", short(dev)));
        }
        if let Some(r) = &data_rev {
            if code_rev.is_some() {
                subject.push(',');
            }
            subject.push_str(&format!(" data from {r} {}", short(split)));
        }
        let mut msg = Message::new(subject).body(
            "Outputs of earlier training (model, checkpoints, metrics, tracking record) are removed;\n\
             train on this commit with `mlgit train-tag -- <command>`.",
        );
        for (kind, id) in [("dev", dev), ("split", split)] {
            if let Some(id) = id {
                msg = msg.trailer(keys::DERIVED_FROM, format!("{kind} {id}"));
            }
        }
        let mut extra_parents = Vec::new();
        for (id, _) in [code, data].into_iter().flatten() {
            // A source already in the branch's history adds nothing as a parent.
            let known = match tip {
                Some(t) => t.id() == id || git.graph_descendant_of(t.id(), id).unwrap_or(false),
                None => false,
            };
            if !known && !extra_parents.contains(&id) {
                extra_parents.push(id);
            }
        }
        let mut change = Change::new(tree, msg.render());
        change.extra_parents = extra_parents;
        Ok(Step::Commit(Box::new(change)))
    })?;
    let hex = |o: Option<Oid>| o.map(|o| o.to_string());
    Ok(StableUpdateOutcome {
        branch,
        commit: hex(result.commit),
        previous: hex(result.previous),
        changed: result.commit.is_some(),
        code: hex(links.0),
        data: hex(links.1),
        worktree_updated: result.worktree.map(|p| p.display().to_string()),
        worktree_error: result.sync_error,
    })
}

fn unreachable_base() -> Result<Oid> {
    // Guarded before the loop: a missing branch is only created with both code and data given.
    Err(Error::invalid("cannot create a stable branch without code"))
}
