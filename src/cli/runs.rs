//! `mlgit runs`: the leaderboard of the runs merged into main.

use mlgit::config::Goal;
use mlgit::tracking::leaderboard::{to_csv, to_markdown, to_text, Style};
use mlgit::tracking::runs::{runs, RunsOptions, RunsOutcome};

use super::Ctx;

/// List the training runs merged into main, best first (the leaderboard).
///
/// Reads main's committed tracking (tracking/runs/), so it shows what `mlgit merge-tracking` has
/// merged, whatever is checked out. Runs are ranked by tracking.primary_metric of mlgit.yaml
/// (tracking.goal says whether higher or lower is better) unless --sort names another metric.
/// The params are those the training reported plus unreported `train-tag --set` overrides.
/// The params that differ between runs are columns. Runs evaluated on other data than the newest
/// run (another validation split or size) are not comparable with it: they are listed after the
/// others, marked `*`, ranked among themselves, and a footnote says what they were evaluated on.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rank by this metric (default: tracking.primary_metric).
    #[arg(long, value_name = "METRIC")]
    pub sort: Option<String>,
    /// Whether the best value is the highest or the lowest (default: tracking.goal for the
    /// primary metric; for another --sort metric, min when named like loss, error, rmse, mae…,
    /// else max).
    #[arg(long, value_enum)]
    pub goal: Option<GoalArg>,
    /// Show only the N best runs.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Read the tracking of this revision instead of main.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Only runs meeting this condition: 'params.lr<0.1', 'metrics.accuracy>=0.9', 'accuracy>0.8'
    /// (a bare name is a metric, else a param), 'tag=model-v3'; operators < <= > >= = == !=.
    /// Repeat for several (all must hold).
    #[arg(long = "where", value_name = "EXPR")]
    pub filters: Vec<String>,
    /// The columns to show, in order, comma-separated: #, tag, date, data, eval, commit, branch,
    /// metric names, param names (params.X / metrics.X when a name is both).
    #[arg(long, value_name = "A,B,…")]
    pub columns: Vec<String>,
    /// How to print the table (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GoalArg {
    Max,
    Min,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Markdown,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let goal = args.goal.map(|g| match g {
        GoalArg::Max => Goal::Max,
        GoalArg::Min => Goal::Min,
    });
    let opts = RunsOptions {
        rev: args.rev,
        sort: args.sort,
        goal,
        limit: args.limit,
        filters: args.filters,
        columns: (!args.columns.is_empty()).then_some(args.columns),
    };
    let outcome = runs(&repo, &opts)?;
    ctx.printer.result("runs", &outcome, |o| match args.format {
        Format::Csv => to_csv(&o.board.table(Style::Csv)),
        Format::Markdown => to_markdown(&o.board.table(Style::Markdown)),
        _ => render(o),
    });
    Ok(0)
}

fn render(o: &RunsOutcome) -> String {
    let b = &o.board;
    if b.total == 0 {
        return format!(
            "No runs on {} yet: train with `mlgit train-tag -- <command>`, then `mlgit merge-tracking`.\n",
            o.rev
        );
    }
    if b.matched == 0 {
        return format!("None of the {} runs on {} meets the --where conditions.\n", b.total, o.rev);
    }
    let mut s = to_text(&b.table(Style::Text));
    let best = if b.goal == Goal::Max { "highest" } else { "lowest" };
    let meet = if b.matched < b.total {
        let verb = if b.matched == 1 { "meets" } else { "meet" };
        format!(" ({} {verb} the --where conditions)", b.matched)
    } else {
        String::new()
    };
    s.push_str(&format!(
        "{} of {} runs on {}{meet}, ranked by {} ({best} first).\n",
        b.runs.len(),
        b.total,
        o.rev,
        b.sort
    ));
    s
}
