//! The bounded-memory summaries behind column profiles, all deterministic (the same values in
//! the same order give the same state, whatever the batch sizes) and hand-written so that their
//! error is stated exactly:
//! - [`ExactCounts`]: value hash → count, exact up to a fixed number of distinct values;
//! - [`Hll`]: a HyperLogLog distinct-count estimate beyond that;
//! - [`QuantileSketch`]: a compaction sketch (Manku–Rajagopalan–Lindsay / KLL family with
//!   alternating, not random, offsets) whose rank error bound is tracked exactly;
//! - [`SpaceSaving`]: the heavy hitters beyond the exact range.
//!
//! Values are keyed by xxHash3 (a published, versioned algorithm), so a profile's bytes do not
//! change with the Rust version or the platform, which `std`'s hashers do not promise.

use twox_hash::{XxHash3_128, XxHash3_64};

/// The 64-bit key of some bytes; `seed` separates key spaces (text vs. the bits of a float).
pub(crate) fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(seed, bytes)
}

/// A 128-bit key (unique-key checks keep these instead of the texts).
pub(crate) fn hash128(bytes: &[u8]) -> u128 {
    XxHash3_128::oneshot(bytes)
}

/// Exact counts per 64-bit key, up to `limit` keys: an open-addressing table of two flat arrays
/// (12 bytes a slot; 1.5 MiB at 100,000 keys) rather than a `HashMap<u64, u64>` (about 2.2 MiB).
pub(crate) struct ExactCounts {
    keys: Vec<u64>,
    counts: Vec<u32>,
    len: usize,
    limit: usize,
}

/// Slot marker for "empty"; a real key equal to it is stored as [`ZERO_STANDIN`].
const EMPTY: u64 = 0;
const ZERO_STANDIN: u64 = 0x9e37_79b9_7f4a_7c15;

