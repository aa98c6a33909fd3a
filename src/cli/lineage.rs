//! `mlgit lineage`: the chain from a snapshot or data commit back to its raw batches.

use mlgit::data::lineage::{lineage, LineageOutcome};

use super::Ctx;

/// Trace a snapshot, split or clean commit back to the raw data and its provenance.
///
/// Follows the Derived-From trailers (split → clean → raw) and, for a snapshot tag, the split named
/// in its tracking/run.json; then lists every raw batch behind the raw commit (or every monitoring
/// batch behind a monitoring commit) with where it came from (source, host, user, time). Each
/// commit is named after the kind of the branch it is on or was taken from.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A snapshot tag, a data or monitoring branch (split, clean, raw, monitoring/prod) or a commit.
    #[arg(value_name = "REF")]
    pub rev: String,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let outcome = lineage(&repo, &args.rev)?;
    ctx.printer.result("lineage", &outcome, render);
    Ok(0)
}

fn render(o: &LineageOutcome) -> String {
    let short = |s: &str| s[..7.min(s.len())].to_string();
    let mut s = format!("Lineage of {}\n", o.rev);
    for (i, l) in o.chain.iter().enumerate() {
        let arrow = if i == 0 { "    " } else { "  ← " };
        s.push_str(&format!(
            "{arrow}{:<10} {} {}  {}\n",
            l.kind,
            short(&l.commit),
            &l.date[..10.min(l.date.len())],
            l.subject
        ));
    }
    if !o.raw_batches.is_empty() {
        let monitoring = o.chain.last().is_some_and(|l| l.kind == "monitoring");
        let what = if monitoring { "Monitoring batches" } else { "Raw batches" };
        s.push_str(&format!("{what} ({})\n", o.raw_batches.len()));
    }
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for b in &o.raw_batches {
        s.push_str(&format!("  {} {}  {}\n", short(&b.commit), &b.date[..10.min(b.date.len())], b.subject));
        s.push_str(&format!(
            "      source {}  host {}  user {}  ingested {}\n",
            or(&b.source),
            or(&b.host),
            or(&b.user),
            or(&b.ingested_at)
        ));
        if let Some(m) = &b.monitoring {
            let mut parts = vec![m.kind.clone()];
            if let Some(id) = &m.batch {
                parts.push(format!("batch {id}"));
            }
            if let Some(r) = m.rows_per_tag.as_ref().or(m.rows.as_ref()) {
                parts.push(format!("rows {r}"));
            }
            if let (Some(a), Some(z)) = (&m.window_start, &m.window_end) {
                parts.push(format!("window {a} → {z}"));
            }
            if let Some(a) = &m.alert {
                parts.push(format!("alert {a}"));
            }
            s.push_str(&format!("      {}\n", parts.join("  ")));
        }
    }
    if !o.serving.is_empty() {
        s.push_str("Served by\n");
        for sv in &o.serving {
            match (&sv.snapshot, &sv.split) {
                (Some(c), Some(sp)) => s.push_str(&format!(
                    "  {:<16} snapshot {}  trained on split {}  (mlgit lineage {})\n",
                    sv.tag,
                    short(c),
                    short(sp),
                    sv.tag
                )),
                _ => s.push_str(&format!("  {:<16} (not a snapshot in this repository)\n", sv.tag)),
            }
        }
    }
    s
}
