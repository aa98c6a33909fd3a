//! `mlgit merge-tracking`: copy the tracking record (and the MLflow runs) of snapshot tags into
//! main without a checkout. The new main tree is computed from main's tip inside the
//! compare-and-swap retry loop, so a writer that loses a race re-reads main and re-applies: eight
//! jobs merging eight tags at once leave eight runs. Run files are per tag and the run list and
//! leaderboard are regenerated from them, so concurrent merges never conflict in content.

use std::collections::BTreeMap;

use git2::{FileMode, Oid, Repository};
use serde::Serialize;

use super::leaderboard::{build, readme, BoardOptions};
use super::mlflow::{self, StoreFiles};
use super::{check_record, read_runs, run_file, run_files, LEADERBOARD, MLRUNS, RUNS_LIST};
use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::repo::trailers::{keys, Message};
use crate::repo::transaction::{Change, Step, Transaction, TxOptions, TxOutcome};
use crate::repo::tree::{entry_at, list_files, Entry, TreeEdits};
use crate::repo::Repo;
use crate::snapshot::RUN_RECORD;

/// Where the artifacts of merged MLflow runs point on main: relative to the repository root, so
/// `mlflow ui --backend-store-uri ./mlruns` started there finds them. `mlgit tracking export`
/// rewrites them to the export folder.
pub const ARTIFACT_ROOT: &str = "mlruns";

