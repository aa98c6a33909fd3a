//! The tracking record (`tracking/run.json`, DESIGN.md §5): what a snapshot's training run was —
//! command, params, metrics, the code and data it ran on, the model files with their sha256. Written
//! by `train-tag`, read by `show`, `checkout`, `status` and `merge-tracking`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RUN_RECORD;
use crate::error::{Error, Result};
use crate::repo::tree::entry_at;

/// The record's format version; readers refuse versions they do not know.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub tag: String,
    pub branch: String,
    /// RFC 3339, the snapshot commit's time.
    pub created_at: String,
    /// Wall-clock seconds of the training command (0 with `--no-run`).
    pub duration_s: f64,
    /// The training command as run (empty with `--no-run`).
    pub command: Vec<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    /// Numeric metrics only (non-numeric values of the metrics file are left out). Non-finite
    /// values are written as the strings "NaN", "Infinity" and "-Infinity" (see [`metric_values`]).
    #[serde(with = "metric_values")]
    pub metrics: BTreeMap<String, f64>,
    pub code: CodeRef,
    pub data: DataRef,
    pub model: Vec<ModelFile>,
    pub host: String,
    /// The mlgit version that wrote the record.
    pub mlgit: String,
    /// The MLflow run the params/metrics came from, when they came from `mlruns/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<MlflowRef>,
    /// The data the metrics were measured on, so that runs measured on different data are not
    /// ranked against each other (absent in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// The params set on the command line (`train-tag --set KEY=VALUE`), as given: the keys
    /// without the `params.` prefix, nested keys dotted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, serde_json::Value>,
}

/// Where a run's metrics were measured: a split of the training data, its size and its content id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The split evaluated on ("validation", "test", or "train" when the run had nothing else).
    pub split: String,
    /// Records (table rows) or files evaluated on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The git tree id of `data/<split>` on the split commit: equal ids, equal evaluation data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// Metric values in JSON: finite numbers as numbers; NaN and the infinities, which JSON cannot hold
/// as numbers, as the strings "NaN", "Infinity" and "-Infinity" (the tokens Python's `json.dump`
/// writes), so the record stays valid JSON and a failed run's NaN loss is still on record.
pub mod metric_values {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    /// The JSON form of one metric value.
    pub fn to_json(v: f64) -> Value {
        match serde_json::Number::from_f64(v) {
            Some(n) => Value::Number(n),
            None if v.is_nan() => Value::String("NaN".into()),
            None if v > 0.0 => Value::String("Infinity".into()),
            None => Value::String("-Infinity".into()),
        }
    }

    /// A metric value from JSON: a number, or one of the three non-finite strings.
    pub fn from_json(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => non_finite(s),
            _ => None,
        }
    }

    /// The value of "NaN", "Infinity" or "-Infinity" (also "+Infinity", Python's "nan"/"inf").
    pub fn non_finite(s: &str) -> Option<f64> {
        match s {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "+Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter().map(|(k, v)| (k, to_json(*v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, Value>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| match from_json(&v) {
                Some(f) => Ok((k, f)),
                None => Err(D::Error::custom(format!("metric '{k}' is not a number: {v}"))),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    /// The dev commit the code came from (the stable commit itself when it has no dev link).
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    pub split: Option<String>,
    pub clean: Option<String>,
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlflowRef {
    pub experiment_id: String,
    pub run_id: String,
}

impl RunRecord {
    /// The record as committed: pretty JSON with a final newline (diffs well, reads well).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid("cannot serialise the tracking record").with_source(e))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parse a record; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<RunRecord> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("{origin} is not valid JSON")).with_source(e))?;
        let schema = value.get("schema").and_then(|s| s.as_u64());
        if schema != Some(SCHEMA as u64) {
            return Err(Error::invalid(format!(
                "{origin} has schema {schema:?}; this mlgit reads schema {SCHEMA}"
            ))
            .with_hint("use the mlgit version that wrote the record (see its `mlgit` field)"));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("{origin} is not a valid tracking record")).with_source(e))
    }

    /// The record in a commit's tree, if it has one.
    pub fn read(git: &git2::Repository, commit: &git2::Commit<'_>) -> Result<Option<RunRecord>> {
        let Some(entry) = entry_at(git, commit.tree_id(), RUN_RECORD)? else { return Ok(None) };
        let blob = git.find_blob(entry.oid).map_err(|e| Error::git(format!("read {RUN_RECORD}"), e))?;
        let origin = format!("{}:{RUN_RECORD}", &commit.id().to_string()[..7]);
        RunRecord::parse(blob.content(), &origin).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunRecord {
        RunRecord {
            schema: SCHEMA,
            tag: "model-v1".into(),
            branch: "stable/model".into(),
            created_at: "2026-11-23T10:00:00+00:00".into(),
            duration_s: 1.5,
            command: vec!["./train.sh".into()],
            params: BTreeMap::from([("model".into(), serde_json::json!("majority"))]),
            metrics: BTreeMap::from([("accuracy".into(), 0.5)]),
            code: CodeRef { commit: Some("a".repeat(40)) },
            data: DataRef { split: Some("b".repeat(40)), clean: None, raw: None },
            model: vec![ModelFile { path: "model/m.json".into(), sha256: "c".repeat(64), size: 3 }],
            host: "h".into(),
            mlgit: "0.1.0".into(),
            mlflow: None,
            evaluation: None,
            overrides: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trips_and_refuses_unknown_schemas() {
        let r = sample();
        let bytes = r.to_bytes().unwrap();
        assert_eq!(RunRecord::parse(&bytes, "x").unwrap(), r);
        let text = String::from_utf8(bytes).unwrap().replace("\"schema\": 1", "\"schema\": 2");
        assert!(RunRecord::parse(text.as_bytes(), "x").unwrap_err().message().contains("schema"));
    }

    #[test]
    fn non_finite_metrics_are_written_as_strings_and_read_back() {
        let mut r = sample();
        r.metrics = BTreeMap::from([
            ("loss".into(), f64::NAN),
            ("up".into(), f64::INFINITY),
            ("down".into(), f64::NEG_INFINITY),
            ("acc".into(), 0.5),
        ]);
        let bytes = r.to_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["metrics"],
            serde_json::json!({"acc": 0.5, "down": "-Infinity", "loss": "NaN", "up": "Infinity"})
        );
        let back = RunRecord::parse(&bytes, "x").unwrap();
        assert!(back.metrics["loss"].is_nan());
        assert_eq!(back.metrics["up"], f64::INFINITY);
        assert_eq!(back.metrics["down"], f64::NEG_INFINITY);
    }
}
