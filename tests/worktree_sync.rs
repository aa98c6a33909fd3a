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

// --- git status without git-lfs (regression: racily clean entries of files holding LFS content) ---

/// A git (HOME, no system config) that has no LFS filter: it reads the LFS files mlgit writes as
/// plain files, and would call any of them modified that it re-reads.
fn assert_no_lfs_filter(env: &TestEnv, repo: &std::path::Path) {
    let out = env.git_cmd(repo).args(["config", "--get", "filter.lfs.clean"]).output().unwrap();
    assert!(!out.status.success(), "this HOME must not have git-lfs's filters");
}

fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn sync_after_pull_leaves_git_status_clean_without_git_lfs() {
    let env = TestEnv::new();
    let a = env.init_repo("a");
    let bare = env.path("origin.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
    env.git(&a, ["remote", "add", "origin", &file_url(&bare)]);
    env.mlgit_ok(&a, ["push", "-q"]);
    let b = env.path("b");
    env.mlgit_ok(env.tmp.path(), ["clone", "-q", &file_url(&bare), b.to_str().unwrap()]);
    let wt = env.path("b-raw");
    env.git(&b, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    assert_no_lfs_filter(&env, &wt);

    // A colleague pushes a batch; b's pull fast-forwards the checked-out raw through the
    // transaction, which writes the files (LFS content) and the index in the same second.
    for round in 0..2 {
        let src = env.path(&format!("src-{round}"));
        let files: Vec<(String, Vec<u8>)> =
            (0..5).map(|i| (format!("r{round}/{i}.csv"), format!("x\n{round}{i}\n").into_bytes())).collect();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
        common::write_files(&src, &refs);
        env.mlgit_ok(&a, ["commit-data", "-q", "--source", src.to_str().unwrap(), "-m", "batch"]);
        env.tick();
        env.mlgit_ok(&a, ["push", "-q"]);
        let out = env.mlgit_json(&b, ["pull", "--ref", "raw"]);
        assert_eq!(
            env.git(&b, ["rev-parse", "raw"]),
            env.git(&a, ["rev-parse", "raw"]),
            "raw fast-forwarded: {out}"
        );
        assert_eq!(
            fs::read(wt.join(format!("data/r{round}/4.csv"))).unwrap(),
            format!("x\n{round}4\n").as_bytes()
        );
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "", "round {round}");
        // libgit2 reads the same index: mlgit sees a clean checkout too.
        let repo = Repo::discover(&wt).unwrap();
        refuse_dirty_checkout(&repo, "raw", "test").unwrap();
    }
}

#[test]
fn commit_data_onto_a_checked_out_branch_leaves_git_status_clean_without_git_lfs() {
    let env = TestEnv::new();
    let demo = env.init_repo("demo");
    let wt = env.path("raw-wt");
    env.git(&demo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    assert_no_lfs_filter(&env, &wt);
    for round in 0..2 {
        let src = env.path(&format!("src-{round}"));
        common::write_files(&src, &[("a.csv", format!("a\n{round}\n").as_bytes()), ("b/c.csv", b"c\n")]);
        let dest = format!("data/batch{round}");
        env.mlgit_ok(
            &demo,
            ["commit-data", "-q", "--source", src.to_str().unwrap(), "--dest", &dest, "-m", "b"],
        );
        env.tick();
        assert_eq!(fs::read(wt.join(format!("{dest}/a.csv"))).unwrap(), format!("a\n{round}\n").as_bytes());
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "", "round {round}");
        // And a plain git command that rewrites the index keeps it so.
        env.git(&wt, ["update-index", "--refresh"]);
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "", "round {round}");
    }
}
