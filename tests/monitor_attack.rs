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

/// Week 2's requests with new request ids, each record passed through `edit` (a field list).
fn week_2_edited(prod: &Path, times: usize, edit: impl Fn(usize, &mut Vec<String>)) -> String {
    let text = fs::read_to_string(prod.join("requests-week-2.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut out = format!("{header}\n");
    for k in 0..times {
        for (i, row) in rows.iter().enumerate() {
            let mut fields: Vec<String> = row.split(',').map(str::to_string).collect();
            fields[0] = format!("E{k}-{i}");
            edit(k * rows.len() + i, &mut fields);
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    out
}

fn drift_report(env: &TestEnv, repo: &Path) -> (Option<i32>, serde_json::Value) {
    let out = env.mlgit(repo, ["--json", "monitor", "drift", "--env", "prod"]);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (out.status.code(), doc)
}

fn feature<'a>(report: &'a serde_json::Value, tag: &str, name: &str) -> &'a serde_json::Value {
    let t = report["tags"].as_array().unwrap().iter().find(|t| t["tag"] == tag).unwrap();
    t["features"].as_array().unwrap().iter().find(|f| f["feature"] == name).unwrap()
}

#[test]
fn a_feature_that_arrives_all_null_raises_an_alert_instead_of_insufficient_data() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    // monthly_charges (column 4) blank in every record.
    let text = week_2_edited(&prod, 1, |_, f| f[4].clear());
    let file = env.path("nulls.csv");
    fs::write(&file, text).unwrap();
    env.mlgit_ok(&repo, ["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap()]);
    let (code, report) = drift_report(&env, &repo);
    assert_eq!(code, Some(3), "{report}");
    let f = feature(&report, "model-v2", "monthly_charges");
    assert_eq!(f["status"], "warning", "{f}");
    let alerts = report["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["feature"] == "monthly_charges"
            && a["check"] == "null_rate_points"
            && a["severity"] == "medium"),
        "{alerts:?}"
    );
}

#[test]
fn thousands_of_new_categories_past_the_exact_limit_still_count_as_unseen() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    // 12,600 records, each with a contract value training never had (past the 10,000 exact categories).
    let text = week_2_edited(&prod, 30, |i, f| f[5] = format!("c{i}"));
    let file = env.path("cats.csv");
    fs::write(&file, text).unwrap();
    env.mlgit_ok(&repo, ["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap()]);
    let (code, report) = drift_report(&env, &repo);
    assert_eq!(code, Some(3), "{report}");
    let f = feature(&report, "model-v2", "contract");
    let get = |m: &str| {
        f["effects"].as_array().unwrap().iter().find(|e| e["metric"] == m).unwrap()["value"].as_f64().unwrap()
    };
    assert!((get("unseen") - 1.0).abs() < 1e-12, "{f}");
    assert!(get("js") > 0.8, "{f}");
    assert_eq!(f["status"], "drift", "{f}");
}

fn log_text(env: &TestEnv, repo: &Path, name: &str, text: &str) -> std::process::Output {
    let file = env.path(name);
    fs::write(&file, text).unwrap();
    env.mlgit(repo, ["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap()])
}

fn refused(env: &TestEnv, repo: &Path, before: &str, out: &std::process::Output, words: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "accepted: {}", stdout(out));
    for w in words {
        assert!(stderr(out).contains(w), "{w:?} not in: {}", stderr(out));
    }
    assert_eq!(tip(env, repo), before, "the branch moved");
}

#[test]
fn a_folder_batch_where_one_file_lacks_a_feature_is_refused() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    let before = tip(&env, &repo);
    let d = env.path("mixed");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("a.csv"), week_2_edited(&prod, 1, |_, f| f[0].insert(0, 'A'))).unwrap();
    // b.csv: no monthly_charges column (the 5th).
    let b: String = week_2_edited(&prod, 1, |_, f| f[0].insert(0, 'B'))
        .lines()
        .map(|l| {
            let mut v: Vec<&str> = l.split(',').collect();
            v.remove(4);
            v.join(",") + "\n"
        })
        .collect();
    fs::write(d.join("b.csv"), b).unwrap();
    let out = env.mlgit(&repo, ["monitor", "log", "--env", "prod", "--source", d.to_str().unwrap()]);
    refused(&env, &repo, &before, &out, &["b.csv", "monthly_charges"]);
}

#[test]
fn scores_that_are_not_probabilities_and_booleans_in_numeric_features_are_refused() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    let before = tip(&env, &repo);
    let out = log_text(
        &env,
        &repo,
        "score.csv",
        &week_2_edited(&prod, 1, |i, f| {
            if i == 7 {
                f[8] = "1.5".into()
            }
        }),
    );
    refused(&env, &repo, &before, &out, &["not a probability", "1.5"]);
    let out = log_text(
        &env,
        &repo,
        "nan.csv",
        &week_2_edited(&prod, 1, |i, f| {
            if i == 3 {
                f[8] = "nan".into()
            }
        }),
    );
    refused(&env, &repo, &before, &out, &["not a probability"]);
    let out = log_text(&env, &repo, "bool.csv", &week_2_edited(&prod, 1, |_, f| f[4] = "true".into()));
    refused(&env, &repo, &before, &out, &["monthly_charges", "\"true\""]);
}

#[test]
fn a_header_that_repeats_the_tag_column_is_refused() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    let before = tip(&env, &repo);
    let text: String = week_2_edited(&prod, 1, |_, f| f.push("model-v1".into()))
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { format!("{l},model_tag\n") } else { format!("{l}\n") })
        .collect();
    let text = text.replacen(",model_tag,model-v1\n", ",model_tag\n", 0);
    let out = log_text(&env, &repo, "dup.csv", &text);
    refused(&env, &repo, &before, &out, &["model_tag", "more than once"]);
}

