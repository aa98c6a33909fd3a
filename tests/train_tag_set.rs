//! End to end: `mlgit train-tag --set KEY=VALUE`: the params reach the training through the JSON
//! file `$MLGIT_PARAMS` names, and the snapshot records them (tracking/run.json, the `Mlgit-Set`
//! trailers of the commit and the tag as `git` reads them, `mlgit show`); a grid loop makes one
//! snapshot per point; a training that ignores an override is noted; bad `--set`s are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{stderr, stdout, TestEnv};

/// A training that reads `$MLGIT_PARAMS`, reports what it read as its params (params.json), derives
/// its accuracy from `lr` (1 - lr, 0.5 without) and says where the file was (model/where.txt).
const READS_PARAMS: &str = r#"set -eu
mkdir -p model
printf '%s\n' "$MLGIT_PARAMS" > model/where.txt
cp "$MLGIT_PARAMS" params.json
awk '/"lr":/ { gsub(/[^0-9.eE-]/, "", $2); lr = $2 } END { printf "{\"accuracy\": %s}\n", (lr == "" ? 0.5 : 1 - lr) }' "$MLGIT_PARAMS" > metrics.json
"#;

/// A training with its own fixed params: it never reads `$MLGIT_PARAMS`.
const IGNORES_PARAMS: &str = r#"set -eu
mkdir -p model
echo m > model/m.txt
printf '{"lr": 0.1, "opt": {"name": "sgd"}}\n' > params.json
printf '{"accuracy": 0.7}\n' > metrics.json
"#;

fn rows(n: usize) -> String {
    let mut s = String::from("age,plan,label\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},{},{}\n",
            20 + i,
            if i % 2 == 0 { "basic" } else { "pro" },
            ["churn", "stay"][i % 2]
        ));
    }
    s
}

/// A repository whose stable branch has split data, and a worktree of that branch (as in
/// tests/snapshot.rs).
fn stable_worktree(env: &TestEnv) -> Option<(PathBuf, PathBuf)> {
    if !env.has_git_lfs() {
        return None;
    }
    let repo = env.init_repo("r");
    let (train, valid) = (rows(12), rows(4));
    let raw = env.commit_on(&repo, "raw", &[("data/b.csv", train.as_bytes())], "Add batch");
    let clean = env.commit_on(
        &repo,
        "clean",
        &[("data/b.csv", train.as_bytes())],
        &format!("Clean\n\nDerived-From: raw {raw}"),
    );
    env.commit_on(
        &repo,
        "split",
        &[("data/train/b.csv", train.as_bytes()), ("data/validation/b.csv", valid.as_bytes())],
        &format!("Split\n\nDerived-From: clean {clean}"),
    );
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();
    let stable = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    Some((repo, stable))
}

fn train(env: &TestEnv, dir: &Path, sets: &[&str], script: &str) -> std::process::Output {
    let mut args: Vec<&str> = vec!["train-tag"];
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend(["--", "sh", "-c", script]);
    env.mlgit(dir, args)
}

fn json_at(env: &TestEnv, repo: &Path, rev_path: &str) -> serde_json::Value {
    let text = env.git(repo, ["show", rev_path]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rev_path} is not JSON ({e}): {text}"))
}

#[test]
fn set_params_reach_the_training_and_are_recorded_in_the_snapshot() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let out = train(
        &env,
        &stable,
        &["params.lr=0.01", "opt.name=adam", "layers=[64, 32]", "run=\"1.0\""],
        READS_PARAMS,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("With params layers=[64,32] lr=0.01 opt.name=adam run=\"1.0\""),
        "{}",
        stderr(&out)
    );

    // What the training read: the nested overrides, from a file outside the worktree, gone after.
    let read = json_at(&env, &repo, "model-v1:params.json");
    assert_eq!(
        read,
        serde_json::json!({"lr": 0.01, "opt": {"name": "adam"}, "layers": [64, 32], "run": "1.0"})
    );
    let where_ = std::fs::read_to_string(stable.join("model/where.txt")).unwrap();
    let params_file = PathBuf::from(where_.trim());
    let git_dir = PathBuf::from(env.git(&stable, ["rev-parse", "--absolute-git-dir"]).trim());
    assert!(params_file.starts_with(&git_dir), "{} not in {}", params_file.display(), git_dir.display());
    assert!(!params_file.exists(), "the params file is removed once the run is over");

    // Recorded: run.json, the commit's and the tag's trailers (read by git), `mlgit show`.
    let record = json_at(&env, &repo, "model-v1:tracking/run.json");
    assert_eq!(
        record["overrides"],
        serde_json::json!({"lr": 0.01, "opt.name": "adam", "layers": [64, 32], "run": "1.0"})
    );
    assert_eq!(record["metrics"]["accuracy"], 0.99, "the training used lr=0.01: {record}");
    let trailers = env.git(&repo, ["log", "-1", "--format=%(trailers:key=Mlgit-Set,valueonly)", "model-v1"]);
    assert_eq!(trailers.trim(), "layers=[64,32]\nlr=0.01\nopt.name=adam\nrun=\"1.0\"");
    let tag_trailers = env.git(
        &repo,
        ["for-each-ref", "--format=%(contents:trailers:key=Mlgit-Set,valueonly)", "refs/tags/model-v1"],
    );
    assert_eq!(tag_trailers.trim(), trailers.trim());
    let show = env.mlgit_ok(&repo, ["show", "model-v1"]);
    assert!(
        show.contains("  overrides layers=[64,32] lr=0.01 opt.name=adam run=\"1.0\"  (train-tag --set)\n"),
        "{show}"
    );
    let shown = env.mlgit_json(&repo, ["show", "model-v1"]);
    assert_eq!(shown["record"]["overrides"], record["overrides"]);
    let card = env.git(&repo, ["show", "model-v1:MODEL_CARD.md"]);
    assert!(card.contains("mlgit train-tag --set 'layers=[64,32]' --set lr=0.01 --set opt.name=adam --set 'run=\"1.0\"' -- sh -c"), "{card}");
}

