//! Bounded-memory summaries of one column of a batch or of a reference: a numeric distribution
//! (exact values up to [`EXACT_LIMIT`], then the weighted points of a compaction sketch with its
//! stated rank error) and category counts (exact up to [`CATEGORY_LIMIT`] distinct values, the
//! rest counted as "other"). Both also come, approximately, from a split's `profile.json`.

use std::collections::{BTreeMap, HashMap};

use crate::table::profile::ColumnProfile;
use crate::table::sketch::{hash64, QuantileSketch, SKETCH_K};

/// Values kept exactly per column before the sketch takes over.
pub const EXACT_LIMIT: usize = 200_000;
/// Distinct categories counted exactly per column; beyond, new values count as `other`.
pub const CATEGORY_LIMIT: usize = 10_000;

/// Points placed evenly inside each of the 100 percentile intervals of a profile: the profile
/// says only that 1% of the values lie in each, so the distribution built from it spreads that
/// 1% uniformly (its CDF is then within 1% of the data's, plus the profile's own error).
const POINTS_PER_PERCENTILE: usize = 10;

/// Accumulates a numeric column (nulls and non-finite values are counted apart).
///
/// Memory: at most [`EXACT_LIMIT`] values (1.6 MB), then the sketch (about `SKETCH_K` values per
/// level, a few levels).
pub struct NumericAcc {
    held: Vec<f64>,
    sketch: Option<QuantileSketch>,
    nulls: u64,
    min: f64,
    max: f64,
}

impl NumericAcc {
    pub fn new() -> NumericAcc {
        NumericAcc { held: Vec::new(), sketch: None, nulls: 0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }

    /// One value; NaN and ±∞ count as nulls (no distance or test is defined on them).
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.nulls += 1;
            return;
        }
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        match &mut self.sketch {
            Some(s) => s.add(x),
            None if self.held.len() < EXACT_LIMIT => self.held.push(x),
            None => {
                let mut s = QuantileSketch::new(SKETCH_K);
                for &v in &self.held {
                    s.add(v);
                }
                s.add(x);
                self.held = Vec::new();
                self.sketch = Some(s);
            }
        }
    }

    pub fn add_null(&mut self) {
        self.nulls += 1;
    }

    /// Values seen so far (not nulls).
    pub fn count(&self) -> u64 {
        match &self.sketch {
            Some(s) => s.count(),
            None => self.held.len() as u64,
        }
    }

    pub fn finish(self) -> Distribution {
        let mut d = match self.sketch {
            None => Distribution::from_finite(self.held),
            Some(s) => {
                let n = s.count();
                let points = s.weighted().into_iter().map(|(x, w)| (x, w as f64)).collect();
                Distribution {
                    points,
                    n,
                    nulls: 0,
                    exact: false,
                    rank_error: s.rank_error() as f64 / n as f64,
                    min: self.min,
                    max: self.max,
                }
            }
        };
        d.nulls = self.nulls;
        d
    }
}

impl Default for NumericAcc {
    fn default() -> Self {
        NumericAcc::new()
    }
}

/// A numeric distribution as sorted weighted points. Exact: every value kept, the weights whole
/// counts ([`Distribution::from_values`]: every value once with weight 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// (value, weight), sorted by value, values distinct or not (weights add up).
    pub points: Vec<(f64, f64)>,
    /// Number of (non-null) values it stands for.
    pub n: u64,
    pub nulls: u64,
    /// All values kept (no sketch, not from a profile).
    pub exact: bool,
    /// Bound on the rank error of any CDF value, as a fraction of n (0 when exact).
    pub rank_error: f64,
    pub min: f64,
    pub max: f64,
}

impl Distribution {
    /// Exact distribution of `values` (tests, and small inputs). Non-finite values count as
    /// nulls, as [`NumericAcc::add`] counts them.
    pub fn from_values(values: &[f64]) -> Distribution {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let nulls = (values.len() - finite.len()) as u64;
        let mut d = Distribution::from_finite(finite);
        d.nulls = nulls;
        d
    }

