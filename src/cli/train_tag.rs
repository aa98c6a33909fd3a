//! `mlgit train-tag`: train on a stable/* branch and commit + tag the snapshot.

use mlgit::snapshot::train_tag::{set_arg, train_tag, Starting, TrainTagOptions, TrainTagOutcome};

use super::Ctx;

/// Train on a stable/ branch, then commit model, metrics and tracking record and tag them.
///
/// Run it in a worktree of a stable/* branch. It picks the tag name first (--name, or
/// snapshot.tag_pattern in mlgit.yaml: by default the model name and the next number, e.g.
/// model-v3) and reserves it, runs CMD with
/// MLGIT_TAG, MLGIT_BRANCH, MLGIT_DATA_COMMIT, MLGIT_CODE_COMMIT and MLGIT_PARAMS (a JSON file of
/// the --set params, `{}` without) set, then commits the output
/// paths (snapshot.outputs: model/, checkpoints/, metrics.json, params.json, MODEL_CARD.md,
/// mlruns/…; large files stored Git LFS compatible), tracking/run.json and a model card, and makes
/// an annotated tag on that commit. If CMD fails or is interrupted, nothing is committed and
/// mlgit exits with CMD's exit code. Output paths are emptied before CMD runs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tag name (default: from snapshot.tag_pattern).
    #[arg(long, value_name = "TAG")]
    pub name: Option<String>,
    /// Do not run a command: commit and tag the outputs already in the worktree.
    #[arg(long)]
    pub no_run: bool,
    /// Write the real content of data files that are still LFS pointer text, from the local store.
    #[arg(long)]
    pub materialize: bool,
    /// Set a param for this run, as KEY=VALUE (repeatable): KEY `lr`, `params.lr` or nested
    /// `params.opt.lr`; VALUE read as YAML (0.01, adam, true, [64, 32]). The training reads them
    /// from the JSON file named by $MLGIT_PARAMS; the snapshot records them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The training command, after `--` (e.g. `-- ./train.sh`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = TrainTagOptions {
        name: args.name,
        no_run: args.no_run,
        materialize: args.materialize,
        command: args.command,
        set: args.set,
        mlflow_tracking_uri: std::env::var("MLFLOW_TRACKING_URI").ok(),
        interrupt: ctx.interrupt.clone(),
    };
    let printer = ctx.printer;
    let on_start = move |s: &Starting<'_>| {
        if let Some((dir, paths)) = s.set_aside {
            printer.note(&format!(
                "Moved {} output file(s) that no snapshot holds (an earlier run's?) to {}",
                paths.len(),
                dir.display()
            ));
        }
        printer.note(&format!("Training snapshot {} (MLGIT_TAG={})", s.tag, s.tag));
        if !s.overrides.is_empty() {
            let sets: Vec<String> = s.overrides.iter().map(|(k, v)| set_arg(k, v)).collect();
            printer.note(&format!("With params {} (in the file $MLGIT_PARAMS names)", sets.join(" ")));
        }
    };
    let outcome = train_tag(&repo, &opts, &on_start)?;
    if outcome.materialized > 0 {
        ctx.printer
            .note(&format!("Wrote the content of {} LFS data file(s) before training", outcome.materialized));
    }
    for n in &outcome.notes {
        ctx.printer.note(&format!("note: {n}"));
    }
    ctx.printer.result("train-tag", &outcome, render);
    Ok(0)
}

fn render(o: &TrainTagOutcome) -> String {
    let mut s = format!(
        "Tagged {} on {} ({}): {} output file(s), {} in LFS\n",
        o.tag,
        if o.on_branch { o.branch.as_str() } else { "a commit beside the branch" },
        &o.commit[..7],
        o.files,
        o.lfs_files
    );
    for (k, v) in &o.record.metrics {
        s.push_str(&format!("  {k} = {v}\n"));
    }
    s.push_str(&format!(
        "Inspect it with `mlgit show {tag}`; share it with `mlgit push origin {tag}` (its LFS objects, then the tag)\n",
        tag = o.tag
    ));
    s
}
