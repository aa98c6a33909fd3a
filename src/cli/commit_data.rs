//! `mlgit commit-data`: commit a folder onto a data branch, without a checkout.

use std::path::PathBuf;

use mlgit::data::commit::{commit_data, CommitDataOptions, CommitDataOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Commit a folder onto a data branch (default `raw`, under `data/`), without a checkout.
///
/// Files are read once, in parallel: data files (the branch's LFS patterns, or larger than
/// lfs.max_blob_size) go to the Git LFS compatible store and a pointer goes into git; the branch
/// moves last, by compare-and-swap, so a failed run changes nothing. On append-only branches (raw,
/// monitoring/*) committed files are never modified or deleted: a file whose content differs from
/// the branch's is refused, and files missing from the folder are kept. Provenance (source, host,
/// user, counts, bytes, manifest digest) is recorded as commit trailers: `git log raw` is the
/// ingestion log. Symlinks, FIFOs, sockets and devices are refused (see docs/commit-data.md).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to commit.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The branch to commit to.
    #[arg(long, default_value = "raw")]
    pub branch: String,
    /// Folder of the branch the files go under (`.` for the root).
    #[arg(long, default_value = "data/", value_name = "PREFIX")]
    pub dest: String,
    /// Commit message (default: "Add N files from DIR to PREFIX"); trailers are appended.
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Make PREFIX mirror DIR exactly, deleting files missing from DIR (not on append-only branches).
    #[arg(long)]
    pub replace: bool,
    /// Create the branch if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Read and compare only: report what would be committed; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Store the files that symlinks point to, for links that resolve inside DIR.
    #[arg(long)]
    pub follow_symlinks: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let source = if args.source.is_absolute() { args.source } else { ctx.dir.join(args.source) };
    let opts = CommitDataOptions {
        source,
        branch: args.branch,
        dest: args.dest,
        message: args.message,
        replace: args.replace,
        create: args.create,
        dry_run: args.dry_run,
        follow_symlinks: args.follow_symlinks,
        interrupt: ctx.interrupt.clone(),
    };
    let progress = ctx.printer.progress();
    let outcome = commit_data(&repo, &opts, progress.as_ref())?;
    if let Some(e) = &outcome.worktree_error {
        ctx.printer.warn(e);
    }
    ctx.printer.result("commit-data", &outcome, render);
    Ok(0)
}

fn render(o: &CommitDataOutcome) -> String {
    let counts = format!(
        "{} added, {} changed, {} unchanged, {} removed; {} files, {} ({} in LFS), {} read, {:.2} s",
        o.added,
        o.changed,
        o.unchanged,
        o.removed,
        o.files,
        human_bytes(o.bytes),
        o.lfs_files,
        human_bytes(o.bytes_read),
        o.seconds
    );
    match (&o.commit, o.dry_run) {
        (_, true) => format!("Dry run on '{}' ({}/): {counts}\nNothing was written.\n", o.branch, o.dest),
        (Some(c), _) => {
            format!("Committed {} on '{}' ({}/): {counts}\n", &c[..12.min(c.len())], o.branch, o.dest)
        }
        (None, _) => format!("Nothing to commit: '{}' already holds these files. {counts}\n", o.branch),
    }
}
