//! Command-line parsing and dispatch. Each command lives in its own file with an `Args` struct
//! (whose doc comment is its help) and a `run` function that calls one library function and renders
//! its outcome; no git or file-system logic lives here.

mod checkout;
mod clean;
mod commit_data;
mod completions;
mod demo;
mod diff;
mod gc;
mod init;
mod lineage;
mod materialize;
mod merge_tracking;
mod output;
mod runs;
mod show;
mod split;
mod stable;
mod status;
mod tracking;
mod train_tag;
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
    Gc(gc::Args),
    Clean(clean::Args),
    Split(split::Args),
    Diff(diff::Args),
    Lineage(lineage::Args),
    Stable(stable::Args),
    TrainTag(train_tag::Args),
    Show(show::Args),
    Checkout(checkout::Args),
    MergeTracking(merge_tracking::Args),
    Runs(runs::Args),
    Tracking(tracking::Args),
    Demo(demo::Args),
    Completions(completions::CompletionsArgs),
    Manpage(completions::ManpageArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Status(_) => "status",
            Command::Demo(_) => "demo",
            Command::MergeTracking(_) => "merge-tracking",
            Command::Runs(_) => "runs",
            Command::Tracking(args) => match args.command {
                tracking::TrackingCommand::Export(_) => "tracking export",
            },
            Command::Stable(args) => args.name(),
            Command::TrainTag(_) => "train-tag",
            Command::Show(_) => "show",
            Command::Checkout(_) => "checkout",
            Command::Clean(_) => "clean",
            Command::Split(_) => "split",
            Command::Diff(_) => "diff",
            Command::Lineage(_) => "lineage",
            Command::CommitData(_) => "commit-data",
            Command::Materialize(_) => "materialize",
            Command::Verify(_) => "verify",
            Command::Gc(_) => "gc",
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
    /// Set by SIGINT/SIGTERM; handed to every long operation through its options.
    pub interrupt: mlgit::interrupt::Interrupt,
}

impl Ctx {
    /// The repository around `dir`, with its config from main; a worktree sync that an earlier
    /// mlgit process left unfinished (it was killed) is finished first.
    pub fn repo(&self) -> mlgit::Result<Repo> {
        let repo = Repo::discover(&self.dir)?;
        for done in mlgit::repo::transaction::recover(&repo)? {
            self.printer.note(&format!(
                "finished bringing {} up to date with '{}' (an earlier mlgit run was interrupted)",
                done.worktree.display(),
                done.branch
            ));
        }
        Ok(repo)
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
    let ctx = Ctx { dir, printer, interrupt: mlgit::interrupt::Interrupt::new() };
    let name = cli.command.name();
    let result = match cli.command {
        Command::Init(args) => init::run(args, &ctx),
        Command::Status(args) => status::run(args, &ctx),
        Command::Demo(args) => demo::run(args, &ctx),
        Command::MergeTracking(args) => merge_tracking::run(args, &ctx),
        Command::Runs(args) => runs::run(args, &ctx),
        Command::Tracking(args) => tracking::run(args, &ctx),
        Command::Stable(args) => stable::run(args, &ctx),
        Command::TrainTag(args) => train_tag::run(args, &ctx),
        Command::Show(args) => show::run(args, &ctx),
        Command::Checkout(args) => checkout::run(args, &ctx),
        Command::Clean(args) => clean::run(args, &ctx),
        Command::Split(args) => split::run(args, &ctx),
        Command::Diff(args) => diff::run(args, &ctx),
        Command::Lineage(args) => lineage::run(args, &ctx),
        Command::CommitData(args) => commit_data::run(args, &ctx),
        Command::Materialize(args) => materialize::run(args, &ctx),
        Command::Verify(args) => verify::run(args, &ctx),
        Command::Gc(args) => gc::run(args, &ctx),
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

    /// The CI workflows of the default template (see docs/ci.md), with their paths for messages.
    const WORKFLOWS: [(&str, &str); 2] = [
        (
            "templates/default/main/.github/workflows/mlgit.yml",
            include_str!("../../templates/default/main/.github/workflows/mlgit.yml"),
        ),
        (
            "templates/default/main/.gitlab-ci.yml",
            include_str!("../../templates/default/main/.gitlab-ci.yml"),
        ),
    ];

    /// Every shell line of a workflow whose first word is `mlgit`: in GitHub's `run:` blocks and
    /// GitLab's `script:` lists (`shell` true once inside one).
    fn mlgit_lines(value: &serde_yaml::Value, shell: bool, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::String(text) if shell => {
                for line in text.lines().map(str::trim) {
                    if line.split_whitespace().next() == Some("mlgit") {
                        out.push(line.to_string());
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => items.iter().for_each(|v| mlgit_lines(v, shell, out)),
            serde_yaml::Value::Mapping(map) => {
                for (k, v) in map {
                    let key = k.as_str().unwrap_or_default();
                    let is_shell = matches!(key, "run" | "script" | "before_script" | "after_script");
                    mlgit_lines(v, shell || is_shell, out);
                }
            }
            serde_yaml::Value::Tagged(tagged) => mlgit_lines(&tagged.value, shell, out),
            _ => {}
        }
    }

    #[test]
    fn ci_workflows_parse_and_their_mlgit_commands_parse_with_this_cli() {
        for (path, text) in WORKFLOWS {
            let yaml: serde_yaml::Value =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"));
            let mut lines = Vec::new();
            mlgit_lines(&yaml, false, &mut lines);
            let names: Vec<&str> = lines.iter().filter_map(|l| l.split_whitespace().nth(1)).collect();
            for needed in ["train-tag", "merge-tracking"] {
                assert!(names.contains(&needed), "{path} never runs `mlgit {needed}`: {lines:?}");
            }
            for line in &lines {
                // A dry parse splits on whitespace, so the lines must need no shell quoting.
                assert!(
                    !line.contains(['"', '\'', '$', '`', '|', ';', '&']),
                    "{path}: `{line}` needs a shell"
                );
                let words: Vec<&str> = line.split_whitespace().collect();
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{path}: `{line}` does not parse with this mlgit:\n{e}");
                }
            }
        }
        let github: serde_yaml::Value = serde_yaml::from_str(WORKFLOWS[0].1).unwrap();
        let push = &github["on"]["push"];
        assert_eq!(push["branches"][0], "stable/**", "training runs on pushes to stable/*");
        assert_eq!(push["tags"][0], "**", "merge-tracking runs on tag pushes");
        let gitlab: serde_yaml::Value = serde_yaml::from_str(WORKFLOWS[1].1).unwrap();
        assert_eq!(gitlab["merge-tracking"]["rules"][0]["if"], "$CI_COMMIT_TAG");
    }
}
