//! The reference of a serving tag: tag → snapshot commit → its tracking record's split commit →
//! the training table (`data/train/<table>`) of that split. Read exactly when its content is here;
//! else taken, approximately, from the split's `profile.json` (and the report says so).

use std::collections::BTreeMap;

use git2::Oid;
use serde::Serialize;

use super::cells;
use super::decide::FeatureData;
use super::sample::{CategoryAcc, Categories, Distribution, NumericAcc};
use super::settings::MonitorSettings;
use super::stored;
use crate::data::flow::DATA_DIR;
use crate::data::profiles::read_profiles;
use crate::data::split::SPLIT_FILE;
use crate::error::{Context, Error, Result};
use crate::repo::tree::{entry_at, list_files};
use crate::repo::Repo;
use crate::snapshot::record::RunRecord;
use crate::table::profile::{ColumnProfile, TableProfile};
use crate::table::Format;

/// Numeric columns with at most this many distinct values in the reference are compared as
/// categories (a 0/1 flag is a rate, not a distribution).
pub const CATEGORICAL_MAX_DISTINCT: u64 = 5;

/// A snapshot as monitoring needs it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tag: String,
    pub commit: Oid,
    pub split: Oid,
    pub record: RunRecord,
}

/// The snapshot a tag names. Only snapshot tags serve: `refs/tags/<tag>` on a commit with a
/// tracking record that names its split commit.
pub fn snapshot_of(repo: &Repo, tag: &str) -> Result<Snapshot> {
    let git = repo.git();
    let unknown = || {
        Error::not_found(format!("unknown tag '{tag}': it is not a snapshot of this repository"))
            .with_hint("a serving tag must be a snapshot made by `mlgit train-tag`; list them with `mlgit status` (or fetch them: `mlgit pull`)")
    };
    let commit = git
        .find_reference(&format!("refs/tags/{tag}"))
        .ok()
        .and_then(|r| r.peel_to_commit().ok())
        .ok_or_else(unknown)?;
    let record = RunRecord::read(git, &commit)?.ok_or_else(unknown)?;
    let split = record.data.split.as_deref().and_then(|s| Oid::from_str(s).ok()).ok_or_else(|| {
        Error::not_found(format!("snapshot '{tag}' records no split commit, so there is no training data to compare with"))
            .with_hint("train on a stable branch made by `mlgit stable update`, which records the split it holds")
    })?;
    git.find_commit(split).map_err(|_| {
        Error::not_found(format!("the split commit {split} of snapshot '{tag}' is not in this repository"))
            .with_hint("fetch the split branch: `mlgit pull`")
    })?;
    Ok(Snapshot { tag: tag.to_string(), commit: commit.id(), split, record })
}

/// How a reference column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Numeric,
    Categorical,
}

/// A column of the training table.
#[derive(Debug, Clone)]
pub struct RefColumn {
    pub name: String,
    pub kind: Kind,
    /// The profile's type (`int`, `float`, `bool`, `string`, …).
    pub profile_type: String,
}

/// The training table of a snapshot's split: which file, and its columns from the profile.
#[derive(Debug, Clone)]
pub struct RefTable {
    pub snapshot: Snapshot,
    /// `data/train/<p>`.
    pub path: String,
    pub profile: TableProfile,
    /// Every comparable column, in the table's order (timestamps and nested values are not).
    pub columns: Vec<RefColumn>,
    /// The split's label column (split.yaml), if it recorded one.
    pub split_label: Option<String>,
}

/// The training table of `snapshot`: `monitor.reference_table` under `data/train/`, or the
/// split's only table.
pub fn ref_table(repo: &Repo, snapshot: Snapshot, settings: &MonitorSettings) -> Result<RefTable> {
    let git = repo.git();
    let tree = git.find_commit(snapshot.split).context("read the split commit")?.tree_id();
    let train = format!("{DATA_DIR}/train");
    let ext = repo.config().tables.extensions();
    let tables: Vec<String> = match entry_at(git, tree, &train)?.filter(|e| e.mode == git2::FileMode::Tree) {
        Some(dir) => list_files(git, dir.oid)?
            .into_iter()
            .map(|f| f.path)
            .filter(|p| Format::of(p, &ext).is_some())
            .collect(),
        None => Vec::new(),
    };
    let tag = &snapshot.tag;
    let rel = if settings.reference_table.is_empty() {
        match tables.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::not_found(format!(
                    "the split of snapshot '{tag}' ({}) has no table under {train}/",
                    short(snapshot.split)
                ))
                .with_hint("drift compares records with a training table; split tables with `mlgit split`"))
            }
            many => {
                return Err(Error::invalid(format!(
                    "the split of snapshot '{tag}' has {} training tables ({}); which one do the requests match?",
                    many.len(),
                    many.join(", ")
                ))
                .with_hint("set `reference_table` in monitor.yaml on the monitoring branch to one of them"))
            }
        }
    } else {
        let want = settings.reference_table.trim_start_matches('/').to_string();
        if !tables.contains(&want) {
            return Err(Error::not_found(format!(
                "monitor.yaml's reference_table '{want}' is not a table of the split of snapshot '{tag}' (it has: {})",
                if tables.is_empty() { "none".into() } else { tables.join(", ") }
            ))
            .with_hint("fix `reference_table` in monitor.yaml"));
        }
        want
    };
    let path = format!("{train}/{rel}");
    let profile = read_profiles(git, tree)?.and_then(|mut p| p.remove(&path)).ok_or_else(|| {
        Error::not_found(format!("the split of snapshot '{tag}' has no profile of {path} in profile.json"))
            .with_hint("re-run `mlgit split` (it writes profile.json), then `mlgit stable update` and train again")
    })?;
    let columns = profile.columns.iter().filter_map(ref_column).collect();
    let split_label = entry_at(git, tree, SPLIT_FILE)?
        .and_then(|e| git.find_blob(e.oid).ok())
        .and_then(|b| serde_yaml::from_slice::<serde_yaml::Value>(b.content()).ok())
        .and_then(|v| v.get("label").and_then(|l| l.as_str()).map(str::to_string));
    Ok(RefTable { snapshot, path, profile, columns, split_label })
}

