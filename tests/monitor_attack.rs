//! Regression tests of `mlgit monitor` under attack: each is named after what went wrong. They run
//! on the repository `mlgit demo` builds (two snapshots, model-v1 and model-v2, and two weeks of
//! production requests), so they need nothing but git.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{stderr, stdout, TestEnv};

/// The demo's repository and its production folder (the demo has logged both weeks already).
fn demo(env: &TestEnv) -> (PathBuf, PathBuf) {
    let root = env.path("demo");
    let out = env.mlgit(env.tmp.path(), ["demo", root.to_str().unwrap()]);
    assert!(out.status.success(), "demo failed: {}", stderr(&out));
    (root.join("churn"), root.join("production"))
}

fn tip(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, ["rev-parse", "monitoring/prod"]).trim().to_string()
}

/// A copy of week 1's requests under another name, in its own folder.
fn copy_of_week_1(env: &TestEnv, prod: &Path, dir: &str, name: &str) -> PathBuf {
    let d = env.path(dir);
    fs::create_dir_all(&d).unwrap();
    fs::copy(prod.join("requests-week-1.csv"), d.join(name)).unwrap();
    d
}

#[test]
fn the_same_batch_logged_again_is_refused_as_a_duplicate_not_as_an_append_only_edit() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    let before = tip(&env, &repo);
    // The demo logged week 1 already: the same bytes, under another name, in the same second or not.
    for (dir, name) in [("again-a", "a.csv"), ("again-b", "b.csv")] {
        let d = copy_of_week_1(&env, &prod, dir, name);
        let out = env.mlgit(&repo, ["monitor", "log", "--env", "prod", "--source", d.to_str().unwrap()]);
        assert!(!out.status.success(), "a duplicate batch was accepted: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("already logged") && err.contains("420 records"), "{err}");
        assert!(!err.contains("append-only"), "{err}");
        assert_eq!(tip(&env, &repo), before, "the branch moved");
    }
}

#[test]
fn a_tag_with_the_trailer_separators_is_refused() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    env.git(&repo, ["tag", "x,y=z", "model-v2^{}"]);
    let before = tip(&env, &repo);
    // Week 2 without its tag column, served "by" the odd tag.
    let text = fs::read_to_string(prod.join("requests-week-2.csv")).unwrap();
    let cut: String =
        text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect::<Vec<_>>().concat();
    let file = env.path("notag.csv");
    fs::write(&file, cut).unwrap();
    let out = env.mlgit(
        &repo,
        ["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap(), "--tag", "x,y=z"],
    );
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    assert!(stderr(&out).contains("contains ','"), "{}", stderr(&out));
    assert_eq!(tip(&env, &repo), before);
}

#[test]
fn renaming_the_tag_column_later_does_not_blind_drift_to_logged_batches() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    let wt = env.path("mon");
    env.git(&repo, ["worktree", "add", wt.to_str().unwrap(), "monitoring/prod"]);
    let yaml = fs::read_to_string(wt.join("monitor.yaml")).unwrap();
    fs::write(wt.join("monitor.yaml"), yaml.replace("tag_column: model_tag", "tag_column: nosuch")).unwrap();
    env.git(&wt, ["commit", "-qam", "a typo in the tag column"]);
    // Week 2 (the last batch) drifts: it still does, read with the column it was logged with.
    let out = env.mlgit(&repo, ["--json", "monitor", "drift", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v2 = report["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "model-v2").unwrap();
    assert_eq!(v2["rows"], 400, "{v2}");
}

#[test]
fn min_rows_zero_is_refused() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    let wt = env.path("mon");
    env.git(&repo, ["worktree", "add", wt.to_str().unwrap(), "monitoring/prod"]);
    let yaml = fs::read_to_string(wt.join("monitor.yaml")).unwrap();
    fs::write(wt.join("monitor.yaml"), yaml.replace("min_rows: 200", "min_rows: 0")).unwrap();
    env.git(&wt, ["commit", "-qam", "min_rows 0"]);
    let out = env.mlgit(&repo, ["monitor", "drift", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("min_rows") && stderr(&out).contains("monitor.yaml"), "{}", stderr(&out));
}

#[test]
fn calibrate_refuses_zero_batch_rows_and_never_writes_an_unreachable_threshold() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    let before = tip(&env, &repo);
    for bad in [["--batch-rows", "0"], ["--batches-per-day", "0"], ["--batches-per-day", "inf"]] {
        let out = env.mlgit(&repo, ["monitor", "calibrate", "--env", "prod", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(1), "{bad:?} accepted: {}", stdout(&out));
        assert_eq!(tip(&env, &repo), before);
    }
    // One record per batch: KS and JS would need thresholds beyond their maxima; capped and said.
    let out = env.mlgit(&repo, ["monitor", "calibrate", "--env", "prod", "--batch-rows", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot tell drift from chance"), "{}", stderr(&out));
    let yaml = env.git(&repo, ["show", "monitoring/prod:monitor.yaml"]);
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    for (name, f) in doc["features"].as_mapping().unwrap() {
        if let Some(ks) = f["ks"].as_f64() {
            assert!(ks <= 1.0, "{name:?}: ks threshold {ks}");
        }
        if let Some(js) = f["js"].as_f64() {
            assert!(js <= std::f64::consts::LN_2.sqrt() + 1e-12, "{name:?}: js threshold {js}");
        }
    }
}
