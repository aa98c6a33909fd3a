//! `mlgit demo`: run the whole flow on built-in sample data, showing every command it runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use mlgit::demo::{plan, prepare, Program, Step};
use serde::Serialize;

use super::Ctx;

/// Run the whole framework on built-in sample data, offline, in seconds.
///
/// Creates DIR with a sample data delivery and a repository, then runs, showing each command so
/// you can repeat it by hand: init → commit-data → clean → split → stable update → train-tag (a
/// majority-class baseline) → a second model on its own dev branch → train-tag → merge-tracking →
/// lineage → the leaderboard. Needs `git`, `sh` and `awk`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to create (must not exist or be empty).
    #[arg(default_value = "mlgit-demo")]
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
struct DemoOutcome {
    root: PathBuf,
    repository: PathBuf,
    steps: Vec<StepRun>,
}

#[derive(Debug, Serialize)]
struct StepRun {
    #[serde(flatten)]
    step: Step,
    command: String,
    exit_code: i32,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let dir = if args.dir.is_absolute() { args.dir } else { ctx.dir.join(args.dir) };
    let layout = prepare(&dir)?;
    let exe =
        std::env::current_exe().map_err(|e| mlgit::Error::io("find", std::path::Path::new("mlgit"), e))?;
    let identity = git_identity_missing();
    let mut runs = Vec::new();
    for (i, step) in plan(&layout).into_iter().enumerate() {
        let line = step.command_line();
        if !ctx.printer.json {
            ctx.printer.text(&format!("\n# {}. {}\n$ {line}\n", i + 1, step.title));
        }
        let code = match step.program {
            Program::Copy => {
                std::fs::copy(&step.args[0], &step.args[1])
                    .map_err(|e| mlgit::Error::io("copy", std::path::Path::new(&step.args[0]), e))?;
                0
            }
            Program::Mlgit | Program::Git => {
                let mut cmd =
                    if step.program == Program::Mlgit { Command::new(&exe) } else { Command::new("git") };
                cmd.args(&step.args).stdin(Stdio::null());
                if identity {
                    cmd.env("GIT_AUTHOR_NAME", "mlgit demo")
                        .env("GIT_AUTHOR_EMAIL", "demo@mlgit.invalid")
                        .env("GIT_COMMITTER_NAME", "mlgit demo")
                        .env("GIT_COMMITTER_EMAIL", "demo@mlgit.invalid");
                }
                if ctx.printer.json {
                    // Keep stdout for the one JSON document: the steps' output goes to stderr.
                    cmd.stdout(std::io::stderr());
                }
                let status = cmd.status().map_err(|e| {
                    mlgit::Error::io("run", std::path::Path::new(&line), e)
                        .with_hint("the demo needs git on PATH (apt-get install -y git)")
                })?;
                status.code().unwrap_or(128)
            }
        };
        let expected = step.expect;
        runs.push(StepRun { step, command: line.clone(), exit_code: code });
        if code != expected {
            return Err(mlgit::Error::new(
                mlgit::ErrorKind::ChildFailed(code),
                format!("demo step failed: {line}"),
            )
            .with_hint(format!(
                "the folder {} shows how far it got; run the step by hand to see more",
                dir.display()
            )));
        }
    }
    let outcome = DemoOutcome { root: layout.root.clone(), repository: layout.repo.clone(), steps: runs };
    ctx.printer.result("demo", &outcome, |o| {
        format!(
            "\nDone. The repository is {}; every command above can be run by hand.\n\
             Try: git -C {} log --oneline --graph --all | head -30\n",
            o.repository.display(),
            o.repository.display()
        )
    });
    Ok(0)
}

/// Whether git has no user identity configured (then the demo's own commits name "mlgit demo").
fn git_identity_missing() -> bool {
    let set = |key: &str| {
        Command::new("git")
            .args(["config", "--get", key])
            .output()
            .map(|o| o.status.success() && !o.stdout.is_empty())
            .unwrap_or(false)
    };
    std::env::var_os("GIT_AUTHOR_EMAIL").is_none() && !(set("user.email") && set("user.name"))
}
