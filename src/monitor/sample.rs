//! Bounded-memory summaries of one column of a batch or of a reference: a numeric distribution
//! (exact values up to [`EXACT_LIMIT`], then the weighted points of a compaction sketch with its
//! stated rank error) and category counts (exact up to [`CATEGORY_LIMIT`] distinct values, the
//! rest counted as "other"). Both also come, approximately, from a split's `profile.json`.

use std::collections::BTreeMap;

use crate::table::profile::ColumnProfile;

/// Values kept exactly per column before the sketch takes over.
pub const EXACT_LIMIT: usize = 200_000;
/// Distinct categories counted exactly per column; beyond, new values count as `other`.
pub const CATEGORY_LIMIT: usize = 10_000;

/// Accumulates a numeric column (nulls and non-finite values are counted apart).
pub struct NumericAcc {
    // helper: exact Vec<f64> until EXACT_LIMIT, then crate::table::sketch::QuantileSketch.
}

impl NumericAcc {
    pub fn new() -> NumericAcc {
        todo!()
    }
    pub fn add(&mut self, x: f64) {
        let _ = x;
        todo!()
    }
    pub fn add_null(&mut self) {
        todo!()
    }
    /// Values seen so far (not nulls).
    pub fn count(&self) -> u64 {
        todo!()
    }
    pub fn finish(self) -> Distribution {
        todo!()
    }
}

impl Default for NumericAcc {
    fn default() -> Self {
        NumericAcc::new()
    }
}

/// A numeric distribution as sorted weighted points. Exact: every value once with weight 1.
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
    /// Exact distribution of `values` (tests, and small inputs).
    pub fn from_values(values: &[f64]) -> Distribution {
        let _ = values;
        todo!()
    }
    /// The approximate distribution a split's profile gives (min, p1..p99, max, histogram), with
    /// `rank_error` stating how far it can be from the data.
    pub fn from_profile(column: &ColumnProfile) -> Option<Distribution> {
        let _ = column;
        todo!()
    }
    /// Quantile q in [0, 1] (numpy `linear` when exact).
    pub fn quantile(&self, q: f64) -> f64 {
        let _ = q;
        todo!()
    }
    /// Weighted fraction of values ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let _ = x;
        todo!()
    }
    pub fn mean(&self) -> f64 {
        todo!()
    }
    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        todo!()
    }
    /// Number of distinct values (exact when `exact`, else of the points).
    pub fn distinct(&self) -> usize {
        todo!()
    }
}

/// Accumulates a categorical column (values as canonical text; nulls counted apart).
pub struct CategoryAcc {}

impl CategoryAcc {
    pub fn new() -> CategoryAcc {
        todo!()
    }
    pub fn add(&mut self, value: &str) {
        let _ = value;
        todo!()
    }
    pub fn add_null(&mut self) {
        todo!()
    }
    pub fn finish(self) -> Categories {
        todo!()
    }
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
    /// Number of (non-null) values.
    pub n: u64,
    pub nulls: u64,
    pub exact: bool,
}

impl Categories {
    pub fn from_counts(counts: BTreeMap<String, u64>) -> Categories {
        let _ = counts;
        todo!()
    }
    /// From a profile's top values (the rest as `other`; not exact unless top holds every value).
    pub fn from_profile(column: &ColumnProfile) -> Categories {
        let _ = column;
        todo!()
    }
}
