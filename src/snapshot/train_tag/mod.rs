//! `mlgit train-tag`: the snapshot. In a worktree of a `stable/*` branch, pick and reserve the tag
//! name, run the training command with the name (and the `--set` params, [`overrides`]) in its
//! environment, then commit the outputs (large files into the LFS store), a tracking record and a
//! model card on the branch, and tag that commit.
//! Nothing is committed, no tag is made and the reservation is released unless every step succeeded.
//!
//! Outputs are never lost: before the command starts, the old outputs are moved aside (and put back
//! if it cannot start); once it has started, nothing it wrote is overwritten or deleted, whatever
//! fails, and the error says how to tag them without retraining (`--no-run --name TAG`).
//!
//! Concurrency: one run per stable branch and repository at a time (an OS file lock, released even
//! when the process dies), since runs in one worktree would overwrite each other's outputs. Tag names
//! are reserved under `refs/mlgit/reserved/<tag>` by compare-and-swap creation, so runs on different
//! stable branches never pick the same name either.

mod card;
mod checks;
mod code;
mod commit;
mod evaluation;
mod outputs;
mod overrides;
mod reserve;
mod run;
mod tracking;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use self::card::{commit_message, is_generated_card, model_card, tag_message};
use self::checks::{check_pointer_text, current_stable_branch, list_some};
use self::code::trained_code;
use self::commit::{write_snapshot, Snapshot};
use self::outputs::{
    collect_outputs, model_files, output_bytes, place_generated, remove_generated, SetAside,
};
use self::overrides::ParamsFile;
pub use self::overrides::{set_arg, PARAMS_ENV};
use self::reserve::reserve_tag;
use self::run::{interrupted_err, run_command};
pub use self::tracking::{numeric_metrics, parse_json_with_non_finite};
use self::tracking::{read_tracking, Sources};
use super::record::{CodeRef, DataRef, RunRecord, SCHEMA};
use super::{is_output, BranchLock};
use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::repo::lineage_walk::{lineage, Lineage};
use crate::repo::tree::Entry;
use crate::repo::worktree::dirty_paths;
use crate::repo::{format_time, host_name, Repo};
use crate::snapshot::mlflow_sqlite::FILE_STORE;
use crate::snapshot::RUN_RECORD;
use crate::store::stat_cache::Stat;

/// Where tag names are reserved while a run is in progress.
pub const RESERVED_PREFIX: &str = "refs/mlgit/reserved/";
/// The model card train-tag writes when training did not.
pub const MODEL_CARD: &str = "MODEL_CARD.md";

#[derive(Debug, Clone, Default)]
pub struct TrainTagOptions {
    /// The tag name; None: from `snapshot.tag_pattern`.
    pub name: Option<String>,
    /// Commit outputs that are already there instead of running a command.
    pub no_run: bool,
    /// Replace LFS pointer text in the worktree by the real content from the local store.
    pub materialize: bool,
    /// The training command and its arguments.
    pub command: Vec<String>,
    /// `KEY=VALUE` params for this run (`--set`), written to the file `MLGIT_PARAMS` names.
    pub set: Vec<String>,
    /// The MLflow tracking URI the training sees (`MLFLOW_TRACKING_URI`); None: MLflow's default
    /// store, `sqlite:///mlflow.db` in the worktree.
    pub mlflow_tracking_uri: Option<String>,
    /// Stops the run at a safe point (forwarded to the command while it runs).
    pub interrupt: Interrupt,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainTagOutcome {
    pub tag: String,
    pub branch: String,
    pub commit: String,
    /// False when the branch moved on to other code or data during training: the snapshot commit
    /// is then tagged but not on the branch.
    pub on_branch: bool,
    pub record: RunRecord,
    pub files: usize,
    pub lfs_files: usize,
    /// Data files whose pointer text was replaced by their content before training.
    pub materialized: usize,
    /// Things the user should know (skipped non-numeric metrics, generated model card…).
    pub notes: Vec<String>,
}

/// What is known just before the command starts (the CLI prints it).
pub struct Starting<'a> {
    pub tag: &'a str,
    pub env: &'a [(String, String)],
    /// Outputs of an earlier run that no commit holds, moved out of the worktree into this folder
    /// (they are kept there, never deleted).
    pub set_aside: Option<(&'a Path, &'a [String])>,
    /// The params set with `--set` (keys dotted), as the file `MLGIT_PARAMS` names holds them.
    pub overrides: &'a BTreeMap<String, serde_json::Value>,
}

