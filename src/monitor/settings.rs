//! `monitor.yaml`: the settings of a monitoring branch, committed on it, so the thresholds behind
//! every alert are versioned with the data they judged. A missing file means the defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The file at the root of a monitoring branch.
pub const MONITOR_FILE: &str = "monitor.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorSettings {
    /// Column naming the snapshot tag that served the record.
    pub tag_column: String,
    /// Column with the request id (joins labels to requests).
    pub request_id_column: String,
    /// Column with the request's time (RFC 3339 / ISO-8601, or a Parquet timestamp); the batch
    /// window. Absent: the window is the log time.
    pub time_column: String,
    /// Column with the model's prediction (class or value).
    pub prediction_column: String,
    /// Column with the predicted probability of the positive class, for calibration.
    pub score_column: String,
    /// Column with the ground truth, in label files (and in requests if already known).
    pub label_column: String,
    /// The training table the batches are compared with, as a path under the split's
    /// `data/train/` (e.g. `customers.csv`); empty: the split's only table.
    pub reference_table: String,
    /// Fewer rows than this (per tag) give "insufficient data", never "drift".
    pub min_rows: u64,
    pub thresholds: Thresholds,
    /// Per-feature effect thresholds (written by `monitor calibrate`), over `thresholds`.
    pub features: BTreeMap<String, FeatureThresholds>,
    /// Columns left out of the drift checks.
    pub ignore: Vec<String>,
    /// What `monitor calibrate` used, for the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<serde_json::Value>,
}

/// Alert thresholds. An effect alert needs an effect size at or above its threshold **and** a
/// Benjamini–Hochberg adjusted p-value at or below `alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Significance level after the Benjamini–Hochberg correction over the features.
    pub alpha: f64,
    /// Numeric: PSI (10 bins on the reference's deciles).
    pub psi: f64,
    /// Numeric: Wasserstein distance in units of the reference's IQR.
    pub wasserstein: f64,
    /// Numeric: KS statistic.
    pub ks: f64,
    /// Categorical: Jensen–Shannon distance (natural log).
    pub js: f64,
    /// Categorical: share of values never seen in the reference.
    pub unseen: f64,
    /// Null rate increase, in percentage points.
    pub null_rate_points: f64,
    /// Share of values outside the reference range.
    pub out_of_range: f64,
    /// Share of outliers by the reference's IQR rule (k = 1.5).
    pub outliers: f64,
    /// Drop of the primary metric (absolute) against the snapshot's recorded value.
    pub metric_drop: f64,
    /// Expected calibration error.
    pub ece: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            alpha: 0.05,
            psi: 0.2,
            wasserstein: 0.1,
            ks: 0.1,
            js: 0.1,
            unseen: 0.05,
            null_rate_points: 5.0,
            out_of_range: 0.05,
            outliers: 0.05,
            metric_drop: 0.05,
            ece: 0.1,
        }
    }
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            tag_column: "model_tag".into(),
            request_id_column: "request_id".into(),
            time_column: "timestamp".into(),
            prediction_column: "prediction".into(),
            score_column: "score".into(),
            label_column: "label".into(),
            reference_table: String::new(),
            min_rows: 200,
            thresholds: Thresholds::default(),
            features: BTreeMap::new(),
            ignore: Vec::new(),
            calibration: None,
        }
    }
}

/// A feature's own effect thresholds; a missing one is `thresholds`' value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureThresholds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub js: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen: Option<f64>,
}

impl MonitorSettings {
    /// The thresholds that apply to `feature`.
    pub fn thresholds_for(&self, feature: &str) -> Thresholds {
        let mut t = self.thresholds.clone();
        if let Some(f) = self.features.get(feature) {
            t.psi = f.psi.unwrap_or(t.psi);
            t.wasserstein = f.wasserstein.unwrap_or(t.wasserstein);
            t.ks = f.ks.unwrap_or(t.ks);
            t.js = f.js.unwrap_or(t.js);
            t.unseen = f.unseen.unwrap_or(t.unseen);
        }
        t
    }
}
