//! End to end: the leaderboard (`mlgit runs`, main's `tracking/README.md`) and `mlgit diff --metrics`
//! on a real repository: data committed, cleaned and split by mlgit, three runs of `train-tag` with
//! different params, then more raw data, a new split and a fourth run on the larger validation set.
//! Human output is compared with the expected files in tests/fixtures/leaderboard/ (commit and tree
//! ids and dates replaced by fixed labels); set MLGIT_BLESS=1 to rewrite them after a deliberate
//! change, and review the diff. JSON is parsed into structs that deny unknown fields.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{stderr, TestEnv};
use serde::Deserialize;
use serde_json::Value;

/// The training: writes params.json (model, lr, a fixed seed, and the tag as the run name) and
/// metrics.json (accuracy, loss, and the split it evaluated on), as a real script would.
const TRAIN: &str = r#"mkdir -p model
printf '{"model":"%s","lr":%s,"seed":7,"run_name":"%s"}' "$1" "$2" "$MLGIT_TAG" > params.json
printf '{"accuracy":%s,"loss":%s,"eval_on":"validation"}' "$3" "$4" > metrics.json
echo "$1 $2" > model/model.txt"#;

struct Repo {
    env: TestEnv,
    repo: PathBuf,
    stable: PathBuf,
    /// Full id → a 7-character label, for the expected files.
    labels: Vec<(String, String)>,
}

fn customers(from: usize, n: usize) -> String {
    let mut s = String::from("id,age,label\n");
    for i in from..from + n {
        s.push_str(&format!("{i},{},{}\n", 20 + i % 50, if i % 3 == 0 { "churn" } else { "stay" }));
    }
    s
}

impl Repo {
    fn mlgit(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.env.mlgit_ok(dir, args);
        self.env.tick();
        out
    }

