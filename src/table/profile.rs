//! Column profiles: per column of a table (or of one split of it) the type, null count, distinct
//! count, min/max/mean/std, percentiles, the most frequent values and a histogram, accumulated
//! batch by batch in bounded memory. Monitoring uses them as its drift reference, so every
//! estimate states its error.
//!
//! Deterministic: the same rows in the same order give the same bytes, whatever the batch sizes
//! (each column is an independent left-to-right fold of its cells). Decisions, per column:
//! - Exact while it can be: up to [`EXACT_LIMIT`] (100,000) non-null values are held (as `f64`)
//!   for percentiles and the histogram, and up to 100,000 distinct values are counted by their
//!   64-bit xxHash3 key. Beyond, the values go to a deterministic compaction sketch (rank error
//!   bound stated in `percentile_error` and `rank_error`), the distinct count to a HyperLogLog
//!   (relative standard error 0.81%), the top values to a SpaceSaving summary of 1,024 counters
//!   (`top_exact: false`, counts are upper bounds). A numeric column of at most 4,096 distinct
//!   values (ages, years, ratings) keeps each value with its count instead of holding values,
//!   so its percentiles and histogram stay exact however many rows it has.
//! - Memory at most about 2.8 MiB a column while exact (2 MiB of counts at 100,000 distinct
//!   values, 0.8 MiB of held values, 0.1 MiB of tallied numbers), and about 0.1 MiB plus 32 KiB
//!   per sketch level (0.4 MiB at a million values) once estimating; text is kept only for the top candidates (50, or 1,024
//!   when estimating). Twenty columns in three splits: under 170 MiB in the worst case, where
//!   every column sits at the 100,000 edge at once.
//! - Distinct values are told apart by canonical text ([`super::canonical_cell`]): `"3"` and
//!   `3` are one value, `"3.50"` and `"3.5"` two. A non-integral `Float` cell is keyed by its bits
//!   (formatting each float is too slow), so in a JSONL column mixing them the string `"3.5"` and
//!   the number `3.5` count as two values.
//! - Non-finite `Float` cells (NaN, ±inf) count as nulls, as pandas does.
//! - `std` is the population standard deviation (ddof = 0, numpy's default), by Welford's method.
//! - Percentiles use numpy's default (`linear`) method; the histogram is `numpy.histogram(values,
//!   bins=20)` (a constant column gets edges value − 0.5 .. value + 0.5, as numpy does).
//! - Booleans get numeric statistics as 0/1 (the mean is the rate of `true`); timestamps as
//!   microseconds since the epoch.
//! - Top values: most frequent first, ties by value (booleans, then numbers by value, then
//!   timestamps, then text bytewise, then nested values).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::parquet::Dictionary;
use super::sketch::{
    hash64, histogram, number_key, number_of_key, percentiles, ExactCounts, Hll, QuantileSketch, SpaceSaving,
    HLL_RELATIVE_ERROR, SKETCH_K,
};
use super::values::{value_of, Value};
use super::{canonical_cell, int_text, uint_text, Batch, Cell, Column};

/// Values held exactly per column (for percentiles and histograms), and distinct values counted
/// exactly.
pub const EXACT_LIMIT: usize = 100_000;
/// Distinct numbers of a column tallied with their counts (percentiles and histogram exact from
/// the tally, however many values).
const TALLIED_VALUES: usize = 4096;
/// Values listed in `top`.
pub const TOP_VALUES: usize = 50;
/// Longest text (bytes) of a value listed in `top`; longer ones are cut and end with `…`.
pub const TOP_TEXT_MAX: usize = 1000;
/// Counters of the heavy-hitter summary once distinct values pass [`EXACT_LIMIT`].
const HEAVY_COUNTERS: usize = 1024;
/// How many cells are read before they are counted (enough to cover a memory access).
const AHEAD: usize = 32;

/// The profile of one table (or of one split of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

/// One column's statistics. `type` is `int`, `float`, `bool`, `string`, `timestamp`, `nested`
/// or `null` (every value null); text cells that all parse as numbers profile as numbers (as
/// `true`/`false`, any case: `bool`; as ISO-8601 dates or date-times: `timestamp`). Cells of more
/// than one of those kinds make a `string` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub nulls: u64,
    pub distinct: Distinct,
    /// Numbers (and timestamps, as microseconds; booleans as 0/1): min, max, mean, std,
    /// percentiles, histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<Numeric>,
    /// The 50 most frequent values (canonical text) with their counts, most frequent first, ties
    /// by value.
    pub top: Vec<TopValue>,
    /// Whether `top`'s counts are exact (else they are SpaceSaving upper bounds).
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

/// Floats that are not finite (possible only on overflow) are written as `null` and read back as
/// NaN, so the file stays JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Numeric {
    #[serde(with = "finite")]
    pub min: f64,
    #[serde(with = "finite")]
    pub max: f64,
    #[serde(with = "finite")]
    pub mean: f64,
    /// Population standard deviation (ddof = 0).
    #[serde(with = "finite")]
    pub std: f64,
    /// p1..p99 (99 values), numpy's `linear` method.
    #[serde(with = "finite_vec")]
    pub percentiles: Vec<f64>,
    /// None: exact; else the sketch's stated error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_error: Option<String>,
    /// When estimated: the bound on the rank error of each percentile and of each histogram
    /// count, as a fraction of the values (0.002 = 0.2% of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_error: Option<f64>,
    pub histogram: Histogram,
}

/// 20 bins on fixed edges (21 values, equally spaced from min to max; the last bin holds max).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(with = "finite_vec")]
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
    rows: u64,
    columns: Vec<ColumnAcc>,
    /// The kept rows of the current batch (reused).
    kept: Vec<usize>,
}

impl Profiler {
    pub fn new(columns: &[Column]) -> Profiler {
        Profiler {
            rows: 0,
            columns: columns.iter().map(|c| ColumnAcc::new(&c.name, 0)).collect(),
            kept: Vec::new(),
        }
    }

    /// Add the rows of `batch` whose `keep` is true. A reader may learn columns late (JSONL):
    /// `columns` is the reader's current list, a prefix-extension of the one before; a new
    /// column counts as null in every row seen before it.
    pub fn observe(&mut self, columns: &[Column], batch: &Batch, keep: &[bool]) {
        for c in columns.iter().skip(self.columns.len()) {
            self.columns.push(ColumnAcc::new(&c.name, self.rows));
        }
        self.kept.clear();
        self.kept.extend((0..batch.len()).filter(|&r| keep.get(r).copied().unwrap_or(false)));
        // Columns are independent and each is fed in row order: in parallel, with the same result.
        let kept = &self.kept;
        self.columns.par_iter_mut().enumerate().for_each(|(col, acc)| {
            if let Some(dict) = batch.dictionary(col) {
                if acc.count_dictionary(&dict, kept) {
                    return;
                }
            }
            // Cells are read and keyed [`AHEAD`] at a time, then counted in the same order: the
            // reads fetch the count slots into the cache meanwhile, where a column with many
            // distinct values would otherwise wait for memory at every cell.
            let mut ahead: Vec<(u64, ValRef<'_>)> = Vec::with_capacity(AHEAD);
            batch.for_each_cell(col, kept, |cell| {
                if let Some(read) = acc.read(cell) {
                    ahead.push(read);
                    if ahead.len() == AHEAD {
                        ahead.drain(..).for_each(|(key, v)| acc.count(key, v));
                    }
                }
            });
            ahead.drain(..).for_each(|(key, v)| acc.count(key, v));
            acc.count_pending();
        });
        self.rows += self.kept.len() as u64;
    }

    /// The profile. Columns finish in parallel (sorting each column's held values is most of it).
    pub fn finish(self) -> TableProfile {
        TableProfile {
            rows: self.rows,
            columns: self.columns.into_par_iter().map(ColumnAcc::finish).collect(),
        }
    }
}

/// The value classes, in the order ties between equally frequent values are broken.
const CLASS_BOOL: u8 = 0;
const CLASS_NUMBER: u8 = 1;
const CLASS_TIME: u8 = 2;
const CLASS_TEXT: u8 = 3;
const CLASS_NESTED: u8 = 4;

/// How a held value is stored: text cells keep their text, typed cells their bits (their
/// canonical text is made only for the final list).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Repr {
    #[default]
    Text,
    Int(i64),
    /// Above `i64::MAX` only, as [`Cell::UInt`].
    UInt(u64),
    Float(f64),
    Bool(bool),
    Time(i64),
}

