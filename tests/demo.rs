//! `mlgit demo` end to end: the whole framework on the built-in sample data, offline, ending with a
//! leaderboard where the second model beats the baseline; the repository it leaves is read back with
//! the real git and git-lfs clients.

mod common;

use common::{stderr, stdout, TestEnv};

#[test]
fn demo_runs_the_whole_flow_and_ends_with_the_leaderboard() {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return;
    }
    let out = env.mlgit(env.tmp.path(), ["demo", "d"]);
    assert!(out.status.success(), "demo failed\nstdout:\n{}\nstderr:\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for cmd in [
        "$ mlgit init",
        "$ mlgit -C",
        "commit-data",
        "clean",
        "split",
        "stable update",
        "train-tag",
        "merge-tracking",
        "runs",
    ] {
        assert!(text.contains(cmd), "the demo shows `{cmd}`:\n{text}");
    }
    // The demo deploys model-v2 through staging to prod; the baseline skipping staging was refused.
    let repo = env.path("d/churn");
    assert_eq!(env.git(&repo, ["show", "env/prod:DEPLOYED_TAG"]), "model-v2\n");
    let log = env.git(&repo, ["log", "--first-parent", "--format=%s", "env/prod"]);
    assert_eq!(log, "promote model-v2 to prod\nmlgit init: env/prod branch\n", "{log}");
    assert!(stderr(&out).contains("rule `requires:staging`"), "the refusal is shown:\n{}", stderr(&out));
    // The leaderboard is the last thing printed, best first: the one-rule model (v2) beats the baseline.
    let board = &text[text.rfind("$ mlgit -C").expect("a last command")..];
    let v1 = board.find("model-v1").expect("model-v1 on the leaderboard");
    let v2 = board.find("model-v2").expect("model-v2 on the leaderboard");
    assert!(v2 < v1, "model-v2 ranks first:\n{board}");

    // Both runs are on main; the snapshots are tags; clean dropped the broken files.
    let runs = env.git(&repo, ["ls-tree", "--name-only", "main", "tracking/runs/"]);
    assert_eq!(runs, "tracking/runs/model-v1.json\ntracking/runs/model-v2.json\n");
    let clean = env.git(&repo, ["ls-tree", "-r", "--name-only", "clean"]);
    for dropped in ["truncated.png", "bad.jpg", "empty.txt", "latin1.txt"] {
        assert!(!clean.contains(dropped), "clean drops {dropped}:\n{clean}");
    }
    assert!(clean.contains("data/images/red.png"), "{clean}");
    // Tables are cleaned record by record: broken.jsonl keeps its good lines, its bad line is
    // reported, and every table has an inferred schema.
    assert!(clean.contains("data/events/broken.jsonl"), "{clean}");
    assert!(clean.contains("schema/batch-01.json") && clean.contains("profile.json"), "{clean}");
    let report = env.git(&repo, ["show", "clean:.mlgit/clean-report.json"]);
    assert!(
        report.contains("\"path\": \"events/broken.jsonl\"") && report.contains("\"check\": \"json\""),
        "{report}"
    );
    // The split is record by record: the leaderboard is measured on validation rows.
    let split = env.git(&repo, ["ls-tree", "-r", "--name-only", "split", "data/validation/customers/"]);
    assert_eq!(split.lines().count(), 24, "every customer batch has its validation part:\n{split}");
    let metrics = env.git(&repo, ["show", "model-v1:metrics.json"]);
    assert!(metrics.contains("\"eval_on\":\"validation\""), "{metrics}");
    // A plain clone of the snapshot gets the model and data back with git-lfs.
    let c = env.path("clone");
    env.git(
        env.tmp.path(),
        ["clone", "-q", "-b", "stable/model", repo.to_str().unwrap(), c.to_str().unwrap()],
    );
    env.git(&c, ["lfs", "pull"]);
    env.git(&c, ["checkout", "-q", "model-v2"]);
    assert_eq!(env.git(&c, ["status", "--porcelain"]), "");
    let model = std::fs::read_to_string(c.join("model/model.json")).unwrap();
    assert!(model.contains("one-rule") || model.contains("one_rule"), "{model}");
}