    /// Exact distribution of finite values, taking them over (no copy besides the points).
    fn from_finite(mut sorted: Vec<f64>) -> Distribution {
        sorted.sort_unstable_by(f64::total_cmp);
        let (min, max) = match (sorted.first(), sorted.last()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => (f64::NAN, f64::NAN),
        };
        Distribution {
            n: sorted.len() as u64,
            points: sorted.into_iter().map(|x| (x, 1.0)).collect(),
            nulls: 0,
            exact: true,
            rank_error: 0.0,
            min,
            max,
        }
    }

    /// Exact distribution of values given with their counts (any order; zero counts dropped).
    pub fn from_counts(counts: &[(f64, u64)]) -> Distribution {
        let mut points: Vec<(f64, f64)> =
            counts.iter().filter(|(x, c)| x.is_finite() && *c > 0).map(|&(x, c)| (x, c as f64)).collect();
        points.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let n = points.iter().map(|p| p.1 as u64).sum();
        let (min, max) = match (points.first(), points.last()) {
            (Some(a), Some(b)) => (a.0, b.0),
            _ => (f64::NAN, f64::NAN),
        };
        Distribution { points, n, nulls: 0, exact: true, rank_error: 0.0, min, max }
    }

    /// The approximate distribution a split's profile gives (min, p1..p99, max, histogram), with
    /// `rank_error` stating how far it can be from the data.
    ///
    /// Each of the 100 intervals between consecutive percentiles (min and max at the ends) holds
    /// 1% of the values, spread evenly over it; equal percentiles (ties) make a point mass. The
    /// CDF is then within 1% of the profile's percentiles, which are themselves within the
    /// profile's `rank_error` of the data: `rank_error` = 0.01 + that. The number of values is
    /// the histogram's total. None when the profile has no numeric part or no values.
    pub fn from_profile(column: &ColumnProfile) -> Option<Distribution> {
        let num = column.numeric.as_ref()?;
        let n: u64 = num.histogram.counts.iter().sum();
        if n == 0 || num.percentiles.len() != 99 || !num.min.is_finite() || !num.max.is_finite() {
            return None;
        }
        let mut knots = Vec::with_capacity(101);
        knots.push(num.min);
        knots.extend(num.percentiles.iter().map(|p| p.clamp(num.min, num.max)));
        knots.push(num.max);
        if knots.iter().any(|k| !k.is_finite()) {
            return None;
        }
        // Percentiles are monotone in theory; floating-point interpolation may not be.
        for i in 1..knots.len() {
            knots[i] = knots[i].max(knots[i - 1]);
        }
        let per = POINTS_PER_PERCENTILE;
        let w = n as f64 / (100 * per) as f64;
        let mut points = Vec::with_capacity(100 * per);
        for pair in knots.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            for j in 0..per {
                let t = (j as f64 + 0.5) / per as f64;
                points.push((a + (b - a) * t, w));
            }
        }
        Some(Distribution {
            points,
            n,
            nulls: column.nulls,
            exact: false,
            rank_error: 0.01 + num.rank_error.unwrap_or(0.0),
            min: num.min,
            max: num.max,
        })
    }

    /// Total weight of the points (= n for sketches and exact data).
    pub fn total_weight(&self) -> f64 {
        if self.unit_weights() {
            self.points.len() as f64
        } else {
            self.points.iter().map(|p| p.1).sum()
        }
    }

    /// Every value once with weight 1 (ranks are then indices).
    fn unit_weights(&self) -> bool {
        self.exact && self.points.len() as u64 == self.n
    }

    /// Running sums of the weights, point by point (the last one is [`Self::total_weight`]).
    pub fn cumulative_weights(&self) -> Vec<f64> {
        let mut acc = 0.0;
        self.points
            .iter()
            .map(|p| {
                acc += p.1;
                acc
            })
            .collect()
    }

    /// Quantile q in [0, 1] (numpy `linear` when exact): the value at fractional rank
    /// q·(W − 1) of the weighted values, W the total weight, interpolated linearly.
    /// NaN without values.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.points.is_empty() {
            return f64::NAN;
        }
        let q = q.clamp(0.0, 1.0);
        if self.unit_weights() {
            let n = self.points.len();
            let virt = (n - 1) as f64 * q;
            let lo = virt.floor();
            let hi = ((lo as usize) + 1).min(n - 1);
            return lerp(self.points[lo as usize].0, self.points[hi].0, virt - lo);
        }
        let cum = self.cumulative_weights();
        let total = *cum.last().unwrap_or(&0.0);
        let virt = (total - 1.0).max(0.0) * q;
        let lo = virt.floor();
        let a = self.value_at_rank(&cum, lo);
        let b = self.value_at_rank(&cum, (lo + 1.0).min((total - 1.0).max(0.0)));
        lerp(a, b, virt - lo)
    }

    /// The value at 0-based weighted rank `r` (the first point whose running weight passes r).
    fn value_at_rank(&self, cum: &[f64], r: f64) -> f64 {
        let i = cum.partition_point(|&c| c <= r).min(self.points.len() - 1);
        self.points[i].0
    }

    /// Weighted fraction of values ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let i = self.points.partition_point(|p| p.0 <= x);
        if self.unit_weights() {
            return if self.points.is_empty() { 0.0 } else { i as f64 / self.points.len() as f64 };
        }
        let total = self.total_weight();
        if total <= 0.0 {
            return 0.0;
        }
        self.points[..i].iter().map(|p| p.1).sum::<f64>() / total
    }

    /// Weighted mean (NaN without values).
    pub fn mean(&self) -> f64 {
        let total = self.total_weight();
        self.points.iter().map(|&(x, w)| x * w).sum::<f64>() / total
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        let total = self.total_weight();
        let mean = self.mean();
        let ss: f64 = self.points.iter().map(|&(x, w)| w * (x - mean) * (x - mean)).sum();
        (ss / total).sqrt()
    }

    /// Number of distinct values (exact when `exact`, else of the points).
    pub fn distinct(&self) -> usize {
        let mut count = 0;
        let mut last = None;
        for &(x, _) in &self.points {
            if last != Some(x) {
                count += 1;
                last = Some(x);
            }
        }
        count
    }

    /// Interquartile range Q3 − Q1.
    pub fn iqr(&self) -> f64 {
        self.quantile(0.75) - self.quantile(0.25)
    }
}

