//! End-to-end tests of `mlgit merge-tracking`, `mlgit runs` and `mlgit tracking export`: snapshots
//! are made with real git (a worktree of stable/model, `git commit`, `git tag -a`), MLflow stores
//! with real MLflow, and what mlgit writes is read back by git and by MLflow.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{stderr, stdout, write_files, TestEnv};
use mlgit::tracking::mlflow::{merge, MergeOptions, StoreFiles};
use serde_json::{json, Map, Value};

/// A repository made by `mlgit init` plus a worktree of stable/model to make snapshots in.
struct Project {
    repo: PathBuf,
    stable: PathBuf,
}

fn project(env: &TestEnv, name: &str) -> Project {
    let repo = env.init_repo(name);
    let stable = env.path(&format!("{name}-stable"));
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    Project { repo, stable }
}

/// A tracking record as train-tag writes it.
fn record(tag: &str, created_at: &str, accuracy: f64) -> String {
    json!({
        "schema": 1, "tag": tag, "branch": "stable/model", "created_at": created_at, "duration_s": 12.5,
        "command": ["sh", "train.sh"], "params": {"lr": 0.1},
        "metrics": {"accuracy": accuracy, "loss": 1.0 - accuracy},
        "code": {"commit": "1111111111111111111111111111111111111111"},
        "data": {"split": "2222222222222222222222222222222222222222", "clean": "3333333", "raw": "4444444"},
        "model": [{"path": "model/model.json", "sha256": "00", "size": 2}],
        "host": "ci", "mlgit": "0.1.0"
    })
    .to_string()
}

/// Commit `files` on stable/model (replacing tracking/ and mlruns/) and tag the commit.
fn snapshot(env: &TestEnv, p: &Project, tag: &str, files: &[(&str, &[u8])]) {
    for dir in ["tracking", "mlruns"] {
        let _ = fs::remove_dir_all(p.stable.join(dir));
    }
    write_files(&p.stable, files);
    env.git(&p.stable, ["add", "-A"]);
    env.git(&p.stable, ["commit", "-q", "--allow-empty", "-m", &format!("train {tag}")]);
    env.git(&p.stable, ["tag", "-a", tag, "-m", &format!("snapshot {tag}")]);
}

fn good_snapshot(env: &TestEnv, p: &Project, tag: &str, created_at: &str, accuracy: f64) -> String {
    let rec = record(tag, created_at, accuracy);
    snapshot(env, p, tag, &[("tracking/run.json", rec.as_bytes()), ("model/model.json", b"{}")]);
    rec
}

fn show(env: &TestEnv, repo: &Path, spec: &str) -> String {
    env.git(repo, ["show", spec])
}

fn runs_list(env: &TestEnv, repo: &Path) -> Vec<Value> {
    let text = show(env, repo, "main:tracking/runs.json");
    serde_json::from_str::<Vec<Value>>(&text).expect("runs.json is a JSON array")
}

