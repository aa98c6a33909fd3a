//! Tracking data on `main`: the tracking records of snapshots (one file per run under
//! `tracking/runs/`), the generated run list and leaderboard, and the merged MLflow store (`mlruns/`).
//!
//! Layout on main:
//! - `tracking/runs/<tag>.json`: the snapshot's `tracking/run.json`, byte for byte;
//! - `tracking/runs.json`: one summary entry per run, sorted by `created_at` (generated);
//! - `tracking/README.md`: the leaderboard, best first by `tracking.primary_metric` (generated);
//! - `mlruns/`: the MLflow file store merged from every snapshot's `mlruns/`.

pub mod export;
pub mod merge;
pub mod mlflow;
pub mod runs;

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Goal;
use crate::error::{Context, Error, Result};
use crate::repo::tree::{entry_at, list_files};
use crate::snapshot::record::{metric_values, Evaluation};

/// Folder of the per-run tracking files on main.
pub const RUNS_DIR: &str = "tracking/runs";
/// The generated list of runs on main.
pub const RUNS_LIST: &str = "tracking/runs.json";
/// The generated leaderboard on main.
pub const LEADERBOARD: &str = "tracking/README.md";
/// The MLflow file store, in a snapshot and on main.
pub const MLRUNS: &str = "mlruns";
/// The tracking record schema this version reads.
pub const RECORD_SCHEMA: u64 = 1;

/// One run as listed in `tracking/runs.json`: the fields of its tracking record a leaderboard and
/// CI need, plus the snapshot commit (which the record cannot hold: it is inside that commit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub tag: String,
    /// The snapshot commit the tag points at (null when it was not known at merge time).
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub created_at: Option<String>,
    pub duration_s: Option<f64>,
    /// The dev commit the code came from.
    pub code_commit: Option<String>,
    /// The split, clean and raw commits of the training data.
    pub data: BTreeMap<String, String>,
    pub params: Value,
    /// Numeric metrics only (others are left in the record file); non-finite values are the
    /// strings "NaN", "Infinity", "-Infinity", as in the record.
    #[serde(with = "crate::snapshot::record::metric_values")]
    pub metrics: BTreeMap<String, f64>,
    /// Where the full record lives on main.
    pub record: String,
    /// The data the metrics were measured on (None for records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// The params set with `train-tag --set`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, Value>,
}

/// The path of a run's tracking file on main.
pub fn run_file(tag: &str) -> String {
    format!("{RUNS_DIR}/{tag}.json")
}

/// Why a tracking record cannot be merged (the caller names the tag).
pub fn check_record(tag: &str, bytes: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(format!("{tag}: tracking/run.json is not valid JSON ({e})"))
            .with_hint("fix the training so it writes a valid record, and tag a new snapshot")
    })?;
    let Some(obj) = value.as_object() else {
        return Err(Error::invalid(format!("{tag}: tracking/run.json is not a JSON object"))
            .with_hint("tracking records are written by `mlgit train-tag`; tag a new snapshot with it"));
    };
    match obj.get("schema").and_then(Value::as_u64) {
        Some(RECORD_SCHEMA) => {}
        other => {
            let found = other.map(|n| n.to_string()).unwrap_or_else(|| "missing".into());
            return Err(Error::invalid(format!(
                "{tag}: tracking/run.json has schema {found}; this mlgit reads schema {RECORD_SCHEMA}"
            ))
            .with_hint("merge it with the mlgit version that wrote it, or upgrade mlgit"));
        }
    }
    match obj.get("tag").and_then(Value::as_str) {
        Some(t) if t == tag => {}
        other => {
            return Err(Error::invalid(format!(
                "{tag}: tracking/run.json names the tag {:?}, not {tag:?}",
                other.unwrap_or("(none)")
            ))
            .with_hint(
                "the record was copied from another snapshot; tag a new snapshot with `mlgit train-tag`",
            ))
        }
    }
    check_record_paths(tag, &value, "")?;
    Ok(value)
}

