//! The statistics of a drift report, each on summaries from [`super::sample`]. Pure functions:
//! no I/O. Tested against scipy on the same data (tests/monitor_stats.rs).
//!
//! The distributions they need (Kolmogorov, chi-square, normal) are hand-written in
//! [`special`] rather than taken from a crate: a few dozen lines each, from published
//! algorithms, checked against scipy, and without a dependency whose numbers could change
//! under us between versions.

use super::sample::{Categories, Distribution};

/// PSI bins (on the reference's deciles) used by drift reports and calibration.
pub const PSI_BINS: usize = 10;
/// The smoothing added to every PSI bin share (then renormalised), so an empty bin gives a
/// large but finite term.
pub const PSI_EPS: f64 = 1e-4;

/// Two-sample Kolmogorov–Smirnov statistic: sup |F_ref − F_cur| (= `scipy.stats.ks_2samp(..).statistic`
/// on exact distributions). 0 when either side has no values.
pub fn ks_statistic(reference: &Distribution, current: &Distribution) -> f64 {
    let mut d: f64 = 0.0;
    walk_cdfs(reference, current, |_, fa, fb, _| d = d.max((fa - fb).abs()));
    d
}

/// The KS test's two-sided p-value for statistic `d` with sample sizes n and m (asymptotic
/// Kolmogorov distribution with the effective size n·m/(n+m); conservative for ties).
///
/// This is scipy's `ks_2samp(.., method='asymp')`: the one-sample two-sided Kolmogorov
/// distribution `kstwo` at the effective size rounded (half to even) to an integer.
pub fn ks_pvalue(d: f64, n: u64, m: u64) -> f64 {
    if n == 0 || m == 0 || d.is_nan() {
        return 1.0;
    }
    let (a, b) = (n.max(m) as f64, n.min(m) as f64);
    let en = (a * b / (a + b)).round_ties_even().max(1.0);
    special::kolmogorov_sf(en as u64, d)
}

/// 1-Wasserstein distance between the two distributions (= `scipy.stats.wasserstein_distance`).
/// 0 when either side has no values.
pub fn wasserstein(reference: &Distribution, current: &Distribution) -> f64 {
    let mut sum = 0.0;
    walk_cdfs(reference, current, |_, fa, fb, width| sum += (fa - fb).abs() * width);
    sum
}

/// [`wasserstein`] divided by the reference's interquartile range (its std when the IQR is 0,
/// 1 when both are 0), so it reads in units of the reference's spread.
pub fn wasserstein_scaled(reference: &Distribution, current: &Distribution) -> f64 {
    wasserstein(reference, current) / spread(reference)
}

/// The unit [`wasserstein_scaled`] divides by: IQR, else std, else 1.
pub fn spread(reference: &Distribution) -> f64 {
    let iqr = reference.iqr();
    if iqr > 0.0 {
        return iqr;
    }
    let std = reference.std();
    if std > 0.0 {
        std
    } else {
        1.0
    }
}

/// Walks the union of both distributions' values in order, calling `f(x, F_a(x), F_b(x), w)`
/// at each distinct value x, w being the distance to the next distinct value (0 at the last).
fn walk_cdfs(a: &Distribution, b: &Distribution, mut f: impl FnMut(f64, f64, f64, f64)) {
    let (pa, pb) = (&a.points, &b.points);
    let (wa, wb) = (a.total_weight(), b.total_weight());
    if pa.is_empty() || pb.is_empty() {
        return;
    }
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0.0, 0.0);
    while i < pa.len() || j < pb.len() {
        let x = match (pa.get(i), pb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < pa.len() && pa[i].0 <= x {
            ca += pa[i].1;
            i += 1;
        }
        while j < pb.len() && pb[j].0 <= x {
            cb += pb[j].1;
            j += 1;
        }
        let next = match (pa.get(i), pb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => x,
        };
        f(x, ca / wa, cb / wb, next - x);
    }
}

