//! The reference of a serving tag: tag → snapshot commit → its tracking record's split commit →
//! the training table (`data/train/<table>`) of that split. Read exactly when its content is here;
//! else taken, approximately, from the split's `profile.json` (and the report says so).

use std::collections::BTreeMap;

use git2::Oid;
use serde::Serialize;

use super::cells;
use super::decide::FeatureData;
use super::sample::{Categories, CategoryAcc, Distribution, NumericAcc};
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
    let (commit, record) = crate::snapshot::tagged(
        git,
        tag,
        "a serving tag must be a snapshot made by `mlgit train-tag`; list them with `mlgit status` (or fetch them: `mlgit pull`)",
    )?;
    let split = record.data.split.as_deref().and_then(|s| Oid::from_str(s).ok()).ok_or_else(|| {
        Error::not_found(format!(
            "snapshot '{tag}' records no split commit, so there is no training data to compare with"
        ))
        .with_hint("train on a stable branch made by `mlgit stable update`, which records the split it holds")
    })?;
    git.find_commit(split).map_err(|_| {
        Error::not_found(format!("the split commit {split} of snapshot '{tag}' is not in this repository"))
            .with_hint("fetch the split branch: `mlgit pull`")
    })?;
    Ok(Snapshot { tag: tag.to_string(), commit, split, record })
}

/// The snapshot a batch was served by: the commit pinned when it was logged (`pinned`), else
/// what the tag names now. Also says when the tag has moved since (a warning for the report).
pub fn snapshot_pinned(repo: &Repo, tag: &str, pinned: Option<&str>) -> Result<(Snapshot, Option<String>)> {
    let Some(pin) = pinned.and_then(|p| Oid::from_str(p).ok()) else {
        return Ok((snapshot_of(repo, tag)?, None));
    };
    let git = repo.git();
    let commit = git.find_commit(pin).map_err(|_| {
        Error::not_found(format!("the snapshot {pin} that served '{tag}' is not in this repository"))
            .with_hint("fetch it: `mlgit pull` (the tag may have been deleted on this clone only)")
    })?;
    let record = RunRecord::read(git, &commit)?
        .ok_or_else(|| Error::not_found(format!("{pin} (served as '{tag}') is not a snapshot")))?;
    let split = record
        .data
        .split
        .as_deref()
        .and_then(|s| Oid::from_str(s).ok())
        .ok_or_else(|| Error::not_found(format!("snapshot '{tag}' records no split commit")))?;
    let now = crate::snapshot::tag_commit(git, tag);
    let warning = match now {
        Some(c) if c == pin => None,
        Some(c) => Some(format!(
            "tag '{tag}' now names {}, but these records were served by {} (pinned when logged): compared with the latter",
            short(c),
            short(pin)
        )),
        None => Some(format!("tag '{tag}' no longer exists; compared with the snapshot {} pinned when logged", short(pin))),
    };
    Ok((Snapshot { tag: tag.to_string(), commit: pin, split, record }, warning))
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
    /// Categorical columns whose profiles list every value: those values (the category set the
    /// batch is checked against, exactly, however many new values it brings).
    pub categories: Option<std::collections::HashSet<String>>,
}

/// The training data of a snapshot's split that the batches are compared with: one table, or all
/// tables under one folder (weekly batches of the same table), with their profiles.
#[derive(Debug, Clone)]
pub struct RefTable {
    pub snapshot: Snapshot,
    /// `data/train/<p>` of every file, in path order.
    pub paths: Vec<String>,
    /// What `reference_table` named, or the folder chosen (`customers/`), or the file.
    pub name: String,
    /// Each file's profile (same order as `paths`).
    pub profiles: Vec<TableProfile>,
    /// Every comparable column, in the first file's order (timestamps, nested values and
    /// identifiers are not compared).
    pub columns: Vec<RefColumn>,
    /// Columns left out because they identify records (the split's key or group column, or a
    /// text column whose values are nearly all distinct).
    pub identifiers: Vec<String>,
    /// The split's label column (split.yaml), if it recorded one.
    pub split_label: Option<String>,
    /// Training records (all files).
    pub rows: u64,
}

