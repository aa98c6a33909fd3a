//! Merges MLflow file stores (`mlruns/`) from several machines and lays the result out for MLflow 3.x.
//!
//! Stores are handled as in-memory maps from '/'-separated paths to file contents because mlgit reads
//! and writes git trees, not folders. Layout facts below were checked against MLflow 3.17.2's
//! `FileStore` (`mlflow/store/tracking/file_store.py`):
//!
//! - `<exp_id>/meta.yaml` is an experiment; `<exp_id>/tags/`, `datasets/`, `models/` and `traces/` are
//!   reserved and every other sub-folder is a run (`<exp_id>/<run_id>/meta.yaml`, `metrics/`,
//!   `params/`, `tags/`, `artifacts/`, `inputs/`, `outputs/`).
//! - `<exp_id>/models/<model_id>/` holds 3.x logged models (their own `meta.yaml` with
//!   `experiment_id` and `artifact_location`), `<exp_id>/traces/<trace_id>/` traces (`trace_info.yaml`
//!   plus the tag `mlflow.artifactLocation`), `<exp_id>/datasets/<digest>/` datasets that run inputs
//!   refer to by id.
//! - The root `models/` folder is the model registry and `.trash/` holds deleted experiments; neither
//!   is an experiment.
//! - Experiment ids and run/model/trace ids are looked up by folder name, and a `meta.yaml` whose id
//!   disagrees with its folder makes MLflow ignore the experiment or run.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_yaml::{Mapping, Value};

/// Files of an MLflow file store, keyed by path relative to the store root (e.g. "123/meta.yaml",
/// "123/abc/metrics/loss"), '/'-separated.
pub type StoreFiles = BTreeMap<String, Vec<u8>>;

/// Run tag recording which mlgit snapshot a run came from.
pub const MLGIT_TAG: &str = "mlgit.tag";

const META: &str = "meta.yaml";
const TRACE_INFO: &str = "trace_info.yaml";
const TRASH: &str = ".trash";
const REGISTRY: &str = "models";
const EXP_TAGS: &str = "tags";
const DATASETS: &str = "datasets";
const LOGGED_MODELS: &str = "models";
const TRACES: &str = "traces";
const RUN_TAG_FILE: &str = "tags/mlgit.tag";
const TRACE_ARTIFACT_TAG: &str = "tags/mlflow.artifactLocation";

/// Without metrics/, params/ and artifacts/ MLflow's `get_run` (and so `list_artifacts`) answers
/// "Run not found" even though `search_runs` lists the run; tags/ is what MLflow creates too.
const RUN_DIRS: [&str; 4] = ["metrics", "params", "tags", "artifacts"];
/// MLflow 3.17.2 reads logged models without these, but creates them, and a later version may check
/// them as it does for runs.
const MODEL_DIRS: [&str; 2] = ["metrics", "params"];

/// MLflow's limits: `_EXPERIMENT_ID_REGEX` allows 64 characters, `_RUN_ID_REGEX` 256.
const EXPERIMENT_ID_MAX: usize = 64;
const ITEM_ID_MAX: usize = 256;

/// URI schemes of MLflow's remote artifact repositories: artifacts stored there are reachable from any
/// machine, so their URIs must survive a merge unchanged.
const REMOTE_SCHEMES: [&str; 16] = [
    "s3",
    "r2",
    "b2",
    "gs",
    "wasbs",
    "abfss",
    "ftp",
    "sftp",
    "dbfs",
    "hdfs",
    "viewfs",
    "http",
    "https",
    "mlflow-artifacts",
    "runs",
    "models",
];