/// Every `path` field of a record (model files, checkpoints…) must stay inside the snapshot.
fn check_record_paths(tag: &str, value: &Value, at: &str) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{k}");
                if k == "path" {
                    let Some(p) = v.as_str() else { continue };
                    if let Some(why) = unsafe_relative_path(p) {
                        return Err(Error::invalid(format!(
                            "{tag}: tracking/run.json field {here} is {p:?}, which {why}"
                        ))
                        .with_hint("record paths relative to the snapshot's root; refused, nothing merged"));
                    }
                }
                check_record_paths(tag, v, &here)?;
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_record_paths(tag, v, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Why `p` is not a path inside its folder, if it is not.
pub fn unsafe_relative_path(p: &str) -> Option<&'static str> {
    if p.starts_with('/') || p.starts_with('\\') || p.get(1..3) == Some(":\\") || p.get(1..3) == Some(":/") {
        return Some("is absolute");
    }
    if p.split(['/', '\\']).any(|c| c == "..") {
        return Some("leaves its folder ('..')");
    }
    if p.is_empty() || p.contains('\0') {
        return Some("is empty or contains a NUL");
    }
    None
}

/// The summary entry of a record (already checked by [`check_record`]).
pub fn entry_of(tag: &str, record: &Value, commit: Option<String>) -> RunEntry {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let metrics = record
        .get("metrics")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| metric_values::from_json(v).map(|f| (k.clone(), f))).collect())
        .unwrap_or_default();
    let data = record
        .get("data")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default();
    RunEntry {
        tag: tag.to_string(),
        commit,
        branch: s(record.get("branch")),
        created_at: s(record.get("created_at")),
        duration_s: record.get("duration_s").and_then(Value::as_f64),
        code_commit: s(record.get("code").and_then(|c| c.get("commit"))),
        data,
        params: record.get("params").cloned().unwrap_or(Value::Object(Default::default())),
        metrics,
        record: run_file(tag),
        evaluation: record.get("evaluation").and_then(|e| serde_json::from_value(e.clone()).ok()),
        overrides: record
            .get("overrides")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

/// The run files on main's tree: tag → blob id.
pub fn run_files(git: &Repository, tree: Oid) -> Result<BTreeMap<String, Oid>> {
    let Some(dir) = entry_at(git, tree, RUNS_DIR)? else { return Ok(BTreeMap::new()) };
    if dir.mode != git2::FileMode::Tree {
        return Ok(BTreeMap::new());
    }
    Ok(list_files(git, dir.oid)?
        .into_iter()
        .filter_map(|f| f.path.strip_suffix(".json").map(|tag| (tag.to_string(), f.oid)))
        .collect())
}

/// The entries of `tracking/runs.json` in a tree (empty when absent or unreadable: it is generated
/// and regenerated from the run files, so a broken copy is only a lost cache of snapshot commits).
pub fn listed_runs(git: &Repository, tree: Oid) -> Result<Vec<RunEntry>> {
    let Some(e) = entry_at(git, tree, RUNS_LIST)? else { return Ok(Vec::new()) };
    let Ok(blob) = git.find_blob(e.oid) else { return Ok(Vec::new()) };
    Ok(serde_json::from_slice(blob.content()).unwrap_or_default())
}

/// Every run recorded in a main tree, read from the run files (the source of truth), sorted by
/// `created_at` then tag. Snapshot commits come from `known` (tag → commit), else from
/// `tracking/runs.json`, else from the local tag. Run files that do not parse are left out.
pub fn read_runs(git: &Repository, tree: Oid, known: &BTreeMap<String, String>) -> Result<Vec<RunEntry>> {
    let listed: BTreeMap<String, Option<String>> =
        listed_runs(git, tree)?.into_iter().map(|e| (e.tag, e.commit)).collect();
    let mut out = Vec::new();
    for (tag, oid) in run_files(git, tree)? {
        let blob = git.find_blob(oid).context(format!("read {}", run_file(&tag)))?;
        let Ok(record) = serde_json::from_slice::<Value>(blob.content()) else { continue };
        let commit = known.get(&tag).cloned().or_else(|| listed.get(&tag).cloned().flatten()).or_else(|| {
            git.revparse_single(&format!("refs/tags/{tag}"))
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
                .map(|c| c.id().to_string())
        });
        out.push(entry_of(&tag, &record, commit));
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.tag.cmp(&b.tag)));
    Ok(out)
}

