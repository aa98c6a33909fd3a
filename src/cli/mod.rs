//! Command-line parsing and dispatch. Each command lives in its own file with an `Args` struct
//! (whose doc comment is its help) and a `run` function that calls one library function and renders
//! its outcome; no git or file-system logic lives here.

mod checkout;
mod clean;
mod clone;
mod commit_data;
mod complete;
mod completions;
mod demo;
mod diff;
mod envs;
mod fetch;
mod gc;
mod hook;
mod init;
mod lineage;
mod materialize;
mod merge_tracking;
mod monitor;
mod output;
mod promote;
mod pull;
mod push;
mod rollback;
mod runs;
mod show;
mod split;
mod stable;
mod status;
mod tracking;
mod train_tag;
mod verify;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
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
    Clone(clone::Args),
    Push(push::Args),
    Fetch(fetch::Args),
    Pull(pull::Args),
    CommitData(commit_data::Args),
    Materialize(materialize::Args),
    Verify(verify::Args),
    Gc(gc::Args),
    Hook(hook::Args),
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
    Monitor(monitor::Args),
    Promote(promote::Args),
    Rollback(rollback::Args),
    Envs(envs::Args),
    Demo(demo::Args),
    Completions(completions::CompletionsArgs),
    Manpage(completions::ManpageArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Status(_) => "status",
            Command::Clone(_) => "clone",
            Command::Push(_) => "push",
            Command::Fetch(_) => "fetch",
            Command::Pull(_) => "pull",
            Command::Demo(_) => "demo",
            Command::MergeTracking(_) => "merge-tracking",
            Command::Runs(_) => "runs",
            Command::Tracking(args) => match args.command {
                tracking::TrackingCommand::Export(_) => "tracking export",
            },
            Command::Monitor(args) => args.command.name(),
            Command::Promote(_) => "promote",
            Command::Rollback(_) => "rollback",
            Command::Envs(args) => args.name(),
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
            Command::Hook(args) => args.name(),
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
    // A shell's completion script calling back (`COMPLETE=bash mlgit -- …`): answer and exit.
    complete::complete_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // `runs --format json` asks for JSON as `--json` does, errors included.
    let json_format = matches!(&cli.command, Command::Runs(a) if a.format == runs::Format::Json);
    let printer = Printer { json: cli.json || json_format, quiet: cli.quiet };
    let name = cli.command.name();
    let ctx = match setup(&cli, printer) {
        Ok(ctx) => ctx,
        Err(err) => {
            printer.error(Some(name), &err);
            return err.exit_code();
        }
    };
    let result = match cli.command {
        Command::Init(args) => init::run(args, &ctx),
        Command::Status(args) => status::run(args, &ctx),
        Command::Clone(args) => clone::run(args, &ctx),
        Command::Push(args) => push::run(args, &ctx),
        Command::Fetch(args) => fetch::run(args, &ctx),
        Command::Pull(args) => pull::run(args, &ctx),
        Command::Demo(args) => demo::run(args, &ctx),
        Command::MergeTracking(args) => merge_tracking::run(args, &ctx),
        Command::Runs(args) => runs::run(args, &ctx),
        Command::Tracking(args) => tracking::run(args, &ctx),
        Command::Monitor(args) => monitor::run(args, &ctx),
        Command::Promote(args) => promote::run(args, &ctx),
        Command::Rollback(args) => rollback::run(args, &ctx),
        Command::Envs(args) => envs::run(args, &ctx),
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
        Command::Hook(args) => hook::run(args, &ctx),
        Command::Completions(args) => completions::completions(args, &ctx),
        Command::Manpage(args) => completions::manpage(args, &ctx),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            ctx.printer.error(Some(name), &err);
            err.exit_code()
        }
    };
    match output::stdout_failure() {
        // The reader went away (`mlgit status | head -1`): nothing to tell it, exit quietly as
        // ripgrep does.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Some(e) => {
            let err = mlgit::Error::io("write the result to", Path::new("stdout"), e);
            // stdout is what failed: the report goes to stderr only.
            Printer { json: false, ..ctx.printer }.error(Some(name), &err);
            if code == 0 {
                err.exit_code()
            } else {
                code
            }
        }
        None => code,
    }
}