#[test]
fn an_empty_label_and_a_message_that_forges_trailers_are_refused() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    let before = tip(&env, &repo);
    let labels = env.path("labels.csv");
    fs::write(&labels, "request_id,label\nR10001,\nR10002,yes\n").unwrap();
    let out = env.mlgit(&repo, ["monitor", "label", "--env", "prod", "--source", labels.to_str().unwrap()]);
    refused(&env, &repo, &before, &out, &["no label", "line 2"]);
    fs::write(&labels, "request_id,label\nR10001,no\n").unwrap();
    for m in ["", "x\n\nMlgit-Monitoring: alerts"] {
        let out = env.mlgit(
            &repo,
            ["monitor", "label", "--env", "prod", "--source", labels.to_str().unwrap(), "-m", m],
        );
        refused(&env, &repo, &before, &out, &["-m"]);
    }
}

#[test]
fn a_moved_or_deleted_tag_does_not_change_or_stop_the_comparison() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    let (_, first) = drift_report(&env, &repo);
    let v1 = |r: &serde_json::Value| {
        r["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "model-v1").unwrap()["snapshot"].clone()
    };
    // model-v1 re-pointed at model-v2's commit: the batch is still compared with what served it.
    env.git(&repo, ["tag", "-f", "-a", "model-v1", "-m", "moved", "model-v2^{}"]);
    let (code, moved) = drift_report(&env, &repo);
    assert_eq!(code, Some(3), "{moved}");
    assert_eq!(v1(&moved), v1(&first), "{moved}");
    assert!(moved["warnings"].to_string().contains("model-v1"), "{moved}");
    // Deleted: still compared with the pinned snapshot; model-v2 is analysed as before.
    env.git(&repo, ["tag", "-d", "model-v1"]);
    let (code, gone) = drift_report(&env, &repo);
    assert_eq!(code, Some(3), "{gone}");
    assert_eq!(v1(&gone), v1(&first));
}

#[test]
fn drift_with_nothing_to_compare_is_an_empty_report_not_a_failure() {
    let env = TestEnv::new();
    let (repo, _) = demo(&env);
    // monitoring/dev has no batch (the first push of a new project).
    let out = env.mlgit(&repo, ["--json", "monitor", "drift", "--env", "dev", "--commit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["alert"], false);
    assert!(doc["note"].as_str().unwrap().contains("nothing to compare"), "{doc}");
    assert!(env
        .git(&repo, ["ls-tree", "-r", "--name-only", "monitoring/dev"])
        .lines()
        .all(|l| !l.starts_with("alerts/")));
}

#[test]
fn unreported_checks_every_batch_logged_since_the_last_report() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    // The demo's report covers week 2. Two batches are logged before the next CI run: a shifted one,
    // then a quiet copy of week 1. `--last 1` would see only the quiet one.
    let shifted = week_2_edited(&prod, 1, |_, f| f[0].insert(0, 'S'));
    assert!(log_text(&env, &repo, "s.csv", &shifted).status.success());
    let week1 = fs::read_to_string(prod.join("requests-week-1.csv")).unwrap().replace("\nR", "\nQ");
    assert!(log_text(&env, &repo, "q.csv", &week1).status.success());
    let out = env.mlgit(&repo, ["--json", "monitor", "drift", "--env", "prod", "--unreported", "--commit"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Week 1 (the demo compared it without --commit) and the two new ones; not week 2.
    assert_eq!(doc["window"]["batches"].as_array().unwrap().len(), 3, "{doc}");
    // Now every batch has a report: nothing left.
    let out = env.mlgit(&repo, ["--json", "monitor", "drift", "--env", "prod", "--unreported"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["note"].is_string(), "{doc}");
}

#[test]
fn a_hand_made_file_under_batches_neither_stops_monitoring_nor_becomes_the_last_batch() {
    let env = TestEnv::new();
    let (repo, prod) = demo(&env);
    let wt = env.path("mon");
    env.git(&repo, ["worktree", "add", wt.to_str().unwrap(), "monitoring/prod"]);
    // Not a manifest at all, and a forged one with a huge seq.
    fs::write(wt.join("batches/junk.json"), "{not json").unwrap();
    let any = env.git(&repo, ["ls-tree", "--name-only", "monitoring/prod", "batches/"]);
    let first = any.lines().next().unwrap().trim_start_matches("batches/").to_string();
    let mut forged: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(wt.join("batches").join(&first)).unwrap()).unwrap();
    forged["seq"] = serde_json::json!(1_000_000);
    forged["id"] = serde_json::json!("29991231T000000Z-00000000");
    fs::write(wt.join("batches/29991231T000000Z-00000000.json"), forged.to_string()).unwrap();
    env.git(&wt, ["add", "-A"]);
    env.git(&wt, ["commit", "-qm", "hand-made files"]);
    env.git(&repo, ["worktree", "remove", "--force", wt.to_str().unwrap()]);
    let shifted = week_2_edited(&prod, 1, |_, f| f[0].insert(0, 'S'));
    let out = log_text(&env, &repo, "s.csv", &shifted);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, report) = drift_report(&env, &repo);
    let batch: serde_json::Value = serde_json::from_slice(
        &env.mlgit(
            &repo,
            ["--json", "monitor", "log", "--env", "prod", "--source", env.path("s.csv").to_str().unwrap()],
        )
        .stderr,
    )
    .unwrap_or_default();
    let _ = batch;
    let ids = report["window"]["batches"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert!(!ids[0].as_str().unwrap().starts_with("2999"), "{report}");
}
