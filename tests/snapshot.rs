//! End to end: data branches built with real git + git-lfs, `mlgit stable update`, `mlgit train-tag`
//! with the template's real train.sh, then the snapshot read back by `mlgit show`, `mlgit checkout`
//! and by a fresh `git clone` + `git lfs pull`. Every refusal is checked to leave refs unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_same_tree, list_files, python_with_mlflow, sha256_hex, stderr, stdout, write_files, TestEnv,
};

/// A repository with raw → clean → split commits (real git, real git-lfs, lineage trailers), the
/// stable branch updated from dev and split, and a worktree of the stable branch.
struct Project {
    repo: PathBuf,
    stable: PathBuf,
    split_commit: String,
    clean_commit: String,
    raw_commit: String,
}

fn rows(label_cycle: &[&str], n: usize) -> String {
    let mut s = String::from("age,plan,label\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},{},{}\n",
            20 + i,
            if i % 2 == 0 { "basic" } else { "pro" },
            label_cycle[i % label_cycle.len()]
        ));
    }
    s
}

fn project(env: &TestEnv) -> Option<Project> {
    if !env.has_git_lfs() {
        return None;
    }
    let repo = env.init_repo("r");
    let train = rows(&["churn", "stay", "stay"], 30);
    let valid = rows(&["stay", "churn", "stay"], 6);
    let test = rows(&["stay"], 4);
    let raw_commit = env.commit_on(&repo, "raw", &[("data/batch-1.csv", train.as_bytes())], "Add batch 1");
    let clean_commit = env.commit_on(
        &repo,
        "clean",
        &[("data/batch-1.csv", train.as_bytes())],
        &format!("Clean batch 1\n\nDerived-From: raw {raw_commit}"),
    );
    let split_commit = env.commit_on(
        &repo,
        "split",
        &[
            ("data/train/batch-1.csv", train.as_bytes()),
            ("data/validation/batch-1.csv", valid.as_bytes()),
            ("data/test/batch-1.csv", test.as_bytes()),
        ],
        &format!("Split batch 1\n\nDerived-From: clean {clean_commit}"),
    );
    // A code change on dev since init, so dev is a new parent of the stable update.
    env.commit_on(&repo, "dev/model", &[("docs/notes.md", b"Baseline first.\n")], "Notes");
    // The data really is in LFS on split (its .gitattributes marks data/**).
    let lfs = env.git(&repo, ["lfs", "ls-files", "split"]);
    assert!(lfs.contains("data/train/batch-1.csv"), "{lfs}");
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();
    let stable = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    Some(Project { repo, stable, split_commit, clean_commit, raw_commit })
}

fn status_porcelain(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, ["status", "--porcelain"])
}