/// Population Stability Index on `bins` bins whose inner edges are the reference's quantiles
/// (duplicate edges merged), each share smoothed by `eps` (empty bins would make it infinite).
///
/// Bins are closed on the right: bin i holds the values in (edge_{i−1}, edge_i]. A share s
/// becomes (s + eps) / (1 + B·eps) over the B bins; PSI = Σ (c − r)·ln(c / r).
pub fn psi(reference: &Distribution, current: &Distribution, bins: usize, eps: f64) -> f64 {
    let edges = psi_edges(reference, bins);
    psi_from_shares(&bin_shares(reference, &edges), &bin_shares(current, &edges), eps)
}

/// The inner bin edges of [`psi`]: the reference's quantiles at i/bins, duplicates merged.
pub fn psi_edges(reference: &Distribution, bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..bins).map(|i| reference.quantile(i as f64 / bins as f64)).collect();
    edges.dedup();
    edges
}

/// The bin index of `x` under inner `edges` (right-closed bins).
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e < x)
}

/// Each bin's share of the distribution's weight (edges.len() + 1 bins).
pub fn bin_shares(d: &Distribution, edges: &[f64]) -> Vec<f64> {
    let mut shares = vec![0.0; edges.len() + 1];
    for &(x, w) in &d.points {
        shares[bin_of(edges, x)] += w;
    }
    let total = d.total_weight();
    if total > 0.0 {
        shares.iter_mut().for_each(|s| *s /= total);
    }
    shares
}