/// The training data of `snapshot`: `monitor.reference_table` under `data/train/` (a table, or a
/// folder of tables); else, among the split's tables grouped by folder, the one group whose
/// columns the batch has (`batch_columns`), or the only group.
pub fn ref_table(
    repo: &Repo,
    snapshot: Snapshot,
    settings: &MonitorSettings,
    batch_columns: Option<&[String]>,
) -> Result<RefTable> {
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
    if tables.is_empty() {
        return Err(Error::not_found(format!(
            "the split of snapshot '{tag}' ({}) has no table under {train}/",
            short(snapshot.split)
        ))
        .with_hint("drift compares records with a training table; split tables with `mlgit split`"));
    }
    let profiles_of = read_profiles(git, tree)?.unwrap_or_default();
    let take = |files: &[String]| -> Result<Vec<TableProfile>> {
        files
            .iter()
            .map(|rel| {
                let path = format!("{train}/{rel}");
                profiles_of.get(&path).cloned().ok_or_else(|| {
                    Error::not_found(format!("the split of snapshot '{tag}' has no profile of {path} in profile.json"))
                        .with_hint("re-run `mlgit split` (it writes profile.json), then `mlgit stable update` and train again")
                })
            })
            .collect()
    };
    let split_yaml: Option<serde_yaml::Value> = entry_at(git, tree, SPLIT_FILE)?
        .and_then(|e| git.find_blob(e.oid).ok())
        .and_then(|b| serde_yaml::from_slice(b.content()).ok());
    let split_label =
        split_yaml.as_ref().and_then(|v| v.get("label")).and_then(|l| l.as_str()).map(str::to_string);
    let (name, files) = if settings.reference_table.is_empty() {
        let groups = group_by_folder(&tables);
        let chosen = match batch_columns {
            Some(cols) if groups.len() > 1 => {
                // The group whose columns the batch has the largest share of (monitoring columns
                // and the label aside), when one group stands out with at least half.
                let mut special = settings.special_columns();
                special.extend(split_label.as_deref());
                let mut scored = Vec::new();
                for g in &groups {
                    let first = take(&g.1[..1])?;
                    let names: Vec<&str> = first[0]
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .filter(|n| !special.contains(n))
                        .collect();
                    let have = names.iter().filter(|n| cols.iter().any(|c| c == *n)).count();
                    scored.push((have as f64 / names.len().max(1) as f64, g));
                }
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                match scored.as_slice() {
                    [(best, g), rest @ ..] if *best >= 0.5 && !rest.first().is_some_and(|r| r.0 >= *best) => {
                        Some(*g)
                    }
                    _ => None,
                }
            }
            _ if groups.len() == 1 => Some(&groups[0]),
            _ => None,
        };
        match chosen {
            Some(g) => (g.0.clone(), g.1.clone()),
            None => {
                let names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
                return Err(Error::invalid(format!(
                    "the split of snapshot '{tag}' has several training tables ({}); which one do the requests match?",
                    names.join(", ")
                ))
                .with_hint("set `reference_table` in monitor.yaml on the monitoring branch to one of them"));
            }
        }
    } else {
        let want = settings.reference_table.trim_start_matches('/').to_string();
        let folder = format!("{}/", want.trim_end_matches('/'));
        let files: Vec<String> =
            tables.iter().filter(|t| **t == want || t.starts_with(&folder)).cloned().collect();
        if files.is_empty() {
            return Err(Error::not_found(format!(
                "monitor.yaml's reference_table '{want}' is not a table or folder of tables of the split of snapshot '{tag}' (it has: {})",
                group_by_folder(&tables).iter().map(|g| g.0.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .with_hint("fix `reference_table` in monitor.yaml"));
        }
        (want, files)
    };
    let profiles = take(&files)?;
    let mut keys: Vec<String> = Vec::new();
    if let Some(v) = &split_yaml {
        match v.get("key") {
            Some(serde_yaml::Value::String(k)) => keys.push(k.clone()),
            Some(serde_yaml::Value::Sequence(ks)) => {
                keys.extend(ks.iter().filter_map(|k| k.as_str().map(str::to_string)))
            }
            _ => {}
        }
        if let Some(g) = v.get("group_column").and_then(|g| g.as_str()) {
            keys.push(g.to_string());
        }
    }
    let rows = profiles.iter().map(|p| p.rows).sum();
    let mut columns = Vec::new();
    let mut identifiers = Vec::new();
    for c in &profiles[0].columns {
        let Some(mut col) = ref_column(c) else { continue };
        if col.kind == Kind::Categorical {
            col.categories = complete_categories(&profiles, &c.name);
        }
        if keys.contains(&c.name) || is_identifier(c, profiles[0].rows) {
            identifiers.push(c.name.clone());
        } else {
            columns.push(col);
        }
    }
    let paths = files.iter().map(|f| format!("{train}/{f}")).collect();
    Ok(RefTable { snapshot, paths, name, profiles, columns, identifiers, split_label, rows })
}

/// The split's tables grouped by their folder under `data/train/` (a table at the top is its own
/// group, named by its file name; a folder's group is named `folder/`).
fn group_by_folder(tables: &[String]) -> Vec<(String, Vec<String>)> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tables {
        let key = match t.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => t.clone(),
        };
        groups.entry(key).or_default().push(t.clone());
    }
    groups.into_iter().collect()
}

/// A text column whose values are nearly all distinct names records, not a property of them: a
/// new customer's id is never "drift".
fn is_identifier(c: &ColumnProfile, rows: u64) -> bool {
    let values = rows.saturating_sub(c.nulls);
    c.kind == "string" && values >= 20 && c.distinct.count as f64 >= 0.9 * values as f64
}

fn ref_column(c: &ColumnProfile) -> Option<RefColumn> {
    let kind = match c.kind.as_str() {
        "int" | "float" if c.distinct.count > CATEGORICAL_MAX_DISTINCT => Kind::Numeric,
        "int" | "float" | "bool" | "string" => Kind::Categorical,
        _ => return None,
    };
    Some(RefColumn { name: c.name.clone(), kind, profile_type: c.kind.clone(), categories: None })
}

/// Every value of column `name` when each profile lists all of its values.
fn complete_categories(profiles: &[TableProfile], name: &str) -> Option<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for p in profiles {
        let c = p.columns.iter().find(|c| c.name == name)?;
        let complete = c.top_exact && c.distinct.exact && c.distinct.count as usize == c.top.len();
        if !complete {
            return None;
        }
        out.extend(c.top.iter().map(|t| t.value.clone()));
    }
    Some(out)
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

/// Summarise the `wanted` columns of the training data: read exactly when every file's content is
/// here, else from the profiles (a mixture of the files' profiles, weighted by their rows).
pub fn load(repo: &Repo, table: RefTable, wanted: &[&RefColumn]) -> Result<Reference> {
    let git = repo.git();
    let split_tree = git.find_commit(table.snapshot.split).context("read the split commit")?.tree_id();
    let mut readable = true;
    for path in &table.paths {
        let file = stored::data_file(git, split_tree, path)?;
        readable &= file.as_ref().is_some_and(|f| stored::available(repo, f));
    }
    let columns = if readable {
        read_exact(repo, split_tree, &table, wanted)?
    } else {
        wanted
            .iter()
            .filter_map(|c| {
                let parts: Vec<(FeatureData, u64)> = table
                    .profiles
                    .iter()
                    .filter_map(|p| {
                        let col = p.columns.iter().find(|k| k.name == c.name)?;
                        Some((from_profile(c.kind, col, p.rows)?, p.rows))
                    })
                    .collect();
                Some((c.name.clone(), mix(parts)?))
            })
            .collect()
    };
    let source = RefSource {
        source: if readable { "table" } else { "profile" }.into(),
        approximate: !readable || columns.values().any(|c: &FeatureData| !c.exact()),
        rows: table.rows,
        path: if table.paths.len() == 1 {
            table.paths[0].clone()
        } else {
            format!("{DATA_DIR}/train/{}", table.name)
        },
    };
    Ok(Reference { table, source, columns })
}

/// One summary out of several files' (profile) summaries.
fn mix(parts: Vec<(FeatureData, u64)>) -> Option<FeatureData> {
    if parts.len() <= 1 {
        return parts.into_iter().next().map(|(d, _)| d);
    }
    match &parts[0].0 {
        FeatureData::Numeric(_) => {
            let mut points = Vec::new();
            let (mut n, mut nulls, mut err) = (0u64, 0u64, 0f64);
            let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
            for (d, _) in &parts {
                let FeatureData::Numeric(d) = d else { continue };
                let total: f64 = d.points.iter().map(|p| p.1).sum();
                if total > 0.0 {
                    let scale = d.n as f64 / total;
                    points.extend(d.points.iter().map(|&(x, w)| (x, w * scale)));
                }
                n += d.n;
                nulls += d.nulls;
                err = err.max(d.rank_error);
                min = min.min(d.min);
                max = max.max(d.max);
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Some(FeatureData::Numeric(Distribution {
                points,
                n,
                nulls,
                exact: false,
                rank_error: err,
                min,
                max,
            }))
        }
        FeatureData::Categorical(_) => {
            let mut out = Categories {
                counts: BTreeMap::new(),
                other: 0,
                unseen_other: 0,
                n: 0,
                nulls: 0,
                exact: false,
            };
            for (d, _) in &parts {
                let FeatureData::Categorical(c) = d else { continue };
                for (k, v) in &c.counts {
                    *out.counts.entry(k.clone()).or_insert(0) += v;
                }
                out.other += c.other;
                out.unseen_other += c.unseen_other;
                out.n += c.n;
                out.nulls += c.nulls;
            }
            Some(FeatureData::Categorical(out))
        }
    }
}

fn from_profile(kind: Kind, p: &ColumnProfile, rows: u64) -> Option<FeatureData> {
    match kind {
        Kind::Numeric => Distribution::from_profile(p).map(FeatureData::Numeric),
        Kind::Categorical => Some(FeatureData::Categorical(Categories::from_profile_rows(p, rows))),
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
                acc: match &c.categories {
                    Some(known) => CategoryAcc::with_known(known.clone()),
                    None => CategoryAcc::new(),
                },
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
            Acc::Numeric(a) => match cells::plain_number(cell) {
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
                match std::str::from_utf8(scratch) {
                    Ok(text) => acc.add(text),
                    Err(_) => acc.add(&String::from_utf8_lossy(scratch)),
                }
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
    let mut accs: Vec<Acc> = wanted.iter().map(|c| Acc::for_column(c)).collect();
    let mut scratch = Vec::new();
    for path in &table.paths {
        let mut reader = stored::open_table(repo, &branch, split_tree, path)?;
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
    }
    Ok(wanted.iter().zip(accs).map(|(c, a)| (c.name.clone(), a.finish())).collect())
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..8].to_string()
}
