//! Column profiles (stub: owned by the profile/schema helper). A profile is deterministic: the
//! same rows in the same order give the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Batch, Column};

/// The profile of one table (or of one split of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

/// One column's statistics. `type` is `int`, `float`, `bool`, `string`, `timestamp`, `nested`
/// or `null` (every value null); text cells that all parse as numbers profile as numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub nulls: u64,
    pub distinct: Distinct,
    /// Numbers (and timestamps, as microseconds): min, max, mean, std, percentiles, histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<Numeric>,
    /// The 50 most frequent values (canonical text) with their counts, most frequent first, ties
    /// by value.
    pub top: Vec<TopValue>,
    /// Whether `top`'s counts are exact.
    pub top_exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distinct {
    pub count: u64,
    pub exact: bool,
    /// The estimate's relative standard error when not exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_error: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Numeric {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// p1..p99 (99 values).
    pub percentiles: Vec<f64>,
    /// None: exact; else the sketch's stated error (e.g. relative error of each value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_error: Option<String>,
    pub histogram: Histogram,
}

/// 20 bins on fixed edges (21 values, equally spaced from min to max; the last bin holds max).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopValue {
    pub value: String,
    pub count: u64,
}

/// Accumulates a table's profile batch by batch, in bounded memory.
pub struct Profiler {
    _columns: Vec<Column>,
}

impl Profiler {
    pub fn new(columns: &[Column]) -> Profiler {
        Profiler { _columns: columns.to_vec() }
    }

    /// Add the rows of `batch` whose `keep` is true. A reader may learn columns late (JSONL):
    /// `columns` is the reader's current list, a prefix-extension of the one before.
    pub fn observe(&mut self, _columns: &[Column], _batch: &Batch, _keep: &[bool]) {
        todo!()
    }

    pub fn finish(self) -> TableProfile {
        todo!()
    }
}

/// How two profiles of a table differ (for `mlgit diff`): rows, and per column the change in
/// mean, null rate and top categories.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileDiff {
    pub rows_before: u64,
    pub rows_after: u64,
    pub columns: Vec<ColumnDiff>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDiff {
    pub name: String,
    /// `added`, `removed`, `changed` (only changed columns are listed).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_rate: Option<(f64, f64)>,
    /// Top values whose share changed by at least one percentage point: value → (before, after) share.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub top: BTreeMap<String, (f64, f64)>,
}

/// Compare two profiles of the same table.
pub fn diff(_before: &TableProfile, _after: &TableProfile) -> ProfileDiff {
    todo!()
}
