//! End-to-end tests of monitoring branches (issue 12): `mlgit monitor log`, `label`, `drift`,
//! `calibrate` and `history` through the built binary, on a repository with real snapshots made
//! the way a user makes them: `commit-data` onto raw, `clean`, `split --key id --label label`,
//! `stable update`, `train-tag -- ./train.sh` (the template's trainer).
//!
//! Data is generated here with a seeded generator (splitmix64 + Box–Muller), so every run sees
//! the same bytes and a verdict never depends on luck: a "same distribution" batch is drawn from
//! the training distribution with another seed, a "shifted" batch moves one feature by a stated
//! number of standard deviations and leaves the others alone.
//!
//! What mlgit wrote is read back with the `git` CLI (`ls-tree`, `show`, `log --format=%B`,
//! `lfs ls-files`) wherever it can be, and every refusal is checked to leave `monitoring/prod`
//! (and every other ref) where it was.
//!
//! Contract: notes/issue12-plan.md, "CLI contract". Where it leaves room (the names of the
//! history rows' field, where the labels' accuracy sits), the helpers below accept the plausible
//! spellings and say so.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{sha256_hex, stderr, stdout, TestEnv};
use serde_json::Value;

// ------------------------------------------------------------------------------ data generator

/// splitmix64: small, seeded, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const REGIONS: [&str; 8] = ["north", "south", "east", "west", "centre", "coast", "hills", "lakes"];
/// Rows of the raw table (the training split holds about 80% of them).
const RAW_ROWS: u64 = 2000;
const INCOME_MEAN: f64 = 50_000.0;
const INCOME_SD: f64 = 15_000.0;

/// The features of one customer, drawn from the training distribution (income shifted by
/// `income_shift` standard deviations).
struct Features {
    age: i64,
    income: f64,
    plan: &'static str,
    region: &'static str,
}

fn features(rng: &mut Rng, income_shift: f64) -> Features {
    let age = (40.0 + 10.0 * rng.normal()).round().clamp(18.0, 90.0) as i64;
    let income = INCOME_MEAN + INCOME_SD * (rng.normal() + income_shift);
    let u = rng.unit();
    let plan = if u < 0.5 {
        "basic"
    } else if u < 0.8 {
        "pro"
    } else {
        "team"
    };
    let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
    Features { age, income, plan, region }
}

/// The raw training table: `id,age,income,plan,region,office,label` (label last, as train.sh
/// wants). `office` is `office-<region>`: a group column for `split --group-column office`, which
/// keeps whole regions out of a training split while `region` stays a feature.
fn training_csv(rows: u64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::from("id,age,income,plan,region,office,label\n");
    for id in 0..rows {
        let f = features(&mut rng, 0.0);
        // 1 = the customer churned (about 30%).
        let label = if rng.unit() < 0.3 { "1" } else { "0" };
        let r = f.region;
        s.push_str(&format!("{id},{},{:.2},{},{r},office-{r},{label}\n", f.age, f.income, f.plan));
    }
    s
}

/// How a batch is drawn.
struct BatchSpec<'a> {
    rows: u64,
    seed: u64,
    /// Serving tags, row i gets `tags[i % tags.len()]` (so `["a", "a", "b"]` is 2:1).
    tags: &'a [&'a str],
    /// Write the `model_tag` column (else the batch has none: `--tag` must say it).
    tag_column: bool,
    income_shift: f64,
    /// Request ids are `<prefix>-<row>`.
    id_prefix: &'a str,
    /// Hour of 2026-11-20 (UTC) the batch's timestamps start at.
    hour: u32,
}

impl Default for BatchSpec<'_> {
    fn default() -> Self {
        BatchSpec {
            rows: 600,
            seed: 1001,
            tags: &["model-v1"],
            tag_column: true,
            income_shift: 0.0,
            id_prefix: "r",
            hour: 10,
        }
    }
}

/// A production batch:
/// `request_id,timestamp[,model_tag],id,age,income,plan,region,office,prediction,score`.
/// Returns the CSV text and each row's prediction and score (as written).
fn batch_csv(spec: &BatchSpec<'_>) -> (String, Vec<(&'static str, f64)>) {
    let mut rng = Rng::new(spec.seed);
    let mut s = String::from("request_id,timestamp,");
    if spec.tag_column {
        s.push_str("model_tag,");
    }
    s.push_str("id,age,income,plan,region,office,prediction,score\n");
    let mut predictions = Vec::new();
    for i in 0..spec.rows {
        let f = features(&mut rng, spec.income_shift);
        let id = rng.below(RAW_ROWS);
        let churn = rng.unit() < 0.3;
        let prediction = if churn { "1" } else { "0" };
        // The probability of churn (class 1) the model gave, to 4 decimals, never on a tenth (so
        // that no score sits on the edge of a calibration bin).
        let raw = if churn { 0.5 + 0.5 * rng.unit() } else { 0.5 * rng.unit() };
        let mut score = (raw * 10_000.0).round() / 10_000.0;
        if ((score * 10.0).round() - score * 10.0).abs() < 1e-9 {
            score = (score + 0.0001).min(0.9999);
        }
        let t = i * 3;
        let ts =
            format!("2026-11-20T{:02}:{:02}:{:02}Z", spec.hour + (t / 3600) as u32, (t / 60) % 60, t % 60);
        s.push_str(&format!("{}-{i},{ts},", spec.id_prefix));
        if spec.tag_column {
            s.push_str(spec.tags[i as usize % spec.tags.len()]);
            s.push(',');
        }
        s.push_str(&format!(
            "{id},{},{:.2},{},{r},office-{r},{prediction},{score:.4}\n",
            f.age,
            f.income,
            f.plan,
            r = f.region
        ));
        predictions.push((prediction, score));
    }
    (s, predictions)
}

// ---------------------------------------------------------------------------------- the world

/// A repository with one snapshot (`model-v1`) trained on a real split, and a worktree of
/// `stable/model` to train more.
struct World {
    env: TestEnv,
    repo: PathBuf,
    stable: PathBuf,
    /// Records in the training split of `model-v1`'s split commit (from `split --json`).
    train_rows: u64,
    split: String,
    n: Cell<u32>,
}

fn world() -> Option<World> {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return None;
    }
    let repo = env.init_repo("r");
    let src = env.path("raw-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("customers.csv"), training_csv(RAW_ROWS, 7)).unwrap();
    let w = World { env, repo, stable: PathBuf::new(), train_rows: 0, split: String::new(), n: Cell::new(0) };
    w.json(&["commit-data", "--source", src.to_str().unwrap(), "-m", "Customers"]);
    w.json(&["clean"]);
    let split = w.json(&["split", "--key", "id", "--label", "label"]);
    let train_rows =
        split["records"]["train"].as_u64().unwrap_or_else(|| panic!("no records.train: {split}"));
    assert!(train_rows > 1000, "{split}");
    w.env.mlgit_ok(&w.repo, ["stable", "update"]);
    w.env.tick();
    let stable = w.env.path("st");
    w.env.git(&w.repo, ["worktree", "add", "-q", stable.to_str().unwrap(), "stable/model"]);
    let split_commit = w.rev("split");
    let w = World { stable, train_rows, split: split_commit, ..w };
    let v = w.env.mlgit_json(&w.stable, ["train-tag", "--", "./train.sh"]);
    w.env.tick();
    assert_eq!(v["tag"], "model-v1", "{v}");
    assert_eq!(v["record"]["data"]["split"], w.split.as_str(), "{v}");
    Some(w)
}

