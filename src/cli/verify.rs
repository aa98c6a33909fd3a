//! `mlgit verify`: re-hash the LFS objects refs need and check their pointers and `.gitattributes`.

use mlgit::data::verify::{verify, VerifyOptions, VerifyOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Check that refs are complete: every LFS object present and intact, every pointer canonical and marked.
///
/// Re-hashes (in parallel) every LFS object the refs' trees point to, checks that each pointer is
/// byte-canonical and that the root `.gitattributes` marks `filter=lfs` exactly the pointer paths.
/// For an append-only branch (raw, monitoring/*) it also checks the whole history and names every
/// commit that modified or deleted a committed path (an edit made with plain git).
/// Exits with 3 and names each bad or missing path when a check fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Branches, tags or commits to check (default: HEAD).
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
    /// Check every local branch and tag.
    #[arg(long)]
    pub all: bool,
    /// Rewrite corrupt or missing LFS objects from worktree or source files whose bytes hash right.
    #[arg(long)]
    pub repair: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let progress = ctx.printer.progress();
    let opts = VerifyOptions {
        refs: args.refs,
        all: args.all,
        repair: args.repair,
        interrupt: ctx.interrupt.clone(),
    };
    let outcome = verify(&repo, &opts, progress.as_ref())?;
    ctx.printer.result("verify", &outcome, render);
    Ok(if outcome.ok { 0 } else { 3 })
}

fn render(o: &VerifyOutcome) -> String {
    let mut s = String::new();
    for r in &o.refs {
        s.push_str(&format!(
            "{:<24} {}  {} files, {} in LFS\n",
            r.rev,
            &r.commit[..12.min(r.commit.len())],
            r.files,
            r.lfs_files
        ));
    }
    s.push_str(&format!(
        "{} LFS objects re-hashed ({}) in {:.2} s\n",
        o.objects,
        human_bytes(o.bytes),
        o.seconds
    ));
    for r in &o.repaired {
        s.push_str(&format!("repaired LFS object {} from {}\n", &r.oid[..12], r.from.display()));
    }
    for u in &o.unrepaired {
        s.push_str(&format!(
            "could not repair LFS object {} (needed by {}; {} candidate file(s) hold other bytes)\n",
            &u.oid[..12],
            u.needed_by.join(", "),
            u.candidates_tried
        ));
    }
    for b in &o.append_only_checked {
        s.push_str(&format!("{b:<24} history checked: append-only\n"));
    }
    if o.ok {
        s.push_str(
            "OK: every object present and intact, every pointer canonical and marked in .gitattributes\n",
        );
        return s;
    }
    if !o.append_only.is_empty() {
        s.push_str(&format!(
            "{} commit(s) changed or removed committed files on an append-only branch:\n",
            o.append_only.len()
        ));
        for p in &o.append_only {
            let v = &p.violation;
            s.push_str(&format!(
                "  {}: commit {} ({}) {} (against parent {})\n",
                p.branch,
                &v.commit[..12.min(v.commit.len())],
                v.subject,
                v.describe(10),
                &v.parent[..12.min(v.parent.len())]
            ));
        }
        s.push_str("hint: files on an append-only branch are never modified or deleted, so these commits were made with plain git; if they were never pushed, move the branch back to the commit before them (`git branch -f BRANCH COMMIT`) and add new versions under new names with `mlgit commit-data`; a server with `mlgit hook pre-receive` (or branch protection) refuses such pushes, see docs/hook.md\n");
    }
    if !o.problems.is_empty() {
        s.push_str(&format!("{} problem(s):\n", o.problems.len()));
        for p in &o.problems {
            let what = match p.problem {
                mlgit::data::verify::ProblemKind::Missing => "LFS object missing from the local store",
                mlgit::data::verify::ProblemKind::Corrupt => "LFS object corrupt (wrong hash or size)",
                mlgit::data::verify::ProblemKind::NonCanonicalPointer => "pointer is not canonical",
                mlgit::data::verify::ProblemKind::PointerNotMarked => {
                    "pointer not marked filter=lfs in .gitattributes"
                }
                mlgit::data::verify::ProblemKind::MarkedNotPointer => "marked filter=lfs but not a pointer",
            };
            s.push_str(&format!("  {}:{}  {what}\n", p.rev, p.path));
        }
        s.push_str("hint: fetch missing objects with `git lfs fetch --all`; `mlgit verify --repair` rebuilds objects from worktree or source files that still hold the bytes\n");
    }
    s
}
