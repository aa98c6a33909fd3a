//! The statistics of a drift report, each on summaries from [`super::sample`]. Pure functions:
//! no I/O. Tested against scipy on the same data (tests/monitor_stats.rs).

use super::sample::{Categories, Distribution};

/// Two-sample Kolmogorov–Smirnov statistic: sup |F_ref − F_cur| (= `scipy.stats.ks_2samp(..).statistic`
/// on exact distributions).
pub fn ks_statistic(reference: &Distribution, current: &Distribution) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// The KS test's two-sided p-value for statistic `d` with sample sizes n and m (asymptotic
/// Kolmogorov distribution with the effective size n·m/(n+m); conservative for ties).
pub fn ks_pvalue(d: f64, n: u64, m: u64) -> f64 {
    let _ = (d, n, m);
    todo!()
}

/// 1-Wasserstein distance between the two distributions (= `scipy.stats.wasserstein_distance`).
pub fn wasserstein(reference: &Distribution, current: &Distribution) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// [`wasserstein`] divided by the reference's interquartile range (its std when the IQR is 0,
/// 1 when both are 0), so it reads in units of the reference's spread.
pub fn wasserstein_scaled(reference: &Distribution, current: &Distribution) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// Population Stability Index on `bins` bins whose inner edges are the reference's quantiles
/// (duplicate edges merged), each share smoothed by `eps` (empty bins would make it infinite).
pub fn psi(reference: &Distribution, current: &Distribution, bins: usize, eps: f64) -> f64 {
    let _ = (reference, current, bins, eps);
    todo!()
}

/// Jensen–Shannon distance between the category shares (natural log, as
/// `scipy.spatial.distance.jensenshannon` by default: 0 ..= √ln 2). Categories of either side,
/// plus `other`, make the support.
pub fn js_distance(reference: &Categories, current: &Categories) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// Share of the current values whose category the reference never had.
pub fn unseen_rate(reference: &Categories, current: &Categories) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// p-value of Pearson's chi-square test of homogeneity of the two count vectors (categories
/// with fewer than 5 expected merged into one, as usual).
pub fn chi2_pvalue(reference: &Categories, current: &Categories) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// Two-sided p-value that two null rates differ (two-proportion z-test).
pub fn proportion_pvalue(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    let _ = (k1, n1, k2, n2);
    todo!()
}

/// Benjamini–Hochberg adjusted p-values (same order as given; = statsmodels `fdr_bh`).
pub fn benjamini_hochberg(pvalues: &[f64]) -> Vec<f64> {
    let _ = pvalues;
    todo!()
}

/// Share of current values outside [reference min, reference max].
pub fn out_of_range_share(reference: &Distribution, current: &Distribution) -> f64 {
    let _ = (reference, current);
    todo!()
}

/// Share of current values that are outliers by the reference's IQR rule
/// (below Q1 − k·IQR or above Q3 + k·IQR; k = 1.5 by convention).
pub fn outlier_share_iqr(reference: &Distribution, current: &Distribution, k: f64) -> f64 {
    let _ = (reference, current, k);
    todo!()
}

/// Expected calibration error on `bins` equal-width bins of the score (weighted by bin size).
pub fn ece(scores: &[f64], labels: &[bool], bins: usize) -> f64 {
    let _ = (scores, labels, bins);
    todo!()
}

/// Brier score: mean (score − label)².
pub fn brier(scores: &[f64], labels: &[bool]) -> f64 {
    let _ = (scores, labels);
    todo!()
}

/// Area under the ROC curve (ties counted half), None when one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let _ = (scores, labels);
    todo!()
}
