//! `mlgit merge-tracking`: copy snapshots' tracking records and MLflow runs into main.

use mlgit::tracking::merge::{merge_tracking, MergeOptions, MergeTrackingOutcome};

use super::Ctx;

/// Copy the tracking of snapshot tags into main (runs, leaderboard, MLflow mlruns/).
///
/// For each snapshot tag (default: every tag whose commit has tracking/run.json and that main does
/// not have yet) this writes tracking/runs/<tag>.json on main, regenerates tracking/runs.json and
/// the tracking/README.md leaderboard, and merges the snapshot's MLflow store (mlruns/) into main's.
/// Main is written without a checkout; if it is checked out and clean, that worktree is updated.
/// Safe to run in several CI jobs at once, and a second run with nothing new changes nothing.
/// A tag whose record is missing or invalid is skipped with a warning (an error if you named it).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot tags to merge (default: every snapshot that main does not have yet).
    #[arg(value_name = "TAG")]
    pub tags: Vec<String>,
    /// The branch to merge into (default: the main branch of mlgit.yaml).
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let outcome = merge_tracking(&repo, &MergeOptions { into: args.into, tags: args.tags })?;
    for s in &outcome.skipped {
        let hint = s.hint.as_deref().map(|h| format!(" (hint: {h})")).unwrap_or_default();
        ctx.printer.warn(&format!("skipped {}: {}{hint}", s.tag, s.reason));
    }
    if let Some(w) = &outcome.worktree {
        if let Some(e) = &w.error {
            ctx.printer.warn(&format!(
                "'{}' moved but its checkout in {} could not be updated: {e}; run `git -C {} reset --hard` there",
                outcome.branch, w.path, w.path
            ));
        }
    }
    ctx.printer.result("merge-tracking", &outcome, render);
    // Naming a tag asks for it: if one could not be merged, the job must notice.
    Ok(if outcome.named && !outcome.skipped.is_empty() { 1 } else { 0 })
}

fn render(o: &MergeTrackingOutcome) -> String {
    let mut s = String::new();
    match &o.commit {
        None => s.push_str(&format!(
            "Nothing to merge: '{}' already has the tracking of {} ({} runs).\n",
            o.branch,
            if o.named { "the tags given" } else { "every snapshot tag" },
            o.runs_total
        )),
        Some(c) => {
            s.push_str(&format!(
                "Merged the tracking of {} snapshot{} into '{}' ({}; {} runs in total).\n",
                o.merged.len(),
                if o.merged.len() == 1 { "" } else { "s" },
                o.branch,
                &c[..c.len().min(7)],
                o.runs_total
            ));
            for m in &o.merged {
                let ml = m
                    .mlflow
                    .as_ref()
                    .map(|f| {
                        format!(
                            "; MLflow: {} run(s) added, {} updated, {} experiment(s) created",
                            f.runs_added.len(),
                            f.runs_updated.len(),
                            f.experiments_created.len()
                        )
                    })
                    .unwrap_or_default();
                s.push_str(&format!("  {:<20} -> {}{ml}\n", m.tag, m.record));
            }
        }
    }
    if !o.unchanged.is_empty() {
        s.push_str(&format!("Already on '{}': {}\n", o.branch, o.unchanged.join(", ")));
    }
    if let Some(w) = &o.worktree {
        if w.updated && o.commit.is_some() {
            s.push_str(&format!("Updated the checkout in {}.\n", w.path));
        }
    }
    if o.commit.is_some() {
        s.push_str(&format!(
            "Next: `mlgit runs` shows the leaderboard; `git push origin {}` shares it.\n",
            o.branch
        ));
    }
    s
}