impl World {
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.n.get() + 1;
        self.n.set(n);
        self.env.path(&format!("{what}-{n}"))
    }

    fn rev(&self, rev: &str) -> String {
        self.env.git(&self.repo, ["rev-parse", rev]).trim().to_string()
    }

    fn tip(&self) -> String {
        self.rev("monitoring/prod")
    }

    /// `mlgit --json ARGS` in the repository, required to succeed.
    fn json(&self, args: &[&str]) -> Value {
        let v = self.env.mlgit_json(&self.repo, args);
        self.env.tick();
        v
    }

    /// Write `text` as `name` in a fresh folder; returns the file's path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let dir = self.fresh("in");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A batch as CSV in a fresh folder.
    fn batch(&self, spec: &BatchSpec<'_>) -> PathBuf {
        self.file("requests.csv", &batch_csv(spec).0)
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.env.mlgit(&self.repo, args);
        self.env.tick();
        out
    }

    /// `monitor log --env prod --source FILE [extra]` with `--json`, required to succeed.
    fn log(&self, file: &Path, extra: &[&str]) -> Value {
        let mut args = vec!["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.json(&args)
    }

    /// `monitor drift --env prod [extra] --json`: the exit code (0 or 3, anything else fails the
    /// test) and the report.
    fn drift(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["--json", "monitor", "drift", "--env", "prod"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code == 0 || code == 3,
            "drift {extra:?} exited {code}\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        );
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
            panic!("drift --json is not JSON ({e}):\n{}\n{}", stdout(&out), stderr(&out))
        });
        let alert = v["alert"].as_bool().unwrap_or_else(|| panic!("no `alert` bool: {v}"));
        assert_eq!(alert, code == 3, "exit {code} against alert={alert}: {v}");
        (code, v)
    }

    /// Run ARGS expecting a refusal: exit code 1, an `error:` on stderr holding every needle
    /// (case-insensitive), and no ref moved (monitoring/prod in particular). Returns stderr.
    fn refused(&self, args: &[&str], needles: &[&str]) -> String {
        let before = self.env.refs(&self.repo);
        let tip = self.tip();
        let out = self.run(args);
        let (o, e) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{args:?} should be refused\nstdout:\n{o}\nstderr:\n{e}");
        assert!(e.contains("error:"), "{args:?}: no error on stderr:\n{e}");
        let low = e.to_lowercase();
        for n in needles {
            assert!(low.contains(&n.to_lowercase()), "{args:?}: the error does not say {n:?}:\n{e}");
        }
        assert_eq!(self.tip(), tip, "{args:?} moved monitoring/prod although it failed");
        assert_eq!(self.env.refs(&self.repo), before, "{args:?} moved a ref although it failed");
        e
    }

    /// A second snapshot `model-v2` trained on another split of the same clean data (made with
    /// `split ARGS --reshuffle`); returns the new training split's records and split commit.
    fn second_snapshot(&self, split_args: &[&str]) -> (u64, String) {
        let mut args = vec!["split"];
        args.extend_from_slice(split_args);
        args.push("--reshuffle");
        let out = self.json(&args);
        let train = out["records"]["train"].as_u64().unwrap_or_else(|| panic!("{out}"));
        let split = self.rev("split");
        assert_ne!(split, self.split, "the re-split made no new commit: {out}");
        self.env.mlgit_ok(&self.repo, ["stable", "update"]);
        self.env.tick();
        let v = self.env.mlgit_json(&self.stable, ["train-tag", "--", "./train.sh"]);
        self.env.tick();
        assert_eq!(v["tag"], "model-v2", "{v}");
        assert_eq!(v["record"]["data"]["split"], split.as_str(), "{v}");
        (train, split)
    }

    /// `git show REV:PATH` parsed as JSON.
    fn show_json(&self, spec: &str) -> Value {
        let text = self.env.git(&self.repo, ["show", spec]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{spec} is not JSON ({e}): {text}"))
    }

    /// Paths of `rev`'s tree under `dir`.
    fn ls(&self, rev: &str, dir: &str) -> Vec<String> {
        self.env
            .git(&self.repo, ["ls-tree", "-r", "--name-only", rev, "--", dir])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn commit_of(&self, tag: &str) -> String {
        self.rev(&format!("{tag}^{{commit}}"))
    }
}

/// The entry of `tag` in a drift report's `tags`.
fn tag_entry<'a>(report: &'a Value, tag: &str) -> &'a Value {
    report["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags array: {report}"))
        .iter()
        .find(|t| t["tag"] == tag)
        .unwrap_or_else(|| panic!("no entry for {tag}: {report}"))
}

/// The verdict of `feature` in a tag entry.
fn verdict<'a>(entry: &'a Value, feature: &str) -> &'a Value {
    entry["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {entry}"))
        .iter()
        .find(|f| f["feature"] == feature)
        .unwrap_or_else(|| panic!("no verdict for {feature}: {entry}"))
}

/// The measure `metric` of a verdict (in `effects` or `checks`).
fn measure<'a>(verdict: &'a Value, metric: &str) -> &'a Value {
    ["effects", "checks"]
        .iter()
        .filter_map(|k| verdict[*k].as_array())
        .flatten()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} measure: {verdict}"))
}

fn alerts(v: &Value) -> &Vec<Value> {
    v["alerts"].as_array().unwrap_or_else(|| panic!("no alerts array: {v}"))
}

/// Features named by the alerts of a report (or of a tag entry).
fn alerted_features(v: &Value) -> BTreeSet<String> {
    alerts(v).iter().filter_map(|a| a["feature"].as_str().map(str::to_string)).collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A batch id as the contract writes it: `<yyyymmddThhmmssZ>-<8 hex>`.
fn is_batch_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 25
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Every whole number written in `text`.
fn numbers_in(text: &str) -> BTreeSet<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The value of trailer `key` in a commit message.
fn trailer<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}: ");
    msg.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(str::trim)
}

// ------------------------------------------------------------------------------------ log/drift