#[test]
fn stable_update_grafts_split_data_and_records_both_parents() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let data_stable = env.git(&p.repo, ["rev-parse", "stable/model:data"]);
    let data_split = env.git(&p.repo, ["rev-parse", "split:data"]);
    assert_eq!(data_stable, data_split, "data/ is the split tree itself (zero-copy)");
    let parents = env.git(&p.repo, ["rev-list", "--parents", "-n1", "stable/model"]);
    let parents: Vec<&str> = parents.split_whitespace().collect();
    assert_eq!(parents.len(), 4, "commit + stable tip, dev, split: {parents:?}");
    assert_eq!(parents[3], p.split_commit);
    assert_eq!(parents[2], env.git(&p.repo, ["rev-parse", "dev/model"]).trim());
    let train_sh = env.git(&p.repo, ["rev-parse", "stable/model:train.sh"]);
    assert_eq!(train_sh, env.git(&p.repo, ["rev-parse", "dev/model:train.sh"]));
    env.git(&p.repo, ["lfs", "fsck", "stable/model"]);
    // The checkout was made after the update: data content, clean status.
    assert_eq!(status_porcelain(&env, &p.stable), "");
    assert!(std::fs::read_to_string(p.stable.join("data/train/batch-1.csv"))
        .unwrap()
        .starts_with("age,plan,label"));

    // Nothing new: no commit.
    let before = env.refs(&p.repo);
    let v = env.mlgit_json(&p.repo, ["stable", "update"]);
    assert_eq!(v["changed"], false, "{v}");
    assert_eq!(env.refs(&p.repo), before);

    // New split data alone: a commit that keeps the code, and the clean worktree follows.
    let more = rows(&["stay"], 5);
    let split2 = env.commit_on(
        &p.repo,
        "split",
        &[("data/train/batch-2.csv", more.as_bytes())],
        &format!("Split batch 2\n\nDerived-From: clean {}", p.clean_commit),
    );
    let v = env.mlgit_json(&p.repo, ["stable", "update", "--data", "split"]);
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["data"], split2.as_str());
    assert!(v["worktree_updated"].as_str().unwrap().ends_with("st"), "{v}");
    assert!(p.stable.join("data/train/batch-2.csv").is_file());
    assert_eq!(status_porcelain(&env, &p.stable), "");
    let log = env.git(&p.repo, ["log", "-1", "--format=%B", "stable/model"]);
    assert!(log.contains(&format!("Derived-From: split {split2}")), "{log}");
    assert!(log.contains("Derived-From: dev "), "code lineage kept: {log}");
}

#[test]
fn stable_update_removes_old_outputs_and_refuses_a_dirty_worktree() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    env.mlgit_ok(&p.stable, ["train-tag", "--", "./train.sh"]);
    env.tick();
    assert!(p.stable.join("model/model.json").is_file());

    // A dirty checkout of the branch: refused, nothing moves.
    std::fs::write(p.stable.join("train.sh"), "#!/bin/sh\necho changed\n").unwrap();
    let more = rows(&["stay"], 3);
    env.commit_on(&p.repo, "split", &[("data/train/batch-3.csv", more.as_bytes())], "more");
    let before = env.refs(&p.repo);
    let out = env.mlgit(&p.repo, ["stable", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("uncommitted changes (train.sh)"), "{}", stderr(&out));
    assert_eq!(env.refs(&p.repo), before);

    env.git(&p.stable, ["checkout", "--", "train.sh"]);
    env.mlgit_ok(&p.repo, ["stable", "update"]);
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "stable/model"]);
    for gone in ["model/model.json", "metrics.json", "params.json", "MODEL_CARD.md", "tracking/run.json"] {
        assert!(!files.lines().any(|l| l == gone), "{gone} must go with new data:\n{files}");
    }
    assert!(!p.stable.join("model/model.json").exists());
    assert_eq!(status_porcelain(&env, &p.stable), "");
}

