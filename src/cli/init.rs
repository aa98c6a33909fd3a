//! `mlgit init`: create an mlgit repository from a template, or add what an existing one lacks.

use std::path::PathBuf;

use mlgit::init::{init, InitOptions, InitOutcome};

use super::Ctx;

/// Create a repository from a template: main with the project definition, and every convention branch.
///
/// Creates DIR and a git repository in it if needed, commits the template's files on `main` (and
/// checks it out), then creates the data branches `raw`, `clean`, `split`, the code branch
/// `dev/model`, the training branch `stable/model` and `monitoring/<env>` for each environment.
/// On an existing repository it only adds what is missing: no file is overwritten and no existing
/// branch moves, so running it twice is safe. In a clone, a convention branch that the remote has
/// (origin/raw…) is created from it with its upstream set, never as a new orphan branch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of the repository (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Template: a built-in name (default), a local folder with main/ inside, or a git URL.
    #[arg(long, value_name = "NAME|PATH|GIT-URL")]
    pub template: Option<String>,
    /// The project name used in the template's files (default: the folder's name).
    #[arg(long, value_name = "PROJECT")]
    pub name: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let dir = if args.dir.is_absolute() { args.dir } else { ctx.dir.join(args.dir) };
    let outcome = init(&InitOptions { dir, template: args.template, name: args.name })?;
    for w in &outcome.warnings {
        ctx.printer.warn(w);
    }
    ctx.printer.result("init", &outcome, render);
    Ok(0)
}

fn render(o: &InitOutcome) -> String {
    let mut s = String::new();
    if o.nothing_to_do {
        s.push_str(&format!("nothing to do: {} already has every mlgit branch\n", o.path.display()));
    } else {
        let what = if o.created_repository { "Created" } else { "Completed" };
        s.push_str(&format!(
            "{what} mlgit repository '{}' in {} (template {})\n",
            o.project,
            o.path.display(),
            o.template
        ));
        for b in &o.created {
            let from = b.from_remote.as_ref().map(|r| format!("  (from {r})")).unwrap_or_default();
            s.push_str(&format!("  + {:<22} {}{from}\n", b.branch, &b.commit[..7]));
        }
    }
    for l in &o.left_alone {
        s.push_str(&format!("  = {:<22} left alone: {}\n", l.item, l.reason));
    }
    if !o.nothing_to_do {
        s.push_str("Next: mlgit commit-data --source <folder> -m \"first batch\"   (see docs/branches.md)\n");
    }
    s
}
