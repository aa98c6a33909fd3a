//! The monitor's statistics against the reference implementations (scipy, numpy, sklearn) on
//! the same generated data, and the drift rule's behaviour over 100 seeds: false alarms on
//! same-distribution batches, detection of small shifts, calibrated thresholds.
//!
//! The scipy comparisons run `tests/fixtures/monitor/scipy_ref.py`; without python3 and scipy
//! they are skipped with a message, except under `CI=true`, where they fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mlgit::monitor::calibrate::{calibrate, CalibrateOptions, SplitMix64};
use mlgit::monitor::decide::{judge, FeatureData, FeatureInput, Status};
use mlgit::monitor::sample::{Categories, CategoryAcc, Distribution, NumericAcc};
use mlgit::monitor::settings::{FeatureThresholds, MonitorSettings};
use mlgit::monitor::stats::{self, special};
use mlgit::table::profile::ColumnProfile;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Agreement with scipy
// ---------------------------------------------------------------------------------------------

/// Runs the reference script on `cases`; None (after saying why) when python3 or scipy is
/// missing outside CI.
fn scipy(cases: &[Value]) -> Option<Vec<Value>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    std::fs::write(&input, serde_json::to_vec(&json!({ "cases": cases })).expect("json"))
        .expect("write cases");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monitor/scipy_ref.py");
    let ran = Command::new("python3").arg(&script).arg(&input).arg(&output).output();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let why = match ran {
        Err(e) => format!("python3 could not run: {e}"),
        Ok(o) if o.status.code() == Some(3) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Ok(o) if !o.status.success() => {
            panic!("scipy_ref.py failed: {}", String::from_utf8_lossy(&o.stderr))
        }
        Ok(_) => {
            let text = std::fs::read(&output).expect("read results");
            return Some(serde_json::from_slice(&text).expect("results are JSON"));
        }
    };
    assert!(!ci, "CI=true and the scipy reference cannot run: {why}");
    println!("skipped: the scipy reference cannot run ({})", why.trim());
    None
}

fn normals(rng: &mut SplitMix64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n).map(|_| mean + sd * rng.normal()).collect()
}

/// n normal values in ascending order, without sorting (a debug build sorts slowly): sorted
/// uniforms from normalised cumulative exponential spacings (the order statistics of n
/// uniforms), through the normal quantile (Acklam's approximation, 1e-9 relative — plenty
/// for test data).
fn sorted_normals(rng: &mut SplitMix64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let spacings: Vec<f64> = (0..=n).map(|_| -(1.0 - rng.next_f64()).ln()).collect();
    let total: f64 = spacings.iter().sum();
    let mut acc = 0.0;
    spacings[..n]
        .iter()
        .map(|e| {
            acc += e;
            mean + sd * acklam(acc / total)
        })
        .collect()
}

/// Acklam's rational approximation of the standard normal quantile.
fn acklam(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.357751867269,
        -30.66479806614716,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
    const C: [f64; 6] = [
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        let t = (-2.0 * q.ln()).sqrt();
        (((((C[0] * t + C[1]) * t + C[2]) * t + C[3]) * t + C[4]) * t + C[5])
            / ((((D[0] * t + D[1]) * t + D[2]) * t + D[3]) * t + 1.0)
    };
    if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

fn integers(rng: &mut SplitMix64, n: usize, below: u64) -> Vec<f64> {
    (0..n).map(|_| rng.below(below) as f64).collect()
}

/// Numeric datasets: continuous, integer ties, binary, very different sizes, one-sided shifts,
/// small samples (where scipy's p-value takes its exact-matrix branch).
fn numeric_datasets() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    let mut rng = SplitMix64::new(20261130);
    let r = &mut rng;
    let mut upper_tail = normals(r, 3000, 0.0, 1.0);
    upper_tail.iter_mut().filter(|x| **x > 1.0).for_each(|x| *x *= 1.5);
    vec![
        ("normal vs shifted normal", normals(r, 2000, 0.0, 1.0), normals(r, 1500, 0.1, 1.0)),
        ("same normal", normals(r, 5000, 3.0, 2.0), normals(r, 4000, 3.0, 2.0)),
        ("integer ties", integers(r, 5000, 20), integers(r, 3000, 22)),
        ("binary", integers(r, 4000, 2), integers(r, 2500, 2)),
        (
            "rare ones",
            (0..20_000).map(|_| f64::from(r.below(500) == 0)).collect(),
            (0..10_000).map(|_| f64::from(r.below(250) == 0)).collect(),
        ),
        ("large reference, small batch", normals(r, 50_000, 0.0, 1.0), normals(r, 300, 0.2, 1.0)),
        ("one-sided tail", normals(r, 3000, 0.0, 1.0), upper_tail),
        ("small samples", normals(r, 210, 0.0, 1.0), normals(r, 250, 0.25, 1.2)),
        ("tiny shift, small", integers(r, 220, 5), integers(r, 230, 5)),
        ("far apart", normals(r, 400, 0.0, 1.0), normals(r, 300, 3.0, 1.0)),
    ]
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol || (got.is_nan() && want.is_nan()),
        "{what}: got {got:e}, scipy {want:e} (tolerance {tol:e})"
    );
}

