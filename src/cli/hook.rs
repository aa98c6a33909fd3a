//! `mlgit hook`: the git hooks mlgit installs and runs (pre-push on clones, pre-receive on
//! self-hosted servers).

use std::io::Read;

use mlgit::hooks::pre_push::{self, PrePushOptions, PrePushOutcome};
use mlgit::hooks::{HookAction, HookInstall};
use mlgit::remote::pre_receive::{self, PreReceiveOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Install or run the git hooks that make plain git carry mlgit's data and rules.
///
/// `mlgit init` and `mlgit clone` install the pre-push hook; run `mlgit hook install` in a clone
/// made with plain git, or after moving the mlgit binary. `pre-push` and `pre-receive` are run by
/// git, not by hand.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: HookCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HookCommand {
    Install(InstallArgs),
    PrePush(PrePushArgs),
    PreReceive(PreReceiveArgs),
}

impl Args {
    pub fn name(&self) -> &'static str {
        match self.command {
            HookCommand::Install(_) => "hook install",
            HookCommand::PrePush(_) => "hook pre-push",
            HookCommand::PreReceive(_) => "hook pre-receive",
        }
    }
}

/// Install the pre-push hook that uploads LFS objects on a plain `git push`.
///
/// Writes `.git/hooks/pre-push` (or into `core.hooksPath`). A pre-push hook that is already there
/// (git-lfs's own, your own) is kept as `pre-push.before-mlgit` and runs first; running this again
/// only rewrites mlgit's own hook (for instance to point it at a moved mlgit binary).
#[derive(Debug, clap::Args)]
pub struct InstallArgs {}

/// Upload the LFS objects of the commits git is about to push (run by the pre-push hook).
///
/// git calls the hook with the remote's name and URL and writes one line per ref on stdin:
/// `<local ref> <local sha> <remote ref> <remote sha>`. The LFS objects those commits bring and the
/// remote lacks are uploaded to its LFS server first; if that fails, the command exits non-zero and
/// git pushes no ref.
#[derive(Debug, clap::Args)]
pub struct PrePushArgs {
    /// The remote's name (or its URL when git pushes to a URL).
    pub remote: String,
    /// The URL git pushes to.
    pub url: String,
}

/// Refuse pushes that break an append-only branch (install as a bare repository's hooks/pre-receive).
///
/// Reads git's `<old> <new> <ref>` lines on stdin. For each append-only branch (`append_only` in the
/// repository's mlgit.yaml on main; by default raw and monitoring/*) it refuses a deletion, a
/// history rewrite (non-fast-forward), and any new commit that modifies or deletes a path one of
/// its parents had (`.gitattributes` excepted; a merge that keeps every parent's paths is fine).
/// The refusal names the branch, the commit and the paths. See docs/hook.md.
#[derive(Debug, clap::Args)]
pub struct PreReceiveArgs {}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    match args.command {
        HookCommand::Install(_) => install(ctx),
        HookCommand::PrePush(a) => pre_push(a, ctx),
        HookCommand::PreReceive(_) => pre_receive(ctx),
    }
}

fn install(ctx: &Ctx) -> mlgit::Result<i32> {
    let git = mlgit::repo::open_git(&ctx.dir)?;
    let outcome = mlgit::hooks::install(&git)?;
    ctx.printer.result("hook install", &outcome, render_install);
    Ok(0)
}

pub fn render_install(o: &HookInstall) -> String {
    let mut s = match o.action {
        HookAction::Installed => format!("Installed the pre-push hook {} (runs {})\n", o.hook.display(), o.runs),
        HookAction::Chained => format!(
            "Installed the pre-push hook {} (runs {}); the hook that was there is kept as {} and runs first\n",
            o.hook.display(),
            o.runs,
            o.chained.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        ),
        HookAction::Upgraded => format!("Updated the pre-push hook {} (runs {})\n", o.hook.display(), o.runs),
        HookAction::Unchanged => format!("The pre-push hook {} is up to date\n", o.hook.display()),
        HookAction::Skipped => "No pre-push hook installed\n".to_string(),
    };
    if let Some(note) = &o.note {
        s.push_str(&format!("note: {note}\n"));
    }
    s
}

/// git's input on stdin, whole.
fn read_stdin(what: &str) -> mlgit::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| {
        mlgit::Error::io(&format!("read the {what} input from"), std::path::Path::new("stdin"), e).with_hint(
            format!("`mlgit hook {what}` is run by git, which writes the refs to push on its stdin"),
        )
    })?;
    Ok(input)
}

fn pre_push(args: PrePushArgs, ctx: &Ctx) -> mlgit::Result<i32> {
    let input = read_stdin("pre-push")?;
    let lines = pre_push::parse_lines(&input)?;
    let repo = pre_push::open_repo(&ctx.dir)?;
    let progress = ctx.printer.progress();
    let opts = PrePushOptions {
        remote: args.remote,
        url: args.url,
        lines,
        interrupt: ctx.interrupt.clone(),
        progress: progress.as_ref(),
    };
    let outcome = pre_push::pre_push(&repo, &opts)?;
    // git shows a hook's output as its own: a note on stderr, never a result on stdout (which git
    // may not have, and whose failure must not stop the push).
    if ctx.printer.json {
        ctx.printer.result("hook pre-push", &outcome, |_| String::new());
    } else if outcome.objects > 0 {
        ctx.printer.note(&render_pre_push(&outcome));
    }
    Ok(0)
}

fn render_pre_push(o: &PrePushOutcome) -> String {
    format!(
        "mlgit: uploaded {} LFS object(s) ({}); {} already on the server",
        o.transferred,
        human_bytes(o.bytes),
        o.already_there
    )
}

fn pre_receive(ctx: &Ctx) -> mlgit::Result<i32> {
    let input = read_stdin("pre-receive")?;
    let updates = pre_receive::parse_updates(&input)?;
    let git = pre_receive::open_repo(&ctx.dir)?;
    let outcome = pre_receive::check(&git, &updates, &ctx.interrupt)?;
    for w in &outcome.warnings {
        ctx.printer.warn(w);
    }
    if ctx.printer.json {
        ctx.printer.result("hook pre-receive", &outcome, |_: &PreReceiveOutcome| String::new());
    }
    Ok(0)
}