impl ExactCounts {
    pub(crate) fn new(limit: usize) -> ExactCounts {
        ExactCounts { keys: vec![EMPTY; 64], counts: vec![0; 64], len: 0, limit }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Count one more of `key`; the new count, or None when `key` is new and the table already
    /// holds `limit` keys, or its count would pass `u32::MAX` (the caller then stops counting
    /// exactly; the table is unchanged).
    pub(crate) fn add(&mut self, key: u64) -> Option<u32> {
        let key = if key == EMPTY { ZERO_STANDIN } else { key };
        let mask = self.keys.len() - 1;
        let mut i = (key as usize) & mask;
        loop {
            let k = self.keys[i];
            if k == key {
                let c = self.counts[i].checked_add(1)?;
                self.counts[i] = c;
                return Some(c);
            }
            if k == EMPTY {
                if self.len >= self.limit {
                    return None;
                }
                self.keys[i] = key;
                self.counts[i] = 1;
                self.len += 1;
                // Keep the load under 7/8 (100,000 keys fit in 2^17 slots).
                if self.len * 8 > self.keys.len() * 7 {
                    self.grow();
                }
                return Some(1);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = self.keys.len() * 2;
        let keys = std::mem::replace(&mut self.keys, vec![EMPTY; size]);
        let counts = std::mem::replace(&mut self.counts, vec![0; size]);
        let mask = size - 1;
        for (k, c) in keys.into_iter().zip(counts) {
            if k != EMPTY {
                let mut i = (k as usize) & mask;
                while self.keys[i] != EMPTY {
                    i = (i + 1) & mask;
                }
                self.keys[i] = k;
                self.counts[i] = c;
            }
        }
    }

    /// Every (key, count), in slot order (deterministic for the same insertions).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.keys.iter().zip(&self.counts).filter(|(k, _)| **k != EMPTY).map(|(k, c)| (*k, *c))
    }
}

/// HyperLogLog with 2^14 one-byte registers (16 KiB): relative standard error 1.04/√16384 ≈ 0.81%.
/// It takes over from [`ExactCounts`] beyond 100,000 distinct values, far above the range where
/// raw HyperLogLog is biased (below 5 × 16384), so no bias table is needed; small counts would
/// still use linear counting.
pub(crate) struct Hll {
    registers: Vec<u8>,
}

const HLL_P: u32 = 14;

/// The relative standard error of [`Hll::estimate`].
pub(crate) const HLL_RELATIVE_ERROR: f64 = 0.008125;

impl Hll {
    pub(crate) fn new() -> Hll {
        Hll { registers: vec![0; 1 << HLL_P] }
    }

    pub(crate) fn add(&mut self, key: u64) {
        let idx = (key >> (64 - HLL_P)) as usize;
        // The remaining 50 bits, with a sentinel so that the rank is at most 51.
        let rest = (key << HLL_P) | (1 << (HLL_P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    pub(crate) fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for &r in &self.registers {
            sum += 1.0 / (1u64 << r) as f64;
            if r == 0 {
                zeros += 1;
            }
        }
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let est = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        est.round() as u64
    }
}

/// A deterministic quantile sketch. Level `h` holds values of weight 2^h in a buffer of `k`
/// (even); a full buffer is sorted and every other value (starting at the first or the second,
/// alternating per level) moves up with twice the weight. The total weight stays exactly the
/// number of values added. One compaction at level `h` moves any value's estimated rank by at
/// most 2^h, so the sum of those weights ([`QuantileSketch::rank_error`]) bounds the rank error of
/// every percentile and histogram count: about `levels × n / k` in the worst case (0.2% of the
/// values at a million values with k = 4096; errors of alternating compactions mostly cancel, so
/// it is far smaller in practice). Memory: `k` values per level, log2(n / k) levels.
pub(crate) struct QuantileSketch {
    k: usize,
    levels: Vec<Vec<f64>>,
    odd: Vec<bool>,
    rank_error: u64,
    count: u64,
}

pub(crate) const SKETCH_K: usize = 4096;

impl QuantileSketch {
    pub(crate) fn new(k: usize) -> QuantileSketch {
        QuantileSketch {
            k: k.max(2) & !1,
            levels: vec![Vec::new()],
            odd: vec![false],
            rank_error: 0,
            count: 0,
        }
    }

    pub(crate) fn add(&mut self, x: f64) {
        self.count += 1;
        self.levels[0].push(x);
        if self.levels[0].len() >= self.k {
            self.compact(0);
        }
    }

    fn compact(&mut self, mut h: usize) {
        while self.levels[h].len() >= self.k {
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::with_capacity(self.k));
                self.odd.push(false);
            }
            let mut buf = std::mem::take(&mut self.levels[h]);
            buf.sort_unstable_by(f64::total_cmp);
            let start = usize::from(self.odd[h]);
            self.odd[h] = !self.odd[h];
            self.levels[h + 1].extend(buf.iter().skip(start).step_by(2));
            buf.clear();
            self.levels[h] = buf;
            self.rank_error += 1u64 << h;
            h += 1;
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The bound on the rank error of any estimate, in values.
    pub(crate) fn rank_error(&self) -> u64 {
        self.rank_error
    }

    /// Every retained (value, weight), sorted by value; the weights sum to [`Self::count`].
    pub(crate) fn weighted(&self) -> Vec<(f64, u64)> {
        let mut all: Vec<(f64, u64)> = Vec::new();
        for (h, level) in self.levels.iter().enumerate() {
            all.extend(level.iter().map(|&x| (x, 1u64 << h)));
        }
        all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }
}

/// The value at 0-based rank `r` of weighted sorted values (clamped to the last).
fn value_at_rank(sorted: &[(f64, u64)], cum: &[u64], r: u64) -> f64 {
    let i = cum.partition_point(|&c| c <= r).min(sorted.len() - 1);
    sorted[i].0
}

/// Percentiles 1..=99 of weighted sorted values, by numpy's default (`linear`) method: the
/// value at fractional rank q/100 × (n − 1), interpolated between its neighbours exactly as
/// numpy's `_lerp` does, so that unit weights reproduce `numpy.percentile` to the bit.
pub(crate) fn percentiles(sorted: &[(f64, u64)]) -> Vec<f64> {
    let mut cum = Vec::with_capacity(sorted.len());
    let mut total = 0u64;
    for &(_, w) in sorted {
        total += w;
        cum.push(total);
    }
    if total == 0 {
        return Vec::new();
    }
    (1..=99)
        .map(|q| {
            let virt = (total - 1) as f64 * (q as f64 / 100.0);
            let lo = virt.floor();
            let t = virt - lo;
            let lo = lo as u64;
            let hi = (lo + 1).min(total - 1);
            let a = value_at_rank(sorted, &cum, lo);
            let b = value_at_rank(sorted, &cum, hi);
            lerp(a, b, t)
        })
        .collect()
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// 21 edges and 20 counts over weighted values, as `numpy.histogram(values, bins=20)` computes
/// them: edges `numpy.linspace(min, max, 21)` (min − 0.5 .. max + 0.5 for a constant column),
/// bins half-open but the last closed.
pub(crate) fn histogram(
    values: impl Iterator<Item = (f64, u64)>,
    min: f64,
    max: f64,
) -> (Vec<f64>, Vec<u64>) {
    const BINS: usize = 20;
    let (first, last) = if min == max { (min - 0.5, max + 0.5) } else { (min, max) };
    let step = (last - first) / BINS as f64;
    let mut edges: Vec<f64> = (0..=BINS).map(|i| i as f64 * step + first).collect();
    edges[BINS] = last;
    let mut counts = vec![0u64; BINS];
    let denom = last - first;
    for (x, w) in values {
        if !(x >= first && x <= last) {
            continue;
        }
        let mut i = (((x - first) / denom) * BINS as f64) as usize;
        if i >= BINS {
            i = BINS - 1;
        }
        if x < edges[i] {
            i = i.saturating_sub(1);
        } else if x >= edges[i + 1] && i != BINS - 1 {
            i += 1;
        }
        counts[i] += w;
    }
    (edges, counts)
}

/// The SpaceSaving heavy-hitter summary (Metwally et al.) over `capacity` counters: a value not
/// held replaces the smallest counter and inherits its count (recorded as that counter's
/// `error`). Every value more frequent than n / capacity is held, and each held count
/// overestimates by at most its `error`. A min-heap keeps eviction O(log capacity); ties go to
/// the smaller key, so the result is deterministic.
pub(crate) struct SpaceSaving<V> {
    capacity: usize,
    /// What a value not held may already have been counted (see [`SpaceSaving::with_floor`]).
    floor: u64,
    heap: Vec<Counter<V>>,
    pos: std::collections::HashMap<u64, usize, BuildKey>,
}

pub(crate) struct Counter<V> {
    pub key: u64,
    pub count: u64,
    pub error: u64,
    pub value: V,
}

/// Keys are already xxHash3 outputs (64 or 128 bits): hash them by themselves (their low 64 bits).
#[derive(Default, Clone, Copy)]
pub(crate) struct BuildKey;

pub(crate) struct KeyHasher(u64);

impl std::hash::BuildHasher for BuildKey {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

impl<V: Default> SpaceSaving<V> {
    /// A summary taking over from exact counts: a value it does not hold may have been seen up to
    /// `floor` times already, so a value entering a free counter starts from `floor` (its count
    /// stays an upper bound, with `floor` as its error).
    pub(crate) fn with_floor(capacity: usize, floor: u64) -> SpaceSaving<V> {
        SpaceSaving {
            capacity: capacity.max(1),
            floor,
            heap: Vec::with_capacity(capacity),
            pos: std::collections::HashMap::with_capacity_and_hasher(capacity, BuildKey),
        }
    }

    /// Hold `key` with an exact `count` (taken from exact counts; call before any `add`).
    pub(crate) fn seed(&mut self, key: u64, count: u64, value: V) {
        if self.heap.len() < self.capacity && !self.pos.contains_key(&key) {
            let i = self.heap.len();
            self.heap.push(Counter { key, count, error: 0, value });
            self.pos.insert(key, i);
            self.sift_up(i);
        }
    }

    fn less(a: &Counter<V>, b: &Counter<V>) -> bool {
        (a.count, a.key) < (b.count, b.key)
    }

    /// Add `n` occurrences of `key`. `value` makes its value when the key is not held; it gets
    /// the evicted counter's value (if any) to reuse its allocation.
    pub(crate) fn add(&mut self, key: u64, n: u64, value: impl FnOnce(Option<V>) -> V) {
        if let Some(&i) = self.pos.get(&key) {
            self.heap[i].count += n;
            self.sift_down(i);
            return;
        }
        if self.heap.len() < self.capacity {
            let i = self.heap.len();
            let floor = self.floor;
            self.heap.push(Counter { key, count: floor + n, error: floor, value: value(None) });
            self.pos.insert(key, i);
            self.sift_up(i);
            return;
        }
        let old = self.heap[0].key;
        self.pos.remove(&old);
        let min = self.heap[0].count;
        let old_value = std::mem::take(&mut self.heap[0].value);
        let new_value = value(Some(old_value));
        let c = &mut self.heap[0];
        c.key = key;
        c.count = min + n;
        c.error = min;
        c.value = new_value;
        self.pos.insert(key, 0);
        self.sift_down(0);
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if Self::less(&self.heap[i], &self.heap[p]) {
                self.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let l = 2 * i + 1;
            let r = l + 1;
            let mut m = i;
            if l < self.heap.len() && Self::less(&self.heap[l], &self.heap[m]) {
                m = l;
            }
            if r < self.heap.len() && Self::less(&self.heap[r], &self.heap[m]) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos.insert(self.heap[a].key, a);
        self.pos.insert(self.heap[b].key, b);
    }

    pub(crate) fn into_counters(self) -> Vec<Counter<V>> {
        self.heap
    }
}