    /// Commit a raw batch with `mlgit commit-data`, clean it, split it and update the stable branch.
    fn new_data(&self, batch: usize, from: usize, n: usize) {
        let src = self.env.path(&format!("batch-{batch}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(format!("customers-{batch}.csv")), customers(from, n)).unwrap();
        self.mlgit(
            &self.repo,
            &["commit-data", "--source", src.to_str().unwrap(), "-m", &format!("batch {batch}")],
        );
        self.mlgit(&self.repo, &["clean"]);
        self.mlgit(&self.repo, &["split"]);
        self.mlgit(&self.repo, &["stable", "update"]);
    }

    fn train(&self, model: &str, lr: &str, accuracy: &str, loss: &str) {
        let args =
            ["train-tag", "--materialize", "--", "sh", "-c", TRAIN, "train", model, lr, accuracy, loss];
        self.mlgit(&self.stable, &args);
    }

    fn rev(&self, rev: &str) -> String {
        self.env.git(&self.repo, ["rev-parse", rev]).trim().to_string()
    }

    fn label(&mut self, rev: &str, label: &str) {
        assert_eq!(label.len(), 7, "labels keep the width of short ids");
        let id = self.rev(rev);
        self.labels.push((id, label.to_string()));
    }

    /// Output with known ids replaced by their labels and dates by a fixed pattern.
    fn normalise(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (id, label) in &self.labels {
            s = s.replace(id.as_str(), label).replace(&id[..7], label);
        }
        // `YYYY-MM-DD hh:mm` (tables) and `YYYY-MM-DD` (anywhere else) keep their width.
        let chars: Vec<char> = s.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let at = |i: usize, pat: &str| {
            pat.chars().enumerate().all(|(k, p)| {
                chars.get(i + k).is_some_and(|c| if p == 'd' { c.is_ascii_digit() } else { *c == p })
            })
        };
        while i < chars.len() {
            if at(i, "dddd-dd-dd dd:dd") {
                out.push_str("YYYY-MM-DD hh:mm");
                i += 16;
            } else if at(i, "dddd-dd-dd") {
                out.push_str("YYYY-MM-DD");
                i += 10;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }

    /// Compare normalised output with tests/fixtures/leaderboard/NAME (MLGIT_BLESS=1 rewrites it).
    fn expect(&self, name: &str, actual: &str) {
        let actual = self.normalise(actual);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leaderboard").join(name);
        if std::env::var("MLGIT_BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(actual, expected, "{name} differs from {} (MLGIT_BLESS=1 rewrites it)", path.display());
    }
}

/// Three runs on the first split (logreg 0.1, forest 0.1, forest 0.05), then a second raw batch,
/// a new split whose validation set is larger, and a fourth run (forest 0.05) on it; all merged
/// into main.
fn four_runs() -> Repo {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.tick();
    let stable = env.path("st");
    let mut r = Repo { env, repo, stable, labels: Vec::new() };
    r.new_data(1, 0, 200);
    r.env.git(&r.repo, ["worktree", "add", "-q", r.stable.to_str().unwrap(), "stable/model"]);
    r.label("split", "split-1");
    r.label("split:data/validation", "valid-1");
    r.train("logreg", "0.1", "0.81", "0.52");
    r.train("forest", "0.1", "0.86", "0.41");
    r.train("forest", "0.05", "0.84", "0.45");
    r.new_data(2, 200, 150);
    r.label("split", "split-2");
    r.label("split:data/validation", "valid-2");
    r.train("forest", "0.05", "0.88", "0.38");
    for n in 1..=4 {
        r.label(&format!("model-v{n}^{{commit}}"), &format!("snap-v{n}"));
    }
    r.mlgit(&r.repo, &["merge-tracking"]);
    r.label("main", "main-v1");
    r
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RunsDoc {
    schema_version: u32,
    command: String,
    rev: String,
    commit: String,
    sort: String,
    goal: String,
    metrics: Vec<String>,
    params: Vec<String>,
    columns: Vec<String>,
    reference: Option<Reference>,
    total: usize,
    matched: usize,
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Reference {
    tag: String,
    evaluation: Option<Evaluation>,
    split_commit: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Evaluation {
    split: String,
    rows: Option<u64>,
    data: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Run {
    rank: usize,
    comparable: bool,
    tag: String,
    commit: Option<String>,
    branch: Option<String>,
    created_at: Option<String>,
    duration_s: Option<f64>,
    code_commit: Option<String>,
    data: BTreeMap<String, String>,
    params: Value,
    metrics: BTreeMap<String, f64>,
    record: String,
    evaluation: Option<Evaluation>,
    #[serde(default)]
    overrides: BTreeMap<String, Value>,
}

#[test]
fn runs_shows_differing_params_and_ranks_runs_on_other_validation_data_apart() {
    let r = four_runs();
    // train-tag recorded what each run was evaluated on: split.yaml's validation records, and the
    // content id of data/validation on the split commit.
    let show = |tag: &str| -> Value {
        serde_json::from_str(&r.env.git(&r.repo, ["show", &format!("{tag}:tracking/run.json")])).unwrap()
    };
    let valid_1 = r.rev("split~1:data/validation");
    let valid_2 = r.rev("split:data/validation");
    assert_ne!(valid_1, valid_2);
    let v1 = show("model-v1");
    assert_eq!(v1["evaluation"], serde_json::json!({"split": "validation", "rows": 18, "data": valid_1}));
    assert_eq!(v1["evaluation"], show("model-v3")["evaluation"]);
    let v4 = show("model-v4")["evaluation"].clone();
    assert_eq!((v4["split"].as_str(), v4["data"].as_str()), (Some("validation"), Some(valid_2.as_str())));
    assert!(v4["rows"].as_u64().unwrap() > 18, "{v4}");

    let table = r.mlgit(&r.repo, &["runs"]);
    r.expect("runs.txt", &table);
    r.expect("runs.md", &r.mlgit(&r.repo, &["runs", "--format", "markdown"]));
    r.expect("runs.csv", &r.mlgit(&r.repo, &["runs", "--format", "csv"]));
    r.expect(
        "runs-where.txt",
        &r.mlgit(
            &r.repo,
            &[
                "runs",
                "--where",
                "params.lr<0.1",
                "--where",
                "model=forest",
                "--columns",
                "tag,lr,eval",
                "--columns",
                "accuracy",
            ],
        ),
    );
    r.expect(
        "runs-sort-loss.txt",
        // A loss ranks lowest first without --goal, though tracking.goal (for accuracy) is max.
        &r.mlgit(&r.repo, &["runs", "--sort", "loss", "-n", "3"]),
    );

    // main's README.md is the same table, with each tag linked to its run file.
    let readme = r.env.git(&r.repo, ["show", "main:tracking/README.md"]);
    r.expect("README.md", &readme);
    let markdown = r.mlgit(&r.repo, &["runs", "--format", "markdown"]);
    let linked = markdown
        .lines()
        .map(|l| match l.split(" | ").nth(1) {
            Some(tag) if tag.starts_with("model-v") => {
                l.replacen(tag, &format!("[{tag}](runs/{tag}.json)"), 1)
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(readme.ends_with(&format!("{linked}\n")), "README:\n{readme}\nruns:\n{linked}");

    // JSON, by --json and by --format json alike, parsed strictly.
    for args in [vec!["--json", "runs"], vec!["runs", "--format", "json"]] {
        let text = r.mlgit(&r.repo, &args);
        let doc: RunsDoc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!((doc.schema_version, doc.command.as_str(), doc.rev.as_str()), (1, "runs", "main"));
        assert_eq!((doc.sort.as_str(), doc.goal.as_str(), doc.total, doc.matched), ("accuracy", "max", 4, 4));
        assert_eq!(doc.metrics, ["accuracy", "loss"]);
        assert_eq!(doc.params, ["lr", "model"], "seed is the same everywhere; run_name is the tag");
        assert_eq!(doc.columns, ["#", "tag", "date", "data", "eval", "lr", "model", "accuracy", "loss"]);
        let reference = doc.reference.unwrap();
        assert_eq!(reference.tag, "model-v4");
        assert_eq!(reference.evaluation.unwrap().data.as_deref(), Some(valid_2.as_str()));
        assert_eq!(reference.split_commit.as_deref(), Some(r.rev("split").as_str()));
        let order: Vec<(&str, usize, bool)> =
            doc.runs.iter().map(|x| (x.tag.as_str(), x.rank, x.comparable)).collect();
        assert_eq!(
            order,
            [("model-v4", 1, true), ("model-v2", 1, false), ("model-v3", 2, false), ("model-v1", 3, false)]
        );
        let v2 = &doc.runs[1];
        assert_eq!(v2.commit.as_deref(), Some(r.rev("model-v2^{commit}").as_str()));
        assert_eq!(v2.metrics["accuracy"], 0.86);
        assert_eq!(
            v2.evaluation,
            Some(Evaluation { split: "validation".into(), rows: Some(18), data: Some(valid_1.clone()) })
        );
        assert!(v2.overrides.is_empty());
    }
}

#[test]
fn runs_refuses_unknown_where_fields_and_columns() {
    let r = four_runs();
    for (args, message, hint) in [
        (vec!["runs", "--where", "f1>0.5"], "--where 'f1>0.5': no run has this metric or param", "params.lr"),
        (vec!["runs", "--where", "lr~0.1"], "--where 'lr~0.1': no comparison operator", "< <= > >= = == !="),
        (vec!["runs", "--where", "model<forest"], "'<' compares numbers, and 'forest' is not one", "= or !="),
        (vec!["runs", "--columns", "tag,f1"], "--columns: no column 'f1'", "the metrics (accuracy, loss)"),
        (vec!["runs", "--columns", ","], "--columns ',' names no column", "--columns tag,lr,accuracy"),
        (vec!["runs", "--where", "accuracy!=nan"], "'nan' is not a finite number", "finite number"),
        (
            vec!["diff", "main", "model-v1", "--metrics"],
            "--metrics: main has no tracking record (tracking/run.json): not a snapshot",
            "compare snapshot tags",
        ),
    ] {
        let out = r.env.mlgit(&r.repo, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(message) && err.contains(hint), "{args:?}: {err}");
    }
    // The reference stays the newest run even when the conditions leave it out.
    let older = r.mlgit(&r.repo, &["runs", "--where", "tag!=model-v4", "--columns", "#,tag"]);
    assert!(older.starts_with("#  tag\n*  model-v2\n*  model-v3\n*  model-v1\n* evaluated on other data than the newest run, model-v4 ("), "{older}");
    let one = r.mlgit(&r.repo, &["runs", "--where", "tag=model-v2"]);
    assert!(
        one.ends_with(
            "1 of 4 runs on main (1 meets the --where conditions), ranked by accuracy (highest first).\n"
        ),
        "{one}"
    );
    let none = r.mlgit(&r.repo, &["runs", "--where", "accuracy>0.99"]);
    assert_eq!(none, "None of the 4 runs on main meets the --where conditions.\n");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DiffDoc {
    schema_version: u32,
    command: String,
    a: Side,
    b: Side,
    path: Option<String>,
    metrics: MetricsDiff,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Side {
    rev: String,
    commit: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsDiff {
    a_tag: Option<String>,
    b_tag: Option<String>,
    params: Vec<Row>,
    metrics: Vec<Row>,
    a_evaluation: Option<Evaluation>,
    b_evaluation: Option<Evaluation>,
    comparable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    key: String,
    a: Option<Value>,
    b: Option<Value>,
    delta: Option<f64>,
    changed: bool,
}

#[test]
fn diff_metrics_prints_only_params_and_metrics_changed_params_first() {
    let r = four_runs();
    r.expect("diff-v1-v2.txt", &r.mlgit(&r.repo, &["diff", "model-v1", "model-v2", "--metrics"]));
    r.expect("diff-v3-v4.txt", &r.mlgit(&r.repo, &["diff", "model-v3", "model-v4", "--metrics"]));
    // --files brings the file comparison back, after the params and metrics.
    let files = r.mlgit(&r.repo, &["diff", "model-v1", "model-v2", "--metrics", "--files"]);
    let metrics_only = r.mlgit(&r.repo, &["diff", "model-v1", "model-v2", "--metrics"]);
    assert!(files.starts_with(&metrics_only), "{files}");
    assert!(files.contains("\nTotal    ") && files.contains("\nM\ttracking/run.json\n"), "{files}");
    let out = r.env.mlgit(&r.repo, ["diff", "model-v1", "model-v2", "--files"]);
    assert_eq!(out.status.code(), Some(2), "--files needs --metrics: {}", stderr(&out));

    let text = r.mlgit(&r.repo, &["--json", "diff", "model-v1", "model-v2", "--metrics"]);
    let doc: DiffDoc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!((doc.schema_version, doc.command.as_str()), (1, "diff"));
    let m = doc.metrics;
    assert_eq!((m.a_tag.as_deref(), m.b_tag.as_deref()), (Some("model-v1"), Some("model-v2")));
    let params: Vec<(&str, bool)> = m.params.iter().map(|p| (p.key.as_str(), p.changed)).collect();
    // `run_name` is each run's own tag: left out, as `mlgit runs` leaves it out.
    assert_eq!(params, [("model", true), ("lr", false), ("seed", false)]);
    assert_eq!(
        (m.params[0].a.as_ref(), m.params[0].b.as_ref()),
        (Some(&Value::from("logreg")), Some(&Value::from("forest")))
    );
    assert_eq!((m.params[0].delta, m.params[2].delta), (None, Some(0.0)));
    let accuracy = &m.metrics[0];
    assert_eq!(accuracy.key, "accuracy");
    assert!((accuracy.delta.unwrap() - 0.05).abs() < 1e-9 && accuracy.changed);
    assert!(m.comparable && m.a_evaluation == m.b_evaluation && m.a_evaluation.is_some());
    let other = r.env.mlgit_json(&r.repo, ["diff", "model-v3", "model-v4", "--metrics"]);
    assert_eq!(other["metrics"]["comparable"], false, "{other}");
}

#[test]
fn train_tag_records_the_split_the_metrics_name_and_the_size_they_report() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let stable = env.path("st");
    let r = Repo { env, repo, stable, labels: Vec::new() };
    r.new_data(1, 0, 200);
    r.env.git(&r.repo, ["worktree", "add", "-q", r.stable.to_str().unwrap(), "stable/model"]);
    let evaluation = |metrics: &str| -> Value {
        let script =
            format!("mkdir -p model && echo m > model/m.txt && printf '%s' '{metrics}' > metrics.json");
        let v = r.env.mlgit_json(&r.stable, ["train-tag", "--materialize", "--", "sh", "-c", &script]);
        r.env.tick();
        v["record"]["evaluation"].clone()
    };
    let test_tree = r.rev("split:data/test");
    assert_eq!(
        evaluation(r#"{"accuracy": 0.5, "eval_on": "test", "n_test": 31}"#),
        serde_json::json!({"split": "test", "rows": 31, "data": test_tree})
    );
    let validation_tree = r.rev("split:data/validation");
    assert_eq!(
        evaluation(r#"{"accuracy": 0.5, "n_eval": 7}"#),
        serde_json::json!({"split": "validation", "rows": 7, "data": validation_tree})
    );
}
