//! `mlgit runs`: the leaderboard of the runs merged into main.

use mlgit::config::Goal;
use mlgit::tracking::format_metric;
use mlgit::tracking::runs::{runs, RunsOptions, RunsOutcome};

use super::Ctx;

/// List the training runs merged into main, best first (the leaderboard).
///
/// Reads main's committed tracking (tracking/runs/), so it shows what `mlgit merge-tracking` has
/// merged, whatever is checked out. Runs are ranked by tracking.primary_metric of mlgit.yaml
/// (tracking.goal says whether higher or lower is better) unless --sort names another metric.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rank by this metric (default: tracking.primary_metric).
    #[arg(long, value_name = "METRIC")]
    pub sort: Option<String>,
    /// Whether the best value is the highest or the lowest (default: tracking.goal).
    #[arg(long, value_enum)]
    pub goal: Option<GoalArg>,
    /// Show only the N best runs.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Read the tracking of this revision instead of main.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GoalArg {
    Max,
    Min,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let goal = args.goal.map(|g| match g {
        GoalArg::Max => Goal::Max,
        GoalArg::Min => Goal::Min,
    });
    let outcome = runs(&repo, &RunsOptions { rev: args.rev, sort: args.sort, goal, limit: args.limit })?;
    ctx.printer.result("runs", &outcome, render);
    Ok(0)
}

fn render(o: &RunsOutcome) -> String {
    if o.runs.is_empty() {
        return format!(
            "No runs on {} yet: train with `mlgit train-tag -- <command>`, then `mlgit merge-tracking`.\n",
            o.rev
        );
    }
    let mut header = vec!["#".to_string(), "tag".into(), "date".into(), "data".into()];
    header.extend(o.metrics.iter().cloned());
    let mut rows = vec![header];
    for r in &o.runs {
        let date = r.run.created_at.as_deref().map(|d| d.get(..16).unwrap_or(d).replace('T', " "));
        let data = r.run.data.get("split").map(|c| c.get(..7).unwrap_or(c).to_string());
        let mut row = vec![
            r.rank.to_string(),
            r.run.tag.clone(),
            date.unwrap_or_else(|| "-".into()),
            data.unwrap_or_else(|| "-".into()),
        ];
        row.extend(
            o.metrics.iter().map(|m| r.run.metrics.get(m).map(|v| format_metric(*v)).unwrap_or("-".into())),
        );
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c >= 4 || c == 0 {
                    format!("{v:>w$}", w = widths[c])
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    let best = if o.goal == Goal::Max { "highest" } else { "lowest" };
    s.push_str(&format!(
        "{} of {} runs on {}, ranked by {} ({best} first).\n",
        o.runs.len(),
        o.total,
        o.rev,
        o.sort
    ));
    s
}