/// A value of the top list (or a candidate for it).
#[derive(Debug, Clone, Default)]
struct TopVal {
    class: u8,
    num: f64,
    repr: Repr,
    text: String,
}

/// A borrowed [`TopVal`], for comparing a cell with the list without allocating.
#[derive(Clone, Copy)]
struct ValRef<'a> {
    class: u8,
    num: f64,
    repr: Repr,
    text: &'a str,
}

impl TopVal {
    fn as_ref(&self) -> ValRef<'_> {
        ValRef { class: self.class, num: self.num, repr: self.repr, text: &self.text }
    }

    fn set(&mut self, v: ValRef<'_>) {
        self.class = v.class;
        self.num = v.num;
        self.repr = v.repr;
        self.text.clear();
        self.text.push_str(v.text);
    }

    fn from_ref(v: ValRef<'_>) -> TopVal {
        let mut t = TopVal::default();
        t.set(v);
        t
    }
}

impl ValRef<'_> {
    fn canonical(&self, out: &mut Vec<u8>) {
        out.clear();
        match self.repr {
            Repr::Text => out.extend_from_slice(self.text.as_bytes()),
            Repr::Int(i) => canonical_cell(Cell::Int(i), out),
            Repr::UInt(u) => canonical_cell(Cell::UInt(u), out),
            Repr::Float(f) => canonical_cell(Cell::Float(f), out),
            Repr::Bool(b) => canonical_cell(Cell::Bool(b), out),
            Repr::Time(t) => canonical_cell(Cell::Timestamp(t), out),
        }
    }

    /// The value as listed in `top`: its canonical text, cut to [`TOP_TEXT_MAX`] bytes (at a
    /// character boundary, then `…`) so that a huge field does not make `profile.json` (a plain
    /// git blob in every clean and split commit) as large as the field.
    fn text_value(&self) -> String {
        let mut out = Vec::new();
        self.canonical(&mut out);
        let mut text = String::from_utf8_lossy(&out).into_owned();
        if text.len() > TOP_TEXT_MAX {
            let mut at = TOP_TEXT_MAX;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
            text.push('…');
        }
        text
    }

    /// The order of values with equal counts.
    fn cmp(&self, other: &ValRef<'_>) -> Ordering {
        let by_class = self.class.cmp(&other.class);
        if by_class != Ordering::Equal {
            return by_class;
        }
        if self.class <= CLASS_TIME {
            let by_num = self.num.total_cmp(&other.num);
            if by_num != Ordering::Equal {
                return by_num;
            }
        }
        if let (Repr::Text, Repr::Text) = (self.repr, other.repr) {
            return self.text.as_bytes().cmp(other.text.as_bytes());
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.canonical(&mut a);
        other.canonical(&mut b);
        a.cmp(&b)
    }
}

/// One value of the exact top list.
struct TopEntry {
    key: u64,
    /// Its slot in the exact counts.
    slot: usize,
    count: u64,
    value: TopVal,
}

/// Distinct values and their counts.
enum Freq {
    /// Exact counts of every value, and the exact top list kept up to date as counts grow (a
    /// count only grows, so the list changes by at most one entry per value seen).
    Exact {
        counts: ExactCounts,
        top: TopHeap,
    },
    Estimated {
        hll: Hll,
        heavy: Box<SpaceSaving<TopVal>>,
    },
}

/// Numeric statistics of a column whose values are all of one numeric family.
struct NumAcc {
    n: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
    /// Each distinct value's count, while there are at most [`TALLIED_VALUES`] (keyed by
    /// [`number_key`]): the percentiles and histogram are then exact whatever the number of
    /// values. None once more were seen; the values went to `held` or `sketch`.
    tally: Option<ExactCounts>,
    held: Vec<f64>,
    sketch: Option<QuantileSketch>,
}

impl NumAcc {
    fn new() -> NumAcc {
        NumAcc {
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
            tally: Some(ExactCounts::new(TALLIED_VALUES)),
            held: Vec::new(),
            sketch: None,
        }
    }

    /// The tallied values and their counts, sorted by value.
    fn tallied(tally: &ExactCounts) -> Vec<(f64, u64)> {
        let mut values: Vec<(f64, u64)> =
            tally.iter().map(|(k, c, _)| (number_of_key(k), u64::from(c))).collect();
        values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        values
    }

    fn add(&mut self, x: f64) {
        self.n += 1;
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        if let Some(tally) = &mut self.tally {
            if tally.add(number_key(x)).is_some() {
                return;
            }
            // One value too many: the ones before it go where they would have gone one by one
            // (held while there are at most EXACT_LIMIT, else the sketch, in value order).
            let before = Self::tallied(tally);
            self.tally = None;
            let mut sketch = (self.n - 1 > EXACT_LIMIT as u64).then(|| QuantileSketch::new(SKETCH_K));
            for (v, c) in before {
                for _ in 0..c {
                    match &mut sketch {
                        Some(s) => s.add(v),
                        None => self.held.push(v),
                    }
                }
            }
            self.sketch = sketch;
        }
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

    fn finish(mut self) -> Option<Numeric> {
        if self.n == 0 {
            return None;
        }
        let (weighted, exact, error) = match (self.tally, self.sketch) {
            (Some(tally), _) => (Self::tallied(&tally), true, None),
            (None, Some(s)) => {
                let e = s.rank_error();
                let n = s.count();
                (s.weighted(), false, Some((e, n)))
            }
            (None, None) => {
                self.held.sort_unstable_by(f64::total_cmp);
                (self.held.iter().map(|&x| (x, 1)).collect::<Vec<_>>(), true, None)
            }
        };
        let (edges, counts) = histogram(weighted.iter().copied(), self.min, self.max);
        Some(Numeric {
            min: self.min,
            max: self.max,
            mean: self.mean,
            std: (self.m2 / self.n as f64).sqrt(),
            percentiles: percentiles(&weighted),
            percentile_error: error.map(|(e, n)| {
                format!(
                    "rank error at most {e} of {n} values ({:.3}%): deterministic compaction sketch, k = {SKETCH_K}",
                    100.0 * e as f64 / n as f64
                )
            }),
            rank_error: error.map(|(e, n)| e as f64 / n as f64),
            histogram: Histogram { edges, counts, exact },
        })
    }
}

/// Which kinds of value a column holds.
#[derive(Default)]
struct Kinds {
    int: u64,
    float: u64,
    bool: u64,
    time: u64,
    text: u64,
    nested: u64,
}

impl Kinds {
    /// Non-null values seen.
    fn total(&self) -> u64 {
        self.int + self.float + self.bool + self.time + self.text + self.nested
    }
}

struct ColumnAcc {
    name: String,
    nulls: u64,
    kinds: Kinds,
    /// The numeric family (number, bool, time) of the first value; None before any.
    family: Option<u8>,
    /// None once the column is not numeric (text seen, or two families).
    num: Option<NumAcc>,
    freq: Freq,
    /// Scratch for integer keys.
    digits: [u8; 24],
    /// Scratch for [`ColumnAcc::count_dictionary`]: rows per dictionary value.
    per_value: Vec<u32>,
    /// Typed numbers read but not yet counted (see [`Pending`]).
    pending: Pending,
}

impl ColumnAcc {
    fn new(name: &str, nulls: u64) -> ColumnAcc {
        ColumnAcc {
            name: name.to_string(),
            nulls,
            kinds: Kinds::default(),
            family: None,
            num: Some(NumAcc::new()),
            freq: Freq::Exact { counts: ExactCounts::new(EXACT_LIMIT), top: TopHeap::default() },
            digits: [0; 24],
            per_value: Vec::new(),
            pending: Pending::default(),
        }
    }

