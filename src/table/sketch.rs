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

/// Exact counts per 64-bit key, up to `limit` keys: an open-addressing table of 16-byte slots
/// (key, count and a one-byte tag side by side, so a lookup touches one cache line; 2 MiB at
/// 100,000 keys, against about 2.2 MiB for a `HashMap<u64, u64>` without the tag). The tag is
/// the caller's (the profile marks its top values with it, so finding whether a value is among
/// them costs no search).
pub(crate) struct ExactCounts {
    slots: Vec<Slot>,
    len: usize,
    limit: usize,
    /// How many times the table grew (slots move then).
    grows: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    count: u32,
    tag: u8,
}

/// Slot marker for "empty"; a real key equal to it is stored as [`ZERO_STANDIN`].
const EMPTY: u64 = 0;
const ZERO_STANDIN: u64 = 0x9e37_79b9_7f4a_7c15;

impl ExactCounts {
    pub(crate) fn new(limit: usize) -> ExactCounts {
        ExactCounts { slots: vec![Slot::default(); 64], len: 0, limit, grows: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn grows(&self) -> u32 {
        self.grows
    }

    fn stored(key: u64) -> u64 {
        if key == EMPTY {
            ZERO_STANDIN
        } else {
            key
        }
    }

    /// Count one more of `key`: its new count and its slot, or None when `key` is new and the
    /// table already holds `limit` keys, or its count would pass `u32::MAX` (the caller then
    /// stops counting exactly; the table is unchanged).
    #[inline]
    pub(crate) fn add(&mut self, key: u64) -> Option<(u32, usize)> {
        self.add_n(key, 1)
    }

    /// Count `n` (> 0) more of `key`, as [`ExactCounts::add`] does one.
    pub(crate) fn add_n(&mut self, key: u64, n: u32) -> Option<(u32, usize)> {
        let key = Self::stored(key);
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.key == key {
                slot.count = slot.count.checked_add(n)?;
                return Some((slot.count, i));
            }
            if slot.key == EMPTY {
                if self.len >= self.limit {
                    return None;
                }
                *slot = Slot { key, count: n, tag: 0 };
                self.len += 1;
                // Keep the load under 7/8 (100,000 keys fit in 2^17 slots).
                if self.len * 8 > self.slots.len() * 7 {
                    self.grow();
                    return Some((n, self.slot_of(key)?));
                }
                return Some((n, i));
            }
            i = (i + 1) & mask;
        }
    }

    /// Start fetching the memory of `key`'s slot into the cache (a hint: it changes nothing).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        let i = (Self::stored(key) as usize) & (self.slots.len() - 1);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE is part of every x86_64 CPU, and a prefetch reads nothing: it is a hint,
        // given here the address of a slot inside the table.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                self.slots[i..].as_ptr().cast::<i8>(),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// The slot of `key`, if held.
    pub(crate) fn slot_of(&self, key: u64) -> Option<usize> {
        let key = Self::stored(key);
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        loop {
            match self.slots[i].key {
                k if k == key => return Some(i),
                EMPTY => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    pub(crate) fn tag(&self, slot: usize) -> u8 {
        self.slots[slot].tag
    }

    pub(crate) fn set_tag(&mut self, slot: usize, tag: u8) {
        self.slots[slot].tag = tag;
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        let mask = size - 1;
        for s in old {
            if s.key != EMPTY {
                let mut i = (s.key as usize) & mask;
                while self.slots[i].key != EMPTY {
                    i = (i + 1) & mask;
                }
                self.slots[i] = s;
            }
        }
        self.grows += 1;
    }

    /// Every (key, count, tag), in slot order (deterministic for the same insertions).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32, u8)> + '_ {
        self.slots.iter().filter(|s| s.key != EMPTY).map(|s| (s.key, s.count, s.tag))
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
    /// Values as [`order_key`]s: integers sort faster than floats.
    levels: Vec<Vec<u64>>,
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
        self.levels[0].push(order_key(x));
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
            if h == 0 {
                buf.sort_unstable();
            } else {
                // Above level 0 the buffer is two sorted runs (the halves two compactions below
                // sent up): the stable sort finds the runs and merges them in one pass.
                buf.sort();
            }
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
            all.extend(level.iter().map(|&x| (from_order_key(x), 1u64 << h)));
        }
        all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }
}

/// An odd multiplier (the golden ratio's), and its inverse modulo 2^64.
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
const MIX_INVERSE: u64 = {
    // Newton's iteration doubles the correct low bits each step: 5 steps from 3 bits pass 64.
    let mut inv = MIX;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(MIX.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

/// A float as a key for [`ExactCounts`], which indexes by a key's low bits: a bijection of its
/// bits that spreads them (whole numbers have all-zero low bits), undone by [`number_of_key`].
/// Never 0 (the table's empty mark) for a non-NaN float.
pub(crate) fn number_key(x: f64) -> u64 {
    // The order key is 0 only for a NaN; the mix keeps 0 for 0 alone.
    let k = order_key(x);
    let h = (k ^ (k >> 32)).wrapping_mul(MIX);
    h ^ (h >> 32)
}

pub(crate) fn number_of_key(h: u64) -> f64 {
    let m = (h ^ (h >> 32)).wrapping_mul(MIX_INVERSE);
    from_order_key(m ^ (m >> 32))
}

/// A `u64` that sorts as `f64::total_cmp` sorts the float.
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
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
/// held takes over the smallest counter and its count (recorded as the counter's `error`). Every
/// value more frequent than n / capacity is held, and each held count overestimates by at most
/// its `error`. The counters are kept sorted by count in an array where a count of one more only
/// swaps a counter to the end of its run of equal counts (the "stream summary" idea), so a held
/// value costs O(log capacity) comparisons and one hash lookup, a value not held (which takes the
/// first counter of the smallest run, whose end is remembered) O(1), and the result is
/// deterministic.
pub(crate) struct SpaceSaving<V> {
    capacity: usize,
    /// What a value not held may already have been counted (see [`SpaceSaving::with_floor`]).
    floor: u64,
    counters: Vec<Counter<V>>,
    /// Counter slots by ascending count.
    order: Vec<usize>,
    /// Slot → its position in `order`.
    pos: Vec<usize>,
    /// The counts in `order`'s order (the counters' `count` is filled in at the end): searching
    /// a flat array is what keeps a count's increment cheap.
    sorted: Vec<u64>,
    /// Key → counter slot.
    index: KeyIndex,
    /// The last position of the run of smallest counts, while known: a value not held takes
    /// the counter at position 0 and moves it to the end of that run.
    min_end: Option<usize>,
}

/// Key → counter slot for [`SpaceSaving`]: open addressing with linear probing over 4 slots per
/// counter (keys are xxHash3 outputs, uniform already), deletion by shifting back.
struct KeyIndex {
    keys: Vec<u64>,
    /// `u32::MAX` for an empty slot.
    slots: Vec<u32>,
}

impl KeyIndex {
    const EMPTY: u32 = u32::MAX;

    fn new(capacity: usize) -> KeyIndex {
        let size = (capacity * 4).next_power_of_two();
        KeyIndex { keys: vec![0; size], slots: vec![Self::EMPTY; size] }
    }

    fn mask(&self) -> usize {
        self.keys.len() - 1
    }

    /// The table position of `key`, or of the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        let mask = self.mask();
        let mut i = key as usize & mask;
        while self.slots[i] != Self::EMPTY && self.keys[i] != key {
            i = (i + 1) & mask;
        }
        i
    }

    fn get(&self, key: u64) -> Option<usize> {
        let slot = self.slots[self.find(key)];
        (slot != Self::EMPTY).then_some(slot as usize)
    }

    /// Hold `key` → `slot` (the key is not held).
    fn insert(&mut self, key: u64, slot: usize) {
        let i = self.find(key);
        self.keys[i] = key;
        self.slots[i] = slot as u32;
    }

    fn remove(&mut self, key: u64) {
        let mask = self.mask();
        let mut hole = self.find(key);
        if self.slots[hole] == Self::EMPTY {
            return;
        }
        // Move back each later entry of the probe run that may sit in the hole.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.slots[j] == Self::EMPTY {
                break;
            }
            let home = self.keys[j] as usize & mask;
            // The entry at j may move to the hole when its home is not cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.keys[hole] = self.keys[j];
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = Self::EMPTY;
    }
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
            counters: Vec::with_capacity(capacity),
            order: Vec::with_capacity(capacity),
            pos: Vec::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            index: KeyIndex::new(capacity.max(1)),
            min_end: None,
        }
    }

