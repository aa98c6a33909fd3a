//! `mlgit monitor …`: production batches on `monitoring/<env>`, labels, drift reports, thresholds
//! and a feature's history.

use std::path::PathBuf;

use mlgit::monitor::branch::BatchKind;
use mlgit::monitor::decide::{FeatureVerdict, Status};
use mlgit::monitor::drift::{drift, DriftOptions, DriftReport, Severity};
use mlgit::monitor::history::{history, History, HistoryOptions};
use mlgit::monitor::log::{log, LogOptions, LogOutcome};
use mlgit::monitor::tune::{tune, TuneOptions, TuneOutcome};

use super::Ctx;

/// Monitor what each environment serves: log production batches with the tag of the model that
/// served them, join labels, and compare them with that model's own training data.
///
/// Batches are committed, append-only, on monitoring/<env>; settings and thresholds live in
/// monitor.yaml on the same branch, so every alert's settings are versioned. See docs/monitor.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MonitorCommand {
    Log(LogArgs),
    Label(LabelArgs),
    Drift(DriftArgs),
    Calibrate(CalibrateArgs),
    History(HistoryArgs),
}

impl MonitorCommand {
    pub fn name(&self) -> &'static str {
        match self {
            MonitorCommand::Log(_) => "monitor log",
            MonitorCommand::Label(_) => "monitor label",
            MonitorCommand::Drift(_) => "monitor drift",
            MonitorCommand::Calibrate(_) => "monitor calibrate",
            MonitorCommand::History(_) => "monitor history",
        }
    }
}

/// Commit a batch of production records (features, prediction, serving tag) to monitoring/<env>.
///
/// Each record names the snapshot tag that served it, in the column `tag_column` of monitor.yaml
/// (default model_tag), or --tag names it for the whole batch. The batch is refused, and nothing
/// is committed, when it is empty, when a record has no tag, when a tag is not a snapshot, or when
/// its columns do not match the training data of its tag.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The environment (one of `environments` in mlgit.yaml, e.g. prod).
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// A table (CSV, TSV, JSONL, Parquet) or a folder of them.
    #[arg(long, value_name = "FILE|DIR")]
    pub source: PathBuf,
    /// The snapshot tag that served every record of the batch.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// The commit message (default: a summary of the batch).
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
}

/// Commit ground truth that arrived later, joined to logged requests by request id.
///
/// The tables need the columns `request_id_column` and `label_column` of monitor.yaml (default
/// request_id and label). `monitor drift` then reports the primary metric and calibration per tag.
#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    #[arg(long, value_name = "ENV")]
    pub env: String,
    #[arg(long, value_name = "FILE|DIR")]
    pub source: PathBuf,
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
}

/// Compare recent batches with the training data of the model that served each record.
///
/// Each tag's records are compared with that tag's snapshot's training split: numeric features by
/// PSI, Wasserstein distance (in reference IQRs) and the KS test; categorical ones by
/// Jensen-Shannon distance, unseen categories and a chi-square test. A feature drifts when an
/// effect size reaches its threshold and the test is significant after a Benjamini-Hochberg
/// correction; fewer than min_rows records give "insufficient data". Exit code 3 when an alert
/// fires.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The batches whose records end at or after DATE (2026-11-30 or an RFC 3339 time).
    #[arg(long, value_name = "DATE", conflicts_with = "last")]
    pub since: Option<String>,
    /// The last N batches (default 1).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Every batch that no committed report covers yet (what CI runs with --commit, so batches
    /// pushed together are all checked).
    #[arg(long, conflicts_with_all = ["since", "last"])]
    pub unreported: bool,
    /// Only the records served by this tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Also commit the report as alerts/<time>.json on the branch.
    #[arg(long)]
    pub commit: bool,
}

/// Set the thresholds so that the expected false alarms stay within a budget.
///
/// Draws pseudo-batches of production size from the training data (seeded), measures each effect
/// size when nothing drifted, and writes per-feature thresholds with the numbers used to
/// monitor.yaml (a commit on the branch).
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// False alarms allowed over --per days.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub false_alarms: f64,
    /// The period, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 30.0)]
    pub per: f64,
    /// The snapshot whose training data is the reference (default: the one serving the last batch).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Records per batch and tag (default: the median of logged batches).
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<u64>,
    /// Drift runs per day (default: the logged batches' rate).
    #[arg(long, value_name = "N")]
    pub batches_per_day: Option<f64>,
    /// Pseudo-batches drawn.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub draws: usize,
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
}

/// A feature's drift batch by batch, with the batches where the serving tags changed marked.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[arg(long, value_name = "ENV")]
    pub env: String,
    #[arg(long, value_name = "F")]
    pub feature: String,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    match args.command {
        MonitorCommand::Log(a) => {
            let opts = LogOptions {
                env: a.env,
                source: ctx.dir.join(a.source),
                tag: a.tag,
                message: a.message,
                kind: BatchKind::Requests,
                interrupt: ctx.interrupt.clone(),
            };
            let out = log(&repo, &opts, ctx.printer.progress().as_ref())?;
            ctx.printer.result("monitor log", &out, render_log);
        }
        MonitorCommand::Label(a) => {
            let opts = LogOptions {
                env: a.env,
                source: ctx.dir.join(a.source),
                tag: None,
                message: a.message,
                kind: BatchKind::Labels,
                interrupt: ctx.interrupt.clone(),
            };
            let out = log(&repo, &opts, ctx.printer.progress().as_ref())?;
            ctx.printer.result("monitor label", &out, render_log);
        }
        MonitorCommand::Drift(a) => {
            let opts = DriftOptions {
                env: a.env,
                since: a.since,
                last: a.last,
                unreported: a.unreported,
                tag: a.tag,
                commit: a.commit,
                interrupt: ctx.interrupt.clone(),
            };
            let report = drift(&repo, &opts)?;
            ctx.printer.result("monitor drift", &report, render_drift);
            return Ok(if report.alert { 3 } else { 0 });
        }
        MonitorCommand::Calibrate(a) => {
            let opts = TuneOptions {
                env: a.env,
                tag: a.tag,
                false_alarms: a.false_alarms,
                per_days: a.per,
                batch_rows: a.batch_rows,
                batches_per_day: a.batches_per_day,
                draws: a.draws,
                seed: a.seed,
            };
            let out = tune(&repo, &opts)?;
            for w in &out.warnings {
                ctx.printer.warn(w);
            }
            ctx.printer.result("monitor calibrate", &out, render_tune);
        }
        MonitorCommand::History(a) => {
            let opts = HistoryOptions { env: a.env, feature: a.feature, interrupt: ctx.interrupt.clone() };
            let out = history(&repo, &opts)?;
            ctx.printer.result("monitor history", &out, render_history);
        }
    }
    Ok(0)
}