    /// Add the `kept` rows of a dictionary column by counting each dictionary value once, with
    /// the same result as adding its cells one by one. Only done where that sameness is plain:
    /// while distinct values are counted exactly and stay so through this batch (the exact counts
    /// and top list are then the same whatever the order of the additions), and when every value
    /// used is text (no numeric statistics). Returns false, having changed nothing, otherwise.
    fn count_dictionary(&mut self, dict: &Dictionary<'_>, kept: &[usize]) -> bool {
        // Pending numbers are counted at the end of every batch, so none wait here.
        debug_assert!(self.pending.is_empty());
        let Freq::Exact { counts, top } = &mut self.freq else {
            return false;
        };
        // A table for the dictionary's values must be worth it, and no count may pass u32.
        let seen = self.kinds.total() + kept.len() as u64;
        if dict.len() > kept.len().max(4096) || seen > u64::from(u32::MAX) {
            return false;
        }
        self.per_value.clear();
        self.per_value.resize(dict.len(), 0);
        let mut nulls = 0u64;
        for &row in kept {
            match dict.index(row) {
                Some(i) => self.per_value[i] += 1,
                None => nulls += 1,
            }
        }
        let used = self.per_value.iter().filter(|&&n| n > 0).count();
        if counts.len() + used > EXACT_LIMIT {
            return false;
        }
        let dates = self.kinds.text == 0 && self.kinds.nested == 0;
        let all_text = self.per_value.iter().enumerate().filter(|(_, &n)| n > 0).all(|(i, _)| {
            let cell = dict.value(i);
            matches!(cell, Cell::Text(_)) && matches!(value_of(cell, dates), Value::Text(_))
        });
        if !all_text {
            return false;
        }
        self.nulls += nulls;
        for (i, &n) in self.per_value.iter().enumerate().filter(|(_, &n)| n > 0) {
            let Cell::Text(text) = dict.value(i) else { continue };
            self.kinds.text += u64::from(n);
            self.num = None;
            let key = hash64(0, text.as_bytes());
            if let Some((c, slot)) = counts.add_n(key, n) {
                let v = ValRef { class: CLASS_TEXT, num: 0.0, repr: Repr::Text, text };
                top.update(counts, key, slot, u64::from(c), v);
            }
        }
        true
    }

    /// The part of adding a cell that does not depend on the counts: the null count, the value
    /// kinds, the numeric statistics, and the value's key, whose count slot is fetched into the
    /// cache. The value and its key are returned for [`ColumnAcc::count`], which must then be
    /// called in the same order as this.
    #[inline]
    fn read<'a>(&mut self, cell: Cell<'a>) -> Option<(u64, ValRef<'a>)> {
        // Dates are worth trying only while no other text has been seen.
        let value = value_of(cell, self.kinds.text == 0 && self.kinds.nested == 0);
        let text = match cell {
            Cell::Text(s) | Cell::Nested(s) => s,
            _ => "",
        };
        let (class, num, repr) = match value {
            Value::Null => {
                self.nulls += 1;
                return None;
            }
            Value::Float(f) if !f.is_finite() => {
                self.nulls += 1;
                return None;
            }
            Value::Int(i) => {
                self.kinds.int += 1;
                (CLASS_NUMBER, i as f64, if text.is_empty() { Repr::Int(i) } else { Repr::Text })
            }
            Value::UInt(u) => {
                self.kinds.int += 1;
                (CLASS_NUMBER, u as f64, if text.is_empty() { Repr::UInt(u) } else { Repr::Text })
            }
            Value::Float(f) => {
                self.kinds.float += 1;
                (CLASS_NUMBER, f, if text.is_empty() { Repr::Float(f) } else { Repr::Text })
            }
            Value::Bool(b) => {
                self.kinds.bool += 1;
                (CLASS_BOOL, f64::from(u8::from(b)), if text.is_empty() { Repr::Bool(b) } else { Repr::Text })
            }
            Value::Timestamp(t) => {
                self.kinds.time += 1;
                (CLASS_TIME, t as f64, if text.is_empty() { Repr::Time(t) } else { Repr::Text })
            }
            Value::Text(_) => {
                self.kinds.text += 1;
                (CLASS_TEXT, 0.0, Repr::Text)
            }
            Value::Nested(_) => {
                self.kinds.nested += 1;
                (CLASS_NESTED, 0.0, Repr::Text)
            }
        };
        if class <= CLASS_TIME {
            match self.family {
                None => self.family = Some(class),
                Some(f) if f != class => self.num = None,
                Some(_) => {}
            }
            if let Some(n) = &mut self.num {
                n.add(num);
            }
        } else {
            self.num = None;
        }
        if let Freq::Exact { counts, .. } = &self.freq {
            // (Below u32::MAX values no count can overflow, which would end exact counting.)
            let few = counts.len() <= PENDING_DISTINCT && self.kinds.total() < u64::from(u32::MAX);
            if few && self.pending.add(repr) {
                return None;
            }
        }
        let key = key_of(repr, text, &mut self.digits);
        if let Freq::Exact { counts, .. } = &self.freq {
            counts.prefetch(key);
        }
        Some((key, ValRef { class, num, repr, text }))
    }

    /// Count the pending numbers (before any other count, and at the end of each batch). The
    /// result is the one of counting them where they were read: they are added while distinct
    /// values are counted exactly, which the pending ones cannot end (the column had at most
    /// [`PENDING_DISTINCT`] of them), and exact counts and the top list do not depend on the order
    /// of additions.
    fn count_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Freq::Exact { counts, top } = &mut self.freq else {
            unreachable!("numbers are pending only while counted exactly");
        };
        for (repr, n) in self.pending.drain() {
            let key = key_of(repr, "", &mut self.digits);
            let (class, num) = match repr {
                Repr::Float(f) => (CLASS_NUMBER, f),
                Repr::Int(i) => (CLASS_NUMBER, i as f64),
                _ => unreachable!("only numbers are pending"),
            };
            if let Some((c, slot)) = counts.add_n(key, n) {
                top.update(counts, key, slot, u64::from(c), ValRef { class, num, repr, text: "" });
            }
        }
    }

    fn count(&mut self, key: u64, v: ValRef<'_>) {
        self.count_pending();
        if let Freq::Exact { counts, top } = &mut self.freq {
            if let Some((c, slot)) = counts.add(key) {
                top.update(counts, key, slot, u64::from(c), v);
                return;
            }
            let switched = estimated(counts, top);
            self.freq = switched;
        }
        if let Freq::Estimated { hll, heavy } = &mut self.freq {
            hll.add(key);
            heavy.add(key, |t| t.set(v));
        }
    }

    fn finish(self) -> ColumnProfile {
        let k = &self.kinds;
        let families = [k.int + k.float, k.bool, k.time, k.text, k.nested].iter().filter(|&&n| n > 0).count();
        let kind = if families == 0 {
            "null"
        } else if families > 1 || k.text > 0 {
            "string"
        } else if k.nested > 0 {
            "nested"
        } else if k.bool > 0 {
            "bool"
        } else if k.time > 0 {
            "timestamp"
        } else if k.float > 0 {
            "float"
        } else {
            "int"
        };
        let numeric = if families == 1 { self.num.and_then(NumAcc::finish) } else { None };
        let (distinct, top, top_exact) = match self.freq {
            Freq::Exact { counts, top } => {
                let mut top = top.entries;
                top.sort_by(|a, b| {
                    b.count.cmp(&a.count).then_with(|| a.value.as_ref().cmp(&b.value.as_ref()))
                });
                let top =
                    top.iter().map(|e| TopValue { value: e.value.as_ref().text_value(), count: e.count });
                (
                    Distinct { count: counts.len() as u64, exact: true, relative_error: None },
                    top.collect(),
                    true,
                )
            }
            Freq::Estimated { hll, heavy } => {
                let mut counters = heavy.into_counters();
                counters.sort_by(|a, b| {
                    b.count.cmp(&a.count).then_with(|| a.value.as_ref().cmp(&b.value.as_ref()))
                });
                let top = counters
                    .iter()
                    .take(TOP_VALUES)
                    .map(|c| TopValue { value: c.value.as_ref().text_value(), count: c.count });
                // More than EXACT_LIMIT values were seen, whatever the estimate says.
                let count = hll.estimate().max(EXACT_LIMIT as u64 + 1);
                (
                    Distinct { count, exact: false, relative_error: Some(HLL_RELATIVE_ERROR) },
                    top.collect(),
                    false,
                )
            }
        };
        ColumnProfile {
            name: self.name,
            kind: kind.to_string(),
            nulls: self.nulls,
            distinct,
            numeric,
            top,
            top_exact,
        }
    }
}

