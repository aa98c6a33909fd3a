//! Regression tests for the smaller failures of issue 9: lineage names, malformed trailers, the
//! provenance user, the `git lfs push` hints, a refused `init --template`, and templates and docs
//! that named commands which do not exist. Each runs the real binary and checks with real git.

mod common;

use std::path::{Path, PathBuf};

use common::{stderr, stdout, write_files, TestEnv};
use serde_json::Value;

fn rev(env: &TestEnv, repo: &Path, rev: &str) -> String {
    env.git(repo, ["rev-parse", rev]).trim().to_string()
}

fn kinds(lineage: &Value) -> Vec<String> {
    lineage["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect()
}

/// CSV files with a label column, enough of them that every split gets some.
fn csv_batch(dir: &Path, n: usize) {
    for i in 0..n {
        let label = if i % 3 == 0 { "churn" } else { "stay" };
        let text = format!("age,plan,label\n{},basic,{label}\n{},pro,stay\n", 20 + i, 40 + i);
        write_files(dir, &[(&format!("batch-{i:02}.csv"), text.as_bytes())]);
    }
}

/// raw → clean → split → stable/model with mlgit's own commands, and a snapshot `model-v1` trained
/// with the template's train.sh in a worktree of stable/model.
fn trained_project(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repo = env.init_repo("r");
    let src = env.path("batch");
    csv_batch(&src, 12);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap(), "-m", "Add batch 1"]);
    env.tick();
    env.mlgit_ok(&repo, ["clean"]);
    env.tick();
    env.mlgit_ok(&repo, ["split"]);
    env.tick();
    env.mlgit_ok(&repo, ["stable", "update"]);
    env.tick();
    let wt = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", wt.to_str().unwrap(), "stable/model"]);
    env.mlgit_ok(&wt, ["train-tag", "--materialize", "--", "./train.sh"]);
    env.tick();
    (repo, wt)
}

#[test]
fn lineage_names_a_monitoring_commit_monitoring_not_raw() {
    let env = TestEnv::new();
    let (repo, _wt) = trained_project(&env);

    // A monitoring batch written with commit-data, and one written with git plumbing.
    let requests = env.path("requests");
    write_files(&requests, &[("2026-11-23.jsonl", b"{\"x\":1,\"model\":\"model-v1\"}\n")]);
    env.mlgit_ok(
        &repo,
        [
            "commit-data",
            "--branch",
            "monitoring/prod",
            "--source",
            requests.to_str().unwrap(),
            "-m",
            "Requests",
        ],
    );
    env.tick();
    let tree = env.git(&repo, ["rev-parse", "monitoring/staging^{tree}"]);
    let msg =
        "Requests by a batch job\n\nMlgit-Source: /var/log/serving\nMlgit-Host: web-1\nMlgit-User: svc\n";
    let plumbing = env
        .git(&repo, ["commit-tree", tree.trim(), "-p", "monitoring/staging", "-m", msg])
        .trim()
        .to_string();
    env.git(&repo, ["update-ref", "refs/heads/monitoring/staging", &plumbing]);

    let m = env.mlgit_json(&repo, ["lineage", "monitoring/prod"]);
    assert_eq!(kinds(&m), ["monitoring"], "{m}");
    assert_eq!(m["chain"][0]["commit"], rev(&env, &repo, "monitoring/prod").as_str());
    let batches = m["raw_batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "the init commit has no provenance: {m}");
    assert_eq!(batches[0]["source"], requests.to_str().unwrap());
    let human = env.mlgit_ok(&repo, ["lineage", "monitoring/prod"]);
    assert!(human.contains("\n    monitoring ") && human.contains("Monitoring batches (1)"), "{human}");
    assert!(!human.contains("    raw ") && !human.contains("Raw batches"), "{human}");
    // By commit id: the branch that holds it names it.
    let by_id = env.mlgit_json(&repo, ["lineage", &plumbing]);
    assert_eq!(kinds(&by_id), ["monitoring"], "{by_id}");
    assert_eq!(by_id["raw_batches"][0]["user"], "svc");

    // The other kinds, named after their branches as before.
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "raw"])), ["raw"]);
    let raw_by_id = env.mlgit_json(&repo, ["lineage", &rev(&env, &repo, "raw")]);
    assert_eq!(kinds(&raw_by_id), ["raw"]);
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "clean"])), ["clean", "raw"]);
    assert_eq!(kinds(&env.mlgit_json(&repo, ["lineage", "split"])), ["split", "clean", "raw"]);
    let snapshot = env.mlgit_json(&repo, ["lineage", "model-v1"]);
    assert_eq!(kinds(&snapshot), ["snapshot", "split", "clean", "raw"], "{snapshot}");
    // A stable commit without a tracking record is a stable commit, not a snapshot.
    env.mlgit_ok(&repo, ["stable", "update"]);
    let stable = env.mlgit_json(&repo, ["lineage", "stable/model"]);
    assert_eq!(kinds(&stable), ["stable", "split", "clean", "raw"], "{stable}");
    // Each link is the commit the Derived-From trailer names, as git reads it.
    let trailer = env.git(&repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", "split"]);
    assert_eq!(trailer.split_whitespace().nth(1), snapshot["chain"][2]["commit"].as_str());
}