/// numpy's `_lerp`: exact at both ends.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// Accumulates a categorical column (values as canonical text; nulls counted apart).
///
/// Memory: at most [`CATEGORY_LIMIT`] distinct texts.
pub struct CategoryAcc {
    counts: HashMap<String, u64, TextHash>,
    other: u64,
    unseen_other: u64,
    nulls: u64,
    /// The reference's categories, when known completely.
    known: Option<std::collections::HashSet<String>>,
}

impl CategoryAcc {
    pub fn new() -> CategoryAcc {
        CategoryAcc {
            counts: HashMap::with_hasher(TextHash::new()),
            other: 0,
            unseen_other: 0,
            nulls: 0,
            known: None,
        }
    }

    /// An accumulator that knows every category of the reference: those are always counted
    /// exactly, and values past the limit are counted as unseen rather than as `other`.
    pub fn with_known(known: std::collections::HashSet<String>) -> CategoryAcc {
        CategoryAcc { known: Some(known), ..CategoryAcc::new() }
    }

    pub fn add(&mut self, value: &str) {
        if let Some(c) = self.counts.get_mut(value) {
            *c += 1;
        } else if self.counts.len() < CATEGORY_LIMIT || self.known.as_ref().is_some_and(|k| k.contains(value))
        {
            self.counts.insert(value.to_string(), 1);
        } else if self.known.is_some() {
            self.unseen_other += 1;
        } else {
            self.other += 1;
        }
    }