/// PSI of two share vectors of the same bins, smoothed by `eps` (see [`psi`]).
pub fn psi_from_shares(reference: &[f64], current: &[f64], eps: f64) -> f64 {
    let norm = 1.0 + eps * reference.len() as f64;
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = ((r + eps) / norm, (c + eps) / norm);
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// The count vectors of two category summaries on their joint support (every category of
/// either side, in order, then `other` when either side has one).
///
/// A side with an `other` (past [`super::sample::CATEGORY_LIMIT`], or a profile's values
/// outside its top ones) cannot say whether a category it does not list is among them, so the
/// other side's categories it does not list are counted in `other` on both sides alike: a
/// profile's reference then compares its top values, and the rest as one.
pub fn joint_counts(reference: &Categories, current: &Categories) -> (Vec<u64>, Vec<u64>) {
    let mut keys: Vec<&String> = reference.counts.keys().chain(current.counts.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    let (mut r, mut c) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
    let (mut other_r, mut other_c) = (reference.other, current.other);
    for k in keys {
        let (a, b) = (reference.counts.get(k), current.counts.get(k));
        let folded = (a.is_none() && reference.other > 0) || (b.is_none() && current.other > 0);
        let (a, b) = (a.copied().unwrap_or(0), b.copied().unwrap_or(0));
        if folded {
            other_r += a;
            other_c += b;
        } else {
            r.push(a);
            c.push(b);
        }
    }
    if other_r > 0 || other_c > 0 {
        r.push(other_r);
        c.push(other_c);
    }
    (r, c)
}

/// Jensen–Shannon distance between the category shares (natural log, as
/// `scipy.spatial.distance.jensenshannon` by default: 0 ..= √ln 2). Categories of either side,
/// plus `other`, make the support.
pub fn js_distance(reference: &Categories, current: &Categories) -> f64 {
    let (r, c) = joint_counts(reference, current);
    let to_f = |v: Vec<u64>| v.into_iter().map(|x| x as f64).collect::<Vec<f64>>();
    js_distance_weights(&to_f(r), &to_f(c))
}

/// [`js_distance`] of two count (or weight) vectors over the same support.
pub fn js_distance_weights(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    if sp <= 0.0 || sq <= 0.0 {
        return f64::NAN;
    }
    let mut js = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        js += rel_entr(a, m) + rel_entr(b, m);
    }
    (js / 2.0).max(0.0).sqrt()
}

/// scipy.special.rel_entr: x·ln(x/y), 0 at x = 0.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Share of the current values whose category the reference never had.
///
/// When the reference is not exact (a profile's top values), a category outside them may
/// still be in its `other`: the share is then an upper bound.
pub fn unseen_rate(reference: &Categories, current: &Categories) -> f64 {
    if current.n == 0 {
        return 0.0;
    }
    let unseen: u64 =
        current.counts.iter().filter(|(k, _)| !reference.counts.contains_key(*k)).map(|(_, &c)| c).sum();
    unseen as f64 / current.n as f64
}

/// p-value of Pearson's chi-square test of homogeneity of the two count vectors (categories
/// with fewer than 5 expected merged into one, as usual).
///
/// Every category whose expected count on either side is below 5 goes into one pooled
/// category; the test then runs on the 2 × K table (no continuity correction; =
/// `scipy.stats.chi2_contingency(table, correction=False)`), 1 when K < 2.
pub fn chi2_pvalue(reference: &Categories, current: &Categories) -> f64 {
    let (r, c) = joint_counts(reference, current);
    chi2_pvalue_counts(&r, &c)
}

/// [`chi2_pvalue`] of two count vectors over the same support.
pub fn chi2_pvalue_counts(reference: &[u64], current: &[u64]) -> f64 {
    let (table_r, table_c) = merge_small_expected(reference, current);
    let k = table_r.len();
    if k < 2 {
        return 1.0;
    }
    let (nr, nc) = (table_r.iter().sum::<u64>() as f64, table_c.iter().sum::<u64>() as f64);
    let total = nr + nc;
    let mut stat = 0.0;
    for (&a, &b) in table_r.iter().zip(&table_c) {
        let col = (a + b) as f64;
        for (obs, row) in [(a as f64, nr), (b as f64, nc)] {
            let exp = row * col / total;
            stat += (obs - exp) * (obs - exp) / exp;
        }
    }
    special::chi2_sf(stat, (k - 1) as f64)
}

/// The 2 × K table of [`chi2_pvalue_counts`]: empty categories dropped, those with an expected
/// count below 5 on either side pooled into one (last).
pub fn merge_small_expected(reference: &[u64], current: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let (nr, nc) = (reference.iter().sum::<u64>() as f64, current.iter().sum::<u64>() as f64);
    let total = nr + nc;
    let (mut r, mut c) = (Vec::new(), Vec::new());
    let (mut pool_r, mut pool_c, mut pooled) = (0, 0, false);
    for (&a, &b) in reference.iter().zip(current) {
        if a + b == 0 {
            continue;
        }
        let col = (a + b) as f64;
        if nr * col / total < 5.0 || nc * col / total < 5.0 {
            pool_r += a;
            pool_c += b;
            pooled = true;
        } else {
            r.push(a);
            c.push(b);
        }
    }
    if pooled {
        r.push(pool_r);
        c.push(pool_c);
    }
    (r, c)
}

/// Two-sided p-value that two null rates differ (two-proportion z-test).
pub fn proportion_pvalue(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (k1 + k2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se <= 0.0 {
        return 1.0;
    }
    let z = (k2 as f64 / n2f - k1 as f64 / n1f) / se;
    2.0 * special::normal_sf(z.abs())
}

/// Benjamini–Hochberg adjusted p-values (same order as given; = statsmodels `fdr_bh`).
///
/// Sorted ascending, p_(i)·m/i, then the running minimum from the largest down, capped at 1.
pub fn benjamini_hochberg(pvalues: &[f64]) -> Vec<f64> {
    let m = pvalues.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| pvalues[a].total_cmp(&pvalues[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(pvalues[i] * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Share of current values outside [reference min, reference max].
pub fn out_of_range_share(reference: &Distribution, current: &Distribution) -> f64 {
    share_where(current, |x| x < reference.min || x > reference.max)
}

/// Share of current values that are outliers by the reference's IQR rule
/// (below Q1 − k·IQR or above Q3 + k·IQR; k = 1.5 by convention).
pub fn outlier_share_iqr(reference: &Distribution, current: &Distribution, k: f64) -> f64 {
    let (q1, q3) = (reference.quantile(0.25), reference.quantile(0.75));
    let (lo, hi) = (q1 - k * (q3 - q1), q3 + k * (q3 - q1));
    share_where(current, |x| x < lo || x > hi)
}

/// Weighted share of `d`'s values for which `pred` holds (0 without values).
fn share_where(d: &Distribution, pred: impl Fn(f64) -> bool) -> f64 {
    let total = d.total_weight();
    if total <= 0.0 {
        return 0.0;
    }
    d.points.iter().filter(|p| pred(p.0)).map(|p| p.1).sum::<f64>() / total
}

/// Expected calibration error on `bins` equal-width bins of the score (weighted by bin size).
///
/// Bin of a score s: ⌊s·bins⌋, the last bin closed (scores are clamped to [0, 1]).
pub fn ece(scores: &[f64], labels: &[bool], bins: usize) -> f64 {
    let bins = bins.max(1);
    let mut sum_s = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0u64; bins];
    for (&s, &y) in scores.iter().zip(labels) {
        let s = s.clamp(0.0, 1.0);
        let b = ((s * bins as f64) as usize).min(bins - 1);
        sum_s[b] += s;
        sum_y[b] += f64::from(u8::from(y));
        count[b] += 1;
    }
    let n: u64 = count.iter().sum();
    if n == 0 {
        return 0.0;
    }
    (0..bins).filter(|&b| count[b] > 0).map(|b| (sum_y[b] - sum_s[b]).abs() / n as f64).sum()
}

/// Brier score: mean (score − label)².
pub fn brier(scores: &[f64], labels: &[bool]) -> f64 {
    let n = scores.len().min(labels.len());
    let sum: f64 = scores.iter().zip(labels).map(|(&s, &y)| (s - f64::from(u8::from(y))).powi(2)).sum();
    sum / n as f64
}

/// Area under the ROC curve (ties counted half), None when one class is absent.
///
/// The Mann–Whitney form: (sum of the positives' mid-ranks − P(P+1)/2) / (P·N).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n = scores.len().min(labels.len());
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let pos = labels[..n].iter().filter(|&&y| y).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Distribution functions: Kolmogorov (scipy's `kstwo`), chi-square and normal, from
/// published algorithms.
pub mod special {
    use std::f64::consts::PI;

    /// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; about 15 digits).
    pub fn ln_gamma(x: f64) -> f64 {
        const G: f64 = 7.0;
        const C: [f64; 9] = [
            0.999_999_999_999_809_9,
            676.520_368_121_885_1,
            -1_259.139_216_722_402_8,
            771.323_428_777_653_1,
            -176.615_029_162_140_6,
            12.507_343_278_686_905,
            -0.138_571_095_265_720_12,
            9.984_369_578_019_572e-6,
            1.505_632_735_149_311_6e-7,
        ];
        if x < 0.5 {
            return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
        }
        let x = x - 1.0;
        let mut a = C[0];
        let t = x + G + 0.5;
        for (i, &c) in C.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }

    /// The regularised upper incomplete gamma function Q(a, x) (series below a + 1, Lentz's
    /// continued fraction above; Numerical Recipes §6.2).
    pub fn gamma_q(a: f64, x: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        if x.is_infinite() {
            return 0.0;
        }
        let log_prefix = a * x.ln() - x - ln_gamma(a);
        if x < a + 1.0 {
            let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
            for _ in 0..10_000 {
                ap += 1.0;
                term *= x / ap;
                sum += term;
                if term.abs() < sum.abs() * 1e-17 {
                    break;
                }
            }
            (1.0 - sum * log_prefix.exp()).max(0.0)
        } else {
            const TINY: f64 = 1e-300;
            let mut b = x + 1.0 - a;
            let mut c = 1.0 / TINY;
            let mut d = 1.0 / b;
            let mut h = d;
            for i in 1..10_000 {
                let an = -(i as f64) * (i as f64 - a);
                b += 2.0;
                d = an * d + b;
                if d.abs() < TINY {
                    d = TINY;
                }
                c = b + an / c;
                if c.abs() < TINY {
                    c = TINY;
                }
                d = 1.0 / d;
                let del = d * c;
                h *= del;
                if (del - 1.0).abs() < 1e-16 {
                    break;
                }
            }
            (log_prefix.exp() * h).min(1.0)
        }
    }

    /// Survival function of the chi-square distribution with `df` degrees of freedom.
    pub fn chi2_sf(x: f64, df: f64) -> f64 {
        gamma_q(df / 2.0, x / 2.0)
    }

    /// P(Z > z) for a standard normal Z.
    pub fn normal_sf(z: f64) -> f64 {
        if z < 0.0 {
            return 1.0 - normal_sf(-z);
        }
        0.5 * gamma_q(0.5, z * z / 2.0)
    }

    /// The standard normal quantile (Acklam's rational approximation, refined by one Halley
    /// step on [`normal_sf`]; about 1e-15 relative).
    pub fn normal_quantile(p: f64) -> f64 {
        if p <= 0.0 {
            return f64::NEG_INFINITY;
        }
        if p >= 1.0 {
            return f64::INFINITY;
        }
        const A: [f64; 6] = [
            -3.969_683_028_665_376e1,
            2.209_460_984_245_205e2,
            -2.759_285_104_469_687e2,
            1.383_577_518_672_69e2,
            -3.066_479_806_614_716e1,
            2.506_628_277_459_239,
        ];
        const B: [f64; 5] = [
            -5.447_609_879_822_406e1,
            1.615_858_368_580_409e2,
            -1.556_989_798_598_866e2,
            6.680_131_188_771_972e1,
            -1.328_068_155_288_572e1,
        ];
        const C: [f64; 6] = [
            -7.784_894_002_430_293e-3,
            -3.223_964_580_411_365e-1,
            -2.400_758_277_161_838,
            -2.549_732_539_343_734,
            4.374_664_141_464_968,
            2.938_163_982_698_783,
        ];
        const D: [f64; 4] = [
            7.784_695_709_041_462e-3,
            3.224_671_290_700_398e-1,
            2.445_134_137_142_996,
            3.754_408_661_907_416,
        ];
        let tail = |q: f64| {
            let t = (-2.0 * q.ln()).sqrt();
            (((((C[0] * t + C[1]) * t + C[2]) * t + C[3]) * t + C[4]) * t + C[5])
                / ((((D[0] * t + D[1]) * t + D[2]) * t + D[3]) * t + 1.0)
        };
        let x = if p < 0.02425 {
            tail(p)
        } else if p > 1.0 - 0.02425 {
            -tail(1.0 - p)
        } else {
            let q = p - 0.5;
            let r = q * q;
            (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
                / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
        };
        // One Halley step: e = Φ(x) − p (Φ taken from the near tail, so no cancellation).
        let cdf = if x < 0.0 { normal_sf(-x) } else { 1.0 - normal_sf(x) };
        let e = cdf - p;
        let u = e * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
        x - u / (1.0 + x * u / 2.0)
    }

    /// P(D_n > x) for the one-sample two-sided Kolmogorov–Smirnov statistic D_n (scipy's
    /// `kstwo.sf`, Simard & L'Ecuyer's choice of method by region, as scipy makes it:
    /// exact formulas at the ends, the Durbin matrix (Marsaglia–Tsang–Wang) for small n·x²,
    /// twice the exact one-sided Smirnov tail for large n·x², Pelz–Good in between).
    pub fn kolmogorov_sf(n: u64, x: f64) -> f64 {
        if x >= 1.0 {
            return 0.0;
        }
        if x <= 0.0 || n == 0 {
            return 1.0;
        }
        let nf = n as f64;
        let t = nf * x;
        if t <= 1.0 {
            if t <= 0.5 {
                return 1.0;
            }
            // Ruben–Gambino: P(D_n ≤ x) = n!/n^n · (2t − 1)^n.
            let prob = (ln_factorial_over_power(n) + nf * (2.0 * t - 1.0).ln()).exp();
            return (1.0 - prob).clamp(0.0, 1.0);
        }
        if t >= nf - 1.0 {
            return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
        }
        if x >= 0.5 {
            return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
        }
        let nx2 = t * x;
        if n <= 140 {
            return if nx2 <= 4.0 {
                (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0)
            } else {
                (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0)
            };
        }
        if nx2 >= 370.0 {
            return 0.0;
        }
        if nx2 >= 2.2 {
            return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
        }
        let cdf =
            if n <= 100_000 && nf * x.powf(1.5) <= 1.4 { durbin_cdf(n, x) } else { pelz_good_cdf(n, x) };
        (1.0 - cdf).clamp(0.0, 1.0)
    }

    /// ln(n! / n^n).
    fn ln_factorial_over_power(n: u64) -> f64 {
        let nf = n as f64;
        ln_gamma(nf + 1.0) - nf * nf.ln()
    }

    /// P(D⁺_n > x), the exact one-sided Smirnov tail (Birnbaum–Tingey sum, in logs).
    pub fn smirnov_sf(n: u64, x: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        if x >= 1.0 {
            return 0.0;
        }
        let nf = n as f64;
        let last = (nf * (1.0 - x)).floor() as u64;
        let mut ln_choose = 0.0;
        let mut p = 0.0;
        for v in 0..=last {
            let vf = v as f64;
            let evn = x + vf / nf;
            let rest = 1.0 - evn;
            if rest > 0.0 {
                let lt = ln_choose + (vf - 1.0) * evn.ln() + (nf - vf) * rest.ln();
                p += lt.exp();
            } else if v == n {
                p += (ln_choose + (vf - 1.0) * evn.ln()).exp();
            }
            ln_choose += ((nf - vf) / (vf + 1.0)).ln();
        }
        p * x
    }

    /// P(D_n ≤ d) by the Durbin matrix as Marsaglia, Tsang and Wang compute it (scipy's
    /// `_kolmogn_DMTW`): the (k, k) entry of H^n times n!/n^n, d = (k − h)/n.
    fn durbin_cdf(n: u64, d: f64) -> f64 {
        let nd = n as f64 * d;
        if nd <= 0.5 {
            return 0.0;
        }
        let k = nd.ceil() as usize;
        let h = k as f64 - nd;
        let m = 2 * k - 1;
        let mut v = vec![0.0; m];
        let mut w = vec![0.0; m];
        let mut fac = 1.0;
        for j in 1..=m {
            w[j - 1] = fac;
            fac /= j as f64;
            v[j - 1] = (1.0 - h.powi(j as i32)) * fac;
        }
        let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
        v[m - 1] = (1.0 + tt) * fac;
        let mut hm = vec![0.0; m * m];
        for i in 1..m {
            for r in (i - 1)..m {
                hm[r * m + i] = w[r - (i - 1)];
            }
        }
        for r in 0..m {
            hm[r * m] = v[r];
        }
        for c in 0..m {
            hm[(m - 1) * m + c] = v[m - 1 - c];
        }
        let (p, mut expnt) = matrix_power_entry(hm, m, n, k - 1);
        let mut p = p;
        const E: i32 = 128;
        let (big, small) = (2f64.powi(E), 2f64.powi(-E));
        for i in 1..=n {
            p = i as f64 * p / n as f64;
            if p.abs() < small {
                p *= big;
                expnt -= E;
            }
        }
        (p * 2f64.powi(expnt)).clamp(0.0, 1.0)
    }

    /// Entry (e, e) of H^n with its binary exponent, rescaling as scipy does.
    fn matrix_power_entry(mut h: Vec<f64>, m: usize, n: u64, e: usize) -> (f64, i32) {
        const E: i32 = 128;
        let big = 2f64.powi(E);
        let mut acc = identity(m);
        let (mut nn, mut expnt, mut h_expnt) = (n, 0i32, 0i32);
        while nn > 0 {
            if nn % 2 == 1 {
                acc = matmul(&acc, &h, m);
                expnt += h_expnt;
            }
            h = matmul(&h, &h, m);
            h_expnt *= 2;
            if h[e * m + e].abs() > big {
                h.iter_mut().for_each(|x| *x /= big);
                h_expnt += E;
            }
            nn /= 2;
        }
        (acc[e * m + e], expnt)
    }

    fn identity(m: usize) -> Vec<f64> {
        let mut a = vec![0.0; m * m];
        (0..m).for_each(|i| a[i * m + i] = 1.0);
        a
    }

    fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * m];
        for i in 0..m {
            for l in 0..m {
                let x = a[i * m + l];
                if x != 0.0 {
                    for j in 0..m {
                        c[i * m + j] += x * b[l * m + j];
                    }
                }
            }
        }
        c
    }

    /// The Pelz–Good approximation to P(D_n ≤ x) (scipy's `_kolmogn_PelzGood`).
    fn pelz_good_cdf(n: u64, x: f64) -> f64 {
        let nf = n as f64;
        let z = nf.sqrt() * x;
        let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
        let qlog = -PI * PI / 8.0 / z2;
        if qlog < -708.0 {
            return 0.0;
        }
        let q = qlog.exp();
        let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
        let (k1a, k1b) = (-z2, pi2 / 4.0);
        let (k2a, k2b, k2c) =
            (6.0 * z6 + 2.0 * z4, (2.0 * z4 - 5.0 * z2) * pi2 / 4.0, pi4 * (1.0 - 2.0 * z2) / 16.0);
        let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
        let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
        let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
        let k3a = -30.0 * z6 - 90.0 * z.powi(8);
        let mut k = [0.0f64; 4];
        let maxk = (16.0 * z / PI).ceil() as i64;
        for kk in (1..=maxk).rev() {
            let mm = (2 * kk - 1) as f64;
            let (m2, m4, m6) = (mm * mm, mm.powi(4), mm.powi(6));
            let qpower = q.powf(8.0 * kk as f64);
            let coeffs =
                [1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
            for (ki, c) in k.iter_mut().zip(coeffs) {
                *ki = *ki * qpower + c;
            }
        }
        let sqrt2pi = (2.0 * PI).sqrt();
        let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
        for (ki, d) in k.iter_mut().zip(div) {
            *ki = *ki * q * sqrt2pi / d;
        }
        let q2 = (-pi2 / 2.0 / z2).exp();
        let sqrt3z = 3f64.sqrt() * z;
        let (mut k2extra, mut k3extra) = (0.0, 0.0);
        for kk in (1..=maxk).rev() {
            let kf = kk as f64;
            let k2 = kf * kf;
            let qp = q2.powf(k2);
            k2extra += k2 * qp;
            let kspi = PI * kf;
            k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * k2 * qp;
        }
        k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
        k[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
        k.iter().enumerate().map(|(i, &v)| v / nf.powf(i as f64 / 2.0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::special::*;
    use super::*;

    #[test]
    fn special_functions_match_scipy() {
        // scipy.stats.chi2.sf(3.0, 2), chi2.sf(50.0, 7), norm.sf(1.5), norm.ppf(0.975)
        assert!((chi2_sf(3.0, 2.0) - 0.22313016014842982).abs() < 1e-14);
        assert!((chi2_sf(50.0, 7.0) / 1.4444852779215397e-08 - 1.0).abs() < 1e-10);
        assert!((normal_sf(1.5) - 0.06680720126885807).abs() < 1e-15);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-12);
        assert!((normal_quantile(1e-6) + 4.753424308822899).abs() < 1e-10);
    }

    #[test]
    fn benjamini_hochberg_keeps_the_order_and_the_running_minimum() {
        let adj = benjamini_hochberg(&[0.04, 0.01, 0.03, 0.5]);
        let want = [0.04 * 4.0 / 3.0, 0.04, 0.04 * 4.0 / 3.0, 0.5];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-15, "{adj:?}");
        }
    }

    #[test]
    fn a_side_with_other_folds_the_categories_it_does_not_list_into_other() {
        let mut reference =
            Categories::from_counts([("a".to_string(), 60), ("b".to_string(), 30)].into_iter().collect());
        reference.other = 10;
        reference.n = 100;
        reference.exact = false;
        let current = Categories::from_counts(
            [("a".to_string(), 55), ("b".to_string(), 35), ("z".to_string(), 10)].into_iter().collect(),
        );
        assert_eq!(joint_counts(&reference, &current), (vec![60, 30, 10], vec![55, 35, 10]));
        let shares = |v: [f64; 3]| v.map(|x| x / 100.0);
        let want = js_distance_weights(&shares([60.0, 30.0, 10.0]), &shares([55.0, 35.0, 10.0]));
        assert!((js_distance(&reference, &current) - want).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_half() {
        let auc = roc_auc(&[0.1, 0.4, 0.4, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.875).abs() < 1e-15);
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }
}
