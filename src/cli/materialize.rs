//! `mlgit materialize`: write a ref's files, LFS content resolved, into a folder.

use std::path::PathBuf;

use mlgit::data::materialize::{materialize, MaterializeOptions, MaterializeOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Write the files of a branch, tag or commit into a folder, LFS content resolved (no git-lfs needed).
///
/// Every LFS object needed is checked before anything is written: a missing one fails the run and
/// names the paths that need it. Each LFS object is hashed while copied; a corrupt one exits with 3
/// and leaves no bad file. Nothing is written through a symlink in DIR, nor into a .git folder.
/// Files already in DIR at the same paths are replaced; other files are left alone. While writing,
/// DIR holds a `.mlgit-incomplete` marker, removed only on success.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A branch, tag or commit (e.g. raw, model-v3, a1b2c3d).
    #[arg(value_name = "REF")]
    pub rev: String,
    /// The folder to write into (created if missing; default: a folder named after REF).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Only paths matching this gitattributes-style pattern or folder (repeatable), e.g. data/train.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let into = args.into.unwrap_or_else(|| PathBuf::from(args.rev.replace('/', "-")));
    let into = if into.is_absolute() { into } else { ctx.dir.join(into) };
    let opts =
        MaterializeOptions { rev: args.rev, into, include: args.include, interrupt: ctx.interrupt.clone() };
    let progress = ctx.printer.progress();
    let outcome = materialize(&repo, &opts, progress.as_ref())?;
    ctx.printer.result("materialize", &outcome, render);
    Ok(0)
}

fn render(o: &MaterializeOutcome) -> String {
    format!(
        "Wrote {} files ({} from LFS, {}) of {} ({}) into {} in {:.2} s\n",
        o.files,
        o.lfs_files,
        human_bytes(o.bytes),
        o.rev,
        &o.commit[..12.min(o.commit.len())],
        o.into.display(),
        o.seconds
    )
}
