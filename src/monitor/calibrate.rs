//! `monitor calibrate`: thresholds set from the reference itself. Pseudo-batches of production
//! size are drawn (with replacement, seeded) from each feature's reference; each effect size's
//! distribution under "no drift" gives the threshold that keeps the expected false alarms over a
//! period within budget.
//!
//! How a draw is made, and why it is fast and honest:
//! - A production batch of n rows and a reference of N rows are both samples of the same
//!   population under "no drift"; the effect sizes measure the gap between their empirical
//!   distributions, whose noise scales with 1/n + 1/N. A pseudo-batch of the *effective* size
//!   n·N/(n+N) drawn from the reference has the same noise (the two-sample KS theory's effective
//!   size; the same holds for Wasserstein, PSI and Jensen–Shannon, which are functionals of that
//!   gap), so one draw stands for both samples.
//! - Numeric: the reference's inverse CDF is tabulated on a grid of G equal-probability slices
//!   (G a power of two, 4,096..65,536 with the batch size); a value is then one random number
//!   (its top bits pick the slice), and a pseudo-batch is a count per slice. The statistics
//!   are computed on those counts against the gridded reference in O(G), the same formulas as
//!   [`super::stats`] on the same points (tested).
//! - Categorical: a value is a category drawn by its reference share. Values never seen in the
//!   reference come with the Good–Turing probability (singletons / N) of an unseen category,
//!   plus, for a profile's reference, the share of its `other` values.
//! - Draws run in parallel; each draw has its own generator derived from (seed, feature, draw),
//!   so the result does not depend on the number of threads.

use rayon::prelude::*;
use serde::Serialize;

use super::decide::FeatureData;
use super::sample::{Categories, Distribution};
use super::settings::FeatureThresholds;
use super::stats::{self, special, PSI_BINS, PSI_EPS};

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
    /// Rows of each pseudo-batch: the effective size n·N/(n+N) of a batch of `batch_rows`
    /// against the reference's N values.
    pub effective_rows: u64,
    /// The false-alarm probability each of the feature's effect metrics is held to:
    /// `per_test_rate` shared among them (Bonferroni), so that any of them reaching its
    /// threshold stays within the feature's share of the budget.
    pub per_metric_rate: f64,
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
///
/// A feature's effect metrics share its `per_test_rate` (k metrics: each at rate / k). Each
/// metric's threshold is the largest of the null draws' empirical (1 − rate) quantile, their
/// mean + z·std (z the normal quantile at 1 − rate) and the same bound on their logarithms:
/// with a few hundred draws and a tiny rate the empirical quantile is only the largest draw,
/// and the parametric bounds extend it (the log-normal one for the right-skewed metrics). `unseen` adds one value (1 / batch_rows) to it, as a rate
/// of whole values. A feature without reference values gets no thresholds.
pub fn calibrate(features: &[(String, FeatureData)], opts: &CalibrateOptions) -> Calibration {
    let per_test_rate = per_test_rate(opts, features.len());
    let out = features
        .par_iter()
        .enumerate()
        .map(|(i, (name, data))| {
            let nulls = match data {
                FeatureData::Numeric(d) => numeric_null(d, opts, i as u64),
                FeatureData::Categorical(c) => categorical_null(c, opts, i as u64),
            };
            feature_calibration(name, nulls, opts, per_test_rate)
        })
        .collect();
    Calibration { options: opts.clone(), per_test_rate, features: out }
}

/// false_alarms / (batches_in_period × features), kept in (0, 1).
fn per_test_rate(opts: &CalibrateOptions, features: usize) -> f64 {
    let tests = opts.batches_in_period.max(1.0) * features.max(1) as f64;
    (opts.false_alarms / tests).clamp(1e-12, 0.5)
}