#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// The branch to merge into (default: the main branch).
    pub into: Option<String>,
    /// The snapshot tags to merge; empty: every tag with a tracking record that main lacks.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeTrackingOutcome {
    pub branch: String,
    /// The commit made on the branch; null when there was nothing new.
    pub commit: Option<String>,
    /// The branch tip the commit was built on (or the unchanged tip).
    pub previous: Option<String>,
    /// Compare-and-swap attempts (more than 1: another writer moved the branch meanwhile).
    pub tries: usize,
    /// Tags whose tracking changed the branch.
    pub merged: Vec<MergedRun>,
    /// Tags whose tracking the branch already had, identically.
    pub unchanged: Vec<String>,
    /// Tags left out, with the reason; nothing of them was written.
    pub skipped: Vec<SkippedTag>,
    /// Whether the tags were named on the command line (then a skipped tag is an error).
    pub named: bool,
    /// Runs on the branch after the merge.
    pub runs_total: usize,
    /// The worktree that has the branch checked out, if any.
    pub worktree: Option<WorktreeUpdate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergedRun {
    pub tag: String,
    pub commit: String,
    /// The run's file on the branch.
    pub record: String,
    /// What the snapshot's MLflow store added; null when the snapshot has no `mlruns/`.
    pub mlflow: Option<MlflowMerge>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MlflowMerge {
    pub runs_added: Vec<String>,
    pub runs_updated: Vec<String>,
    pub experiments_created: Vec<String>,
    /// Parts of the snapshot's store deliberately not merged (deleted runs, model registry…).
    pub skipped: Vec<MlflowSkipped>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MlflowSkipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedTag {
    pub tag: String,
    pub reason: String,
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorktreeUpdate {
    pub path: String,
    /// Whether its files and index now match the branch.
    pub updated: bool,
    /// Why it could not be updated (the branch moved anyway).
    pub error: Option<String>,
}

/// A snapshot ready to merge: its record checked, its MLflow store read and checked.
struct Snapshot {
    tag: String,
    commit: Oid,
    record_blob: Oid,
    mlruns: Option<StoreFiles>,
}

/// Merge the tracking of snapshot tags into main (see the module docs and docs/merge-tracking.md).
pub fn merge_tracking(repo: &Repo, opts: &MergeOptions) -> Result<MergeTrackingOutcome> {
    let git = repo.git();
    let into = opts.into.clone().unwrap_or_else(|| repo.config().branches.main.clone());
    let kind = repo.config().branch_kind(&into);
    if !matches!(kind, BranchKind::Main | BranchKind::Other) || repo.config().is_append_only(&into) {
        return Err(Error::invalid(format!(
            "'{into}' is a {kind:?} branch; tracking is merged into main (or a branch of your own)"
        ))
        .with_hint("leave out --into to merge into main"));
    }
    let start = repo.require_branch(&into)?.tree_id();
    let named = !opts.tags.is_empty();

    let candidates = if named { named_tags(git, &opts.tags)? } else { unmerged_tags(git, start)? };
    let mut snapshots = Vec::new();
    let mut skipped = Vec::new();
    for (tag, commit) in candidates {
        match prepare(git, &tag, commit) {
            Ok(s) => snapshots.push(s),
            Err(e) => {
                skipped.push(SkippedTag { tag, reason: e.to_string(), hint: e.hint().map(str::to_string) })
            }
        }
    }

    let mut attempt = Attempt::default();
    let out = if snapshots.is_empty() {
        None
    } else {
        // The transaction holds the branch's lock from the worktree check to the sync, so eight
        // jobs merging at once into a checked-out main never see each other's half-synced files.
        let tx = Transaction::open(
            repo,
            &into,
            TxOptions { writer: "mlgit merge-tracking".into(), ..Default::default() },
        )?;
        Some(tx.commit(|tip| {
            let Some(tip) = tip else { return Err(Error::not_found(format!("branch '{into}' disappeared"))) };
            attempt = apply(repo, tip.tree_id(), &snapshots)?;
            Ok(Step::Commit(Box::new(Change::new(attempt.tree, message(&attempt)))))
        })?)
    };
    let (commit, previous, tries, final_tip) = match &out {
        Some(TxOutcome { commit: Some(commit), previous, tries, .. }) => {
            (Some(commit.to_string()), previous.map(|p| p.to_string()), *tries, *commit)
        }
        _ => {
            let tip = repo
                .branch_tip(&into)?
                .ok_or_else(|| Error::not_found(format!("branch '{into}' disappeared")))?;
            // Nothing new: every prepared tag is already there.
            attempt.unchanged = snapshots.iter().map(|s| s.tag.clone()).collect();
            attempt.merged.clear();
            (None, Some(tip.to_string()), 1, tip)
        }
    };
    let final_tree = git.find_commit(final_tip).context(format!("read the tip of '{into}'"))?.tree_id();
    let runs_total = run_files(git, final_tree)?.len();

    let worktree = out.and_then(|o| match (o.worktree, o.sync_error) {
        (Some(path), _) => {
            Some(WorktreeUpdate { path: path.display().to_string(), updated: true, error: None })
        }
        (None, Some(error)) => {
            Some(WorktreeUpdate { path: String::new(), updated: false, error: Some(error) })
        }
        (None, None) => None,
    });

    Ok(MergeTrackingOutcome {
        branch: into,
        commit,
        previous,
        tries,
        merged: attempt.merged,
        unchanged: attempt.unchanged,
        skipped,
        named,
        runs_total,
        worktree,
    })
}

/// The tags named by the user, each of which must exist.
fn named_tags(git: &Repository, tags: &[String]) -> Result<Vec<(String, Oid)>> {
    let mut out: Vec<(String, Oid)> = Vec::new();
    for tag in tags {
        let commit = git
            .revparse_single(&format!("refs/tags/{tag}"))
            .and_then(|o| o.peel_to_commit())
            .map_err(|_| {
                Error::not_found(format!("tag '{tag}' does not exist (or does not point at a commit)"))
                    .with_hint("list snapshots with `mlgit status`; fetch them with `git fetch --tags`")
            })?;
        if !out.iter().any(|(t, _)| t == tag) {
            out.push((tag.clone(), commit.id()));
        }
    }
    Ok(out)
}

/// Every tag whose commit carries a tracking record and whose run file the branch lacks.
fn unmerged_tags(git: &Repository, tree: Oid) -> Result<Vec<(String, Oid)>> {
    let have = run_files(git, tree)?;
    let mut out = Vec::new();
    let names = git.tag_names(None).context("list tags")?;
    for name in names.iter().flatten() {
        if have.contains_key(name) {
            continue;
        }
        let Ok(commit) = git.revparse_single(&format!("refs/tags/{name}")).and_then(|o| o.peel_to_commit())
        else {
            continue;
        };
        if entry_at(git, commit.tree_id(), RUN_RECORD)?.is_some() {
            out.push((name.to_string(), commit.id()));
        }
    }
    Ok(out)
}

/// Read and check one snapshot; an error here skips the tag (its message starts with the tag).
fn prepare(git: &Repository, tag: &str, commit: Oid) -> Result<Snapshot> {
    let tree = git.find_commit(commit).context(format!("read the commit of {tag}"))?.tree_id();
    let record = match entry_at(git, tree, RUN_RECORD)? {
        None => {
            return Err(Error::invalid(format!(
                "{tag}: its commit has no {RUN_RECORD}, so it is not a snapshot"
            ))
            .with_hint("snapshots are tagged by `mlgit train-tag`; name only snapshot tags"))
        }
        Some(e) if e.mode != FileMode::Blob && e.mode != FileMode::BlobExecutable => {
            return Err(Error::invalid(format!("{tag}: {RUN_RECORD} is not a regular file")).with_hint(
                "tracking records are plain JSON files; tag a new snapshot with `mlgit train-tag`",
            ))
        }
        Some(e) => e,
    };
    let blob = git.find_blob(record.oid).context(format!("read {tag}:{RUN_RECORD}"))?;
    check_record(tag, blob.content())?;
    crate::repo::tree::validate_path(&run_file(tag))?;

    let mlruns = match entry_at(git, tree, MLRUNS)? {
        Some(e) if e.mode == FileMode::Tree => {
            let store = read_store(git, e.oid, &format!("{tag}:{MLRUNS}/"))?;
            // Checked on its own first, so a bad store skips this tag instead of failing the merge.
            let check = mlflow::MergeOptions { tag, artifact_root: ARTIFACT_ROOT };
            mlflow::merge(&StoreFiles::new(), &store, &check).map_err(|e| {
                let inner = Error::from(e);
                let err = Error::invalid(format!("{tag}: its MLflow store ({MLRUNS}/) is refused: {inner}"));
                match inner.hint() {
                    Some(h) => err.with_hint(h),
                    None => err,
                }
            })?;
            Some(store)
        }
        _ => None,
    };
    Ok(Snapshot { tag: tag.to_string(), commit, record_blob: record.oid, mlruns })
}

/// The files of an MLflow store held in a git tree. Symbolic links are refused: on export they
/// could point anywhere on the machine.
pub fn read_store(git: &Repository, tree: Oid, origin: &str) -> Result<StoreFiles> {
    let mut files = StoreFiles::new();
    for f in list_files(git, tree)? {
        if f.mode == FileMode::Link {
            return Err(Error::invalid(format!("{origin}{} is a symbolic link", f.path)).with_hint(
                "an MLflow store holds only regular files; remove the link from mlruns/ and tag a new snapshot",
            ));
        }
        let blob = git.find_blob(f.oid).context(format!("read {origin}{}", f.path))?;
        files.insert(f.path, blob.content().to_vec());
    }
    Ok(files)
}

/// What one attempt computed on top of a branch tip.
#[derive(Debug)]
struct Attempt {
    tree: Oid,
    merged: Vec<MergedRun>,
    unchanged: Vec<String>,
}

impl Default for Attempt {
    fn default() -> Self {
        Attempt { tree: Oid::zero(), merged: Vec::new(), unchanged: Vec::new() }
    }
}

/// Compute main's new tree: run files, MLflow store, run list, leaderboard, `.gitattributes`.
fn apply(repo: &Repo, base: Oid, snapshots: &[Snapshot]) -> Result<Attempt> {
    let git = repo.git();
    let have = run_files(git, base)?;
    let mut edits = TreeEdits::new();
    let mut changed: BTreeMap<&str, bool> = BTreeMap::new();
    for s in snapshots {
        let same = have.get(&s.tag) == Some(&s.record_blob);
        if !same {
            edits.set(&run_file(&s.tag), Entry::blob(s.record_blob))?;
        }
        changed.insert(&s.tag, !same);
    }

    let mut mlflow_results: BTreeMap<&str, MlflowMerge> = BTreeMap::new();
    if snapshots.iter().any(|s| s.mlruns.is_some()) {
        let current = match entry_at(git, base, MLRUNS)? {
            Some(e) if e.mode == FileMode::Tree => read_store(git, e.oid, &format!("{MLRUNS}/"))?,
            _ => StoreFiles::new(),
        };
        let mut store = current.clone();
        for s in snapshots {
            let Some(incoming) = &s.mlruns else { continue };
            let opts = mlflow::MergeOptions { tag: &s.tag, artifact_root: ARTIFACT_ROOT };
            let out = mlflow::merge(&store, incoming, &opts).map_err(|e| {
                Error::invalid(format!("cannot merge the MLflow store of {} into {MLRUNS}/: {e}", s.tag))
                    .with_hint("the branch's mlruns/ was edited by hand: fix or remove the named file there")
            })?;
            let did = !out.runs_added.is_empty()
                || !out.runs_updated.is_empty()
                || !out.experiments_created.is_empty();
            if did {
                changed.insert(&s.tag, true);
            }
            mlflow_results.insert(
                &s.tag,
                MlflowMerge {
                    runs_added: out.runs_added,
                    runs_updated: out.runs_updated,
                    experiments_created: out.experiments_created,
                    skipped: out
                        .skipped
                        .into_iter()
                        .map(|k| MlflowSkipped {
                            path: format!("{MLRUNS}/{}", k.path),
                            reason: k.reason.to_string(),
                        })
                        .collect(),
                },
            );
            store = out.files;
        }
        for (path, bytes) in &store {
            if current.get(path) != Some(bytes) {
                let blob = git.blob(bytes).context(format!("write {MLRUNS}/{path}"))?;
                edits.set(&format!("{MLRUNS}/{path}"), Entry::blob(blob))?;
            }
        }
        for path in current.keys().filter(|p| !store.contains_key(*p)) {
            edits.remove(&format!("{MLRUNS}/{path}"))?;
        }
    }
    let tree = edits.write(git, Some(base))?;
    let known: BTreeMap<String, String> =
        snapshots.iter().map(|s| (s.tag.clone(), s.commit.to_string())).collect();
    let tree = regenerate(repo, tree, &known)?;

    let mut attempt = Attempt { tree, ..Default::default() };
    for s in snapshots {
        if changed.get(s.tag.as_str()) == Some(&true) {
            attempt.merged.push(MergedRun {
                tag: s.tag.clone(),
                commit: s.commit.to_string(),
                record: run_file(&s.tag),
                mlflow: mlflow_results.remove(s.tag.as_str()),
            });
        } else {
            attempt.unchanged.push(s.tag.clone());
        }
    }
    Ok(attempt)
}

/// Regenerate the run list and the leaderboard of a main tree from every run file in it: the last
/// step of the tracking merge, also re-run when `pull` merges two main histories over the union of
/// both sides' run files. `known` gives snapshot commits (tag → commit) the tree may not list.
pub fn regenerate(repo: &Repo, tree: Oid, known: &BTreeMap<String, String>) -> Result<Oid> {
    let git = repo.git();
    let runs = read_runs(git, tree, known)?;
    let mut list = serde_json::to_vec_pretty(&runs).context("write tracking/runs.json")?;
    list.push(b'\n');
    let tracking = &repo.config().tracking;
    let opts = BoardOptions {
        sort: tracking.primary_metric.clone(),
        goal: tracking.goal,
        filters: Vec::new(),
        columns: None,
        limit: None,
    };
    let board = readme(&build(runs, &opts)?);
    let mut generated = TreeEdits::new();
    generated.set(RUNS_LIST, Entry::blob(git.blob(&list).context("write tracking/runs.json")?))?;
    generated
        .set(LEADERBOARD, Entry::blob(git.blob(board.as_bytes()).context("write tracking/README.md")?))?;
    generated.write(git, Some(tree))
}

/// Merge one main's MLflow store (`theirs`) into another's (`ours`) as the tracking merge would
/// have merged its snapshots one by one: the runs of `theirs` are grouped by the snapshot tag each
/// carries (run tag `mlgit.tag`) and each group is merged with that tag, so every run keeps the
/// snapshot it came from. Experiments are matched by name as in every merge. Used by `pull` when two
/// main histories diverged.
pub fn merge_stores(ours: &StoreFiles, theirs: &StoreFiles) -> Result<StoreFiles> {
    let mut run_tags: BTreeMap<String, String> = BTreeMap::new();
    for path in theirs.keys() {
        if let Some(dir) = run_dir(path) {
            if !run_tags.contains_key(dir) {
                let tag = theirs
                    .get(&format!("{dir}/tags/{}", mlflow::MLGIT_TAG))
                    .map(|b| String::from_utf8_lossy(b).trim().to_string())
                    .unwrap_or_default();
                run_tags.insert(dir.to_string(), tag);
            }
        }
    }
    let mut tags: Vec<&str> = run_tags.values().map(String::as_str).collect();
    tags.sort();
    tags.dedup();
    if tags.is_empty() {
        // No runs: experiments, datasets and models are still merged.
        tags.push("");
    }
    let mut store = ours.clone();
    for tag in tags {
        let group: StoreFiles = theirs
            .iter()
            .filter(|(p, _)| run_dir(p).map_or(true, |d| run_tags.get(d).map(String::as_str) == Some(tag)))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect();
        let opts = mlflow::MergeOptions { tag, artifact_root: ARTIFACT_ROOT };
        store = mlflow::merge(&store, &group, &opts)
            .map_err(|e| {
                Error::invalid(format!("cannot merge the two {MLRUNS}/ stores (runs of {tag:?}): {e}"))
                    .with_hint("one side's mlruns/ was edited by hand: fix or remove the named file there")
            })?
            .files;
    }
    Ok(store)
}

/// The run folder (`<experiment>/<run>`) a store path is in, if it is in one: the layout of
/// [`mlflow`] (experiment sub-folders `tags`, `datasets`, `models`, `traces` are not runs; the
/// root `models/` registry and `.trash/` are not experiments).
fn run_dir(path: &str) -> Option<&str> {
    let mut parts = path.splitn(3, '/');
    let (exp, run, _rest) = (parts.next()?, parts.next()?, parts.next()?);
    if matches!(exp, "models" | ".trash") || matches!(run, "tags" | "datasets" | "models" | "traces") {
        return None;
    }
    Some(&path[..exp.len() + 1 + run.len()])
}

fn message(attempt: &Attempt) -> String {
    let tags: Vec<&str> = attempt.merged.iter().map(|m| m.tag.as_str()).collect();
    let subject = match tags.as_slice() {
        [] => "Regenerate the tracking list".to_string(),
        [one] => format!("Merge tracking of {one}"),
        many if many.len() <= 4 => format!("Merge tracking of {}", many.join(", ")),
        many => format!("Merge tracking of {} runs ({}, …)", many.len(), many[..3].join(", ")),
    };
    let mut msg = Message::new(subject).body(
        "Tracking records copied from snapshot tags by `mlgit merge-tracking`; tracking/runs.json and\n\
         tracking/README.md regenerated.",
    );
    for m in &attempt.merged {
        msg = msg.trailer(keys::SNAPSHOT, format!("{} {}", m.tag, m.commit));
    }
    msg.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_every_merged_tag_in_trailers() {
        let run =
            |t: &str| MergedRun { tag: t.into(), commit: "c".into(), record: run_file(t), mlflow: None };
        let a = Attempt { tree: Oid::zero(), merged: vec![run("m-v1"), run("m-v2")], unchanged: vec![] };
        let text = message(&a);
        assert!(text.starts_with("Merge tracking of m-v1, m-v2\n"), "{text}");
        let trailers = crate::repo::trailers::parse(&text);
        assert_eq!(trailers.iter().filter(|(k, _)| k == keys::SNAPSHOT).count(), 2);
    }
}