#[derive(Debug, Clone, Copy)]
pub struct MergeOptions<'a> {
    /// The mlgit snapshot tag the incoming runs belong to; recorded as run tag `mlgit.tag`.
    pub tag: &'a str,
    /// Where the merged store will live when exported/served, as a URI prefix, e.g. "file:///srv/mlruns"
    /// or a relative marker; artifact_location/artifact_uri are rewritten to `{root}/{exp_id}` and
    /// `{root}/{exp_id}/{run_id}/artifacts`. Use `file://` or a marker without one of the remote
    /// schemes (s3, https, ...): locations under such schemes are kept unless they start with the
    /// root given here.
    pub artifact_root: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The merged store.
    pub files: StoreFiles,
    /// Run ids that were not in `existing`.
    pub runs_added: Vec<String>,
    /// Run ids that were in `existing` and whose files changed (including a move to another experiment).
    pub runs_updated: Vec<String>,
    /// Names of experiments that did not exist in `existing`.
    pub experiments_created: Vec<String>,
    /// Parts of `incoming` that were deliberately not merged, so the caller can tell the user.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Store-relative path of the folder or file that was left out.
    pub path: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    DeletedExperiment,
    DeletedRun,
    DeletedLoggedModel,
    /// Registered models are keyed by name and numbered per machine, so they cannot be merged by id.
    ModelRegistry,
    /// A file where MLflow expects only folders; MLflow never reads it.
    UnknownFile,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::DeletedExperiment => "experiment is deleted",
            SkipReason::DeletedRun => "run is deleted",
            SkipReason::DeletedLoggedModel => "logged model is deleted",
            SkipReason::ModelRegistry => "model registry entries are not merged",
            SkipReason::UnknownFile => "not part of the MLflow store layout",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error("MLflow store path {path:?} is unsafe: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("MLflow store path {path:?} is both a file and a folder")]
    PathConflict { path: String },
    #[error("MLflow store path {path:?}: {kind} id {id:?} is not a valid MLflow id")]
    InvalidId { path: String, kind: &'static str, id: String },
    #[error("{path}: missing; every MLflow {kind} folder needs it")]
    MissingMeta { path: String, kind: &'static str },
    #[error("{path}: invalid YAML: {message}")]
    InvalidYaml { path: String, message: String },
    #[error("{path}: field `{field}` is missing or not {expected}")]
    MissingField { path: String, field: &'static str, expected: &'static str },
    #[error("{path}: field `{field}` is {found:?} but the folder is named {folder:?}")]
    IdMismatch { path: String, field: &'static str, found: String, folder: String },
    #[error("{kind} {id} appears twice in the MLflow store: in {first} and in {second}")]
    DuplicateId { kind: &'static str, id: String, first: String, second: String },
    #[error("artifact root {root:?} is unusable: {reason}")]
    InvalidArtifactRoot { root: String, reason: &'static str },
}

impl From<MlflowError> for crate::Error {
    /// Every MLflow store problem is bad input in a snapshot's (or main's) `mlruns/`: the hint says
    /// how to get a store MLflow itself would accept.
    fn from(err: MlflowError) -> Self {
        let hint = match &err {
            MlflowError::UnsafePath { .. } | MlflowError::PathConflict { .. } => {
                "an MLflow store holds only relative paths inside it; remove the offending entry from \
                 mlruns/ on the snapshot's branch and tag a new snapshot"
            }
            MlflowError::InvalidArtifactRoot { .. } => "pass a folder path or a file:// URI",
            _ => {
                "the store was not written by MLflow or was edited by hand: log the run again with \
                 MLflow (or fix the named file) and tag a new snapshot"
            }
        };
        crate::Error::invalid(err.to_string()).with_hint(hint)
    }
}

/// Merge `incoming` (one snapshot's mlruns) into `existing` (main's merged mlruns).
///
/// Files of `existing` that the merge does not replace are kept byte for byte, so merging the same
/// `incoming` twice yields identical files.
pub fn merge(
    existing: &StoreFiles,
    incoming: &StoreFiles,
    opts: &MergeOptions,
) -> Result<MergeOutcome, MlflowError> {
    check_root(opts.artifact_root)?;
    let old = parse_store(existing)?;
    let new = parse_store(incoming)?;
    let root = opts.artifact_root;
    let targets = assign_ids(&old, &new);

    let old_runs = locate(&old, Keyed::Run);
    let old_models = locate(&old, Keyed::Model);
    let old_traces = locate(&old, Keyed::Trace);

    let mut files = existing.clone();
    let mut runs_added = Vec::new();
    let mut runs_updated = Vec::new();
    let mut experiments_created = Vec::new();
    let mut skipped = new.skipped.clone();
    let mut created = BTreeSet::new();

    for (inc_id, exp) in &new.experiments {
        if exp.deleted {
            skipped.push(Skipped { path: inc_id.clone(), reason: SkipReason::DeletedExperiment });
            continue;
        }
        let Some(target) = targets.get(inc_id.as_str()) else { continue };
        let target = target.as_str();

        if !old.experiments.contains_key(target) && created.insert(target.to_owned()) {
            let mut meta = exp.meta.clone();
            pin_experiment(&mut meta, target, root);
            let path = format!("{target}/{META}");
            let yaml = to_yaml(&meta, &path)?;
            files.insert(path, yaml);
            experiments_created.push(exp.name.clone());
        }

        // Experiment tags are single values: the snapshot being merged is taken as the newer one.
        for (rel, bytes) in &exp.tags {
            files.insert(format!("{target}/{EXP_TAGS}/{rel}"), bytes.to_vec());
        }

        // Dataset ids are digests of name and content, so the same id in two experiments is fine.
        for (id, item) in &exp.datasets {
            let dir = format!("{target}/{DATASETS}/{id}");
            put_item(&mut files, &dir, None, render(item, Vec::new()));
        }

        for (run_id, item) in &exp.runs {
            if item.deleted {
                skipped.push(Skipped { path: format!("{inc_id}/{run_id}"), reason: SkipReason::DeletedRun });
                continue;
            }
            let dir = format!("{target}/{run_id}");
            let moved_from = old_runs.get(run_id.as_str()).filter(|d| **d != dir);
            let mut desired = render_run(item, target, run_id, root)?;
            // The snapshot tag is the merge's to choose, so an incoming value must not leak through.
            desired.remove(RUN_TAG_FILE);
            let tag = kept_tag(&files, &dir, &desired, moved_from.is_some())
                .unwrap_or_else(|| opts.tag.as_bytes().to_vec());
            desired.insert(RUN_TAG_FILE.to_owned(), Cow::Owned(tag));
            match put_item(&mut files, &dir, moved_from.map(String::as_str), desired) {
                Change::Unchanged => {}
                Change::Added => runs_added.push(run_id.clone()),
                Change::Updated => runs_updated.push(run_id.clone()),
            }
        }

        for (model_id, item) in &exp.models {
            if item.deleted {
                skipped.push(Skipped {
                    path: format!("{inc_id}/{LOGGED_MODELS}/{model_id}"),
                    reason: SkipReason::DeletedLoggedModel,
                });
                continue;
            }
            let dir = format!("{target}/{LOGGED_MODELS}/{model_id}");
            let moved_from = old_models.get(model_id.as_str()).filter(|d| **d != dir);
            let desired = render_model(item, target, model_id, root)?;
            put_item(&mut files, &dir, moved_from.map(String::as_str), desired);
        }

        for (trace_id, item) in &exp.traces {
            let dir = format!("{target}/{TRACES}/{trace_id}");
            let moved_from = old_traces.get(trace_id.as_str()).filter(|d| **d != dir);
            let desired = render_trace(item, target, trace_id, root)?;
            put_item(&mut files, &dir, moved_from.map(String::as_str), desired);
        }
    }

    runs_added.sort();
    runs_updated.sort();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(MergeOutcome { files, runs_added, runs_updated, experiments_created, skipped })
}

/// Rewrite every artifact_location / artifact_uri of a store to live under `artifact_root`
/// (used when exporting main's store to a folder to serve it) and return the list of empty folders
/// that must exist for MLflow to read it (metrics/, params/, tags/, artifacts/ of every run, ...).
///
/// Only folders with no file beneath them are listed, sorted; creating them is the caller's job
/// because git trees cannot hold empty folders. Never add placeholder files instead: MLflow reads
/// every file under params/, metrics/ and tags/ as an entry.
pub fn export_layout(
    store: &StoreFiles,
    artifact_root: &str,
) -> Result<(StoreFiles, Vec<String>), MlflowError> {
    check_root(artifact_root)?;
    let parsed = parse_store(store)?;
    let mut files = store.clone();
    let mut dirs = Vec::new();
    let mut need_dir = |dir: String| -> Result<(), MlflowError> {
        if store.contains_key(&dir) {
            return Err(MlflowError::PathConflict { path: dir });
        }
        if !has_files_under(store, &dir) {
            dirs.push(dir);
        }
        Ok(())
    };

    for (exp_id, exp) in &parsed.experiments {
        let mut meta = exp.meta.clone();
        pin_experiment(&mut meta, exp_id, artifact_root);
        let path = format!("{exp_id}/{META}");
        let yaml = to_yaml(&meta, &path)?;
        files.insert(path, yaml);
        for (run_id, item) in &exp.runs {
            let dir = format!("{exp_id}/{run_id}");
            overlay(&mut files, &dir, render_run(item, exp_id, run_id, artifact_root)?);
            for sub in RUN_DIRS {
                need_dir(format!("{dir}/{sub}"))?;
            }
        }
        for (model_id, item) in &exp.models {
            let dir = format!("{exp_id}/{LOGGED_MODELS}/{model_id}");
            overlay(&mut files, &dir, render_model(item, exp_id, model_id, artifact_root)?);
            for sub in MODEL_DIRS {
                need_dir(format!("{dir}/{sub}"))?;
            }
        }
        for (trace_id, item) in &exp.traces {
            let dir = format!("{exp_id}/{TRACES}/{trace_id}");
            overlay(&mut files, &dir, render_trace(item, exp_id, trace_id, artifact_root)?);
        }
    }
    // MLflow creates .trash/ when it opens a store, which fails on a read-only export.
    need_dir(TRASH.to_owned())?;

    dirs.sort();
    Ok((files, dirs))
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Relative path inside a folder → file content.
type Files<'a> = BTreeMap<&'a str, &'a [u8]>;

struct Store<'a> {
    experiments: BTreeMap<String, Experiment<'a>>,
    /// Ids in `.trash/`: MLflow still resolves them, so a new experiment must not reuse them.
    trashed_ids: BTreeSet<String>,
    skipped: Vec<Skipped>,
}

struct Experiment<'a> {
    name: String,
    deleted: bool,
    meta: Mapping,
    tags: Files<'a>,
    runs: BTreeMap<String, Item<'a>>,
    models: BTreeMap<String, Item<'a>>,
    traces: BTreeMap<String, Item<'a>>,
    datasets: BTreeMap<String, Item<'a>>,
}

/// A run, logged model, trace or dataset folder.
struct Item<'a> {
    files: Files<'a>,
    /// Parsed `meta.yaml` (`trace_info.yaml` for traces).
    meta: Mapping,
    deleted: bool,
}

fn parse_store(files: &StoreFiles) -> Result<Store<'_>, MlflowError> {
    for path in files.keys() {
        check_path(path)?;
        if has_files_under(files, path) {
            return Err(MlflowError::PathConflict { path: path.clone() });
        }
    }

    let mut by_experiment: BTreeMap<&str, Files> = BTreeMap::new();
    let mut trashed_ids = BTreeSet::new();
    let mut skipped = Vec::new();
    let mut registry_entries = BTreeSet::new();
    for (path, bytes) in files {
        let Some((top, rest)) = path.split_once('/') else {
            skipped.push(Skipped { path: path.clone(), reason: SkipReason::UnknownFile });
            continue;
        };
        match top {
            TRASH => {
                if let Some((id, _)) = rest.split_once('/') {
                    trashed_ids.insert(id.to_owned());
                }
            }
            REGISTRY => {
                let name = rest.split('/').next().unwrap_or(rest);
                if registry_entries.insert(name) {
                    skipped.push(Skipped {
                        path: format!("{REGISTRY}/{name}"),
                        reason: SkipReason::ModelRegistry,
                    });
                }
            }
            _ => {
                check_id(top, EXPERIMENT_ID_MAX, "experiment", path)?;
                by_experiment.entry(top).or_default().insert(rest, bytes.as_slice());
            }
        }
    }

    let mut experiments = BTreeMap::new();
    for (id, exp_files) in by_experiment {
        experiments.insert(id.to_owned(), parse_experiment(id, exp_files, &mut skipped)?);
    }
    for kind in [Keyed::Run, Keyed::Model, Keyed::Trace] {
        check_unique(&experiments, kind)?;
    }
    Ok(Store { experiments, trashed_ids, skipped })
}

fn parse_experiment<'a>(
    id: &str,
    files: Files<'a>,
    skipped: &mut Vec<Skipped>,
) -> Result<Experiment<'a>, MlflowError> {
    let meta_path = format!("{id}/{META}");
    let meta = read_meta(&files, META, &meta_path, "experiment")?;
    let name = match meta.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(MlflowError::MissingField { path: meta_path, field: "name", expected: "a string" }),
    };
    expect_id(&meta, "experiment_id", id, &meta_path)?;

    let mut tags = Files::new();
    let mut runs: BTreeMap<&str, Files> = BTreeMap::new();
    let mut reserved: BTreeMap<(&str, &str), Files> = BTreeMap::new();
    for (rel, bytes) in files {
        if rel == META {
            continue;
        }
        let Some((sub, rest)) = rel.split_once('/') else {
            skipped.push(Skipped { path: format!("{id}/{rel}"), reason: SkipReason::UnknownFile });
            continue;
        };
        match sub {
            EXP_TAGS => {
                tags.insert(rest, bytes);
            }
            DATASETS | LOGGED_MODELS | TRACES => match rest.split_once('/') {
                Some((item_id, item_rel)) => {
                    let kind = match sub {
                        DATASETS => "dataset",
                        LOGGED_MODELS => "logged model",
                        _ => "trace",
                    };
                    check_id(item_id, ITEM_ID_MAX, kind, &format!("{id}/{rel}"))?;
                    reserved.entry((sub, item_id)).or_default().insert(item_rel, bytes);
                }
                None => {
                    skipped.push(Skipped { path: format!("{id}/{rel}"), reason: SkipReason::UnknownFile })
                }
            },
            run_id => {
                check_id(run_id, ITEM_ID_MAX, "run", &format!("{id}/{rel}"))?;
                runs.entry(run_id).or_default().insert(rest, bytes);
            }
        }
    }

    let mut exp = Experiment {
        name,
        deleted: is_deleted(&meta),
        meta,
        tags,
        runs: BTreeMap::new(),
        models: BTreeMap::new(),
        traces: BTreeMap::new(),
        datasets: BTreeMap::new(),
    };
    for (run_id, files) in runs {
        let dir = format!("{id}/{run_id}");
        let item = parse_item(files, META, &dir, "run", Some("run_id"), run_id)?;
        exp.runs.insert(run_id.to_owned(), item);
    }
    for ((sub, item_id), files) in reserved {
        let dir = format!("{id}/{sub}/{item_id}");
        match sub {
            LOGGED_MODELS => {
                let item = parse_item(files, META, &dir, "logged model", Some("model_id"), item_id)?;
                exp.models.insert(item_id.to_owned(), item);
            }
            TRACES => {
                let item = parse_item(files, TRACE_INFO, &dir, "trace", Some("trace_id"), item_id)?;
                exp.traces.insert(item_id.to_owned(), item);
            }
            _ => {
                let item = parse_item(files, META, &dir, "dataset", None, item_id)?;
                exp.datasets.insert(item_id.to_owned(), item);
            }
        }
    }
    Ok(exp)
}