#[test]
fn train_tag_snapshot_comes_back_from_a_fresh_clone() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", "./train.sh"]);
    assert_eq!(v["tag"], "model-v1", "{v}");
    assert_eq!(v["on_branch"], true);
    let record = &v["record"];
    assert_eq!(record["schema"], 1);
    assert_eq!(record["command"], serde_json::json!(["./train.sh"]));
    assert_eq!(record["params"]["tag"], "model-v1", "the command saw MLGIT_TAG");
    assert!(record["metrics"]["accuracy"].is_number(), "{record}");
    assert!(record["metrics"].get("eval_on").is_none(), "strings are left out: {record}");
    // eval_on names the split evaluated on: read into the record's evaluation, not reported as dropped.
    assert!(!v["notes"].to_string().contains("eval_on"), "{v}");
    assert_eq!(record["evaluation"]["split"], "validation", "{record}");
    assert_eq!(record["data"]["split"], p.split_commit.as_str());
    assert_eq!(record["data"]["clean"], p.clean_commit.as_str());
    assert_eq!(record["data"]["raw"], p.raw_commit.as_str());
    assert_eq!(record["code"]["commit"], env.git(&p.repo, ["rev-parse", "dev/model"]).trim());
    let model = &record["model"][0];
    assert_eq!(model["path"], "model/model.json");

    // The worktree is the commit: clean status, the tag is annotated, LFS is consistent.
    assert_eq!(status_porcelain(&env, &p.stable), "");
    assert_eq!(env.git(&p.repo, ["cat-file", "-t", "model-v1"]).trim(), "tag");
    let tag_msg = env.git(&p.repo, ["tag", "-l", "--format=%(contents)", "model-v1"]);
    assert!(tag_msg.contains("accuracy") && tag_msg.contains(&p.split_commit[..7]), "{tag_msg}");
    env.git(&p.repo, ["lfs", "fsck", "model-v1"]);
    let lfs = env.git(&p.repo, ["lfs", "ls-files", "model-v1"]);
    assert!(lfs.contains("model/model.json") && lfs.contains("data/train/batch-1.csv"), "{lfs}");
    let card = env.git(&p.repo, ["show", "model-v1:MODEL_CARD.md"]);
    assert!(
        card.starts_with("---\n") && card.contains("model-index") && card.contains(&p.raw_commit),
        "{card}"
    );
    assert!(env.refs(&p.repo).lines().all(|l| !l.contains("refs/mlgit/")), "reservation released");

    // A fresh clone with git lfs pull gives the recorded bytes, data and code.
    let clone = env.path("clone");
    let url = format!("file://{}", p.repo.display());
    env.git(env.tmp.path(), ["clone", "-q", &url, clone.to_str().unwrap()]);
    env.git(&clone, ["checkout", "-q", "model-v1"]);
    env.git(&clone, ["lfs", "pull"]);
    let bytes = std::fs::read(clone.join("model/model.json")).unwrap();
    assert_eq!(sha256_hex(&bytes), model["sha256"].as_str().unwrap());
    assert_eq!(bytes.len() as u64, model["size"].as_u64().unwrap());
    let split_wt = env.path("wt-split");
    assert_eq!(
        std::fs::read(clone.join("data/train/batch-1.csv")).unwrap(),
        std::fs::read(split_wt.join("data/train/batch-1.csv")).unwrap()
    );
    assert_eq!(
        std::fs::read(clone.join("train.sh")).unwrap(),
        env.git(&p.repo, ["show", "dev/model:train.sh"]).into_bytes()
    );
    assert_eq!(status_porcelain(&env, &clone), "");
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(clone.join("tracking/run.json")).unwrap()).unwrap();
    assert_eq!(&run_json, record);

    // mlgit checkout writes the same files and verifies the model.
    let out = env.path("out");
    let c = env.mlgit_json(&p.repo, ["checkout", "model-v1", "--into", out.to_str().unwrap()]);
    assert_eq!(c["verified"], serde_json::json!(["model/model.json"]), "{c}");
    assert_same_tree(&clone, &out);
    let again = env.mlgit(&p.repo, ["checkout", "model-v1", "--into", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("is not empty"), "{}", stderr(&again));

    // show: record and the lineage down to raw.
    let s = env.mlgit_json(&p.repo, ["show", "model-v1"]);
    assert_eq!(s["lineage"]["raw"], p.raw_commit.as_str(), "{s}");
    assert_eq!(s["record"], *record);
    assert!(s["tag_message"].as_str().unwrap().contains("Lineage"));
    let text = env.mlgit_ok(&p.repo, ["show", "model-v1"]);
    assert!(text.contains("Lineage") && text.contains("model/model.json"), "{text}");

    // status lists the snapshot with its metric; a second run gets v2.
    env.tick();
    let v2 = env.mlgit_json(&p.stable, ["train-tag", "--", "./train.sh"]);
    assert_eq!(v2["tag"], "model-v2");
    // A run that writes other files: the snapshot holds only its own outputs.
    env.tick();
    let script =
        r#"mkdir -p model && printf 'w' > model/weights.bin && echo '{"accuracy":0.5}' > metrics.json"#;
    let v3 = env.mlgit_json(&p.stable, ["train-tag", "--", "sh", "-c", script]);
    assert_eq!(v3["tag"], "model-v3");
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v3"]);
    assert!(files.contains("model/weights.bin") && !files.contains("model/model.json"), "{files}");
    assert!(!files.lines().any(|l| l == "params.json"), "{files}");
    assert_eq!(status_porcelain(&env, &p.stable), "");
    env.git(&p.repo, ["lfs", "fsck", "model-v3"]);
    let st = env.mlgit_json(&p.repo, ["status"]);
    let snaps: Vec<&str> =
        st["snapshots"].as_array().unwrap().iter().map(|s| s["tag"].as_str().unwrap()).collect();
    assert_eq!(snaps, ["model-v1", "model-v2", "model-v3"]);
    assert!(st["snapshots"][0]["metric"].is_number(), "{st}");
    assert_eq!(status_porcelain(&env, &p.stable), "");
}