#[test]
fn log_then_drift_same_distribution_is_quiet_and_a_shift_alerts_on_that_feature() {
    let Some(w) = world() else { return };
    let v1 = w.commit_of("model-v1");
    let before = w.tip();

    // A batch from the training distribution, tags from the model_tag column.
    let (text, _) = batch_csv(&BatchSpec::default());
    let file = w.file("requests.csv", &text);
    let out = w.log(&file, &[]);
    assert_eq!(out["env"], "prod", "{out}");
    assert_eq!(out["branch"], "monitoring/prod", "{out}");
    assert_eq!(u(&out["rows"]), 600, "{out}");
    assert_eq!(out["tags"], serde_json::json!({"model-v1": 600}), "{out}");
    let batch = out["batch"].as_str().unwrap().to_string();
    assert!(is_batch_id(&batch), "batch id {batch:?} is not <yyyymmddThhmmssZ>-<8 hex>");
    let tip = w.tip();
    assert_eq!(out["commit"], tip.as_str(), "{out}");
    assert_ne!(tip, before);
    assert_eq!(w.rev("monitoring/prod^"), before, "an append on top of the branch");
    assert!(out["window"]["start"].as_str().unwrap().starts_with("2026-11-20T10:00:00"), "{out}");
    assert!(out["window"]["end"].as_str().unwrap().starts_with("2026-11-20T10:29:57"), "{out}");

    // The commit: the table (bytes as given, in LFS), the manifest, the trailers.
    let files = w.ls("monitoring/prod", "data/requests");
    assert_eq!(files, [format!("data/requests/{batch}/requests.csv")], "{files:?}");
    let pointer =
        w.env.git(&w.repo, ["show", &format!("monitoring/prod:data/requests/{batch}/requests.csv")]);
    assert!(
        pointer.contains(&format!("oid sha256:{}", sha256_hex(text.as_bytes()))),
        "the table is stored through LFS with the bytes as given:\n{pointer}"
    );
    let lfs = w.env.git(&w.repo, ["lfs", "ls-files", "monitoring/prod"]);
    assert!(lfs.contains(&format!("data/requests/{batch}/requests.csv")), "{lfs}");
    let manifest = w.show_json(&format!("monitoring/prod:batches/{batch}.json"));
    assert_eq!(manifest["schema"], 1, "{manifest}");
    assert_eq!(manifest["id"], batch.as_str(), "{manifest}");
    assert_eq!(manifest["kind"], "requests", "{manifest}");
    assert_eq!(manifest["env"], "prod", "{manifest}");
    assert_eq!(u(&manifest["rows"]), 600, "{manifest}");
    assert_eq!(manifest["tags"], serde_json::json!({"model-v1": 600}), "{manifest}");
    assert_eq!(manifest["tag_source"], "column", "{manifest}");
    assert!(manifest["files"].to_string().contains("requests.csv"), "{manifest}");
    for c in ["request_id", "model_tag", "income", "plan", "prediction"] {
        assert!(manifest["columns"].as_array().unwrap().iter().any(|x| x == c), "{c}: {manifest}");
    }
    let msg = w.env.git(&w.repo, ["log", "-1", "--format=%B", "monitoring/prod"]);
    // Subject `monitor log: <rows> records, <tags>` (the engine words it "… records served by …").
    let subject = msg.lines().next().unwrap_or_default();
    assert!(
        subject.starts_with("monitor log: 600 records") && subject.contains("model-v1"),
        "subject:\n{msg}"
    );
    assert_eq!(trailer(&msg, "Mlgit-Environment"), Some("prod"), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Tags"), Some("model-v1"), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Rows-Per-Tag"), Some("model-v1=600"), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Batch"), Some(batch.as_str()), "{msg}");
    assert!(
        trailer(&msg, "Mlgit-Window-Start").is_some_and(|s| s.starts_with("2026-11-20T10:00:00")),
        "{msg}"
    );
    assert!(trailer(&msg, "Mlgit-Window-End").is_some_and(|s| s.starts_with("2026-11-20T10:29:57")), "{msg}");
    // git's own trailer parser agrees.
    let parsed =
        w.env.git(&w.repo, ["log", "-1", "--format=%(trailers:key=Mlgit-Tags,valueonly)", "monitoring/prod"]);
    assert_eq!(parsed.trim(), "model-v1");

    // Same distribution: no alert, exit 0, every feature judged against model-v1's own split.
    let (code, rep) = w.drift(&[]);
    assert_eq!(code, 0, "a batch from the training distribution alerted: {rep}");
    assert!(alerts(&rep).is_empty(), "{rep}");
    assert_eq!(rep["env"], "prod", "{rep}");
    assert_eq!(rep["window"]["batches"], serde_json::json!([batch]), "{rep}");
    let e = tag_entry(&rep, "model-v1");
    assert_eq!(e["snapshot"], v1.as_str(), "{e}");
    assert_eq!(e["split"], w.split.as_str(), "{e}");
    assert_eq!(e["reference"]["source"], "table", "{e}");
    assert_eq!(e["reference"]["approximate"], false, "{e}");
    assert_eq!(u(&e["reference"]["rows"]), w.train_rows, "{e}");
    assert_eq!(u(&e["rows"]), 600, "{e}");
    assert_eq!(e["status"], "ok", "{e}");
    assert!(e["labels"].is_null(), "no label file yet: {e}");
    for (feat, kind) in
        [("age", "numeric"), ("income", "numeric"), ("plan", "categorical"), ("region", "categorical")]
    {
        let fv = verdict(e, feat);
        assert_eq!(fv["kind"], kind, "{fv}");
        assert_eq!(u(&fv["reference_rows"]), w.train_rows, "{fv}");
        assert_eq!(u(&fv["current_rows"]), 600, "{fv}");
        assert_eq!(fv["status"], "ok", "{fv}");
    }
    let e = tag_entry(&rep, "model-v1");
    let features: Vec<&str> =
        e["features"].as_array().unwrap().iter().filter_map(|f| f["feature"].as_str()).collect();
    for not_a_feature in ["label", "model_tag", "request_id", "timestamp"] {
        assert!(!features.contains(&not_a_feature), "{not_a_feature} is judged as a feature: {features:?}");
    }
    assert_eq!(w.tip(), tip, "drift without --commit commits nothing");

    // A batch whose income moved by one standard deviation: exit 3, income named, nothing else.
    let shifted = w.batch(&BatchSpec { seed: 2002, income_shift: 1.0, hour: 12, ..Default::default() });
    let out2 = w.log(&shifted, &[]);
    let batch2 = out2["batch"].as_str().unwrap().to_string();
    assert_ne!(batch2, batch);
    let (code, rep) = w.drift(&["--last", "1"]);
    assert_eq!(code, 3, "{rep}");
    assert_eq!(rep["window"]["batches"], serde_json::json!([batch2]), "--last 1 is the newest batch: {rep}");
    let e = tag_entry(&rep, "model-v1");
    assert_eq!(e["status"], "drift", "{e}");
    let inc = verdict(e, "income");
    assert_eq!(inc["status"], "drift", "{inc}");
    assert!(measure(inc, "wasserstein")["exceeded"] == true, "{inc}");
    assert!(f(&measure(inc, "ks")["value"]) > 0.25, "a 1 sd shift moves KS by ~0.38: {inc}");
    assert!(inc["p_adjusted"].as_f64().is_some_and(|p| p < 1e-6), "{inc}");
    assert!(alerted_features(&rep).contains("income"), "{rep}");
    for quiet in ["age", "plan", "region"] {
        assert_eq!(verdict(e, quiet)["status"], "ok", "{quiet} did not move: {e}");
        assert!(!alerted_features(&rep).contains(quiet), "{quiet} did not move: {rep}");
    }
    for a in alerts(&rep) {
        assert!(!a["message"].as_str().unwrap_or_default().is_empty(), "an alert without a message: {a}");
        assert!(a["severity"].is_string() && a["check"].is_string(), "{a}");
    }
    // Human output: the feature in a table, exit 3 as well.
    let human = w.run(&["monitor", "drift", "--env", "prod"]);
    assert_eq!(human.status.code(), Some(3), "{}", stderr(&human));
    assert!(stdout(&human).contains("income"), "{}", stdout(&human));

    // Both batches: the window holds both, in the order they were logged.
    let (_, both) = w.drift(&["--last", "2"]);
    assert_eq!(both["window"]["batches"], serde_json::json!([batch, batch2]), "{both}");
    assert_eq!(u(&tag_entry(&both, "model-v1")["rows"]), 1200, "{both}");

    // --commit writes alerts/<time>.json on the branch, with the report as body.
    let before_alert = w.tip();
    let (code, rep) = w.drift(&["--commit"]);
    assert_eq!(code, 3);
    let after = w.tip();
    assert_ne!(after, before_alert, "--commit made no commit");
    assert_eq!(w.rev("monitoring/prod^"), before_alert);
    let new_alerts = w.ls("monitoring/prod", "alerts");
    assert_eq!(new_alerts.len(), 1, "{new_alerts:?}");
    assert!(new_alerts[0].starts_with("alerts/") && new_alerts[0].ends_with(".json"), "{new_alerts:?}");
    let body = w.show_json(&format!("monitoring/prod:{}", new_alerts[0]));
    assert_eq!(body["alert"], true, "{body}");
    assert_eq!(body["schema"], 1, "{body}");
    assert_eq!(body["window"]["batches"], rep["window"]["batches"], "{body}");
    assert!(alerted_features(&body).contains("income"), "{body}");
    let msg = w.env.git(&w.repo, ["log", "-1", "--format=%B", "monitoring/prod"]);
    assert_eq!(trailer(&msg, "Mlgit-Alert"), Some("yes"), "{msg}");
    // The commit changed nothing else on the branch.
    let changed = w.env.git(&w.repo, ["diff", "--name-only", &before_alert, &after]);
    assert_eq!(changed.trim(), new_alerts[0], "{changed}");
}

