//! Record-level split of one table: every record goes to train, validation or test by the
//! documented hash of the seed and its key (id columns, a group column, or the record's canonical
//! content), and is written to that split's output in the table's own format. Each split's rows
//! are profiled on the way. One pass, one batch in memory at a time.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::split::assign_bytes;
use super::table_io::in_table;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::store::LfsStore;
use crate::table::output::Finished;
use crate::table::prefetch::Prefetch;
use crate::table::profile::{Profiler, TableProfile};
use crate::table::ContentOrder;
use crate::table::{
    canonical_cell, Batch, Format, HashingFile, Input, ReadOptions, TableReader, TableWriter, TextOutput,
};

/// What places a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// The record's canonical content (all columns): equal records land together.
    Content,
    /// The canonical texts of these columns, joined by U+001F.
    Columns(Vec<String>),
    /// The canonical text of this column: all records of a group land together.
    Group(String),
}

impl KeySpec {
    /// The columns this key reads (none for content).
    pub fn columns(&self) -> Vec<String> {
        match self {
            KeySpec::Content => Vec::new(),
            KeySpec::Columns(c) => c.clone(),
            KeySpec::Group(g) => vec![g.clone()],
        }
    }
}

/// The hash settings that place records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub seed: u64,
    pub ratios: Vec<u32>,
    pub key: KeySpec,
}

/// One table's split.
pub struct TableSplit {
    /// train, validation, test outputs.
    pub outputs: Vec<Finished>,
    pub rows: [u64; 3],
    /// Per split, label value → records (with a label column).
    pub labels: [BTreeMap<String, u64>; 3],
    pub profiles: Vec<TableProfile>,
    /// Records whose split differs under `previous` placement (with `--reshuffle`).
    pub moved: u64,
    /// Distinct groups (with a group column; exact up to the first million, then a lower bound).
    pub groups: u64,
    /// Whether the table has the label column (a label is reported for the tables that have it).
    pub has_label: bool,
    /// The table's columns (to name them when no table has the label).
    pub columns: Vec<String>,
}

/// Split the table at `path` (for messages) read from `input`.
#[allow(clippy::too_many_arguments)]
pub fn split_table(
    input: Input,
    format: Format,
    path: &str,
    placement: &Placement,
    previous: Option<&Placement>,
    label: Option<&str>,
    store: &LfsStore,
    interrupt: &Interrupt,
) -> Result<TableSplit> {
    let reader = TableReader::open(input, format, &ReadOptions::default()).map_err(in_table(path))?;
    let mut writers = Vec::with_capacity(3);
    for _ in 0..3 {
        writers.push(TableWriter::for_reader(&reader, TextOutput::AsRead, HashingFile::create(store)?)?);
    }
    let mut profilers: Vec<Profiler> = (0..3).map(|_| Profiler::new(reader.columns())).collect();
    let mut columns = reader.columns().to_vec();
    let mut rows = [0u64; 3];
    let mut labels: [BTreeMap<String, u64>; 3] = Default::default();
    let mut moved = 0u64;
    let mut groups = std::collections::HashSet::new();
    let mut resolved: Option<Resolved> = None;
    for item in Prefetch::new(reader)? {
        let (batch, now) = item.map_err(in_table(path))?;
        columns = now;
        let columns = &columns;
        interrupt.check("split")?;
        if let Some(bad) = batch.bad().first() {
            return Err(Error::invalid(format!(
                "{path}: line {} is not a record of the table ({}): the clean data should not hold it",
                bad.line, bad.reason
            ))
            .with_hint(
                "re-derive the clean data with `mlgit clean` (record level drops such records), then split",
            ));
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        if resolved.is_none() || resolved.as_ref().is_some_and(|r| r.width != names.len()) {
            resolved = Some(Resolved::new(path, &names, placement, previous, label)?);
        }
        let r = resolved.as_ref().ok_or_else(|| Error::invalid("no columns"))?;
        let n = batch.len();
        // Keys and hashes are the per-record work: spread them over the cores.
        let placed: Vec<(u8, u8)> = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map_init(Vec::new, |key, row| {
                let now = place(&batch, row, &r.key, placement, key);
                let before = match (&r.previous_key, previous) {
                    (Some(k), Some(p)) => place(&batch, row, k, p, key),
                    _ => now,
                };
                (now, before)
            })
            .collect();
        let masks: Vec<Vec<bool>> =
            (0..3u8).map(|s| placed.iter().map(|(now, _)| *now == s).collect()).collect();
        for (now, before) in &placed {
            rows[*now as usize] += 1;
            if now != before {
                moved += 1;
            }
        }
        if let Some(g) = r.group {
            for row in 0..n {
                if groups.len() < 1_000_000 {
                    let mut key = Vec::new();
                    canonical_cell(batch.cell(row, g), &mut key);
                    groups.insert(key);
                }
            }
        }
        if let Some(l) = r.label {
            let mut text = Vec::new();
            for (row, (now, _)) in placed.iter().enumerate() {
                text.clear();
                canonical_cell(batch.cell(row, l), &mut text);
                let value = String::from_utf8_lossy(&text).into_owned();
                *labels[*now as usize].entry(value).or_insert(0) += 1;
            }
        }
        // Writing and profiling each split are independent: one task each.
        let results: Vec<Result<()>> = writers
            .par_iter_mut()
            .zip(profilers.par_iter_mut())
            .zip(masks.par_iter())
            .map(|((w, p), mask)| {
                w.write(&batch, mask)?;
                p.observe(columns, &batch, mask);
                Ok(())
            })
            .collect();
        for r in results {
            r?;
        }
    }
    if resolved.is_none() {
        // No batch at all (an empty table): the columns still must exist where there are columns.
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        if !names.is_empty() {
            Resolved::new(path, &names, placement, previous, label)?;
        }
    }
    // The writers' last row groups and the profiles' sorting: in parallel, as the batches were.
    let (outputs, profiles) = rayon::join(
        || writers.into_par_iter().map(TableWriter::finish).collect::<Result<Vec<_>>>(),
        || profilers.into_par_iter().map(Profiler::finish).collect::<Vec<_>>(),
    );
    let outputs = outputs?
        .into_iter()
        .zip(rows)
        .map(|((output, written), placed)| {
            debug_assert_eq!(written, placed);
            output
        })
        .collect();
    Ok(TableSplit {
        outputs,
        rows,
        labels,
        profiles,
        moved,
        groups: groups.len() as u64,
        has_label: resolved.as_ref().is_some_and(|r| r.label.is_some()),
        columns: columns.iter().map(|c| c.name.clone()).collect(),
    })
}

/// The split (0, 1, 2) of a row under a placement; `key` is scratch space.
fn place(batch: &Batch, row: usize, key: &ResolvedKey, p: &Placement, buf: &mut Vec<u8>) -> u8 {
    buf.clear();
    match key {
        ResolvedKey::Content(order) => batch.canonical(row, order, buf),
        ResolvedKey::Columns(cols) => {
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    buf.push(0x1f);
                }
                canonical_cell(batch.cell(row, *c), buf);
            }
        }
    }
    assign_bytes(p.seed, buf, &p.ratios) as u8
}