fn short(s: &str) -> &str {
    &s[..s.len().min(7)]
}

fn render_log(o: &LogOutcome) -> String {
    let what = match o.kind {
        BatchKind::Requests => {
            let tags: Vec<String> = o.tags.iter().map(|(t, n)| format!("{t}: {n}")).collect();
            format!("{} records ({})", o.rows, tags.join(", "))
        }
        BatchKind::Labels => format!("{} labels", o.rows),
    };
    format!(
        "{} {}: batch {} with {what}, {} → {} [{}]\n",
        o.branch,
        short(&o.commit),
        o.batch,
        o.window.start,
        o.window.end,
        o.files.join(", ")
    )
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::InsufficientData => "insufficient data",
        Status::Warning => "warning",
        Status::Drift => "DRIFT",
    }
}

fn feature_line(v: &FeatureVerdict) -> String {
    let effects: Vec<String> = v.effects.iter().map(|e| format!("{} {:.4}", e.metric, e.value)).collect();
    format!(
        "    {:<20} {:<12} {:<40} p_adj {:<8} {}{}\n",
        v.feature,
        v.kind,
        effects.join(", "),
        fmt(v.p_adjusted),
        status_word(v.status),
        if v.approximate { " (approx.)" } else { "" }
    )
}

fn render_drift(r: &DriftReport) -> String {
    let mut s = format!(
        "{}: {} batch(es), {} → {}\n",
        r.branch,
        r.window.batches.len(),
        r.window.start,
        r.window.end
    );
    if let Some(n) = &r.note {
        s.push_str(n);
        s.push('\n');
        return s;
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    if r.alerts.is_empty() {
        s.push_str("no alert\n");
    } else {
        s.push_str(&format!("{} alert(s), most severe first:\n", r.alerts.len()));
        for a in &r.alerts {
            let sev = match a.severity {
                Severity::High => "HIGH",
                Severity::Medium => "MEDIUM",
                Severity::Low => "low",
            };
            s.push_str(&format!("  {sev:<6} {:<16} {:<12} {}\n", a.check, a.tag, a.message));
        }
    }
    for t in &r.tags {
        s.push_str(&format!(
            "\n  {} ({} records) vs split {} {} ({} records, from {}{}): {}\n",
            t.tag,
            t.rows,
            short(&t.split),
            t.reference.path,
            t.reference.rows,
            t.reference.source,
            if t.reference.approximate { ", approximate" } else { "" },
            status_word(t.status)
        ));
        let mut features: Vec<&FeatureVerdict> = t.features.iter().collect();
        features.sort_by(|a, b| b.status.cmp(&a.status).then(a.feature.cmp(&b.feature)));
        for v in features.into_iter().chain(t.prediction.iter()) {
            s.push_str(&feature_line(v));
        }
        if let Some(m) = &t.labels {
            s.push_str(&format!(
                "    labels: {} joined, {} {} (at training {}), ECE {}, Brier {}\n",
                m.rows,
                m.primary_metric,
                fmt(m.value),
                fmt(m.recorded),
                fmt(m.ece),
                fmt(m.brier)
            ));
        }
    }
    if let Some(c) = &r.commit {
        s.push_str(&format!("\nreport committed: {} {}\n", short(c), r.path.as_deref().unwrap_or("")));
    }
    s
}

fn render_tune(o: &TuneOutcome) -> String {
    let mut s = format!(
        "{} {}: thresholds from {} pseudo-batches of {} records per feature, drawn from the training data of {}\n\
         budget {} false alarm(s) per {} batches → {:.2e} per test\n",
        o.branch,
        short(&o.commit),
        o.calibration.options.draws,
        o.calibration.options.batch_rows,
        o.tag,
        o.calibration.options.false_alarms,
        o.calibration.options.batches_in_period,
        o.calibration.per_test_rate
    );
    for f in &o.calibration.features {
        let t = serde_json::to_string(&f.thresholds).unwrap_or_default();
        s.push_str(&format!("  {:<20} {t}\n", f.feature));
    }
    s
}

fn render_history(h: &History) -> String {
    let mut s = format!("{} — {}\n", h.branch, h.feature);
    for r in &h.rows {
        let points: Vec<String> = r
            .tags
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} ({} rows, {})",
                    p.tag,
                    p.statistic,
                    fmt(p.value),
                    p.rows,
                    status_word(p.status)
                )
            })
            .collect();
        s.push_str(&format!(
            "{} {} {:<20} {}\n",
            if r.switch { "▶" } else { " " },
            r.end,
            r.batch,
            points.join("; ")
        ));
    }
    s.push_str("▶ = the serving tags changed at this batch\n");
    s
}