#[test]
fn a_quiet_drift_commit_says_no_alert() {
    let Some(w) = world() else { return };
    w.log(&w.batch(&BatchSpec::default()), &[]);
    let (code, rep) = w.drift(&["--commit"]);
    assert_eq!(code, 0, "{rep}");
    let files = w.ls("monitoring/prod", "alerts");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(w.show_json(&format!("monitoring/prod:{}", files[0]))["alert"], false);
    let msg = w.env.git(&w.repo, ["log", "-1", "--format=%B", "monitoring/prod"]);
    assert_eq!(trailer(&msg, "Mlgit-Alert"), Some("no"), "{msg}");
}

#[test]
fn batches_keep_the_order_they_were_logged_in_even_within_one_second() {
    let Some(w) = world() else { return };
    // Five small batches logged back to back (several land in the same second): `--last N`, the
    // report's window and history list them in the order they were logged, and `--last 1` is
    // the one logged last.
    let mut ids = Vec::new();
    for k in 0..5u64 {
        let out = w.log(&w.batch(&BatchSpec { rows: 40, seed: 500 + k, ..Default::default() }), &[]);
        ids.push(out["batch"].as_str().unwrap().to_string());
    }
    let manifests = w.ls("monitoring/prod", "batches");
    assert_eq!(manifests.len(), 5, "{manifests:?}");
    let (_, rep) = w.drift(&["--last", "5"]);
    assert_eq!(rep["window"]["batches"], serde_json::json!(ids), "the window is not in logging order");
    let (_, rep) = w.drift(&["--last", "1"]);
    assert_eq!(
        rep["window"]["batches"],
        serde_json::json!([ids[4]]),
        "--last 1 is not the batch logged last"
    );
    let h = w.json(&["monitor", "history", "--env", "prod", "--feature", "income"]);
    let order: Vec<&str> = history_rows(&h).iter().filter_map(|r| r["batch"].as_str()).collect();
    assert_eq!(order, ids, "history is not in logging order");
}

// ------------------------------------------------------------------------------------- two tags

#[test]
fn a_batch_served_by_two_tags_is_compared_with_each_tags_own_training_split() {
    let Some(w) = world() else { return };
    // model-v2 is trained on another split: records grouped by office (one per region), seed 9,
    // so whole regions stay out of its training data (which ones is read back from the split
    // itself below); region is still a feature (the group column is not).
    let (train2, split2) = w.second_snapshot(&["--group-column", "office", "--seed", "9"]);
    let train_file = w.stable.join("data/train/customers.csv");
    let text = std::fs::read_to_string(&train_file).unwrap();
    let regions2: BTreeSet<&str> = text.lines().skip(1).map(|l| l.split(',').nth(4).unwrap()).collect();
    let missing: Vec<&str> = REGIONS.iter().copied().filter(|r| !regions2.contains(r)).collect();
    assert!(
        !missing.is_empty() && !regions2.is_empty(),
        "precondition: model-v2's training split must lack some regions: {regions2:?}"
    );
    assert_eq!(text.lines().skip(1).count() as u64, train2);
    assert_ne!(train2, w.train_rows, "two different training splits");

    // 2:1 between model-v1 and model-v2, every region served to both.
    let file =
        w.batch(&BatchSpec { rows: 900, tags: &["model-v1", "model-v1", "model-v2"], ..Default::default() });
    let out = w.log(&file, &[]);
    assert_eq!(out["tags"], serde_json::json!({"model-v1": 600, "model-v2": 300}), "{out}");
    let msg = w.env.git(&w.repo, ["log", "-1", "--format=%B", "monitoring/prod"]);
    let tags: BTreeSet<&str> =
        trailer(&msg, "Mlgit-Tags").unwrap_or_default().split(',').map(str::trim).collect();
    assert_eq!(tags, BTreeSet::from(["model-v1", "model-v2"]), "{msg}");
    let per: BTreeSet<&str> =
        trailer(&msg, "Mlgit-Rows-Per-Tag").unwrap_or_default().split(',').map(str::trim).collect();
    assert_eq!(per, BTreeSet::from(["model-v1=600", "model-v2=300"]), "{msg}");

    let (code, rep) = w.drift(&[]);
    let e1 = tag_entry(&rep, "model-v1");
    let e2 = tag_entry(&rep, "model-v2");
    assert_eq!(rep["tags"].as_array().unwrap().len(), 2, "{rep}");
    // Each tag: its own snapshot, its own split, its own reference.
    assert_eq!(e1["snapshot"], w.commit_of("model-v1").as_str(), "{e1}");
    assert_eq!(e2["snapshot"], w.commit_of("model-v2").as_str(), "{e2}");
    assert_eq!(e1["split"], w.split.as_str(), "{e1}");
    assert_eq!(e2["split"], split2.as_str(), "{e2}");
    assert_eq!(u(&e1["reference"]["rows"]), w.train_rows, "{e1}");
    assert_eq!(u(&e2["reference"]["rows"]), train2, "{e2}");
    assert_eq!(u(&e1["rows"]), 600, "{e1}");
    assert_eq!(u(&e2["rows"]), 300, "{e2}");
    assert_eq!(u(&verdict(e2, "income")["reference_rows"]), train2, "{e2}");
    // The regions model-v2 never saw are new to it, not to model-v1.
    let unseen1 = f(&measure(verdict(e1, "region"), "unseen")["value"]);
    let unseen2 = f(&measure(verdict(e2, "region"), "unseen")["value"]);
    assert_eq!(unseen1, 0.0, "model-v1 saw every region: {e1}");
    let expected = missing.len() as f64 / REGIONS.len() as f64;
    assert!(
        (unseen2 - expected).abs() < 0.08,
        "unseen share {unseen2} vs about {expected} ({missing:?}): {e2}"
    );
    assert_eq!(verdict(e1, "region")["status"], "ok", "{e1}");
    assert_eq!(verdict(e2, "region")["status"], "drift", "{e2}");
    assert_eq!(code, 3, "{rep}");
    assert!(alerts(e2).iter().any(|a| a["feature"] == "region"), "{e2}");
    assert!(alerts(e1).is_empty(), "model-v1's records are from its own distribution: {e1}");

    // --tag narrows the report to one tag.
    let (code1, only1) = w.drift(&["--tag", "model-v1"]);
    assert_eq!(code1, 0, "{only1}");
    assert_eq!(only1["tags"].as_array().unwrap().len(), 1, "{only1}");
    assert_eq!(only1["tags"][0]["tag"], "model-v1", "{only1}");
}

