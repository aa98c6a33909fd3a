//! `mlgit runs`: the leaderboard of the runs merged into main, read from main's committed
//! tracking files (not from a checkout), best first.

use serde::Serialize;

use super::{metric_names, rank, read_runs, RunEntry};
use crate::config::Goal;
use crate::error::{Error, Result};
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct RunsOptions {
    /// The revision whose tracking is read (default: the main branch).
    pub rev: Option<String>,
    /// The metric to rank by (default: `tracking.primary_metric`).
    pub sort: Option<String>,
    /// Best is highest or lowest (default: `tracking.goal`).
    pub goal: Option<Goal>,
    /// Show at most this many runs.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunsOutcome {
    pub rev: String,
    pub commit: String,
    pub sort: String,
    pub goal: Goal,
    /// Every metric name of the listed runs, the sort metric first.
    pub metrics: Vec<String>,
    /// Runs on the revision (before `--limit`).
    pub total: usize,
    pub runs: Vec<RankedRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RankedRun {
    pub rank: usize,
    #[serde(flatten)]
    pub run: RunEntry,
}

/// The runs of main's tracking, best first.
pub fn runs(repo: &Repo, opts: &RunsOptions) -> Result<RunsOutcome> {
    let tracking = &repo.config().tracking;
    let rev = opts.rev.clone().unwrap_or_else(|| repo.config().branches.main.clone());
    let commit = match &opts.rev {
        Some(r) => repo.resolve(r)?,
        None => repo.require_branch(&rev)?,
    };
    let sort = opts.sort.clone().unwrap_or_else(|| tracking.primary_metric.clone());
    let goal = opts.goal.unwrap_or(tracking.goal);
    let mut all = read_runs(repo.git(), commit.tree_id(), &Default::default())?;
    let metrics = metric_names(&all, &sort);
    if opts.sort.is_some() && !all.is_empty() && !metrics.contains(&sort) {
        return Err(Error::invalid(format!("no run on {rev} has the metric '{sort}'"))
            .with_hint(format!("metrics recorded: {}", metrics.join(", "))));
    }
    rank(&mut all, &sort, goal);
    let total = all.len();
    let runs = all
        .into_iter()
        .take(opts.limit.unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, run)| RankedRun { rank: i + 1, run })
        .collect();
    Ok(RunsOutcome { rev, commit: commit.id().to_string(), sort, goal, metrics, total, runs })
}