#[test]
fn numeric_statistics_agree_with_scipy() {
    let data = numeric_datasets();
    let cases: Vec<Value> = data
        .iter()
        .map(|(_, a, b)| {
            json!({"kind": "numeric", "ref": a, "cur": b, "bins": stats::PSI_BINS, "eps": stats::PSI_EPS})
        })
        .collect();
    let Some(want) = scipy(&cases) else { return };
    for ((name, a, b), w) in data.iter().zip(&want) {
        let (ra, rb) = (Distribution::from_values(a), Distribution::from_values(b));
        let f = |k: &str| w[k].as_f64().expect(k);
        let ks = stats::ks_statistic(&ra, &rb);
        close(&format!("{name}: ks"), ks, f("ks"), 1e-9);
        close(&format!("{name}: ks p"), stats::ks_pvalue(ks, ra.n, rb.n), f("ks_p"), 1e-6);
        close(&format!("{name}: wasserstein"), stats::wasserstein(&ra, &rb), f("wasserstein"), 1e-9);
        close(&format!("{name}: psi"), stats::psi(&ra, &rb, stats::PSI_BINS, stats::PSI_EPS), f("psi"), 1e-9);
        close(
            &format!("{name}: out of range"),
            stats::out_of_range_share(&ra, &rb),
            f("out_of_range"),
            1e-12,
        );
        close(&format!("{name}: outliers"), stats::outlier_share_iqr(&ra, &rb, 1.5), f("outliers"), 1e-12);
        close(&format!("{name}: iqr"), ra.iqr(), f("iqr"), 1e-12);
    }
}

#[test]
fn ks_pvalues_agree_with_scipy_kstwo_in_every_region() {
    let mut grid = Vec::new();
    for n in [5u64, 60, 140, 141, 500, 5_000, 99_999, 150_000, 2_000_000] {
        for d in [0.001, 0.004, 0.01, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3, 0.5, 0.7, 0.95] {
            grid.push((d, n));
        }
        // Around the method switches: n·d² = 0.754693, 2.2, 4, 18; n·d^1.5 = 1.4; n·d = 1.
        for nx2 in [0.5, 0.75, 0.76, 1.5, 2.19, 2.21, 3.9, 4.1, 17.0, 19.0] {
            grid.push(((nx2 / n as f64).sqrt(), n));
        }
        grid.push(((1.4 / n as f64).powf(2.0 / 3.0), n));
        grid.push((0.9 / n as f64, n));
    }
    grid.retain(|&(d, _)| d < 1.0);
    let cases: Vec<Value> = grid.iter().map(|&(d, n)| json!({"kind": "kstwo", "d": d, "n": n})).collect();
    let Some(want) = scipy(&cases) else { return };
    for (&(d, n), w) in grid.iter().zip(&want) {
        let sf = w["sf"].as_f64().expect("sf");
        close(&format!("kstwo.sf({d}, {n})"), special::kolmogorov_sf(n, d), sf, 1e-6);
    }
}

fn categories(pairs: &[(&str, u64)]) -> Categories {
    Categories::from_counts(pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect())
}

fn draw_categories(rng: &mut SplitMix64, n: usize, weights: &[(&str, f64)]) -> Categories {
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut acc = CategoryAcc::new();
    for _ in 0..n {
        let mut u = rng.next_f64() * total;
        let pick = weights.iter().find(|w| {
            u -= w.1;
            u < 0.0
        });
        acc.add(pick.unwrap_or(&weights[weights.len() - 1]).0);
    }
    acc.finish()
}