// ---------------------------------------------------------------------------- --tag and refusals

#[test]
fn tag_flag_sets_the_tag_of_a_batch_without_the_column() {
    let Some(w) = world() else { return };
    let file = w.batch(&BatchSpec { tag_column: false, ..Default::default() });
    let out = w.log(&file, &["--tag", "model-v1", "-m", "Requests of the morning"]);
    assert_eq!(out["tags"], serde_json::json!({"model-v1": 600}), "{out}");
    // -m is the subject; the trailers are still there.
    let msg = w.env.git(&w.repo, ["log", "-1", "--format=%B", "monitoring/prod"]);
    assert!(msg.starts_with("Requests of the morning\n"), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Tags"), Some("model-v1"), "{msg}");
    assert_eq!(trailer(&msg, "Mlgit-Batch"), out["batch"].as_str(), "{msg}");
    let manifest = w.show_json(&format!("monitoring/prod:batches/{}.json", out["batch"].as_str().unwrap()));
    assert_eq!(manifest["tag_source"], "flag", "{manifest}");
    let (code, rep) = w.drift(&[]);
    assert_eq!(code, 0, "{rep}");
    assert_eq!(u(&tag_entry(&rep, "model-v1")["rows"]), 600);

    // The column present and agreeing is fine; disagreeing is refused.
    let agree = w.batch(&BatchSpec { seed: 3, ..Default::default() });
    w.log(&agree, &["--tag", "model-v1"]);
    w.second_snapshot(&["--seed", "9"]);
    let other = w.batch(&BatchSpec { seed: 4, ..Default::default() });
    let src = other.to_str().unwrap();
    w.refused(&["monitor", "log", "--env", "prod", "--source", src, "--tag", "model-v2"], &["model-v1"]);
    // Both tags are snapshots: the same batch with the column alone is accepted.
    w.log(&other, &[]);
}

#[test]
fn bad_batches_are_refused_with_a_clear_message_and_commit_nothing() {
    let Some(w) = world() else { return };
    // Something on the branch first, so "nothing moved" means more than "still at init".
    w.log(&w.batch(&BatchSpec::default()), &[]);
    let log = |file: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["monitor", "log", "--env", "prod", "--source", file.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let refuse = |args: Vec<String>, needles: &[&str]| -> String {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        w.refused(&a, needles)
    };

    // An unknown tag, in the column or by flag.
    let unknown = w.batch(&BatchSpec { tags: &["model-v1", "model-v9"], ..Default::default() });
    refuse(log(&unknown, &[]), &["unknown tag", "model-v9"]);
    let plain = w.batch(&BatchSpec { tag_column: false, ..Default::default() });
    refuse(log(&plain, &["--tag", "model-v9"]), &["unknown tag", "model-v9"]);
    // A git tag that is not a snapshot (no tracking/run.json) is not a model.
    w.env.git(&w.repo, ["tag", "not-a-model", "main"]);
    refuse(log(&plain, &["--tag", "not-a-model"]), &["unknown tag", "not-a-model"]);

    // Records without a tag: the count and the first lines.
    let (text, _) = batch_csv(&BatchSpec::default());
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for line_no in [17usize, 23, 311] {
        // Line numbers count the header as line 1.
        let cells: Vec<&str> = lines[line_no - 1].split(',').collect();
        let mut cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        assert!(cells[2].starts_with("model-"), "the tag column is the third");
        cells[2] = String::new();
        lines[line_no - 1] = cells.join(",");
    }
    let untagged = w.file("requests.csv", &(lines.join("\n") + "\n"));
    let err = refuse(log(&untagged, &[]), &["tag"]);
    let nums = numbers_in(&err);
    for n in [3, 17, 23] {
        assert!(nums.contains(&n), "the error does not give {n} (count 3, lines 17, 23, 311): {err}");
    }

    // A feature of the reference missing from the batch.
    let no_income: String = text
        .lines()
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            c.remove(5);
            c.join(",") + "\n"
        })
        .collect();
    assert!(no_income.starts_with("request_id,timestamp,model_tag,id,age,plan,"), "{}", &no_income[..80]);
    let f = w.file("requests.csv", &no_income);
    refuse(log(&f, &[]), &["income"]);
    // A numeric feature holding words.
    let wordy: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut c: Vec<String> = l.split(',').map(String::from).collect();
            if i > 0 {
                c[5] = format!("about {}", c[5]);
            }
            c.join(",") + "\n"
        })
        .collect();
    let f = w.file("requests.csv", &wordy);
    refuse(log(&f, &[]), &["schema", "income"]);

    // An empty batch: a header and no record.
    let header = text.lines().next().unwrap().to_string() + "\n";
    let f = w.file("requests.csv", &header);
    let err = refuse(log(&f, &[]), &[]);
    let low = err.to_lowercase();
    assert!(low.contains("empty") || low.contains("no record") || low.contains("0 record"), "{err}");
    // A file that is not a table.
    let f = w.file("notes.txt", "not a table\n");
    refuse(log(&f, &[]), &["notes.txt"]);

    // An unknown environment: refused for every command, and no branch made for it.
    let good = w.batch(&BatchSpec { seed: 5, ..Default::default() });
    let gs = good.to_str().unwrap();
    w.refused(&["monitor", "log", "--env", "qa", "--source", gs], &["unknown environment", "qa"]);
    w.refused(&["monitor", "drift", "--env", "qa"], &["unknown environment", "qa"]);
    w.refused(&["monitor", "history", "--env", "qa", "--feature", "income"], &["unknown environment"]);
    w.refused(&["monitor", "calibrate", "--env", "qa"], &["unknown environment"]);
    assert!(!w.env.refs(&w.repo).contains("monitoring/qa"));

    // The same good batch is then accepted: the refusals were about the input.
    w.log(&good, &[]);
}

