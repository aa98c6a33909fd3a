//! Which dev commit's code a training runs. `stable update` names it in a `Derived-From: dev`
//! trailer, but code also reaches a stable branch by `git merge dev/…` (as docs/branches.md
//! recommends), which writes no trailer: the trailer then names an older dev commit.
//!
//! Rule: compare code trees (the tree without `data/`, the outputs, the tracking record and
//! `.gitattributes`). The trailer's dev commit counts when its code is the code trained; otherwise
//! the newest commit merged in from outside the branch's first-parent line (data commits excluded)
//! whose code is the code trained. If none has it — the code was changed on the stable branch, e.g.
//! while resolving a merge — the stable commit itself is the code's commit.

use std::collections::HashSet;

use git2::{Oid, Repository, Sort};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::repo::lineage_walk::{Lineage, MAX_WALK};
use crate::repo::tree::TreeEdits;
use crate::snapshot::DATA_DIR;

/// Where the trained code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CodeSource {
    pub commit: Oid,
    /// False when no dev commit has this code and `commit` is the stable commit itself.
    pub from_dev: bool,
}

/// The tree of `tree` that holds code only.
fn code_tree(git: &Repository, config: &Config, tree: Oid) -> Result<Oid> {
    let mut edits = TreeEdits::new();
    crate::snapshot::remove_outputs(&mut edits, config)?;
    edits.remove(DATA_DIR)?;
    edits.remove(crate::store::attributes::FILE)?;
    edits.write(git, Some(tree))
}

/// The commit whose code `head` (the commit trained on) holds; see the module doc for the rule.
pub(super) fn trained_code(
    git: &Repository,
    config: &Config,
    head: &git2::Commit<'_>,
    links: &Lineage,
) -> Result<CodeSource> {
    let code = code_tree(git, config, head.tree_id())?;
    let same_code = |id: Oid| -> Result<bool> {
        match git.find_commit(id) {
            Ok(c) => Ok(code_tree(git, config, c.tree_id())? == code),
            Err(_) => Ok(false),
        }
    };
    if let Some(dev) = links.code.as_deref().and_then(|c| Oid::from_str(c).ok()) {
        if same_code(dev)? {
            return Ok(CodeSource { commit: dev, from_dev: true });
        }
    }
    let mut first_parents = HashSet::new();
    let mut next = Some(head.clone());
    while let Some(c) = next.take() {
        if first_parents.len() >= MAX_WALK || !first_parents.insert(c.id()) {
            break;
        }
        next = c.parent(0).ok();
    }
    let mut walk = git.revwalk().context("walk the history")?;
    walk.set_sorting(Sort::TIME).context("walk the history")?;
    walk.push(head.id()).context("walk the history")?;
    // Data commits (split, and clean and raw behind it) are not code.
    if let Some(split) = links.split.as_deref().and_then(|s| Oid::from_str(s).ok()) {
        if git.find_commit(split).is_ok() {
            walk.hide(split).context("walk the history")?;
        }
    }
    for id in walk.take(MAX_WALK) {
        let id = id.context("walk the history")?;
        if !first_parents.contains(&id) && same_code(id)? {
            return Ok(CodeSource { commit: id, from_dev: true });
        }
    }
    Ok(CodeSource { commit: head.id(), from_dev: false })
}