#[test]
fn categorical_statistics_agree_with_scipy() {
    let mut rng = SplitMix64::new(7);
    let colors = [("red", 50.0), ("green", 30.0), ("blue", 15.0), ("grey", 4.0), ("pink", 1.0)];
    let shifted = [("red", 45.0), ("green", 30.0), ("blue", 20.0), ("grey", 2.0), ("teal", 3.0)];
    let data = [
        ("same", draw_categories(&mut rng, 5000, &colors), draw_categories(&mut rng, 2000, &colors)),
        (
            "shifted with a new one",
            draw_categories(&mut rng, 5000, &colors),
            draw_categories(&mut rng, 800, &shifted),
        ),
        ("binary rate", categories(&[("0", 99_800), ("1", 200)]), categories(&[("0", 99_600), ("1", 400)])),
        (
            "small expected pooled",
            categories(&[("a", 500), ("b", 300), ("c", 3), ("d", 2), ("e", 1)]),
            categories(&[("a", 200), ("b", 90), ("c", 4), ("f", 2)]),
        ),
        ("one category", categories(&[("a", 500)]), categories(&[("a", 300)])),
    ];
    let to_json = |c: &Categories| json!(c.counts);
    let cases: Vec<Value> = data
        .iter()
        .map(|(_, a, b)| json!({"kind": "categorical", "ref": to_json(a), "cur": to_json(b)}))
        .collect();
    let Some(want) = scipy(&cases) else { return };
    for ((name, a, b), w) in data.iter().zip(&want) {
        let f = |k: &str| w[k].as_f64().expect(k);
        close(&format!("{name}: js"), stats::js_distance(a, b), f("js"), 1e-9);
        close(&format!("{name}: chi2 p"), stats::chi2_pvalue(a, b), f("chi2_p"), 1e-9);
        close(&format!("{name}: unseen"), stats::unseen_rate(a, b), f("unseen"), 1e-12);
    }
}

#[test]
fn corrections_scores_and_distributions_agree_with_the_references() {
    let mut rng = SplitMix64::new(99);
    let pvalues: Vec<f64> =
        (0..25).map(|i| if i % 4 == 0 { rng.next_f64() * 1e-3 } else { rng.next_f64() }).collect();
    let scores: Vec<f64> = (0..3000).map(|_| (rng.next_f64() * 50.0).round() / 50.0).collect();
    let labels: Vec<bool> = scores.iter().map(|&s| rng.next_f64() < 0.8 * s + 0.1).collect();
    let cases = vec![
        json!({"kind": "bh", "p": pvalues}),
        json!({"kind": "scores", "scores": scores, "labels": labels, "bins": 10}),
        json!({"kind": "special"}),
    ];
    let Some(want) = scipy(&cases) else { return };
    let adjusted = stats::benjamini_hochberg(&pvalues);
    for (i, (got, w)) in adjusted.iter().zip(want[0]["adjusted"].as_array().expect("list")).enumerate() {
        close(&format!("bh[{i}]"), *got, w.as_f64().expect("p"), 1e-12);
    }
    let w = &want[1];
    close(
        "auc",
        stats::roc_auc(&scores, &labels).expect("two classes"),
        w["auc"].as_f64().expect("auc"),
        1e-12,
    );
    close("brier", stats::brier(&scores, &labels), w["brier"].as_f64().expect("brier"), 1e-12);
    close("ece", stats::ece(&scores, &labels, 10), w["ece"].as_f64().expect("ece"), 1e-12);
    for row in want[2]["chi2_sf"].as_array().expect("list") {
        let r: Vec<f64> = row.as_array().expect("row").iter().map(|v| v.as_f64().expect("f")).collect();
        let got = special::chi2_sf(r[0], r[1]);
        assert!(
            (got - r[2]).abs() <= 1e-12 + 1e-10 * r[2],
            "chi2.sf({}, {}) = {got:e}, scipy {:e}",
            r[0],
            r[1],
            r[2]
        );
    }
    for row in want[2]["norm_ppf"].as_array().expect("list") {
        let r: Vec<f64> = row.as_array().expect("row").iter().map(|v| v.as_f64().expect("f")).collect();
        close(&format!("norm.ppf({})", r[0]), special::normal_quantile(r[0]), r[1], 1e-9);
    }
}