#[test]
fn without_set_the_training_reads_an_empty_params_file_and_nothing_is_recorded() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let out = train(&env, &stable, &[], READS_PARAMS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_at(&env, &repo, "model-v1:params.json"), serde_json::json!({}));
    let record = json_at(&env, &repo, "model-v1:tracking/run.json");
    assert!(record.get("overrides").is_none(), "{record}");
    let message = env.git(&repo, ["log", "-1", "--format=%B", "model-v1"]);
    assert!(!message.contains("Mlgit-Set"), "{message}");
}

#[test]
fn a_grid_loop_tags_one_snapshot_per_point_each_with_its_overrides() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    // The loop of docs/experiments.md, one point after the other (one run per stable branch).
    let mlgit = assert_cmd::cargo::cargo_bin("mlgit");
    let script = format!(
        "set -e\nfor lr in 0.1 0.01; do\n  for depth in 2 4; do\n    '{}' train-tag --set lr=$lr --set depth=$depth -- sh -c '{}'\n  done\ndone\n",
        mlgit.display(),
        READS_PARAMS.replace('\'', "'\\''")
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&stable)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LANG", "C.UTF-8")
        .env("GIT_AUTHOR_DATE", format!("@{} +0000", env.date.get()))
        .env("GIT_COMMITTER_DATE", format!("@{} +0000", env.date.get()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let tags = env.git(&repo, ["tag", "-l", "model-v*"]);
    assert_eq!(tags.lines().count(), 4, "{tags}");
    let mut points = Vec::new();
    for tag in tags.lines() {
        let record = json_at(&env, &repo, &format!("{tag}:tracking/run.json"));
        let o = &record["overrides"];
        assert_eq!(record["params"]["lr"], o["lr"], "{tag}: the training read its point");
        points.push((o["lr"].to_string(), o["depth"].to_string()));
    }
    points.sort();
    let want: Vec<(String, String)> =
        ["0.01", "0.1"].iter().flat_map(|lr| ["2", "4"].map(|d| (lr.to_string(), d.to_string()))).collect();
    assert_eq!(points, want);
}

#[test]
fn a_second_grid_point_started_on_the_same_branch_while_one_runs_is_refused() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let (started, go) = (env.path("started"), env.path("go"));
    let script = format!(
        "touch '{}'; while [ ! -f '{}' ]; do sleep 0.05; done; {READS_PARAMS}",
        started.display(),
        go.display()
    );
    let first = env
        .mlgit_cmd(&stable)
        .args(["train-tag", "--set", "lr=0.1", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refs = env.refs(&repo);
    let out = train(&env, &stable, &["lr=0.01"], READS_PARAMS);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'stable/model' is busy: mlgit train-tag (pid"), "{}", stderr(&out));
    assert_eq!(env.refs(&repo), refs, "the refused point changed nothing");
    std::fs::write(&go, "").unwrap();
    let done = first.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert_eq!(json_at(&env, &repo, "model-v1:tracking/run.json")["overrides"]["lr"], 0.1);
}

#[test]
fn a_training_that_ignores_an_override_is_noted() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let mut args =
        vec!["--json", "train-tag", "--set", "lr=0.01", "--set", "opt.name=sgd", "--set", "epochs=3"];
    args.extend(["--", "sh", "-c", IGNORES_PARAMS]);
    let out = env.mlgit(&stable, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let notes: Vec<&str> = v["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    let ignored: Vec<&&str> = notes.iter().filter(|n| n.contains("ignored --set")).collect();
    // lr contradicts; opt.name agrees; epochs is not reported, which is no contradiction.
    assert_eq!(ignored.len(), 1, "{notes:?}");
    assert!(
        ignored[0].contains("the training ignored --set lr=0.01: the params it reported say lr = 0.1"),
        "{notes:?}"
    );
    assert!(ignored[0].contains("$MLGIT_PARAMS"), "{notes:?}");
    assert!(stderr(&out).contains("note: the training ignored --set lr=0.01"), "{}", stderr(&out));
    // The snapshot is still made, and says both: what was set and what the training reported.
    let record = json_at(&env, &repo, "model-v1:tracking/run.json");
    assert_eq!(
        (record["overrides"]["lr"].clone(), record["params"]["lr"].clone()),
        (0.01.into(), 0.1.into())
    );
}

#[test]
fn malformed_or_misplaced_set_is_refused_before_anything_changes() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let refs = env.refs(&repo);
    let huge = format!("lr={}", "1".repeat(5000));
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["--set", "lr=0.1", "--no-run"], "--set needs a training run", "drop --no-run"),
        (vec!["--set", "lr"], "has no '='", "KEY=VALUE"),
        (vec!["--set", "=0.1"], "has no key", "KEY=VALUE"),
        (vec!["--set", "params.=0.1"], "has no key", "KEY=VALUE"),
        (vec!["--set", "../x=1"], "'../x' is not a param name", "joined by dots"),
        (vec!["--set", "a..b=1"], "'a..b' is not a param name", "joined by dots"),
        (vec!["--set", "lr="], "lr= has no value", "lr=null"),
        (vec!["--set", "lr={a: 1}"], "a mapping is not taken", "--set lr.name="),
        (vec!["--set", "lr=[1,"], "is not a YAML value", "quote it"),
        (vec!["--set", &huge], "at most 1024 are taken", "commit large settings"),
        (vec!["--set", "lr=1", "--set", "params.lr=2"], "gives 'lr' twice", "give each key once"),
        (
            vec!["--set", "opt=1", "--set", "opt.lr=2"],
            "gives 'opt' a value and also sets 'opt.lr'",
            "set either",
        ),
    ];
    for (sets, message, hint) in cases {
        let mut args = vec!["train-tag"];
        args.extend(&sets);
        if !sets.contains(&"--no-run") {
            args.extend(["--", "sh", "-c", READS_PARAMS]);
        }
        let out = env.mlgit(&stable, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{sets:?}: {err}");
        assert!(err.contains(message) && err.contains(hint), "{sets:?}: {err}");
        assert!(err.len() < 2000, "{sets:?}: the error quotes no huge value: {err}");
    }
    assert_eq!(env.refs(&repo), refs);
    assert!(!stable.join("model").exists(), "no training ran");
    assert_eq!(env.git(&stable, ["status", "--porcelain"]), "");
}

#[test]
fn the_params_file_replaces_a_link_left_at_its_name_instead_of_writing_through_it() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    // A user's file, and a link to it where the params file of the run model-v1 goes.
    let victim = env.path("victim.json");
    std::fs::write(&victim, "{\"mine\": true}\n").unwrap();
    let git_dir = PathBuf::from(env.git(&stable, ["rev-parse", "--absolute-git-dir"]).trim());
    let dir = git_dir.join("mlgit/params/stable-model");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("model-v1.json")).unwrap();
    // And a params.json of the user's in the worktree: an output, moved aside, never written.
    std::fs::write(stable.join("params.json"), "{\"user\": 1}\n").unwrap();
    let out = train(&env, &stable, &["lr=0.5"], READS_PARAMS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "{\"mine\": true}\n");
    assert_eq!(json_at(&env, &repo, "model-v1:params.json"), serde_json::json!({"lr": 0.5}));
    let aside = git_dir.join("mlgit/outputs-before-run/model-v1/params.json");
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "{\"user\": 1}\n");
}

#[test]
fn the_demo_one_rule_trainer_takes_bins_from_set() {
    let env = TestEnv::new();
    let Some((repo, stable)) = stable_worktree(&env) else { return };
    let trainer = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/demo/better_train.sh");
    let trainer = trainer.to_str().unwrap();
    let v = env.mlgit_json(&stable, ["train-tag", "--set", "bins=3", "--", "sh", trainer]);
    assert_eq!(v["record"]["params"]["bins"], 3, "{v}");
    assert_eq!(v["record"]["overrides"], serde_json::json!({"bins": 3}));
    assert!(!v["notes"].to_string().contains("ignored --set"), "{v}");
    let model = env.git(&repo, ["show", "model-v1:params.json"]);
    assert!(model.contains("\"bins\":3"), "{model}");
    // Without --set, the default (8 bins); a value that is no bin count stops the training.
    let v = env.mlgit_json(&stable, ["train-tag", "--", "sh", trainer]);
    assert_eq!(v["record"]["params"]["bins"], 8, "{v}");
    let out = env.mlgit(&stable, ["train-tag", "--set", "bins=many", "--", "sh", trainer]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--set bins) must be a positive integer, got '\"many\"'"),
        "{}",
        stderr(&out)
    );
}