    /// Hold `key` with an exact `count` (taken from exact counts; call before any `add`).
    pub(crate) fn seed(&mut self, key: u64, count: u64, value: V) {
        if self.counters.len() < self.capacity && self.index.get(key).is_none() {
            self.insert(Counter { key, count, error: 0, value });
        }
    }

    /// A new counter while some are free: into its place in `order` (at most `capacity` times).
    fn insert(&mut self, c: Counter<V>) {
        let slot = self.counters.len();
        let count = c.count;
        self.index.insert(c.key, slot);
        self.min_end = None;
        self.counters.push(c);
        let at = self.sorted.partition_point(|&c| c <= count);
        self.order.insert(at, slot);
        self.sorted.insert(at, count);
        self.pos.push(at);
        for (p, &o) in self.order.iter().enumerate().skip(at) {
            self.pos[o] = p;
        }
    }

    /// Count one more `key`. When the key is not held, `set` makes its value in a new counter
    /// (from `V::default()`) or in the evicted counter's (in place, reusing its allocation).
    pub(crate) fn add(&mut self, key: u64, set: impl FnOnce(&mut V)) {
        if let Some(slot) = self.index.get(key) {
            self.bump(self.pos[slot]);
            return;
        }
        if self.counters.len() < self.capacity {
            let floor = self.floor;
            let mut value = V::default();
            set(&mut value);
            self.insert(Counter { key, count: floor + 1, error: floor, value });
            return;
        }
        let slot = self.order[0];
        let old = self.counters[slot].key;
        self.index.remove(old);
        self.index.insert(key, slot);
        let c = &mut self.counters[slot];
        set(&mut c.value);
        c.key = key;
        c.error = self.sorted[0];
        self.bump(0);
    }

