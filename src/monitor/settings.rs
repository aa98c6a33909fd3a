//! `monitor.yaml`: the settings of a monitoring branch, committed on it, so the thresholds behind
//! every alert are versioned with the data they judged. A missing file means the defaults.

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::repo::tree::entry_at;

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
    /// The monitoring columns (tag, request id, time, prediction, score, label): never features.
    pub fn special_columns(&self) -> Vec<&str> {
        vec![
            self.tag_column.as_str(),
            self.request_id_column.as_str(),
            self.time_column.as_str(),
            self.prediction_column.as_str(),
            self.score_column.as_str(),
            self.label_column.as_str(),
        ]
    }

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

impl MonitorSettings {
    /// Parse `monitor.yaml` text; `origin` names it in errors (e.g. `monitoring/prod:monitor.yaml`).
    pub fn parse(text: &str, origin: &str) -> Result<MonitorSettings> {
        if text.trim().is_empty() {
            return Ok(MonitorSettings::default());
        }
        let settings: MonitorSettings = serde_yaml::from_str(text).map_err(|e| {
            let at = match e.location() {
                Some(loc) => format!("{origin}:{}:{}", loc.line(), loc.column()),
                None => origin.to_string(),
            };
            Error::new(ErrorKind::Config, format!("invalid monitoring settings {at}: {e}"))
                .with_hint(FIX_HINT)
        })?;
        settings.validate(origin)?;
        Ok(settings)
    }

    /// Checks that serde cannot express: probabilities in (0, 1), thresholds not negative,
    /// column names not empty.
    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |msg: String| {
            Err(Error::new(ErrorKind::Config, format!("invalid monitoring settings {origin}: {msg}"))
                .with_hint(FIX_HINT))
        };
        for (key, name) in [
            ("tag_column", &self.tag_column),
            ("request_id_column", &self.request_id_column),
            ("time_column", &self.time_column),
            ("prediction_column", &self.prediction_column),
            ("score_column", &self.score_column),
            ("label_column", &self.label_column),
        ] {
            if name.trim().is_empty() {
                return bad(format!("{key} is empty"));
            }
        }
        if self.min_rows == 0 {
            return bad("min_rows must be at least 1 (0 records can never show drift)".into());
        }
        let mut all = vec![("thresholds", self.thresholds.clone())];
        all.extend(self.features.keys().map(|f| (f.as_str(), self.thresholds_for(f))));
        for (scope, t) in all {
            if !(t.alpha > 0.0 && t.alpha < 1.0) {
                return bad(format!("{scope}: alpha must be between 0 and 1 (is {})", t.alpha));
            }
            for (key, v) in [
                ("psi", t.psi),
                ("wasserstein", t.wasserstein),
                ("ks", t.ks),
                ("js", t.js),
                ("unseen", t.unseen),
                ("null_rate_points", t.null_rate_points),
                ("out_of_range", t.out_of_range),
                ("outliers", t.outliers),
                ("metric_drop", t.metric_drop),
                ("ece", t.ece),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return bad(format!("{scope}: {key} must be a number ≥ 0 (is {v})"));
                }
            }
        }
        Ok(())
    }

    /// The settings committed at the root of `tree` (the defaults when there is no file).
    pub fn read(git: &Repository, tree: Oid, branch: &str) -> Result<MonitorSettings> {
        let origin = format!("{branch}:{MONITOR_FILE}");
        let Some(entry) = entry_at(git, tree, MONITOR_FILE)? else {
            return Ok(MonitorSettings::default());
        };
        let blob = git.find_blob(entry.oid).context(format!("read {origin}"))?;
        let text = std::str::from_utf8(blob.content()).map_err(|_| {
            Error::new(ErrorKind::Config, format!("invalid monitoring settings {origin}: not UTF-8 text"))
                .with_hint(FIX_HINT)
        })?;
        MonitorSettings::parse(text, &origin)
    }

    /// The file's text: a header comment, then the settings as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        let body = serde_yaml::to_string(self)
            .map_err(|e| Error::invalid(format!("cannot write the monitoring settings: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }
}

const FIX_HINT: &str = "fix monitor.yaml on the monitoring branch (see docs/monitor.md for every key), \
    e.g. `mlgit checkout` it or `git show BRANCH:monitor.yaml`, commit the fix, and retry";

const HEADER: &str = "# mlgit monitoring settings for this branch: columns, alert thresholds and checks.\n\
# Committed with the data, so the settings behind every alert are versioned. See docs/monitor.md.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_yaml() {
        let s = MonitorSettings::default();
        let text = s.to_yaml().unwrap();
        assert_eq!(MonitorSettings::parse(&text, "m").unwrap(), s);
        assert_eq!(MonitorSettings::parse("", "m").unwrap(), s);
    }

    #[test]
    fn feature_thresholds_override_only_what_they_name() {
        let s = MonitorSettings::parse("features:\n  age: {wasserstein: 0.3}\n", "m").unwrap();
        assert_eq!(s.thresholds_for("age").wasserstein, 0.3);
        assert_eq!(s.thresholds_for("age").psi, Thresholds::default().psi);
        assert_eq!(s.thresholds_for("other").wasserstein, Thresholds::default().wasserstein);
    }

    #[test]
    fn bad_settings_name_the_file_and_the_key() {
        let e =
            MonitorSettings::parse("thresholds: {alpha: 2}\n", "monitoring/prod:monitor.yaml").unwrap_err();
        assert!(e.message().contains("monitoring/prod:monitor.yaml") && e.message().contains("alpha"), "{e}");
        let e = MonitorSettings::parse("min_rows: [1\n", "x:monitor.yaml").unwrap_err();
        assert!(e.message().contains("x:monitor.yaml"), "{e}");
        let e = MonitorSettings::parse("tag_colum: t\n", "x").unwrap_err();
        assert!(e.message().contains("tag_colum"), "{e}");
    }
}