/// The 64-bit key of a value: xxHash3 of its canonical text (of its bits for a non-integral
/// float or a typed timestamp).
fn key_of(repr: Repr, text: &str, digits: &mut [u8; 24]) -> u64 {
    match repr {
        Repr::Text => hash64(0, text.as_bytes()),
        Repr::Int(i) => hash64(0, int_text(i, digits)),
        Repr::UInt(u) => hash64(0, uint_text(false, u, digits)),
        Repr::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => hash64(0, int_text(f as i64, digits)),
        Repr::Float(f) => hash64(1, &f.to_bits().to_le_bytes()),
        Repr::Bool(b) => hash64(0, if b { b"true" } else { b"false" }),
        Repr::Time(t) => hash64(2, &t.to_le_bytes()),
    }
}

/// A column counts its typed numbers (Parquet's, JSON's) in a small table first while it has
/// had at most this many distinct values: a column of few values (ages, years, counts) then
/// keys and counts each value once per batch instead of once per row.
const PENDING_DISTINCT: usize = 2048;
/// Distinct numbers pending at most (then they are counted, and pending starts again).
const PENDING_CAP: usize = 1024;

/// Typed numbers read and not yet counted, with how many times each was read: integers (and
/// integral floats, which are the same values) by value, other floats by their bits. Open
/// addressing in [`PENDING_CAP`] × 2 slots of 16 bytes (32 KiB, in the first-level cache).
struct Pending {
    slots: Vec<PendingSlot>,
    /// Indices of the used slots, in first-read order.
    used: Vec<u32>,
}

#[derive(Clone, Copy, Default)]
struct PendingSlot {
    value: u64,
    count: u32,
    /// 0: empty, 1: an integer, 2: a non-integral float's bits.
    kind: u8,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending { slots: Vec::new(), used: Vec::with_capacity(PENDING_CAP) }
    }
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.used.is_empty()
    }

    /// Hold one more of `repr` if it is a number and there is room for it; false otherwise.
    #[inline]
    fn add(&mut self, repr: Repr) -> bool {
        let (kind, value) = match repr {
            Repr::Int(i) => (1u8, i as u64),
            Repr::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (1, f as i64 as u64),
            Repr::Float(f) => (2, f.to_bits()),
            _ => return false,
        };
        if self.slots.is_empty() {
            self.slots = vec![PendingSlot::default(); PENDING_CAP * 2];
        }
        let mask = self.slots.len() - 1;
        let mut i = ((value ^ u64::from(kind)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.kind == kind && slot.value == value && slot.count < u32::MAX {
                slot.count += 1;
                return true;
            }
            if slot.kind == 0 {
                if self.used.len() >= PENDING_CAP {
                    return false;
                }
                *slot = PendingSlot { value, count: 1, kind };
                self.used.push(i as u32);
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// Every pending number (as the value it stands for) with its count, emptying the table.
    fn drain(&mut self) -> impl Iterator<Item = (Repr, u32)> + '_ {
        let slots = &mut self.slots;
        self.used.drain(..).map(move |i| {
            let s = std::mem::take(&mut slots[i as usize]);
            let repr =
                if s.kind == 1 { Repr::Int(s.value as i64) } else { Repr::Float(f64::from_bits(s.value)) };
            (repr, s.count)
        })
    }
}

/// The exact top list: the first [`TOP_VALUES`] values by (count desc, value asc). Until
/// [`TOP_VALUES`] distinct values are seen it holds all of them, in no order (a column of few
/// values never pays for ordering); from then on it is a binary heap with the last of them at the
/// root. Each entry's slot in the exact counts is tagged with its position + 1, so whether a
/// value is in the list costs no search. Counts only grow, so after a value's count grows the
/// list changes by at most that value.
#[derive(Default)]
struct TopHeap {
    entries: Vec<TopEntry>,
    /// The counts' growth generation the entries' slots belong to.
    grows: u32,
}

impl TopHeap {
    /// Whether `a` ranks after `b` in the list.
    fn worse(a: &TopEntry, b: &TopEntry) -> bool {
        a.count < b.count
            || (a.count == b.count && a.value.as_ref().cmp(&b.value.as_ref()) == Ordering::Greater)
    }

    /// The value `v` (key `key`, at `slot` of `counts`) has reached count `c`.
    fn update(&mut self, counts: &mut ExactCounts, key: u64, slot: usize, c: u64, v: ValRef<'_>) {
        if self.grows != counts.grows() {
            // The table grew: slots moved (with their tags).
            self.grows = counts.grows();
            for e in &mut self.entries {
                e.slot = counts.slot_of(e.key).unwrap_or(0);
            }
        }
        let full = self.entries.len() >= TOP_VALUES;
        if full && c < self.entries[0].count {
            return;
        }
        let tag = counts.tag(slot);
        if tag != 0 {
            let i = usize::from(tag) - 1;
            self.entries[i].count = c;
            // Until the list is full it holds every value seen, in no order.
            if full {
                self.sift_down(counts, i);
            }
            return;
        }
        if !full {
            self.entries.push(TopEntry { key, slot, count: c, value: TopVal::from_ref(v) });
            let i = self.entries.len() - 1;
            counts.set_tag(slot, tag_of(i));
            if self.entries.len() == TOP_VALUES {
                // Full: from now on a heap (Floyd's construction).
                for i in (0..TOP_VALUES / 2).rev() {
                    self.sift_down(counts, i);
                }
            }
            return;
        }
        let root = &mut self.entries[0];
        if c == root.count && v.cmp(&root.value.as_ref()) != Ordering::Less {
            return;
        }
        counts.set_tag(root.slot, 0);
        root.key = key;
        root.slot = slot;
        root.count = c;
        root.value.set(v);
        counts.set_tag(slot, tag_of(0));
        self.sift_down(counts, 0);
    }

    fn sift_down(&mut self, counts: &mut ExactCounts, mut i: usize) {
        let n = self.entries.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && Self::worse(&self.entries[l], &self.entries[m]) {
                m = l;
            }
            if r < n && Self::worse(&self.entries[r], &self.entries[m]) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(counts, i, m);
            i = m;
        }
    }

    fn swap(&mut self, counts: &mut ExactCounts, a: usize, b: usize) {
        self.entries.swap(a, b);
        counts.set_tag(self.entries[a].slot, tag_of(a));
        counts.set_tag(self.entries[b].slot, tag_of(b));
    }
}

/// The tag of heap position `i` (below [`TOP_VALUES`], so it fits).
fn tag_of(i: usize) -> u8 {
    u8::try_from(i + 1).unwrap_or(u8::MAX)
}

/// Switch a column from exact counts to estimates: every key seen goes into the HyperLogLog; the
/// exact top list seeds the heavy-hitter summary with its exact counts. A value outside that list
/// has been seen at most `floor` times (the largest count outside it), so a value entering the
/// summary later starts from `floor` (an upper bound, as SpaceSaving's counts are).
fn estimated(counts: &ExactCounts, top: &mut TopHeap) -> Freq {
    let mut hll = Hll::new();
    let mut floor = 0u64;
    for (k, c, tag) in counts.iter() {
        hll.add(k);
        if tag == 0 {
            floor = floor.max(u64::from(c));
        }
    }
    let mut heavy = SpaceSaving::with_floor(HEAVY_COUNTERS, floor);
    // In list order, not the heap's: the summary's ties must not depend on the order in which
    // the counts grew (a dictionary column adds each value's rows at once).
    top.entries.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.as_ref().cmp(&b.value.as_ref())));
    for e in top.entries.drain(..) {
        heavy.seed(e.key, e.count, e.value);
    }
    Freq::Estimated { hll, heavy: Box::new(heavy) }
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
    /// The profile type before and after, when it changed.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_rate: Option<(f64, f64)>,
    /// Top values whose share changed by at least one percentage point: value → (before, after) share.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub top: BTreeMap<String, (f64, f64)>,
}