/// A sketched distribution (past the exact limit) and a profile's stay within their stated
/// rank error of the exact one, and the KS statistic moves by at most that.
#[test]
fn approximate_distributions_stay_within_their_stated_error() {
    let mut rng = SplitMix64::new(5);
    let values = normals(&mut rng, 260_000, 10.0, 3.0);
    let exact = Distribution::from_values(&values);
    let mut acc = NumericAcc::new();
    values.iter().for_each(|&x| acc.add(x));
    let sketched = acc.finish();
    assert!(!sketched.exact && sketched.rank_error > 0.0);
    let batch = Distribution::from_values(&normals(&mut rng, 5000, 10.2, 3.0));
    let gap = (stats::ks_statistic(&exact, &batch) - stats::ks_statistic(&sketched, &batch)).abs();
    assert!(gap <= sketched.rank_error, "{gap} > {}", sketched.rank_error);
    for q in [0.01, 0.25, 0.5, 0.75, 0.99] {
        let x = sketched.quantile(q);
        assert!((exact.cdf(x) - q).abs() <= sketched.rank_error + 1e-4, "q {q}");
    }
    // A profile's percentiles (numpy linear, as the profiler writes them) of the same values.
    let profile = profile_of(&exact);
    let from_profile = Distribution::from_profile(&profile).expect("a numeric profile");
    assert_eq!((from_profile.n, from_profile.exact), (exact.n, false));
    assert!((from_profile.rank_error - 0.01).abs() < 1e-12);
    let ks = stats::ks_statistic(&exact, &from_profile);
    assert!(ks <= from_profile.rank_error, "{ks} > {}", from_profile.rank_error);
    // Mostly the 1% beyond p1 and p99, spread evenly out to min and max: 0.014 IQR here.
    let shift = stats::wasserstein_scaled(&exact, &from_profile);
    assert!(shift < 0.02, "wasserstein in IQRs {shift}");
}

fn profile_of(d: &Distribution) -> ColumnProfile {
    let json = json!({
        "name": "x",
        "type": "float",
        "nulls": 0,
        "distinct": {"count": d.distinct(), "exact": true},
        "numeric": {
            "min": d.min, "max": d.max, "mean": d.mean(), "std": d.std(),
            "percentiles": (1..100).map(|q| d.quantile(f64::from(q) / 100.0)).collect::<Vec<_>>(),
            "histogram": {"edges": [d.min, d.max], "counts": [d.n], "exact": true},
        },
        "top": [],
        "top_exact": false,
    });
    serde_json::from_value(json).expect("a column profile")
}

// ---------------------------------------------------------------------------------------------
// Behaviour over 100 seeds
// ---------------------------------------------------------------------------------------------

const SEEDS: u64 = 100;

/// Five normal features and one categorical, reference and batch from the same or a shifted
/// population.
struct Population {
    /// Mean shift of feature 0, in standard deviations.
    shift: f64,
}

impl Population {
    fn sample(&self, rng: &mut SplitMix64, rows: usize, shifted: bool) -> Vec<(String, FeatureData)> {
        let mut out = Vec::new();
        for f in 0..5 {
            let mean = if shifted && f == 0 { self.shift } else { 0.0 };
            let values = sorted_normals(rng, rows, mean + f as f64, 1.0 + f as f64 * 0.5);
            out.push((format!("x{f}"), FeatureData::Numeric(Distribution::from_values(&values))));
        }
        let weights = [("a", 40.0), ("b", 30.0), ("c", 20.0), ("d", 9.0), ("e", 1.0)];
        out.push(("color".into(), FeatureData::Categorical(draw_categories(rng, rows, &weights))));
        out
    }
}

/// The settings that apply `per_feature` thresholds over the defaults.
fn settings(per_feature: &BTreeMap<String, FeatureThresholds>) -> MonitorSettings {
    MonitorSettings { features: per_feature.clone(), ..MonitorSettings::default() }
}

/// Judges a batch against a reference; the names of the features in drift.
fn drifting(
    reference: &[(String, FeatureData)],
    batch: &[(String, FeatureData)],
    per_feature: &BTreeMap<String, FeatureThresholds>,
) -> Vec<String> {
    let settings = settings(per_feature);
    let inputs: Vec<FeatureInput<'_>> = reference
        .iter()
        .zip(batch)
        .map(|((name, r), (_, c))| FeatureInput {
            name,
            reference: r,
            current: c,
            thresholds: settings.thresholds_for(name),
        })
        .collect();
    judge(&inputs, 200).into_iter().filter(|v| v.status == Status::Drift).map(|v| v.feature).collect()
}