#[test]
fn checkout_refuses_a_model_that_does_not_match_the_record() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", "./train.sh"]);
    let sha = v["record"]["model"][0]["sha256"].as_str().unwrap().to_string();
    // Corrupt the stored object (same size, other bytes): checkout must notice.
    let obj = p.repo.join(".git/lfs/objects").join(&sha[0..2]).join(&sha[2..4]).join(&sha);
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&obj, bytes).unwrap();
    let out = env.mlgit(&p.repo, ["checkout", "model-v1", "--into", env.path("bad").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // The restore path hashes the object while copying it: the corrupt model is never written.
    assert!(stderr(&out).contains("model/") && stderr(&out).contains("is corrupt"), "{}", stderr(&out));
    let out = env.mlgit(&p.repo, ["show", "stable/model~1"]);
    assert!(stderr(&out).contains("is not a snapshot"), "{}", stderr(&out));
}

/// Run train-tag expecting a refusal: exit code, message, and no ref changed.
fn refused(env: &TestEnv, p: &Project, dir: &Path, args: &[&str], code: i32, message: &str) {
    let before = env.refs(&p.repo);
    let out = env.mlgit(dir, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(message), "{args:?}: expected {message:?} in:\n{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert_eq!(env.refs(&p.repo), before, "{args:?} changed refs");
    assert!(!before.contains("refs/mlgit/"), "no reservation left behind");
}

#[test]
fn train_tag_refuses_bad_input_and_changes_nothing() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    refused(
        &env,
        &p,
        &p.repo,
        &["train-tag", "--", "./train.sh"],
        1,
        "not on a stable branch: HEAD is 'main'",
    );
    refused(&env, &p, st, &["train-tag"], 1, "no training command given");
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--name", "bad..name", "--", "./train.sh"],
        1,
        "not a valid tag name",
    );
    refused(&env, &p, st, &["train-tag", "--", "./no-such-script.sh"], 1, "cannot run the training command");
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", "./train.sh && exit 7"],
        7,
        "failed with exit code 7",
    );
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", "./train.sh; kill -KILL $$"],
        137,
        "killed by SIGKILL",
    );
    refused(&env, &p, st, &["train-tag", "--", "true"], 1, "no training outputs");
    let write = |metrics: &str| {
        format!("mkdir -p model && echo m > model/m.bin && printf '%s' '{metrics}' > metrics.json")
    };
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", &write("{oops")],
        1,
        "metrics.json is not valid JSON",
    );
    refused(&env, &p, st, &["train-tag", "--", "sh", "-c", &write("[1,2]")], 1, "must hold a JSON object");
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", &write(r#"{"accuracy":"good"}"#)],
        1,
        "primary metric 'accuracy'",
    );
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", &write(r#"{"loss":"low"}"#)],
        1,
        "holds no numeric metric",
    );
    refused(&env, &p, st, &["train-tag", "--no-run", "--", "./train.sh"], 1, "--no-run takes no command");

    // Dirty code on the stable branch.
    std::fs::write(st.join("train.sh"), "#!/bin/sh\necho edited\n").unwrap();
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "./train.sh"],
        1,
        "changes outside the training outputs: train.sh",
    );
    let out = env.mlgit(st, ["train-tag", "--", "./train.sh"]);
    assert!(stderr(&out).contains("mlgit stable update"), "{}", stderr(&out));
    env.git(st, ["checkout", "--", "train.sh"]);

    // A tag that exists.
    env.mlgit_ok(st, ["train-tag", "--name", "first", "--", "./train.sh"]);
    env.tick();
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--name", "first", "--", "./train.sh"],
        1,
        "the tag 'first' already exists",
    );
    assert_eq!(env.git(&p.repo, ["tag", "-l"]).trim(), "first");
    // A failed run after a snapshot leaves what it wrote (issue 9, failure #5); the committed
    // outputs stay in git.
    refused(
        &env,
        &p,
        st,
        &["train-tag", "--", "sh", "-c", "mkdir -p model; echo half > model/model.json; exit 3"],
        3,
        "exit code 3",
    );
    assert_eq!(std::fs::read(st.join("model/model.json")).unwrap(), b"half\n");
}