fn parse_item<'a>(
    files: Files<'a>,
    meta_name: &str,
    dir: &str,
    kind: &'static str,
    id_field: Option<&'static str>,
    id: &str,
) -> Result<Item<'a>, MlflowError> {
    let meta_path = format!("{dir}/{meta_name}");
    let meta = read_meta(&files, meta_name, &meta_path, kind)?;
    if let Some(field) = id_field {
        expect_id(&meta, field, id, &meta_path)?;
    }
    // Runs and logged models must name their experiment; the merge rewrites it, but a file without
    // it is not something MLflow wrote.
    if matches!(kind, "run" | "logged model") && id_value(meta.get("experiment_id")).is_none() {
        return Err(MlflowError::MissingField { path: meta_path, field: "experiment_id", expected: "an id" });
    }
    Ok(Item { files, deleted: is_deleted(&meta), meta })
}

fn read_meta(files: &Files, name: &str, path: &str, kind: &'static str) -> Result<Mapping, MlflowError> {
    let bytes = files.get(name).ok_or_else(|| MlflowError::MissingMeta { path: path.to_owned(), kind })?;
    match serde_yaml::from_slice::<Value>(bytes) {
        Ok(Value::Mapping(meta)) => Ok(meta),
        Ok(_) => Err(MlflowError::InvalidYaml { path: path.to_owned(), message: "not a mapping".to_owned() }),
        Err(e) => Err(MlflowError::InvalidYaml { path: path.to_owned(), message: e.to_string() }),
    }
}

/// Old MLflow versions wrote ids as integers, so both forms are accepted.
fn id_value(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn expect_id(meta: &Mapping, field: &'static str, folder: &str, path: &str) -> Result<(), MlflowError> {
    match id_value(meta.get(field)) {
        None => Err(MlflowError::MissingField { path: path.to_owned(), field, expected: "an id" }),
        Some(found) if found != folder => {
            Err(MlflowError::IdMismatch { path: path.to_owned(), field, found, folder: folder.to_owned() })
        }
        Some(_) => Ok(()),
    }
}

fn is_deleted(meta: &Mapping) -> bool {
    matches!(meta.get("lifecycle_stage"), Some(Value::String(s)) if s == "deleted")
}

/// Items whose ids are unique across the whole store (uuids), unlike content-addressed datasets.
#[derive(Clone, Copy)]
enum Keyed {
    Run,
    Model,
    Trace,
}

impl Keyed {
    fn name(self) -> &'static str {
        match self {
            Keyed::Run => "run",
            Keyed::Model => "logged model",
            Keyed::Trace => "trace",
        }
    }

    fn dir(self, exp_id: &str, id: &str) -> String {
        match self {
            Keyed::Run => format!("{exp_id}/{id}"),
            Keyed::Model => format!("{exp_id}/{LOGGED_MODELS}/{id}"),
            Keyed::Trace => format!("{exp_id}/{TRACES}/{id}"),
        }
    }

    fn items<'e, 'a>(self, exp: &'e Experiment<'a>) -> &'e BTreeMap<String, Item<'a>> {
        match self {
            Keyed::Run => &exp.runs,
            Keyed::Model => &exp.models,
            Keyed::Trace => &exp.traces,
        }
    }
}

fn check_unique(experiments: &BTreeMap<String, Experiment>, kind: Keyed) -> Result<(), MlflowError> {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for (exp_id, exp) in experiments {
        for id in kind.items(exp).keys() {
            let here = kind.dir(exp_id, id);
            if let Some(first) = seen.insert(id, here.clone()) {
                return Err(MlflowError::DuplicateId {
                    kind: kind.name(),
                    id: id.clone(),
                    first,
                    second: here,
                });
            }
        }
    }
    Ok(())
}

/// Id → folder of every item of one kind; `check_unique` made the ids unique.
fn locate<'s>(store: &'s Store, kind: Keyed) -> BTreeMap<&'s str, String> {
    let mut found = BTreeMap::new();
    for (exp_id, exp) in &store.experiments {
        for id in kind.items(exp).keys() {
            found.insert(id.as_str(), kind.dir(exp_id, id));
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Safety

fn check_path(path: &str) -> Result<(), MlflowError> {
    let unsafe_path = |reason| Err(MlflowError::UnsafePath { path: path.to_owned(), reason });
    if path.starts_with('/') {
        return unsafe_path("absolute path");
    }
    if path.contains('\\') {
        return unsafe_path("contains a backslash");
    }
    if path.contains('\0') {
        return unsafe_path("contains a NUL byte");
    }
    for component in path.split('/') {
        match component {
            "" => return unsafe_path("empty path component"),
            "." | ".." => return unsafe_path("`.` or `..` component"),
            // Git refuses `.git` in trees, so such a path could never be committed.
            c if c.eq_ignore_ascii_case(".git") => return unsafe_path("`.git` component"),
            _ => {}
        }
    }
    Ok(())
}

/// MLflow's id pattern `^[a-zA-Z0-9][\w\-]{0,max-1}$`, restricted to ASCII; ids become folder
/// names, so this also keeps drive letters and other odd first components out.
fn check_id(id: &str, max: usize, kind: &'static str, path: &str) -> Result<(), MlflowError> {
    let bytes = id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(MlflowError::InvalidId { path: path.to_owned(), kind, id: id.to_owned() })
    }
}

fn check_root(root: &str) -> Result<(), MlflowError> {
    let reason = if root.is_empty() {
        "empty"
    } else if root.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(MlflowError::InvalidArtifactRoot { root: root.to_owned(), reason })
}

fn has_files_under(files: &StoreFiles, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    files.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
}

// ---------------------------------------------------------------------------------------------
// Experiment ids

/// Incoming experiment id → id of the folder its runs go to.
fn assign_ids<'a>(old: &Store, new: &'a Store) -> BTreeMap<&'a str, String> {
    let mut by_name: BTreeMap<&str, String> = BTreeMap::new();
    for (id, exp) in &old.experiments {
        if !exp.deleted {
            by_name.entry(exp.name.as_str()).or_insert_with(|| id.clone());
        }
    }
    let mut taken: BTreeSet<String> = old.experiments.keys().chain(&old.trashed_ids).cloned().collect();

    let mut targets = BTreeMap::new();
    let mut fresh = Vec::new();
    for (id, exp) in &new.experiments {
        if exp.deleted {
            continue;
        }
        match by_name.get(exp.name.as_str()) {
            Some(target) => {
                targets.insert(id.as_str(), target.clone());
            }
            None => fresh.push((id.as_str(), exp.name.as_str())),
        }
    }

    // New names keep their id when it is free; this pass runs first so that a derived id can never
    // take an id another incoming experiment could have kept.
    let mut new_names: BTreeMap<&str, String> = BTreeMap::new();
    for &(id, name) in &fresh {
        if !new_names.contains_key(name) && !taken.contains(id) {
            taken.insert(id.to_owned());
            new_names.insert(name, id.to_owned());
        }
    }
    for (id, name) in fresh {
        let target = new_names
            .entry(name)
            .or_insert_with(|| {
                let derived = derived_id(name, &taken);
                taken.insert(derived.clone());
                derived
            })
            .clone();
        targets.insert(id, target);
    }
    targets
}

