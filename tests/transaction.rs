//! The branch transaction seen from the outside: every writing command refuses to overwrite what a
//! user made in a checked-out worktree, moves no ref when it refuses, and a sync cut short by a
//! crash after the ref moved is finished by the next mlgit command. Checked with the real git CLI.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{stderr, write_files, TestEnv};
use serde_json::json;

/// A repository with `raw` checked out in a linked worktree, and a source folder.
fn raw_checkout(env: &TestEnv) -> (PathBuf, PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let wt = env.path("raw-wt");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"x,y\n1,2\n"), ("sub/b.csv", b"x,y\n3,4\n")]);
    (repo, wt, src)
}

fn commit_data(env: &TestEnv, repo: &Path, src: &Path) -> std::process::Output {
    env.mlgit(repo, ["commit-data", "--source", src.to_str().unwrap()])
}

#[test]
fn worktree_sync_never_overwrites_an_untracked_file() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    write_files(&wt, &[("data/a.csv", b"my own notes, never committed\n")]);
    let refs = env.refs(&repo);
    let out = commit_data(&env, &repo, &src);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("untracked files that the commit would overwrite: data/a.csv"), "{err}");
    assert!(err.contains("hint: move or remove them"), "{err}");
    assert_eq!(env.refs(&repo), refs, "no ref moved");
    assert_eq!(fs::read(wt.join("data/a.csv")).unwrap(), b"my own notes, never committed\n");
    assert!(env.git(&wt, ["status", "--porcelain"]).contains("?? data/"));

    // Moved out of the way, the same command goes through and the checkout is clean.
    fs::remove_file(wt.join("data/a.csv")).unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    assert_eq!(fs::read(wt.join("data/a.csv")).unwrap(), b"x,y\n1,2\n");
    if env.has_git_lfs() {
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    }
}

#[test]
fn worktree_sync_never_writes_through_an_untracked_symlinked_folder() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(wt.join("data")).unwrap();
    std::os::unix::fs::symlink(&outside, wt.join("data/sub")).unwrap();
    let refs = env.refs(&repo);
    let out = commit_data(&env, &repo, &src);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("data/sub/b.csv (a symlink where a folder goes)"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs, "no ref moved");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing written outside the worktree");
}