    pub fn add_null(&mut self) {
        self.nulls += 1;
    }

    pub fn finish(self) -> Categories {
        let n = self.counts.values().sum::<u64>() + self.other + self.unseen_other;
        Categories {
            counts: self.counts.into_iter().collect(),
            other: self.other,
            unseen_other: self.unseen_other,
            n,
            nulls: self.nulls,
            exact: self.other == 0,
        }
    }
}

/// Hashes category texts with xxHash3 under a seed drawn per accumulator: std's SipHash was a tenth
/// of a drift report's time, and a random seed keeps crafted production values from colliding.
#[derive(Clone, Copy)]
struct TextHash(u64);

impl TextHash {
    fn new() -> TextHash {
        use std::hash::BuildHasher;
        TextHash(std::collections::hash_map::RandomState::new().hash_one(0u64))
    }
}

impl std::hash::BuildHasher for TextHash {
    type Hasher = TextHasher;
    fn build_hasher(&self) -> TextHasher {
        TextHasher(self.0)
    }
}

struct TextHasher(u64);

impl std::hash::Hasher for TextHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash64(self.0, bytes);
    }
    // `str` ends its bytes with 0xff; the text alone already keys it.
    fn write_u8(&mut self, _: u8) {}
}

impl Default for CategoryAcc {
    fn default() -> Self {
        CategoryAcc::new()
    }
}

/// Category counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Categories {
    pub counts: BTreeMap<String, u64>,
    /// Values beyond CATEGORY_LIMIT distinct ones (or, from a profile, outside its top values).
    pub other: u64,
    /// Values beyond CATEGORY_LIMIT distinct ones that are known not to be categories of the
    /// reference (the accumulator was given the reference's categories): unseen, whatever their
    /// number. Merging such categories changes neither the Jensen–Shannon distance nor the unseen
    /// rate, since the reference has none of them.
    pub unseen_other: u64,
    /// Number of (non-null) values.
    pub n: u64,
    pub nulls: u64,
    pub exact: bool,
}

impl Categories {
    pub fn from_counts(counts: BTreeMap<String, u64>) -> Categories {
        let n = counts.values().sum();
        Categories { counts, other: 0, unseen_other: 0, n, nulls: 0, exact: true }
    }

    /// From a profile's top values (the rest as `other`; not exact unless top holds every value).
    ///
    /// A column profile does not state its number of values for a text column: the numeric
    /// histogram's total is used when there is one, else the top counts' sum (then `other` is 0
    /// and unknown). Prefer [`Categories::from_profile_rows`] with the table's row count.
    pub fn from_profile(column: &ColumnProfile) -> Categories {
        let top: u64 = column.top.iter().map(|t| t.count).sum();
        let n = match &column.numeric {
            Some(num) => num.histogram.counts.iter().sum::<u64>().max(top),
            None => top,
        };
        Categories::from_top(column, n)
    }

    /// From a profile's top values and the table's row count (`TableProfile::rows`): the values
    /// outside the top ones are `rows − nulls − Σ top` (`other`).
    pub fn from_profile_rows(column: &ColumnProfile, rows: u64) -> Categories {
        let top: u64 = column.top.iter().map(|t| t.count).sum();
        Categories::from_top(column, rows.saturating_sub(column.nulls).max(top))
    }

    fn from_top(column: &ColumnProfile, n: u64) -> Categories {
        let counts: BTreeMap<String, u64> = column.top.iter().map(|t| (t.value.clone(), t.count)).collect();
        let held: u64 = counts.values().sum();
        let other = n - held;
        let complete = column.top_exact
            && column.distinct.exact
            && column.distinct.count as usize == column.top.len()
            && other == 0;
        Categories { counts, other, unseen_other: 0, n, nulls: column.nulls, exact: complete }
    }

