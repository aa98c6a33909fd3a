//! `mlgit fetch`: refs, then only the LFS objects the named refs and paths need.

use mlgit::remote::fetch::{fetch, FetchOptions, FetchOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Download a remote's branches and tags, then only the LFS objects the named refs and paths need.
///
/// Branches land as remote-tracking branches (origin/raw…); your local branches do not move (see
/// `mlgit pull`). New tags come along; a tag that exists here with another value is kept and
/// reported. The LFS objects are those in the trees of the REFs given with --ref (default: the
/// branch the checked-out branch tracks, else main), at paths matching --include and not --exclude,
/// that this repository lacks; each is checked by sha256 before it is stored.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The remote (default: origin, or the only remote).
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub select: Select,
}

/// Which LFS objects a fetch, pull or clone gets.
#[derive(Debug, Clone, clap::Args)]
pub struct Select {
    /// A branch of the remote or a tag whose files' LFS objects to get (repeatable).
    #[arg(long = "ref", value_name = "REF")]
    pub refs: Vec<String>,
    /// Only paths matching this pattern or folder (repeatable), e.g. 'data/train/**'.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out paths matching this pattern or folder (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Parallel LFS transfers (default: lfs.concurrenttransfers, else 8).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

impl Select {
    pub fn options(self, remote: Option<String>, ctx: &Ctx) -> FetchOptions {
        FetchOptions {
            remote,
            refs: self.refs,
            include: self.include,
            exclude: self.exclude,
            jobs: self.jobs,
            interrupt: ctx.interrupt.clone(),
        }
    }
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = args.select.options(args.remote, ctx);
    let progress = ctx.printer.progress();
    let outcome = fetch(&repo, &opts, progress.as_ref())?;
    for tag in &outcome.tags_kept {
        ctx.printer.warn(&format!(
            "tag '{tag}' differs on {}: the local one was kept (compare with `git ls-remote {} refs/tags/{tag}`)",
            outcome.remote, outcome.remote
        ));
    }
    ctx.printer.result("fetch", &outcome, render);
    Ok(0)
}

pub fn render(o: &FetchOutcome) -> String {
    let mut s = String::new();
    for c in &o.updated {
        let name =
            c.name.strip_prefix("refs/remotes/").or_else(|| c.name.strip_prefix("refs/")).unwrap_or(&c.name);
        let what = match (&c.old, &c.new) {
            (None, Some(_)) => "new",
            (Some(_), None) => "deleted on the remote",
            _ => "updated",
        };
        s.push_str(&format!("  {name} ({what})\n"));
    }
    s.push_str(&format!(
        "Fetched {} ref change(s) from {}; LFS objects for {}: {} needed, {} missing, {} downloaded ({}); {:.2} s\n",
        o.updated.len(),
        o.remote,
        if o.refs.is_empty() { "no ref".to_string() } else { o.refs.join(", ") },
        o.objects,
        o.missing,
        o.lfs.transferred,
        human_bytes(o.lfs.bytes),
        o.seconds
    ));
    s
}