/// An 18-digit id like the ones MLflow generates, derived from the name so that every machine merging
/// the same snapshots picks the same id.
fn derived_id(name: &str, taken: &BTreeSet<String>) -> String {
    const FIRST_18_DIGITS: u64 = 100_000_000_000_000_000;
    let mut salt: u64 = 0;
    loop {
        // FNV-1a: std's hashers are not guaranteed stable across Rust releases.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes().chain([0xff]).chain(salt.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let id = (FIRST_18_DIGITS + hash % (9 * FIRST_18_DIGITS)).to_string();
        if !taken.contains(&id) {
            return id;
        }
        salt += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Rewriting

/// An item's files after rewriting, relative to its folder: untouched files borrow the input.
type Rendered<'a> = BTreeMap<String, Cow<'a, [u8]>>;

fn render<'a>(item: &Item<'a>, replace: Vec<(&str, Vec<u8>)>) -> Rendered<'a> {
    let mut out: Rendered =
        item.files.iter().map(|(rel, bytes)| ((*rel).to_owned(), Cow::Borrowed(*bytes))).collect();
    for (rel, bytes) in replace {
        out.insert(rel.to_owned(), Cow::Owned(bytes));
    }
    out
}

fn render_run<'a>(
    item: &Item<'a>,
    exp_id: &str,
    run_id: &str,
    root: &str,
) -> Result<Rendered<'a>, MlflowError> {
    let mut meta = item.meta.clone();
    // MLflow ignores a run whose experiment_id is not its folder ("Wrong experiment ID").
    meta.insert("experiment_id".into(), Value::String(exp_id.to_owned()));
    set_uri(&mut meta, "artifact_uri", &format!("{exp_id}/{run_id}/artifacts"), root);
    let yaml = to_yaml(&meta, &format!("{exp_id}/{run_id}/{META}"))?;
    Ok(render(item, vec![(META, yaml)]))
}

fn render_model<'a>(
    item: &Item<'a>,
    exp_id: &str,
    model_id: &str,
    root: &str,
) -> Result<Rendered<'a>, MlflowError> {
    let mut meta = item.meta.clone();
    meta.insert("experiment_id".into(), Value::String(exp_id.to_owned()));
    set_uri(&mut meta, "artifact_location", &format!("{exp_id}/{LOGGED_MODELS}/{model_id}/artifacts"), root);
    let yaml = to_yaml(&meta, &format!("{exp_id}/{LOGGED_MODELS}/{model_id}/{META}"))?;
    Ok(render(item, vec![(META, yaml)]))
}

fn render_trace<'a>(
    item: &Item<'a>,
    exp_id: &str,
    trace_id: &str,
    root: &str,
) -> Result<Rendered<'a>, MlflowError> {
    let mut meta = item.meta.clone();
    if let Some(Value::Mapping(location)) = meta.get_mut("trace_location") {
        if let Some(Value::Mapping(experiment)) = location.get_mut("mlflow_experiment") {
            if experiment.contains_key("experiment_id") {
                experiment.insert("experiment_id".into(), Value::String(exp_id.to_owned()));
            }
        }
    }
    let mut replace =
        vec![(TRACE_INFO, to_yaml(&meta, &format!("{exp_id}/{TRACES}/{trace_id}/{TRACE_INFO}"))?)];
    // Span data is found through this tag; a trace without it never had local span files.
    if let Some(old) = item.files.get(TRACE_ARTIFACT_TAG) {
        let old = String::from_utf8_lossy(old);
        if !is_remote(&old, root) {
            let new = join_uri(root, &format!("{exp_id}/{TRACES}/{trace_id}/artifacts"));
            replace.push((TRACE_ARTIFACT_TAG, new.into_bytes()));
        }
    }
    Ok(render(item, replace))
}

fn pin_experiment(meta: &mut Mapping, exp_id: &str, root: &str) {
    // MLflow writes ids as strings; integers are a legacy form it only converts when reading.
    meta.insert("experiment_id".into(), Value::String(exp_id.to_owned()));
    set_uri(meta, "artifact_location", exp_id, root);
}

fn set_uri(meta: &mut Mapping, key: &str, rel: &str, root: &str) {
    let keep = matches!(meta.get(key), Some(Value::String(old)) if is_remote(old, root));
    if !keep {
        meta.insert(key.into(), Value::String(join_uri(root, rel)));
    }
}

/// Whether a location points to a remote artifact repository rather than into the store, where it
/// is only valid on the machine that logged it.
fn is_remote(uri: &str, root: &str) -> bool {
    if uri.starts_with(root) {
        return false;
    }
    let Some((scheme, _)) = uri.split_once(':') else { return false };
    REMOTE_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme))
}

fn join_uri(root: &str, rel: &str) -> String {
    if root.ends_with('/') {
        format!("{root}{rel}")
    } else {
        format!("{root}/{rel}")
    }
}

/// Writes a meta file for MLflow, which reads it with PyYAML. serde_yaml emits YAML 1.2, whose plain
/// scalars PyYAML (YAML 1.1) reads differently: `2026-11-23T04:54:23.753Z` (a trace's request_time)
/// becomes a datetime that MLflow rejects, `yes`/`on`/`NO` booleans, `1:20` a base-60 number, and `=`
/// makes the loader fail. So strings are left plain only when no YAML version can mistake them.
fn to_yaml(meta: &Mapping, path: &str) -> Result<Vec<u8>, MlflowError> {
    let mut out = String::new();
    if meta.is_empty() {
        out.push_str("{}\n");
    } else {
        emit_mapping(&mut out, meta, 0, path)?;
    }
    Ok(out.into_bytes())
}

fn emit_mapping(out: &mut String, map: &Mapping, indent: usize, path: &str) -> Result<(), MlflowError> {
    for (key, value) in map {
        out.extend(std::iter::repeat(' ').take(indent));
        match scalar(key) {
            Some(key) => out.push_str(&key),
            None => return Err(unwritable(path, "a mapping key is not a scalar")),
        }
        out.push(':');
        emit_node(out, value, indent, path)?;
    }
    Ok(())
}

/// Writes what follows `key:` or `-`, in block style like PyYAML.
fn emit_node(out: &mut String, value: &Value, indent: usize, path: &str) -> Result<(), MlflowError> {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            emit_mapping(out, map, indent + 2, path)
        }
        Value::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                out.extend(std::iter::repeat(' ').take(indent + 2));
                out.push('-');
                emit_node(out, item, indent + 2, path)?;
            }
            Ok(())
        }
        _ => match scalar(value) {
            Some(text) => {
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
                Ok(())
            }
            // PyYAML's safe loader, which MLflow uses, rejects application tags anyway.
            None => Err(unwritable(path, "tagged YAML values are not supported")),
        },
    }
}

fn unwritable(path: &str, message: &str) -> MlflowError {
    MlflowError::InvalidYaml { path: path.to_owned(), message: format!("cannot be written back: {message}") }
}

fn scalar(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => float(n.as_f64()?),
        Value::String(s) => string(s),
        Value::Mapping(m) if m.is_empty() => "{}".to_owned(),
        Value::Sequence(s) if s.is_empty() => "[]".to_owned(),
        _ => return None,
    })
}

/// YAML 1.1 floats need a `.` in the mantissa and a sign in the exponent (`1e100` is a string there).
fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let text = format!("{f:?}");
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m.to_owned(), Some(e)),
        None => (text.clone(), None),
    };
    let mantissa = if mantissa.contains('.') { mantissa } else { format!("{mantissa}.0") };
    match exponent {
        Some(e) if e.starts_with('-') => format!("{mantissa}e{e}"),
        Some(e) => format!("{mantissa}e+{e}"),
        None => mantissa,
    }
}