    /// Share of the non-null values in `category` (0 without values).
    pub fn share(&self, category: &str) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        self.counts.get(category).copied().unwrap_or(0) as f64 / self.n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_numpy_linear_and_the_cdf_counts_ties() {
        let d = Distribution::from_values(&[3.0, 1.0, 2.0, 2.0, f64::NAN, 10.0]);
        assert_eq!(d.n, 5);
        assert_eq!(d.nulls, 1);
        // numpy.quantile([1, 2, 2, 3, 10], [0.25, 0.5, 0.9]) = [2, 2, 7.2]
        assert_eq!(d.quantile(0.25), 2.0);
        assert_eq!(d.quantile(0.5), 2.0);
        assert!((d.quantile(0.9) - 7.2).abs() < 1e-12);
        assert_eq!(d.cdf(2.0), 0.6);
        assert_eq!(d.cdf(0.0), 0.0);
        assert_eq!(d.distinct(), 4);
        let w = Distribution::from_counts(&[(2.0, 2), (1.0, 1), (3.0, 1), (10.0, 1)]);
        assert_eq!(w.quantile(0.25), 2.0);
        assert!((w.quantile(0.9) - 7.2).abs() < 1e-12);
        assert_eq!(w.cdf(2.0), 0.6);
        assert!((w.mean() - d.mean()).abs() < 1e-12 && (w.std() - d.std()).abs() < 1e-12);
    }

    #[test]
    fn the_accumulator_switches_to_the_sketch_past_the_limit_with_a_stated_error() {
        let mut acc = NumericAcc::new();
        let n = EXACT_LIMIT as u64 + 50_000;
        for i in 0..n {
            acc.add(((i * 7919) % n) as f64);
        }
        acc.add(f64::INFINITY);
        acc.add_null();
        assert_eq!(acc.count(), n);
        let d = acc.finish();
        assert!(!d.exact && d.rank_error > 0.0 && d.rank_error < 0.01);
        assert_eq!(d.nulls, 2);
        assert_eq!(d.total_weight(), n as f64);
        assert!(d.points.len() < 100_000);
        let median = d.quantile(0.5);
        assert!((median / n as f64 - 0.5).abs() <= d.rank_error + 1e-6, "{median}");
    }

    fn text_profile(top: &[(&str, u64)], nulls: u64, distinct: u64) -> ColumnProfile {
        let top: Vec<serde_json::Value> =
            top.iter().map(|(v, c)| serde_json::json!({"value": v, "count": c})).collect();
        serde_json::from_value(serde_json::json!({
            "name": "c", "type": "string", "nulls": nulls,
            "distinct": {"count": distinct, "exact": true},
            "top": top, "top_exact": true,
        }))
        .expect("a column profile")
    }

    #[test]
    fn categories_from_a_profile_count_the_rest_as_other() {
        let column = text_profile(&[("a", 60), ("b", 30)], 5, 4);
        let c = Categories::from_profile_rows(&column, 105);
        assert_eq!((c.n, c.other, c.nulls, c.exact), (100, 10, 5, false));
        let all = Categories::from_profile_rows(&text_profile(&[("a", 60), ("b", 40)], 0, 2), 100);
        assert_eq!((all.other, all.exact), (0, true));
        let no_rows = Categories::from_profile(&column);
        assert_eq!((no_rows.n, no_rows.other), (90, 0));
    }

    #[test]
    fn categories_beyond_the_limit_count_as_other() {
        let mut acc = CategoryAcc::new();
        for i in 0..CATEGORY_LIMIT + 5 {
            acc.add(&format!("v{i}"));
        }
        acc.add("v0");
        acc.add_null();
        let c = acc.finish();
        assert_eq!((c.n, c.other, c.nulls, c.exact), (CATEGORY_LIMIT as u64 + 6, 5, 1, false));
        assert_eq!(c.counts["v0"], 2);
    }
}
