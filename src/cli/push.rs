//! `mlgit push`: LFS objects first, then the refs, atomically.

use mlgit::remote::git_cli::RefStatus;
use mlgit::remote::push::{push, PushOptions, PushOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Send branches and snapshots to a remote: first the LFS objects its LFS server lacks, then the refs.
///
/// Without REF, pushes the convention branches that exist here (main, raw, clean, split, dev/*,
/// stable/*, monitoring/*, env/*) and the snapshot tags; with --all, every branch and tag. Only the
/// LFS objects introduced by commits the remote does not have are offered, and the server is asked
/// which of those it lacks (nothing to push: no LFS request at all). The refs then move in one
/// atomic `git push` where the server supports it, with your own git set-up (SSH keys, credential
/// helpers). If the remote has commits you do not have, nothing is sent: run `mlgit pull` first.
/// If sending objects fails, no ref moves. No git-lfs is needed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The remote (default: origin, or the only remote), or a URL.
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,
    /// Branches or tags to push (default: the convention branches and snapshot tags).
    #[arg(value_name = "REF", conflicts_with = "all")]
    pub refs: Vec<String>,
    /// Push every branch and every tag.
    #[arg(long)]
    pub all: bool,
    /// Show what would be sent; send nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Parallel LFS transfers (default: lfs.concurrenttransfers, else 8).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = PushOptions {
        remote: args.remote,
        refs: args.refs,
        all: args.all,
        dry_run: args.dry_run,
        jobs: args.jobs,
        interrupt: ctx.interrupt.clone(),
    };
    let progress = ctx.printer.progress();
    let outcome = push(&repo, &opts, progress.as_ref())?;
    ctx.printer.result("push", &outcome, render);
    Ok(0)
}

fn render(o: &PushOutcome) -> String {
    let mut s = String::new();
    let verb = if o.dry_run { "Would push" } else { "Pushed" };
    let moved: Vec<_> = o.refs.iter().filter(|r| r.status != RefStatus::UpToDate).collect();
    for r in &moved {
        let what = match r.status {
            RefStatus::New => "new",
            RefStatus::FastForward => "fast-forward",
            RefStatus::Forced => "forced",
            RefStatus::Deleted => "deleted",
            RefStatus::UpToDate => "up to date",
            RefStatus::Rejected => "rejected",
        };
        s.push_str(&format!("  {} ({what})\n", r.name));
    }
    if moved.is_empty() {
        s.push_str(&format!("Everything is up to date on {} ({} refs)\n", o.remote, o.refs.len()));
        return s;
    }
    let sent = if o.dry_run { "to send" } else { "sent" };
    s.push_str(&format!(
        "{verb} {} ref(s) to {}; LFS: {} object(s) needed, {} {sent} ({}), {} already there; {:.2} s\n",
        moved.len(),
        o.remote,
        o.objects,
        o.lfs.transferred,
        human_bytes(o.lfs.bytes),
        o.lfs.already_there,
        o.seconds
    ));
    s
}