/// Called just before the command starts.
pub type OnStart<'a> = &'a dyn Fn(&Starting<'_>);

/// Make a snapshot of the stable branch checked out in `repo`'s worktree.
pub fn train_tag(repo: &Repo, opts: &TrainTagOptions, on_start: OnStart<'_>) -> Result<TrainTagOutcome> {
    let git = repo.git();
    let config = repo.config();
    let workdir =
        git.workdir().map(Path::to_path_buf).ok_or_else(|| Error::invalid("train-tag needs a worktree"))?;
    if opts.no_run && !opts.command.is_empty() {
        return Err(Error::invalid("--no-run takes no command")
            .with_hint("drop the command to commit outputs already there, or drop --no-run to train"));
    }
    if !opts.no_run && opts.command.is_empty() {
        return Err(Error::invalid("no training command given").with_hint(
            "put it after `--`: `mlgit train-tag -- ./train.sh` (or --no-run to commit existing outputs)",
        ));
    }
    if opts.no_run && !opts.set.is_empty() {
        return Err(Error::invalid("--set needs a training run; --no-run runs nothing").with_hint(
            "drop --no-run and give the command after `--`, or drop --set to commit existing outputs",
        ));
    }
    let overrides = overrides::parse(&opts.set)?;
    let branch = current_stable_branch(git, config)?;
    let _lock = BranchLock::acquire(git, &branch, "mlgit train-tag")?;
    let base = git.head().and_then(|h| h.peel_to_commit()).context("read HEAD")?;

    let dirty: Vec<String> = dirty_paths(git)?.into_iter().filter(|p| !is_output(config, p)).collect();
    if !dirty.is_empty() {
        return Err(Error::conflict(format!(
            "the worktree of '{branch}' has changes outside the training outputs: {}",
            list_some(&dirty)
        ))
        .with_hint(format!(
            "stable branches get no new code: commit it on {} and run `mlgit stable update`, \
             or undo the changes (`git stash`)",
            config.branches.dev
        )));
    }
    let materialized = check_pointer_text(repo, &workdir, base.tree_id(), opts.materialize)?;
    let mut links = lineage(git, base.id())?;
    let code = trained_code(git, config, &base, &links)?;
    links.code = code.from_dev.then(|| code.commit.to_string());

    let reservation = reserve_tag(git, config, &branch, opts.name.as_deref(), base.id())?;
    let tag = reservation.tag.clone();
    let mut env = vec![
        ("MLGIT_TAG".to_string(), tag.clone()),
        ("MLGIT_BRANCH".to_string(), branch.clone()),
        ("MLGIT_DATA_COMMIT".to_string(), links.split.clone().unwrap_or_default()),
        ("MLGIT_CODE_COMMIT".to_string(), code.commit.to_string()),
    ];
    // Always there (`{}` without --set), so training code can read it unconditionally.
    let params_file =
        if opts.no_run { None } else { Some(ParamsFile::write(git.path(), &branch, &tag, &overrides)?) };
    if let Some(file) = &params_file {
        env.push((PARAMS_ENV.to_string(), file.path().display().to_string()));
    }
    let started = Instant::now();
    let mut notes = Vec::new();
    if !opts.no_run {
        // Old outputs go aside (never deleted), so nothing an earlier run left slips into this
        // snapshot; if the command cannot start, they come back as they were.
        if opts.interrupt.is_set() {
            return Err(interrupted_err(&opts.interrupt));
        }
        let aside = SetAside::move_outputs(git, config, &workdir, &tag)?;
        on_start(&Starting { tag: &tag, env: &env, set_aside: aside.kept(), overrides: &overrides });
        match run_command(&opts.command, &workdir, &env, &opts.interrupt) {
            Ok(()) => {}
            Err(failed) if !failed.started => {
                aside.put_back()?;
                return Err(failed.error);
            }
            Err(failed) => {
                aside.settle();
                return Err(failed.error);
            }
        }
        if let Some((dir, paths)) = aside.settle() {
            notes.push(format!(
                "{} output file(s) of an earlier run that no snapshot holds were moved to {}",
                paths.len(),
                dir.display()
            ));
        }
    }
    drop(params_file);
    let duration_s = if opts.no_run { 0.0 } else { started.elapsed().as_secs_f64() };
    // From here on the command has finished: whatever fails, its outputs stay as they are.
    let made = Made {
        tag: &tag,
        branch: &branch,
        base: &base,
        links,
        code_commit: code.commit,
        duration_s,
        overrides,
    };
    let outcome =
        snapshot_outputs(repo, opts, &workdir, &made, notes).map_err(|e| keep_outputs_hint(e, &tag))?;
    drop(reservation);
    Ok(TrainTagOutcome { materialized, ..outcome })
}

/// What the run has settled before its outputs are committed.
struct Made<'a> {
    tag: &'a str,
    branch: &'a str,
    base: &'a git2::Commit<'a>,
    links: Lineage,
    code_commit: git2::Oid,
    duration_s: f64,
    overrides: BTreeMap<String, serde_json::Value>,
}

/// The error of a step after the training finished, with the way to tag its outputs anyway.
fn keep_outputs_hint(e: Error, tag: &str) -> Error {
    let how = format!(
        "the training's outputs are left as it wrote them: once fixed, tag them without retraining: \
         `mlgit train-tag --no-run --name {tag}`"
    );
    let hint = match e.hint() {
        Some(h) => format!("{h}; {how}"),
        None => how,
    };
    e.with_hint(hint)
}

