//! `mlgit promote`: deploy a snapshot tag to an environment (one commit on `env/<env>`).

use mlgit::deploy::promote::{promote, PromoteOptions, PromoteOutcome};
use mlgit::deploy::record::Action;

use super::Ctx;

/// Promote a snapshot to an environment: one commit on env/<ENV> whose tree is the snapshot's
/// (code + model + data), plus DEPLOYMENT.yaml (tag, snapshot, model sha256, data lineage, who,
/// when, why, previous tag) and DEPLOYED_TAG.
///
/// The rules of `promotion:` in mlgit.yaml are checked first (by default: a tag reaches prod only
/// after staging, and the model files must be present and match their sha256); a refusal names
/// the rule and writes nothing. `--force --reason` overrides and records the override. Promoting
/// the tag that already serves the environment does nothing. `git log env/<ENV>` is the
/// deployment log; see also `mlgit envs` and `mlgit rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot tag to deploy (made by `mlgit train-tag`).
    pub tag: String,
    /// The environment (one of `environments:` in mlgit.yaml, e.g. dev, staging, prod).
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// Why: recorded in DEPLOYMENT.yaml and the commit message.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Override the rules that fail (needs --reason); each override is recorded.
    #[arg(long)]
    pub force: bool,
    /// Also write GTO-compatible tags (<model>@vX.Y.Z, <model>#<env>#N); see docs/gto.md.
    #[arg(long)]
    pub gto: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = PromoteOptions {
        tag: args.tag,
        env: args.env,
        reason: args.reason,
        force: args.force,
        gto: args.gto,
    };
    let outcome = promote(&repo, &opts)?;
    show(ctx, "promote", &outcome);
    Ok(0)
}

/// Print a promotion or rollback, its warnings on stderr.
pub fn show(ctx: &Ctx, command: &str, outcome: &PromoteOutcome) {
    for w in &outcome.warnings {
        ctx.printer.warn(w);
    }
    ctx.printer.result(command, outcome, render);
}

fn render(o: &PromoteOutcome) -> String {
    if o.unchanged {
        return format!("{} already serves {}: nothing to do\n", o.tag, o.env);
    }
    let commit = o.commit.as_deref().map(|c| &c[..12.min(c.len())]).unwrap_or("");
    let mut s = match o.action {
        Action::Promote => format!("Promoted {} to {}  ({} {commit})\n", o.tag, o.env, o.branch),
        Action::Rollback => format!("Rolled {} back to {}  ({} {commit})\n", o.env, o.tag, o.branch),
    };
    s.push_str(&format!("  snapshot  {}\n", &o.snapshot[..12.min(o.snapshot.len())]));
    s.push_str(&format!("  previous  {}\n", o.previous.as_deref().unwrap_or("(none: first deployment)")));
    for c in &o.checks {
        let mark = if c.passed { "ok    " } else { "FORCED" };
        s.push_str(&format!("  {mark} {}: {}\n", c.rule, c.detail));
    }
    for t in &o.gto_tags {
        s.push_str(&format!("  gto tag   {t}\n"));
    }
    if let Some(w) = &o.worktree {
        s.push_str(&format!("  updated the checkout at {}\n", w.display()));
    }
    s
}
