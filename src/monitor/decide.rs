//! One tag's verdict on its features: the statistics of each feature against the reference, the
//! Benjamini–Hochberg correction over the features, and the alert rule (an effect size at or
//! above its threshold **and** a significant adjusted p-value; fewer rows than `min_rows` give
//! "insufficient data", never "drift"). Also the per-feature checks that need no test: null rate,
//! values outside the reference range, outlier share.
//!
//! The rule, feature by feature:
//! - both sides need `min_rows` non-null values, else `insufficient_data` (no test, no drift);
//! - numeric: effects PSI (on the reference's deciles), Wasserstein in reference IQRs and the
//!   KS statistic; the test is KS (asymptotic p-value; on a sketch or a profile, on the KS
//!   statistic less both sides' rank error, so that the approximation cannot make drift);
//! - categorical: effects Jensen–Shannon distance and the unseen-category rate; the test is the
//!   chi-square test of homogeneity;
//! - the p-values of all features judged together are adjusted by Benjamini–Hochberg;
//! - `drift` when an effect reaches its threshold (and is above 0) and the adjusted p-value is
//!   at most `alpha`; else `warning` when a check fires; else `ok`.

use serde::Serialize;

use super::sample::{Categories, Distribution};
use super::settings::Thresholds;
use super::stats;

/// One side (reference or current) of a feature, summarised.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureData {
    Numeric(Distribution),
    Categorical(Categories),
}

impl FeatureData {
    /// Rows it stands for, nulls included.
    pub fn rows(&self) -> u64 {
        self.values() + self.nulls()
    }
    /// Non-null values.
    pub fn values(&self) -> u64 {
        match self {
            FeatureData::Numeric(d) => d.n,
            FeatureData::Categorical(c) => c.n,
        }
    }
    pub fn nulls(&self) -> u64 {
        match self {
            FeatureData::Numeric(d) => d.nulls,
            FeatureData::Categorical(c) => c.nulls,
        }
    }
    /// Whether it is exact (not from a sketch or a profile).
    pub fn exact(&self) -> bool {
        match self {
            FeatureData::Numeric(d) => d.exact,
            FeatureData::Categorical(c) => c.exact,
        }
    }
    /// Share of the rows that are null (0 without rows).
    pub fn null_rate(&self) -> f64 {
        match self.rows() {
            0 => 0.0,
            rows => self.nulls() as f64 / rows as f64,
        }
    }
}

/// A feature to judge.
pub struct FeatureInput<'a> {
    pub name: &'a str,
    pub reference: &'a FeatureData,
    pub current: &'a FeatureData,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    InsufficientData,
    /// A check (null rate, range, outliers) fired, but no distribution drift.
    Warning,
    Drift,
}

/// One statistic with its threshold and whether it reached it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// `psi`, `wasserstein`, `ks`, `js`, `unseen`, `null_rate_points`, `out_of_range`, `outliers`.
    pub metric: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub exceeded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureVerdict {
    pub feature: String,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    pub reference_rows: u64,
    pub current_rows: u64,
    /// Effect sizes (numeric: psi, wasserstein, ks; categorical: js, unseen).
    pub effects: Vec<Measure>,
    /// Checks without a test (null_rate_points, and numeric: out_of_range, outliers). `outliers`
    /// is the batch's share of values beyond the reference's IQR fences (k = 1.5) less the
    /// reference's own share, so a skewed reference does not warn by itself.
    pub checks: Vec<Measure>,
    /// The test's raw p-value (numeric: KS; categorical: chi-square); None with insufficient data.
    pub p_value: Option<f64>,
    /// After Benjamini–Hochberg over the features of the same verdict set.
    pub p_adjusted: Option<f64>,
    pub status: Status,
    /// Either side was not exact (a sketch or a profile): the figures are approximations.
    pub approximate: bool,
    /// Plain words: why the status is what it is.
    pub reason: String,
}

/// The IQR rule's k.
pub const OUTLIER_K: f64 = 1.5;

