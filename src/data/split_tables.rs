//! The tables of a split: each table of the clean commit is split record by record (in parallel)
//! unless the previous split already split the same blob with the same settings, in which case
//! its three outputs and profiles are reused as they are (a new clean commit re-splits only the
//! tables that changed).

use std::collections::{BTreeMap, HashMap};

use git2::{Oid, Repository};
use rayon::prelude::*;
use serde::Deserialize;

use super::flow::{DataFile, DATA_DIR};
use super::split::{TableRecord, PROFILE_FILE, SPLITS, SPLIT_FILE};
use super::split_settings::Settings;
use super::split_table::{split_table, TableSplit};
use super::table_io::{open_input, store_output};
use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::ingest::LfsRule;
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::tree::{entry_at, Entry};
use crate::repo::Repo;
use crate::table::Format;

/// One table's place in the new split.
pub struct TableOut {
    pub record: TableRecord,
    /// train, validation, test entries.
    pub entries: [Entry; 3],
    /// `{"train": profile, "validation": …, "test": …}`.
    pub profiles: serde_json::Value,
}

pub struct TablesOut {
    pub tables: Vec<TableOut>,
    /// Tables read this time.
    pub read: u64,
    /// Records whose split changed (with a reshuffle).
    pub moved: u64,
}

impl TablesOut {
    /// `profile.json`: `{"schema": 1, "tables": {path: {split: profile}}}`, keys sorted.
    pub fn profile_json(&self) -> Result<String> {
        let tables: BTreeMap<&str, &serde_json::Value> =
            self.tables.iter().map(|t| (t.record.path.as_str(), &t.profiles)).collect();
        let doc = serde_json::json!({ "schema": 1, "tables": tables });
        let mut text = serde_json::to_string_pretty(&doc).context("write profile.json")?;
        text.push('\n');
        Ok(text)
    }
}

/// Split every table (see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn split_all(
    repo: &Repo,
    from: &str,
    to: &str,
    tables: &[&DataFile],
    settings: &Settings,
    before: Option<&Settings>,
    known: &mut HashMap<Oid, bool>,
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<TablesOut> {
    if tables.is_empty() {
        return Ok(TablesOut { tables: Vec::new(), read: 0, moved: 0 });
    }
    let git = repo.git();
    let store = repo.store();
    let extensions = repo.config().tables.extensions();
    let reusable = if before.is_none() { Previous::load(git, to, settings)? } else { Previous::default() };
    let placement = settings.placement();
    let previous_placement = before.map(Settings::placement);

    // Read what must be read (in parallel), reuse the rest.
    let mut outs: Vec<Option<TableOut>> = Vec::with_capacity(tables.len());
    let mut to_read = Vec::new();
    for (i, f) in tables.iter().enumerate() {
        match reusable.reuse(git, f, known)? {
            Some(out) => {
                progress.advance(1, 0);
                outs.push(Some(out));
            }
            None => {
                outs.push(None);
                to_read.push(i);
            }
        }
    }
    let inputs = to_read
        .iter()
        .map(|&i| Ok((i, open_input(git, store, from, tables[i])?)))
        .collect::<Result<Vec<_>>>()?;
    let split: Vec<(usize, TableSplit)> = inputs
        .into_par_iter()
        .map(|(i, input)| {
            let f = tables[i];
            let format = Format::of(&f.rel, &extensions).ok_or_else(|| Error::invalid("not a table"))?;
            let path = format!("{DATA_DIR}/{}", f.rel);
            let out = split_table(
                input,
                format,
                &path,
                &placement,
                previous_placement.as_ref(),
                settings.label.as_deref(),
                store,
                interrupt,
            )?;
            progress.advance(1, 0);
            Ok((i, out))
        })
        .collect::<Result<_>>()?;

    if let Some(label) = &settings.label {
        let somewhere = split.iter().any(|(_, t)| t.has_label)
            || outs.iter().flatten().any(|t| !t.record.labels.is_empty());
        if !somewhere {
            let columns: Vec<String> = split
                .iter()
                .take(3)
                .map(|(i, t)| format!("{DATA_DIR}/{}: {}", tables[*i].rel, t.columns.join(", ")))
                .collect();
            return Err(Error::invalid(format!("the label column '{label}' is in none of the tables"))
                .with_hint(format!("name one of their columns ({}), or drop --label", columns.join("; "))));
        }
    }
    let rule = LfsRule::for_kind(repo.config(), BranchKind::Split)?;
    let mut moved = 0;
    let read = split.len() as u64;
    for (i, t) in split {
        let f = tables[i];
        moved += t.moved;
        let mut entries = [Entry::blob(Oid::zero()); 3];
        let mut profiles = serde_json::Map::new();
        for (s, (output, profile)) in t.outputs.into_iter().zip(t.profiles).enumerate() {
            let tree_path = format!("{DATA_DIR}/{}/{}", SPLITS[s], f.rel);
            entries[s] = store_output(git, store, &rule, &tree_path, output, known)?;
            profiles.insert(SPLITS[s].to_string(), serde_json::to_value(profile).context("profile")?);
        }
        let rows = SPLITS.iter().zip(t.rows).map(|(s, n)| (s.to_string(), n)).collect();
        let labels = if settings.label.is_some() && t.has_label {
            SPLITS.iter().zip(t.labels).map(|(s, m)| (s.to_string(), m)).collect()
        } else {
            BTreeMap::new()
        };
        let record = TableRecord {
            path: f.rel.clone(),
            source: f.entry.oid.to_string(),
            rows,
            labels,
            groups: t.groups,
        };
        outs[i] = Some(TableOut { record, entries, profiles: serde_json::Value::Object(profiles) });
    }
    let tables = outs.into_iter().flatten().collect();
    Ok(TablesOut { tables, read, moved })
}

