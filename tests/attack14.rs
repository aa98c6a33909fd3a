//! Adversarial end-to-end tests of issue 14's leaderboard, `diff --metrics`, evaluation records and
//! `train-tag --set`: hostile params, metrics and run records, malformed `--where`, killed runs.
//! Each `#[ignore]`d test reproduces a defect found on main (see /work/notes/attack-findings-14.md);
//! it fails on the code it was written against and passes once the defect is fixed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, TestEnv};
use serde_json::Value;

/// A training that writes the params and metrics it is given in `$P` and `$M`, verbatim.
const TRAIN: &str = r#"set -eu
mkdir -p model
echo m > model/m.txt
printf '%s' "$P" > params.json
printf '%s' "$M" > metrics.json"#;

struct Repo {
    env: TestEnv,
    repo: PathBuf,
    stable: PathBuf,
}

fn customers(n: usize) -> String {
    let mut s = String::from("id,age,label\n");
    for i in 0..n {
        s.push_str(&format!("{i},{},{}\n", 20 + i % 50, if i % 3 == 0 { "churn" } else { "stay" }));
    }
    s
}

/// A repository with raw data committed, cleaned and split by mlgit, the stable branch updated, and
/// a worktree of the stable branch.
fn repo() -> Repo {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.tick();
    let src = env.path("batch");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("customers.csv"), customers(200)).unwrap();
    for args in [
        vec!["commit-data", "--source", src.to_str().unwrap(), "-m", "batch"],
        vec!["clean"],
        vec!["split"],
        vec!["stable", "update"],
    ] {
        env.mlgit_ok(&repo, &args);
        env.tick();
    }
    let stable = env.path("st");
    env.git(&repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    Repo { env, repo, stable }
}

impl Repo {
    /// One `train-tag` run whose training reports `params` and `metrics` (JSON text).
    fn train_with(&self, params: &str, metrics: &str, extra: &[&str]) -> Output {
        let out = self
            .env
            .mlgit_cmd(&self.stable)
            .env("P", params)
            .env("M", metrics)
            .args(["train-tag", "--materialize"])
            .args(extra)
            .args(["--", "sh", "-c", TRAIN])
            .output()
            .expect("run mlgit");
        self.env.tick();
        out
    }

    fn train(&self, params: &str, metrics: &str) {
        let out = self.train_with(params, metrics, &[]);
        assert!(out.status.success(), "train-tag failed: {}\n{}", stdout(&out), stderr(&out));
    }

    fn merge(&self) {
        self.env.mlgit_ok(&self.repo, ["merge-tracking"]);
        self.env.tick();
    }

    fn readme(&self) -> String {
        self.env.git(&self.repo, ["show", "main:tracking/README.md"])
    }

    fn runs(&self, args: &[&str]) -> String {
        let mut all = vec!["runs"];
        all.extend_from_slice(args);
        self.env.mlgit_ok(&self.repo, &all)
    }

    fn record(&self, tag: &str) -> Value {
        let text = self.env.git(&self.repo, ["show", &format!("{tag}:tracking/run.json")]);
        serde_json::from_str(&text).expect("run.json is JSON")
    }
}

/// The lines of the Markdown table that starts at the `| # |` header, up to the first line that is
/// not a table row.
fn table_lines(md: &str) -> Vec<&str> {
    md.lines().skip_while(|l| !l.starts_with("| # |")).take_while(|l| l.starts_with('|')).collect()
}