fn string(s: &str) -> String {
    let plain = s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        return s.to_owned();
    }
    if s.chars().all(printable) {
        // Single quotes, as MLflow writes ids: `experiment_id: '123'`.
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Characters YAML allows unescaped inside a single-quoted scalar on one line: PyYAML's printable set
/// minus tab and the characters YAML 1.1 treats as line breaks (U+2028, U+2029), which it would fold.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

// ---------------------------------------------------------------------------------------------
// Writing

enum Change {
    Unchanged,
    Added,
    Updated,
}

fn files_under<'f>(files: &'f StoreFiles, dir: &str) -> BTreeMap<&'f str, &'f [u8]> {
    let prefix = format!("{dir}/");
    files
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (&k[prefix.len()..], v.as_slice()))
        .collect()
}

/// The snapshot tag to keep: a run that reappears unchanged in a later snapshot (stores accumulate
/// runs) still belongs to the snapshot that first brought it.
fn kept_tag(files: &StoreFiles, dir: &str, desired: &Rendered, moved: bool) -> Option<Vec<u8>> {
    if moved {
        return None;
    }
    let current = files_under(files, dir);
    let tag = current.get(RUN_TAG_FILE)?;
    let others = current.iter().filter(|(rel, _)| **rel != RUN_TAG_FILE).map(|(r, b)| (*r, *b));
    others.eq(desired.iter().map(|(r, b)| (r.as_str(), &**b))).then(|| tag.to_vec())
}

fn put_item(files: &mut StoreFiles, dir: &str, moved_from: Option<&str>, desired: Rendered) -> Change {
    let current = files_under(files, dir);
    if moved_from.is_none()
        && current.iter().map(|(r, b)| (*r, *b)).eq(desired.iter().map(|(r, b)| (r.as_str(), &**b)))
    {
        return Change::Unchanged;
    }
    let change = if current.is_empty() && moved_from.is_none() { Change::Added } else { Change::Updated };
    remove_dir(files, dir);
    if let Some(from) = moved_from {
        remove_dir(files, from);
    }
    overlay(files, dir, desired);
    change
}

fn remove_dir(files: &mut StoreFiles, dir: &str) {
    let stale: Vec<String> = files_under(files, dir).into_keys().map(|rel| format!("{dir}/{rel}")).collect();
    for path in stale {
        files.remove(&path);
    }
}