#[test]
fn merge_tracking_never_overwrites_an_untracked_file_in_main() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let stable = env.path("stable");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    let record = json!({
        "schema": 1, "tag": "model-v1", "branch": "stable/model", "created_at": "2026-11-20T10:00:00Z",
        "duration_s": 1.0, "command": ["sh", "train.sh"], "params": {}, "metrics": {"accuracy": 0.5},
        "code": {"commit": null}, "data": {"split": null, "clean": null, "raw": null},
        "model": [], "host": "ci", "mlgit": "0.1.0"
    });
    write_files(&stable, &[("tracking/run.json", record.to_string().as_bytes())]);
    env.git(&stable, ["add", "-A"]);
    env.git(&stable, ["commit", "-q", "-m", "train"]);
    env.git(&stable, ["tag", "-a", "model-v1", "-m", "snapshot"]);
    write_files(&repo, &[("tracking/runs/model-v1.json", b"hand-written\n")]);
    let refs = env.refs(&repo);
    let out = env.mlgit(&repo, ["merge-tracking"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("tracking/runs/model-v1.json (an untracked file)"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs);
    assert_eq!(fs::read(repo.join("tracking/runs/model-v1.json")).unwrap(), b"hand-written\n");
}

#[test]
fn a_kill_after_the_ref_moved_is_finished_by_the_next_command() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    let many: Vec<(String, Vec<u8>)> =
        (0..300).map(|i| (format!("batch/f{i:04}.csv"), format!("x\n{i}\n").into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = many.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    write_files(&src, &files);
    let before = env.git(&repo, ["rev-parse", "raw"]);
    let out = env
        .mlgit_cmd(&repo)
        .env("MLGIT_TEST_CRASH", "after-ref-move")
        .args(["commit-data", "--source", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the hook must have aborted the run");
    assert_ne!(env.git(&repo, ["rev-parse", "raw"]), before, "the ref moved before the crash");
    // The checkout lags the branch: git sees the whole batch as staged deletions.
    assert!(env.git(&wt, ["status", "--porcelain"]).contains("D  data/batch/f0000.csv"));

    // Any mlgit command finishes the sync; then the checkout is the branch, and commits go on.
    let out = env.mlgit(&repo, ["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("finished bringing"), "{}", stderr(&out));
    assert_eq!(fs::read(wt.join("data/batch/f0299.csv")).unwrap(), b"x\n299\n");
    if env.has_git_lfs() {
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    }
    write_files(&src, &[("later.csv", b"x\n9\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    assert_eq!(fs::read(wt.join("data/later.csv")).unwrap(), b"x\n9\n");
}

#[test]
fn a_kill_during_merge_tracking_is_repaired_by_running_it_again() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let stable = env.path("stable");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    for (i, tag) in ["model-v1", "model-v2"].iter().enumerate() {
        let record = json!({
            "schema": 1, "tag": tag, "branch": "stable/model", "created_at": "2026-11-20T10:00:00Z",
            "duration_s": 1.0, "command": ["sh", "train.sh"], "params": {}, "metrics": {"accuracy": 0.5 + i as f64 / 10.0},
            "code": {"commit": null}, "data": {"split": null, "clean": null, "raw": null},
            "model": [], "host": "ci", "mlgit": "0.1.0"
        });
        write_files(&stable, &[("tracking/run.json", record.to_string().as_bytes())]);
        env.git(&stable, ["add", "-A"]);
        env.git(&stable, ["commit", "-q", "-m", "train"]);
        env.git(&stable, ["tag", "-a", tag, "-m", "snapshot"]);
    }
    let out = env
        .mlgit_cmd(&repo)
        .env("MLGIT_TEST_CRASH", "after-ref-move")
        .arg("merge-tracking")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!env.git(&repo, ["status", "--porcelain"]).is_empty(), "the checkout lags main");
    env.mlgit_ok(&repo, ["merge-tracking"]);
    assert_eq!(env.git(&repo, ["status", "--porcelain"]), "");
    assert!(repo.join("tracking/runs/model-v2.json").is_file());
}

#[test]
fn bad_branch_names_are_refused() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a.csv", b"x\n1\n")]);
    let refs = env.refs(&repo);
    for name in ["HEAD", "@", "refs/heads/x", "refs/tags/v1", "-x", "heads/raw", "FETCH_HEAD"] {
        let branch = format!("--branch={name}");
        let out = env.mlgit(&repo, ["commit-data", "--source", src.to_str().unwrap(), "--create", &branch]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("is not a usable branch name"), "{name}: {}", stderr(&out));
    }
    assert_eq!(env.refs(&repo), refs, "no ref created");
    // git itself is not confused afterwards.
    env.git(&repo, ["rev-parse", "--verify", "HEAD"]);
}

/// Commit-data into checked-out `raw` that the hook kills right after the ref moved.
fn crashed_commit(env: &TestEnv, repo: &Path, args: &[&str]) {
    let out = env.mlgit_cmd(repo).env("MLGIT_TEST_CRASH", "after-ref-move").args(args).output().unwrap();
    assert!(!out.status.success(), "the hook must have aborted the run");
}

#[test]
fn recovery_never_overwrites_a_file_made_after_the_crash_nor_writes_through_a_symlink() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    crashed_commit(&env, &repo, &["commit-data", "--source", src.to_str().unwrap()]);
    // The user works in the checkout before running any mlgit command.
    write_files(&wt, &[("data/a.csv", b"my own work\n")]);
    std::os::unix::fs::symlink(&outside, wt.join("data/sub")).unwrap();
    let out = env.mlgit(&repo, ["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("data/a.csv (an untracked file)"), "{err}");
    assert!(err.contains("data/sub/b.csv (a symlink where a folder goes)"), "{err}");
    assert!(err.contains("hint: move those paths out of"), "{err}");
    assert_eq!(fs::read(wt.join("data/a.csv")).unwrap(), b"my own work\n");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing written outside the worktree");

    // Moved away, the next command finishes the sync.
    fs::remove_file(wt.join("data/a.csv")).unwrap();
    fs::remove_file(wt.join("data/sub")).unwrap();
    env.mlgit_ok(&repo, ["status"]);
    assert_eq!(fs::read(wt.join("data/sub/b.csv")).unwrap(), b"x,y\n3,4\n");
    if env.has_git_lfs() {
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    }
}

#[test]
fn recovery_never_deletes_through_a_symlink_planted_after_the_crash() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("old/a.csv", b"a\n"), ("old/b.csv", b"b\n"), ("keep.csv", b"k\n")]);
    let s = src.to_str().unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", s, "--branch", "work", "--create"]);
    let wt = env.path("work-wt");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "work"]);
    fs::remove_dir_all(src.join("old")).unwrap();
    crashed_commit(&env, &repo, &["commit-data", "--source", s, "--branch", "work", "--replace"]);
    let outside = env.path("outside");
    write_files(&outside, &[("a.csv", b"precious a\n"), ("b.csv", b"precious b\n")]);
    fs::remove_dir_all(wt.join("data/old")).unwrap();
    std::os::unix::fs::symlink(&outside, wt.join("data/old")).unwrap();
    let out = env.mlgit(&repo, ["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("(a symlink where a folder goes)"), "{}", stderr(&out));
    assert_eq!(fs::read(outside.join("a.csv")).unwrap(), b"precious a\n");
    assert_eq!(fs::read(outside.join("b.csv")).unwrap(), b"precious b\n");
}

#[test]
fn a_journal_mlgit_did_not_write_never_blocks_a_command() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let sync = repo.join(".git/mlgit/sync");
    fs::create_dir_all(&sync).unwrap();
    fs::write(sync.join("..%2Fweird..json"), b"{\"branch\":\"x\"}").unwrap();
    fs::write(sync.join("raw.json"), b"not json").unwrap();
    env.mlgit_ok(&repo, ["status"]);
}

#[test]
fn a_users_own_lfs_line_never_marks_a_plain_file() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("small.bin", b"plain\n")]);
    let s = src.to_str().unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", s, "--branch", "work", "--create", "--dest", "."]);
    // A colleague runs `git lfs track "*.bin"` by hand: a line of their own above mlgit's block.
    let wt = env.path("work-wt");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "work"]);
    let attrs = fs::read_to_string(wt.join(".gitattributes")).unwrap_or_default();
    fs::write(wt.join(".gitattributes"), format!("*.bin filter=lfs diff=lfs merge=lfs -text\n{attrs}"))
        .unwrap();
    env.git(&wt, ["-c", "filter.lfs.clean=cat", "add", ".gitattributes"]);
    env.git(&wt, ["commit", "-q", "-m", "track bins"]);
    write_files(&src, &[("other.txt", b"more\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", s, "--branch", "work", "--dest", "."]);
    let attr = env.git(&repo, ["check-attr", "--source=work", "filter", "small.bin"]);
    assert_eq!(attr.trim(), "small.bin: filter: unspecified", "the plain file is unmarked");
    assert_eq!(env.git(&repo, ["cat-file", "-p", "work:small.bin"]), "plain\n");
}

