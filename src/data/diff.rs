//! `mlgit diff A B`: what changed between two commits of any branch — files added, removed and
//! modified (LFS files compared by the oid in their pointers, so a rewritten pointer with the same
//! content is no change), counted with byte deltas per top folder and per extension, per split for
//! split commits, and with `--metrics` the params and metrics of two snapshots side by side.
//! Tree-to-tree: subtrees with the same id on both sides are skipped without being read.

use std::collections::BTreeMap;

use git2::{Delta, DiffOptions as GitDiffOptions, Oid, Repository};
use serde::Serialize;

use super::split::{SPLITS, SPLIT_FILE};
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree::read_pointer;
use crate::repo::tree::entry_at;
use crate::repo::Repo;
use crate::snapshot::record::Evaluation;
use crate::snapshot::RUN_RECORD;
use crate::store::Pointer;
use crate::tracking::entry_of;
use crate::tracking::leaderboard::{comparable, effective_params, flatten_params, same_value};

#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    pub a: String,
    pub b: String,
    /// Only paths under this folder (or this file).
    pub path: Option<String>,
    /// Compare the tracking records (`tracking/run.json`) of two snapshots, and only them unless
    /// `files` is set.
    pub metrics: bool,
    /// With `metrics`: compare the files too.
    pub files: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub rev: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `removed` or `modified`.
    pub status: &'static str,
    pub lfs: bool,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    /// Bytes after minus bytes before (LFS files at their real size).
    pub bytes_delta: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SplitCount {
    pub a: u64,
    pub b: u64,
    pub delta: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValueRow {
    pub key: String,
    pub a: Option<serde_json::Value>,
    pub b: Option<serde_json::Value>,
    /// b − a when both are numbers.
    pub delta: Option<f64>,
    /// The values differ (or one side lacks the key).
    pub changed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsDiff {
    pub a_tag: Option<String>,
    pub b_tag: Option<String>,
    /// Params (nested ones dotted), the changed ones first, each group by name.
    pub params: Vec<ValueRow>,
    /// Metrics by name.
    pub metrics: Vec<ValueRow>,
    /// What each side's metrics were measured on (None: not recorded).
    pub a_evaluation: Option<Evaluation>,
    pub b_evaluation: Option<Evaluation>,
    /// Both sides were measured on the same data (by `evaluation`, else by split commit), so their
    /// metrics compare.
    pub comparable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffOutcome {
    pub a: Side,
    pub b: Side,
    pub path: Option<String>,
    /// The file changes (absent with `--metrics` alone).
    #[serde(flatten)]
    pub changes: Option<Changes>,
    pub metrics: Option<MetricsDiff>,
}

/// What changed in the files.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    pub total: Counts,
    /// Per top folder: the first path component, or `data/<first>` under `data/`.
    pub by_folder: BTreeMap<String, Counts>,
    /// Per lower-cased extension (`(none)` for files without one).
    pub by_extension: BTreeMap<String, Counts>,
    /// Files per split on each side, when either side is a split commit (has `split.yaml`).
    pub splits: Option<BTreeMap<String, SplitCount>>,
    /// Files whose pointer blob changed but whose content (LFS oid) did not: not counted as modified.
    pub pointer_only: u64,
    pub files: Vec<FileChange>,
    /// Tables profiled on either side (profile.json of clean and split commits) whose profile
    /// differs: rows and per-column changes.
    pub tables: Vec<TableDiff>,
}

/// How a table's profile changed from A to B.
#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    /// The table's path in the trees.
    pub path: String,
    /// Rows on each side (None: the table is not on that side).
    pub rows_a: Option<u64>,
    pub rows_b: Option<u64>,
    /// Net rows added (negative: removed).
    pub rows_delta: i64,
    /// Changed columns (see `table::profile::diff`).
    pub columns: Vec<crate::table::profile::ColumnDiff>,
}

/// Run `mlgit diff`.
pub fn diff(repo: &Repo, opts: &DiffOptions) -> Result<DiffOutcome> {
    let git = repo.git();
    let ca = repo.resolve(&opts.a)?;
    let cb = repo.resolve(&opts.b)?;
    let ta = ca.tree().context(format!("read the tree of {}", opts.a))?;
    let tb = cb.tree().context(format!("read the tree of {}", opts.b))?;
    let path = opts.path.as_ref().map(|p| p.trim_matches('/').to_string()).filter(|p| !p.is_empty());
    if let Some(p) = &path {
        if entry_at(git, ta.id(), p)?.is_none() && entry_at(git, tb.id(), p)?.is_none() {
            return Err(Error::not_found(format!("--path {p}: neither {} nor {} has it", opts.a, opts.b))
                .with_hint(format!("list the paths with `git ls-tree --name-only {} -- <folder>`", opts.b)));
        }
    }
    let metrics =
        if opts.metrics { Some(metrics_diff(git, (&opts.a, ta.id()), (&opts.b, tb.id()))?) } else { None };
    let changes =
        if opts.metrics && !opts.files { None } else { Some(changes(git, &ta, &tb, path.as_deref())?) };
    Ok(DiffOutcome {
        a: Side { rev: opts.a.clone(), commit: ca.id().to_string() },
        b: Side { rev: opts.b.clone(), commit: cb.id().to_string() },
        path,
        changes,
        metrics,
    })
}

/// The file changes between two trees (under `path` only, when given).
fn changes(
    git: &Repository,
    ta: &git2::Tree<'_>,
    tb: &git2::Tree<'_>,
    path: Option<&str>,
) -> Result<Changes> {
    let mut gopts = GitDiffOptions::new();
    gopts.include_typechange(false);
    if let Some(p) = path {
        gopts.pathspec(p).disable_pathspec_match(false);
    }
    let d = git.diff_tree_to_tree(Some(ta), Some(tb), Some(&mut gopts)).context("compare the trees")?;
    let odb = git.odb().context("open the object database")?;

    let mut files = Vec::new();
    let mut pointer_only = 0;
    for delta in d.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let Some(p) = new.path().or(old.path()) else { continue };
        let p = p.to_string_lossy().into_owned();
        // A pathspec "data/a" also matches "data/ab"; keep exact folder semantics.
        if let Some(prefix) = path {
            if !(p == prefix || p.starts_with(&format!("{prefix}/"))) {
                continue;
            }
        }
        let info = |oid: Oid| -> Result<(Option<Pointer>, u64)> {
            let ptr = read_pointer(git, &odb, oid)?;
            let size = match ptr {
                Some(p) => p.size,
                None => odb.read_header(oid).map(|(n, _)| n as u64).context(format!("read object {oid}"))?,
            };
            Ok((ptr, size))
        };
        let change = match delta.status() {
            Delta::Added => {
                let (ptr, size) = info(new.id())?;
                FileChange {
                    path: p,
                    status: "added",
                    lfs: ptr.is_some(),
                    old_size: None,
                    new_size: Some(size),
                }
            }
            Delta::Deleted => {
                let (ptr, size) = info(old.id())?;
                FileChange {
                    path: p,
                    status: "removed",
                    lfs: ptr.is_some(),
                    old_size: Some(size),
                    new_size: None,
                }
            }
            Delta::Modified | Delta::Typechange => {
                let (pa, sa) = info(old.id())?;
                let (pb, sb) = info(new.id())?;
                if let (Some(x), Some(y)) = (pa, pb) {
                    if x.oid == y.oid && old.mode() == new.mode() {
                        pointer_only += 1;
                        continue;
                    }
                }
                FileChange {
                    path: p,
                    status: "modified",
                    lfs: pa.is_some() || pb.is_some(),
                    old_size: Some(sa),
                    new_size: Some(sb),
                }
            }
            _ => continue,
        };
        files.push(change);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let mut total = Counts::default();
    let mut by_folder: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_extension: BTreeMap<String, Counts> = BTreeMap::new();
    for f in &files {
        for c in [
            &mut total,
            by_folder.entry(top_folder(&f.path)).or_default(),
            by_extension.entry(extension(&f.path)).or_default(),
        ] {
            add(c, f);
        }
    }

    let is_split =
        entry_at(git, ta.id(), SPLIT_FILE)?.is_some() || entry_at(git, tb.id(), SPLIT_FILE)?.is_some();
    let splits = if is_split {
        let (a, b) = (split_counts(git, ta.id())?, split_counts(git, tb.id())?);
        Some(
            SPLITS
                .iter()
                .map(|s| {
                    let (x, y) = (a[*s], b[*s]);
                    (s.to_string(), SplitCount { a: x, b: y, delta: y as i64 - x as i64 })
                })
                .collect(),
        )
    } else {
        None
    };
    let tables = table_diffs(git, ta.id(), tb.id(), path)?;
    Ok(Changes { total, by_folder, by_extension, splits, pointer_only, files, tables })
}

/// The tables whose profile differs between the two trees (under `path` only, when given).
fn table_diffs(git: &git2::Repository, a: Oid, b: Oid, path: Option<&str>) -> Result<Vec<TableDiff>> {
    use crate::data::profiles::read_profiles;
    let (pa, pb) = (read_profiles(git, a)?.unwrap_or_default(), read_profiles(git, b)?.unwrap_or_default());
    let keys: std::collections::BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        if let Some(p) = path {
            if !(k == p || k.starts_with(&format!("{p}/"))) {
                continue;
            }
        }
        let (x, y) = (pa.get(k), pb.get(k));
        if x == y {
            continue;
        }
        let columns = match (x, y) {
            (Some(x), Some(y)) => crate::table::profile::diff(x, y).columns,
            _ => Vec::new(),
        };
        let rows = |p: Option<&crate::table::profile::TableProfile>| p.map(|p| p.rows);
        out.push(TableDiff {
            path: k.clone(),
            rows_a: rows(x),
            rows_b: rows(y),
            rows_delta: rows(y).unwrap_or(0) as i64 - rows(x).unwrap_or(0) as i64,
            columns,
        });
    }
    Ok(out)
}

