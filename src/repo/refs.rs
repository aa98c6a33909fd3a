//! Ref updates by compare-and-swap: a ref moves only from the value the new commit was built on.
//! The retry loop that re-applies a change on a winner's tip lives in the branch transaction
//! ([`super::transaction`]), the one place that writes branches.

use git2::{Oid, Repository};

use crate::error::{Error, Result};

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
    let attempt = || match expected {
        Some(old) => git.reference_matching(name, new, true, old, log).map(|_| ()),
        // libgit2 checks a non-forced create against a linked worktree's own ref folder only, so
        // from a linked worktree it would overwrite a shared ref: create through the main repository.
        None if git.is_worktree() => Repository::open(git.commondir())
            .and_then(|main| main.reference(name, new, false, log).map(|_| ())),
        None => git.reference(name, new, false, log).map(|_| ()),
    };
    let mut result = attempt();
    // git holds a ref's lock file for milliseconds; one still there after a second was left by a
    // killed process, and no retry will ever get through it: say which file it is.
    let started = std::time::Instant::now();
    while matches!(&result, Err(e) if e.code() == git2::ErrorCode::Locked) {
        if started.elapsed() > std::time::Duration::from_secs(1) {
            let lock = git.commondir().join(format!("{name}.lock"));
            return Err(Error::conflict(format!(
                "cannot update {name}: its lock file {} exists",
                lock.display()
            ))
            .with_hint(format!(
                "another git process is updating it, or one was killed; if no git process is running, remove {} and retry",
                lock.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        result = attempt();
    }
    match result {
        Ok(()) => Ok(true),
        Err(e) => match e.code() {
            git2::ErrorCode::Modified | git2::ErrorCode::Exists => Ok(false),
            // Expected a ref that has since been deleted.
            git2::ErrorCode::NotFound if expected.is_some() => Ok(false),
            _ => Err(Error::git(format!("update {name}"), e)),
        },
    }
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
    fn compare_and_swap_sees_a_move_made_through_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let other = Repository::open(dir.path()).unwrap();
        let a = empty_commit(&git, &[]);
        let b = empty_commit(&git, &[&git.find_commit(a).unwrap()]);
        let c = empty_commit(&git, &[&git.find_commit(b).unwrap()]);
        git.reference("refs/heads/x", a, false, "").unwrap();
        other.reference("refs/heads/x", b, true, "other").unwrap();
        assert!(!compare_and_swap(&git, "x", c, Some(a), "stale").unwrap());
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
}