#[test]
fn replace_keeps_a_file_that_takes_the_place_of_a_folder() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("x/a.csv", b"a\n")]);
    let s = src.to_str().unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", s, "--branch", "work", "--create"]);
    fs::remove_dir_all(src.join("x")).unwrap();
    write_files(&src, &[("x", b"now a file\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", s, "--branch", "work", "--replace"]);
    assert_eq!(env.git(&repo, ["ls-tree", "-r", "--name-only", "work", "data"]), "data/x\n");
}

#[test]
fn a_checkout_moved_after_the_crash_is_still_finished() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    crashed_commit(&env, &repo, &["commit-data", "--source", src.to_str().unwrap()]);
    let moved = env.path("moved-wt");
    env.git(&repo, ["worktree", "move", wt.to_str().unwrap(), moved.to_str().unwrap()]);
    let out = env.mlgit(&repo, ["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(moved.join("data/a.csv")).unwrap(), b"x,y\n1,2\n");
    if env.has_git_lfs() {
        assert_eq!(env.git(&moved, ["status", "--porcelain"]), "");
    }
}

#[test]
fn a_plain_file_committed_by_hand_is_unmarked_by_the_next_commit() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    // A colleague without git-lfs adds a small file under data/ by hand: a plain blob.
    write_files(&wt, &[("data/hand.txt", b"typed by hand\n")]);
    env.git(&wt, ["add", "data/hand.txt"]);
    env.git(&wt, ["commit", "-q", "-m", "a note"]);
    assert_eq!(env.git(&repo, ["cat-file", "-p", "raw:data/hand.txt"]), "typed by hand\n");
    write_files(&src, &[("c.csv", b"x,y\n5,6\n")]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    let plain = env.git(&repo, ["check-attr", "--source=raw", "filter", "data/hand.txt"]);
    assert_eq!(plain.trim(), "data/hand.txt: filter: unspecified");
    let pointer = env.git(&repo, ["check-attr", "--source=raw", "filter", "data/c.csv"]);
    assert_eq!(pointer.trim(), "data/c.csv: filter: lfs");
}

#[test]
fn a_sparse_checkout_is_not_mistaken_for_uncommitted_changes() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a/1.csv", b"x\n1\n"), ("b/2.csv", b"x\n2\n")]);
    let s = src.to_str().unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", s]);
    let wt = env.path("raw-wt");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    env.git(&wt, ["sparse-checkout", "set", "--no-cone", "/data/a/", "/.gitattributes", "/README.md"]);
    assert!(!wt.join("data/b/2.csv").exists());
    assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    write_files(&src, &[("a/3.csv", b"x\n3\n"), ("b/4.csv", b"x\n4\n")]);
    fs::write(src.join("b/2.csv"), b"x\n2\n").unwrap();
    env.mlgit_ok(&repo, ["commit-data", "--source", s]);
    assert_eq!(fs::read(wt.join("data/a/3.csv")).unwrap(), b"x\n3\n");
    assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    assert!(!wt.join("data/b/2.csv").exists(), "outside the cone stays empty");
}

#[test]
fn a_case_only_twin_of_a_tracked_file_is_untracked_even_with_ignorecase() {
    let env = TestEnv::new();
    let (repo, wt, src) = raw_checkout(&env);
    env.git(&wt, ["config", "core.ignorecase", "true"]);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    write_files(&wt, &[("data/A.csv", b"mine, untracked\n")]);
    fs::remove_file(src.join("a.csv")).unwrap();
    write_files(&src, &[("A.csv", b"from the source\n")]);
    let refs = env.refs(&repo);
    let out = commit_data(&env, &repo, &src);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("data/A.csv (an untracked file)"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs);
    assert_eq!(fs::read(wt.join("data/A.csv")).unwrap(), b"mine, untracked\n");
}

#[test]
fn a_tab_in_a_name_is_refused_as_gitattributes_cannot_tell_it_from_a_space() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("src");
    write_files(&src, &[("a b.csv", b"x\n1\n"), ("a\tb.csv", b"x\n2\n")]);
    let refs = env.refs(&repo);
    let out = env.mlgit(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("control character"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs);
}
