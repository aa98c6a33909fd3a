//! `mlgit checkout`: a snapshot's code, data and model, materialized into a folder and verified.

use std::path::PathBuf;

use mlgit::snapshot::checkout::{checkout, CheckoutOutcome};

use super::Ctx;

/// Write everything a snapshot's model needs into DIR and check the model files' sha256.
///
/// Code, data and model files are written with their LFS content resolved from the local store
/// (no git-lfs needed); then each model file is hashed and compared with tracking/run.json.
/// Exits with 3 when a model file does not match. DIR must be new or empty.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot tag.
    pub tag: String,
    /// The folder to write into (created if missing; must be empty).
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let into = if args.into.is_absolute() { args.into } else { ctx.dir.join(args.into) };
    let progress = ctx.printer.progress();
    let outcome = checkout(&repo, &args.tag, &into, &ctx.interrupt, progress.as_ref())?;
    ctx.printer.result("checkout", &outcome, render);
    Ok(0)
}

fn render(o: &CheckoutOutcome) -> String {
    format!(
        "Checked out {} ({}) into {}: {} files ({} from LFS), {} model file(s) match the tracking record\n",
        o.tag,
        &o.commit[..7],
        o.into.display(),
        o.files,
        o.lfs_files,
        o.verified.len()
    )
}
