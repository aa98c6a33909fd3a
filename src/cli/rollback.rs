//! `mlgit rollback`: a new forward commit on `env/<env>` back to an earlier deployment.

use mlgit::deploy::promote::{rollback, RollbackOptions};

use super::Ctx;

/// Roll an environment back to the tag that served it before (or to --to TAG): a new commit on
/// env/<ENV>, so history is never rewritten and the rollback is in the deployment log.
///
/// Without --to, the target is the newest earlier deployment with another tag that was not itself
/// rolled back from (two rollbacks in a row go back two steps). The target's model files must
/// still verify (override with --force --reason); the other promotion rules are not checked again:
/// the tag served this environment before.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to roll back.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// The tag to go back to (it must have served this environment; see `mlgit envs log ENV`).
    #[arg(long, value_name = "TAG")]
    pub to: Option<String>,
    /// Why: recorded in DEPLOYMENT.yaml and the commit message.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Roll back even if the target's model files do not verify (needs --reason).
    #[arg(long)]
    pub force: bool,
    /// Also write a GTO stage-assignment tag for the target version (see docs/gto.md).
    #[arg(long)]
    pub gto: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts =
        RollbackOptions { env: args.env, to: args.to, reason: args.reason, force: args.force, gto: args.gto };
    let outcome = rollback(&repo, &opts)?;
    super::promote::show(ctx, "rollback", &outcome);
    Ok(0)
}
