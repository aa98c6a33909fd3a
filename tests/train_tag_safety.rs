//! End to end: train-tag never loses what a training wrote, records the code that was really
//! trained, regenerates its own model card, reads MLflow's default SQLite store, and refuses links
//! and special files among the outputs. Each test is named after the failure it closes (issue 9).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{python_with_mlflow, sha256_hex, stderr, stdout, write_files, TestEnv};

/// A repository with raw → clean → split commits, `stable/model` updated from dev and split, and a
/// worktree of it at `st`.
struct Project {
    repo: PathBuf,
    stable: PathBuf,
}

fn project(env: &TestEnv) -> Option<Project> {
    if !env.has_git_lfs() {
        return None;
    }
    let repo = env.init_repo("r");
    let rows = "age,plan,label\n20,basic,churn\n21,pro,stay\n22,basic,stay\n";
    let raw = env.commit_on(&repo, "raw", &[("data/b.csv", rows.as_bytes())], "Add b");
    let clean = env.commit_on(
        &repo,
        "clean",
        &[("data/b.csv", rows.as_bytes())],
        &format!("Clean\n\nDerived-From: raw {raw}"),
    );
    env.commit_on(
        &repo,
        "split",
        &[("data/train/b.csv", rows.as_bytes()), ("data/validation/b.csv", rows.as_bytes())],
        &format!("Split\n\nDerived-From: clean {clean}"),
    );
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();
    let stable = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    Some(Project { repo, stable })
}

