//! `mlgit diff`: files (and with --metrics, params and metrics) that changed between two refs.

use mlgit::data::diff::{diff, Changes, Counts, DiffOptions, DiffOutcome, MetricsDiff, ValueRow};
use mlgit::data::split::SPLITS;
use mlgit::snapshot::record::Evaluation;
use mlgit::tracking::format_metric;
use mlgit::tracking::leaderboard::{terminal_text, to_text, Table, TableRow};

use super::status::human_bytes;
use super::Ctx;

/// Show what changed between two commits, branches or tags: files, bytes, splits, metrics.
///
/// Lists files added (A), removed (D) and modified (M) from A to B, with counts and byte deltas per
/// top folder and per extension. LFS files are compared by content id, not by pointer text. When
/// either side is a split commit, the files per split are shown; for tables profiled on clean or
/// split commits (profile.json), the rows added or removed and each changed column's mean, null
/// rate and top categories; with --metrics, the params and metrics of two snapshots (their
/// tracking/run.json) side by side instead: per param and metric, A, B and the change, changed
/// params first (--files adds the file comparison back).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The older side: a branch, tag or commit.
    pub a: String,
    /// The newer side: a branch, tag or commit.
    pub b: String,
    /// Only files under this folder (or this file).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Compare the params and metrics of the tracking records (snapshots) instead of the files.
    #[arg(long)]
    pub metrics: bool,
    /// With --metrics: compare the files too.
    #[arg(long, requires = "metrics")]
    pub files: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts =
        DiffOptions { a: args.a, b: args.b, path: args.path, metrics: args.metrics, files: args.files };
    let outcome = diff(&repo, &opts)?;
    ctx.printer.result("diff", &outcome, render);
    Ok(0)
}

fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", human_bytes(n.unsigned_abs()))
}

fn counts(c: &Counts) -> String {
    format!("+{} -{} ~{}  {}", c.added, c.removed, c.modified, signed_bytes(c.bytes_delta))
}