/// Judge every feature of one tag together (the BH correction runs over them).
pub fn judge(features: &[FeatureInput<'_>], min_rows: u64) -> Vec<FeatureVerdict> {
    let mut verdicts: Vec<FeatureVerdict> = features.iter().map(|f| measure(f, min_rows)).collect();
    let tested: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].p_value.is_some()).collect();
    let raw: Vec<f64> = tested.iter().filter_map(|&i| verdicts[i].p_value).collect();
    for (&i, adj) in tested.iter().zip(stats::benjamini_hochberg(&raw)) {
        verdicts[i].p_adjusted = Some(adj);
    }
    for (v, f) in verdicts.iter_mut().zip(features) {
        decide(v, f, min_rows);
    }
    verdicts
}

/// A measure against its threshold: reached when at or above it, and above 0 (a threshold of
/// 0 from a degenerate calibration must not make every batch reach it).
fn measure_of(metric: &'static str, value: f64, threshold: f64) -> Measure {
    Measure { metric, value, threshold, exceeded: value >= threshold && value > 0.0 }
}

/// The statistics of one feature, before the correction and the decision.
fn measure(f: &FeatureInput<'_>, min_rows: u64) -> FeatureVerdict {
    let (r, c, t) = (f.reference, f.current, &f.thresholds);
    let enough = r.values() >= min_rows && c.values() >= min_rows;
    let mut v = FeatureVerdict {
        feature: f.name.to_string(),
        kind: "numeric",
        reference_rows: r.rows(),
        current_rows: c.rows(),
        effects: Vec::new(),
        checks: vec![null_rate_check(r, c, t)],
        p_value: None,
        p_adjusted: None,
        status: Status::Ok,
        approximate: !r.exact() || !c.exact(),
        reason: String::new(),
    };
    match (r, c) {
        (FeatureData::Numeric(a), FeatureData::Numeric(b)) if a.n > 0 && b.n > 0 => {
            numeric_measures(&mut v, a, b, t);
            if enough {
                let slack = a.rank_error + b.rank_error;
                let d = (stats::ks_statistic(a, b) - slack).max(0.0);
                v.p_value = Some(stats::ks_pvalue(d, a.n, b.n));
            }
        }
        (FeatureData::Categorical(a), FeatureData::Categorical(b)) if a.n > 0 && b.n > 0 => {
            v.kind = "categorical";
            v.effects = vec![
                measure_of("js", stats::js_distance(a, b), t.js),
                measure_of("unseen", stats::unseen_rate(a, b), t.unseen),
            ];
            if enough {
                v.p_value = Some(stats::chi2_pvalue(a, b));
            }
        }
        (FeatureData::Categorical(_), _) => v.kind = "categorical",
        _ => {}
    }
    v
}

/// The null rate's increase in points; it fires only when also significant (two-proportion
/// test at `alpha`), so that small batches do not warn on noise.
fn null_rate_check(r: &FeatureData, c: &FeatureData, t: &Thresholds) -> Measure {
    let mut m = measure_of("null_rate_points", 100.0 * (c.null_rate() - r.null_rate()), t.null_rate_points);
    m.exceeded &= stats::proportion_pvalue(r.nulls(), r.rows(), c.nulls(), c.rows()) <= t.alpha;
    m
}

fn numeric_measures(v: &mut FeatureVerdict, a: &Distribution, b: &Distribution, t: &Thresholds) {
    v.effects = vec![
        measure_of("psi", stats::psi(a, b, stats::PSI_BINS, stats::PSI_EPS), t.psi),
        measure_of("wasserstein", stats::wasserstein_scaled(a, b), t.wasserstein),
        measure_of("ks", stats::ks_statistic(a, b), t.ks),
    ];
    let outliers = stats::outlier_share_iqr(a, b, OUTLIER_K) - stats::outlier_share_iqr(a, a, OUTLIER_K);
    v.checks.push(measure_of("out_of_range", stats::out_of_range_share(a, b), t.out_of_range));
    v.checks.push(measure_of("outliers", outliers, t.outliers));
}

