//! Command-line parsing and dispatch. Each command lives in its own file with an `Args` struct
//! (whose doc comment is its help) and a `run` function that calls one library function and renders
//! its outcome; no git or file-system logic lives here.

mod commit_data;
mod completions;
mod init;
mod materialize;
mod output;
mod status;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mlgit::repo::Repo;

pub use output::Printer;

/// Version one repository's code, data, models and metrics together, with git branches.
///
/// mlgit keeps raw, clean and split data on their own branches (large files stored Git LFS
/// compatible), trains on stable/* branches, and tags model + data + code + metrics as one snapshot.
/// Start with `mlgit init`, or see the whole flow on sample data with `mlgit demo`.
#[derive(Debug, Parser)]
#[command(name = "mlgit", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Run as if mlgit was started in DIR (like `git -C`).
    #[arg(short = 'C', global = true, value_name = "DIR", id = "chdir")]
    pub chdir: Option<PathBuf>,
    /// Print one machine-readable JSON result on stdout (with a schema_version).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars and no notes on stderr; errors and warnings are still shown.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Status(status::Args),
    CommitData(commit_data::Args),
    Materialize(materialize::Args),
    Verify(verify::Args),
    Completions(completions::CompletionsArgs),
    Manpage(completions::ManpageArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Status(_) => "status",
            Command::CommitData(_) => "commit-data",
            Command::Materialize(_) => "materialize",
            Command::Verify(_) => "verify",
            Command::Completions(_) => "completions",
            Command::Manpage(_) => "manpage",
        }
    }
}

/// What every command gets besides its own arguments.
pub struct Ctx {
    /// The folder mlgit runs in (`-C`, else the current directory).
    pub dir: PathBuf,
    pub printer: Printer,
}

impl Ctx {
    /// The repository around `dir`, with its config from main.
    pub fn repo(&self) -> mlgit::Result<Repo> {
        Repo::discover(&self.dir)
    }
}

/// Parse the command line, run the command and return the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    let printer = Printer { json: cli.json, quiet: cli.quiet };
    let dir = match &cli.chdir {
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    if let Some(d) = &cli.chdir {
        if !d.is_dir() {
            let err = mlgit::Error::not_found(format!("cannot run in {}: no such folder", d.display()))
                .with_hint("check the path given to -C");
            printer.error(cli.command.name(), &err);
            return err.exit_code();
        }
    }
    let ctx = Ctx { dir, printer };
    let name = cli.command.name();
    let result = match cli.command {
        Command::Init(args) => init::run(args, &ctx),
        Command::Status(args) => status::run(args, &ctx),
        Command::CommitData(args) => commit_data::run(args, &ctx),
        Command::Materialize(args) => materialize::run(args, &ctx),
        Command::Verify(args) => verify::run(args, &ctx),
        Command::Completions(args) => completions::completions(args),
        Command::Manpage(args) => completions::manpage(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            ctx.printer.error(name, &err);
            err.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
