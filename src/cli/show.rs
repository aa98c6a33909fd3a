//! `mlgit show`: a snapshot's tracking record, lineage, model files and metrics.

use mlgit::snapshot::show::{show, ShowOutcome};

use super::Ctx;

/// Show a snapshot: metrics, params, model files, and where its code and data came from.
///
/// The lineage follows the Derived-From trailers: code from a dev/ commit, data from a split
/// commit, derived from a clean commit, derived from a raw commit.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot tag (or any commit holding tracking/run.json).
    pub tag: String,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let outcome = show(&repo, &args.tag)?;
    ctx.printer.result("show", &outcome, render);
    Ok(0)
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
    s.push_str("\nModel files\n");
    for m in &r.model {
        s.push_str(&format!("  {}  {} bytes  sha256 {}\n", m.path, m.size, m.sha256));
    }
    s
}