#[test]
fn merge_copies_records_and_regenerates_list_and_leaderboard_idempotently() {
    let env = TestEnv::new();
    let p = project(&env, "r");
    let r1 = good_snapshot(&env, &p, "model-v1", "2026-11-20T10:00:00Z", 0.61);
    let r2 = good_snapshot(&env, &p, "model-v2", "2026-11-21T10:00:00Z", 0.72);
    let r3 = good_snapshot(&env, &p, "model-v3", "2026-11-22T10:00:00Z", 0.55);
    let before_main = env.git(&p.repo, ["rev-parse", "main"]);

    let out = env.mlgit_json(&p.repo, ["merge-tracking"]);
    assert_eq!(out["command"], "merge-tracking");
    let merged: Vec<&str> =
        out["merged"].as_array().unwrap().iter().map(|m| m["tag"].as_str().unwrap()).collect();
    assert_eq!(merged, ["model-v1", "model-v2", "model-v3"]);
    assert_eq!(out["runs_total"], 3);
    assert_eq!(out["previous"].as_str().unwrap(), before_main.trim());
    assert!(out["skipped"].as_array().unwrap().is_empty());

    // Each record byte for byte, the list in time order with the snapshot commits.
    for (tag, rec) in [("model-v1", &r1), ("model-v2", &r2), ("model-v3", &r3)] {
        assert_eq!(show(&env, &p.repo, &format!("main:tracking/runs/{tag}.json")), *rec);
    }
    let list = runs_list(&env, &p.repo);
    let tags: Vec<&str> = list.iter().map(|e| e["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["model-v1", "model-v2", "model-v3"]);
    for e in &list {
        let commit = env.git(&p.repo, ["rev-parse", &format!("{}^{{commit}}", e["tag"].as_str().unwrap())]);
        assert_eq!(e["commit"].as_str().unwrap(), commit.trim());
        assert_eq!(e["record"], format!("tracking/runs/{}.json", e["tag"].as_str().unwrap()));
    }
    // The leaderboard is best first by accuracy (goal max).
    let readme = show(&env, &p.repo, "main:tracking/README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| #")).collect();
    assert!(rows[0].contains("model-v2") && rows[0].contains("0.72"), "{readme}");
    assert!(rows[1].contains("model-v1") && rows[2].contains("model-v3"), "{readme}");
    assert!(rows[0].contains("| 2222222 |"), "data commit shown: {readme}");
    // The commit names every snapshot in trailers; main stays a valid repository for git.
    let msg = env.git(&p.repo, ["log", "-1", "--format=%B", "main"]);
    assert_eq!(msg.matches("Mlgit-Snapshot: model-v").count(), 3, "{msg}");
    env.git(&p.repo, ["fsck", "--no-dangling"]);

    // main is checked out in the repository: its files and index were updated.
    assert_eq!(fs::read_to_string(p.repo.join("tracking/runs/model-v2.json")).unwrap(), r2);
    assert_eq!(env.git(&p.repo, ["status", "--porcelain"]), "");

    // Nothing new: no commit, and it says so.
    let refs = env.refs(&p.repo);
    let again = env.mlgit_ok(&p.repo, ["merge-tracking"]);
    assert!(again.contains("Nothing to merge"), "{again}");
    let named = env.mlgit_json(&p.repo, ["merge-tracking", "model-v1", "model-v2"]);
    assert!(named["commit"].is_null() && named["merged"].as_array().unwrap().is_empty());
    assert_eq!(named["unchanged"], json!(["model-v1", "model-v2"]));
    assert_eq!(env.refs(&p.repo), refs);

    // The leaderboard command.
    let table = env.mlgit_ok(&p.repo, ["runs"]);
    let first = table.lines().nth(1).unwrap();
    assert!(first.starts_with("1  model-v2"), "{table}");
    let by_loss = env.mlgit_json(&p.repo, ["runs", "--sort", "loss", "--goal", "min", "--limit", "2"]);
    let order: Vec<&str> =
        by_loss["runs"].as_array().unwrap().iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert_eq!(order, ["model-v2", "model-v1"]);
    assert_eq!(by_loss["total"], 3);
    assert_eq!(by_loss["metrics"], json!(["loss", "accuracy"]));
    let bad_sort = env.mlgit(&p.repo, ["runs", "--sort", "f1"]);
    assert_eq!(bad_sort.status.code(), Some(1));
    assert!(stderr(&bad_sort).contains("no run on main has the metric 'f1'"), "{}", stderr(&bad_sort));
    assert!(stderr(&bad_sort).contains("hint: metrics recorded: accuracy, loss"));
}

#[test]
fn a_dirty_checkout_of_main_is_refused_and_a_detached_one_is_left_alone() {
    let env = TestEnv::new();
    let p = project(&env, "r");
    good_snapshot(&env, &p, "model-v1", "2026-11-20T10:00:00Z", 0.6);
    env.mlgit_ok(&p.repo, ["merge-tracking"]);
    fs::write(p.repo.join("README.md"), "edited\n").unwrap();
    // Nothing new: the dirty checkout does not matter.
    let none = env.mlgit_ok(&p.repo, ["merge-tracking"]);
    assert!(none.contains("Nothing to merge"), "{none}");

    good_snapshot(&env, &p, "model-v2", "2026-11-21T10:00:00Z", 0.7);
    let refs = env.refs(&p.repo);
    let out = env.mlgit(&p.repo, ["merge-tracking"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("branch 'main' is checked out in") && err.contains("uncommitted changes (README.md)"),
        "{err}"
    );
    assert!(err.contains("hint: commit or stash them there"), "{err}");
    assert_eq!(env.refs(&p.repo), refs);

    // Not checked out anywhere: main moves, the worktree is not touched.
    env.git(&p.repo, ["checkout", "-q", "--detach"]);
    let out = env.mlgit_json(&p.repo, ["merge-tracking"]);
    assert!(out["worktree"].is_null(), "{out}");
    assert!(!p.repo.join("tracking/runs/model-v2.json").exists());
    assert_eq!(fs::read_to_string(p.repo.join("README.md")).unwrap(), "edited\n");
    assert_eq!(runs_list(&env, &p.repo).len(), 2);
}

/// Eight merge-tracking processes with different tags, started at once, must leave eight runs:
/// a writer that loses the compare-and-swap re-reads main and re-applies. Rounds alternate between
/// main checked out (the processes also serialise on its checkout) and not checked out (pure CAS).
#[test]
fn eight_concurrent_merges_leave_all_eight_runs() {
    let env = TestEnv::new();
    for round in 0..4 {
        let p = project(&env, &format!("r{round}"));
        let checked_out = round % 2 == 0;
        if !checked_out {
            env.git(&p.repo, ["checkout", "-q", "--detach"]);
        }
        let tags: Vec<String> = (1..=8).map(|i| format!("model-v{i}")).collect();
        for (i, tag) in tags.iter().enumerate() {
            good_snapshot(&env, &p, tag, &format!("2026-11-2{}T10:00:00Z", i + 1), 0.5 + i as f64 / 100.0);
        }
        let children: Vec<_> = tags
            .iter()
            .map(|tag| {
                env.mlgit_cmd(&p.repo)
                    .args(["--json", "merge-tracking", tag])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn mlgit")
            })
            .collect();
        let mut retried = 0;
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "round {round}: {}\n{}", stdout(&out), stderr(&out));
            let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
            assert_eq!(v["merged"].as_array().unwrap().len(), 1, "{v}");
            if v["tries"].as_u64().unwrap() > 1 {
                retried += 1;
            }
        }
        let list = runs_list(&env, &p.repo);
        let listed: Vec<&str> = list.iter().map(|e| e["tag"].as_str().unwrap()).collect();
        assert_eq!(listed, tags.iter().map(String::as_str).collect::<Vec<_>>(), "round {round}");
        let files = env.git(&p.repo, ["ls-tree", "--name-only", "main", "tracking/runs/"]);
        assert_eq!(files.lines().count(), 8, "{files}");
        let commits = env.git(&p.repo, ["rev-list", "--count", "main"]);
        assert_eq!(commits.trim(), "9", "one commit per tag on top of init");
        let readme = show(&env, &p.repo, "main:tracking/README.md");
        assert!(readme.lines().any(|l| l.starts_with("| 1 | [model-v8]")), "{readme}");
        if checked_out {
            assert_eq!(env.git(&p.repo, ["status", "--porcelain"]), "", "round {round}");
        }
        eprintln!("round {round}: main checked out = {checked_out}, {retried} of 8 writers retried");
    }
}