    /// Add one to the counter at position `p` of `order`: swap it to the end of its run of equal
    /// counts first, so the array stays sorted.
    fn bump(&mut self, p: usize) {
        let slot = self.order[p];
        let count = self.sorted[p];
        let in_min_run = count == self.sorted[0];
        let q = match self.min_end {
            Some(end) if in_min_run => end,
            _ => p + self.sorted[p..].partition_point(|&c| c <= count) - 1,
        };
        debug_assert_eq!(q, p + self.sorted[p..].partition_point(|&c| c <= count) - 1);
        self.order.swap(p, q);
        self.pos[self.order[p]] = p;
        self.pos[slot] = q;
        self.sorted[q] += 1;
        if in_min_run {
            // The run of smallest counts lost its last position; a run of one is gone, and the
            // next smallest run's end is found by the next search.
            self.min_end = q.checked_sub(1);
        }
    }

    pub(crate) fn into_counters(mut self) -> Vec<Counter<V>> {
        for (p, &slot) in self.order.iter().enumerate() {
            self.counters[slot].count = self.sorted[p];
        }
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts_refuse_a_key_past_the_limit_and_keep_counts_across_growth() {
        let mut c = ExactCounts::new(1000);
        for round in 1..=3u32 {
            for k in 0..1000u64 {
                assert_eq!(c.add(hash64(0, &k.to_le_bytes())).map(|(n, _)| n), Some(round));
            }
        }
        assert_eq!(c.len(), 1000);
        assert!(c.grows() > 0);
        assert_eq!(c.add(hash64(0, b"one more")), None);
        assert_eq!(c.add(0).map(|(n, _)| n), None, "key 0 is a key like any other");
        assert_eq!(c.iter().map(|(_, n, _)| u64::from(n)).sum::<u64>(), 3000);
    }

    #[test]
    fn number_keys_are_undone_and_spread_whole_numbers_over_the_low_bits() {
        assert_eq!(MIX.wrapping_mul(MIX_INVERSE), 1);
        for x in [0.0, -0.0, 1.0, -1.5, 35.0, 1e300, f64::MIN_POSITIVE, f64::INFINITY, f64::MAX] {
            let k = number_key(x);
            assert_ne!(k, 0);
            assert_eq!(number_of_key(k).to_bits(), x.to_bits());
        }
        // Ages 0..128 land in (nearly) as many distinct slots of a 256-slot table.
        let slots: std::collections::HashSet<u64> = (0..128).map(|a| number_key(a as f64) & 255).collect();
        assert!(slots.len() > 64, "{}", slots.len());
    }

    #[test]
    fn the_quantile_sketch_keeps_every_value_s_weight_and_bounds_its_rank_error() {
        let mut s = QuantileSketch::new(64);
        for i in 0..10_000u64 {
            s.add(((i * 7919) % 10_000) as f64 - 5000.0);
        }
        let w = s.weighted();
        assert_eq!(w.iter().map(|(_, w)| w).sum::<u64>(), 10_000);
        assert!(w.windows(2).all(|p| p[0].0 <= p[1].0));
        // Every value's estimated rank is within the stated bound of its true rank.
        let mut below = 0u64;
        for &(x, weight) in &w {
            let true_rank = x + 5000.0;
            assert!((below as f64 - true_rank).abs() <= s.rank_error() as f64 + 1.0, "{x}");
            below += weight;
        }
        assert!(s.rank_error() > 0);
        assert_eq!(order_key(-0.5).cmp(&order_key(0.25)), std::cmp::Ordering::Less);
        assert_eq!(from_order_key(order_key(-3.5)), -3.5);
    }

    #[test]
    fn space_saving_holds_the_heavy_values_with_upper_bound_counts() {
        let mut s: SpaceSaving<u64> = SpaceSaving::with_floor(16, 0);
        let mut truth = std::collections::HashMap::new();
        for i in 0..20_000u64 {
            let v = if i % 4 == 0 { i % 3 } else { 1000 + i };
            *truth.entry(v).or_insert(0u64) += 1;
            s.add(hash64(0, &v.to_le_bytes()), |held| *held = v);
        }
        let counters = s.into_counters();
        assert_eq!(counters.len(), 16);
        for heavy in 0..3u64 {
            let c = counters.iter().find(|c| c.value == heavy).expect("a heavy value is held");
            assert!(c.count >= truth[&heavy] && c.count - c.error <= truth[&heavy], "{heavy}");
        }
    }

    #[test]
    fn the_key_index_agrees_with_a_hash_map_through_inserts_and_removals() {
        let mut index = KeyIndex::new(64);
        let mut truth = std::collections::HashMap::new();
        // Keys crowded into a few home slots make long probe runs, so removals shift entries.
        let mut x = 12345u64;
        for step in 0..20_000usize {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (x >> 40) % 97 * 256 + (x >> 60);
            match truth.get(&key) {
                Some(_) if x & 1 == 0 => {
                    index.remove(key);
                    truth.remove(&key);
                }
                None if truth.len() < 64 => {
                    index.insert(key, step);
                    truth.insert(key, step);
                }
                _ => {}
            }
            assert_eq!(index.get(key), truth.get(&key).copied(), "step {step}");
        }
        for (&k, &v) in &truth {
            assert_eq!(index.get(k), Some(v));
        }
        assert!(!truth.is_empty());
    }

    #[test]
    fn space_saving_counts_a_stream_of_unique_values_with_bounded_error() {
        // Each value seen once: every counter ends near n / capacity, with that as its error.
        let mut s: SpaceSaving<u64> = SpaceSaving::with_floor(64, 0);
        for v in 0..100_000u64 {
            s.add(hash64(0, &v.to_le_bytes()), |held| *held = v);
        }
        let counters = s.into_counters();
        assert_eq!(counters.len(), 64);
        assert_eq!(
            counters.iter().map(|c| c.count - c.error).sum::<u64>(),
            64,
            "each held value was seen once"
        );
        assert!(counters.iter().all(|c| c.count.abs_diff(100_000 / 64) <= 1));
    }

    #[test]
    fn hyperloglog_estimates_within_three_standard_errors() {
        let mut h = Hll::new();
        for i in 0..250_000u64 {
            h.add(hash64(7, &i.to_le_bytes()));
        }
        let rel = (h.estimate() as f64 - 250_000.0).abs() / 250_000.0;
        assert!(rel < 3.0 * HLL_RELATIVE_ERROR, "{rel}");
    }
}