/// Compare two profiles of the same table. Columns are matched by name; a column is `changed`
/// when its type, mean or null rate differs, or a top value's share of the rows moved by at least
/// one percentage point. A value missing from one side's top list counts as share 0 there only
/// when that list is complete (it holds every distinct value); otherwise it is not compared.
/// Columns come in the order of `after`, then the removed ones in the order of `before`.
pub fn diff(before: &TableProfile, after: &TableProfile) -> ProfileDiff {
    let mut columns = Vec::new();
    for a in &after.columns {
        let Some(b) = before.columns.iter().find(|b| b.name == a.name) else {
            columns.push(ColumnDiff::bare(&a.name, "added"));
            continue;
        };
        let mut d = ColumnDiff::bare(&a.name, "changed");
        if a.kind != b.kind {
            d.kind = Some((b.kind.clone(), a.kind.clone()));
        }
        if let (Some(nb), Some(na)) = (&b.numeric, &a.numeric) {
            if nb.mean != na.mean {
                d.mean = Some((nb.mean, na.mean));
            }
        }
        let (rb, ra) = (rate(b.nulls, before.rows), rate(a.nulls, after.rows));
        if rb != ra {
            d.null_rate = Some((rb, ra));
        }
        d.top = top_shifts(b, before.rows, a, after.rows);
        if d.kind.is_some() || d.mean.is_some() || d.null_rate.is_some() || !d.top.is_empty() {
            columns.push(d);
        }
    }
    for b in &before.columns {
        if !after.columns.iter().any(|a| a.name == b.name) {
            columns.push(ColumnDiff::bare(&b.name, "removed"));
        }
    }
    ProfileDiff { rows_before: before.rows, rows_after: after.rows, columns }
}

impl ColumnDiff {
    fn bare(name: &str, status: &str) -> ColumnDiff {
        ColumnDiff {
            name: name.to_string(),
            status: status.to_string(),
            kind: None,
            mean: None,
            null_rate: None,
            top: BTreeMap::new(),
        }
    }
}

fn rate(n: u64, rows: u64) -> f64 {
    if rows == 0 {
        0.0
    } else {
        n as f64 / rows as f64
    }
}

fn top_shifts(
    b: &ColumnProfile,
    rows_b: u64,
    a: &ColumnProfile,
    rows_a: u64,
) -> BTreeMap<String, (f64, f64)> {
    let complete =
        |p: &ColumnProfile| p.top_exact && p.distinct.exact && p.distinct.count as usize <= p.top.len();
    let share = |p: &ColumnProfile, rows: u64, value: &str| -> Option<f64> {
        match p.top.iter().find(|t| t.value == value) {
            Some(t) => Some(rate(t.count, rows)),
            None if complete(p) => Some(0.0),
            None => None,
        }
    };
    let mut out = BTreeMap::new();
    for value in b.top.iter().chain(&a.top).map(|t| t.value.as_str()) {
        if out.contains_key(value) {
            continue;
        }
        if let (Some(sb), Some(sa)) = (share(b, rows_b, value), share(a, rows_a, value)) {
            if (sa - sb).abs() >= 0.01 - 1e-12 {
                out.insert(value.to_string(), (sb, sa));
            }
        }
    }
    out
}

