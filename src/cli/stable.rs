//! `mlgit stable …`: commands on stable/* branches (`update`).

use mlgit::snapshot::stable::{stable_update, StableUpdateOptions, StableUpdateOutcome};

use super::Ctx;

/// Work with stable/* branches, where models are trained.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StableCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StableCommand {
    Update(UpdateArgs),
}

/// Bring code from a dev/ branch and data from split into a stable branch, in one commit.
///
/// The new tree is the dev commit's code without data/ and without the outputs of earlier training
/// (model/, checkpoints/, metrics…: snapshot.outputs), with data/ taken from the split commit as is
/// (the same git tree: nothing is copied). The commit's parents are the stable tip, the dev commit
/// and the split commit. With only --data, the branch keeps its code (retrain on new data); with
/// only --code, it keeps its data. Nothing changes → no commit. A worktree that has the branch
/// checked out is updated when clean; a dirty one makes the command refuse.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The stable branch to update (default: branches.stable in mlgit.yaml, e.g. stable/model).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Take the code from this branch or commit (default: branches.dev, e.g. dev/model).
    #[arg(long, value_name = "REV")]
    pub code: Option<String>,
    /// Take data/ from this branch or commit (default: branches.split, e.g. split).
    #[arg(long, value_name = "REV")]
    pub data: Option<String>,
}

impl Args {
    /// The command's name in JSON documents (`stable update`).
    pub fn name(&self) -> &'static str {
        match self.command {
            StableCommand::Update(_) => "stable update",
        }
    }
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    match args.command {
        StableCommand::Update(a) => {
            let repo = ctx.repo()?;
            let outcome =
                stable_update(&repo, &StableUpdateOptions { branch: a.branch, code: a.code, data: a.data })?;
            ctx.printer.result("stable update", &outcome, render);
            Ok(0)
        }
    }
}

fn short(s: &Option<String>) -> &str {
    s.as_deref().map(|s| &s[..7.min(s.len())]).unwrap_or("-")
}

fn render(o: &StableUpdateOutcome) -> String {
    let mut s = if o.changed {
        format!(
            "Updated {} to {}: code from dev {}, data from split {}\n",
            o.branch,
            short(&o.commit),
            short(&o.code),
            short(&o.data)
        )
    } else {
        format!("{} already has this code and data: nothing to commit\n", o.branch)
    };
    if let Some(w) = &o.worktree_updated {
        s.push_str(&format!("Updated the worktree at {w}\n"));
    }
    if let Some(e) = &o.worktree_error {
        s.push_str(&format!("warning: {e}\n"));
    }
    if o.changed {
        s.push_str("Next: train and tag a snapshot there with `mlgit train-tag -- <command>`\n");
    }
    s
}