/// Order runs best first by `metric`. Runs without it, or with a non-finite value (a NaN loss, an
/// infinite one), come last in time order: they never rank as best, whatever the goal.
pub fn rank(runs: &mut [RunEntry], metric: &str, goal: Goal) {
    runs.sort_by(|a, b| {
        let (x, y) = (
            a.metrics.get(metric).filter(|v| v.is_finite()),
            b.metrics.get(metric).filter(|v| v.is_finite()),
        );
        match (x, y) {
            (Some(x), Some(y)) => {
                let ord = x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
                let ord = if goal == Goal::Max { ord.reverse() } else { ord };
                ord.then_with(|| a.created_at.cmp(&b.created_at)).then_with(|| a.tag.cmp(&b.tag))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.created_at.cmp(&b.created_at).then_with(|| a.tag.cmp(&b.tag)),
        }
    });
}

/// The metric names of a set of runs: `first` (when any run has it), then the others alphabetically.
pub fn metric_names(runs: &[RunEntry], first: &str) -> Vec<String> {
    let mut names: Vec<String> = runs.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
    names.sort();
    names.dedup();
    if let Some(i) = names.iter().position(|n| n == first) {
        let m = names.remove(i);
        names.insert(0, m);
    }
    names
}

/// A metric value for tables: up to 4 decimals, without trailing zeros.
pub fn format_metric(v: f64) -> String {
    if !v.is_finite() {
        return metric_values::to_json(v).as_str().unwrap_or("NaN").to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "0" || s == "-0" {
        format!("{v:.2e}")
    } else {
        s.to_string()
    }
}

fn short(s: &str) -> &str {
    s.get(..7).unwrap_or(s)
}

/// The generated `tracking/README.md`: a Markdown leaderboard, best first.
pub fn leaderboard_markdown(runs: &[RunEntry], metric: &str, goal: Goal) -> String {
    let mut ranked = runs.to_vec();
    rank(&mut ranked, metric, goal);
    let names = metric_names(&ranked, metric);
    let dir = if goal == Goal::Max { "highest" } else { "lowest" };
    let mut s = String::from("# Tracking\n\n");
    s.push_str(&format!(
        "Generated by `mlgit merge-tracking`; do not edit. Every training run (snapshot tag) merged into \
         main, best first by `{metric}` ({dir} first, as set in `mlgit.yaml`). One file per run is in \
         `runs/`, the list of all runs in `runs.json`; `mlgit runs` prints this table and `mlgit show TAG` \
         one run in detail.\n\n"
    ));
    if ranked.is_empty() {
        s.push_str("No runs yet.\n");
        return s;
    }
    let esc = |t: &str| t.replace('|', "\\|");
    s.push_str("| # | tag | date | data (split) |");
    for n in &names {
        s.push_str(&format!(" {} |", esc(n)));
    }
    s.push_str("\n|---|---|---|---|");
    for _ in &names {
        s.push_str("---:|");
    }
    s.push('\n');
    for (i, r) in ranked.iter().enumerate() {
        let date = r.created_at.as_deref().map(|d| d.get(..10).unwrap_or(d)).unwrap_or("-");
        let data = r.data.get("split").map(|c| format!("`{}`", short(c))).unwrap_or_else(|| "-".into());
        s.push_str(&format!("| {} | [{}](runs/{}.json) | {} | {} |", i + 1, esc(&r.tag), r.tag, date, data));
        for n in &names {
            let v = r.metrics.get(n).map(|v| format_metric(*v)).unwrap_or_else(|| "-".into());
            s.push_str(&format!(" {v} |"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(tag: &str, at: &str, acc: Option<f64>) -> RunEntry {
        let mut record = json!({"schema": 1, "tag": tag, "created_at": at, "metrics": {"loss": 1.0}});
        if let Some(a) = acc {
            record["metrics"]["accuracy"] = json!(a);
        }
        entry_of(tag, &record, None)
    }

    #[test]
    fn records_are_checked() {
        let ok = br#"{"schema":1,"tag":"m-v1","model":[{"path":"model/m.json"}]}"#;
        assert!(check_record("m-v1", ok).is_ok());
        let cases: [(&[u8], &str); 7] = [
            (b"{not json", "not valid JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"schema":2,"tag":"m-v1"}"#, "schema 2"),
            (br#"{"tag":"m-v1"}"#, "schema missing"),
            (br#"{"schema":1,"tag":"m-v2"}"#, "names the tag \"m-v2\""),
            (br#"{"schema":1,"tag":"m-v1","model":[{"path":"../../etc/passwd"}]}"#, "leaves its folder"),
            (br#"{"schema":1,"tag":"m-v1","model":[{"path":"/etc/passwd"}]}"#, "is absolute"),
        ];
        for (bytes, want) in cases {
            let err = check_record("m-v1", bytes).unwrap_err();
            assert!(err.to_string().contains(want) && err.to_string().starts_with("m-v1:"), "{err}");
            assert!(err.hint().is_some());
        }
    }

    #[test]
    fn ranking_follows_the_goal_and_puts_missing_metrics_last() {
        let mut runs = vec![
            entry("a", "2026-01-01", Some(0.5)),
            entry("b", "2026-01-02", None),
            entry("c", "2026-01-03", Some(0.9)),
            entry("d", "2026-01-04", Some(f64::NAN)),
            entry("e", "2026-01-05", Some(f64::INFINITY)),
            entry("f", "2026-01-06", Some(f64::NEG_INFINITY)),
        ];
        rank(&mut runs, "accuracy", Goal::Max);
        let tags: Vec<&str> = runs.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["c", "a", "b", "d", "e", "f"]);
        rank(&mut runs, "accuracy", Goal::Min);
        let tags: Vec<&str> = runs.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["a", "c", "b", "d", "e", "f"]);
    }

    #[test]
    fn a_non_finite_metric_survives_runs_json() {
        let record =
            json!({"schema": 1, "tag": "n", "metrics": {"loss": "NaN", "acc": "-Infinity", "x": "big"}});
        let e = entry_of("n", &record, None);
        assert!(
            e.metrics["loss"].is_nan()
                && e.metrics["acc"] == f64::NEG_INFINITY
                && !e.metrics.contains_key("x")
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(r#""loss":"NaN""#), "{text}");
        let back: RunEntry = serde_json::from_str(&text).unwrap();
        assert!(back.metrics["loss"].is_nan());
    }

    #[test]
    fn leaderboard_lists_the_primary_metric_first() {
        let runs = vec![entry("a", "2026-01-01T10:00:00Z", Some(0.5)), entry("c", "2026-01-03", Some(0.9))];
        let md = leaderboard_markdown(&runs, "accuracy", Goal::Max);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows[0], "| # | tag | date | data (split) | accuracy | loss |");
        assert!(rows[1].starts_with("| 1 | [c](runs/c.json) | 2026-01-03 | - | 0.9 | 1 |"), "{}", rows[1]);
        assert!(rows[2].starts_with("| 2 | [a](runs/a.json) | 2026-01-01 |"), "{}", rows[2]);
    }

    #[test]
    fn metric_formatting() {
        assert_eq!(format_metric(0.61), "0.61");
        assert_eq!(format_metric(3.0), "3");
        assert_eq!(format_metric(0.123456), "0.1235");
        assert_eq!(format_metric(0.00001), "1.00e-5");
        assert_eq!(format_metric(f64::NAN), "NaN");
        assert_eq!(format_metric(f64::NEG_INFINITY), "-Infinity");
    }
}