#[test]
fn readme_table_keeps_one_row_per_run_when_a_param_holds_a_newline() {
    let r = repo();
    r.train(r#"{"note": "line1\nline2"}"#, r#"{"accuracy": 0.8}"#);
    r.train(r#"{"note": "plain"}"#, r#"{"accuracy": 0.9}"#);
    r.merge();
    for (what, md) in
        [("README.md", r.readme()), ("runs --format markdown", r.runs(&["--format", "markdown"]))]
    {
        let rows = table_lines(&md);
        assert_eq!(rows.len(), 4, "{what}: header, rule and one row per run expected:\n{md}");
        assert!(!md.lines().any(|l| l.starts_with("line2")), "{what}: a value spilled out of its row:\n{md}");
    }
}

#[test]
fn readme_table_does_not_render_html_or_links_from_params() {
    let r = repo();
    r.train(
        r#"{"html": "<img src=https://tracker.example/p.png>", "link": "[click](https://evil.example)", "path": "a\\|b"}"#,
        r#"{"accuracy": 0.8}"#,
    );
    r.train(r#"{"html": "-", "link": "-", "path": "-"}"#, r#"{"accuracy": 0.9}"#);
    r.merge();
    for (what, md) in
        [("README.md", r.readme()), ("runs --format markdown", r.runs(&["--format", "markdown"]))]
    {
        let table = table_lines(&md).join("\n");
        assert!(!table.contains("<img"), "{what}: raw HTML from a param reaches the page:\n{table}");
        assert!(!table.contains("[click]("), "{what}: a link from a param is live:\n{table}");
        // `a\\|b`: GFM reads `\\|`'s last backslash as escaping the pipe, so the cell shows `a|b`.
        assert!(!table.contains(r"a\\|b"), "{what}: the backslash in `a\\|b` is not escaped:\n{table}");
    }
}

#[test]
fn eval_on_with_newlines_does_not_inject_markdown_into_the_readme() {
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8, "eval_on": "validation\n\n# Injected heading\n"}"#);
    r.train("{}", r#"{"accuracy": 0.9}"#);
    r.merge();
    let readme = r.readme();
    assert!(!readme.lines().any(|l| l.starts_with("# Injected")), "{readme}");
    assert_eq!(table_lines(&readme).len(), 4, "{readme}");
}

#[test]
fn runs_table_prints_no_terminal_escapes_or_newlines_from_records() {
    let r = repo();
    r.train(r#"{"esc": "\u001b]0;pwned\u0007\u001b[31mRED", "note": "a\nb"}"#, r#"{"accuracy": 0.8}"#);
    r.train(r#"{"esc": "-", "note": "-"}"#, r#"{"accuracy": 0.9}"#);
    r.merge();
    let table = r.runs(&[]);
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "escape sequences printed: {table:?}");
    // Header, two runs, the summary line.
    assert_eq!(table.lines().count(), 4, "one line per run expected: {table:?}");
    let diff = r.env.mlgit_ok(&r.repo, ["diff", "model-v1", "model-v2", "--metrics"]);
    assert!(!diff.contains('\u{1b}'), "escape sequences printed: {diff:?}");
}

#[test]
fn a_run_on_a_split_not_in_the_repository_is_not_ranked_with_validation_runs() {
    let r = repo();
    // Measured on an outside hold-out set of 5000 rows: its accuracy says nothing next to the others.
    r.train("{}", r#"{"accuracy": 0.99, "eval_on": "holdout", "n_eval": 5000}"#);
    r.train("{}", r#"{"accuracy": 0.8}"#);
    r.merge();
    assert_eq!(r.record("model-v1")["evaluation"]["split"], "holdout");
    assert_eq!(r.record("model-v2")["evaluation"]["split"], "validation");
    let doc = r.env.mlgit_json(&r.repo, ["runs", "--json"]);
    let comparable = |tag: &str| {
        doc["runs"].as_array().unwrap().iter().find(|x| x["tag"] == tag).unwrap()["comparable"].clone()
    };
    assert_eq!(comparable("model-v2"), Value::Bool(true), "{doc}");
    assert_eq!(comparable("model-v1"), Value::Bool(false), "holdout ranked with validation: {doc}");
    let diff = r.env.mlgit_ok(&r.repo, ["diff", "model-v1", "model-v2", "--metrics"]);
    assert!(diff.contains("different data"), "{diff}");
}

#[test]
fn n_eval_too_large_for_a_count_is_not_recorded_as_u64_max() {
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8, "n_eval": 1e30}"#);
    let rows = &r.record("model-v1")["evaluation"]["rows"];
    assert_ne!(rows, &Value::from(u64::MAX), "a saturated cast is recorded as the size");
}

#[test]
fn eval_on_with_a_trailing_slash_is_the_validation_split() {
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8, "eval_on": "validation/"}"#);
    r.train("{}", r#"{"accuracy": 0.9, "eval_on": "validation"}"#);
    let (a, b) = (r.record("model-v1"), r.record("model-v2"));
    assert_eq!(a["evaluation"]["data"], b["evaluation"]["data"], "the same data/validation tree");
    r.merge();
    let doc = r.env.mlgit_json(&r.repo, ["runs", "--json"]);
    assert!(doc["runs"].as_array().unwrap().iter().all(|x| x["comparable"] == true), "{doc}");
}

#[test]
fn diff_metrics_shows_a_small_change_as_a_nonzero_delta() {
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8, "loss": 1e-10}"#);
    r.train("{}", r#"{"accuracy": 0.8, "loss": 3e-10}"#);
    let diff = r.env.mlgit_ok(&r.repo, ["diff", "model-v1", "model-v2", "--metrics"]);
    let loss = diff.lines().find(|l| l.starts_with("loss")).expect("a loss row");
    assert!(!loss.trim_end().ends_with("+0"), "a change of +2e-10 shown as +0: {loss}");
}

#[test]
fn diff_metrics_does_not_flag_10_and_10_0_as_a_changed_param() {
    let r = repo();
    r.train(r#"{"epochs": 10, "lr": 0.1}"#, r#"{"accuracy": 0.8}"#);
    r.train(r#"{"epochs": 10.0, "lr": 0.2}"#, r#"{"accuracy": 0.9}"#);
    let doc = r.env.mlgit_json(&r.repo, ["diff", "model-v1", "model-v2", "--metrics", "--json"]);
    let epochs = doc["metrics"]["params"].as_array().unwrap().iter().find(|p| p["key"] == "epochs").unwrap();
    assert_eq!(epochs["changed"], false, "{epochs}");
    r.merge();
    let runs = r.env.mlgit_json(&r.repo, ["runs", "--json"]);
    assert_eq!(runs["params"], serde_json::json!(["lr"]), "{runs}");
}

#[test]
fn where_not_equal_nan_does_not_drop_every_run() {
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8}"#);
    r.train("{}", r#"{"accuracy": 0.9}"#);
    r.merge();
    let out = r.env.mlgit(&r.repo, ["runs", "--where", "accuracy!=nan", "--json"]);
    if out.status.success() {
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(doc["matched"], 2, "both runs have an accuracy other than NaN: {doc}");
    }
}

/// pandas, or None (skip) outside CI; under CI=true a missing pandas fails the test.
fn python_with_pandas() -> Option<()> {
    let ok = Command::new("python3").args(["-c", "import pandas"]).output().is_ok_and(|o| o.status.success());
    if ok {
        return Some(());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("pandas is required when CI=true (pip install pandas)");
    }
    eprintln!("skipping: pandas is not installed");
    None
}

#[test]
fn runs_csv_commit_ids_read_back_as_text_in_pandas() {
    let Some(()) = python_with_pandas() else { return };
    let r = repo();
    r.train("{}", r#"{"accuracy": 0.8}"#);
    r.merge();
    // A run record whose split commit id starts with digits and one 'e', as ~1 in 20 ids do.
    let mut record = r.record("model-v1");
    record["tag"] = "model-v9".into();
    record["data"]["split"] = "45e5218c0ffee00000000000000000000000abcd".into();
    let text = serde_json::to_string_pretty(&record).unwrap();
    // main is checked out in the repository's own worktree.
    std::fs::write(r.repo.join("tracking/runs/model-v9.json"), text).unwrap();
    r.env.git(&r.repo, ["add", "tracking/runs/model-v9.json"]);
    r.env.git(&r.repo, ["commit", "-q", "-m", "a run"]);
    // pandas guesses a column's type from all its values: export that one run.
    let csv = r.runs(&["--format", "csv", "--where", "tag=model-v9"]);
    let file = r.env.path("runs.csv");
    std::fs::write(&file, &csv).unwrap();
    let script = "import pandas, sys\n\
                  df = pandas.read_csv(sys.argv[1])\n\
                  print(repr(df.loc[df['tag'] == 'model-v9', 'data'].iloc[0]))";
    let out = Command::new("python3").args(["-c", script, file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "'45e5218c0ffee00000000000000000000000abcd'",
        "pandas read the commit id as: {}\n{csv}",
        stdout(&out)
    );
}

#[test]
fn a_params_file_left_by_a_killed_run_is_removed_by_the_next_run() {
    let r = repo();
    let pidfile = r.env.path("training.pid");
    let script = format!("echo $$ > {}; exec sleep 60", pidfile.display());
    let mut child = r
        .env
        .mlgit_cmd(&r.stable)
        .args(["train-tag", "--materialize", "--set", "lr=0.5", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mlgit");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(Instant::now() < deadline, "the training never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9 mlgit");
    child.wait().unwrap();
    let training = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    Command::new("kill").args(["-9", &training]).status().unwrap();
    let git_dir = PathBuf::from(r.env.git(&r.stable, ["rev-parse", "--absolute-git-dir"]).trim());
    // One folder per stable branch: the run holding the branch lock sweeps it.
    let params = git_dir.join("mlgit/params/stable-model");
    assert!(params.join("model-v1.json").exists(), "the killed run's file is there");

    r.env.git(&r.stable, ["reset", "-q", "--hard"]);
    r.env.git(&r.stable, ["clean", "-q", "-fdx", "-e", "data"]);
    r.train("{}", r#"{"accuracy": 0.8}"#);
    let left: Vec<String> = std::fs::read_dir(&params)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "params files left in {}: {left:?}", params.display());
}

#[test]
fn the_newest_run_is_found_by_time_not_by_the_text_of_its_date() {
    let r = repo();
    // model-v1 trained at 10:00 UTC on a machine at +02:00 (created_at "…T12:00:00+02:00"), model-v2
    // an hour later on a machine at UTC ("…T11:00:00+00:00").
    let at = r.env.date.get() + 3600;
    for (tag_date, offset) in [(at, "+0200"), (at + 3600, "+0000")] {
        let date = format!("@{tag_date} {offset}");
        let out = r
            .env
            .mlgit_cmd(&r.stable)
            .env("P", "{}")
            .env("M", r#"{"accuracy": 0.8}"#)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["train-tag", "--materialize", "--", "sh", "-c", TRAIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(r.record("model-v1")["created_at"].as_str().unwrap().ends_with("+02:00"));
    r.merge();
    let doc = r.env.mlgit_json(&r.repo, ["runs", "--json"]);
    assert_eq!(doc["reference"]["tag"], "model-v2", "model-v2 is the newest run: {doc}");
}

#[test]
fn nested_and_dotted_params_with_the_same_path_are_not_merged_silently() {
    let r = repo();
    r.train(r#"{"opt": {"lr": 0.1}, "opt.lr": 0.5}"#, r#"{"accuracy": 0.8}"#);
    r.train(r#"{"opt": {"lr": 0.2}, "opt.lr": 0.5}"#, r#"{"accuracy": 0.9}"#);
    r.merge();
    let table = r.runs(&[]);
    // The run's opt.lr differs (0.1 vs 0.2): both values must be visible.
    assert!(table.contains("0.1") && table.contains("0.2"), "{table}");
}

#[test]
fn a_grid_of_set_values_is_told_apart_by_runs_and_diff_metrics() {
    let r = repo();
    // docs/experiments.md's grid: the training reads $MLGIT_PARAMS (e.g. with jq) and reports metrics
    // only; the snapshots record the overrides.
    let script = "mkdir -p model && echo m > model/m.txt && printf '%s' \"$M\" > metrics.json";
    for (lr, acc) in [("0.1", "0.9"), ("0.01", "0.99")] {
        let out = r
            .env
            .mlgit_cmd(&r.stable)
            .env("M", format!(r#"{{"accuracy": {acc}}}"#))
            .args(["train-tag", "--materialize", "--set", &format!("lr={lr}"), "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        r.env.tick();
    }
    assert_eq!(r.record("model-v2")["overrides"]["lr"], 0.01);
    r.merge();
    let table = r.runs(&[]);
    assert!(
        table.lines().next().unwrap().contains("lr"),
        "no lr column: the grid points look alike:\n{table}"
    );
    let diff = r.env.mlgit_ok(&r.repo, ["diff", "model-v1", "model-v2", "--metrics"]);
    assert!(diff.lines().any(|l| l.starts_with("lr")), "diff --metrics shows no lr:\n{diff}");
    let filtered = r.env.mlgit(&r.repo, ["runs", "--where", "lr<0.05", "--json"]);
    assert!(filtered.status.success(), "{}", stderr(&filtered));
}

#[test]
fn runs_evaluated_on_different_sizes_are_not_ranked_together() {
    let r = repo();
    // A quick run evaluated on 9 of the 18 validation rows, then a full one: `mlgit runs --help`
    // says runs on "another validation split or size" are not comparable.
    r.train("{}", r#"{"accuracy": 0.95, "n_validation": 9}"#);
    r.train("{}", r#"{"accuracy": 0.8}"#);
    assert_eq!(r.record("model-v1")["evaluation"]["rows"], 9);
    assert_eq!(r.record("model-v2")["evaluation"]["rows"], 18);
    r.merge();
    let doc = r.env.mlgit_json(&r.repo, ["runs", "--json"]);
    let v1 = doc["runs"].as_array().unwrap().iter().find(|x| x["tag"] == "model-v1").unwrap().clone();
    assert_eq!(v1["comparable"], false, "9 rows ranked with 18 rows: {doc}");
}

#[test]
fn runs_csv_header_names_each_column_once() {
    let r = repo();
    r.train(r#"{"comparable": "yes"}"#, r#"{"accuracy": 0.8}"#);
    r.train(r#"{"comparable": "no"}"#, r#"{"accuracy": 0.9}"#);
    r.merge();
    let csv = r.runs(&["--format", "csv"]);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let mut unique = header.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), header.len(), "duplicate column names: {header:?}");
}

#[test]
fn eval_on_in_the_metrics_file_is_not_reported_as_a_dropped_metric() {
    let r = repo();
    let out = r.train_with("{}", r#"{"accuracy": 0.8, "n_validation": 18, "eval_on": "validation"}"#, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r.record("model-v1")["evaluation"]["split"], "validation");
    let err = stderr(&out);
    assert!(!err.contains("eval_on"), "mlgit reads eval_on, yet warns it dropped it:\n{err}");
}
