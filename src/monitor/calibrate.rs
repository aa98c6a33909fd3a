//! `monitor calibrate`: thresholds set from the reference itself. Pseudo-batches of production
//! size are drawn (with replacement, seeded) from each feature's reference; each effect size's
//! distribution under "no drift" gives the threshold that keeps the expected false alarms over a
//! period within budget.

use serde::Serialize;

use super::decide::FeatureData;
use super::settings::FeatureThresholds;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrateOptions {
    /// Rows of a production batch (per tag).
    pub batch_rows: u64,
    /// Pseudo-batches drawn per feature.
    pub draws: usize,
    pub seed: u64,
    /// False alarms allowed over the period…
    pub false_alarms: f64,
    /// …and how many batches (drift runs) the period holds.
    pub batches_in_period: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCalibration {
    pub feature: String,
    pub thresholds: FeatureThresholds,
    /// Per effect metric: the null distribution's mean, std and the largest value drawn.
    pub null: Vec<NullSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NullSummary {
    pub metric: &'static str,
    pub mean: f64,
    pub std: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub options: CalibrateOptions,
    /// Allowed false-alarm probability of one effect test in one batch:
    /// false_alarms / (batches_in_period × features).
    pub per_test_rate: f64,
    pub features: Vec<FeatureCalibration>,
}

/// Calibrate the effect thresholds of `features` (name, reference).
pub fn calibrate(features: &[(String, FeatureData)], opts: &CalibrateOptions) -> Calibration {
    let _ = (features, opts);
    todo!()
}
