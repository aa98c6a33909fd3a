//! Params and metrics of the run: from the configured files, else from the MLflow run that carries
//! the snapshot's tag.

use std::collections::BTreeMap;
use std::path::Path;

use super::outputs::{output_bytes, Output};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::snapshot::mlflow_sqlite::{self, SqliteRun};
use crate::snapshot::record::{metric_values, MlflowRef};

pub(super) struct Tracked {
    pub(super) params: BTreeMap<String, serde_json::Value>,
    pub(super) metrics: BTreeMap<String, f64>,
    pub(super) mlflow: Option<MlflowRef>,
    /// The run, when it came from an SQLite store: the snapshot commits it as file-store files.
    pub(super) sqlite_run: Option<SqliteRun>,
}

/// Where params and metrics are looked for besides the configured files.
pub(super) struct Sources<'a> {
    pub(super) workdir: &'a Path,
    /// The tracking URI the training ran with (`MLFLOW_TRACKING_URI`), None: MLflow's default.
    pub(super) mlflow_tracking_uri: Option<&'a str>,
}

/// Params and metrics from the configured files (as collected among the outputs), else from the
/// MLflow run that carries the tag: in `mlruns/` (a file store among the outputs), else in the
/// SQLite store MLflow 3 uses by default.
pub(super) fn read_tracking(
    repo: &Repo,
    sources: &Sources<'_>,
    tag: &str,
    outputs: &[Output],
    notes: &mut Vec<String>,
) -> Result<Tracked> {
    let t = &repo.config().tracking;
    let output = |file: &str| outputs.iter().find(|o| o.path == file);
    let mut params = BTreeMap::new();
    let mut metrics = None;
    let mut sqlite_run = None;
    let mut mlflow_run = if outputs.iter().any(|o| o.path.starts_with("mlruns/")) {
        crate::snapshot::mlruns::find_run(&sources.workdir.join("mlruns"), tag)?
    } else {
        None
    };
    if mlflow_run.is_none() {
        if let Some(db) = mlflow_sqlite::store_path(sources.workdir, sources.mlflow_tracking_uri) {
            if let Some(run) = mlflow_sqlite::find_run(&db, tag)? {
                notes.push(format!(
                    "params and metrics from the MLflow run {} in {}; the snapshot holds it as mlruns/{}/{}/",
                    run.run_id,
                    db.display(),
                    run.experiment_id,
                    run.run_id
                ));
                mlflow_run = Some(run.as_mlflow_run());
                sqlite_run = Some(run);
            }
        }
    }
    let fix = "fix what the training writes there; nothing was committed";
    for file in &t.params_files {
        let Some(o) = output(file) else { continue };
        let bytes = output_bytes(repo, o)?;
        let value: serde_json::Value = if file.ends_with(".yaml") || file.ends_with(".yml") {
            serde_yaml::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!("the params file {file} is not valid YAML"))
                    .with_source(e)
                    .with_hint(fix)
            })?
        } else {
            parse_json_with_non_finite(&bytes).map_err(|e| {
                Error::invalid(format!("the params file {file} is not valid JSON"))
                    .with_source(e)
                    .with_hint(fix)
            })?
        };
        match value {
            serde_json::Value::Object(map) => params.extend(map),
            serde_json::Value::Null => {}
            _ => {
                return Err(Error::invalid(format!(
                    "the params file {file} must hold an object (name: value)"
                ))
                .with_hint(fix))
            }
        }
    }
    if let Some(o) = output(&t.metrics_file) {
        let bytes = output_bytes(repo, o)?;
        let value = parse_json_with_non_finite(&bytes).map_err(|e| {
            Error::invalid(format!("the metrics file {} is not valid JSON", t.metrics_file))
                .with_source(e)
                .with_hint("the training must write a JSON object of metric names to numbers, e.g. {\"accuracy\": 0.91}; nothing was committed")
        })?;
        metrics = Some(numeric_metrics(&value, &t.metrics_file, &t.primary_metric, notes)?);
    }
    let mut mlflow = None;
    if let Some(run) = mlflow_run {
        if metrics.is_none() {
            metrics = Some(run.metrics.clone());
        }
        if params.is_empty() {
            params =
                run.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        }
        mlflow = Some(MlflowRef { experiment_id: run.experiment_id, run_id: run.run_id });
    }
    let metrics = metrics.unwrap_or_default();
    let non_finite: Vec<&str> =
        metrics.iter().filter(|(_, v)| !v.is_finite()).map(|(k, _)| k.as_str()).collect();
    if !non_finite.is_empty() {
        notes.push(format!(
            "recorded as non-finite (\"NaN\", \"Infinity\" or \"-Infinity\" in the record; never ranked best): {}",
            non_finite.join(", ")
        ));
    }
    if metrics.is_empty() {
        notes.push(format!(
            "no metrics: neither {} nor an MLflow run tagged {tag} (in mlruns/ or the SQLite store) was found",
            t.metrics_file
        ));
    } else if !metrics.contains_key(&t.primary_metric) {
        notes.push(format!("the primary metric '{}' is not among the metrics", t.primary_metric));
    }
    Ok(Tracked { params, metrics, mlflow, sqlite_run })
}