/// Collect the outputs, read params and metrics, and write the snapshot commit and tag. Reads the
/// worktree only: nothing the training wrote is changed.
fn snapshot_outputs(
    repo: &Repo,
    opts: &TrainTagOptions,
    workdir: &Path,
    made: &Made<'_>,
    mut notes: Vec<String>,
) -> Result<TrainTagOutcome> {
    let git = repo.git();
    let config = repo.config();
    let mut outputs = collect_outputs(repo, workdir, &opts.interrupt)?;
    if opts.no_run {
        // A card train-tag generated for an earlier snapshot is stale (its title and metrics);
        // a card the training wrote is kept.
        if let Some(i) = outputs.iter().position(|o| o.path == MODEL_CARD) {
            if is_generated_card(&output_bytes(repo, &outputs[i])?) {
                outputs.remove(i);
            }
        }
    }
    if outputs.is_empty() {
        return Err(Error::not_found(format!(
            "no training outputs in {} (looked for {})",
            workdir.display(),
            config.snapshot.outputs.join(", ")
        ))
        .with_hint("the command must write them (e.g. model/ and metrics.json); the paths are snapshot.outputs in mlgit.yaml"));
    }
    let sources = Sources { workdir, mlflow_tracking_uri: opts.mlflow_tracking_uri.as_deref() };
    let tracked = read_tracking(repo, &sources, made.tag, &outputs, &mut notes)?;
    notes.extend(overrides::contradictions(&made.overrides, &tracked.params));

    let sig = repo.signature()?;
    let links = &made.links;
    let evaluation = evaluation::evaluation(repo, &outputs, &tracked.metrics, links.split.as_deref())?;
    let record = RunRecord {
        schema: SCHEMA,
        tag: made.tag.to_string(),
        branch: made.branch.to_string(),
        created_at: format_time(sig.when()),
        duration_s: (made.duration_s * 1000.0).round() / 1000.0,
        command: opts.command.clone(),
        params: tracked.params,
        metrics: tracked.metrics,
        code: CodeRef { commit: Some(made.code_commit.to_string()) },
        data: DataRef { split: links.split.clone(), clean: links.clean.clone(), raw: links.raw.clone() },
        model: model_files(config, &outputs),
        host: host_name(),
        mlgit: crate::VERSION.to_string(),
        mlflow: tracked.mlflow,
        evaluation,
        overrides: made.overrides.clone(),
    };

    let mut files: Vec<(String, Entry)> = outputs.iter().map(|o| (o.path.clone(), o.entry)).collect();
    let mut in_place: HashMap<String, Stat> = outputs.iter().map(|o| (o.path.clone(), o.stat)).collect();
    let pointers: HashMap<git2::Oid, bool> = outputs.iter().map(|o| (o.entry.oid, o.lfs())).collect();
    if let Some(run) = &tracked.sqlite_run {
        // The run from MLflow's SQLite store, as the file store lays it out: the one layout
        // merge-tracking merges. Files the training wrote there win.
        for (rel, bytes) in run.file_layout() {
            let path = format!("{FILE_STORE}/{rel}");
            if !in_place.contains_key(&path) {
                files.push((path, Entry::blob(git.blob(&bytes).context("write the MLflow run")?)));
            }
        }
    }
    files.push((
        RUN_RECORD.to_string(),
        Entry::blob(git.blob(&record.to_bytes()?).context("write the tracking record")?),
    ));
    if !outputs.iter().any(|o| o.path == MODEL_CARD) {
        let card = model_card(config, &record, links);
        files.push((
            MODEL_CARD.to_string(),
            Entry::blob(git.blob(card.as_bytes()).context("write the model card")?),
        ));
        // Where the old card was moved aside, the new one takes its place now, as an output: the
        // transaction would otherwise see a committed file deleted from the checkout.
        if let Some(stat) = place_generated(workdir, MODEL_CARD, card.as_bytes())? {
            in_place.insert(MODEL_CARD.to_string(), stat);
        }
        notes.push(format!("wrote {MODEL_CARD} (training did not write one)"));
    }
    // Last moment to stop cleanly; from here on the commit and tag are written in one go.
    if opts.interrupt.is_set() {
        return Err(interrupted_err(&opts.interrupt));
    }
    let placed_card =
        in_place.get(MODEL_CARD).copied().filter(|_| !outputs.iter().any(|o| o.path == MODEL_CARD));
    let written = write_snapshot(
        repo,
        Snapshot {
            branch: made.branch,
            tag: made.tag,
            base: made.base,
            files,
            in_place,
            pointers,
            message: commit_message(config, &record, links),
            tag_message: tag_message(config, &record, links),
        },
    )
    .inspect_err(|_| {
        // No snapshot: the card placed above goes again, if it is still the file written.
        if let Some(stat) = placed_card {
            remove_generated(workdir, MODEL_CARD, &stat);
        }
    })?;
    notes.extend(written.notes);
    Ok(TrainTagOutcome {
        tag: made.tag.to_string(),
        branch: made.branch.to_string(),
        commit: written.commit.to_string(),
        on_branch: written.on_branch,
        record,
        files: outputs.len(),
        lfs_files: outputs.iter().filter(|o| o.lfs()).count(),
        materialized: 0,
        notes,
    })
}
