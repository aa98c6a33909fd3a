//! The `monitor calibrate` command: pick the reference (the tag serving the latest batch, or
//! `--tag`), size the pseudo-batches like production, run [`super::calibrate`], and commit the
//! thresholds, with the numbers behind them, into `monitor.yaml` on the branch.

use serde::Serialize;

use super::branch::{BatchKind, MonitoringBranch};
use super::calibrate::{calibrate, CalibrateOptions, Calibration};
use super::drift::features_of;
use super::log::keys;
use super::reference::{self, ref_table, snapshot_of};
use super::settings::MONITOR_FILE;
use crate::error::{Error, Result};
use crate::repo::trailers::Message;
use crate::repo::Repo;

#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub env: String,
    pub tag: Option<String>,
    /// False alarms allowed…
    pub false_alarms: f64,
    /// …per this many days.
    pub per_days: f64,
    pub batch_rows: Option<u64>,
    pub batches_per_day: Option<f64>,
    pub draws: usize,
    pub seed: u64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            env: String::new(),
            tag: None,
            false_alarms: 1.0,
            per_days: 30.0,
            batch_rows: None,
            batches_per_day: None,
            draws: 200,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TuneOutcome {
    pub env: String,
    pub branch: String,
    pub tag: String,
    pub commit: String,
    pub batches_per_day: f64,
    pub calibration: Calibration,
    /// Thresholds capped at the largest value their statistic can take (that test cannot alert at
    /// this batch size).
    pub warnings: Vec<String>,
}

pub fn tune(repo: &Repo, opts: &TuneOptions) -> Result<TuneOutcome> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !(positive(opts.false_alarms) && positive(opts.per_days) && opts.draws >= 20)
        || opts.batches_per_day.is_some_and(|b| !positive(b))
        || opts.batch_rows == Some(0)
    {
        return Err(Error::invalid(
            "--false-alarms, --per and --batches-per-day must be finite numbers above 0, --batch-rows at least 1, and --draws at least 20",
        ));
    }
    let mb = MonitoringBranch::open(repo, &opts.env)?;
    let batches = mb.batches(repo.git())?;
    let requests: Vec<_> = batches.iter().filter(|m| m.kind == BatchKind::Requests).collect();
    let tag = match (&opts.tag, requests.last()) {
        (Some(t), _) => t.clone(),
        (None, Some(m)) => m.tags.iter().max_by_key(|(_, n)| **n).map(|(t, _)| t.clone()).unwrap_or_default(),
        (None, None) => {
            return Err(Error::not_found(format!(
                "'{}' holds no request batch to tell which model serves",
                mb.branch
            ))
            .with_hint("pass --tag TAG to calibrate on that snapshot's training data"))
        }
    };
    let mut per_tag_rows: Vec<u64> = requests.iter().flat_map(|m| m.tags.values().copied()).collect();
    per_tag_rows.sort_unstable();
    let batch_rows = opts
        .batch_rows
        .or_else(|| per_tag_rows.get(per_tag_rows.len() / 2).copied())
        .unwrap_or(mb.settings.min_rows)
        .max(1);
    let batches_per_day = opts.batches_per_day.unwrap_or_else(|| rate_per_day(&requests));
    let columns = requests.last().map(|m| m.columns.clone());
    let table = ref_table(repo, snapshot_of(repo, &tag)?, &mb.settings, columns.as_deref())?;
    let features = features_of(&mb.settings, &table);
    let wanted: Vec<_> = features.iter().collect();
    let loaded = reference::load(repo, table, &wanted)?;
    let data: Vec<_> = features
        .iter()
        .filter_map(|f| loaded.columns.get(&f.name).map(|d| (f.name.clone(), d.clone())))
        .collect();
    let copts = CalibrateOptions {
        batch_rows,
        draws: opts.draws,
        seed: opts.seed,
        false_alarms: opts.false_alarms,
        batches_in_period: (batches_per_day * opts.per_days).max(1.0),
    };
    let mut calibration = calibrate(&data, &copts);
    let warnings = cap_at_maxima(&mut calibration);

    let mut settings = mb.settings.clone();
    for f in &calibration.features {
        settings.features.insert(f.feature.clone(), f.thresholds.clone());
    }
    settings.calibration = Some(serde_json::json!({
        "tag": tag,
        "reference": loaded.source,
        "false_alarms": opts.false_alarms,
        "per_days": opts.per_days,
        "batches_per_day": batches_per_day,
        "batch_rows": batch_rows,
        "draws": opts.draws,
        "seed": opts.seed,
        "per_test_rate": calibration.per_test_rate,
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }));
    let text = settings.to_yaml()?;
    let message = Message::new(format!(
        "monitor calibrate: thresholds for {} feature(s), {} false alarm(s) per {} days",
        calibration.features.len(),
        opts.false_alarms,
        opts.per_days
    ))
    .trailer(keys::ENVIRONMENT, &mb.env)
    .trailer(keys::KIND, "settings")
    .trailer(keys::TAGS, &tag)
    .render();
    let commit = mb.commit_file(repo, MONITOR_FILE, text.as_bytes(), &message, "mlgit monitor calibrate")?;
    Ok(TuneOutcome {
        env: mb.env,
        branch: mb.branch,
        tag,
        commit: commit.to_string(),
        batches_per_day,
        calibration,
        warnings,
    })
}

/// KS is at most 1 and Jensen–Shannon distance at most √ln 2: a threshold beyond could never be
/// reached, which would switch the check off without saying so. Capped, with a warning each.
fn cap_at_maxima(c: &mut Calibration) -> Vec<String> {
    let mut out = Vec::new();
    let rows = c.options.batch_rows;
    for f in &mut c.features {
        for (name, value, max) in [
            ("ks", &mut f.thresholds.ks, 1.0),
            ("js", &mut f.thresholds.js, std::f64::consts::LN_2.sqrt()),
            ("unseen", &mut f.thresholds.unseen, 1.0),
        ] {
            if let Some(v) = value.as_mut().filter(|v| **v >= max) {
                *v = max;
                out.push(format!(
                    "{}: {name} cannot tell drift from chance at {rows} records per batch (threshold capped at its maximum {max:.3}); log larger batches",
                    f.feature
                ));
            }
        }
    }
    out
}

/// Request batches per day over the logged history (1 when it spans less than a day).
fn rate_per_day(requests: &[&super::branch::BatchManifest]) -> f64 {
    let times: Vec<i64> = requests.iter().filter_map(|m| super::cells::parse_time(&m.logged_at)).collect();
    match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) if b - a >= 86_400_000_000 => {
            requests.len() as f64 / ((b - a) as f64 / 86_400_000_000.0)
        }
        _ => 1.0,
    }
}