#[test]
fn a_pattern_without_n_refuses_the_second_snapshot() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let yaml = std::fs::read_to_string(p.repo.join("mlgit.yaml")).unwrap();
    std::fs::write(p.repo.join("mlgit.yaml"), yaml.replace("\"{model}-v{n}\"", "\"{model}-latest\""))
        .unwrap();
    env.git(&p.repo, ["commit", "-qam", "one snapshot name"]);
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", "./train.sh"]);
    assert_eq!(v["tag"], "model-latest");
    env.tick();
    refused(
        &env,
        &p,
        &p.stable,
        &["train-tag", "--", "./train.sh"],
        1,
        "a pattern without {n} names one snapshot only",
    );
}

#[test]
fn no_run_commits_existing_outputs_and_takes_metrics_from_mlflow() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    // Outputs of a run made elsewhere, logged to an MLflow file store under the tag it was given.
    write_files(
        st,
        &[
            ("model/weights.bin", &[0u8, 1, 2, 3, 255][..]),
            ("mlruns/0/meta.yaml", b"experiment_id: '0'\nname: Default\n"),
            ("mlruns/0/r1/meta.yaml", b"run_id: r1\nexperiment_id: '0'\nstatus: 3\n"),
            ("mlruns/0/r1/tags/mlgit.tag", b"nightly-3"),
            ("mlruns/0/r1/params/lr", b"0.01"),
            ("mlruns/0/r1/metrics/accuracy", b"1700000000000 0.5 0\n1700000001000 0.75 1\n"),
        ],
    );
    let v = env.mlgit_json(st, ["train-tag", "--no-run", "--name", "nightly-3"]);
    assert_eq!(v["record"]["metrics"]["accuracy"], 0.75, "{v}");
    assert_eq!(v["record"]["params"]["lr"], "0.01");
    assert_eq!(v["record"]["mlflow"]["run_id"], "r1");
    assert_eq!(v["record"]["command"], serde_json::json!([]));
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "nightly-3"]);
    assert!(files.contains("mlruns/0/r1/metrics/accuracy") && files.contains("model/weights.bin"), "{files}");
    env.git(&p.repo, ["lfs", "fsck", "nightly-3"]);
    assert_eq!(status_porcelain(&env, st), "");
}