#[test]
fn a_monitor_yaml_that_does_not_parse_stops_every_command() {
    let Some(w) = world() else { return };
    let file = w.batch(&BatchSpec::default());
    w.log(&file, &[]);
    let fs = file.to_str().unwrap();

    for (broken, what) in [
        ("min_rows: [200\nthresholds: {psi: 0.2\n", "a YAML syntax error"),
        ("min_rows: lots\n", "a number that is a word"),
        ("min_rowz: 200\n", "an unknown key"),
    ] {
        w.env.commit_on(
            &w.repo,
            "monitoring/prod",
            &[("monitor.yaml", broken.as_bytes())],
            "Edit monitor.yaml by hand",
        );
        let tip = w.tip();
        for args in [
            vec!["monitor", "log", "--env", "prod", "--source", fs],
            vec!["monitor", "drift", "--env", "prod"],
            vec!["monitor", "drift", "--env", "prod", "--commit"],
            vec!["monitor", "history", "--env", "prod", "--feature", "income"],
            vec!["monitor", "calibrate", "--env", "prod"],
        ] {
            let err = w.refused(&args, &["monitor.yaml"]);
            assert!(!err.is_empty(), "{what}");
        }
        assert_eq!(w.tip(), tip);
    }
}

#[test]
fn init_writes_monitor_yaml_with_the_defaults() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    for e in ["dev", "staging", "prod"] {
        let text = env.git(&repo, ["show", &format!("monitoring/{e}:monitor.yaml")]);
        let y: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"));
        assert_eq!(y["tag_column"].as_str(), Some("model_tag"), "{text}");
        assert_eq!(y["min_rows"].as_u64(), Some(200), "{text}");
        assert_eq!(y["thresholds"]["alpha"].as_f64(), Some(0.05), "{text}");
    }
}

// --------------------------------------------------------------------------- insufficient data

#[test]
fn fewer_rows_than_min_rows_is_insufficient_data_never_drift() {
    let Some(w) = world() else { return };
    // 60 rows with income moved by one standard deviation: with 600 rows this alerts (see the
    // first test); below min_rows (200) it must not.
    w.log(&w.batch(&BatchSpec { rows: 60, income_shift: 1.0, ..Default::default() }), &[]);
    let (code, rep) = w.drift(&[]);
    let e = tag_entry(&rep, "model-v1");
    assert_eq!(e["status"], "insufficient_data", "{e}");
    assert_eq!(verdict(e, "income")["status"], "insufficient_data", "{e}");
    assert!(!alerts(&rep).iter().any(|a| a["feature"] == "income"), "{rep}");
    assert_eq!(code, 0, "{rep}");
    let human = w.run(&["monitor", "drift", "--env", "prod"]);
    assert_eq!(human.status.code(), Some(0));
    assert!(stdout(&human).to_lowercase().contains("insufficient"), "{}", stdout(&human));
}

// -------------------------------------------------------------------------------------- labels

#[test]
fn labels_joined_by_request_id_give_accuracy_ece_and_brier() {
    let Some(w) = world() else { return };
    let spec = BatchSpec::default();
    let (text, predictions) = batch_csv(&spec);
    w.log(&w.file("requests.csv", &text), &[]);

    // Ground truth for 500 of the 600 requests; the model is right about 4 times in 5. Accuracy,
    // the Brier score and the ECE (10 equal-width bins of the score) are computed here too.
    let mut rng = Rng::new(77);
    let mut labels = String::from("request_id,label\n");
    let (mut right, mut brier_sum) = (0u64, 0.0f64);
    let mut bins = [(0u64, 0.0f64, 0.0f64); 10]; // (rows, sum of scores, sum of labels)
    for (i, (p, score)) in predictions.iter().enumerate().take(500) {
        let truth = if rng.unit() < 0.8 {
            *p
        } else if *p == "1" {
            "0"
        } else {
            "1"
        };
        right += u64::from(truth == *p);
        let y = if truth == "1" { 1.0 } else { 0.0 };
        brier_sum += (score - y) * (score - y);
        let b = &mut bins[((score * 10.0).floor() as usize).min(9)];
        *b = (b.0 + 1, b.1 + score, b.2 + y);
        labels.push_str(&format!("r-{i},{truth}\n"));
    }
    let ece_expected: f64 = bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|(n, s, y)| (*n as f64 / 500.0) * (s / *n as f64 - y / *n as f64).abs())
        .sum();
    let lf = w.file("labels.csv", &labels);
    let before = w.tip();
    let out = w.json(&["monitor", "label", "--env", "prod", "--source", lf.to_str().unwrap()]);
    assert_eq!(u(&out["rows"]), 500, "{out}");
    assert_eq!(out["commit"], w.tip().as_str(), "{out}");
    assert_eq!(w.rev("monitoring/prod^"), before);
    let batch = out["batch"].as_str().unwrap();
    assert_eq!(w.ls("monitoring/prod", "data/labels"), [format!("data/labels/{batch}/labels.csv")]);
    assert_eq!(w.show_json(&format!("monitoring/prod:batches/{batch}.json"))["kind"], "labels");

    let (_, rep) = w.drift(&[]);
    let e = tag_entry(&rep, "model-v1");
    let l = &e["labels"];
    assert_eq!(u(&l["rows"]), 500, "{e}");
    // The contract puts it under `metrics`; the engine has `accuracy` (and primary_metric/value).
    let acc = l["metrics"]["accuracy"]
        .as_f64()
        .or(l["accuracy"].as_f64())
        .unwrap_or_else(|| panic!("no accuracy: {l}"));
    let expected = right as f64 / 500.0;
    assert!((acc - expected).abs() < 1e-9, "accuracy {acc} against {right}/500 = {expected}: {l}");
    let brier =
        l["brier"].as_f64().unwrap_or_else(|| panic!("no Brier score for 0/1 labels with a score: {l}"));
    assert!((brier - brier_sum / 500.0).abs() < 1e-9, "Brier {brier} against {}: {l}", brier_sum / 500.0);
    let ece = l["ece"].as_f64().unwrap_or_else(|| panic!("no ECE for 0/1 labels with a score: {l}"));
    assert!((ece - ece_expected).abs() < 1e-9, "ECE {ece} against {ece_expected} (10 equal-width bins): {l}");
    let human = w.run(&["monitor", "drift", "--env", "prod"]);
    let text = stdout(&human).to_lowercase();
    assert!(text.contains("ece") && text.contains("brier") && text.contains("accuracy"), "{text}");

    // A label file without the label column is refused.
    let bad = w.file("labels.csv", "request_id,truth\nr-1,0\n");
    w.refused(&["monitor", "label", "--env", "prod", "--source", bad.to_str().unwrap()], &["label"]);
}