/// Files of a snapshot: path and content.
type Files = Vec<(&'static str, Vec<u8>)>;

/// Every bad snapshot is refused with a message naming it, and nothing is committed; in the
/// default mode (all tags) bad tags are skipped with a warning while good ones are merged.
#[test]
fn bad_snapshots_are_refused_and_nothing_is_committed() {
    let env = TestEnv::new();
    let p = project(&env, "r");
    let meta_ok = b"artifact_location: file:///home/ann/mlruns/1\nexperiment_id: '1'\nlifecycle_stage: active\nname: x\n";
    let bad: Vec<(&str, Files, &str)> = vec![
        ("not-json", vec![("tracking/run.json", b"{\"schema\": 1, ".to_vec())], "is not valid JSON"),
        (
            "schema-2",
            vec![("tracking/run.json", br#"{"schema":2,"tag":"schema-2"}"#.to_vec())],
            "has schema 2; this mlgit reads schema 1",
        ),
        (
            "wrong-tag",
            vec![("tracking/run.json", record("model-v9", "2026-11-20T10:00:00Z", 0.5).into_bytes())],
            "names the tag \"model-v9\", not \"wrong-tag\"",
        ),
        (
            "dotdot-path",
            vec![(
                "tracking/run.json",
                record("dotdot-path", "2026-11-20", 0.5)
                    .replace("model/model.json", "../../../etc/passwd")
                    .into_bytes(),
            )],
            "field /model/0/path is \"../../../etc/passwd\", which leaves its folder",
        ),
        (
            "absolute-path",
            vec![(
                "tracking/run.json",
                record("absolute-path", "2026-11-20", 0.5)
                    .replace("model/model.json", "/etc/passwd")
                    .into_bytes(),
            )],
            "is \"/etc/passwd\", which is absolute",
        ),
        (
            "bad-meta",
            vec![
                ("tracking/run.json", record("bad-meta", "2026-11-20", 0.5).into_bytes()),
                ("mlruns/1/meta.yaml", meta_ok.to_vec()),
                ("mlruns/1/r1/meta.yaml", b"run_id: r1\nexperiment_id: [unclosed\n".to_vec()),
            ],
            "1/r1/meta.yaml: invalid YAML",
        ),
        (
            "meta-id-mismatch",
            vec![
                ("tracking/run.json", record("meta-id-mismatch", "2026-11-20", 0.5).into_bytes()),
                ("mlruns/1/meta.yaml", meta_ok.to_vec()),
                ("mlruns/1/r1/meta.yaml", b"run_id: r2\nexperiment_id: '1'\n".to_vec()),
            ],
            "field `run_id` is \"r2\" but the folder is named \"r1\"",
        ),
    ];
    for (tag, files, _) in &bad {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        snapshot(&env, &p, tag, &files);
    }
    // A symbolic link in mlruns/ that leaves the store.
    let rec = record("symlink-out", "2026-11-20", 0.5);
    snapshot(
        &env,
        &p,
        "symlink-out",
        &[("tracking/run.json", rec.as_bytes()), ("mlruns/1/meta.yaml", meta_ok)],
    );
    fs::create_dir_all(p.stable.join("mlruns/1/r1/artifacts")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", p.stable.join("mlruns/1/r1/artifacts/passwd"))
        .unwrap();
    env.git(&p.stable, ["add", "-A"]);
    env.git(&p.stable, ["commit", "-q", "-m", "link"]);
    env.git(&p.stable, ["tag", "-f", "-a", "symlink-out", "-m", "snapshot"]);
    // A tag on a commit without a tracking record.
    env.git(&p.repo, ["tag", "-a", "no-record", "dev/model", "-m", "not a snapshot"]);

    let mut cases: Vec<(&str, &str)> = bad.iter().map(|(t, _, m)| (*t, *m)).collect();
    cases.push(("symlink-out", "symlink-out:mlruns/1/r1/artifacts/passwd is a symbolic link"));
    cases.push(("no-record", "its commit has no tracking/run.json, so it is not a snapshot"));

    let refs = env.refs(&p.repo);
    for (tag, message) in &cases {
        let out = env.mlgit(&p.repo, ["merge-tracking", tag]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{tag}: {err}");
        assert!(
            err.contains(&format!("warning: skipped {tag}: {tag}")) && err.contains(message),
            "{tag}: {err}"
        );
        assert!(err.contains("(hint: "), "{tag}: {err}");
        assert_eq!(env.refs(&p.repo), refs, "{tag}: nothing may change");
    }
    // Unknown tag, missing target branch, missing main.
    for (args, message) in [
        (vec!["merge-tracking", "nope"], "tag 'nope' does not exist"),
        (vec!["merge-tracking", "--into", "nope"], "branch 'nope' does not exist"),
        (vec!["merge-tracking", "--into", "raw"], "'raw' is a Raw branch; tracking is merged into main"),
        (vec!["merge-tracking", "--into", "stable/model"], "'stable/model' is a Stable branch"),
    ] {
        let out = env.mlgit(&p.repo, &args);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(message) && stderr(&out).contains("hint:"), "{}", stderr(&out));
        assert_eq!(env.refs(&p.repo), refs);
    }

    // Default mode: one good snapshot among the bad ones is merged, every bad one is named.
    good_snapshot(&env, &p, "model-v1", "2026-11-20T10:00:00Z", 0.7);
    let out = env.mlgit(&p.repo, ["--json", "merge-tracking"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["merged"][0]["tag"], "model-v1");
    let skipped: Vec<&str> =
        v["skipped"].as_array().unwrap().iter().map(|s| s["tag"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = cases.iter().map(|(t, _)| *t).filter(|t| *t != "no-record").collect();
    expected.sort();
    assert_eq!(skipped, expected, "a tag without a record is simply not a snapshot");
    for tag in &expected {
        assert!(stderr(&out).contains(&format!("warning: skipped {tag}:")), "{}", stderr(&out));
    }
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "main"]);
    assert!(files.contains("tracking/runs/model-v1.json"));
    assert!(!files.contains("mlruns/"), "{files}");
    assert_eq!(runs_list(&env, &p.repo).len(), 1);

    // Main missing.
    env.git(&p.repo, ["checkout", "-q", "--detach"]);
    env.git(&p.repo, ["branch", "-m", "main", "old-main"]);
    let refs = env.refs(&p.repo);
    let out = env.mlgit(&p.repo, ["merge-tracking"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no 'main' branch") && stderr(&out).contains("hint:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.refs(&p.repo), refs);
}

#[test]
fn export_refuses_a_missing_store_and_a_non_empty_folder() {
    let env = TestEnv::new();
    let p = project(&env, "r");
    let out = env.mlgit(&p.repo, ["tracking", "export", "--mlruns", "exp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("main has no mlruns/ folder"), "{}", stderr(&out));
    assert!(!p.repo.join("exp").exists());

    let meta = b"artifact_location: file:///home/ann/mlruns/1\nexperiment_id: '1'\nlifecycle_stage: active\nname: x\n";
    let run = b"artifact_uri: file:///home/ann/mlruns/1/r1/artifacts\nexperiment_id: '1'\nrun_id: r1\nrun_uuid: r1\nstatus: 3\nlifecycle_stage: active\n";
    let rec = record("model-v1", "2026-11-20", 0.5);
    snapshot(
        &env,
        &p,
        "model-v1",
        &[
            ("tracking/run.json", rec.as_bytes()),
            ("mlruns/1/meta.yaml", meta),
            ("mlruns/1/r1/meta.yaml", run),
        ],
    );
    env.mlgit_ok(&p.repo, ["merge-tracking"]);
    // On main, artifact locations point into the repository's own mlruns/.
    let on_main = show(&env, &p.repo, "main:mlruns/1/r1/meta.yaml");
    assert!(on_main.contains("artifact_uri: mlruns/1/r1/artifacts"), "{on_main}");
    assert!(on_main.contains("experiment_id: '1'"), "{on_main}");
    assert_eq!(show(&env, &p.repo, "main:mlruns/1/r1/tags/mlgit.tag"), "model-v1");

    fs::create_dir_all(p.repo.join("full")).unwrap();
    fs::write(p.repo.join("full/x"), "x").unwrap();
    let out = env.mlgit(&p.repo, ["tracking", "export", "--mlruns", "full"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("full is not empty"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(p.repo.join("full")).unwrap().count(), 1);

    let dest = env.path("export/mlruns");
    let v = env.mlgit_json(&p.repo, ["tracking", "export", "--mlruns", dest.to_str().unwrap()]);
    assert_eq!((v["experiments"].as_u64(), v["runs"].as_u64()), (Some(1), Some(1)), "{v}");
    for dir in ["1/r1/metrics", "1/r1/params", "1/r1/artifacts", ".trash"] {
        assert!(dest.join(dir).is_dir(), "{dir}");
    }
    let exported = fs::read_to_string(dest.join("1/r1/meta.yaml")).unwrap();
    assert!(
        exported.contains(&format!("artifact_uri: 'file://{}/1/r1/artifacts'", dest.display())),
        "{exported}"
    );
    let leftovers: Vec<_> = fs::read_dir(env.path("export")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no staging folder left behind");

    // main's own store edited by hand into something MLflow did not write: a merge that needs it
    // and an export both refuse, naming the file, and change nothing.
    fs::write(p.repo.join("mlruns/1/meta.yaml"), "name: [unclosed\n").unwrap();
    env.git(&p.repo, ["commit", "-q", "-am", "hand edit"]);
    let rec2 = record("model-v2", "2026-11-21", 0.6);
    snapshot(
        &env,
        &p,
        "model-v2",
        &[
            ("tracking/run.json", rec2.as_bytes()),
            ("mlruns/1/meta.yaml", meta),
            ("mlruns/1/r1/meta.yaml", run),
        ],
    );
    let refs = env.refs(&p.repo);
    let out = env.mlgit(&p.repo, ["merge-tracking"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot merge the MLflow store of model-v2 into mlruns/: 1/meta.yaml: invalid YAML"),
        "{err}"
    );
    assert!(err.contains("hint: the branch's mlruns/ was edited by hand"), "{err}");
    assert_eq!(env.refs(&p.repo), refs);
    let out = env.mlgit(&p.repo, ["tracking", "export", "--mlruns", "again"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("1/meta.yaml: invalid YAML"), "{}", stderr(&out));
    assert!(!p.repo.join("again").exists());
}

// ---------------------------------------------------------------------------------------------
// MLflow, for real

/// Logs runs the way a training script would and prints, as the last stdout line, what MLflow must
/// later return for them.
const LOG_RUNS: &str = r#"
import json, os, sys, tempfile
import mlflow
store, role = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri("file://" + store)
work = tempfile.mkdtemp()
out = {"runs": {}, "deleted": [], "logged_models": {}, "traces": {}, "experiment_ids": {}}

def log_run(experiment, name, lr, steps, extra=None):
    exp = mlflow.set_experiment(experiment)
    out["experiment_ids"][experiment] = exp.experiment_id
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"lr": lr, "epochs": steps})
        history = []
        for step in range(steps):
            value = round(1.0 / (step + 1) + lr, 6)
            mlflow.log_metric("loss", value, step=step)
            history.append([step, value])
        path = os.path.join(work, "model.txt")
        with open(path, "w") as f:
            f.write(f"{role} {name}")
        mlflow.log_artifact(path)
        mlflow.log_artifact(path, artifact_path="nested")
        want = {
            "experiment": experiment,
            "run_name": name,
            "params": {"lr": str(lr), "epochs": str(steps)},
            "metrics": {"loss": history},
            "artifacts": ["model.txt", "nested/model.txt"],
        }
        if extra:
            extra(run, want)
        out["runs"][run.info.run_id] = want
    return run.info.run_id

def with_inputs(run, want):
    # MLflow 3 items that live beside runs: a dataset input, a logged model and a trace.
    import pandas as pd
    mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train"), context="training")
    want["datasets"] = ["train"]
    model = mlflow.create_external_model(name="ext-model", source_run_id=run.info.run_id)
    out["logged_models"][model.model_id] = {"experiment": "churn", "name": "ext-model"}

    @mlflow.trace
    def predict(x):
        return x + 1

    predict(1)
    out["traces"][mlflow.get_last_active_trace_id()] = {"experiment": "churn"}

if role == "a1":
    log_run("churn", "a-1", 0.1, 4)
    log_run("churn", "a-2", 0.2, 3)
elif role == "a2":
    log_run("churn", "a-3", 0.3, 5)
else:
    log_run("churn", "b-1", 0.05, 6, with_inputs)
    dead = log_run("churn", "b-dead", 0.9, 2)
    del out["runs"][dead]
    mlflow.delete_run(dead)
    out["deleted"].append(dead)
    log_run("Default", "b-default", 0.01, 2)
    # Nothing logged: its metrics/, params/ and artifacts/ folders are empty, so git drops them.
    with mlflow.start_run(experiment_id=out["experiment_ids"]["churn"], run_name="b-empty") as run:
        out["runs"][run.info.run_id] = {"experiment": "churn", "run_name": "b-empty", "params": {}}
    # Names that YAML 1.1 (PyYAML, which MLflow reads meta files with) takes for a date and a boolean.
    log_run("2024-05-01", "on", 0.02, 2)
print(json.dumps(out))
"#;

/// Whether python3 can import mlflow; without it the test is skipped, except under CI=true.
fn mlflow_usable() -> bool {
    let reason = match Command::new("python3").args(["-c", "import mlflow"]).output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!("python3 cannot import mlflow: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("python3 not runnable: {e}"),
    };
    assert!(std::env::var("CI").as_deref() != Ok("true"), "MLflow is required when CI=true: {reason}");
    eprintln!("skipping: {reason} (pip install mlflow==3.17.2)");
    false
}

fn python(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("python3")
        .args(args)
        .current_dir(cwd)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 failed\nstdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn log_runs(store: &Path, role: &str, cwd: &Path) -> Value {
    let text = python(&["-c", LOG_RUNS, store.to_str().unwrap(), role], cwd);
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad generator output ({e}):\n{text}"))
}

/// Copy a store into the stable worktree's mlruns/ (as training there would have left it).
fn copy_store(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Adds `logged`'s runs, logged models and traces to `expected`, each run tagged with `tag`.
fn expect_runs(expected: &mut Map<String, Value>, logged: &Value, tag: &str) {
    for key in ["runs", "logged_models", "traces"] {
        let section = expected.entry(key).or_insert_with(|| json!({})).as_object_mut().unwrap();
        for (id, want) in logged[key].as_object().unwrap() {
            let mut want = want.clone();
            if key == "runs" {
                want["tags"] = json!({ "mlgit.tag": tag });
            }
            section.insert(id.clone(), want);
        }
    }
}

/// Two machines log to their own MLflow stores (different experiment ids for the same names); three
/// snapshots carry them; merge-tracking merges them into main, `tracking export` writes a store,
/// and MLflow itself finds every run with its params, metrics and artifacts, and no duplicated
/// experiment.
#[test]
fn mlflow_stores_of_two_machines_merge_and_export_for_mlflow() {
    if !mlflow_usable() {
        return;
    }
    let env = TestEnv::new();
    let p = project(&env, "r");
    let (store_a, store_b) = (env.path("machine-a/mlruns"), env.path("machine-b/mlruns"));
    let a1 = log_runs(&store_a, "a1", env.tmp.path());
    let with_store = |tag: &str, store: &Path| {
        let _ = fs::remove_dir_all(p.stable.join("mlruns"));
        copy_store(store, &p.stable.join("mlruns"));
        let rec = record(tag, "2026-11-20T10:00:00Z", 0.5);
        write_files(&p.stable, &[("tracking/run.json", rec.as_bytes())]);
        env.git(&p.stable, ["add", "-A"]);
        env.git(&p.stable, ["commit", "-q", "-m", &format!("train {tag}")]);
        env.git(&p.stable, ["tag", "-a", tag, "-m", "snapshot"]);
    };
    with_store("model-v1", &store_a);
    let b = log_runs(&store_b, "b", env.tmp.path());
    with_store("model-v2", &store_b);
    // Machine A keeps training in the same store: its next snapshot repeats the first runs.
    let a2 = log_runs(&store_a, "a2", env.tmp.path());
    with_store("model-v3", &store_a);
    assert_ne!(a1["experiment_ids"]["churn"], b["experiment_ids"]["churn"], "machines must disagree on ids");

    let first = env.mlgit_json(&p.repo, ["merge-tracking", "model-v1"]);
    let ml = &first["merged"][0]["mlflow"];
    assert_eq!(ml["experiments_created"], json!(["Default", "churn"]), "{first}");
    assert_eq!(ml["runs_added"].as_array().unwrap().len(), 2);
    let rest = env.mlgit_json(&p.repo, ["merge-tracking"]);
    let by_tag: Map<String, Value> = rest["merged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["tag"].as_str().unwrap().to_string(), m["mlflow"].clone()))
        .collect();
    assert_eq!(by_tag["model-v2"]["runs_added"].as_array().unwrap().len(), 4, "{rest}");
    // churn and Default are matched by name; only the new name creates an experiment.
    assert_eq!(by_tag["model-v2"]["experiments_created"], json!(["2024-05-01"]), "{rest}");
    let dead = b["deleted"][0].as_str().unwrap();
    assert!(
        by_tag["model-v2"]["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"].as_str().unwrap().ends_with(dead)),
        "{rest}"
    );
    assert_eq!(by_tag["model-v3"]["runs_added"].as_array().unwrap().len(), 1);
    assert!(by_tag["model-v3"]["runs_updated"].as_array().unwrap().is_empty());
    // Merging again changes nothing.
    let refs = env.refs(&p.repo);
    let again = env.mlgit_json(&p.repo, ["merge-tracking", "model-v1", "model-v2", "model-v3"]);
    assert!(again["commit"].is_null(), "{again}");
    assert_eq!(env.refs(&p.repo), refs);
    assert_eq!(env.git(&p.repo, ["status", "--porcelain"]), "");

    let export = env.path("served/mlruns");
    env.mlgit_ok(&p.repo, ["tracking", "export", "--mlruns", export.to_str().unwrap()]);

    let mut expected = Map::new();
    expect_runs(&mut expected, &a1, "model-v1");
    expect_runs(&mut expected, &b, "model-v2");
    expect_runs(&mut expected, &a2, "model-v3");
    expected.insert("experiments".into(), json!(["2024-05-01", "Default", "churn"]));
    expected.insert("exact_runs".into(), json!(true));
    let expected_path = env.path("expected.json");
    fs::write(&expected_path, Value::Object(expected).to_string()).unwrap();
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_mlruns.py");
    let out = python(
        &[checker.to_str().unwrap(), export.to_str().unwrap(), expected_path.to_str().unwrap()],
        env.tmp.path(),
    );
    assert!(out.contains("OK"), "{out}");
}

/// An MLflow artifact that the snapshot stored in LFS stays a pointer on main (marked in main's
/// `.gitattributes`, so git-lfs is satisfied), and the checkout and the export get its content.
#[test]
fn lfs_artifacts_in_mlruns_stay_pointers_on_main_and_export_with_their_content() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let p = project(&env, "r");
    let meta = b"artifact_location: file:///home/ann/mlruns/1\nexperiment_id: '1'\nlifecycle_stage: active\nname: x\n";
    let run = b"artifact_uri: file:///home/ann/mlruns/1/r1/artifacts\nexperiment_id: '1'\nrun_id: r1\nrun_uuid: r1\nstatus: 3\nlifecycle_stage: active\n";
    let model = b"pretend this is a pickled model\n";
    let rec = record("model-v1", "2026-11-20", 0.5);
    fs::write(p.stable.join(".gitattributes"), "*.pkl filter=lfs diff=lfs merge=lfs -text\n").unwrap();
    snapshot(
        &env,
        &p,
        "model-v1",
        &[
            ("tracking/run.json", rec.as_bytes()),
            ("mlruns/1/meta.yaml", meta),
            ("mlruns/1/r1/meta.yaml", run),
            ("mlruns/1/r1/params/lr", b"0.1"),
            ("mlruns/1/r1/artifacts/model.pkl", model),
        ],
    );
    let in_snapshot = show(&env, &p.repo, "model-v1:mlruns/1/r1/artifacts/model.pkl");
    assert!(in_snapshot.starts_with("version https://git-lfs.github.com/spec/v1"), "{in_snapshot}");

    env.mlgit_ok(&p.repo, ["merge-tracking"]);
    assert_eq!(
        show(&env, &p.repo, "main:mlruns/1/r1/artifacts/model.pkl"),
        in_snapshot,
        "the pointer is copied"
    );
    let attributes = show(&env, &p.repo, "main:.gitattributes");
    assert!(attributes.contains("mlruns/1/r1/artifacts/model.pkl filter=lfs"), "{attributes}");
    let listed = env.git(&p.repo, ["lfs", "ls-files", "main"]);
    assert!(listed.contains("mlruns/1/r1/artifacts/model.pkl"), "{listed}");
    env.git(&p.repo, ["lfs", "fsck", "--dry-run", "main"]);
    // The checkout of main got the real bytes and stays clean for git and git-lfs.
    assert_eq!(fs::read(p.repo.join("mlruns/1/r1/artifacts/model.pkl")).unwrap(), model);
    assert_eq!(env.git(&p.repo, ["status", "--porcelain"]), "");

    let dest = env.path("served");
    let v = env.mlgit_json(&p.repo, ["tracking", "export", "--mlruns", dest.to_str().unwrap()]);
    assert_eq!(v["lfs_missing"], json!([]));
    assert_eq!(fs::read(dest.join("1/r1/artifacts/model.pkl")).unwrap(), model);
    assert_eq!(fs::read(dest.join("1/r1/params/lr")).unwrap(), b"0.1");
}

/// MLflow reads meta files with PyYAML (YAML 1.1); every value the merge writes must read back as
/// serde_yaml (YAML 1.2) sees it. (A library-level check of mlgit's own YAML emitter, which exists
/// because serde_yaml's output is read differently by PyYAML.)
#[test]
fn written_meta_files_mean_the_same_to_pyyaml() {
    if !mlflow_usable() {
        return;
    }
    let tricky = [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "~",
        "=",
        "<<",
        "null",
        "2024-05-01",
        "2026-11-23T04:54:23.753Z",
        "1:20",
        "12:30:45",
        "0755",
        "0x1F",
        "1_000",
        "1e3",
        ".inf",
        "+1",
        "-",
        "#hash",
        "a: b",
        "- x",
        "'q'",
        "\"d\"",
        " lead",
        "trail ",
        "",
        "tab\there",
        "two\nlines",
        "é😀",
        "\u{2028}",
        "back\\slash",
        "[x]",
        "{y}",
        "*alias",
        "&anchor",
        "!tag",
        "%pct",
        "@at",
        "`tick`",
        "|pipe",
        ">gt",
        "?q",
        ",c",
    ];
    let mut incoming = StoreFiles::new();
    let mut exp = String::from("experiment_id: '1'\nname: 'yes'\nartifact_location: /m/1\n");
    for (i, value) in tricky.iter().enumerate() {
        let quoted = serde_json::to_string(value).expect("json");
        exp.push_str(&format!("field{i}: {quoted}\n"));
    }
    incoming.insert("1/meta.yaml".into(), exp.into_bytes());
    incoming.insert(
        "1/r/meta.yaml".into(),
        b"experiment_id: '1'\nrun_id: r\nrun_name: 'on'\nuser_id: '1:20'\nstatus: 3\ntags: []\n\
          end_time: null\n"
            .to_vec(),
    );
    incoming.insert(
        "1/traces/tr-1/trace_info.yaml".into(),
        b"request_time: '2026-11-23T04:54:23.753Z'\ntrace_id: tr-1\ntrace_location:\n  \
          mlflow_experiment:\n    experiment_id: '1'\n  type: MLFLOW_EXPERIMENT\nexecution_duration_ms: 0\n"
            .to_vec(),
    );
    let merged = merge(&StoreFiles::new(), &incoming, &MergeOptions { tag: "t", artifact_root: "file:///x" })
        .expect("merge");

    let tmp = tempfile::tempdir().expect("tempdir");
    let yaml_files: Vec<&String> = merged.files.keys().filter(|k| k.ends_with(".yaml")).collect();
    assert_eq!(yaml_files.len(), 3);
    for (rel, bytes) in &merged.files {
        let path = tmp.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    let read_all = r#"
import json, os, sys
from mlflow.utils.yaml_utils import read_yaml
root = sys.argv[1]
out = {}
for rel in sys.argv[2:]:
    path = os.path.join(root, rel)
    out[rel] = read_yaml(os.path.dirname(path), os.path.basename(path))
print(json.dumps(out, default=lambda o: f"<{type(o).__name__} {o}>"))
"#;
    let mut args = vec!["-c", read_all, tmp.path().to_str().expect("utf-8")];
    args.extend(yaml_files.iter().map(|s| s.as_str()));
    let stdout = python(&args, tmp.path());
    let pyyaml: Value = serde_json::from_str(stdout.trim()).expect("json from python");
    for path in yaml_files {
        let ours: serde_yaml::Value = serde_yaml::from_slice(&merged.files[path]).expect("yaml");
        let ours = serde_json::to_value(ours).expect("json");
        assert_eq!(pyyaml[path.as_str()], ours, "{path}:\n{}", String::from_utf8_lossy(&merged.files[path]));
    }
}