#[test]
fn lineage_reports_a_malformed_derived_from_trailer_as_malformed_not_missing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let src = env.path("batch");
    csv_batch(&src, 3);
    env.mlgit_ok(&repo, ["commit-data", "--source", src.to_str().unwrap()]);
    env.mlgit_ok(&repo, ["clean"]);
    // A hand-made clean commit whose trailer names an abbreviated id.
    let tree = env.git(&repo, ["rev-parse", "clean^{tree}"]);
    let short = &rev(&env, &repo, "raw")[..7];
    let msg = format!("Clean by hand\n\nDerived-From: raw {short}\n");
    let bad = env.git(&repo, ["commit-tree", tree.trim(), "-p", "clean", "-m", &msg]).trim().to_string();
    env.git(&repo, ["update-ref", "refs/heads/clean", &bad]);
    assert_eq!(
        env.git(&repo, ["log", "-1", "--format=%(trailers:key=Derived-From,valueonly)", "clean"]).trim(),
        format!("raw {short}"),
        "git reads it as a trailer"
    );

    for args in [&["lineage", "clean"][..], &["--json", "lineage", "clean"][..]] {
        let out = env.mlgit(&repo, args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("malformed Derived-From trailer"), "{err}");
        assert!(!err.contains("has no lineage"), "not reported as missing: {err}");
        assert!(err.contains(&bad), "names the commit: {err}");
        assert!(err.contains(&format!("Derived-From: raw {short}")), "names the trailer: {err}");
        assert!(err.contains("hint: ") || stdout(&out).contains("\"hint\""), "{err}");
    }
    // The raw commit, which carries no Derived-From trailer, still traces.
    let raw = env.mlgit(&repo, ["lineage", "raw"]);
    assert!(raw.status.success(), "{}", stderr(&raw));
}

#[test]
fn provenance_user_falls_back_to_git_identity_when_user_is_unset() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let user_of = |rev: &str| {
        env.git(&repo, ["log", "-1", "--format=%(trailers:key=Mlgit-User,valueonly)", rev]).trim().to_string()
    };
    let batch = |name: &str| {
        let dir = env.path(name);
        write_files(&dir, &[(&format!("{name}.csv"), b"a,b\n1,2\n")]);
        dir.to_str().unwrap().to_string()
    };

    // No $USER nor $LOGNAME: the identity git would commit with (user.name, user.email).
    let src = batch("one");
    let out =
        env.mlgit_cmd(&repo).env_remove("USER").args(["commit-data", "--source", &src]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let name = env.git(&repo, ["config", "user.name"]).trim().to_string();
    let email = env.git(&repo, ["config", "user.email"]).trim().to_string();
    assert_eq!(user_of("raw"), format!("{name} <{email}>"));

    // GIT_AUTHOR_NAME wins over the config, as it does for git.
    env.tick();
    let src = batch("two");
    let out = env
        .mlgit_cmd(&repo)
        .env_remove("USER")
        .env("GIT_AUTHOR_NAME", "CI Bot")
        .args(["commit-data", "--source", &src])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(user_of("raw"), format!("CI Bot <{email}>"));

    // The login name still comes first.
    env.tick();
    let src = batch("three");
    env.mlgit_ok(&repo, ["commit-data", "--source", &src]);
    assert_eq!(user_of("raw"), "tester");
}
