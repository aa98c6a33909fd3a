//! `mlgit gc`: remove unreachable LFS objects and leftover temporary files.

use mlgit::gc::{gc, GcOptions, GcOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Remove LFS objects that nothing reaches, and temporary files that killed runs left behind.
///
/// An LFS object is kept when any ref, reflog entry, worktree HEAD or index (main and linked
/// worktrees) reaches a pointer to it. Also removed: `.git/lfs/tmp/*`, partial pack files
/// (`objects/pack/pack_git2_*`, `tmp_*`) and `mlgit-clean-*` folders in the temporary folder that
/// no running process holds. Nothing younger than an hour is removed (a command may be writing it).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let outcome = gc(&repo, &GcOptions { dry_run: args.dry_run, interrupt: ctx.interrupt.clone() })?;
    ctx.printer.result("gc", &outcome, render);
    Ok(0)
}

fn render(o: &GcOutcome) -> String {
    let verb = if o.dry_run { "Would remove" } else { "Removed" };
    let mut s = String::new();
    for r in &o.removed_objects {
        s.push_str(&format!("{} LFS object {} ({})\n", verb, r.oid, human_bytes(r.size)));
    }
    for p in &o.removed_temporary {
        s.push_str(&format!("{} {}\n", verb, p.display()));
    }
    s.push_str(&format!(
        "{verb} {} LFS object(s) and {} temporary file(s), {}; kept {} reachable object(s){}\n",
        o.removed_objects.len(),
        o.removed_temporary.len(),
        human_bytes(o.bytes),
        o.reachable,
        if o.recent > 0 {
            format!(" and {} unreachable one(s) younger than an hour", o.recent)
        } else {
            String::new()
        }
    ));
    s
}