/// An `f64` that is written as `null` when it is not finite (JSON has no NaN) and read back as NaN.
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// [`finite`] for a list.
mod finite_vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(xs.len()))?;
        for x in xs {
            seq.serialize_element(&if x.is_finite() { Some(*x) } else { None })?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::OwnedCell;

    fn cols(names: &[&str]) -> Vec<Column> {
        names.iter().map(|n| Column { name: n.to_string(), stored: "text".into() }).collect()
    }

    fn text(s: &str) -> OwnedCell {
        if s.is_empty() {
            OwnedCell::Null
        } else {
            OwnedCell::Text(s.to_string())
        }
    }

    /// Profile `rows` (one batch per `batch` rows, every row kept).
    fn profile(names: &[&str], rows: &[Vec<OwnedCell>], batch: usize) -> TableProfile {
        let columns = cols(names);
        let mut p = Profiler::new(&columns);
        for chunk in rows.chunks(batch.max(1)) {
            let b = Batch::from_rows(chunk.to_vec());
            p.observe(&columns, &b, &vec![true; chunk.len()]);
        }
        p.finish()
    }

    fn one_column(cells: Vec<OwnedCell>) -> ColumnProfile {
        let rows: Vec<Vec<OwnedCell>> = cells.into_iter().map(|c| vec![c]).collect();
        profile(&["x"], &rows, 1000).columns.remove(0)
    }

    /// Compared with numpy 2.4 (`x.mean()`, `x.std()`, `numpy.percentile(x, range(1, 100))`,
    /// `numpy.histogram(x, bins=20)`) on the same twenty values.
    #[test]
    fn exact_statistics_of_text_integers_match_numpy() {
        let x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4];
        let mut cells: Vec<OwnedCell> = x.iter().map(|v| text(&v.to_string())).collect();
        cells.push(OwnedCell::Null);
        let c = one_column(cells);
        assert_eq!(c.kind, "int");
        assert_eq!(c.nulls, 1);
        assert_eq!(c.distinct, Distinct { count: 9, exact: true, relative_error: None });
        let n = c.numeric.expect("numeric");
        assert_eq!((n.min, n.max), (1.0, 9.0));
        assert!((n.mean - 4.85).abs() < 1e-12);
        assert!((n.std - 2.6320144376503714).abs() < 1e-12, "population std: {}", n.std);
        assert_eq!(n.percentiles.len(), 99);
        let picks: Vec<f64> = [1, 10, 25, 50, 75, 90, 99].iter().map(|q| n.percentiles[q - 1]).collect();
        assert_eq!(picks, vec![1.0, 1.9000000000000001, 3.0, 4.5, 7.25, 9.0, 9.0]);
        assert_eq!(n.percentile_error, None);
        assert_eq!(n.histogram.counts, vec![2, 0, 2, 0, 0, 4, 0, 2, 0, 0, 3, 0, 1, 0, 0, 1, 0, 2, 0, 3]);
        assert_eq!(n.histogram.edges[6], 3.4000000000000004);
        assert_eq!(n.histogram.edges[20], 9.0);
        assert!(n.histogram.exact);
        // Top: by count, ties by numeric value (not text order).
        let top: Vec<(&str, u64)> = c.top.iter().map(|t| (t.value.as_str(), t.count)).collect();
        let want = [("3", 4), ("5", 3), ("9", 3), ("1", 2), ("2", 2), ("4", 2), ("8", 2), ("6", 1), ("7", 1)];
        assert_eq!(top, want);
        assert!(c.top_exact);
    }

    fn thousand_floats() -> Vec<f64> {
        (0..1000u64).map(|i| ((i * 7919) % 1000) as f64 / 7.0 + (i % 13) as f64 * 0.25 - 40.0).collect()
    }

    /// numpy 2.4 on the same values (see `thousand_floats`): every percentile to the bit.
    #[test]
    fn percentiles_and_histogram_of_typed_floats_match_numpy() {
        let want_p = [
            -36.965,
            -35.440000000000005,
            -34.21642857142857,
            -33.002857142857145,
            -31.396428571428572,
            -29.54,
            -28.57642857142857,
            -26.902857142857144,
            -25.681785714285716,
            -24.099999999999994,
            -22.757857142857144,
            -21.222857142857144,
            -20.009285714285713,
            -18.365714285714276,
            -17.260714285714286,
            -15.404285714285713,
            -14.256071428571428,
            -12.655714285714286,
            -11.442142857142855,
            -9.98571428571428,
            -8.622142857142858,
            -6.793571428571427,
            -5.802142857142855,
            -4.088571428571428,
            -2.9732142857142865,
            -1.2685714285714274,
            0.01642857142857226,
            1.5514285714285718,
            2.764999999999998,
            4.478571428571429,
            5.513571428571428,
            7.370000000000002,
            8.452500000000002,
            10.118571428571432,
            11.332142857142854,
            12.867142857142857,
            14.152142857142858,
            15.915000000000003,
            16.97214285714286,
            18.68571428571429,
            19.735357142857143,
            21.505714285714284,
            23.116428571428568,
            24.325714285714284,
            25.539285714285715,
            27.197857142857142,
            28.28785714285714,
            30.144285714285715,
            31.434285714285704,
            32.892857142857146,
            34.106428571428566,
            35.64142857142858,
            37.19500000000002,
            38.62357142857143,
            39.971428571428596,
            41.46000000000001,
            42.44392857142857,
            44.279999999999994,
            46.08607142857143,
            47.099999999999994,
            48.50857142857143,
            49.90642857142857,
            51.27357142857144,
            52.918571428571425,
            54.45357142857143,
            55.667142857142856,
            57.033928571428596,
            58.41571428571429,
            60.27214285714285,
            61.332142857142856,
            63.020714285714284,
            64.2342857142857,
            65.35214285714285,
            67.05428571428573,
            68.79464285714286,
            69.87428571428572,
            71.58785714285715,
            72.61500000000001,
            74.40785714285714,
            75.69285714285715,
            77.22785714285715,
            78.44142857142857,
            80.04785714285714,
            81.19,
            83.04642857142858,
            84.08142857142857,
            85.795,
            87.00857142857143,
            88.54357142857143,
            89.82857142857142,
            91.5032142857143,
            92.64857142857143,
            94.36214285714286,
            95.3257142857143,
            97.18214285714284,
            98.47999999999999,
            100.00214285714286,
            101.2157142857143,
            102.75071428571428,
        ];
        let want_c = [41, 53, 47, 52, 52, 49, 51, 53, 48, 51, 53, 49, 50, 53, 47, 52, 52, 48, 53, 46];
        let want_e = [
            -40.0,
            -32.74821428571428,
            -25.496428571428574,
            -18.244642857142857,
            -10.992857142857144,
            -3.7410714285714306,
            3.510714285714286,
            10.762499999999996,
            18.014285714285712,
            25.266071428571422,
            32.51785714285714,
            39.769642857142856,
            47.02142857142857,
            54.27321428571429,
            61.52499999999999,
            68.77678571428571,
            76.02857142857142,
            83.28035714285714,
            90.53214285714284,
            97.78392857142856,
            105.03571428571428,
        ];
        let c = one_column(thousand_floats().into_iter().map(OwnedCell::Float).collect());
        assert_eq!(c.kind, "float");
        let n = c.numeric.expect("numeric");
        assert_eq!(n.percentiles, want_p);
        assert_eq!(n.histogram.counts, want_c);
        assert_eq!(n.histogram.edges, want_e);
        assert!((n.mean - 32.855642857142854).abs() < 1e-9);
        assert!((n.std - 41.23416901282929).abs() < 1e-9);
    }

    #[test]
    fn column_types_follow_the_values() {
        let kind = |cells: Vec<OwnedCell>| one_column(cells).kind;
        assert_eq!(kind(vec![text("1"), text("-2"), text("")]), "int");
        assert_eq!(kind(vec![text("1"), text("2.5")]), "float");
        assert_eq!(kind(vec![OwnedCell::Int(1), OwnedCell::Float(2.5)]), "float");
        assert_eq!(kind(vec![text("true"), text("FALSE"), OwnedCell::Bool(true)]), "bool");
        assert_eq!(kind(vec![text("2024-01-01"), text("2024-01-02T10:00:00Z")]), "timestamp");
        assert_eq!(kind(vec![OwnedCell::Timestamp(5), OwnedCell::Null]), "timestamp");
        assert_eq!(kind(vec![OwnedCell::Nested("[1,2]".into())]), "nested");
        assert_eq!(kind(vec![OwnedCell::Null, OwnedCell::Null]), "null");
        assert_eq!(kind(vec![text("1"), text("abc")]), "string");
        assert_eq!(kind(vec![text("1"), text("true")]), "string");
        assert_eq!(kind(vec![text("abc"), text("2024-01-01")]), "string");
        let mixed = one_column(vec![text("1"), text("x")]);
        assert_eq!(mixed.numeric, None);
        let b = one_column(vec![text("true"), text("false"), text("true"), text("true")]);
        assert_eq!(b.numeric.expect("bool as 0/1").mean, 0.75);
        let nan = one_column(vec![
            OwnedCell::Float(f64::NAN),
            OwnedCell::Float(1.0),
            OwnedCell::Float(f64::INFINITY),
        ]);
        assert_eq!((nan.kind.as_str(), nan.nulls), ("float", 2));
    }

    #[test]
    fn a_50_mb_field_is_copied_whole_into_profile_json() {
        let big = format!("{}é{}", "x".repeat(TOP_TEXT_MAX - 1), "y".repeat(5_000_000));
        let c = one_column(vec![text(&big), text(&big), text("small")]);
        let top: Vec<(&str, u64)> = c.top.iter().map(|t| (t.value.as_str(), t.count)).collect();
        let cut = format!("{}…", "x".repeat(TOP_TEXT_MAX - 1));
        assert_eq!(top, vec![(cut.as_str(), 2), ("small", 1)]);
        assert_eq!(c.distinct.count, 2);
    }

    #[test]
    fn the_same_value_typed_or_as_text_is_one_distinct_value() {
        let c = one_column(vec![
            OwnedCell::Int(3),
            text("3"),
            OwnedCell::Float(3.0),
            text("3.0"),
            OwnedCell::Float(0.5),
        ]);
        let top: Vec<(&str, u64)> = c.top.iter().map(|t| (t.value.as_str(), t.count)).collect();
        assert_eq!(top, vec![("3", 3), ("0.5", 1), ("3.0", 1)]);
        assert_eq!(c.distinct.count, 3);
    }

    #[test]
    fn top_keeps_the_fifty_most_frequent_values_exactly_and_breaks_ties_by_value() {
        // Value v (0..200) appears 1 + v % 7 times, in a scrambled order.
        let mut cells = Vec::new();
        for round in 0..7 {
            for i in 0..200u64 {
                let v = (i * 37) % 200;
                if round <= v % 7 {
                    cells.push(text(&format!("v{v:03}")));
                }
            }
        }
        let c = one_column(cells);
        assert_eq!(c.kind, "string");
        assert_eq!(c.top.len(), 50);
        assert!(c.top_exact);
        let mut want: Vec<(String, u64)> = (0..200u64).map(|v| (format!("v{v:03}"), 1 + v % 7)).collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(50);
        let got: Vec<(String, u64)> = c.top.iter().map(|t| (t.value.clone(), t.count)).collect();
        assert_eq!(got, want);
        assert_eq!(c.distinct.count, 200);
    }

    #[test]
    fn constant_column_gets_numpys_unit_wide_histogram() {
        let n = one_column(vec![OwnedCell::Float(2.5); 4]).numeric.expect("numeric");
        assert_eq!((n.min, n.max, n.std), (2.5, 2.5, 0.0));
        assert_eq!(n.histogram.edges[0], 2.0);
        assert_eq!(n.histogram.edges[1], 2.05);
        assert_eq!(n.histogram.edges[20], 3.0);
        let mut want = vec![0; 20];
        want[10] = 4;
        assert_eq!(n.histogram.counts, want);
        assert_eq!(n.percentiles, vec![2.5; 99]);
    }

    #[test]
    fn only_kept_rows_are_profiled_and_late_columns_are_null_before() {
        let mut columns = cols(&["a"]);
        let mut p = Profiler::new(&columns);
        let b1 = Batch::from_rows(vec![vec![text("1")], vec![text("2")], vec![text("3")]]);
        p.observe(&columns, &b1, &[true, false, true]);
        columns.push(Column { name: "b".into(), stored: "json".into() });
        let b2 = Batch::from_rows(vec![vec![text("4"), text("x")], vec![text("5"), OwnedCell::Null]]);
        p.observe(&columns, &b2, &[true, true]);
        let prof = p.finish();
        assert_eq!(prof.rows, 4);
        assert_eq!(prof.columns[0].numeric.as_ref().map(|n| n.mean), Some(3.25));
        assert_eq!(prof.columns[1].name, "b");
        assert_eq!(prof.columns[1].nulls, 3);
        assert_eq!(prof.columns[1].kind, "string");
    }

    fn mixed_rows(n: u64) -> Vec<Vec<OwnedCell>> {
        (0..n)
            .map(|i| {
                let scrambled = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                vec![
                    OwnedCell::Int(scrambled as i64),
                    text(&format!("c{}", scrambled % 97)),
                    if i % 10 == 0 { OwnedCell::Null } else { OwnedCell::Float(scrambled as f64 / 3.0) },
                ]
            })
            .collect()
    }

    #[test]
    fn the_same_rows_give_the_same_bytes_whatever_the_batch_size() {
        let rows = mixed_rows(3000);
        let a = serde_json::to_string(&profile(&["i", "c", "f"], &rows, 3000)).expect("json");
        let b = serde_json::to_string(&profile(&["i", "c", "f"], &rows, 7)).expect("json");
        assert_eq!(a, b);
    }

    #[test]
    fn estimated_profiles_are_batch_size_independent_and_round_trip_through_json() {
        let rows = mixed_rows(EXACT_LIMIT as u64 + 20_000);
        let a = profile(&["i", "c", "f"], &rows, 8192);
        let b = profile(&["i", "c", "f"], &rows, 1000);
        let ja = serde_json::to_string_pretty(&a).expect("json");
        assert_eq!(ja, serde_json::to_string_pretty(&b).expect("json"));
        let back: TableProfile = serde_json::from_str(&ja).expect("reads back");
        assert_eq!(back, a);
        assert!(!a.columns[0].distinct.exact);
        assert!(a.columns[1].distinct.exact);
        assert!(!a.columns[2].numeric.as_ref().expect("numeric").histogram.exact);
    }

    /// 300,000 distinct values, 10,000 of them repeated: the estimates stay within their stated
    /// error, and the frequent values are found with upper-bound counts.
    #[test]
    fn distinct_and_top_are_estimated_with_their_error_beyond_the_exact_limit() {
        let mut cells = Vec::new();
        for i in 0..300_000u64 {
            cells.push(text(&format!("id-{i}")));
            if i % 30 == 0 {
                // "hot-k" for k in 0..5 appear 2,000 times each; spread through the stream.
                cells.push(text(&format!("hot-{}", (i / 30) % 5)));
            }
        }
        let c = one_column(cells);
        assert!(!c.distinct.exact);
        let err = c.distinct.relative_error.expect("stated error");
        assert!((err - 0.008125).abs() < 1e-12);
        let rel = (c.distinct.count as f64 - 300_005.0).abs() / 300_005.0;
        assert!(rel < 3.0 * err, "estimate {} off by {rel}", c.distinct.count);
        assert!(!c.top_exact);
        let hot: Vec<&TopValue> = c.top.iter().take(5).collect();
        for (k, t) in hot.iter().enumerate() {
            assert_eq!(t.value, format!("hot-{k}"));
            // SpaceSaving counts are upper bounds, and with 1,024 counters off by at most n/1024.
            assert!(t.count >= 2000 && t.count <= 2000 + 310_000 / 1024, "{t:?}");
        }
    }

    /// Beyond 100,000 values the percentiles come from the sketch: check each against the true
    /// rank of the values 0..n (scrambled), within the stated rank error.
    #[test]
    fn sketched_percentiles_stay_within_the_stated_rank_error() {
        let n = 400_000u64;
        // A permutation of 0..n: i * 7 mod n (7 is prime to n).
        let cells = (0..n).map(|i| OwnedCell::Int(((i * 7) % n) as i64)).collect();
        let num = one_column(cells).numeric.expect("numeric");
        let err = num.rank_error.expect("stated rank error");
        assert!(num.percentile_error.as_deref().is_some_and(|s| s.contains("rank error")));
        assert!(err > 0.0 && err < 0.01, "{err}");
        for (i, p) in num.percentiles.iter().enumerate() {
            let true_rank = (i + 1) as f64 / 100.0 * (n - 1) as f64;
            assert!((p - true_rank).abs() <= err * n as f64 + 1.0, "p{} = {p}, true {true_rank}", i + 1);
        }
        let total: u64 = num.histogram.counts.iter().sum();
        assert_eq!(total, n);
        for c in &num.histogram.counts {
            assert!((*c as f64 - n as f64 / 20.0).abs() <= 2.0 * err * n as f64 + 1.0, "{c}");
        }
        assert_eq!((num.min, num.max), (0.0, (n - 1) as f64));
    }

    /// 300,000 values of 90 distinct numbers: percentiles and histogram are exact (numpy's on the
    /// whole column), not sketched, although the column holds more than EXACT_LIMIT values.
    #[test]
    fn a_numeric_column_of_few_distinct_values_keeps_exact_percentiles_past_the_exact_limit() {
        let n = 300_000u64;
        let value = |i: u64| ((i * 7919) % 90) as f64 * 0.5 - 3.0;
        let cells = (0..n).map(|i| OwnedCell::Float(value(i))).collect();
        let num = one_column(cells).numeric.expect("numeric");
        assert_eq!((num.percentile_error.as_deref(), num.rank_error), (None, None));
        assert!(num.histogram.exact);
        let mut all: Vec<f64> = (0..n).map(value).collect();
        all.sort_unstable_by(f64::total_cmp);
        let unit: Vec<(f64, u64)> = all.iter().map(|&x| (x, 1)).collect();
        assert_eq!(num.percentiles, percentiles(&unit));
        let (edges, counts) = histogram(unit.iter().copied(), num.min, num.max);
        assert_eq!((num.histogram.edges, num.histogram.counts), (edges, counts));
    }

    /// A column whose distinct numbers pass the tally only after EXACT_LIMIT values: the tallied
    /// values go to the sketch, every value keeps its weight, and the rank error stays bounded.
    #[test]
    fn a_column_that_outgrows_the_tally_late_is_sketched_with_every_value() {
        let n = 300_000u64;
        let value = |i: u64| if i < 200_000 { (i % 50) as f64 } else { i as f64 };
        let cells = (0..n).map(|i| OwnedCell::Int(value(i) as i64)).collect();
        let num = one_column(cells).numeric.expect("numeric");
        let err = num.rank_error.expect("sketched") * n as f64;
        assert_eq!(num.histogram.counts.iter().sum::<u64>(), n);
        let mut all: Vec<f64> = (0..n).map(value).collect();
        all.sort_unstable_by(f64::total_cmp);
        for (i, p) in num.percentiles.iter().enumerate() {
            // The rank of the estimate among the true values is within the stated error.
            let rank = (i + 1) as f64 / 100.0 * (n - 1) as f64;
            let lo = all.partition_point(|x| x < p) as f64;
            let hi = all.partition_point(|x| x <= p) as f64;
            assert!(rank >= lo - err - 1.0 && rank <= hi + err + 1.0, "p{} = {p}", i + 1);
        }
    }

    /// Typed numbers of a column with few values are counted once per batch (pending), text
    /// numbers one by one: both give the same distinct count and top values, whatever the batch
    /// size; also for a column that passes the pending limit and then the exact limit, and for
    /// integral floats (the same values as integers) and -0.0.
    #[test]
    fn typed_numbers_counted_per_batch_give_the_counts_of_their_text() {
        let n = 260_000u64;
        let few = |i: u64| ((i * 7919) % 300) as i64 - 150;
        let late = |i: u64| if i < 60_000 { (i % 120) as i64 } else { i as i64 };
        let float = |i: u64| match i % 7 {
            0 => -0.0,
            1 => 3.0,
            k => k as f64 * 0.25,
        };
        let typed: Vec<Vec<OwnedCell>> = (0..n)
            .map(|i| vec![OwnedCell::Int(few(i)), OwnedCell::Int(late(i)), OwnedCell::Float(float(i))])
            .collect();
        let as_text = |x: &OwnedCell| {
            let mut out = Vec::new();
            canonical_cell(x.as_cell(), &mut out);
            OwnedCell::Text(String::from_utf8(out).expect("text"))
        };
        let texts: Vec<Vec<OwnedCell>> = typed.iter().map(|r| r.iter().map(as_text).collect()).collect();
        let names = ["few", "late", "float"];
        let a = profile(&names, &typed, 8192);
        let b = profile(&names, &typed, 999);
        assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
        let t = profile(&names, &texts, 4096);
        for (x, y) in a.columns.iter().zip(&t.columns) {
            assert_eq!((&x.distinct, &x.top, x.top_exact), (&y.distinct, &y.top, y.top_exact), "{}", x.name);
        }
        assert_eq!(a.columns[0].distinct.count, 300);
        assert!(!a.columns[1].distinct.exact);
        assert_eq!(a.columns[2].top.iter().find(|v| v.value == "0").map(|v| v.count), Some(n.div_ceil(7)));
    }

    #[test]
    fn diff_lists_changed_added_and_removed_columns_only() {
        let before = profile(
            &["same", "shift", "gone"],
            &[vec![text("a"), text("1"), text("x")], vec![text("a"), text("1"), text("y")]],
            10,
        );
        let after = profile(
            &["same", "shift", "new"],
            &[
                vec![text("a"), text("1"), text("z")],
                vec![text("a"), text("3"), text("z")],
                vec![text("a"), OwnedCell::Null, text("z")],
                vec![text("a"), text("3"), text("z")],
            ],
            10,
        );
        let d = diff(&before, &after);
        assert_eq!((d.rows_before, d.rows_after), (2, 4));
        let names: Vec<(&str, &str)> =
            d.columns.iter().map(|c| (c.name.as_str(), c.status.as_str())).collect();
        assert_eq!(names, vec![("shift", "changed"), ("new", "added"), ("gone", "removed")]);
        let shift = &d.columns[0];
        assert_eq!(shift.mean, Some((1.0, 7.0 / 3.0)));
        assert_eq!(shift.null_rate, Some((0.0, 0.25)));
        assert_eq!(shift.top.get("1"), Some(&(1.0, 0.25)));
        assert_eq!(shift.top.get("3"), Some(&(0.0, 0.5)));
        assert!(diff(&after, &after).columns.is_empty());
    }

    #[test]
    fn uint64_ids_above_i64_max_profile_as_distinct_ints_with_exact_top_values() {
        let c = one_column(vec![
            OwnedCell::UInt(u64::MAX),
            OwnedCell::UInt(u64::MAX - 1),
            OwnedCell::UInt(u64::MAX),
            text("18446744073709551615"),
        ]);
        assert_eq!(c.kind, "int");
        assert_eq!((c.distinct.count, c.distinct.exact), (2, true), "one value as cell and as text, not 1");
        let top: Vec<(&str, u64)> = c.top.iter().map(|t| (t.value.as_str(), t.count)).collect();
        assert_eq!(top, [("18446744073709551615", 3), ("18446744073709551614", 1)]);
        assert_eq!(c.numeric.expect("numeric").max, u64::MAX as f64);
    }

    /// Text columns that Parquet hands over as dictionaries are counted once per dictionary value
    /// per batch; the profile is the one their cells give one by one. Covered: nulls, values that
    /// parse as numbers or dates (left to the cells), a pandas categorical, a keep mask, and a
    /// column whose later row groups overflow the dictionary and pass the exact limit (the
    /// estimated top values seeded from an exact list that grew by whole batches).
    #[test]
    fn a_dictionary_column_profiles_as_its_cells_do() {
        use arrow_array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;

        let n = 220_000usize;
        let names = ["Paris", "Lyon", "Nice", "Lille", "Brest", "Metz", "Caen", "Pau", "Albi", "Sète"];
        let city: StringArray = (0..n).map(|i| (i % 7 != 0).then(|| names[i * 7 % names.len()])).collect();
        let code: StringArray = (0..n).map(|i| Some(format!("{}", i % 40))).collect();
        let when: StringArray = (0..n)
            .map(|i| Some(if i < n / 2 { format!("2024-01-{:02}", i % 28 + 1) } else { "x".into() }))
            .collect();
        // Few values first, then more distinct values than the exact limit.
        let wide: StringArray =
            (0..n).map(|i| Some(if i < 40_000 { format!("v{}", i % 90) } else { format!("u{i}") })).collect();
        let cat: DictionaryArray<arrow_array::types::Int8Type> =
            (0..n).map(|i| (i % 5 != 1).then_some(["a", "b", "c"][i % 3])).collect();
        let id: Int64Array = (0..n as i64).map(Some).collect();
        let batch = RecordBatch::try_from_iter([
            ("city", Arc::new(city) as ArrayRef),
            ("code", Arc::new(code)),
            ("when", Arc::new(when)),
            ("wide", Arc::new(wide)),
            ("cat", Arc::new(cat)),
            ("id", Arc::new(id)),
        ])
        .expect("batch");
        let mut file = Vec::new();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(20_000))
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");

        let opts = super::super::ReadOptions { batch_rows: 4096, ..Default::default() };
        let (reader, batches) = super::super::testing::read_all(&file, super::super::Format::Parquet, &opts);
        let columns = reader.columns().to_vec();
        for col in [0, 1, 2, 3, 4] {
            assert!(batches[0].dictionary(col).is_some(), "column {col} is read as a dictionary");
        }
        assert!(batches[0].dictionary(5).is_none());
        let keep = |row: usize| row % 3 != 0;
        let mut by_dictionary = Profiler::new(&columns);
        let mut row = 0;
        for b in &batches {
            let mask: Vec<bool> = (row..row + b.len()).map(keep).collect();
            row += b.len();
            by_dictionary.observe(&columns, b, &mask);
        }
        let rows = super::super::testing::rows_of(&batches, columns.len());
        let mut by_cell = Profiler::new(&columns);
        for (i, chunk) in rows.chunks(1000).enumerate() {
            let mask: Vec<bool> = (i * 1000..i * 1000 + chunk.len()).map(keep).collect();
            by_cell.observe(&columns, &Batch::from_rows(chunk.to_vec()), &mask);
        }
        let (a, b) = (by_dictionary.finish(), by_cell.finish());
        assert_eq!(a.columns[1].kind, "int");
        assert_eq!(a.columns[2].kind, "string");
        assert!(!a.columns[3].distinct.exact);
        assert_eq!(a.columns[4].nulls, (0..n).filter(|&i| keep(i) && i % 5 == 1).count() as u64);
        assert_eq!(
            serde_json::to_string_pretty(&a).expect("json"),
            serde_json::to_string_pretty(&b).expect("json")
        );
    }
}