fn add(c: &mut Counts, f: &FileChange) {
    match f.status {
        "added" => c.added += 1,
        "removed" => c.removed += 1,
        _ => c.modified += 1,
    }
    c.bytes_delta += f.new_size.unwrap_or(0) as i64 - f.old_size.unwrap_or(0) as i64;
}

/// The folder a path is counted under: `data/<first>` under `data/` (so raw sources and splits show
/// apart), else the first component (`(root)` for top-level files).
pub fn top_folder(path: &str) -> String {
    let mut parts = path.split('/');
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    match (first, rest.len()) {
        (_, 0) => "(root)".into(),
        ("data", n) if n >= 2 => format!("data/{}", rest[0]),
        _ => first.to_string(),
    }
}

/// The lower-cased extension with its dot, or `(none)`.
pub fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => format!(".{}", ext.to_ascii_lowercase()),
        _ => "(none)".into(),
    }
}

/// Files per split of a split tree (zero everywhere for other trees).
fn split_counts(git: &Repository, tree: Oid) -> Result<BTreeMap<&'static str, u64>> {
    let mut out: BTreeMap<&'static str, u64> = SPLITS.iter().map(|s| (*s, 0)).collect();
    for s in SPLITS {
        let Some(e) = entry_at(git, tree, &format!("data/{s}"))? else { continue };
        if e.mode != git2::FileMode::Tree {
            continue;
        }
        let n = crate::repo::tree::list_files(git, e.oid)?.len() as u64;
        out.insert(s, n);
    }
    Ok(out)
}