fn ref_column(c: &ColumnProfile) -> Option<RefColumn> {
    let kind = match c.kind.as_str() {
        "int" | "float" if c.distinct.count > CATEGORICAL_MAX_DISTINCT => Kind::Numeric,
        "int" | "float" | "bool" | "string" => Kind::Categorical,
        _ => return None,
    };
    Some(RefColumn { name: c.name.clone(), kind, profile_type: c.kind.clone() })
}

/// Where a reference's figures come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefSource {
    /// `table` (read) or `profile` (profile.json: approximate).
    pub source: String,
    pub approximate: bool,
    /// Training records.
    pub rows: u64,
    pub path: String,
}

/// The summarised training data of one tag, column by column.
pub struct Reference {
    pub table: RefTable,
    pub source: RefSource,
    pub columns: BTreeMap<String, FeatureData>,
}

/// Summarise the `wanted` columns of the training table: read exactly when its content is here,
/// else from the profile.
pub fn load(repo: &Repo, table: RefTable, wanted: &[&RefColumn]) -> Result<Reference> {
    let git = repo.git();
    let split_tree = git.find_commit(table.snapshot.split).context("read the split commit")?.tree_id();
    let file = stored::data_file(git, split_tree, &table.path)?;
    let readable = file.as_ref().is_some_and(|f| stored::available(repo, f));
    let columns = if readable {
        read_exact(repo, split_tree, &table, wanted)?
    } else {
        wanted
            .iter()
            .filter_map(|c| {
                let p = table.profile.columns.iter().find(|p| p.name == c.name)?;
                Some((c.name.clone(), from_profile(c.kind, p)?))
            })
            .collect()
    };
    let source = RefSource {
        source: if readable { "table" } else { "profile" }.into(),
        approximate: !readable || columns.values().any(|c: &FeatureData| !c.exact()),
        rows: table.profile.rows,
        path: table.path.clone(),
    };
    Ok(Reference { table, source, columns })
}

fn from_profile(kind: Kind, p: &ColumnProfile) -> Option<FeatureData> {
    match kind {
        Kind::Numeric => Distribution::from_profile(p).map(FeatureData::Numeric),
        Kind::Categorical => Some(FeatureData::Categorical(Categories::from_profile(p))),
    }
}

/// One column's accumulator, for the reference or a batch.
pub enum Acc {
    Numeric(NumericAcc),
    Categorical { acc: CategoryAcc, numeric_like: bool },
}

impl Acc {
    pub fn for_column(c: &RefColumn) -> Acc {
        match c.kind {
            Kind::Numeric => Acc::Numeric(NumericAcc::new()),
            Kind::Categorical => Acc::Categorical {
                acc: CategoryAcc::new(),
                numeric_like: matches!(c.profile_type.as_str(), "int" | "float" | "bool"),
            },
        }
    }

    /// Add one cell; `scratch` is a reused buffer. Returns false when a numeric column got a value
    /// that is not a number (counted as null here; the caller reports it as a type change).
    pub fn add(&mut self, cell: crate::table::Cell<'_>, scratch: &mut Vec<u8>) -> bool {
        if cells::is_null(cell) {
            match self {
                Acc::Numeric(a) => a.add_null(),
                Acc::Categorical { acc, .. } => acc.add_null(),
            }
            return true;
        }
        match self {
            Acc::Numeric(a) => match cells::number(cell) {
                Some(x) => {
                    a.add(x);
                    true
                }
                None => {
                    a.add_null();
                    false
                }
            },
            Acc::Categorical { acc, numeric_like } => {
                cells::category(cell, *numeric_like, scratch);
                acc.add(&String::from_utf8_lossy(scratch));
                true
            }
        }
    }

    pub fn finish(self) -> FeatureData {
        match self {
            Acc::Numeric(a) => FeatureData::Numeric(a.finish()),
            Acc::Categorical { acc, .. } => FeatureData::Categorical(acc.finish()),
        }
    }
}

fn read_exact(
    repo: &Repo,
    split_tree: Oid,
    table: &RefTable,
    wanted: &[&RefColumn],
) -> Result<BTreeMap<String, FeatureData>> {
    let branch = format!("split {}", short(table.snapshot.split));
    let mut reader = stored::open_table(repo, &branch, split_tree, &table.path)?;
    let mut accs: Vec<Acc> = wanted.iter().map(|c| Acc::for_column(c)).collect();
    let mut scratch = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        let index: Vec<Option<usize>> =
            wanted.iter().map(|c| reader.columns().iter().position(|k| k.name == c.name)).collect();
        for row in 0..batch.len() {
            for (acc, col) in accs.iter_mut().zip(&index) {
                let cell = col.map(|i| batch.cell(row, i)).unwrap_or(crate::table::Cell::Null);
                acc.add(cell, &mut scratch);
            }
        }
    }
    Ok(wanted.iter().zip(accs).map(|(c, a)| (c.name.clone(), a.finish())).collect())
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..8].to_string()
}