// ----------------------------------------------------------------------------------- calibrate

#[test]
fn calibrate_writes_per_feature_thresholds_that_drift_then_uses() {
    let Some(w) = world() else { return };
    w.log(&w.batch(&BatchSpec::default()), &[]);
    let before = w.tip();
    // (init writes monitor.yaml: see init_writes_monitor_yaml_with_the_defaults; not needed here.)
    let old = w.env.git_cmd(&w.repo).args(["show", "monitoring/prod:monitor.yaml"]).output().unwrap();
    let old = stdout(&old);
    let out = w.run(&["monitor", "calibrate", "--env", "prod", "--draws", "60", "--seed", "11"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let after = w.tip();
    assert_ne!(after, before, "calibrate made no commit");
    assert_eq!(w.rev("monitoring/prod^"), before);
    let changed = w.env.git(&w.repo, ["diff", "--name-only", &before, &after]);
    assert_eq!(changed.trim(), "monitor.yaml", "{changed}");

    let text = w.env.git(&w.repo, ["show", "monitoring/prod:monitor.yaml"]);
    assert_ne!(text, old);
    let y: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let feats = &y["features"];
    for numeric in ["age", "income"] {
        let t = &feats[numeric];
        let any: Vec<f64> = ["psi", "wasserstein", "ks"].iter().filter_map(|k| t[*k].as_f64()).collect();
        assert!(!any.is_empty() && any.iter().all(|x| *x > 0.0 && x.is_finite()), "{numeric}: {text}");
    }
    for cat in ["plan", "region"] {
        assert!(feats[cat]["js"].as_f64().is_some_and(|x| x > 0.0 && x < 1.0), "{cat}: {text}");
    }
    let cal = &y["calibration"];
    assert!(cal.is_mapping(), "no calibration section: {text}");
    let cal_text = serde_yaml::to_string(cal).unwrap();
    assert!(cal_text.contains("seed: 11") && cal_text.contains("draws: 60"), "{cal_text}");
    assert!(cal_text.contains("batch_rows: 600"), "batch rows = the logged batch's rows: {cal_text}");
    // Settings outside the calibration are kept.
    assert_eq!(y["min_rows"].as_u64(), Some(200), "{text}");

    // drift judges with the calibrated thresholds.
    let (_, rep) = w.drift(&[]);
    let e = tag_entry(&rep, "model-v1");
    if let Some(t) = feats["income"]["wasserstein"].as_f64() {
        let m = measure(verdict(e, "income"), "wasserstein");
        assert!((f(&m["threshold"]) - t).abs() < 1e-12, "{m} against monitor.yaml {t}");
    }
    let t = feats["region"]["js"].as_f64().unwrap();
    let m = measure(verdict(e, "region"), "js");
    assert!((f(&m["threshold"]) - t).abs() < 1e-12, "{m} against monitor.yaml {t}");

    // The same seed gives the same thresholds.
    w.run(&["monitor", "calibrate", "--env", "prod", "--draws", "60", "--seed", "11"]);
    let again: serde_yaml::Value =
        serde_yaml::from_str(&w.env.git(&w.repo, ["show", "monitoring/prod:monitor.yaml"])).unwrap();
    assert_eq!(again["features"], y["features"], "a seeded calibration is reproducible");
}

// ------------------------------------------------------------------------------------- history

/// The rows of `monitor history --json` (under `rows`, `batches` or `history`).
fn history_rows(v: &Value) -> &Vec<Value> {
    ["rows", "batches", "history", "points"]
        .iter()
        .find_map(|k| v[*k].as_array())
        .unwrap_or_else(|| panic!("no rows in history: {v}"))
}

/// The first number under key `key` anywhere in `v`, or the `value` of an object whose
/// `statistic` is `key` (as the engine writes history points).
fn find_number(v: &Value, key: &str) -> Option<f64> {
    match v {
        Value::Object(m) => {
            let named = if m.get("statistic").and_then(Value::as_str) == Some(key) {
                m.get("value").and_then(Value::as_f64)
            } else {
                None
            };
            m.get(key)
                .and_then(Value::as_f64)
                .or(named)
                .or_else(|| m.values().find_map(|x| find_number(x, key)))
        }
        Value::Array(a) => a.iter().find_map(|x| find_number(x, key)),
        _ => None,
    }
}

#[test]
fn history_lists_a_feature_batch_by_batch_and_marks_the_tag_switch() {
    let Some(w) = world() else { return };
    let b1 = w.log(&w.batch(&BatchSpec { seed: 11, hour: 8, ..Default::default() }), &[]);
    let b2 = w.log(&w.batch(&BatchSpec { seed: 12, hour: 9, income_shift: 1.0, ..Default::default() }), &[]);
    w.second_snapshot(&["--seed", "9"]);
    let b3 =
        w.log(&w.batch(&BatchSpec { seed: 13, hour: 10, tags: &["model-v2"], ..Default::default() }), &[]);
    // A label file is not a request batch: no row for it.
    w.json(&[
        "monitor",
        "label",
        "--env",
        "prod",
        "--source",
        w.file("labels.csv", "request_id,label\nr-1,0\n").to_str().unwrap(),
    ]);
    let ids: Vec<&str> = [&b1, &b2, &b3].iter().map(|b| b["batch"].as_str().unwrap()).collect();

    let v = w.json(&["monitor", "history", "--env", "prod", "--feature", "income"]);
    let rows = history_rows(&v);
    assert_eq!(rows.len(), 3, "one row per request batch: {v}");
    let row =
        |id: &str| rows.iter().find(|r| r["batch"] == id).unwrap_or_else(|| panic!("no row for {id}: {v}"));
    let (r1, r2, r3) = (row(ids[0]), row(ids[1]), row(ids[2]));
    assert_eq!(r3["switch"], true, "model-v1 → model-v2 is a switch: {r3}");
    assert_ne!(r2["switch"], true, "{r2}");
    assert_ne!(r1["switch"], true, "{r1}");
    assert!(r3.to_string().contains("model-v2") && r1.to_string().contains("model-v1"), "{v}");
    let s1 = find_number(r1, "wasserstein").unwrap_or_else(|| panic!("no wasserstein in {r1}"));
    let s2 = find_number(r2, "wasserstein").unwrap_or_else(|| panic!("no wasserstein in {r2}"));
    assert!(s2 > 3.0 * s1 && s2 > 0.3, "the shifted batch stands out: {s1} then {s2}");
    // Categorical features give Jensen-Shannon.
    let v = w.json(&["monitor", "history", "--env", "prod", "--feature", "plan"]);
    assert!(find_number(&history_rows(&v)[0], "js").is_some(), "{v}");
    // An unknown feature is refused.
    w.refused(&["monitor", "history", "--env", "prod", "--feature", "nope"], &["nope"]);
    // Human output: a line per batch, the switch visible.
    let text = w.env.mlgit_ok(&w.repo, ["monitor", "history", "--env", "prod", "--feature", "income"]);
    for id in &ids {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
}

// ------------------------------------------------------------------ reference from profile.json

#[test]
fn without_the_split_table_locally_the_reference_is_the_profile_and_says_so() {
    let Some(w) = world() else { return };
    w.log(&w.batch(&BatchSpec::default()), &[]);
    let (_, exact) = w.drift(&[]);
    assert_eq!(tag_entry(&exact, "model-v1")["reference"]["source"], "table", "{exact}");

    // Drop the LFS object of the training table (as in a clone that never pulled it).
    let ls = w.env.git(&w.repo, ["lfs", "ls-files", "--long", &w.split]);
    let oid = ls
        .lines()
        .find(|l| l.ends_with("data/train/customers.csv"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no train table in LFS:\n{ls}"))
        .to_string();
    let object = w.repo.join(".git/lfs/objects").join(&oid[..2]).join(&oid[2..4]).join(&oid);
    assert!(object.is_file(), "{}", object.display());
    std::fs::remove_file(&object).unwrap();

    let (code, rep) = w.drift(&[]);
    let e = tag_entry(&rep, "model-v1");
    assert_eq!(e["reference"]["source"], "profile", "{e}");
    assert_eq!(e["reference"]["approximate"], true, "{e}");
    assert_eq!(u(&e["reference"]["rows"]), w.train_rows, "{e}");
    assert_eq!(verdict(e, "income")["approximate"], true, "{e}");
    assert_eq!(code, 0, "the same batch is still quiet against the profile: {rep}");

    // A shift is still found.
    w.log(&w.batch(&BatchSpec { seed: 4, income_shift: 1.5, ..Default::default() }), &[]);
    let (code, rep) = w.drift(&[]);
    assert_eq!(code, 3, "{rep}");
    assert!(alerted_features(&rep).contains("income"), "{rep}");
    // The object was not fetched back behind our back.
    assert!(!object.exists());
}

// -------------------------------------------------------------------------- lineage and status

#[test]
fn lineage_and_status_know_monitoring_batches() {
    let Some(w) = world() else { return };
    let out = w.log(&w.batch(&BatchSpec::default()), &[]);
    let batch = out["batch"].as_str().unwrap().to_string();
    let short = &w.tip()[..7];

    let text = w.env.mlgit_ok(&w.repo, ["lineage", "monitoring/prod"]);
    let first =
        text.lines().find(|l| l.contains(short)).unwrap_or_else(|| panic!("no line for {short}:\n{text}"));
    assert!(first.contains("monitoring"), "{text}");
    assert!(!first.split_whitespace().any(|x| x == "raw"), "a monitoring commit called raw:\n{text}");
    // The serving snapshot: its tag and its commit (the tag alone is in the log's subject).
    let snap = w.commit_of("model-v1");
    assert!(
        text.contains("model-v1") && text.contains(&snap[..7]),
        "the serving snapshot ({}) is not named:\n{text}",
        &snap[..7]
    );
    let v = w.json(&["lineage", "monitoring/prod"]);
    let doc = v.to_string();
    assert!(doc.contains("monitoring") && doc.contains("model-v1"), "{v}");
    assert!(doc.contains(&w.commit_of("model-v1")), "the snapshot commit is not named: {v}");

    // status: per environment the last batch, its tags and the last alert.
    // (The id of the batch logged last, from its own output: ids of one second do not sort.)
    let second = w.log(&w.batch(&BatchSpec { seed: 8, income_shift: 1.0, ..Default::default() }), &[]);
    let last_id = second["batch"].as_str().unwrap().to_string();
    assert_ne!(last_id, batch);
    let (code, _) = w.drift(&["--commit"]);
    assert_eq!(code, 3);
    let alert_file = w.ls("monitoring/prod", "alerts").pop().unwrap();
    let text = w.env.mlgit_ok(&w.repo, ["status"]);
    assert!(text.contains(&last_id), "status does not name the last batch {last_id}:\n{text}");
    assert!(text.contains("model-v1"), "{text}");
    let alert_time = alert_file.trim_start_matches("alerts/").trim_end_matches(".json");
    assert!(text.contains("alert"), "{text}");
    let v = w.json(&["status"]);
    let doc = v.to_string();
    assert!(doc.contains(&last_id) && doc.contains("model-v1"), "{v}");
    assert!(doc.contains(alert_time) || doc.contains("income"), "the last alert is not in status: {v}");
    // staging has nothing yet, and says so without failing.
    assert!(doc.contains("staging"), "{v}");
}

// ----------------------------------------------------------------------------------- parquet

/// The `python3` that can import pyarrow, as an absolute path. Under CI (`CI=true`) a missing one
/// fails the test; elsewhere the caller skips with a printed reason.
fn python_with_pyarrow() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import pyarrow, pyarrow.parquet, sys; print(sys.executable)"])
        .output()
        .ok();
    match out {
        Some(o) if o.status.success() => Some(stdout(&o).trim().to_string()),
        _ => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("pyarrow is required when CI=true (pip install pyarrow==25.0.1)");
            }
            eprintln!("skipping: pyarrow is not installed (pip install pyarrow==25.0.1)");
            None
        }
    }
}

#[test]
fn a_parquet_batch_is_logged_and_judged_like_its_csv() {
    let Some(py) = python_with_pyarrow() else { return };
    let Some(w) = world() else { return };
    let csv = w.batch(&BatchSpec { income_shift: 1.0, ..Default::default() });
    let pq = csv.with_file_name("requests.parquet");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monitor/gen_parquet.py");
    let out = Command::new(&py).arg(&script).arg(&csv).arg(&pq).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(&csv).unwrap();

    let logged = w.log(&pq, &[]);
    assert_eq!(logged["tags"], serde_json::json!({"model-v1": 600}), "{logged}");
    let batch = logged["batch"].as_str().unwrap();
    assert_eq!(w.ls("monitoring/prod", "data/requests"), [format!("data/requests/{batch}/requests.parquet")]);
    let (code, rep) = w.drift(&[]);
    assert_eq!(code, 3, "{rep}");
    assert!(alerted_features(&rep).contains("income"), "{rep}");
    assert_eq!(verdict(tag_entry(&rep, "model-v1"), "income")["kind"], "numeric");
}