fn run_record(git: &Repository, rev: &str, tree: Oid) -> Result<Option<serde_json::Value>> {
    let Some(e) = entry_at(git, tree, RUN_RECORD)? else { return Ok(None) };
    let blob = git.find_blob(e.oid).context(format!("read {rev}:{RUN_RECORD}"))?;
    let v: serde_json::Value = serde_json::from_slice(blob.content())
        .map_err(|err| Error::invalid(format!("{rev}:{RUN_RECORD} is not valid JSON")).with_source(err))?;
    Ok(Some(v))
}

fn metrics_diff(git: &Repository, a: (&str, Oid), b: (&str, Oid)) -> Result<MetricsDiff> {
    let ra = run_record(git, a.0, a.1)?;
    let rb = run_record(git, b.0, b.1)?;
    // One side without a record would show every value as added or removed, and "different
    // data": nothing to compare, so say which side is not a snapshot.
    let missing: Vec<&str> =
        [(a.0, &ra), (b.0, &rb)].iter().filter(|(_, r)| r.is_none()).map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        return Err(Error::not_found(format!(
            "--metrics: {} {} no tracking record ({RUN_RECORD}): not a snapshot",
            missing.join(" and "),
            if missing.len() == 1 { "has" } else { "have" }
        ))
        .with_hint("compare snapshot tags (made by `mlgit train-tag`); list them with `mlgit status`"));
    }
    let tag = |r: &Option<serde_json::Value>| r.as_ref().and_then(|v| v["tag"].as_str()).map(str::to_string);
    let entry =
        |r: &Option<serde_json::Value>| r.as_ref().map(|v| entry_of(&tag(r).unwrap_or_default(), v, None));
    let (ea, eb) = (entry(&ra), entry(&rb));
    let (ta, tb) = (tag(&ra), tag(&rb));
    let effective =
        |e: &Option<crate::tracking::RunEntry>| e.as_ref().map(effective_params).unwrap_or_default();
    let mut params = rows(effective(&ea), effective(&eb));
    // A param that is just each run's own tag (train.sh's `tag`, a run name) differs by
    // construction and says nothing; `mlgit runs` leaves it out too.
    let own_tag = |v: &Option<serde_json::Value>, t: &Option<String>| {
        v.as_ref().and_then(|v| v.as_str()).is_some_and(|s| Some(s) == t.as_deref())
    };
    params.retain(|r| !(own_tag(&r.a, &ta) && own_tag(&r.b, &tb)));
    // Changed params first: they are what tells the two runs apart.
    params.sort_by_key(|r| !r.changed);
    Ok(MetricsDiff {
        a_tag: tag(&ra),
        b_tag: tag(&rb),
        params,
        metrics: rows(values(&ra, "metrics"), values(&rb, "metrics")),
        comparable: match (&ea, &eb) {
            (Some(x), Some(y)) => comparable(x, y),
            _ => false,
        },
        a_evaluation: ea.and_then(|e| e.evaluation),
        b_evaluation: eb.and_then(|e| e.evaluation),
    })
}

