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
    /// Numeric metrics only (non-numeric values of the metrics file are left out).
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

    #[test]
    fn round_trips_and_refuses_unknown_schemas() {
        let r = RunRecord {
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
        };
        let bytes = r.to_bytes().unwrap();
        assert_eq!(RunRecord::parse(&bytes, "x").unwrap(), r);
        let text = String::from_utf8(bytes).unwrap().replace("\"schema\": 1", "\"schema\": 2");
        assert!(RunRecord::parse(text.as_bytes(), "x").unwrap_err().message().contains("schema"));
    }
}