/// What the split branch's tip can give back: its tables by path, when it was made with the same
/// settings.
#[derive(Default)]
struct Previous {
    tree: Option<Oid>,
    tables: HashMap<String, TableRecord>,
    profiles: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RecordedTables {
    #[serde(default)]
    tables: Vec<TableRecord>,
}

impl Previous {
    fn load(git: &Repository, branch: &str, settings: &Settings) -> Result<Previous> {
        let Ok(tip) = git.revparse_single(&format!("refs/heads/{branch}")).and_then(|o| o.peel_to_commit())
        else {
            return Ok(Previous::default());
        };
        let tree = tip.tree_id();
        let read = |path: &str| -> Result<Option<Vec<u8>>> {
            Ok(match entry_at(git, tree, path)? {
                Some(e) => git.find_blob(e.oid).ok().map(|b| b.content().to_vec()),
                None => None,
            })
        };
        let Some(yaml) = read(SPLIT_FILE)? else { return Ok(Previous::default()) };
        // Reuse only what was split exactly this way (a label change re-reads, to count labels).
        match serde_yaml::from_slice::<Settings>(&yaml) {
            Ok(recorded) if &recorded == settings => {}
            _ => return Ok(Previous::default()),
        }
        let Ok(recorded) = serde_yaml::from_slice::<RecordedTables>(&yaml) else {
            return Ok(Previous::default());
        };
        let profiles = read(PROFILE_FILE)?
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .and_then(|v| v.get("tables").and_then(|t| t.as_object()).cloned())
            .unwrap_or_default();
        Ok(Previous {
            tree: Some(tree),
            tables: recorded.tables.into_iter().map(|t| (t.path.clone(), t)).collect(),
            profiles,
        })
    }

    /// The previous split of `f`, when its source blob is the same and every output is there.
    fn reuse(
        &self,
        git: &Repository,
        f: &DataFile,
        known: &mut HashMap<Oid, bool>,
    ) -> Result<Option<TableOut>> {
        let (Some(tree), Some(record)) = (self.tree, self.tables.get(&f.rel)) else { return Ok(None) };
        if record.source != f.entry.oid.to_string() {
            return Ok(None);
        }
        let Some(profiles) = self.profiles.get(&f.rel) else { return Ok(None) };
        let odb = git.odb().context("open the object database")?;
        let mut entries = [Entry::blob(Oid::zero()); 3];
        for (s, name) in SPLITS.iter().enumerate() {
            let Some(e) = entry_at(git, tree, &format!("{DATA_DIR}/{name}/{}", f.rel))? else {
                return Ok(None);
            };
            let pointer = crate::repo::lfs_tree::read_pointer(git, &odb, e.oid)?;
            known.insert(e.oid, pointer.is_some());
            entries[s] = e;
        }
        Ok(Some(TableOut { record: record.clone(), entries, profiles: profiles.clone() }))
    }
}
