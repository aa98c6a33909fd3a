//! Ref updates by compare-and-swap, and the commit-and-retry loop built on them: a branch moves
//! only from the value the new commit was built on; if another writer won, the change is re-applied
//! on top of the winner's commit, so no writer's commit is ever lost.

use std::time::Duration;

use git2::{Oid, Repository};

use crate::error::{Error, ErrorKind, Result};

/// How often a commit is re-applied after losing a race before giving up.
pub const MAX_TRIES: usize = 32;

/// Move `refs/heads/<branch>` from `expected` (None: the branch must not exist) to `new`.
/// Returns `Ok(false)` when the branch was not at `expected` (another writer won, or holds the lock).
pub fn compare_and_swap(
    git: &Repository,
    branch: &str,
    new: Oid,
    expected: Option<Oid>,
    log: &str,
) -> Result<bool> {
    compare_and_swap_ref(git, &format!("refs/heads/{branch}"), new, expected, log)
}

/// [`compare_and_swap`] for any ref name (tags, `refs/mlgit/…`).
pub fn compare_and_swap_ref(
    git: &Repository,
    name: &str,
    new: Oid,
    expected: Option<Oid>,
    log: &str,
) -> Result<bool> {
    let result = match expected {
        Some(old) => git.reference_matching(name, new, true, old, log).map(|_| ()),
        // libgit2 checks a non-forced create against a linked worktree's own ref folder only, so
        // from a linked worktree it would overwrite a shared ref: create through the main repository.
        None if git.is_worktree() => Repository::open(git.commondir())
            .and_then(|main| main.reference(name, new, false, log).map(|_| ())),
        None => git.reference(name, new, false, log).map(|_| ()),
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) => match e.code() {
            git2::ErrorCode::Modified | git2::ErrorCode::Exists | git2::ErrorCode::Locked => Ok(false),
            // Expected a ref that has since been deleted.
            git2::ErrorCode::NotFound if expected.is_some() => Ok(false),
            _ => Err(Error::git(format!("update {name}"), e)),
        },
    }
}

/// What a commit attempt wants written, computed from the branch's current tip.
#[derive(Debug, Clone)]
pub struct NewCommit {
    pub tree: Oid,
    /// Parents after the branch tip (e.g. the raw commit a clean commit derives from).
    pub extra_parents: Vec<Oid>,
    pub message: String,
}

/// The outcome of [`commit_with_retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The branch now points at this commit; `previous` was its tip (None: the branch was created).
    Moved { commit: Oid, previous: Option<Oid>, tries: usize },
    /// The change was already there: nothing to commit.
    Unchanged { tip: Option<Oid> },
}