/// What a command needs before it runs: the worker threads, the signal handlers, the folder.
fn setup(cli: &Cli, printer: Printer) -> mlgit::Result<Ctx> {
    start_worker_threads()?;
    let interrupt = mlgit::interrupt::Interrupt::new();
    let name = cli.command.name();
    interrupt.stop_on_signals(move |err| {
        printer.error(Some(name), &err);
        err.exit_code()
    })?;
    let dir = match &cli.chdir {
        Some(d) if !d.is_dir() => {
            return Err(mlgit::Error::not_found(format!("cannot run in {}: no such folder", d.display()))
                .with_hint("check the path given to -C"));
        }
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    Ok(Ctx { dir, printer, interrupt })
}

/// Build rayon's global pool now, not lazily inside a command, so that a failure (a tight
/// `ulimit -v`) is an error with exit 1 rather than a panic in the middle of the work.
fn start_worker_threads() -> mlgit::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|n| n.parse().ok()).unwrap_or(threads);
    let failed = |source: Option<std::io::Error>| {
        let err = mlgit::Error::new(mlgit::ErrorKind::Io, "cannot start mlgit's worker threads");
        let err = match source {
            Some(e) => err.with_source(e),
            None => err,
        };
        err.with_hint("the process limits are too tight: raise the memory limit (`ulimit -v`) or the process limit (`ulimit -u`), then retry")
    };
    // A thread that is created but cannot map its own signal stack panics inside std before rayon
    // hears of it, and rayon then waits for it for ever: check first that the threads fit.
    if !address_space_fits(threads * (5 << 19) + (2 << 20)) {
        return Err(failed(Some(std::io::Error::from_raw_os_error(libc::ENOMEM))));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| failed(None).with_source(e))
}

/// Whether `bytes` more of address space can be mapped (only a limit such as `ulimit -v` says no).
fn address_space_fits(bytes: usize) -> bool {
    // SAFETY: maps and unmaps an inaccessible anonymous region of our own.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(p, bytes);
    }
    true
}

/// Report a command line that does not parse (exit 2), or print the help or version (exit 0).
/// With `--json` anywhere before `--`, the error is also a JSON document on stdout.
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind as Clap;
    let _ = e.print();
    if matches!(e.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        return 0;
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .collect();
    let command = command_named_in(&args);
    let message = if e.kind() == Clap::DisplayHelpOnMissingArgumentOrSubcommand {
        "no command given".to_string()
    } else {
        let text = e.to_string();
        text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string()
    };
    let help = match &command {
        Some(name) => format!("see `mlgit {name} --help`"),
        None => "see `mlgit --help`".to_string(),
    };
    let err = mlgit::Error::new(mlgit::ErrorKind::Usage, message).with_hint(help);
    if args.iter().any(|a| a == "--json") {
        output::print_error_document(command.as_deref(), &err);
    }
    err.exit_code()
}

/// The (sub)command a command line names, as `Command::name` spells it ("stable update").
fn command_named_in(args: &[String]) -> Option<String> {
    let mut cmd = Cli::command();
    let mut names: Vec<String> = Vec::new();
    for arg in args {
        let Some(sub) = cmd.find_subcommand(arg).cloned() else { continue };
        names.push(sub.get_name().to_string());
        cmd = sub;
    }
    (!names.is_empty()).then(|| names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// `line` with each `"$NAME"` / `"${NAME}"` replaced by the word `VALUE`.
    fn without_quoted_variables(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find("\"$") {
            let after = &rest[at + 2..];
            let name_len = after.find('"').filter(|&n| {
                after[..n]
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            let Some(n) = name_len else { break };
            out.push_str(&rest[..at]);
            out.push_str("VALUE");
            rest = &after[n + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn ci_workflows_parse_and_their_mlgit_commands_parse_with_this_cli() {
        assert_eq!(
            without_quoted_variables(r#"mlgit push origin "$tag" "${A_B}""#),
            "mlgit push origin VALUE VALUE"
        );
        assert_eq!(without_quoted_variables(r#"mlgit x "$(date)""#), r#"mlgit x "$(date)""#);
        for (path, text) in WORKFLOWS {
            let yaml: serde_yaml::Value =
                serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"));
            let mut lines = Vec::new();
            mlgit_lines(&yaml, false, &mut lines);
            let names: Vec<&str> = lines.iter().filter_map(|l| l.split_whitespace().nth(1)).collect();
            for needed in ["train-tag", "merge-tracking", "pull", "push"] {
                assert!(names.contains(&needed), "{path} never runs `mlgit {needed}`: {lines:?}");
            }
            for line in &lines {
                // A quoted shell variable ("$GITHUB_REF_NAME") is one word: a placeholder parses
                // the same. Anything else that needs a shell cannot be dry-parsed.
                let line = &without_quoted_variables(line);
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