/// The status and its reason, once the adjusted p-value is known.
fn decide(v: &mut FeatureVerdict, f: &FeatureInput<'_>, min_rows: u64) {
    let (r, c) = (f.reference.values(), f.current.values());
    if matches!(
        (f.reference, f.current),
        (FeatureData::Numeric(_), FeatureData::Categorical(_))
            | (FeatureData::Categorical(_), FeatureData::Numeric(_))
    ) {
        v.status = Status::Warning;
        v.reason = "the batch's values are not of the reference's kind (numeric vs categorical); \
                    not compared"
            .to_string();
        return;
    }
    if r < min_rows || c < min_rows {
        v.status = Status::InsufficientData;
        v.reason = format!(
            "{c} non-null values in the batch and {r} in the reference; at least {min_rows} are \
             needed on each side to test for drift"
        );
        return;
    }
    let alpha = f.thresholds.alpha;
    let reached = listing(&v.effects);
    let fired = listing(&v.checks);
    let p = v.p_adjusted.unwrap_or(1.0);
    let significant = p <= alpha;
    let approx = if v.approximate { " (approximate: a sketch or a profile)" } else { "" };
    (v.status, v.reason) = match (reached.is_empty(), significant) {
        (false, true) => (
            Status::Drift,
            format!("drift: {reached}, significant (adjusted p {} ≤ {alpha}){approx}", num(p)),
        ),
        (false, false) => {
            (Status::Ok, format!("{reached}, but not significant (adjusted p {} > {alpha}){approx}", num(p)))
        }
        (true, true) => (
            Status::Ok,
            format!("significant (adjusted p {} ≤ {alpha}) but every effect is below its threshold", num(p)),
        ),
        (true, false) => (Status::Ok, "no effect at its threshold".to_string()),
    };
    if v.status != Status::Drift && !fired.is_empty() {
        v.status = Status::Warning;
        v.reason = format!("{fired}; {}", v.reason);
    }
}

/// "psi 0.31 ≥ 0.2, ks 0.12 ≥ 0.1" for the measures that reached their threshold.
fn listing(measures: &[Measure]) -> String {
    measures
        .iter()
        .filter(|m| m.exceeded)
        .map(|m| format!("{} {} ≥ {}", m.metric, num(m.value), num(m.threshold)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number in at most 3 significant digits, for reasons.
fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    if x.abs() >= 1e-3 && x.abs() < 1e4 {
        let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{x:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(values: &[f64]) -> FeatureData {
        FeatureData::Numeric(Distribution::from_values(values))
    }

    #[test]
    fn few_rows_give_insufficient_data_never_drift() {
        let reference = numeric(&(0..1000).map(f64::from).collect::<Vec<_>>());
        let current = numeric(&[5000.0; 8]);
        let input = FeatureInput {
            name: "x",
            reference: &reference,
            current: &current,
            thresholds: Thresholds::default(),
        };
        let v = &judge(&[input], 200)[0];
        assert_eq!(v.status, Status::InsufficientData);
        assert_eq!(v.p_value, None);
        assert!(v.reason.contains("8 non-null values"), "{}", v.reason);
    }

    #[test]
    fn a_large_shift_is_drift_and_a_null_rate_jump_alone_is_a_warning() {
        let base: Vec<f64> = (0..2000).map(|i| f64::from(i % 100)).collect();
        let shifted: Vec<f64> = base.iter().map(|x| x + 30.0).collect();
        let mut with_nulls = base.clone();
        with_nulls.extend([f64::NAN; 300]);
        let (r, s, n) = (numeric(&base), numeric(&shifted), numeric(&with_nulls));
        let t = Thresholds::default();
        let inputs = [
            FeatureInput { name: "a", reference: &r, current: &s, thresholds: t.clone() },
            FeatureInput { name: "b", reference: &r, current: &n, thresholds: t },
        ];
        let v = judge(&inputs, 200);
        assert_eq!(v[0].status, Status::Drift, "{}", v[0].reason);
        assert!(v[0].reason.starts_with("drift: psi"), "{}", v[0].reason);
        assert_eq!(v[1].status, Status::Warning, "{}", v[1].reason);
        assert!(v[1].reason.starts_with("null_rate_points 13"), "{}", v[1].reason);
        assert_eq!(num(0.14812), "0.148");
        assert_eq!(num(3.1e-12), "3.10e-12");
    }
}