/// The tracking record of a tag, parsed strictly (it must be valid JSON).
fn record(env: &TestEnv, repo: &Path, tag: &str) -> serde_json::Value {
    let text = env.git(repo, ["cat-file", "-p", &format!("{tag}:tracking/run.json")]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{tag}: run.json is not valid JSON ({e}): {text}"))
}

/// Run train-tag expecting a refusal with `message`; refs must not change. Returns stderr.
fn refused(env: &TestEnv, p: &Project, args: &[&str], message: &str) -> String {
    let before = env.refs(&p.repo);
    let out = env.mlgit(&p.stable, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}\nstdout: {}\nstderr: {err}", stdout(&out));
    assert!(err.contains(message), "{args:?}: expected {message:?} in:\n{err}");
    assert_eq!(env.refs(&p.repo), before, "{args:?} changed refs");
    err
}

#[test]
fn a_nan_metric_never_throws_away_the_trained_model() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    env.mlgit_ok(st, ["train-tag", "--", "./train.sh"]);
    env.tick();

    // Python's json.dump writes NaN and Infinity: accepted, recorded as strings, model kept.
    let nan_run = "mkdir -p model && printf new-weights > model/model.json && \
                   printf '{\"accuracy\": NaN, \"loss\": Infinity, \"gap\": -Infinity}' > metrics.json";
    let v = env.mlgit_json(st, ["train-tag", "--", "sh", "-c", nan_run]);
    assert_eq!(v["tag"], "model-v2");
    assert_eq!(std::fs::read(st.join("model/model.json")).unwrap(), b"new-weights");
    let r = record(&env, &p.repo, "model-v2");
    assert_eq!(r["metrics"], serde_json::json!({"accuracy": "NaN", "loss": "Infinity", "gap": "-Infinity"}));
    let pointer = env.git(&p.repo, ["cat-file", "-p", "model-v2:model/model.json"]);
    assert!(pointer.contains(&sha256_hex(b"new-weights")), "{pointer}");
    assert_eq!(env.git(st, ["status", "--porcelain"]), "");
    env.tick();

    // A failure after the command finished: the new model stays, the hint says how to tag it.
    let bad_run = "mkdir -p model && printf six-hours > model/model.json && printf '{oops' > metrics.json";
    let err = refused(&env, &p, &["train-tag", "--", "sh", "-c", bad_run], "metrics.json is not valid JSON");
    assert!(err.contains("mlgit train-tag --no-run --name model-v3"), "{err}");
    assert_eq!(
        std::fs::read(st.join("model/model.json")).unwrap(),
        b"six-hours",
        "the trained model was kept"
    );
    assert_eq!(std::fs::read(st.join("metrics.json")).unwrap(), b"{oops");
    assert!(!env.git(&p.repo, ["tag", "-l"]).contains("model-v3"));

    // Tagged without retraining, as the hint says.
    std::fs::write(st.join("metrics.json"), r#"{"accuracy": 0.1}"#).unwrap();
    env.mlgit_ok(st, ["train-tag", "--no-run", "--name", "model-v3"]);
    let pointer = env.git(&p.repo, ["cat-file", "-p", "model-v3:model/model.json"]);
    assert!(pointer.contains(&sha256_hex(b"six-hours")), "{pointer}");
    env.git(&p.repo, ["lfs", "fsck", "model-v3"]);

    // The leaderboard never ranks a non-finite value best.
    env.tick();
    env.mlgit_ok(&p.repo, ["merge-tracking"]);
    let runs = env.mlgit_json(&p.repo, ["runs"]);
    let tags: Vec<&str> =
        runs["runs"].as_array().unwrap().iter().map(|r| r["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["model-v1", "model-v3", "model-v2"], "{runs}");
    assert_eq!(runs["runs"][2]["metrics"]["accuracy"], "NaN");
    let listed = env.git(&p.repo, ["cat-file", "-p", "main:tracking/runs.json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("runs.json is valid JSON");
    assert!(listed.to_string().contains(r#""accuracy":"NaN""#), "{listed}");
}

#[test]
fn a_command_that_cannot_start_leaves_the_outputs_as_they_were() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    env.mlgit_ok(st, ["train-tag", "--", "./train.sh"]);
    env.tick();
    let model = std::fs::read(st.join("model/model.json")).unwrap();
    // Outputs of a run nobody tagged, beside the committed ones.
    write_files(st, &[("checkpoints/epoch-9.bin", b"untagged")]);
    refused(&env, &p, &["train-tag", "--", "./no-such-script.sh"], "cannot run the training command");
    assert_eq!(std::fs::read(st.join("model/model.json")).unwrap(), model);
    assert_eq!(std::fs::read(st.join("checkpoints/epoch-9.bin")).unwrap(), b"untagged");
    assert_eq!(env.git(st, ["status", "--porcelain"]), "?? checkpoints/\n");
}

#[test]
fn uncommitted_outputs_of_an_earlier_run_are_moved_aside_not_deleted() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    write_files(st, &[("model/weights.bin", b"from a run that failed")]);
    let out = env.mlgit(st, ["train-tag", "--", "./train.sh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.contains("that no snapshot holds")).unwrap_or_else(|| panic!("{err}"));
    let dir = PathBuf::from(line.rsplit(" to ").next().unwrap().trim());
    assert_eq!(std::fs::read(dir.join("model/weights.bin")).unwrap(), b"from a run that failed");
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v1"]);
    assert!(!files.contains("weights.bin"), "an old output slipped into the snapshot: {files}");
}

#[test]
fn code_lineage_follows_a_merged_dev_commit() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    // Code reaches stable by `git merge dev/model`, as docs/branches.md recommends.
    let dev = env.commit_on(&p.repo, "dev/model", &[("docs/notes.md", b"Try a tree model next.\n")], "Notes");
    env.git(st, ["merge", "-q", "--no-edit", "dev/model"]);
    env.tick();
    let run = "./train.sh && printf '%s' \"$MLGIT_CODE_COMMIT\" > model/code-commit.txt";
    let v = env.mlgit_json(st, ["train-tag", "--", "sh", "-c", run]);
    assert_eq!(v["record"]["code"]["commit"], dev.as_str(), "{v}");
    assert_eq!(std::fs::read_to_string(st.join("model/code-commit.txt")).unwrap(), dev, "MLGIT_CODE_COMMIT");
    let message = env.git(&p.repo, ["log", "-1", "--format=%B", "model-v1"]);
    assert!(message.contains(&format!("Derived-From: dev {dev}")), "{message}");
    env.tick();

    // Code changed on stable while merging: no dev commit has it, the stable commit is recorded.
    env.commit_on(&p.repo, "dev/model", &[("docs/notes.md", b"Trees did not help.\n")], "More notes");
    env.git(st, ["merge", "-q", "--no-commit", "--no-ff", "dev/model"]);
    std::fs::write(st.join("docs/notes.md"), "Edited while merging.\n").unwrap();
    env.git(st, ["commit", "-q", "-am", "Merge dev/model with an edit"]);
    env.tick();
    let head = env.git(st, ["rev-parse", "HEAD"]).trim().to_string();
    let v = env.mlgit_json(st, ["train-tag", "--", "./train.sh"]);
    assert_eq!(v["record"]["code"]["commit"], head.as_str(), "{v}");
    let message = env.git(&p.repo, ["log", "-1", "--format=%B", "model-v2"]);
    assert!(!message.contains("Derived-From: dev"), "{message}");
}

#[test]
fn no_run_regenerates_the_model_card() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    env.mlgit_ok(st, ["train-tag", "--", "./train.sh"]);
    env.tick();
    std::fs::write(st.join("metrics.json"), r#"{"accuracy": 0.25}"#).unwrap();
    env.mlgit_ok(st, ["train-tag", "--no-run", "--name", "nightly-2"]);
    let card = env.git(&p.repo, ["show", "nightly-2:MODEL_CARD.md"]);
    assert!(card.contains("# nightly-2") && !card.contains("model-v1"), "{card}");
    assert!(card.contains("| accuracy | 0.25 |"), "{card}");
    assert_eq!(std::fs::read_to_string(st.join("MODEL_CARD.md")).unwrap(), card);
    assert_eq!(env.git(st, ["status", "--porcelain"]), "");
    env.tick();
    // A card the training wrote itself is the training's: kept as written.
    std::fs::write(st.join("MODEL_CARD.md"), "# Churn model\n\nHand written.\n").unwrap();
    env.mlgit_ok(st, ["train-tag", "--no-run", "--name", "nightly-3"]);
    assert_eq!(env.git(&p.repo, ["show", "nightly-3:MODEL_CARD.md"]), "# Churn model\n\nHand written.\n");
}

#[test]
fn metrics_come_from_mlflow_default_sqlite_store() {
    let env = TestEnv::new();
    let Some(python) = python_with_mlflow() else { return };
    let Some(p) = project(&env) else { return };
    // A real MLflow client on its default store (no tracking URI: sqlite:///mlflow.db).
    let script = env.path("train_mlflow.py");
    std::fs::write(
        &script,
        r#"import os
import mlflow
with mlflow.start_run() as run:
    mlflow.set_tag("mlgit.tag", os.environ["MLGIT_TAG"])
    mlflow.log_param("lr", 0.1)
    for step, acc in enumerate([0.5, 0.6, 0.8]):
        mlflow.log_metric("accuracy", acc, step=step)
    mlflow.log_metric("grad_norm", float("nan"))
    os.makedirs("model", exist_ok=True)
    with open("model/weights.txt", "w") as f:
        f.write("w")
"#,
    )
    .unwrap();
    let v = env.mlgit_json(&p.stable, ["train-tag", "--", &python, script.to_str().unwrap()]);
    assert!(p.stable.join("mlflow.db").is_file(), "MLflow used its default SQLite store");
    let rec = &v["record"];
    assert_eq!(rec["metrics"]["accuracy"], 0.8, "the last step: {rec}");
    assert_eq!(rec["metrics"]["grad_norm"], "NaN", "{rec}");
    assert_eq!(rec["params"]["lr"], "0.1");
    let run_id = rec["mlflow"]["run_id"].as_str().unwrap().to_string();
    let exp = rec["mlflow"]["experiment_id"].as_str().unwrap().to_string();
    // The run is in the snapshot in the file layout, as merge-tracking merges it.
    let files = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v1", "mlruns"]);
    for f in ["meta.yaml", "tags/mlgit.tag", "params/lr", "metrics/accuracy"] {
        assert!(files.contains(&format!("mlruns/{exp}/{run_id}/{f}")), "{f} missing: {files}");
    }
    assert_eq!(
        env.git(&p.repo, ["show", &format!("model-v1:mlruns/{exp}/{run_id}/tags/mlgit.tag")]),
        "model-v1"
    );
    assert_eq!(env.git(&p.stable, ["status", "--porcelain", "--untracked-files=no"]), "");
    let all = env.git(&p.repo, ["ls-tree", "-r", "--name-only", "model-v1"]);
    assert!(!all.contains("mlflow.db"), "the SQLite store itself is not committed: {all}");

    let merged = env.mlgit_ok(&p.repo, ["merge-tracking"]);
    assert!(!merged.contains("Nothing to merge"), "{merged}");
    // MLflow itself reads the merged store on main.
    let check = r#"import sys, mlflow
mlflow.set_tracking_uri("file://" + sys.argv[1])
runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
tagged = [r for r in runs if r.data.tags.get("mlgit.tag") == "model-v1"]
assert len(tagged) == 1, [r.data.tags for r in runs]
print(tagged[0].data.metrics["accuracy"], tagged[0].data.params["lr"])
"#;
    let out = Command::new(&python)
        .args(["-c", check, p.repo.join("mlruns").to_str().unwrap()])
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "MLflow could not read main's mlruns/: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "0.8 0.1");
}

#[test]
fn a_symlink_among_outputs_is_refused() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let st = &p.stable;
    let run = "./train.sh && ln -s /etc/hostname model/leak";
    let err =
        refused(&env, &p, &["train-tag", "--", "sh", "-c", run], "cannot be stored: model/leak (symlink)");
    assert!(err.contains("hint:") && err.contains("--no-run --name model-v1"), "{err}");
    assert!(st.join("model/model.json").is_file(), "the trained model stays");
    assert!(env.git(&p.repo, ["tag", "-l"]).trim().is_empty());
    // Without the link, the same outputs are tagged and check out cleanly.
    std::fs::remove_file(st.join("model/leak")).unwrap();
    env.mlgit_ok(st, ["train-tag", "--no-run", "--name", "model-v1"]);
    let tree = env.git(&p.repo, ["ls-tree", "-r", "model-v1"]);
    assert!(!tree.contains("120000"), "{tree}");
    env.mlgit_ok(&p.repo, ["checkout", "model-v1", "--into", env.path("co").to_str().unwrap()]);
}

#[test]
fn a_fifo_among_outputs_does_not_hang() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let before = env.refs(&p.repo);
    let mut child = env
        .mlgit_cmd(&p.stable)
        .args(["train-tag", "--", "sh", "-c", "./train.sh && mkfifo model/pipe"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("train-tag hung on a FIFO among the outputs");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be stored: model/pipe (FIFO)"), "{}", stderr(&out));
    assert_eq!(env.refs(&p.repo), before);
}

#[test]
fn a_gitattributes_among_outputs_is_refused() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let run = "./train.sh && echo '* -filter' > model/.GitAttributes";
    refused(
        &env,
        &p,
        &["train-tag", "--", "sh", "-c", run],
        "cannot be stored: model/.GitAttributes (reserved name",
    );
}

#[test]
fn a_killed_train_tag_leaves_no_training_running() {
    let env = TestEnv::new();
    let Some(p) = project(&env) else { return };
    let pid_file = env.path("child.pid");
    let script = format!("echo $$ > '{}'; while :; do sleep 0.05; done", pid_file.display());
    let mut mlgit = env
        .mlgit_cmd(&p.stable)
        .args(["train-tag", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&pid_file).map_or(true, |s| !s.ends_with('\n')) {
        assert!(start.elapsed() < Duration::from_secs(60), "the training never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let child: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    mlgit.kill().unwrap(); // SIGKILL
    mlgit.wait().unwrap();
    let alive = |pid: i32| {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
    };
    let start = Instant::now();
    while alive(child) {
        assert!(start.elapsed() < Duration::from_secs(30), "the training outlived a kill -9 of mlgit");
        std::thread::sleep(Duration::from_millis(100));
    }
}