#[test]
fn same_distribution_batches_rarely_alarm_with_the_default_thresholds() {
    let pop = Population { shift: 0.0 };
    let mut alarms = 0;
    for seed in 0..SEEDS {
        let mut rng = SplitMix64::new(seed);
        let reference = pop.sample(&mut rng, 10_000 + (seed as usize % 5) * 2_000, false);
        let batch = pop.sample(&mut rng, 1_000 + (seed as usize % 4) * 1_000, false);
        if !drifting(&reference, &batch, &BTreeMap::new()).is_empty() {
            alarms += 1;
        }
    }
    let rate = alarms as f64 / SEEDS as f64;
    println!("false-alarm rate, same distribution, default thresholds: {rate} ({alarms}/{SEEDS} batches)");
    assert!(rate <= 0.05, "false-alarm rate {rate} above alpha");
}

#[test]
fn a_small_mean_shift_is_detected_with_the_default_thresholds() {
    let pop = Population { shift: 0.2 };
    let (mut detected, mut elsewhere) = (0, 0);
    for seed in 0..SEEDS {
        let mut rng = SplitMix64::new(1000 + seed);
        let reference = pop.sample(&mut rng, 10_000, false);
        let batch = pop.sample(&mut rng, 10_000, true);
        let drift = drifting(&reference, &batch, &BTreeMap::new());
        detected += usize::from(drift.iter().any(|f| f == "x0"));
        elsewhere += usize::from(drift.iter().any(|f| f != "x0"));
    }
    let rate = detected as f64 / SEEDS as f64;
    println!("detection rate, 0.2σ mean shift, 10,000 rows, default thresholds: {rate} ({detected}/{SEEDS}); other features flagged in {elsewhere}");
    assert!(rate >= 0.95, "detection rate {rate}");
    assert!(elsewhere <= 5, "unshifted features flagged in {elsewhere} seeds");
}

/// How many of n Bernoulli(p) trials succeed, by jumping from success to success (geometric
/// gaps): O(n·p) instead of n draws.
fn bernoulli_count(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    let (mut at, mut ones) = (0u64, 0u64);
    loop {
        let gap = ((1.0 - rng.next_f64()).ln() / (1.0 - p).ln()).floor() as u64;
        at = at.saturating_add(gap).saturating_add(1);
        if at > n {
            return ones;
        }
        ones += 1;
    }
}

/// A binary feature whose rate goes from 0.2% to 0.4%, with 100,000 rows: the default JS
/// threshold (0.1) is far above that effect (≈ 0.013); calibrated thresholds catch it.
#[test]
fn a_rare_rate_doubling_is_detected_with_calibrated_thresholds() {
    let rows = 100_000u64;
    let reference_rows = 400_000u64;
    let binary = |rng: &mut SplitMix64, n: u64, rate: f64| {
        let ones = bernoulli_count(rng, n, rate);
        FeatureData::Categorical(categories(&[("0", n - ones), ("1", ones)]))
    };
    let mut rng = SplitMix64::new(77);
    let opts = CalibrateOptions {
        batch_rows: rows,
        draws: 200,
        seed: 1,
        false_alarms: 1.0,
        batches_in_period: 30.0,
    };
    let reference = vec![("flag".to_string(), binary(&mut rng, reference_rows, 0.002))];
    let calibration = calibrate(&reference, &opts);
    let per_feature: BTreeMap<String, FeatureThresholds> =
        calibration.features.iter().map(|f| (f.feature.clone(), f.thresholds.clone())).collect();
    let js = per_feature["flag"].js.expect("a js threshold");
    let (mut calibrated, mut defaults) = (0, 0);
    for seed in 0..SEEDS {
        let mut rng = SplitMix64::new(5000 + seed);
        let reference = vec![("flag".to_string(), binary(&mut rng, reference_rows, 0.002))];
        let batch = vec![("flag".to_string(), binary(&mut rng, rows, 0.004))];
        calibrated += usize::from(!drifting(&reference, &batch, &per_feature).is_empty());
        defaults += usize::from(!drifting(&reference, &batch, &BTreeMap::new()).is_empty());
    }
    println!(
        "detection rate, binary 0.2% → 0.4%, 100,000 rows: calibrated (js ≥ {js:.4}) {}, default thresholds (js ≥ 0.1) {}",
        calibrated as f64 / SEEDS as f64,
        defaults as f64 / SEEDS as f64
    );
    assert!(calibrated as f64 / SEEDS as f64 >= 0.95, "calibrated detection {calibrated}/{SEEDS}");
}

