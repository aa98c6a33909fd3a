//! `mlgit pull`: fetch, integrate into the local convention branches, get the objects they need.

use mlgit::remote::fetch::{pull, PullOutcome};

use super::fetch::Select;
use super::status::human_bytes;
use super::Ctx;

/// Fetch from a remote, bring the local convention branches up to date, and get the LFS objects needed.
///
/// First as `mlgit fetch` (same --ref/--include/--exclude), then each convention branch is brought
/// up to date with the remote's: created when missing here, fast-forwarded, or (append-only
/// branches that gained different batches on both sides) merged without a checkout. A checked-out
/// branch that moves gets its files updated. Finally the LFS objects the updated local REFs need are
/// downloaded. `mlgit pull --ref split --include 'data/train/**'` moves exactly data/train's objects.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The remote (default: origin, or the only remote).
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub select: Select,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = args.select.options(args.remote, ctx);
    let progress = ctx.printer.progress();
    let outcome = pull(&repo, &opts, progress.as_ref())?;
    // A refused branch fails the command (exit 1) once the rest is reported: the error names
    // each refused branch with its reason and what to do; with --json, the error document does.
    match outcome.integrate.error() {
        Some(err) => {
            if !ctx.printer.json {
                ctx.printer.result("pull", &outcome, render);
            }
            Err(err)
        }
        None => {
            ctx.printer.result("pull", &outcome, render);
            Ok(0)
        }
    }
}

fn render(o: &PullOutcome) -> String {
    let mut s = super::fetch::render(&o.fetch);
    for b in &o.integrate.branches {
        let action = serde_json::to_value(b.action).ok().and_then(|v| v.as_str().map(str::to_string));
        let action = action.unwrap_or_default().replace('-', " ");
        match &b.reason {
            Some(reason) => s.push_str(&format!("  {}: {action} ({reason})\n", b.branch)),
            None => s.push_str(&format!("  {}: {action}\n", b.branch)),
        }
    }
    if o.lfs_after.transferred > 0 {
        s.push_str(&format!(
            "Then downloaded {} LFS object(s) ({}) for the updated branches\n",
            o.lfs_after.transferred,
            human_bytes(o.lfs_after.bytes)
        ));
    }
    s
}
