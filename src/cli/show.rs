//! `mlgit show`: a snapshot's tracking record, lineage, model files and metrics.

use mlgit::data::profiles::{show_data, DataShow};
use mlgit::snapshot::show::{show, ShowOutcome};
use mlgit::snapshot::train_tag::set_arg;

use super::Ctx;

/// Show a snapshot (metrics, params, model files, lineage), or a data commit's table profiles.
///
/// For a snapshot, the lineage follows the Derived-From trailers: code from a dev/ commit, data
/// from a split commit, derived from a clean commit, derived from a raw commit. For a clean or
/// split commit (e.g. `mlgit show split`), it prints each table's profile.json: rows, and per
/// column its type, nulls, distinct values, mean, std, min, max and most frequent values.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot tag (or any commit holding tracking/run.json), or a clean/split commit or branch.
    pub tag: String,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    match show(&repo, &args.tag) {
        Ok(outcome) => ctx.printer.result("show", &outcome, render),
        Err(e) if e.kind() == mlgit::error::ErrorKind::NotFound => match show_data(&repo, &args.tag)? {
            Some(data) => ctx.printer.result("show", &data, render_data),
            None => {
                return Err(e.with_hint(
                    "a snapshot tag (see `mlgit status`), or a clean or split commit with profile.json",
                ))
            }
        },
        Err(e) => return Err(e),
    }
    Ok(0)
}

fn render_data(o: &DataShow) -> String {
    let mut s = format!("{}  commit {}\n  {}\n", o.rev, &o.commit[..7.min(o.commit.len())], o.subject);
    for (path, p) in &o.profiles {
        s.push_str(&format!("\n{path}: {} rows, {} columns\n", p.rows, p.columns.len()));
        s.push_str(&format!(
            "  {:<20} {:<9} {:>7} {:>9} {:>11} {:>11} {:>11} {:>11}  top\n",
            "column", "type", "nulls", "distinct", "mean", "std", "min", "max"
        ));
        for c in &p.columns {
            let num = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
            let n = c.numeric.as_ref();
            let distinct = format!("{}{}", if c.distinct.exact { "" } else { "~" }, c.distinct.count);
            let top: Vec<String> =
                c.top.iter().take(3).map(|t| format!("{} ({})", t.value, t.count)).collect();
            s.push_str(&format!(
                "  {:<20} {:<9} {:>7} {:>9} {:>11} {:>11} {:>11} {:>11}  {}\n",
                c.name,
                c.kind,
                c.nulls,
                distinct,
                num(n.map(|n| n.mean)),
                num(n.map(|n| n.std)),
                num(n.map(|n| n.min)),
                num(n.map(|n| n.max)),
                top.join(", ")
            ));
        }
    }
    s
}

fn full(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("unknown")
}

fn render(o: &ShowOutcome) -> String {
    let r = &o.record;
    let mut s = format!("Snapshot {}  commit {}\n", o.tag, o.commit);
    s.push_str(&format!(
        "  branch   {}\n  created  {} on {} (mlgit {})\n",
        r.branch, r.created_at, r.host, r.mlgit
    ));
    if r.command.is_empty() {
        s.push_str("  command  (trained elsewhere: --no-run)\n");
    } else {
        s.push_str(&format!("  command  {}  ({:.1} s)\n", r.command.join(" "), r.duration_s));
    }
    if !r.overrides.is_empty() {
        let sets: Vec<String> = r.overrides.iter().map(|(k, v)| set_arg(k, v)).collect();
        s.push_str(&format!("  overrides {}  (train-tag --set)\n", sets.join(" ")));
    }
    s.push_str("\nMetrics\n");
    for (k, v) in &r.metrics {
        s.push_str(&format!("  {k:<20} {v}\n"));
    }
    if !r.params.is_empty() {
        s.push_str("\nParams\n");
        for (k, v) in &r.params {
            s.push_str(&format!("  {k:<20} {v}\n"));
        }
    }
    s.push_str("\nLineage\n");
    s.push_str(&format!("  code   dev   {}\n", full(&o.lineage.code)));
    s.push_str(&format!("  data   split {}\n", full(&o.lineage.split)));
    s.push_str(&format!("         clean {}\n", full(&o.lineage.clean)));
    s.push_str(&format!("         raw   {}\n", full(&o.lineage.raw)));
    if !o.serving.is_empty() {
        s.push_str("\nServing\n");
        for e in &o.serving {
            s.push_str(&format!("  {:<10} since {}\n", e.env, e.since.as_deref().unwrap_or("?")));
        }
    }
    s.push_str("\nModel files\n");
    for m in &r.model {
        s.push_str(&format!("  {}  {} bytes  sha256 {}\n", m.path, m.size, m.sha256));
    }
    s
}
