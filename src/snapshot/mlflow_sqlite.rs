//! Reading MLflow's default tracking store (`sqlite:///mlflow.db` since MLflow 3) to find the run a
//! training logged under the snapshot's tag, and writing that run out as MLflow's file store lays
//! it out (`mlruns/<experiment>/<run>/…`), so a snapshot keeps its run in the one layout that
//! `merge-tracking` merges into main, whatever store the training used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_yaml::{Mapping, Value};

use super::mlruns::MlflowRun;
use crate::error::{Error, Result};

/// The store MLflow 3 uses when no tracking URI is set, relative to the training's folder.
pub const DEFAULT_DB: &str = "mlflow.db";

/// Where a snapshot keeps MLflow runs: a file store at the root of its tree.
pub const FILE_STORE: &str = "mlruns";

/// One point of a metric, as MLflow keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// A run read from an SQLite store, with what its file-store form needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SqliteRun {
    pub experiment_id: String,
    pub experiment_name: String,
    pub experiment_artifact_location: String,
    pub experiment_lifecycle_stage: String,
    pub experiment_created: Option<i64>,
    pub experiment_updated: Option<i64>,
    pub run_id: String,
    pub run_name: String,
    pub source_type: String,
    pub source_name: String,
    pub entry_point_name: String,
    pub source_version: String,
    pub user_id: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub artifact_uri: String,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub metrics: Vec<MetricPoint>,
}

/// The SQLite file a tracking URI names: `sqlite:///rel.db` (relative to `workdir`) or
/// `sqlite:////abs.db`; no URI means MLflow's default `mlflow.db`. Other stores: None.
pub fn store_path(workdir: &Path, tracking_uri: Option<&str>) -> Option<PathBuf> {
    match tracking_uri.map(str::trim).filter(|u| !u.is_empty()) {
        None => Some(workdir.join(DEFAULT_DB)),
        Some(uri) => {
            let rest = uri.strip_prefix("sqlite:///")?;
            let path = rest.split('?').next().unwrap_or(rest);
            Some(if path.starts_with('/') { PathBuf::from(path) } else { workdir.join(path) })
        }
    }
}

/// The active run whose tags or params hold the value `tag` (as [`super::mlruns::find_run`] does
/// for a file store); the earliest such run wins. None when there is no store or no such run.
pub fn find_run(db: &Path, tag: &str) -> Result<Option<SqliteRun>> {
    // Only a regular file: opening a FIFO would block, and a link could lead anywhere.
    match std::fs::symlink_metadata(db) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return Ok(None),
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).map_err(|e| sql_error(db, "open", e))?;
    read_run(&conn, tag).map_err(|e| sql_error(db, "read", e))
}

fn sql_error(db: &Path, what: &str, e: rusqlite::Error) -> Error {
    Error::invalid(format!("cannot {what} the MLflow store {}", db.display())).with_source(e).with_hint(
        "it must be an MLflow tracking database (sqlite:///mlflow.db); check it with `mlflow runs list`, \
         or move it away if it is not one",
    )
}