fn overlay(files: &mut StoreFiles, dir: &str, rendered: Rendered) {
    for (rel, bytes) in rendered {
        files.insert(format!("{dir}/{rel}"), bytes.into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "file:///srv/mlruns";

    fn opts(tag: &str) -> MergeOptions<'_> {
        MergeOptions { tag, artifact_root: ROOT }
    }

    /// Experiment meta.yaml as MLflow 3.17.2 writes it.
    fn exp_meta(id: &str, name: &str) -> Vec<u8> {
        format!(
            "artifact_location: file:///home/ann/proj/mlruns/{id}\ncreation_time: 1795409563735\n\
             effective_trace_archival_retention: null\nexperiment_id: '{id}'\n\
             last_update_time: 1795409563735\nlifecycle_stage: active\nname: {name}\n\
             trace_location: null\nworkspace: default\n"
        )
        .into_bytes()
    }

    /// Run meta.yaml as MLflow 3.17.2 writes it.
    fn run_meta(exp: &str, run: &str, stage: &str) -> Vec<u8> {
        format!(
            "artifact_uri: file:///home/ann/proj/mlruns/{exp}/{run}/artifacts\nend_time: 1795409565937\n\
             entry_point_name: ''\nexperiment_id: '{exp}'\nlifecycle_stage: {stage}\nrun_id: {run}\n\
             run_name: carefree-wolf-163\nsource_name: ''\nsource_type: 4\nsource_version: ''\n\
             start_time: 1795409565914\nstatus: 3\ntags: []\nuser_id: root\n"
        )
        .into_bytes()
    }

    fn add_run(files: &mut StoreFiles, exp: &str, run: &str) {
        files.insert(format!("{exp}/{run}/meta.yaml"), run_meta(exp, run, "active"));
        files.insert(format!("{exp}/{run}/params/lr"), b"0.1".to_vec());
        files.insert(
            format!("{exp}/{run}/metrics/loss"),
            b"1795409565920 0.5 0\n1795409565921 0.25 1\n".to_vec(),
        );
        files.insert(format!("{exp}/{run}/tags/mlflow.runName"), b"carefree-wolf-163".to_vec());
        files.insert(format!("{exp}/{run}/artifacts/model.txt"), b"weights".to_vec());
    }

    /// One machine's store: the Default experiment plus `name` under `exp` with the given runs.
    fn machine(exp: &str, name: &str, runs: &[&str]) -> StoreFiles {
        let mut files = StoreFiles::new();
        files.insert("0/meta.yaml".into(), exp_meta("0", "Default"));
        files.insert(format!("{exp}/meta.yaml"), exp_meta(exp, name));
        for run in runs {
            add_run(&mut files, exp, run);
        }
        files
    }

    fn meta(files: &StoreFiles, path: &str) -> Mapping {
        match serde_yaml::from_slice(&files[path]) {
            Ok(Value::Mapping(m)) => m,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn field(files: &StoreFiles, path: &str, key: &str) -> Value {
        meta(files, path).get(key).cloned().unwrap_or(Value::Null)
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    fn experiment_folders(files: &StoreFiles) -> BTreeSet<String> {
        files.keys().filter_map(|k| k.split_once('/')).map(|(top, _)| top.to_owned()).collect()
    }

    #[test]
    fn merge_into_empty_keeps_ids_and_rewrites_locations() {
        let incoming = machine("417365123102412027", "churn", &["r1"]);
        let out = merge(&StoreFiles::new(), &incoming, &opts("snap-1")).unwrap();
        let f = &out.files;

        assert_eq!(out.runs_added, ["r1"]);
        assert!(out.runs_updated.is_empty());
        assert_eq!(out.experiments_created, ["Default", "churn"]);
        assert_eq!(experiment_folders(f), BTreeSet::from(["0".into(), "417365123102412027".into()]));

        let exp = "417365123102412027/meta.yaml";
        assert_eq!(field(f, exp, "artifact_location"), s("file:///srv/mlruns/417365123102412027"));
        assert_eq!(field(f, exp, "workspace"), s("default"), "untouched fields survive");
        let text = String::from_utf8(f[exp].clone()).unwrap();
        assert!(text.contains("experiment_id: '417365123102412027'"), "id stays a quoted string:\n{text}");
        assert_eq!(field(f, "0/meta.yaml", "artifact_location"), s("file:///srv/mlruns/0"));
        assert!(String::from_utf8_lossy(&f["0/meta.yaml"]).contains("experiment_id: '0'"));

        let run = "417365123102412027/r1/meta.yaml";
        assert_eq!(field(f, run, "artifact_uri"), s("file:///srv/mlruns/417365123102412027/r1/artifacts"));
        assert_eq!(field(f, run, "experiment_id"), s("417365123102412027"));
        assert_eq!(field(f, run, "tags"), Value::Sequence(vec![]));
        assert_eq!(field(f, run, "entry_point_name"), s(""));
        assert_eq!(field(f, run, "status"), Value::Number(3.into()));
        let run_text = String::from_utf8(f[run].clone()).unwrap();
        assert!(run_text.contains("experiment_id: '417365123102412027'"), "{run_text}");
        assert!(run_text.contains("entry_point_name: ''"), "{run_text}");

        assert_eq!(f["417365123102412027/r1/tags/mlgit.tag"], b"snap-1");
        for rel in ["params/lr", "metrics/loss", "tags/mlflow.runName", "artifacts/model.txt"] {
            let path = format!("417365123102412027/r1/{rel}");
            assert_eq!(f[&path], incoming[&path], "{path} copied byte for byte");
        }
    }

    #[test]
    fn same_name_on_another_machine_goes_into_the_existing_folder() {
        let a = merge(&StoreFiles::new(), &machine("111", "churn", &["ra"]), &opts("a")).unwrap();
        let b = merge(&a.files, &machine("222", "churn", &["rb"]), &opts("b")).unwrap();
        let f = &b.files;

        assert!(b.experiments_created.is_empty(), "Default and churn both matched by name");
        assert_eq!(b.runs_added, ["rb"]);
        assert_eq!(experiment_folders(f), BTreeSet::from(["0".into(), "111".into()]));
        assert_eq!(field(f, "111/rb/meta.yaml", "experiment_id"), s("111"));
        assert_eq!(field(f, "111/rb/meta.yaml", "artifact_uri"), s("file:///srv/mlruns/111/rb/artifacts"));
        assert_eq!(f["111/rb/tags/mlgit.tag"], b"b");
        assert_eq!(f["111/ra/tags/mlgit.tag"], b"a");
        assert_eq!(f["111/meta.yaml"], a.files["111/meta.yaml"], "existing experiment meta untouched");
    }

    #[test]
    fn default_experiment_is_matched_by_name() {
        let mut existing = StoreFiles::new();
        existing.insert("7/meta.yaml".into(), exp_meta("7", "Default"));
        let mut incoming = machine("5", "x", &[]);
        add_run(&mut incoming, "0", "r0");
        let out = merge(&existing, &incoming, &opts("t")).unwrap();
        assert_eq!(field(&out.files, "7/r0/meta.yaml", "experiment_id"), s("7"));
        assert!(!out.files.contains_key("0/meta.yaml"));
        assert_eq!(out.experiments_created, ["x"]);
    }

    #[test]
    fn id_taken_by_another_name_gets_a_derived_id() {
        let existing =
            merge(&StoreFiles::new(), &machine("555", "alpha", &["ra"]), &opts("a")).unwrap().files;
        let incoming = machine("555", "beta", &["rb"]);
        let out = merge(&existing, &incoming, &opts("b")).unwrap();
        let again = merge(&existing, &incoming, &opts("b")).unwrap();
        assert_eq!(out.files, again.files, "derived id is deterministic");

        let ids = experiment_folders(&out.files);
        let new_id = ids.iter().find(|id| !["0", "555"].contains(&id.as_str())).unwrap().clone();
        assert_eq!(new_id.len(), 18);
        assert!(new_id.bytes().all(|b| b.is_ascii_digit()) && !new_id.starts_with('0'));
        assert_eq!(out.experiments_created, ["beta"]);
        assert_eq!(field(&out.files, &format!("{new_id}/meta.yaml"), "experiment_id"), s(&new_id));
        assert_eq!(field(&out.files, &format!("{new_id}/meta.yaml"), "name"), s("beta"));
        assert_eq!(field(&out.files, &format!("{new_id}/rb/meta.yaml"), "experiment_id"), s(&new_id));
        assert_eq!(
            field(&out.files, &format!("{new_id}/meta.yaml"), "artifact_location"),
            s(&format!("{ROOT}/{new_id}"))
        );
        assert_eq!(field(&out.files, "555/meta.yaml", "name"), s("alpha"));
        assert!(out.files.contains_key("555/ra/meta.yaml") && !out.files.contains_key("555/rb/meta.yaml"));
    }

    #[test]
    fn snapshot_tag_file_matches_the_tag_name() {
        assert_eq!(RUN_TAG_FILE, format!("tags/{MLGIT_TAG}"));
    }

    #[test]
    fn derived_ids_avoid_taken_ones() {
        let first = derived_id("beta", &BTreeSet::new());
        let second = derived_id("beta", &BTreeSet::from([first.clone()]));
        assert_ne!(first, second);
        assert_eq!(second.len(), 18);
    }

    #[test]
    fn trashed_ids_count_as_taken() {
        let mut existing = StoreFiles::new();
        existing.insert(".trash/555/meta.yaml".into(), exp_meta("555", "gone"));
        let out = merge(&existing, &machine("555", "beta", &[]), &opts("b")).unwrap();
        assert!(!out.files.contains_key("555/meta.yaml"));
        assert_eq!(out.files[".trash/555/meta.yaml"], existing[".trash/555/meta.yaml"]);
    }

    #[test]
    fn incoming_experiments_sharing_a_name_share_a_folder() {
        let mut incoming = machine("1", "dup", &["r1"]);
        incoming.extend(machine("2", "dup", &["r2"]));
        let out = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap();
        assert_eq!(out.experiments_created, ["Default", "dup"]);
        assert_eq!(field(&out.files, "1/r2/meta.yaml", "experiment_id"), s("1"));
        assert!(!out.files.keys().any(|k| k.starts_with("2/")));
    }

    #[test]
    fn merging_twice_is_idempotent() {
        let a = machine("111", "churn", &["ra1", "ra2"]);
        let b = machine("222", "churn", &["rb"]);
        let once = merge(&StoreFiles::new(), &a, &opts("a")).unwrap();
        let once = merge(&once.files, &b, &opts("b")).unwrap();
        let twice = merge(&once.files, &b, &opts("b")).unwrap();
        assert_eq!(twice.files, once.files);
        assert!(twice.runs_added.is_empty() && twice.runs_updated.is_empty());
        assert!(twice.experiments_created.is_empty());
        let thrice = merge(&twice.files, &a, &opts("a")).unwrap();
        assert_eq!(thrice.files, once.files);
    }

    #[test]
    fn unchanged_run_in_a_later_snapshot_keeps_its_first_tag() {
        let v1 = machine("111", "churn", &["old"]);
        let mut v2 = v1.clone();
        add_run(&mut v2, "111", "new");
        let first = merge(&StoreFiles::new(), &v1, &opts("v1")).unwrap();
        let second = merge(&first.files, &v2, &opts("v2")).unwrap();
        assert_eq!(second.runs_added, ["new"]);
        assert!(second.runs_updated.is_empty());
        assert_eq!(second.files["111/old/tags/mlgit.tag"], b"v1");
        assert_eq!(second.files["111/new/tags/mlgit.tag"], b"v2");
    }

    #[test]
    fn changed_run_is_replaced_and_retagged() {
        let v1 = machine("111", "churn", &["r"]);
        let mut v2 = v1.clone();
        v2.insert("111/r/metrics/loss".into(), b"1 0.5 0\n2 0.25 1\n3 0.125 2\n".to_vec());
        v2.remove("111/r/artifacts/model.txt");
        let first = merge(&StoreFiles::new(), &v1, &opts("v1")).unwrap();
        let second = merge(&first.files, &v2, &opts("v2")).unwrap();
        assert_eq!(second.runs_updated, ["r"]);
        assert!(second.runs_added.is_empty());
        assert_eq!(second.files["111/r/metrics/loss"], v2["111/r/metrics/loss"]);
        assert!(
            !second.files.contains_key("111/r/artifacts/model.txt"),
            "files gone from the run are dropped"
        );
        assert_eq!(second.files["111/r/tags/mlgit.tag"], b"v2");
    }

    #[test]
    fn existing_run_without_snapshot_tag_gets_one() {
        let mut existing = machine("111", "churn", &["r"]);
        let merged = merge(&StoreFiles::new(), &existing, &opts("t")).unwrap().files;
        existing = merged.clone();
        existing.remove("111/r/tags/mlgit.tag");
        let out = merge(&existing, &machine("111", "churn", &["r"]), &opts("t")).unwrap();
        assert_eq!(out.runs_updated, ["r"]);
        assert_eq!(out.files, merged);
    }

    #[test]
    fn incoming_snapshot_tag_is_overwritten_unless_equal() {
        let mut incoming = machine("111", "churn", &["r"]);
        incoming.insert("111/r/tags/mlgit.tag".into(), b"stale".to_vec());
        let out = merge(&StoreFiles::new(), &incoming, &opts("fresh")).unwrap();
        assert_eq!(out.files["111/r/tags/mlgit.tag"], b"fresh");

        incoming.insert("111/r/tags/mlgit.tag".into(), b"fresh".to_vec());
        let same = merge(&StoreFiles::new(), &incoming, &opts("fresh")).unwrap();
        assert_eq!(same.files, out.files);
    }

    #[test]
    fn run_moves_when_its_experiment_maps_elsewhere() {
        // The machine renamed experiment 1 from "old" to "new" between snapshots.
        let v1 = machine("1", "old", &["r"]);
        let v2 = machine("1", "new", &["r"]);
        let first = merge(&StoreFiles::new(), &v1, &opts("v1")).unwrap();
        let second = merge(&first.files, &v2, &opts("v2")).unwrap();
        assert_eq!(second.runs_updated, ["r"]);
        assert_eq!(second.experiments_created, ["new"]);
        let owners: Vec<&String> = second.files.keys().filter(|k| k.ends_with("/r/meta.yaml")).collect();
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert!(!owners[0].starts_with("1/"));
        assert!(second.files.contains_key("1/meta.yaml"), "the old experiment itself stays");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let bad = [
            "../escape",
            "/etc/passwd",
            "1/../../x",
            "1//meta.yaml",
            "1/./meta.yaml",
            "1/r/artifacts/..",
            "1/",
            "1\\r\\meta.yaml",
            "1/r/artifacts/a\0b",
            "1/r/artifacts/.git/config",
            "",
        ];
        for path in bad {
            let mut incoming = machine("1", "x", &["r"]);
            incoming.insert(path.to_owned(), b"x".to_vec());
            let err = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap_err();
            assert!(matches!(&err, MlflowError::UnsafePath { path: p, .. } if p == path), "{path:?}: {err}");

            let err = merge(&incoming, &StoreFiles::new(), &opts("t")).unwrap_err();
            assert!(matches!(&err, MlflowError::UnsafePath { .. }), "existing {path:?}: {err}");
            let err = export_layout(&incoming, ROOT).unwrap_err();
            assert!(matches!(&err, MlflowError::UnsafePath { .. }), "export {path:?}: {err}");
        }
    }

    #[test]
    fn invalid_ids_are_refused() {
        for path in
            ["C:/meta.yaml", "a b/meta.yaml", "-1/meta.yaml", "1/r~1/meta.yaml", "1/models/m:1/meta.yaml"]
        {
            let mut incoming = machine("1", "x", &[]);
            incoming.insert(path.to_owned(), b"x".to_vec());
            let err = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap_err();
            assert!(matches!(&err, MlflowError::InvalidId { path: p, .. } if p == path), "{path}: {err}");
        }
    }

    #[test]
    fn file_and_folder_at_the_same_path_is_refused() {
        let mut incoming = machine("1", "x", &["r"]);
        incoming.insert("1/r".into(), b"x".to_vec());
        let err = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap_err();
        assert!(matches!(&err, MlflowError::PathConflict { path } if path == "1/r"), "{err}");
    }

    fn merge_err(incoming: &StoreFiles) -> MlflowError {
        merge(&StoreFiles::new(), incoming, &opts("t")).unwrap_err()
    }

    #[test]
    fn malformed_meta_is_refused_with_its_path() {
        let cases: [(&str, &[u8], &str); 8] = [
            ("1/meta.yaml", b"name: [unclosed", "invalid YAML"),
            ("1/meta.yaml", b"- a list\n", "not a mapping"),
            ("1/meta.yaml", b"experiment_id: '1'\n", "`name`"),
            ("1/meta.yaml", b"name: x\n", "`experiment_id`"),
            ("1/meta.yaml", b"name: x\nexperiment_id: '2'\n", "folder is named"),
            ("1/r/meta.yaml", b"experiment_id: '1'\n", "`run_id`"),
            ("1/r/meta.yaml", b"run_id: r\n", "`experiment_id`"),
            ("1/r/meta.yaml", b"run_id: s\nexperiment_id: '1'\n", "folder is named"),
        ];
        for (path, content, expected) in cases {
            let mut incoming = machine("1", "x", &["r"]);
            incoming.insert(path.to_owned(), content.to_vec());
            let message = merge_err(&incoming).to_string();
            assert!(message.contains(path) && message.contains(expected), "{path}: {message}");
        }

        let mut no_run_meta = machine("1", "x", &["r"]);
        no_run_meta.remove("1/r/meta.yaml");
        let err = merge_err(&no_run_meta);
        assert!(matches!(&err, MlflowError::MissingMeta { path, .. } if path == "1/r/meta.yaml"), "{err}");

        let mut no_exp_meta = machine("1", "x", &["r"]);
        no_exp_meta.remove("1/meta.yaml");
        let err = merge_err(&no_exp_meta);
        assert!(matches!(&err, MlflowError::MissingMeta { path, .. } if path == "1/meta.yaml"), "{err}");

        let mut not_utf8 = machine("1", "x", &[]);
        not_utf8.insert("1/meta.yaml".into(), vec![0xff, 0xfe, b':']);
        assert!(matches!(merge_err(&not_utf8), MlflowError::InvalidYaml { .. }));
    }

    #[test]
    fn malformed_existing_store_is_refused() {
        let mut existing = machine("1", "x", &[]);
        existing.insert("1/meta.yaml".into(), b"experiment_id: '1'\n".to_vec());
        let err = merge(&existing, &machine("2", "y", &[]), &opts("t")).unwrap_err();
        assert!(err.to_string().contains("1/meta.yaml"), "{err}");
    }

    #[test]
    fn duplicate_run_ids_are_refused() {
        let mut incoming = machine("1", "x", &["r"]);
        incoming.extend(machine("2", "y", &["r"]));
        let err = merge_err(&incoming);
        assert!(matches!(&err, MlflowError::DuplicateId { id, .. } if id == "r"), "{err}");
    }

    #[test]
    fn legacy_integer_ids_are_accepted_and_written_as_strings() {
        let mut incoming = machine("1", "x", &["r"]);
        incoming
            .insert("1/meta.yaml".into(), b"experiment_id: 1\nname: x\nartifact_location: /a/1\n".to_vec());
        incoming.insert(
            "1/r/meta.yaml".into(),
            b"experiment_id: 1\nrun_id: r\nartifact_uri: /a/1/r/artifacts\n".to_vec(),
        );
        let out = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap();
        assert_eq!(field(&out.files, "1/meta.yaml", "experiment_id"), s("1"));
        assert_eq!(field(&out.files, "1/r/meta.yaml", "experiment_id"), s("1"));
    }

    #[test]
    fn trash_registry_deleted_and_stray_items_are_left_out() {
        let mut incoming = machine("1", "x", &["live", "dead"]);
        incoming.insert("1/dead/meta.yaml".into(), run_meta("1", "dead", "deleted"));
        incoming.insert(".trash/9/meta.yaml".into(), exp_meta("9", "gone"));
        incoming.insert(".trash/9/r/meta.yaml".into(), run_meta("9", "r", "active"));
        incoming.insert("models/reg/meta.yaml".into(), b"name: reg\n".to_vec());
        incoming.insert("models/reg/version-1/meta.yaml".into(), b"version: 1\n".to_vec());
        let deleted_exp = String::from_utf8(exp_meta("8", "deleted-exp")).unwrap();
        let deleted_exp = deleted_exp.replace("lifecycle_stage: active", "lifecycle_stage: deleted");
        incoming.insert("8/meta.yaml".into(), deleted_exp.into_bytes());
        incoming.insert("README".into(), b"x".to_vec());
        incoming.insert("1/.DS_Store".into(), b"x".to_vec());

        let out = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap();
        assert_eq!(out.runs_added, ["live"]);
        assert!(out
            .files
            .keys()
            .all(|k| k.starts_with("0/") || k.starts_with("1/live/") || k == "1/meta.yaml"));
        let skipped: Vec<(&str, SkipReason)> =
            out.skipped.iter().map(|s| (s.path.as_str(), s.reason)).collect();
        assert_eq!(
            skipped,
            [
                ("1/.DS_Store", SkipReason::UnknownFile),
                ("1/dead", SkipReason::DeletedRun),
                ("8", SkipReason::DeletedExperiment),
                ("README", SkipReason::UnknownFile),
                ("models/reg", SkipReason::ModelRegistry),
            ]
        );
    }

    #[test]
    fn remote_artifact_locations_are_kept() {
        let mut incoming = machine("1", "x", &["r"]);
        let text = String::from_utf8(run_meta("1", "r", "active")).unwrap();
        let remote = text.replace("file:///home/ann/proj/mlruns/1/r/artifacts", "s3://bucket/1/r/artifacts");
        incoming.insert("1/r/meta.yaml".into(), remote.into_bytes());
        let out = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap();
        assert_eq!(field(&out.files, "1/r/meta.yaml", "artifact_uri"), s("s3://bucket/1/r/artifacts"));
        let (exported, _) = export_layout(&out.files, "file:///tmp/x").unwrap();
        assert_eq!(field(&exported, "1/r/meta.yaml", "artifact_uri"), s("s3://bucket/1/r/artifacts"));
        assert_eq!(field(&exported, "1/meta.yaml", "artifact_location"), s("file:///tmp/x/1"));
    }

    #[test]
    fn artifact_root_forms() {
        assert_eq!(join_uri("file:///srv/mlruns/", "1"), "file:///srv/mlruns/1");
        assert_eq!(join_uri("mlruns", "1/r/artifacts"), "mlruns/1/r/artifacts");
        let incoming = machine("1", "x", &["r"]);
        for root in ["", "file:///a\nb"] {
            let err = merge(&StoreFiles::new(), &incoming, &MergeOptions { tag: "t", artifact_root: root });
            assert!(matches!(err, Err(MlflowError::InvalidArtifactRoot { .. })), "{root:?}");
            assert!(matches!(export_layout(&incoming, root), Err(MlflowError::InvalidArtifactRoot { .. })));
        }
        // A root under a remote scheme still rewrites locations it wrote itself.
        let https = MergeOptions { tag: "t", artifact_root: "https://h/mlruns" };
        let first = merge(&StoreFiles::new(), &incoming, &https).unwrap();
        let (exported, _) = export_layout(&first.files, "https://h/mlruns").unwrap();
        assert_eq!(exported, first.files);
    }

    /// A 3.x store with a dataset input, a logged model and a trace, laid out as MLflow 3.17.2 does.
    fn rich_machine(exp: &str) -> StoreFiles {
        let mut f = machine(exp, "rich", &["r"]);
        let mut put = |path: String, text: String| {
            f.insert(path, text.into_bytes());
        };
        put(format!("{exp}/tags/team"), "a/b".into());
        put(
            format!("{exp}/datasets/8fcc/meta.yaml"),
            "digest: 065ae68a\nname: d\nsource_type: code\n".into(),
        );
        put(
            format!("{exp}/r/inputs/bcc7/meta.yaml"),
            "destination_id: 8fcc\ndestination_type: RUN\nsource_id: 8fcc\nsource_type: DATASET\ntags: {}\n"
                .into(),
        );
        put(
            format!("{exp}/models/m-1/meta.yaml"),
            format!(
                "artifact_location: file:///home/ann/mlruns/{exp}/models/m-1/artifacts\n\
                 creation_timestamp: 1\nexperiment_id: '{exp}'\nmodel_id: m-1\nname: model\n\
                 source_run_id: r\nstatus: 2\n"
            ),
        );
        put(format!("{exp}/models/m-1/artifacts/MLmodel"), "flavors: {}\n".into());
        put(
            format!("{exp}/models/m-2/meta.yaml"),
            format!("experiment_id: '{exp}'\nmodel_id: m-2\nlifecycle_stage: deleted\n"),
        );
        put(
            format!("{exp}/traces/tr-1/trace_info.yaml"),
            format!(
                "state: OK\ntrace_id: tr-1\ntrace_location:\n  mlflow_experiment:\n    \
                 experiment_id: '{exp}'\n  type: MLFLOW_EXPERIMENT\n"
            ),
        );
        put(
            format!("{exp}/traces/tr-1/tags/mlflow.artifactLocation"),
            format!("file:///home/ann/mlruns/{exp}/traces/tr-1/artifacts"),
        );
        put(format!("{exp}/traces/tr-1/artifacts/traces.json"), "{}".into());
        f
    }

    #[test]
    fn logged_models_traces_and_datasets_follow_their_experiment() {
        let existing = merge(&StoreFiles::new(), &machine("100", "rich", &[]), &opts("a")).unwrap().files;
        let out = merge(&existing, &rich_machine("200"), &opts("b")).unwrap();
        let f = &out.files;
        assert!(!f.keys().any(|k| k.starts_with("200/")));
        assert_eq!(f["100/tags/team"], b"a/b");
        assert_eq!(f["100/datasets/8fcc/meta.yaml"], rich_machine("200")["200/datasets/8fcc/meta.yaml"]);
        assert!(f.contains_key("100/r/inputs/bcc7/meta.yaml"));

        let model = "100/models/m-1/meta.yaml";
        assert_eq!(field(f, model, "experiment_id"), s("100"));
        assert_eq!(field(f, model, "artifact_location"), s(&format!("{ROOT}/100/models/m-1/artifacts")));
        assert_eq!(field(f, model, "source_run_id"), s("r"));
        assert!(f.contains_key("100/models/m-1/artifacts/MLmodel"));
        assert!(!f.keys().any(|k| k.contains("m-2")));
        assert!(out
            .skipped
            .iter()
            .any(|s| s.path == "200/models/m-2" && s.reason == SkipReason::DeletedLoggedModel));

        let info = meta(f, "100/traces/tr-1/trace_info.yaml");
        let location = &info["trace_location"]["mlflow_experiment"]["experiment_id"];
        assert_eq!(location, &s("100"));
        assert_eq!(
            f["100/traces/tr-1/tags/mlflow.artifactLocation"],
            format!("{ROOT}/100/traces/tr-1/artifacts").into_bytes()
        );

        let again = merge(&out.files, &rich_machine("200"), &opts("b")).unwrap();
        assert_eq!(again.files, out.files);
    }

    #[test]
    fn export_rewrites_every_location_and_lists_empty_folders() {
        let mut incoming = rich_machine("200");
        add_run(&mut incoming, "200", "bare");
        incoming.remove("200/bare/params/lr");
        incoming.remove("200/bare/metrics/loss");
        incoming.remove("200/bare/artifacts/model.txt");
        let merged = merge(&StoreFiles::new(), &incoming, &opts("t")).unwrap().files;
        let (files, dirs) = export_layout(&merged, "file:///export/mlruns").unwrap();

        assert_eq!(
            dirs,
            [
                ".trash",
                "200/bare/artifacts",
                "200/bare/metrics",
                "200/bare/params",
                "200/models/m-1/metrics",
                "200/models/m-1/params",
            ]
        );
        assert_eq!(field(&files, "0/meta.yaml", "artifact_location"), s("file:///export/mlruns/0"));
        assert_eq!(field(&files, "200/meta.yaml", "artifact_location"), s("file:///export/mlruns/200"));
        assert_eq!(
            field(&files, "200/r/meta.yaml", "artifact_uri"),
            s("file:///export/mlruns/200/r/artifacts")
        );
        assert_eq!(
            field(&files, "200/models/m-1/meta.yaml", "artifact_location"),
            s("file:///export/mlruns/200/models/m-1/artifacts")
        );
        assert_eq!(
            files["200/traces/tr-1/tags/mlflow.artifactLocation"],
            b"file:///export/mlruns/200/traces/tr-1/artifacts"
        );
        assert_eq!(files["200/r/tags/mlgit.tag"], b"t", "export keeps the snapshot tag");
        assert_eq!(files.len(), merged.len(), "export only rewrites files");

        let (again, dirs_again) = export_layout(&files, "file:///export/mlruns").unwrap();
        assert_eq!((again, dirs_again), (files, dirs));
    }

    #[test]
    fn export_refuses_a_file_where_mlflow_needs_a_folder() {
        let mut store = machine("1", "x", &["r"]);
        store.remove("1/r/params/lr");
        store.insert("1/r/params".into(), b"x".to_vec());
        let err = export_layout(&store, ROOT).unwrap_err();
        assert!(matches!(&err, MlflowError::PathConflict { path } if path == "1/r/params"), "{err}");
    }

    #[test]
    fn yaml_scalars_are_unambiguous_for_yaml_1_1() {
        for (value, written) in [
            ("carefree-wolf-163", "carefree-wolf-163"),
            ("417365123102412027", "'417365123102412027'"),
            ("2026-11-23T04:54:23.753Z", "'2026-11-23T04:54:23.753Z'"),
            ("2024-05-01", "'2024-05-01'"),
            ("yes", "'yes'"),
            ("On", "'On'"),
            ("y", "'y'"),
            ("1:20", "'1:20'"),
            ("1_000", "'1_000'"),
            ("=", "'='"),
            ("", "''"),
            ("file:///srv/mlruns/1", "'file:///srv/mlruns/1'"),
            ("it's", "'it''s'"),
            (" padded ", "' padded '"),
            ("a\nb\t\"c\"\\", "\"a\\nb\\t\\\"c\\\"\\\\\""),
            ("\u{2028}\u{85}\u{1}", "\"\\u2028\\u0085\\u0001\""),
        ] {
            assert_eq!(string(value), written, "{value:?}");
        }
        assert_eq!(float(1e100), "1.0e+100");
        assert_eq!(float(-1.5e-7), "-1.5e-7");
        assert_eq!(float(3.0), "3.0");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(f64::NAN), ".nan");
        assert_eq!(float(f64::NEG_INFINITY), "-.inf");
    }

    #[test]
    fn yaml_written_back_parses_to_the_same_values() {
        let text = "name: 'yes'\nexperiment_id: '0'\nstatus: 3\nend_time: null\ntags: []\nempty: {}\n\
                    f: 1.0e+100\nnested:\n  list:\n  - 1\n  - k: 'on'\n    l: []\n  - - inner\n  map:\n    \
                    x: \"a\\nb\"\n'y': true\n";
        let original: Mapping = serde_yaml::from_str(text).unwrap();
        let written = to_yaml(&original, "p").unwrap();
        let reread: Mapping = serde_yaml::from_slice(&written).unwrap();
        assert_eq!(reread, original, "{}", String::from_utf8_lossy(&written));
        assert_eq!(to_yaml(&Mapping::new(), "p").unwrap(), b"{}\n");
    }

    #[test]
    fn tagged_yaml_values_are_refused() {
        let mut incoming = machine("1", "x", &[]);
        incoming.insert("1/meta.yaml".into(), b"experiment_id: '1'\nname: x\nodd: !custom 3\n".to_vec());
        let err = merge_err(&incoming);
        assert!(matches!(&err, MlflowError::InvalidYaml { path, .. } if path == "1/meta.yaml"), "{err}");
    }
}
