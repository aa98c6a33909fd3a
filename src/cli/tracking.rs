//! `mlgit tracking …`: tools around the tracking data merged into main.

use std::path::PathBuf;

use mlgit::tracking::export::{export, ExportOptions, ExportOutcome};

use super::Ctx;

/// Work with the tracking data merged into main (MLflow export).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TrackingCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TrackingCommand {
    Export(ExportArgs),
}

/// Write main's merged MLflow runs (mlruns/) to a folder that MLflow can serve.
///
/// Git keeps no empty folders, but MLflow needs them (every run's metrics/, params/, artifacts/),
/// and artifact locations must name the folder served; this writes a complete store, with LFS
/// content resolved. Then: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri DIR
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The folder to write (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub mlruns: PathBuf,
    /// Export the store of this revision instead of main.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    match args.command {
        TrackingCommand::Export(a) => {
            let repo = ctx.repo()?;
            let dir = if a.mlruns.is_absolute() { a.mlruns } else { ctx.dir.join(a.mlruns) };
            let outcome = export(&repo, &ExportOptions { rev: a.rev, dir })?;
            for f in &outcome.lfs_missing {
                ctx.printer.warn(&format!(
                    "{f}: LFS content not in the local store, written as a pointer (run `git lfs fetch`, then export again)"
                ));
            }
            ctx.printer.result("tracking export", &outcome, render_export);
            Ok(0)
        }
    }
}

fn render_export(o: &ExportOutcome) -> String {
    format!(
        "Exported the MLflow store of {} ({}): {} experiment(s), {} run(s), {} files, {} empty folders created.\n\
         Serve it with:\n  MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {}\n\
         or turn it into SQLite:\n  mlflow migrate-filestore --source {} --target sqlite:///mlflow.db\n",
        o.rev,
        &o.commit[..o.commit.len().min(7)],
        o.experiments,
        o.runs,
        o.files,
        o.folders_created,
        o.dir,
        o.dir
    )
}