fn read_run(conn: &Connection, tag: &str) -> rusqlite::Result<Option<SqliteRun>> {
    let found = conn
        .query_row(
            "SELECT r.run_uuid, r.name, r.source_type, r.source_name, r.entry_point_name, r.source_version, \
                    r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri, \
                    e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, \
                    e.last_update_time \
             FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id \
             WHERE r.lifecycle_stage = 'active' AND r.run_uuid IN \
                   (SELECT run_uuid FROM tags WHERE trim(value) = ?1 \
                    UNION SELECT run_uuid FROM params WHERE trim(value) = ?1) \
             ORDER BY r.start_time, r.run_uuid LIMIT 1",
            [tag],
            |row| {
                let text = |i: usize| -> rusqlite::Result<String> {
                    Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
                };
                Ok(SqliteRun {
                    run_id: text(0)?,
                    run_name: text(1)?,
                    source_type: text(2)?,
                    source_name: text(3)?,
                    entry_point_name: text(4)?,
                    source_version: text(5)?,
                    user_id: text(6)?,
                    status: text(7)?,
                    start_time: row.get(8)?,
                    end_time: row.get(9)?,
                    lifecycle_stage: text(10)?,
                    artifact_uri: text(11)?,
                    experiment_id: row.get::<_, i64>(12)?.to_string(),
                    experiment_name: text(13)?,
                    experiment_artifact_location: text(14)?,
                    experiment_lifecycle_stage: text(15)?,
                    experiment_created: row.get(16)?,
                    experiment_updated: row.get(17)?,
                    params: BTreeMap::new(),
                    tags: BTreeMap::new(),
                    metrics: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut run) = found else { return Ok(None) };
    for (table, into) in [("params", &mut run.params), ("tags", &mut run.tags)] {
        let mut stmt = conn.prepare(&format!("SELECT key, value FROM {table} WHERE run_uuid = ?1"))?;
        let rows = stmt.query_map([&run.run_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))
        })?;
        for row in rows {
            let (k, v) = row?;
            into.insert(k, v);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?1 \
         ORDER BY key, timestamp, step, value",
    )?;
    let rows = stmt.query_map([&run.run_id], |r| {
        let is_nan: Option<bool> = r.get(4)?;
        let value: f64 = r.get(1)?;
        Ok(MetricPoint {
            key: r.get(0)?,
            value: stored_value(value, is_nan.unwrap_or(false)),
            timestamp: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            step: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
        })
    })?;
    for row in rows {
        run.metrics.push(row?);
    }
    Ok(Some(run))
}

/// MLflow's SQL store keeps NaN as `is_nan` with value 0, and clamps ±Infinity to ±f64::MAX
/// (`sanitize_metric_value`): give back what the training logged.
fn stored_value(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else if value == f64::MAX {
        f64::INFINITY
    } else if value == -f64::MAX {
        f64::NEG_INFINITY
    } else {
        value
    }
}

/// MLflow's `RunStatus` numbers, as the file store writes them.
fn status_number(status: &str) -> i64 {
    match status {
        "RUNNING" => 1,
        "SCHEDULED" => 2,
        "FINISHED" => 3,
        "FAILED" => 4,
        "KILLED" => 5,
        _ => 3,
    }
}

/// MLflow's `SourceType` numbers.
fn source_type_number(source: &str) -> i64 {
    match source {
        "NOTEBOOK" => 1,
        "JOB" => 2,
        "PROJECT" => 3,
        "LOCAL" => 4,
        _ => 1000,
    }
}

/// A plain local path as a `file://` URI (the file store's form); URIs are kept.
fn as_uri(location: &str) -> String {
    if location.starts_with('/') {
        format!("file://{location}")
    } else {
        location.to_string()
    }
}

fn yaml(pairs: Vec<(&str, Value)>) -> Vec<u8> {
    let map: Mapping = pairs.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
    serde_yaml::to_string(&map).unwrap_or_default().into_bytes()
}

fn opt(v: Option<i64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

impl SqliteRun {
    /// Params and the last value of each metric (highest step, then latest time), as a file-store
    /// run gives them.
    pub fn as_mlflow_run(&self) -> MlflowRun {
        let mut last: BTreeMap<&str, &MetricPoint> = BTreeMap::new();
        for p in &self.metrics {
            let newer =
                last.get(p.key.as_str()).map_or(true, |q| (p.step, p.timestamp) >= (q.step, q.timestamp));
            if newer {
                last.insert(&p.key, p);
            }
        }
        MlflowRun {
            experiment_id: self.experiment_id.clone(),
            run_id: self.run_id.clone(),
            params: self.params.clone(),
            metrics: last.into_iter().map(|(k, p)| (k.to_string(), p.value)).collect(),
        }
    }

    /// The run as files of an MLflow file store, paths relative to the store's root (`mlruns/`):
    /// the experiment's `meta.yaml`, the run's `meta.yaml`, `params/`, `tags/` and `metrics/`
    /// (`<timestamp> <value> <step>` per point). Keys that are not safe relative paths are left out.
    pub fn file_layout(&self) -> BTreeMap<String, Vec<u8>> {
        let exp = &self.experiment_id;
        let run = &self.run_id;
        let mut files = BTreeMap::new();
        files.insert(
            format!("{exp}/meta.yaml"),
            yaml(vec![
                ("artifact_location", Value::from(as_uri(&self.experiment_artifact_location))),
                ("creation_time", opt(self.experiment_created)),
                ("experiment_id", Value::from(exp.as_str())),
                ("last_update_time", opt(self.experiment_updated)),
                ("lifecycle_stage", Value::from(self.experiment_lifecycle_stage.as_str())),
                ("name", Value::from(self.experiment_name.as_str())),
            ]),
        );
        files.insert(
            format!("{exp}/{run}/meta.yaml"),
            yaml(vec![
                ("artifact_uri", Value::from(as_uri(&self.artifact_uri))),
                ("end_time", opt(self.end_time)),
                ("entry_point_name", Value::from(self.entry_point_name.as_str())),
                ("experiment_id", Value::from(exp.as_str())),
                ("lifecycle_stage", Value::from(self.lifecycle_stage.as_str())),
                ("run_id", Value::from(run.as_str())),
                ("run_name", Value::from(self.run_name.as_str())),
                ("run_uuid", Value::from(run.as_str())),
                ("source_name", Value::from(self.source_name.as_str())),
                ("source_type", Value::from(source_type_number(&self.source_type))),
                ("source_version", Value::from(self.source_version.as_str())),
                ("start_time", opt(self.start_time)),
                ("status", Value::from(status_number(&self.status))),
                ("tags", Value::Sequence(Vec::new())),
                ("user_id", Value::from(self.user_id.as_str())),
            ]),
        );
        let safe = |key: &str| crate::repo::tree::validate_path(key).is_ok();
        for (dir, map) in [("params", &self.params), ("tags", &self.tags)] {
            for (k, v) in map.iter().filter(|(k, _)| safe(k)) {
                files.insert(format!("{exp}/{run}/{dir}/{k}"), v.clone().into_bytes());
            }
        }
        for p in self.metrics.iter().filter(|p| safe(&p.key)) {
            // MLflow's file store writes Python's str(float): "nan", "inf", "-inf" for non-finite.
            let value = match p.value {
                v if v.is_nan() => "nan".to_string(),
                v if v == f64::INFINITY => "inf".to_string(),
                v if v == f64::NEG_INFINITY => "-inf".to_string(),
                v => format!("{v:?}"),
            };
            let line = format!("{} {value} {}\n", p.timestamp, p.step);
            files
                .entry(format!("{exp}/{run}/metrics/{}", p.key))
                .or_insert_with(Vec::new)
                .extend(line.bytes());
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables and columns of MLflow 3.17.2's SQLite store that are read here.
    fn store(dir: &Path) -> PathBuf {
        let db = dir.join("mlflow.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE experiments (experiment_id INTEGER, name TEXT, artifact_location TEXT,
                 lifecycle_stage TEXT, creation_time BIGINT, last_update_time BIGINT);
             CREATE TABLE runs (run_uuid TEXT, name TEXT, source_type TEXT, source_name TEXT,
                 entry_point_name TEXT, user_id TEXT, status TEXT, start_time BIGINT, end_time BIGINT,
                 source_version TEXT, lifecycle_stage TEXT, artifact_uri TEXT, experiment_id INTEGER);
             CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);
             CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);
             CREATE TABLE metrics (key TEXT, value FLOAT, timestamp BIGINT, run_uuid TEXT, step BIGINT, is_nan BOOLEAN);
             INSERT INTO experiments VALUES (0, 'Default', '/w/mlruns/0', 'active', 1, 2);
             INSERT INTO runs VALUES ('abc', 'brave-owl', 'UNKNOWN', 't.py', '', 'me', 'FINISHED', 10, 20, '',
                 'active', '/w/mlruns/0/abc/artifacts', 0);
             INSERT INTO runs VALUES ('old', 'x', 'LOCAL', '', '', 'me', 'FINISHED', 5, 6, '', 'deleted', '', 0);
             INSERT INTO tags VALUES ('mlgit.tag', 'model-v2', 'abc'), ('mlgit.tag', 'model-v2', 'old');
             INSERT INTO params VALUES ('lr', '0.1', 'abc');
             INSERT INTO metrics VALUES ('acc', 0.5, 100, 'abc', 0, 0), ('acc', 0.8, 90, 'abc', 1, 0),
                 ('loss', 0, 100, 'abc', 0, 1), ('up', 1.7976931348623157e308, 100, 'abc', 0, 0);",
        )
        .unwrap();
        db
    }

    #[test]
    fn finds_the_active_run_carrying_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        let db = store(dir.path());
        assert_eq!(find_run(&db, "model-v1").unwrap(), None);
        assert_eq!(find_run(&dir.path().join("none.db"), "model-v2").unwrap(), None);
        let run = find_run(&db, "model-v2").unwrap().unwrap();
        assert_eq!((run.run_id.as_str(), run.experiment_id.as_str()), ("abc", "0"));
        let m = run.as_mlflow_run();
        assert_eq!(m.metrics["acc"], 0.8, "the highest step wins");
        assert!(m.metrics["loss"].is_nan());
        assert_eq!(m.metrics["up"], f64::INFINITY);
        assert_eq!(m.params["lr"], "0.1");
    }

    #[test]
    fn the_run_is_laid_out_as_a_file_store() {
        let dir = tempfile::tempdir().unwrap();
        let run = find_run(&store(dir.path()), "model-v2").unwrap().unwrap();
        let files = run.file_layout();
        let text = |p: &str| String::from_utf8(files[p].clone()).unwrap();
        assert!(text("0/meta.yaml").contains("experiment_id: '0'"), "{}", text("0/meta.yaml"));
        assert!(text("0/meta.yaml").contains("name: Default"));
        let meta = text("0/abc/meta.yaml");
        assert!(
            meta.contains("run_id: abc") && meta.contains("status: 3") && meta.contains("experiment_id: '0'"),
            "{meta}"
        );
        assert!(meta.contains("artifact_uri: file:///w/mlruns/0/abc/artifacts"), "{meta}");
        assert_eq!(text("0/abc/tags/mlgit.tag"), "model-v2");
        assert_eq!(text("0/abc/params/lr"), "0.1");
        assert_eq!(text("0/abc/metrics/acc"), "90 0.8 1\n100 0.5 0\n");
        assert_eq!(text("0/abc/metrics/loss"), "100 nan 0\n");
        assert_eq!(text("0/abc/metrics/up"), "100 inf 0\n");
    }

    #[test]
    fn tracking_uris_name_the_store() {
        let w = Path::new("/w");
        assert_eq!(store_path(w, None), Some(PathBuf::from("/w/mlflow.db")));
        assert_eq!(store_path(w, Some("sqlite:///runs/m.db")), Some(PathBuf::from("/w/runs/m.db")));
        assert_eq!(store_path(w, Some("sqlite:////abs/m.db")), Some(PathBuf::from("/abs/m.db")));
        assert_eq!(store_path(w, Some("file:./mlruns")), None);
        assert_eq!(store_path(w, Some("http://localhost:5000")), None);
    }
}