enum ResolvedKey {
    Content(ContentOrder),
    Columns(Vec<usize>),
}

/// Column names resolved to indices for one table.
struct Resolved {
    width: usize,
    key: ResolvedKey,
    previous_key: Option<ResolvedKey>,
    group: Option<usize>,
    label: Option<usize>,
}

impl Resolved {
    fn new(
        path: &str,
        names: &[&str],
        placement: &Placement,
        previous: Option<&Placement>,
        label: Option<&str>,
    ) -> Result<Resolved> {
        let find = |col: &str, what: &str| -> Result<usize> {
            names.iter().position(|n| *n == col).ok_or_else(|| {
                Error::invalid(format!("{what} '{col}' is not a column of {path}"))
                    .with_hint(format!("its columns are: {}", names.join(", ")))
            })
        };
        let resolve = |k: &KeySpec, what: &str| -> Result<ResolvedKey> {
            Ok(match k {
                KeySpec::Content => ResolvedKey::Content(ContentOrder::of_names(names)),
                KeySpec::Columns(cols) => {
                    ResolvedKey::Columns(cols.iter().map(|c| find(c, what)).collect::<Result<_>>()?)
                }
                KeySpec::Group(g) => ResolvedKey::Columns(vec![find(g, what)?]),
            })
        };
        let what = match placement.key {
            KeySpec::Group(_) => "the group column",
            _ => "the key column",
        };
        let key = resolve(&placement.key, what)?;
        let group = match &placement.key {
            KeySpec::Group(g) => Some(find(g, what)?),
            _ => None,
        };
        // A previous placement's columns may be gone: then every record counts as moved? No: a
        // record can only be compared where both keys exist; a missing old column means the old
        // split could not have been computed this way, so compare against content.
        let previous_key = previous.map(|p| {
            resolve(&p.key, "the recorded key column")
                .unwrap_or(ResolvedKey::Content(ContentOrder::of_names(names)))
        });
        // Not every table has the label (an events table beside the labelled one): the split
        // refuses a label no table has.
        let label = label.and_then(|l| names.iter().position(|n| *n == l));
        Ok(Resolved { width: names.len(), key, previous_key, group, label })
    }
}