/// The draws of each metric under "no drift", and the pseudo-batch size.
struct NullDraws {
    metrics: Vec<(&'static str, Vec<f64>)>,
    effective_rows: u64,
}

fn feature_calibration(
    name: &str,
    nulls: Option<NullDraws>,
    opts: &CalibrateOptions,
    per_test_rate: f64,
) -> FeatureCalibration {
    let mut thresholds = FeatureThresholds::default();
    let mut null = Vec::new();
    let (mut effective_rows, mut rate) = (0, per_test_rate);
    if let Some(nulls) = nulls {
        effective_rows = nulls.effective_rows;
        rate = per_test_rate / nulls.metrics.len().max(1) as f64;
        let z = special::normal_quantile(1.0 - rate);
        for (metric, draws) in nulls.metrics {
            let (summary, mut t) = threshold_of(metric, &draws, rate, z);
            if metric == "unseen" {
                t += 1.0 / opts.batch_rows.max(1) as f64;
            }
            let slot = match metric {
                "psi" => &mut thresholds.psi,
                "wasserstein" => &mut thresholds.wasserstein,
                "ks" => &mut thresholds.ks,
                "js" => &mut thresholds.js,
                _ => &mut thresholds.unseen,
            };
            *slot = Some(t);
            null.push(summary);
        }
    }
    FeatureCalibration { feature: name.to_string(), thresholds, null, effective_rows, per_metric_rate: rate }
}

/// The null summary of one metric's draws and the threshold they give.
fn threshold_of(metric: &'static str, draws: &[f64], rate: f64, z: f64) -> (NullSummary, f64) {
    let mut sorted: Vec<f64> = draws.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    if sorted.is_empty() {
        return (NullSummary { metric, mean: f64::NAN, std: f64::NAN, max: f64::NAN }, f64::NAN);
    }
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let std = (sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    let empirical = Distribution::from_values(&sorted).quantile(1.0 - rate);
    let max = sorted[sorted.len() - 1];
    let bound = empirical.max(mean + z * std).max(log_normal_bound(&sorted, z));
    (NullSummary { metric, mean, std, max }, bound)
}

/// exp(mean + z·std) of the draws' logarithms (0 when a draw is not positive). The effect
/// sizes are right-skewed (KS and Jensen–Shannon like a Kolmogorov or a √χ² variable, PSI like
/// a χ²): a normal bound fitted to them falls short of their far tail, a log-normal one does
/// not. Measured: with the normal bound alone, twice the budgeted false alarms.
fn log_normal_bound(draws: &[f64], z: f64) -> f64 {
    if draws.iter().any(|&x| x <= 0.0) {
        return 0.0;
    }
    let logs: Vec<f64> = draws.iter().map(|x| x.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let std = (logs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    (mean + z * std).exp()
}

/// Rows of a pseudo-batch standing for a batch of n rows against N reference values.
fn effective_rows(batch_rows: u64, reference: u64) -> u64 {
    let (n, m) = (batch_rows as f64, reference as f64);
    ((n * m / (n + m)).round() as u64).max(1)
}

/// The reference's inverse CDF on G equal-probability slices, grouped into runs of equal
/// values, with what the statistics need precomputed.
struct Grid {
    /// log2 G.
    bits: u32,
    /// Distinct values (ascending) and the number of slices each holds.
    values: Vec<f64>,
    slices: Vec<u32>,
    /// Slice → run.
    run_of: Vec<u32>,
    /// Run → PSI bin, and each bin's reference share.
    bin_of_run: Vec<usize>,
    ref_bins: Vec<f64>,
    scale: f64,
}

impl Grid {
    fn new(d: &Distribution, batch: u64) -> Grid {
        let bits = batch.next_power_of_two().trailing_zeros().clamp(12, 16);
        let g = 1usize << bits;
        let slice_values = inverse_cdf_table(d, g);
        let (mut values, mut slices, mut run_of) = (Vec::new(), Vec::new(), Vec::with_capacity(g));
        for &x in &slice_values {
            if values.last() != Some(&x) {
                values.push(x);
                slices.push(0);
            }
            *slices.last_mut().expect("a run") += 1;
            run_of.push((values.len() - 1) as u32);
        }
        let edges = stats::psi_edges(d, PSI_BINS);
        let bin_of_run: Vec<usize> = values.iter().map(|&x| stats::bin_of(&edges, x)).collect();
        let mut ref_bins = vec![0.0; edges.len() + 1];
        for (r, &b) in bin_of_run.iter().enumerate() {
            ref_bins[b] += f64::from(slices[r]) / g as f64;
        }
        Grid { bits, values, slices, run_of, bin_of_run, ref_bins, scale: stats::spread(d) }
    }

    /// One pseudo-batch of `rows` values: its (psi, wasserstein scaled, ks) against the grid.
    fn draw(&self, rng: &mut SplitMix64, rows: u64) -> [f64; 3] {
        let mut counts = vec![0u32; self.values.len()];
        let shift = 64 - self.bits;
        for _ in 0..rows {
            counts[self.run_of[(rng.next_u64() >> shift) as usize] as usize] += 1;
        }
        self.statistics(&counts, rows)
    }

    /// (psi, wasserstein scaled, ks) of run counts against the gridded reference.
    fn statistics(&self, counts: &[u32], rows: u64) -> [f64; 3] {
        let (g, n) = ((1u64 << self.bits) as f64, rows as f64);
        let (mut cb, mut cr, mut ks, mut w) = (0.0, 0.0, 0.0f64, 0.0);
        let mut bins = vec![0.0; self.ref_bins.len()];
        for r in 0..self.values.len() {
            cb += f64::from(counts[r]);
            cr += f64::from(self.slices[r]);
            bins[self.bin_of_run[r]] += f64::from(counts[r]) / n;
            let gap = (cb / n - cr / g).abs();
            ks = ks.max(gap);
            if let Some(next) = self.values.get(r + 1) {
                w += gap * (next - self.values[r]);
            }
        }
        [stats::psi_from_shares(&self.ref_bins, &bins, PSI_EPS), w / self.scale, ks]
    }
}

/// The value of each of `g` slices: the point where the weighted CDF first passes the slice's
/// middle probability (sampling the points with replacement, by inverse CDF).
fn inverse_cdf_table(d: &Distribution, g: usize) -> Vec<f64> {
    let total = d.total_weight();
    let mut out = Vec::with_capacity(g);
    let (mut i, mut cum) = (0, d.points.first().map_or(0.0, |p| p.1));
    for s in 0..g {
        let target = (s as f64 + 0.5) / g as f64 * total;
        while cum <= target && i + 1 < d.points.len() {
            i += 1;
            cum += d.points[i].1;
        }
        out.push(d.points[i].0);
    }
    out
}

fn numeric_null(d: &Distribution, opts: &CalibrateOptions, feature: u64) -> Option<NullDraws> {
    if d.points.is_empty() || d.total_weight() <= 0.0 {
        return None;
    }
    let rows = effective_rows(opts.batch_rows, d.n);
    let grid = Grid::new(d, rows);
    let draws: Vec<[f64; 3]> = (0..opts.draws)
        .into_par_iter()
        .map(|j| grid.draw(&mut SplitMix64::stream(opts.seed, feature, j as u64), rows))
        .collect();
    let column = |k: usize| draws.iter().map(|v| v[k]).collect::<Vec<f64>>();
    Some(NullDraws {
        metrics: vec![("psi", column(0)), ("wasserstein", column(1)), ("ks", column(2))],
        effective_rows: rows,
    })
}

/// A categorical reference as draw probabilities: its categories' counts, then one slot for
/// values the reference never had (Good–Turing, plus a profile's `other`).
struct CategoryModel {
    /// Reference counts per category (the unseen slot has 0).
    reference: Vec<f64>,
    /// Cumulative draw probabilities, the unseen slot last.
    cumulative: Vec<f64>,
}

impl CategoryModel {
    fn new(c: &Categories) -> CategoryModel {
        let n = c.n.max(1) as f64;
        let singletons = c.counts.values().filter(|&&k| k == 1).count() as f64;
        let good_turing = if c.exact { singletons / n } else { 0.0 };
        let mut reference: Vec<f64> = c.counts.values().map(|&k| k as f64).collect();
        reference.push(0.0);
        let unseen = c.other as f64 / n + good_turing;
        let seen_scale = (1.0 - good_turing) / n;
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = c
            .counts
            .values()
            .map(|&k| {
                acc += k as f64 * seen_scale;
                acc
            })
            .collect();
        cumulative.push(acc + unseen.max(0.0));
        let last = *cumulative.last().expect("one slot");
        cumulative.iter_mut().for_each(|p| *p /= last);
        CategoryModel { reference, cumulative }
    }

    /// One pseudo-batch: its (js, unseen) against the reference.
    fn draw(&self, rng: &mut SplitMix64, rows: u64) -> [f64; 2] {
        let mut counts = vec![0.0; self.cumulative.len()];
        for _ in 0..rows {
            let u = rng.next_f64();
            let k = self.cumulative.partition_point(|&p| p <= u).min(counts.len() - 1);
            counts[k] += 1.0;
        }
        let unseen = counts[counts.len() - 1] / rows as f64;
        [stats::js_distance_weights(&self.reference, &counts), unseen]
    }
}

fn categorical_null(c: &Categories, opts: &CalibrateOptions, feature: u64) -> Option<NullDraws> {
    if c.n == 0 {
        return None;
    }
    let rows = effective_rows(opts.batch_rows, c.n);
    let model = CategoryModel::new(c);
    let draws: Vec<[f64; 2]> = (0..opts.draws)
        .into_par_iter()
        .map(|j| model.draw(&mut SplitMix64::stream(opts.seed, feature, j as u64), rows))
        .collect();
    Some(NullDraws {
        metrics: vec![
            ("js", draws.iter().map(|v| v[0]).collect()),
            ("unseen", draws.iter().map(|v| v[1]).collect()),
        ],
        effective_rows: rows,
    })
}

/// SplitMix64 (Steele, Lea and Flood 2014; the seeding generator of the xoshiro family): a
/// published 64-bit generator whose output for a seed never changes, so calibrations and tests
/// are reproducible across versions and platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// A generator for one stream of a seed (feature, draw, …): the streams do not overlap in
    /// practice and do not depend on the order they are used in.
    pub fn stream(seed: u64, a: u64, b: u64) -> SplitMix64 {
        let mut s = SplitMix64::new(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mixed = s.next_u64() ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
        SplitMix64::new(mixed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) (53 bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0; Lemire's multiply-shift, bias below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal value (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_published_sequence() {
        // The reference implementation's first outputs for seed 1234567.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn grid_statistics_equal_the_stats_functions_on_the_same_points() {
        let values: Vec<f64> = (0..5000).map(|i| ((i * 37) % 101) as f64 * 0.5).collect();
        let d = Distribution::from_values(&values);
        let grid = Grid::new(&d, 4096);
        let mut rng = SplitMix64::new(9);
        let rows = 3000;
        let mut counts = vec![0u32; grid.values.len()];
        let mut batch = Vec::new();
        for _ in 0..rows {
            let run = grid.run_of[(rng.next_u64() >> (64 - grid.bits)) as usize] as usize;
            counts[run] += 1;
            batch.push(grid.values[run]);
        }
        let reference = Distribution::from_counts(
            &grid.values.iter().zip(&grid.slices).map(|(&x, &s)| (x, u64::from(s))).collect::<Vec<_>>(),
        );
        let cur = Distribution::from_values(&batch);
        let [psi, w, ks] = grid.statistics(&counts, rows);
        assert!((ks - stats::ks_statistic(&reference, &cur)).abs() < 1e-12);
        assert!((w - stats::wasserstein(&reference, &cur) / stats::spread(&d)).abs() < 1e-9);
        // PSI bins come from the true reference's deciles in both.
        let edges = stats::psi_edges(&d, PSI_BINS);
        let want = stats::psi_from_shares(
            &stats::bin_shares(&reference, &edges),
            &stats::bin_shares(&cur, &edges),
            PSI_EPS,
        );
        assert!((psi - want).abs() < 1e-12);
    }
}
