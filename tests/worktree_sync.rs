//! The repository layer against real worktrees: finding the worktree that has a branch checked out
//! (main or linked), refusing a dirty one, and updating a clean one after the branch moved without a
//! checkout so that `git status` stays clean and LFS files hold their real content.

mod common;

use std::fs;

use common::TestEnv;
use mlgit::repo::lfs_tree::{compile_patterns, refresh_attributes};
use mlgit::repo::transaction::refuse_dirty_checkout;
use mlgit::repo::tree::{Entry, TreeEdits};
use mlgit::repo::worktree::{find_checkout, sync_checkout};
use mlgit::repo::Repo;

/// Commit `files` onto `branch` as a test fixture (LFS for data/**), moving the ref directly:
/// what is tested here is the sync that follows a ref move.
fn commit_files(repo: &Repo, branch: &str, files: &[(&str, &[u8])]) -> (Option<git2::Oid>, git2::Oid) {
    let git = repo.git();
    let patterns = compile_patterns(&["data/**".to_string()]).unwrap();
    let tip = git.find_reference(&format!("refs/heads/{branch}")).unwrap().peel_to_commit().unwrap();
    let mut edits = TreeEdits::new();
    for (path, content) in files {
        let oid = if path.starts_with("data/") {
            let stored = repo.store().store_bytes(content).unwrap();
            git.blob(&stored.pointer.to_bytes()).unwrap()
        } else {
            git.blob(content).unwrap()
        };
        edits.set(path, Entry::blob(oid)).unwrap();
    }
    let tree = edits.write(git, Some(tip.tree_id())).unwrap();
    let tree = refresh_attributes(git, tree, &patterns).unwrap();
    let sig = git2::Signature::now("t", "t@t").unwrap();
    let commit = git.commit(None, &sig, &sig, "add files\n", &git.find_tree(tree).unwrap(), &[&tip]).unwrap();
    git.reference(&format!("refs/heads/{branch}"), commit, true, "test").unwrap();
    (Some(tip.tree_id()), tree)
}

#[test]
fn a_clean_linked_worktree_is_updated_and_stays_clean() {
    let env = TestEnv::new();
    // LFS content in a worktree is clean only for a git that has the LFS filter, as for users.
    if !env.has_git_lfs() {
        return;
    }
    let demo = env.init_repo("demo");
    let wt = env.path("raw-wt");
    env.git(&demo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    let repo = Repo::discover(&demo).unwrap();

    let found = find_checkout(repo.git(), "raw").unwrap().expect("raw is checked out");
    assert_eq!(fs::canonicalize(&found.path).unwrap(), fs::canonicalize(&wt).unwrap());
    assert_eq!(
        fs::canonicalize(find_checkout(repo.git(), "main").unwrap().unwrap().path).unwrap(),
        fs::canonicalize(&demo).unwrap()
    );
    assert!(find_checkout(repo.git(), "clean").unwrap().is_none());

    refuse_dirty_checkout(&repo, "raw", "test").unwrap();
    let co = find_checkout(repo.git(), "raw").unwrap().expect("raw is checked out");
    let (old, new) =
        commit_files(&repo, "raw", &[("data/a b.csv", b"x,y\n1,2\n"), ("notes.txt", b"hello\n")]);
    sync_checkout(&co, repo.store(), old, new, &Default::default()).unwrap();

    assert_eq!(fs::read(wt.join("data/a b.csv")).unwrap(), b"x,y\n1,2\n", "LFS content, not pointer text");
    assert_eq!(fs::read(wt.join("notes.txt")).unwrap(), b"hello\n");
    assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    assert_eq!(env.git(&wt, ["rev-parse", "HEAD"]), env.git(&demo, ["rev-parse", "raw"]));
}

#[test]
fn a_dirty_worktree_is_refused_with_a_hint() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    fs::write(demo.join("README.md"), "edited\n").unwrap();
    let repo = Repo::discover(&demo).unwrap();
    let err = refuse_dirty_checkout(&repo, "main", "test").unwrap_err();
    assert!(err.message().contains("uncommitted changes (README.md)"), "{}", err.message());
    assert!(err.hint().unwrap().contains("stash"), "{:?}", err.hint());
    // An untracked file is not a change to protect.
    fs::write(demo.join("README.md"), fs::read(env.path("demo/README.md")).unwrap()).unwrap();
    env.git(&demo, ["checkout", "--", "README.md"]);
    fs::write(demo.join("scratch.txt"), "tmp\n").unwrap();
    refuse_dirty_checkout(&repo, "main", "test").unwrap();
}