/// A record's `field` object, flattened.
fn values(r: &Option<serde_json::Value>, field: &str) -> BTreeMap<String, serde_json::Value> {
    r.as_ref().and_then(|v| v.get(field)).map(flatten_params).unwrap_or_default()
}

/// Params or metrics side by side; numbers equal by value (10 and 10.0) are unchanged.
fn rows(oa: BTreeMap<String, serde_json::Value>, ob: BTreeMap<String, serde_json::Value>) -> Vec<ValueRow> {
    let mut keys: Vec<&String> = oa.keys().chain(ob.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let (x, y) = (oa.get(k).cloned(), ob.get(k).cloned());
            let delta = match (x.as_ref().and_then(|v| v.as_f64()), y.as_ref().and_then(|v| v.as_f64())) {
                // Far apart huge values overflow: no delta rather than an infinite one.
                (Some(x), Some(y)) => Some(y - x).filter(|d| d.is_finite()),
                _ => None,
            };
            let changed = match (&x, &y) {
                (Some(x), Some(y)) => !same_value(x, y),
                (x, y) => x.is_some() != y.is_some(),
            };
            ValueRow { key: k.clone(), changed, a: x, b: y, delta }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_extensions() {
        assert_eq!(top_folder("data/train/a/b.png"), "data/train");
        assert_eq!(top_folder("data/x.csv"), "data");
        assert_eq!(top_folder("README.md"), "(root)");
        assert_eq!(top_folder("model/m.pkl"), "model");
        assert_eq!(extension("a/B.PNG"), ".png");
        assert_eq!(extension("a/.hidden"), "(none)");
        assert_eq!(extension("Makefile"), "(none)");
    }

    #[test]
    fn metric_rows_pair_keys_and_compute_deltas() {
        let a = Some(serde_json::json!({"metrics": {"acc": 0.5, "loss": 1}, "params": {"lr": "x"}}));
        let b = Some(serde_json::json!({"metrics": {"acc": 0.75, "f1": 0.2}}));
        let r = rows(values(&a, "metrics"), values(&b, "metrics"));
        let keys: Vec<&str> = r.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["acc", "f1", "loss"]);
        assert_eq!(r[0].delta, Some(0.25));
        assert_eq!(r[1].delta, None);
        assert_eq!(rows(values(&a, "params"), values(&b, "params"))[0].b, None);
    }
}