/// Keep the numeric metrics; skip other values with a note, except the primary metric, which must
/// be a number (leaderboards sort on it). A file with values but no number at all is refused.
pub fn numeric_metrics(
    value: &serde_json::Value,
    origin: &str,
    primary: &str,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, f64>> {
    let hint = "the training must write a JSON object of metric names to numbers, e.g. {\"accuracy\": 0.91}; nothing was committed";
    let Some(map) = value.as_object() else {
        return Err(
            Error::invalid(format!("the metrics file {origin} must hold a JSON object")).with_hint(hint)
        );
    };
    let mut out = BTreeMap::new();
    let mut skipped = Vec::new();
    for (k, v) in map {
        match metric_values::from_json(v) {
            Some(x) => {
                out.insert(k.clone(), x);
            }
            None if k == primary => {
                return Err(Error::invalid(format!(
                    "the primary metric '{k}' in {origin} is not a number: {v}"
                ))
                .with_hint(hint))
            }
            // The evaluation split's name is read by `evaluation`, not dropped.
            None if super::evaluation::SPLIT_KEYS.contains(&k.as_str()) => {}
            None => skipped.push(k.clone()),
        }
    }
    if out.is_empty() && !skipped.is_empty() {
        return Err(Error::invalid(format!(
            "the metrics file {origin} holds no numeric metric ({} are not numbers)",
            skipped.join(", ")
        ))
        .with_hint(hint));
    }
    if !skipped.is_empty() {
        notes.push(format!("{origin}: kept out of the metrics (not numbers): {}", skipped.join(", ")));
    }
    Ok(out)
}

/// Parse JSON that may hold the bare tokens `NaN`, `Infinity` and `-Infinity` as values (Python's
/// `json.dump` writes them by default): outside strings they become the strings "NaN", "Infinity"
/// and "-Infinity", which [`metric_values::from_json`] reads as the non-finite numbers.
pub fn parse_json_with_non_finite(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(t) = TOKENS.iter().find(|t| bytes[i..].starts_with(t)) {
            // Only a whole token: `NaNx` stays invalid JSON.
            let end = i + t.len();
            if !bytes.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                out.push(b'"');
                out.extend_from_slice(t);
                out.push(b'"');
                i = end;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    serde_json::from_slice(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kept_and_other_values_skipped_with_a_note() {
        let mut notes = Vec::new();
        let v = serde_json::json!({"accuracy": 0.61, "n_train": 250, "model": "rf", "eval_on": "validation"});
        let m = numeric_metrics(&v, "metrics.json", "accuracy", &mut notes).unwrap();
        assert_eq!(m, BTreeMap::from([("accuracy".to_string(), 0.61), ("n_train".to_string(), 250.0)]));
        // eval_on names the evaluation split (read into the record's evaluation): not "skipped".
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("model") && !notes[0].contains("eval_on"), "{notes:?}");
    }

    #[test]
    fn python_non_finite_tokens_are_read_as_non_finite_metrics() {
        let text = br#"{"accuracy": NaN, "loss": Infinity, "gap": -Infinity, "note": "NaN stays a string: \"Infinity\"", "n": 3}"#;
        let v = parse_json_with_non_finite(text).unwrap();
        assert_eq!(v["note"], "NaN stays a string: \"Infinity\"");
        let mut notes = Vec::new();
        let m = numeric_metrics(&v, "metrics.json", "accuracy", &mut notes).unwrap();
        assert!(m["accuracy"].is_nan());
        assert_eq!((m["loss"], m["gap"], m["n"]), (f64::INFINITY, f64::NEG_INFINITY, 3.0));
        assert!(parse_json_with_non_finite(b"{\"a\": NaNx}").is_err());
        assert!(parse_json_with_non_finite(b"{oops").is_err());
    }

    #[test]
    fn a_primary_metric_that_is_not_a_number_or_no_number_at_all_is_refused() {
        let mut notes = Vec::new();
        let bad = serde_json::json!({"accuracy": "high", "loss": 0.2});
        let e = numeric_metrics(&bad, "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("primary metric 'accuracy'"), "{}", e.message());
        let none = serde_json::json!({"loss": "low"});
        let e = numeric_metrics(&none, "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("no numeric metric"), "{}", e.message());
        let e = numeric_metrics(&serde_json::json!([1]), "metrics.json", "accuracy", &mut notes).unwrap_err();
        assert!(e.message().contains("JSON object"), "{}", e.message());
        assert!(numeric_metrics(&serde_json::json!({}), "m", "accuracy", &mut notes).unwrap().is_empty());
    }
}
