//! Integrating fetched history (`remote::integrate`, the second half of `pull`) and `init`/`status`
//! in a clone, with real git: two clones of a `file://` bare remote exchange commits with plain
//! `git push`/`git fetch`, then the library integrates them (run in a child process, so a
//! `kill -9` can be simulated) and git checks the result.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, write_files, TestEnv};
use serde_json::{json, Value};

/// A remote and a first clone `a` made by `mlgit init` and pushed with plain git.
fn shared(env: &TestEnv) -> (PathBuf, PathBuf) {
    let a = env.init_repo("a");
    let bare = env.path("remote.git");
    env.git(env.tmp.path(), ["init", "-q", "--bare", bare.to_str().unwrap()]);
    env.git(&a, ["remote", "add", "origin", &url(&bare)]);
    env.git(&a, ["push", "-q", "origin", "--all"]);
    (bare, a)
}

fn url(bare: &Path) -> String {
    format!("file://{}", bare.display())
}

/// A colleague's clone of the remote, completed with `mlgit init` (branches from origin).
fn colleague(env: &TestEnv, bare: &Path, name: &str) -> PathBuf {
    let dir = env.path(name);
    env.git(env.tmp.path(), ["clone", "-q", &url(bare), dir.to_str().unwrap()]);
    env.mlgit_ok(&dir, ["init", "--quiet"]);
    dir
}

fn commit_data(env: &TestEnv, repo: &Path, branch: &str, files: &[(&str, &[u8])]) {
    let src = env.path(&format!("src-{}", env.date.get()));
    write_files(&src, files);
    env.mlgit_ok(repo, ["commit-data", "--source", src.to_str().unwrap(), "--branch", branch, "-m", "batch"]);
    env.tick();
}

/// What the LFS download of `pull` will do: copy the objects the other clone has.
fn copy_lfs_objects(from: &Path, to: &Path) {
    let src = from.join(".git/lfs/objects");
    if src.exists() {
        fs::create_dir_all(to.join(".git/lfs")).unwrap();
        let ok = Command::new("cp").arg("-rn").arg(&src).arg(to.join(".git/lfs/")).status().unwrap();
        assert!(ok.success());
    }
}

fn rev(env: &TestEnv, repo: &Path, r: &str) -> String {
    env.git(repo, ["rev-parse", r]).trim().to_string()
}

/// Run `remote::integrate` on `repo` in a child process (this test binary, running
/// [`integrate_child`]) with the test's isolated environment; returns the outcome as JSON.
fn integrate(env: &TestEnv, repo: &Path, branches: &[&str]) -> Value {
    let out = integrate_cmd(env, repo, branches).output().unwrap();
    let text = stdout(&out);
    let line = text
        .lines()
        .find_map(|l| l.split_once("OUTCOME ").map(|(_, o)| o))
        .unwrap_or_else(|| panic!("no outcome: {}\nstdout:\n{text}\nstderr:\n{}", out.status, stderr(&out)));
    serde_json::from_str(line).unwrap()
}

fn integrate_cmd(env: &TestEnv, repo: &Path, branches: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "integrate_child", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .env("USER", "tester")
        .env("GIT_AUTHOR_DATE", format!("@{} +0000", env.date.get()))
        .env("GIT_COMMITTER_DATE", format!("@{} +0000", env.date.get()))
        .env("MLGIT_IT_REPO", repo)
        .env("MLGIT_IT_BRANCHES", branches.join(","));
    env.tick();
    cmd
}

#[test]
#[ignore = "the child process of the other tests"]
fn integrate_child() {
    let Ok(dir) = std::env::var("MLGIT_IT_REPO") else { return };
    let branches = std::env::var("MLGIT_IT_BRANCHES").unwrap_or_default();
    let repo = mlgit::repo::Repo::discover(Path::new(&dir)).unwrap();
    let opts = mlgit::remote::integrate::IntegrateOptions {
        remote: "origin".into(),
        branches: branches.split(',').filter(|b| !b.is_empty()).map(str::to_string).collect(),
        interrupt: Default::default(),
    };
    match mlgit::remote::integrate::integrate(&repo, &opts) {
        Ok(o) => println!("OUTCOME {}", serde_json::to_string(&o).unwrap()),
        Err(e) => println!("OUTCOME {}", json!({"error": e.to_string(), "hint": e.hint()})),
    }
}