#[test]
fn pointer_text_data_is_refused_or_materialized() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    env.mlgit_ok(&p.repo, ["stable", "update", "--branch", "stable/lite"]);
    let wt = env.path("lite");
    let out = env
        .git_cmd(&p.repo)
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["worktree", "add", "-q", wt.to_str().unwrap(), "stable/lite"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(wt.join("data/train/batch-1.csv")).unwrap();
    assert!(text.starts_with("version https://git-lfs"), "{text}");
    refused(&env, &p, &wt, &["train-tag", "--", "./train.sh"], 1, "are Git LFS pointer text");
    let v = env.mlgit_json(&wt, ["train-tag", "--materialize", "--", "./train.sh"]);
    assert_eq!(v["tag"], "lite-v1");
    assert_eq!(v["materialized"], 3);
    assert_eq!(v["record"]["metrics"]["n_train"], 30.0, "trained on the real rows");
    assert!(std::fs::read_to_string(wt.join("data/train/batch-1.csv")).unwrap().starts_with("age,plan"));
    assert_eq!(status_porcelain(&env, &wt), "");
}

/// Start train-tag in the background with a command that waits for `go` (a file outside the
/// worktree) after writing `started`, so the test controls when it finishes.
fn start_waiting_run(env: &TestEnv, dir: &Path, extra: &[&str], gate: &str) -> std::process::Child {
    let started = env.path(&format!("{gate}.started"));
    let go = env.path(&format!("{gate}.go"));
    let script = format!(
        "touch '{}'; while [ ! -f '{}' ]; do sleep 0.05; done; exec ./train.sh",
        started.display(),
        go.display()
    );
    let mut args: Vec<String> = vec!["--json".into(), "train-tag".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "sh".into(), "-c".into(), script]);
    let child = env.mlgit_cmd(dir).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for(&started);
    child
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn concurrent_runs_never_share_a_tag_and_lose_no_run() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    // Same branch: the second run is refused clearly while the first one trains.
    let first = start_waiting_run(&env, &p.stable, &[], "a");
    let refs_during = env.refs(&p.repo);
    assert!(refs_during.contains("refs/mlgit/reserved/model-v1"), "{refs_during}");
    let out = env.mlgit(&p.stable, ["train-tag", "--", "./train.sh"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'stable/model' is busy: mlgit train-tag (pid"), "{}", stderr(&out));
    assert_eq!(env.refs(&p.repo), refs_during, "the refused run changed nothing");
    // Nor may new data arrive under the running training.
    let more = rows(&["stay"], 3);
    env.commit_on(&p.repo, "split", &[("data/train/batch-9.csv", more.as_bytes())], "more");
    let refs_during = env.refs(&p.repo);
    let out = env.mlgit(&p.repo, ["stable", "update"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'stable/model' is busy: mlgit train-tag"), "{}", stderr(&out));
    assert!(stderr(&out).contains("retry `mlgit stable update`"), "{}", stderr(&out));
    assert_eq!(env.refs(&p.repo), refs_during);
    assert!(!p.stable.join("data/train/batch-9.csv").exists());

    // Another stable branch at the same time, asking for the name the first run holds: refused.
    env.mlgit_ok(&p.repo, ["stable", "update", "--branch", "stable/other"]);
    let other = env.path("other");
    env.git(&p.repo, ["worktree", "add", "-q", other.to_str().unwrap(), "stable/other"]);
    let out = env.mlgit(&other, ["train-tag", "--name", "model-v1", "--", "./train.sh"]);
    assert!(stderr(&out).contains("is reserved by another train-tag run"), "{}", stderr(&out));
    // …while its own pattern name runs concurrently with the first.
    let second = start_waiting_run(&env, &other, &[], "b");

    std::fs::write(env.path("a.go"), "").unwrap();
    std::fs::write(env.path("b.go"), "").unwrap();
    let a = first.wait_with_output().unwrap();
    let b = second.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let va: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(va["tag"], "model-v1");
    assert_eq!(vb["tag"], "other-v1");
    let refs = env.refs(&p.repo);
    assert!(!refs.contains("refs/mlgit/"), "reservations released: {refs}");
    assert_eq!(env.git(&p.repo, ["rev-parse", "stable/model"]).trim(), va["commit"].as_str().unwrap());
    assert_eq!(env.git(&p.repo, ["rev-parse", "stable/other"]).trim(), vb["commit"].as_str().unwrap());
}

#[test]
fn an_interrupt_is_forwarded_and_nothing_is_committed() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    for (sig, name, marker) in [("-INT", "SIGINT", "int"), ("-TERM", "SIGTERM", "term")] {
        let before = env.refs(&p.repo);
        let started = env.path(&format!("{marker}.started"));
        let child_done = env.path(&format!("{marker}.child-got-signal"));
        // The child records that the signal reached it, then exits as a trainer would.
        let script = format!(
            "trap 'touch {}; exit 1' INT TERM; ./train.sh; touch '{}'; while :; do sleep 0.05; done",
            child_done.display(),
            started.display()
        );
        let child = env
            .mlgit_cmd(&p.stable)
            .args(["train-tag", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&started);
        let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("training was interrupted ({name})")), "{}", stderr(&out));
        assert!(child_done.exists(), "the signal was forwarded to the command");
        assert_eq!(env.refs(&p.repo), before, "nothing committed, no tag, no reservation");
    }
    // A normal run afterwards is model-v1: the interrupted runs consumed no name.
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", "./train.sh"]);
    assert_eq!(v["tag"], "model-v1");
    assert_eq!(list_files(&p.stable.join("model")), ["model.json"]);
}

#[test]
fn stable_update_refuses_bad_input_and_changes_nothing() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    for (args, message) in [
        (&["stable", "update", "--branch", "dev/model"][..], "'dev/model' is not a stable branch"),
        (&["stable", "update", "--data", "main"][..], "has no data/ folder"),
        (
            &["stable", "update", "--code", "no-such-branch"][..],
            "'no-such-branch' is not a branch, tag or commit",
        ),
        (
            &["stable", "update", "--branch", "stable/new", "--data", "split"][..],
            "branch 'stable/new' does not exist",
        ),
    ] {
        let before = env.refs(&p.repo);
        let out = env.mlgit(&p.repo, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: expected {message:?} in {}", stderr(&out));
        assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
        assert_eq!(env.refs(&p.repo), before, "{args:?} changed refs");
    }
}

#[test]
fn metrics_come_from_the_mlflow_run_that_carries_the_tag() {
    let env = TestEnv::new();
    let Some(python) = python_with_mlflow() else { return };
    let Some(p) = project(&env) else { return };
    // A real MLflow client logging to a file store in the worktree, tagging the run with MLGIT_TAG.
    let script = env.path("train_mlflow.py");
    std::fs::write(
        &script,
        r#"import os
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import mlflow
mlflow.set_tracking_uri("file://" + os.path.abspath("mlruns"))
with mlflow.start_run() as run:
    mlflow.set_tag("mlgit.tag", os.environ["MLGIT_TAG"])
    mlflow.log_param("lr", 0.1)
    for step, acc in enumerate([0.5, 0.6, 0.8]):
        mlflow.log_metric("accuracy", acc, step=step)
    os.makedirs("model", exist_ok=True)
    with open("model/weights.txt", "w") as f:
        f.write("w")
    print("run", run.info.run_id)
"#,
    )
    .unwrap();
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", &python, script.to_str().unwrap()]);
    let record = &v["record"];
    assert_eq!(record["metrics"]["accuracy"], 0.8, "the last step: {record}");
    assert_eq!(record["params"]["lr"], "0.1");
    let run_id = record["mlflow"]["run_id"].as_str().unwrap().to_string();
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v1"]);
    assert!(files.contains(&format!("{run_id}/tags/mlgit.tag")), "{files}");
    assert_eq!(status_porcelain(&env, &p.stable), "");
    let tag_file = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v1", "mlruns"]);
    let tag_path = tag_file.lines().find(|l| l.ends_with("/tags/mlgit.tag")).unwrap();
    assert_eq!(env.git(&p.repo, ["show", &format!("model-v1:{tag_path}")]), "model-v1");
}
