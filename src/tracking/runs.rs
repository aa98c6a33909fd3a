//! `mlgit runs`: the leaderboard of the runs merged into main, read from main's committed
//! tracking files (not from a checkout), best first among the runs evaluated on the same data.

use serde::Serialize;

use super::leaderboard::{build, BoardOptions, Leaderboard};
use super::{metric_names, read_runs};
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
    /// Conditions every listed run meets (`params.lr<0.1`, `accuracy>=0.9`, `tag=…`).
    pub filters: Vec<String>,
    /// The columns to show, in order (None: the default columns).
    pub columns: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunsOutcome {
    pub rev: String,
    pub commit: String,
    #[serde(flatten)]
    pub board: Leaderboard,
}

/// The default direction for ranking by `sort`: `tracking.goal` for the primary metric; for another
/// metric, lowest first when its name says it is an error (`loss`, `*_loss`, `error`, `*_error`,
/// `rmse`, `mae`, `mse`, `mape`, `logloss`, `perplexity`, `*_time`, `*_seconds`), else highest first —
/// not `tracking.goal`, which says how the primary metric reads (`--sort loss` on a board ranked by
/// accuracy would otherwise put the highest loss first). `--goal` overrides it.
pub fn goal_of(sort: &str, primary: &str, primary_goal: Goal) -> Goal {
    if sort == primary {
        return primary_goal;
    }
    let name = sort.to_ascii_lowercase();
    let last = name.rsplit(['_', '-', '.', '/']).next().unwrap_or(&name);
    let lower_is_better =
        ["loss", "error", "err", "rmse", "mae", "mse", "mape", "logloss", "perplexity", "time", "seconds"];
    if lower_is_better.contains(&name.as_str()) || lower_is_better.contains(&last) {
        Goal::Min
    } else {
        Goal::Max
    }
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
    let all = read_runs(repo.git(), commit.tree_id(), &Default::default())?;
    let metrics = metric_names(&all, &sort);
    if opts.sort.is_some() && !all.is_empty() && !metrics.contains(&sort) {
        return Err(Error::invalid(format!("no run on {rev} has the metric '{sort}'"))
            .with_hint(format!("metrics recorded: {}", metrics.join(", "))));
    }
    let goal = opts.goal.unwrap_or_else(|| goal_of(&sort, &tracking.primary_metric, tracking.goal));
    let board = build(
        all,
        &BoardOptions {
            sort,
            goal,
            filters: opts.filters.clone(),
            columns: opts.columns.clone(),
            limit: opts.limit,
        },
    )?;
    Ok(RunsOutcome { rev, commit: commit.id().to_string(), board })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_another_metric_reads_its_name_for_the_direction() {
        assert_eq!(goal_of("accuracy", "accuracy", Goal::Min), Goal::Min);
        for m in ["loss", "val_loss", "rmse", "test-error", "MAE", "train_time"] {
            assert_eq!(goal_of(m, "accuracy", Goal::Max), Goal::Min, "{m}");
        }
        for m in ["f1", "auc", "lossless_ratio"] {
            assert_eq!(goal_of(m, "loss", Goal::Min), Goal::Max, "{m}");
        }
    }
}