fn value(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// A change to 6 significant digits: binary noise goes (0.86 - 0.81 = 0.04999999999999993 shows
/// +0.05) and a tiny change stays visible (1e-10 → 3e-10 shows +2e-10); JSON keeps the exact
/// value. A difference too large for a float (no delta) is just "changed".
fn signed_delta(d: f64) -> String {
    let rounded: f64 = format!("{d:.5e}").parse().unwrap_or(d);
    if !rounded.is_finite() {
        return "changed".into();
    }
    // Very small or large changes in exponent form (+2e-10), not 14 zeros.
    if rounded != 0.0 && (rounded.abs() < 1e-4 || rounded.abs() >= 1e15) {
        return format!("{rounded:+e}");
    }
    format!("{rounded:+}")
}

/// One aligned table of params or metrics: name, A, B and the change.
fn table(kind: &str, o: &DiffOutcome, rows: &[ValueRow]) -> String {
    if rows.is_empty() {
        return format!("{kind}s: none\n");
    }
    let delta = |r: &ValueRow| match r.delta {
        _ if !r.changed => String::new(),
        Some(d) => signed_delta(d),
        None => "changed".into(),
    };
    // Metrics as the leaderboard prints them (253, not 253.0; 4 decimals); JSON keeps them exact.
    let shown = |v: &Option<serde_json::Value>| match v.as_ref().and_then(|v| v.as_f64()) {
        Some(x) if kind == "metric" => format_metric(x),
        _ => value(v),
    };
    let t = Table {
        header: vec![kind.to_string(), o.a.rev.clone(), o.b.rev.clone(), "delta".into()],
        numeric: vec![false, true, true, true],
        rows: rows
            .iter()
            .map(|r| TableRow {
                cells: vec![r.key.clone(), shown(&r.a), shown(&r.b), delta(r)],
                comparable: true,
            })
            .collect(),
        footnote: None,
        links: None,
    };
    to_text(&t)
}

/// A record's evaluation in words; the split name comes from the training's metrics file, so
/// control characters in it are shown escaped, as in the tables.
fn evaluation(e: &Option<Evaluation>) -> String {
    match e {
        Some(Evaluation { split, rows: Some(n), .. }) => format!("{} ({n} rows)", terminal_text(split)),
        Some(e) => terminal_text(&e.split),
        None => "not recorded".into(),
    }
}

fn metrics(o: &DiffOutcome, m: &MetricsDiff) -> String {
    let mut s = String::new();
    if m.a_evaluation.is_some() || m.b_evaluation.is_some() {
        s.push_str(&format!(
            "Evaluated on: {} → {}",
            evaluation(&m.a_evaluation),
            evaluation(&m.b_evaluation)
        ));
        s.push_str(if m.comparable { "\n" } else { " — different data: the metrics do not compare\n" });
    }
    s.push_str(&table("param", o, &m.params));
    s.push('\n');
    s.push_str(&table("metric", o, &m.metrics));
    s
}

fn render(o: &DiffOutcome) -> String {
    let short = |s: &str| s[..7.min(s.len())].to_string();
    let mut s = format!(
        "{} ({}) → {} ({}){}\n",
        o.a.rev,
        short(&o.a.commit),
        o.b.rev,
        short(&o.b.commit),
        o.path.as_ref().map(|p| format!(", under {p}")).unwrap_or_default()
    );
    if let Some(m) = &o.metrics {
        s.push_str(&metrics(o, m));
    }
    if let Some(c) = &o.changes {
        if o.metrics.is_some() {
            s.push('\n');
        }
        s.push_str(&changes(c));
    }
    s
}

fn changes(o: &Changes) -> String {
    let mut s = format!("Total    {}\n", counts(&o.total));
    if !o.by_folder.is_empty() {
        s.push_str("By folder\n");
        for (k, c) in &o.by_folder {
            s.push_str(&format!("  {k:<24} {}\n", counts(c)));
        }
        s.push_str("By extension\n");
        for (k, c) in &o.by_extension {
            s.push_str(&format!("  {k:<24} {}\n", counts(c)));
        }
    }
    if let Some(splits) = &o.splits {
        s.push_str("Files per split\n");
        for (k, c) in SPLITS.iter().filter_map(|k| splits.get(*k).map(|c| (k, c))) {
            s.push_str(&format!("  {k:<11} {:>8} → {:<8} ({:+})\n", c.a, c.b, c.delta));
        }
    }
    if o.pointer_only > 0 {
        s.push_str(&format!(
            "{} LFS pointer(s) rewritten with the same content (not counted)\n",
            o.pointer_only
        ));
    }
    if !o.tables.is_empty() {
        s.push_str("Tables (profile.json)\n");
        for t in &o.tables {
            let rows = |r: Option<u64>| r.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            s.push_str(&format!(
                "  {}  rows {} → {} ({:+})\n",
                t.path,
                rows(t.rows_a),
                rows(t.rows_b),
                t.rows_delta
            ));
            for c in &t.columns {
                let mut parts = vec![c.status.clone()];
                if let Some((x, y)) = c.mean {
                    parts.push(format!("mean {x:.4} → {y:.4}"));
                }
                if let Some((x, y)) = c.null_rate {
                    parts.push(format!("nulls {:.1}% → {:.1}%", 100.0 * x, 100.0 * y));
                }
                for (v, (x, y)) in c.top.iter().take(3) {
                    parts.push(format!("'{v}' {:.1}% → {:.1}%", 100.0 * x, 100.0 * y));
                }
                s.push_str(&format!("    {:<20} {}\n", c.name, parts.join(", ")));
            }
        }
    }
    if !o.files.is_empty() {
        s.push_str("Files\n");
    }
    for f in &o.files {
        let letter = match f.status {
            "added" => 'A',
            "removed" => 'D',
            _ => 'M',
        };
        s.push_str(&format!("{letter}\t{}\n", f.path));
    }
    s
}