/// Build a commit on top of the branch tip with `build` and move the branch by compare-and-swap;
/// if another writer moved it meanwhile, call `build` again with the new tip. `build` returns None
/// when there is nothing to commit. Objects written by a lost attempt stay unreferenced (gc removes them).
pub fn commit_with_retry(
    git: &Repository,
    branch: &str,
    create: bool,
    mut build: impl FnMut(Option<&git2::Commit<'_>>) -> Result<Option<NewCommit>>,
) -> Result<Committed> {
    let sig = super::signature(git)?;
    for attempt in 1..=MAX_TRIES {
        let tip = super::branch_tip(git, branch)?;
        if tip.is_none() && !create {
            return Err(Error::not_found(format!("branch '{branch}' does not exist"))
                .with_hint("run `mlgit init` to create the convention branches (or pass --create)"));
        }
        let tip_commit = match tip {
            Some(oid) => {
                Some(git.find_commit(oid).map_err(|e| Error::git(format!("read the tip of '{branch}'"), e))?)
            }
            None => None,
        };
        let Some(new) = build(tip_commit.as_ref())? else { return Ok(Committed::Unchanged { tip }) };
        let tree = git.find_tree(new.tree).map_err(|e| Error::git("read the new tree", e))?;
        let mut parents: Vec<git2::Commit<'_>> = tip_commit.into_iter().collect();
        for p in &new.extra_parents {
            parents.push(git.find_commit(*p).map_err(|e| Error::git(format!("read commit {p}"), e))?);
        }
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let commit = git
            .commit(None, &sig, &sig, &new.message, &tree, &parent_refs)
            .map_err(|e| Error::git(format!("write a commit for '{branch}'"), e))?;
        let log = format!("mlgit: {}", new.message.lines().next().unwrap_or(""));
        if compare_and_swap(git, branch, commit, tip, &log)? {
            return Ok(Committed::Moved { commit, previous: tip, tries: attempt });
        }
        // Lost the race: back off a little (jittered by attempt) and re-apply on the new tip.
        std::thread::sleep(Duration::from_millis(5 * attempt as u64 + (std::process::id() % 7) as u64));
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("branch '{branch}' kept moving: gave up after {MAX_TRIES} tries"),
    )
    .with_hint("other writers are updating the branch continuously; retry when they have finished"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_commit(git: &Repository, parents: &[&git2::Commit<'_>]) -> Oid {
        let tree = git.treebuilder(None).unwrap().write().unwrap();
        let tree = git.find_tree(tree).unwrap();
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(0, 0)).unwrap();
        git.commit(None, &sig, &sig, "m", &tree, parents).unwrap()
    }

    #[test]
    fn compare_and_swap_refuses_a_stale_expected_value() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let a = empty_commit(&git, &[]);
        let ca = git.find_commit(a).unwrap();
        let b = empty_commit(&git, &[&ca]);
        assert!(compare_and_swap(&git, "x", a, None, "create").unwrap());
        assert!(
            !compare_and_swap(&git, "x", b, None, "create again").unwrap(),
            "creation must not overwrite"
        );
        assert!(!compare_and_swap(&git, "x", b, Some(b), "stale").unwrap());
        assert_eq!(git.refname_to_id("refs/heads/x").unwrap(), a);
        assert!(compare_and_swap(&git, "x", b, Some(a), "move").unwrap());
        assert_eq!(git.refname_to_id("refs/heads/x").unwrap(), b);
    }

    #[test]
    fn creation_from_a_linked_worktree_does_not_overwrite_a_shared_ref() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path().join("main")).unwrap();
        let a = empty_commit(&git, &[]);
        let b = empty_commit(&git, &[&git.find_commit(a).unwrap()]);
        git.reference("refs/heads/side", a, false, "").unwrap();
        git.reference("refs/mlgit/reserved/x", a, false, "").unwrap();
        let side = git.find_reference("refs/heads/side").unwrap();
        let mut opts = git2::WorktreeAddOptions::new();
        opts.reference(Some(&side));
        let wt = git.worktree("wt", &dir.path().join("wt"), Some(&opts)).unwrap();
        let linked = Repository::open_from_worktree(&wt).unwrap();
        assert!(!compare_and_swap_ref(&linked, "refs/mlgit/reserved/x", b, None, "again").unwrap());
        assert_eq!(git.refname_to_id("refs/mlgit/reserved/x").unwrap(), a);
        assert!(compare_and_swap_ref(&linked, "refs/mlgit/reserved/y", b, None, "new").unwrap());
    }

    #[test]
    fn commit_with_retry_reapplies_on_the_winner() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let base = empty_commit(&git, &[]);
        git.reference("refs/heads/b", base, false, "").unwrap();
        let mut calls = 0;
        let out = commit_with_retry(&git, "b", false, |tip| {
            calls += 1;
            if calls == 1 {
                // Another writer moves the branch between our read and our swap.
                let tip = tip.unwrap();
                let other = empty_commit(&git, &[tip]);
                git.reference("refs/heads/b", other, true, "other writer").unwrap();
            }
            Ok(Some(NewCommit {
                tree: tip.unwrap().tree_id(),
                extra_parents: vec![],
                message: "mine".into(),
            }))
        })
        .unwrap();
        assert_eq!(calls, 2);
        let Committed::Moved { commit, tries, .. } = out else { panic!("{out:?}") };
        assert_eq!(tries, 2);
        let c = git.find_commit(commit).unwrap();
        let parent = c.parent(0).unwrap();
        assert_eq!(parent.parent_id(0).unwrap(), base, "the other writer's commit is kept under ours");
    }
}