#[test]
fn calibrated_thresholds_keep_false_alarms_within_the_budget() {
    let pop = Population { shift: 0.0 };
    let mut rng = SplitMix64::new(4242);
    let rows = 2_000u64;
    let reference = pop.sample(&mut rng, 20_000, false);
    let opts = CalibrateOptions {
        batch_rows: rows,
        draws: 200,
        seed: 3,
        false_alarms: 1.0,
        batches_in_period: 10.0,
    };
    let calibration = calibrate(&reference, &opts);
    let per_feature: BTreeMap<String, FeatureThresholds> =
        calibration.features.iter().map(|f| (f.feature.clone(), f.thresholds.clone())).collect();
    // Alarms on the effect sizes alone (what calibration budgets), and by the full rule.
    let (mut effect_alarms, mut alarms) = (0, 0);
    let mut by_metric = BTreeMap::new();
    for seed in 0..SEEDS {
        let mut rng = SplitMix64::new(9000 + seed);
        let batch = pop.sample(&mut rng, rows as usize, false);
        let settings = settings(&per_feature);
        let inputs: Vec<FeatureInput<'_>> = reference
            .iter()
            .zip(&batch)
            .map(|((name, r), (_, c))| FeatureInput {
                name,
                reference: r,
                current: c,
                thresholds: settings.thresholds_for(name),
            })
            .collect();
        let verdicts = judge(&inputs, 200);
        effect_alarms += usize::from(verdicts.iter().any(|v| v.effects.iter().any(|m| m.exceeded)));
        for v in &verdicts {
            for m in v.effects.iter().filter(|m| m.exceeded) {
                *by_metric.entry(format!("{}:{}", v.feature, m.metric)).or_insert(0) += 1;
            }
        }
        alarms += usize::from(verdicts.iter().any(|v| v.status == Status::Drift));
    }
    let budget = opts.false_alarms / opts.batches_in_period;
    println!(
        "calibrated, same distribution: batches with an effect at its threshold {}, with drift {}, budget {budget} per batch (per test {:.5})",
        effect_alarms as f64 / SEEDS as f64,
        alarms as f64 / SEEDS as f64,
        calibration.per_test_rate
    );
    println!("effects at their calibrated threshold, by feature and metric: {by_metric:?}");
    // 100 batches at a budget of 0.1: the count is binomial (mean ≤ 10); 18 is its 99.5% bound.
    assert!(effect_alarms <= 18, "{effect_alarms} batches reached a calibrated threshold");
    assert!(alarms as f64 / SEEDS as f64 <= budget, "{alarms} drift alarms");
}

/// Calibration at production scale: 20 features of a 1,000,000-row reference (as the drift
/// report summarises them: past the exact limit, a sketch), batches of 100,000 rows, 200 draws.
/// A timing, not a check of the numbers: run it optimised,
/// `cargo test --release --test monitor_stats -- --ignored --nocapture`.
#[test]
#[ignore = "a timing at production scale; run optimised"]
fn calibration_at_production_scale_takes_seconds() {
    let mut rng = SplitMix64::new(11);
    let features: Vec<(String, FeatureData)> = (0..20)
        .map(|f| {
            let data = if f % 5 == 4 {
                let weights = [("a", 60.0), ("b", 25.0), ("c", 10.0), ("d", 4.9), ("e", 0.1)];
                FeatureData::Categorical(draw_categories(&mut rng, 1_000_000, &weights))
            } else {
                let mut acc = NumericAcc::new();
                for _ in 0..1_000_000 {
                    acc.add(f as f64 + rng.normal() * (1.0 + f as f64));
                }
                FeatureData::Numeric(acc.finish())
            };
            (format!("f{f}"), data)
        })
        .collect();
    let opts = CalibrateOptions {
        batch_rows: 100_000,
        draws: 200,
        seed: 1,
        false_alarms: 1.0,
        batches_in_period: 30.0,
    };
    let started = std::time::Instant::now();
    let calibration = calibrate(&features, &opts);
    let took = started.elapsed();
    println!(
        "calibrate: 20 features × 1,000,000 reference rows, batches of 100,000, 200 draws: {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(calibration.features.len(), 20);
    assert!(calibration.features.iter().all(|f| f.null.iter().all(|n| n.mean.is_finite())));
}