/// The entry of one branch in an outcome.
fn entry<'a>(outcome: &'a Value, branch: &str) -> &'a Value {
    outcome["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch"] == branch)
        .unwrap_or_else(|| panic!("no entry for {branch}: {outcome}"))
}

fn tree_files(env: &TestEnv, repo: &Path, rev: &str) -> Vec<String> {
    env.git(repo, ["ls-tree", "-r", "--name-only", rev]).lines().map(str::to_string).collect()
}

#[test]
fn init_in_a_fresh_clone_creates_branches_from_the_remote_so_the_next_push_is_not_rejected() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    commit_data(&env, &a, "raw", &[("first.csv", b"x\n1\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);

    let b = env.path("b");
    env.git(env.tmp.path(), ["clone", "-q", &url(&bare), b.to_str().unwrap()]);
    // Before init: status says raw is only on the remote and how to get it.
    let status = env.mlgit_json(&b, ["status"]);
    let raw = status["branches"].as_array().unwrap().iter().find(|x| x["name"] == "raw").unwrap();
    assert_eq!(raw["exists"], false, "{raw}");
    assert_eq!(raw["remote_only"], true, "{raw}");
    assert_eq!(raw["fetch_with"], "mlgit pull --ref raw", "{raw}");
    assert_eq!(raw["upstream"]["name"], "origin/raw", "{raw}");
    let text = env.mlgit_ok(&b, ["status"]);
    assert!(text.contains("only on the remote (origin/raw"), "{text}");
    assert!(text.contains("`mlgit pull --ref raw`"), "{text}");

    let init = env.mlgit_json(&b, ["init"]);
    let created: Vec<&Value> = init["created"].as_array().unwrap().iter().collect();
    let raw = created.iter().find(|c| c["branch"] == "raw").unwrap_or_else(|| panic!("{init}"));
    assert_eq!(raw["from_remote"], "origin/raw");
    assert_eq!(rev(&env, &b, "raw"), rev(&env, &b, "origin/raw"), "raw starts at the remote's tip");
    for branch in ["clean", "split", "dev/model", "stable/model", "monitoring/prod"] {
        assert_eq!(rev(&env, &b, branch), rev(&env, &b, &format!("origin/{branch}")), "{branch}");
    }
    assert_eq!(env.git(&b, ["rev-parse", "--abbrev-ref", "raw@{upstream}"]).trim(), "origin/raw");

    // The trap of the issue: the next commit-data lands on a branch with the remote's history,
    // so a plain push is a fast-forward.
    commit_data(&env, &b, "raw", &[("second.csv", b"x\n2\n")]);
    let out = env.git_cmd(&b).args(["push", "origin", "raw"]).output().unwrap();
    assert!(out.status.success(), "push rejected: {}", stderr(&out));
    assert_eq!(tree_files(&env, &bare, "raw").iter().filter(|p| p.ends_with(".csv")).count(), 2);
}

#[test]
fn diverged_raw_is_union_merged_into_one_history() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    commit_data(&env, &a, "raw", &[("batch-a/1.csv", b"a\n1\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    commit_data(&env, &b, "raw", &[("batch-b/1.csv", b"b\n1\n")]);
    let local = rev(&env, &b, "raw");
    env.git(&b, ["fetch", "-q", "origin"]);
    let remote = rev(&env, &b, "origin/raw");

    let out = integrate(&env, &b, &[]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "merged", "{out}");
    assert_eq!(raw["merge"], "union");
    assert_eq!(raw["added"], json!(["data/batch-a/1.csv"]));
    for other in ["main", "clean", "split", "dev/model", "stable/model"] {
        assert_eq!(entry(&out, other)["action"], "up-to-date", "{other}: {out}");
    }
    let files = tree_files(&env, &b, "raw");
    assert!(
        files.contains(&"data/batch-a/1.csv".to_string())
            && files.contains(&"data/batch-b/1.csv".to_string())
    );
    assert_eq!(
        env.git(&b, ["rev-parse", "raw^1", "raw^2"]),
        format!("{local}\n{remote}\n"),
        "parents [local, remote]"
    );
    let merges = env.git(&b, ["log", "--merges", "--format=%s%n%b", "raw"]);
    assert!(
        merges.contains("union of two append-only histories") && merges.contains("Mlgit-Merge: union"),
        "{merges}"
    );
    // Both batches are marked for LFS, as on every tree mlgit writes.
    for p in ["data/batch-a/1.csv", "data/batch-b/1.csv"] {
        let attr = env.git(&b, ["check-attr", "--source=raw", "filter", p]);
        assert_eq!(attr.trim(), format!("{p}: filter: lfs"));
    }
    // One history: b pushes (a fast-forward of the remote), a integrates it by fast-forward.
    env.git(&b, ["push", "-q", "origin", "raw"]);
    env.git(&a, ["fetch", "-q", "origin"]);
    let out = integrate(&env, &a, &["raw"]);
    assert_eq!(entry(&out, "raw")["action"], "fast-forwarded", "{out}");
    assert_eq!(rev(&env, &a, "raw"), rev(&env, &b, "raw"));
}

#[test]
fn diverged_raw_with_the_same_path_holding_different_content_is_refused_naming_the_paths() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    commit_data(&env, &a, "raw", &[("x.csv", b"from a\n"), ("only-a.csv", b"a\n")]);
    fs::write(a.join("NOTES.md"), "from a\n").unwrap();
    env.git(&a, ["add", "NOTES.md"]);
    env.git(&a, ["commit", "-q", "-m", "notes"]);
    env.git(&a, ["push", "-q", "origin", "raw", "main"]);
    commit_data(&env, &b, "raw", &[("x.csv", b"from b\n")]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let before = env.refs(&b);
    let raw_before = rev(&env, &b, "raw");

    let out = integrate(&env, &b, &[]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "refused", "{out}");
    assert_eq!(raw["paths"], json!(["data/x.csv"]), "{out}");
    assert!(raw["reason"].as_str().unwrap().contains("data/x.csv"), "{out}");
    assert!(raw["hint"].as_str().unwrap().contains("nothing was written"), "{out}");
    // Both colleagues added data/x.csv: the hint says so and gives the way out, and does not blame
    // an edit with plain git (nobody made one; `mlgit verify` would find nothing).
    let hint = raw["hint"].as_str().unwrap();
    assert!(hint.contains("both sides added") && hint.contains("another --dest"), "{hint}");
    assert!(!hint.contains("plain git"), "{hint}");
    assert_eq!(rev(&env, &b, "raw"), raw_before, "raw did not move");
    // One branch refused does not undo the others: main was fast-forwarded.
    assert_eq!(entry(&out, "main")["action"], "fast-forwarded", "{out}");
    assert_eq!(fs::read(b.join("NOTES.md")).unwrap(), b"from a\n");
    assert_eq!(env.git(&b, ["status", "--porcelain"]), "");
    let after = env.refs(&b);
    let changed: Vec<&str> = after.lines().filter(|l| !before.contains(*l)).collect();
    assert_eq!(changed.len(), 1, "only main moved: {changed:?}");
    assert!(changed[0].starts_with("refs/heads/main "), "{changed:?}");
    // The way out the hint gives works: yours kept aside, the remote's taken.
    env.git(&b, ["branch", "raw-mine", "raw"]);
    env.git(&b, ["branch", "-f", "raw", "origin/raw"]);
    assert_eq!(rev(&env, &b, "raw-mine"), raw_before);
    assert_eq!(entry(&integrate(&env, &b, &[]), "raw")["action"], "up-to-date");
}

/// A snapshot tag on `stable/model` with a tracking record, then `mlgit merge-tracking`.
fn snapshot(env: &TestEnv, repo: &Path, tag: &str, accuracy: f64) {
    snapshot_with(env, repo, tag, accuracy, &[]);
}

fn snapshot_with(env: &TestEnv, repo: &Path, tag: &str, accuracy: f64, files: &[(&str, &[u8])]) {
    let name = repo.file_name().unwrap().to_str().unwrap();
    let record = json!({
        "schema": 1, "tag": tag, "branch": "stable/model", "created_at": format!("2026-11-2{}T10:00:00Z", (accuracy * 10.0) as u32),
        "duration_s": 1.0, "command": ["sh", "train.sh"], "params": {}, "metrics": {"accuracy": accuracy},
        "code": {"commit": null}, "data": {"split": null, "clean": null, "raw": null},
        "model": [], "host": "ci", "mlgit": "0.1.0"
    });
    let wt = env.path(&format!("{name}-stable"));
    if !wt.exists() {
        env.git(repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "stable/model"]);
    }
    write_files(&wt, &[("tracking/run.json", record.to_string().as_bytes())]);
    write_files(&wt, files);
    env.git(&wt, ["add", "-A"]);
    env.git(&wt, ["commit", "-q", "-m", "train"]);
    env.git(&wt, ["tag", "-a", tag, "-m", "snapshot"]);
    env.mlgit_ok(repo, ["merge-tracking", tag]);
    env.tick();
}

#[test]
fn diverged_main_has_its_tracking_merged_again_over_both_sides_runs() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    snapshot(&env, &a, "model-v1", 0.5);
    fs::write(a.join("README.md"), "# edited by a\n").unwrap();
    env.git(&a, ["commit", "-q", "-am", "docs"]);
    env.git(&a, ["push", "-q", "origin", "main", "--tags"]);
    snapshot(&env, &b, "model-v2", 0.7);
    env.git(&b, ["fetch", "-q", "origin", "--tags"]);
    let local = rev(&env, &b, "main");

    let out = integrate(&env, &b, &["main"]);
    let main = entry(&out, "main");
    assert_eq!(main["action"], "merged", "{out}");
    assert_eq!(main["merge"], "tracking");
    assert_eq!(main["added"], json!(["model-v1"]));
    assert_eq!(env.git(&b, ["rev-parse", "main^1"]).trim(), local);
    let runs: Value = serde_json::from_str(&env.git(&b, ["show", "main:tracking/runs.json"])).unwrap();
    let tags: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["model-v1", "model-v2"]);
    let board = env.git(&b, ["show", "main:tracking/README.md"]);
    assert!(board.contains("[model-v2]") && board.contains("[model-v1]"), "{board}");
    assert_eq!(env.git(&b, ["show", "main:README.md"]), "# edited by a\n", "other paths merged three-way");
    // main is checked out in b: its files follow, and git sees nothing to commit.
    assert!(b.join("tracking/runs/model-v1.json").is_file());
    assert_eq!(env.git(&b, ["status", "--porcelain"]), "");
    let runs = env.mlgit_ok(&b, ["runs"]);
    assert!(runs.contains("model-v1") && runs.contains("model-v2"), "{runs}");
}

/// `b` with raw checked out in a linked worktree, and a commit on the remote's raw that b fetched.
fn behind_raw_checkout(env: &TestEnv) -> (PathBuf, PathBuf, PathBuf) {
    let (bare, a) = shared(env);
    let b = colleague(env, &bare, "b");
    let wt = env.path("b-raw");
    env.git(&b, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    commit_data(env, &a, "raw", &[("new/1.csv", b"n\n1\n"), ("new/2.csv", b"n\n2\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    env.git(&b, ["fetch", "-q", "origin"]);
    copy_lfs_objects(&a, &b);
    (a, b, wt)
}

#[test]
fn fast_forward_of_a_checked_out_branch_updates_the_worktree_and_git_status_stays_clean() {
    let env = TestEnv::new();
    let lfs = env.has_git_lfs();
    let (_a, b, wt) = behind_raw_checkout(&env);
    let status = env.mlgit_json(&b, ["status"]);
    let raw = status["branches"].as_array().unwrap().iter().find(|x| x["name"] == "raw").unwrap();
    assert_eq!(raw["upstream"]["behind"], 1, "{raw}");
    assert!(env.mlgit_ok(&b, ["status"]).contains("[behind origin/raw by 1: `mlgit pull`]"));

    let out = integrate(&env, &b, &["raw"]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "fast-forwarded", "{out}");
    assert_eq!(raw["worktree"], wt.to_str().unwrap(), "{out}");
    assert_eq!(rev(&env, &b, "raw"), rev(&env, &b, "origin/raw"));
    assert_eq!(fs::read(wt.join("data/new/2.csv")).unwrap(), b"n\n2\n", "LFS content, not the pointer");
    if lfs {
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    }
    let reflog = env.git(&b, ["reflog", "-1", "--format=%gs", "raw"]);
    assert!(reflog.starts_with("mlgit pull: fast-forward"), "{reflog}");
}

#[test]
fn fast_forward_is_refused_when_the_checkout_has_uncommitted_changes() {
    let env = TestEnv::new();
    let (_a, b, wt) = behind_raw_checkout(&env);
    fs::write(wt.join("README.md"), "my edit\n").unwrap();
    let before = rev(&env, &b, "raw");
    let out = integrate(&env, &b, &["raw"]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "refused", "{out}");
    assert!(raw["reason"].as_str().unwrap().contains("uncommitted changes (README.md)"), "{out}");
    assert!(raw["hint"].as_str().unwrap().contains("stash"), "{out}");
    assert_eq!(rev(&env, &b, "raw"), before);
    assert_eq!(fs::read(wt.join("README.md")).unwrap(), b"my edit\n");
    assert!(!wt.join("data/new/1.csv").exists());
}

#[test]
fn fast_forward_is_refused_when_an_untracked_file_is_in_the_way() {
    let env = TestEnv::new();
    let (_a, b, wt) = behind_raw_checkout(&env);
    write_files(&wt, &[("data/new/1.csv", b"mine, never committed\n")]);
    let before = rev(&env, &b, "raw");
    let out = integrate(&env, &b, &["raw"]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "refused", "{out}");
    assert!(raw["reason"].as_str().unwrap().contains("data/new/1.csv (an untracked file)"), "{out}");
    assert_eq!(rev(&env, &b, "raw"), before);
    assert_eq!(fs::read(wt.join("data/new/1.csv")).unwrap(), b"mine, never committed\n");
    // Moved away, the same integration goes through.
    fs::remove_file(wt.join("data/new/1.csv")).unwrap();
    assert_eq!(entry(&integrate(&env, &b, &["raw"]), "raw")["action"], "fast-forwarded");
    assert_eq!(fs::read(wt.join("data/new/1.csv")).unwrap(), b"n\n1\n");
}

#[test]
fn a_kill_after_the_fast_forward_moved_the_ref_is_finished_by_the_next_command() {
    let env = TestEnv::new();
    let lfs = env.has_git_lfs();
    let (_a, b, wt) = behind_raw_checkout(&env);
    let out = integrate_cmd(&env, &b, &["raw"]).env("MLGIT_TEST_CRASH", "after-ref-move").output().unwrap();
    assert!(!stdout(&out).contains("OUTCOME"), "the hook must have aborted the run: {}", stdout(&out));
    assert_eq!(rev(&env, &b, "raw"), rev(&env, &b, "origin/raw"), "the ref moved before the crash");
    assert!(!wt.join("data/new/1.csv").exists(), "the checkout lags the branch");

    let out = env.mlgit(&b, ["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("finished bringing"), "{}", stderr(&out));
    assert_eq!(fs::read(wt.join("data/new/1.csv")).unwrap(), b"n\n1\n");
    if lfs {
        assert_eq!(env.git(&wt, ["status", "--porcelain"]), "");
    }
}

#[test]
fn diverged_clean_is_refused_with_a_hint_to_derive_it_again() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    env.commit_on(&a, "clean", &[("data/a.csv", b"a\n")], "by hand in a");
    env.git(&a, ["push", "-q", "origin", "clean"]);
    let wt = env.path("wt-clean");
    fs::remove_dir_all(&wt).ok();
    env.git(&b, ["worktree", "add", "-q", wt.to_str().unwrap(), "clean"]);
    write_files(&wt, &[("data/b.csv", b"b\n")]);
    env.git(&wt, ["add", "-A"]);
    env.git(&wt, ["commit", "-q", "-m", "by hand in b"]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let before = rev(&env, &b, "clean");
    let out = integrate(&env, &b, &[]);
    let clean = entry(&out, "clean");
    assert_eq!(clean["action"], "refused", "{out}");
    assert!(clean["reason"].as_str().unwrap().contains("diverged"), "{out}");
    assert!(clean["hint"].as_str().unwrap().contains("`mlgit clean`"), "{out}");
    assert_eq!(rev(&env, &b, "clean"), before);
    assert_eq!(clean["ahead"], 1);
    assert_eq!(clean["behind"], 1);
}

#[test]
fn fast_forward_of_raw_to_a_commit_that_deletes_a_file_is_refused_as_append_only() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    commit_data(&env, &a, "raw", &[("keep.csv", b"k\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    let b = colleague(&env, &bare, "b");
    // Someone deletes a committed file on raw with plain git and pushes.
    let wt = env.path("a-raw");
    env.git(&a, ["worktree", "add", "-q", wt.to_str().unwrap(), "raw"]);
    env.git(&wt, ["rm", "-q", "data/keep.csv"]);
    env.git(&wt, ["commit", "-q", "-m", "oops"]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let before = rev(&env, &b, "raw");
    let out = integrate(&env, &b, &["raw"]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "refused", "{out}");
    assert!(raw["reason"].as_str().unwrap().contains("append-only"), "{out}");
    assert!(raw["reason"].as_str().unwrap().contains("data/keep.csv"), "{out}");
    assert_eq!(rev(&env, &b, "raw"), before);
}

#[test]
fn a_branch_the_remote_lacks_is_refused_by_name_and_others_untouched() {
    let env = TestEnv::new();
    let (bare, _a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    let before = env.refs(&b);
    let out = integrate(&env, &b, &["dev/nobody"]);
    let e = entry(&out, "dev/nobody");
    assert_eq!(e["action"], "refused");
    assert!(e["reason"].as_str().unwrap().contains("origin has no branch 'dev/nobody'"), "{out}");
    assert_eq!(env.refs(&b), before);
}

#[test]
fn a_raw_started_without_the_remotes_history_is_refused_with_the_way_out() {
    let env = TestEnv::new();
    let (bare, _a) = shared(&env);
    // Fallen into the trap before this fix: a repository of its own, its raw an orphan beside origin's.
    let c = env.init_repo("c");
    commit_data(&env, &c, "raw", &[("mine.csv", b"c\n")]);
    env.git(&c, ["remote", "add", "origin", &url(&bare)]);
    env.git(&c, ["fetch", "-q", "origin"]);
    let before = rev(&env, &c, "raw");
    let out = integrate(&env, &c, &["raw"]);
    let raw = entry(&out, "raw");
    assert_eq!(raw["action"], "refused", "{out}");
    assert_eq!(raw["paths"], json!(["README.md"]), "{out}");
    let hint = raw["hint"].as_str().unwrap();
    assert!(hint.contains("share no commit") && hint.contains("git branch -m raw raw-local"), "{hint}");
    assert_eq!(rev(&env, &c, "raw"), before);
    // The way out the hint gives.
    env.git(&c, ["branch", "-m", "raw", "raw-local"]);
    env.mlgit_ok(&c, ["init"]);
    assert_eq!(rev(&env, &c, "raw"), rev(&env, &c, "origin/raw"));
}

/// A one-run MLflow store as MLflow 3.17.2 writes it, with the Default experiment created at `at`.
fn mlruns(run: &str, at: u64) -> Vec<(String, Vec<u8>)> {
    let exp = format!(
        "artifact_location: file:///home/ann/proj/mlruns/0\ncreation_time: {at}\n\
         effective_trace_archival_retention: null\nexperiment_id: '0'\n\
         last_update_time: {at}\nlifecycle_stage: active\nname: Default\n\
         trace_location: null\nworkspace: default\n"
    );
    let meta = format!(
        "artifact_uri: file:///home/ann/proj/mlruns/0/{run}/artifacts\nend_time: {}\n\
         entry_point_name: ''\nexperiment_id: '0'\nlifecycle_stage: active\nrun_id: {run}\n\
         run_name: {run}\nsource_name: ''\nsource_type: 4\nsource_version: ''\n\
         start_time: {at}\nstatus: 3\ntags: []\nuser_id: root\n",
        at + 20
    );
    vec![
        ("mlruns/0/meta.yaml".into(), exp.into_bytes()),
        (format!("mlruns/0/{run}/meta.yaml"), meta.into_bytes()),
        (format!("mlruns/0/{run}/params/lr"), b"0.1".to_vec()),
        (format!("mlruns/0/{run}/metrics/loss"), format!("{} 0.5 0\n", at + 10).into_bytes()),
        (format!("mlruns/0/{run}/tags/mlflow.runName"), run.as_bytes().to_vec()),
    ]
}

#[test]
fn diverged_main_merges_both_sides_mlflow_runs_each_under_its_own_snapshot() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    // Each side's training made its own Default experiment: its meta.yaml differs between sides.
    let store_a = mlruns("runa", 1795409563735);
    let files_a: Vec<(&str, &[u8])> = store_a.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    snapshot_with(&env, &a, "model-v1", 0.5, &files_a);
    env.git(&a, ["push", "-q", "origin", "main", "--tags"]);
    let store_b = mlruns("runb", 1795409999000);
    let files_b: Vec<(&str, &[u8])> = store_b.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    snapshot_with(&env, &b, "model-v2", 0.7, &files_b);
    env.git(&b, ["fetch", "-q", "origin", "--tags"]);
    assert_ne!(
        env.git(&b, ["rev-parse", "main:mlruns/0/meta.yaml"]),
        env.git(&b, ["rev-parse", "origin/main:mlruns/0/meta.yaml"])
    );

    let out = integrate(&env, &b, &["main"]);
    assert_eq!(entry(&out, "main")["action"], "merged", "{out}");
    assert_eq!(env.git(&b, ["show", "main:mlruns/0/runa/tags/mlgit.tag"]), "model-v1");
    assert_eq!(env.git(&b, ["show", "main:mlruns/0/runb/tags/mlgit.tag"]), "model-v2");
    assert_eq!(env.git(&b, ["status", "--porcelain"]), "");

    let Some(python) = common::python_with_mlflow() else { return };
    let export = env.path("served/mlruns");
    env.mlgit_ok(&b, ["tracking", "export", "--mlruns", export.to_str().unwrap()]);
    let expected = json!({
        "experiments": ["Default"], "exact_runs": true,
        "runs": {"runa": {"tags": {"mlgit.tag": "model-v1"}}, "runb": {"tags": {"mlgit.tag": "model-v2"}}}
    });
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_mlruns.py");
    let out = Command::new(&python)
        .arg(&checker)
        .arg(&export)
        .arg(expected.to_string())
        .env("HOME", &env.home)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env_remove("MLFLOW_TRACKING_URI")
        .current_dir(env.tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "MLflow reads the merged store: {}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
}

#[test]
fn a_kill_while_init_creates_main_from_the_remote_in_an_unborn_checkout_is_finished_by_the_next_command() {
    let env = TestEnv::new();
    let (bare, _a) = shared(&env);
    // `git init` + `git fetch`: HEAD points at a main that exists only as origin/main.
    let c = env.path("c");
    env.git(env.tmp.path(), ["init", "-q", c.to_str().unwrap()]);
    env.git(&c, ["remote", "add", "origin", &url(&bare)]);
    env.git(&c, ["fetch", "-q", "origin"]);
    let out = env.mlgit_cmd(&c).env("MLGIT_TEST_CRASH", "after-ref-move").arg("init").output().unwrap();
    assert!(!out.status.success(), "the hook must have aborted the run");
    assert_eq!(rev(&env, &c, "main"), rev(&env, &c, "origin/main"), "main was created before the crash");
    assert!(!c.join("mlgit.yaml").exists(), "the checkout lags the branch");

    let out = env.mlgit(&c, ["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("finished bringing"), "{}", stderr(&out));
    assert!(c.join("mlgit.yaml").is_file());
    assert_eq!(env.git(&c, ["status", "--porcelain"]), "");
    env.mlgit_ok(&c, ["init"]);
    assert_eq!(rev(&env, &c, "raw"), rev(&env, &c, "origin/raw"));
}

#[test]
fn a_fast_forward_to_a_commit_that_drops_the_tip_is_refused_and_nothing_moves() {
    use mlgit::repo::transaction::{Step, Transaction, TxOptions};
    let env = TestEnv::new();
    let repo_dir = env.init_repo("r");
    commit_data(&env, &repo_dir, "raw", &[("a.csv", b"a\n")]);
    let before = env.refs(&repo_dir);
    let clean = git2::Oid::from_str(&rev(&env, &repo_dir, "clean")).unwrap();
    let repo = mlgit::repo::Repo::discover(&repo_dir).unwrap();
    let tx = Transaction::open(&repo, "raw", TxOptions::default()).unwrap();
    let err = tx.commit(|_| Ok(Step::FastForward(clean))).unwrap_err();
    assert_eq!(err.kind(), mlgit::ErrorKind::Conflict);
    assert!(err.to_string().contains("does not contain the branch's tip"), "{err}");
    assert!(err.hint().is_some_and(|h| h.contains("diverged")), "{:?}", err.hint());
    assert_eq!(env.refs(&repo_dir), before);
}

#[test]
fn a_colleagues_own_gitattributes_line_survives_the_union_merge() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    let attrs = env.git(&a, ["show", "raw:.gitattributes"]);
    env.commit_on(&a, "raw", &[(".gitattributes", format!("*.txt text eol=lf\n{attrs}").as_bytes())], "eol");
    commit_data(&env, &a, "raw", &[("a.csv", b"a\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    commit_data(&env, &b, "raw", &[("b.csv", b"b\n")]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let out = integrate(&env, &b, &["raw"]);
    assert_eq!(entry(&out, "raw")["action"], "merged", "{out}");
    let merged = env.git(&b, ["show", "raw:.gitattributes"]);
    assert!(merged.starts_with("*.txt text eol=lf\n"), "{merged}");
    for p in ["data/a.csv", "data/b.csv"] {
        let attr = env.git(&b, ["check-attr", "--source=raw", "filter", p]);
        assert_eq!(attr.trim(), format!("{p}: filter: lfs"));
    }
    let attr = env.git(&b, ["check-attr", "--source=raw", "eol", "notes.txt"]);
    assert_eq!(attr.trim(), "notes.txt: eol: lf");
}

#[test]
fn diverged_main_with_a_conflict_outside_the_tracking_is_refused_naming_the_paths() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    fs::write(a.join("README.md"), "# a's version\n").unwrap();
    env.git(&a, ["commit", "-q", "-am", "a"]);
    env.git(&a, ["push", "-q", "origin", "main"]);
    fs::write(b.join("README.md"), "# b's version\n").unwrap();
    env.git(&b, ["commit", "-q", "-am", "b"]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let before = rev(&env, &b, "main");
    let out = integrate(&env, &b, &["main"]);
    let main = entry(&out, "main");
    assert_eq!(main["action"], "refused", "{out}");
    assert_eq!(main["paths"], json!(["README.md"]), "{out}");
    assert!(main["hint"].as_str().unwrap().contains("git merge origin/main"), "{out}");
    assert_eq!(rev(&env, &b, "main"), before);
    assert_eq!(fs::read(b.join("README.md")).unwrap(), b"# b's version\n");
    assert_eq!(env.git(&b, ["status", "--porcelain"]), "");
}

#[test]
fn the_same_batch_committed_on_both_sides_still_joins_the_two_histories() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    commit_data(&env, &a, "raw", &[("same.csv", b"same\n")]);
    env.git(&a, ["push", "-q", "origin", "raw"]);
    commit_data(&env, &b, "raw", &[("same.csv", b"same\n")]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let out = integrate(&env, &b, &["raw"]);
    assert_eq!(entry(&out, "raw")["action"], "merged", "{out}");
    assert_eq!(entry(&out, "raw")["added"], json!([]), "{out}");
    assert_eq!(env.git(&b, ["rev-parse", "raw^2"]).trim(), rev(&env, &b, "origin/raw"), "one history");
    let out = env.git_cmd(&b).args(["push", "origin", "raw"]).output().unwrap();
    assert!(out.status.success(), "push rejected: {}", stderr(&out));
}

#[test]
fn diverged_monitoring_branch_is_union_merged_like_raw() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let b = colleague(&env, &bare, "b");
    commit_data(&env, &a, "monitoring/prod", &[("requests/a.jsonl", b"{\"x\":1}\n")]);
    env.git(&a, ["push", "-q", "origin", "monitoring/prod"]);
    commit_data(&env, &b, "monitoring/prod", &[("requests/b.jsonl", b"{\"x\":2}\n")]);
    env.git(&b, ["fetch", "-q", "origin"]);
    let out = integrate(&env, &b, &[]);
    let e = entry(&out, "monitoring/prod");
    assert_eq!(e["action"], "merged", "{out}");
    assert_eq!(e["merge"], "union");
    let files = tree_files(&env, &b, "monitoring/prod");
    assert!(
        files.contains(&"data/requests/a.jsonl".into()) && files.contains(&"data/requests/b.jsonl".into())
    );
}

#[test]
fn a_tracked_symlink_the_remote_turned_into_a_folder_is_replaced_never_followed() {
    let env = TestEnv::new();
    let (bare, a) = shared(&env);
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, a.join("d")).unwrap();
    env.git(&a, ["add", "d"]);
    env.git(&a, ["commit", "-q", "-m", "symlink d"]);
    env.git(&a, ["push", "-q", "--no-verify", "origin", "main"]);
    let b = colleague(&env, &bare, "b");
    assert!(fs::symlink_metadata(b.join("d")).unwrap().file_type().is_symlink());
    env.git(&a, ["rm", "-q", "d"]);
    fs::create_dir(a.join("d")).unwrap();
    fs::write(a.join("d/x"), "X\n").unwrap();
    env.git(&a, ["add", "d"]);
    env.git(&a, ["commit", "-q", "-m", "folder d"]);
    env.git(&a, ["push", "-q", "--no-verify", "origin", "main"]);
    env.git(&b, ["fetch", "-q", "origin"]);

    let out = integrate(&env, &b, &["main"]);
    assert_eq!(entry(&out, "main")["action"], "fast-forwarded", "{out}");
    assert!(fs::symlink_metadata(b.join("d")).unwrap().is_dir(), "d is a real folder now");
    assert_eq!(fs::read_to_string(b.join("d/x")).unwrap(), "X\n");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "nothing was written through the link");
    assert_eq!(env.git(&b, ["status", "--porcelain"]), "");
}
