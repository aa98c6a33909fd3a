//! Record-level clean of tables: each table of the raw commit is read record by record; records
//! that cannot be read (wrong field count, bytes that do not decode, a line that is not a JSON
//! object), that the table's schema refuses, or (with drop_duplicates) that repeat an earlier
//! record of the same table are dropped, not the file. Files with the same name (`customers.csv`
//! in every batch folder) are batches of one table and share `schema/<name>.json`: the first clean
//! infers it from the first batch, later ones enforce the committed file (with any constraints a
//! user added). Each kept table is profiled on the way.

use std::collections::{BTreeMap, HashMap, HashSet};

use git2::{Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::flow::{DataFile, DATA_DIR};
use super::table_io::{in_table, open_input, store_output};
use crate::config::BranchKind;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::ingest::LfsRule;
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::tree::{entry_at, Entry};
use crate::repo::Repo;
use crate::store::LfsStore;
use crate::table::output::Finished;
use crate::table::prefetch::Prefetch;
use crate::table::profile::{Profiler, TableProfile};
use crate::table::schema::{ColumnChanges, RowChecker, SchemaInferrer, TableSchema};
use crate::table::ContentOrder;
use crate::table::{
    BadRecord, Encoding, Format, HashingFile, Input, ReadOptions, TableReader, TableWriter, TextOutput,
};

/// Where a table's schema lives on the clean branch.
pub fn schema_path(table: &str) -> String {
    format!("schema/{table}.json")
}

/// The table a file belongs to: the first capture group of `tables.name` when it matches, else
/// its file name without the extension.
pub fn table_name(rel: &str, pattern: Option<&regex::Regex>) -> String {
    if let Some(m) = pattern.and_then(|re| re.captures(rel)).and_then(|c| c.get(1)) {
        if !m.as_str().is_empty() && !m.as_str().contains('/') {
            return m.as_str().to_string();
        }
    }
    let name = rel.rsplit('/').next().unwrap_or(rel);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => name.to_string(),
    }
}

/// Bad records kept per file in the report and the output (the counts are always exact).
pub const BAD_RECORDS_LISTED: usize = 1000;

/// The record-level clean of one file.
#[derive(Debug, Clone, Serialize)]
pub struct TableClean {
    /// Path below `data/`.
    pub path: String,
    pub table: String,
    pub rows_in: u64,
    pub kept: u64,
    pub dropped: u64,
    pub by_check: BTreeMap<String, u64>,
    /// Up to [`BAD_RECORDS_LISTED`] of the dropped records, in file order.
    pub bad_records: Vec<BadRecord>,
    /// The file's columns against its table's schema.
    #[serde(skip_serializing_if = "ColumnChanges::is_empty")]
    pub schema_changes: ColumnChanges,
    /// Whether the output was transcoded to UTF-8.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transcoded: bool,
    /// Why the file could not be read as a table at all (it is dropped whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Every table's clean.
pub struct TablesClean {
    pub tables: Vec<TableClean>,
    /// path below `data/` → the clean entry (absent: no record left, the table is dropped).
    pub entries: BTreeMap<String, Entry>,
    pub profiles: BTreeMap<String, TableProfile>,
    /// Schemas inferred by this clean (tables that had none), to commit.
    pub new_schemas: Vec<(String, TableSchema)>,
}

/// The settings of a record-level clean.
pub struct Settings {
    pub encoding: Encoding,
    pub drop_duplicates: bool,
}

/// Clean every table (see the module doc). `clean_tip` is the clean branch's tree (the schemas).
#[allow(clippy::too_many_arguments)]
pub fn clean_tables(
    repo: &Repo,
    from: &str,
    to: &str,
    clean_tip: Option<Oid>,
    tables: &[&DataFile],
    settings: &Settings,
    known: &mut HashMap<Oid, bool>,
    interrupt: &Interrupt,
    progress: &dyn Progress,
) -> Result<TablesClean> {
    let git = repo.git();
    let store = repo.store();
    let extensions = repo.config().tables.extensions();
    // Batches of one table, in path order (duplicates keep the first record; the first batch
    // defines an inferred schema).
    let pattern = repo.config().tables.name.as_deref().and_then(|p| regex::Regex::new(p).ok());
    let mut by_table: BTreeMap<String, Vec<&DataFile>> = BTreeMap::new();
    for f in tables {
        by_table.entry(table_name(&f.rel, pattern.as_ref())).or_default().push(f);
    }
    let mut jobs = Vec::new();
    for (name, files) in by_table {
        let schema = match clean_tip {
            Some(tree) => read_schema(git, tree, to, &name)?,
            None => None,
        };
        let inputs = files
            .iter()
            .map(|f| {
                let format = Format::of(&f.rel, &extensions).ok_or_else(|| Error::invalid("not a table"))?;
                Ok((*f, format, open_input(git, store, from, f)?))
            })
            .collect::<Result<Vec<_>>>()?;
        jobs.push((name, schema, inputs));
    }
    let done: Vec<(String, Option<TableSchema>, Vec<FileOut>)> = jobs
        .into_par_iter()
        .map(|(name, schema, inputs)| {
            let mut schema = schema.map(|s| (s, false));
            let mut seen = settings.drop_duplicates.then(HashSet::new);
            // One checker for all batches: a `unique` key holds across the whole table.
            let mut checker = None;
            let mut outs = Vec::new();
            for (f, format, input) in inputs {
                let out = match clean_file(
                    input,
                    format,
                    f,
                    &name,
                    settings,
                    &mut schema,
                    &mut checker,
                    seen.as_mut(),
                    store,
                    interrupt,
                ) {
                    Ok(out) => out,
                    // A file that is not of its format at all (a truncated Parquet footer, a header
                    // that is not text) is dropped whole, as a broken image is: the other tables
                    // are still cleaned.
                    Err(e) if e.kind() == ErrorKind::InvalidInput => {
                        FileOut::unreadable(f, &name, e.message())
                    }
                    Err(e) => return Err(e),
                };
                progress.advance(1, 0);
                outs.push(out);
            }
            let inferred = schema.and_then(|(s, inferred)| inferred.then_some(s));
            Ok((name, inferred, outs))
        })
        .collect::<Result<_>>()?;

    let rule = LfsRule::for_kind(repo.config(), BranchKind::Clean)?;
    let mut result = TablesClean {
        tables: Vec::new(),
        entries: BTreeMap::new(),
        profiles: BTreeMap::new(),
        new_schemas: Vec::new(),
    };
    for (name, inferred, outs) in done {
        if let Some(s) = inferred {
            result.new_schemas.push((name, s));
        }
        for out in outs {
            let path = out.report.path.clone();
            if out.report.kept > 0 {
                let entry = match out.output {
                    // Nothing dropped, nothing transcoded: the raw object is the clean one.
                    None => out.source,
                    Some(finished) => {
                        store_output(git, store, &rule, &format!("{DATA_DIR}/{path}"), finished, known)?
                    }
                };
                result.entries.insert(path.clone(), entry);
                result.profiles.insert(path, out.profile);
            }
            result.tables.push(out.report);
        }
    }
    result.tables.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(result)
}

/// A table's committed schema on the clean branch, if any.
fn read_schema(git: &Repository, tree: Oid, branch: &str, table: &str) -> Result<Option<TableSchema>> {
    let path = schema_path(table);
    let Some(e) = entry_at(git, tree, &path)? else { return Ok(None) };
    if !matches!(e.mode, git2::FileMode::Blob | git2::FileMode::BlobExecutable) {
        let what = match e.mode {
            git2::FileMode::Tree => "a folder",
            git2::FileMode::Link => "a symbolic link",
            _ => "not a file",
        };
        return Err(Error::invalid(format!("{branch}:{path} is {what}, not a schema file")).with_hint(
            "replace it with the table's schema (a JSON file) on the clean branch, or delete it to infer it again",
        ));
    }
    let blob = git.find_blob(e.oid).context(format!("read {branch}:{path}"))?;
    let text = std::str::from_utf8(blob.content()).map_err(|_| {
        Error::invalid(format!("{branch}:{path} is not UTF-8 text"))
            .with_hint("fix the schema file on the clean branch (or delete it to infer it again), then retry")
    })?;
    TableSchema::parse(text, &format!("{branch}:{path}")).map(Some)
}

impl TableClean {
    /// The report of file `rel` of table `name` before any record is read.
    fn new(rel: &str, name: &str) -> TableClean {
        TableClean {
            path: rel.to_string(),
            table: name.to_string(),
            rows_in: 0,
            kept: 0,
            dropped: 0,
            by_check: BTreeMap::new(),
            bad_records: Vec::new(),
            schema_changes: ColumnChanges::default(),
            transcoded: false,
            unreadable: None,
        }
    }
}

impl FileOut {
    /// A file that could not be read as a table: dropped whole, with the reason.
    fn unreadable(f: &DataFile, name: &str, why: &str) -> FileOut {
        FileOut {
            report: TableClean { unreadable: Some(why.to_string()), ..TableClean::new(&f.rel, name) },
            output: None,
            source: Entry { oid: f.entry.oid, mode: f.entry.mode },
            profile: TableProfile { rows: 0, columns: Vec::new() },
        }
    }
}

struct FileOut {
    report: TableClean,
    /// None: the output would equal the input.
    output: Option<Finished>,
    source: Entry,
    profile: TableProfile,
}

/// Clean one file of table `name`. `schema` is the table's schema (and whether this clean
/// inferred it); None: infer it from this file.
#[allow(clippy::too_many_arguments)]
fn clean_file(
    input: Input,
    format: Format,
    f: &DataFile,
    name: &str,
    settings: &Settings,
    schema: &mut Option<(TableSchema, bool)>,
    checker: &mut Option<RowChecker>,
    mut seen: Option<&mut HashSet<[u8; 16]>>,
    store: &LfsStore,
    interrupt: &Interrupt,
) -> Result<FileOut> {
    let opts = ReadOptions { encoding: settings.encoding, ..ReadOptions::default() };
    let shown = format!("{DATA_DIR}/{}", f.rel);
    let reader = TableReader::open(input, format, &opts).map_err(in_table(&shown))?;
    let text = if settings.encoding == Encoding::Utf8 || format == Format::Parquet {
        TextOutput::AsRead
    } else {
        TextOutput::Utf8
    };
    let mut writer = TableWriter::for_reader(&reader, text, HashingFile::create(store)?)?;
    let mut profiler = Profiler::new(reader.columns());
    let mut inferrer = if schema.is_none() { Some(SchemaInferrer::new(reader.columns())) } else { None };
    let mut checked_width = usize::MAX;
    let mut report = TableClean { transcoded: text == TextOutput::Utf8, ..TableClean::new(&f.rel, name) };
    let drop = |bad: BadRecord, report: &mut TableClean| {
        report.dropped += 1;
        *report.by_check.entry(bad.check.to_string()).or_insert(0) += 1;
        if report.bad_records.len() < BAD_RECORDS_LISTED {
            report.bad_records.push(bad);
        }
    };
    for item in Prefetch::new(reader)? {
        let (batch, columns) = item.map_err(in_table(&shown))?;
        let columns = &columns;
        interrupt.check("clean")?;
        if let Some((s, _)) = schema.as_ref() {
            if checked_width != columns.len() {
                match checker.as_mut() {
                    Some(c) => c.set_columns(columns),
                    None => *checker = Some(s.checker(columns)),
                }
                report.schema_changes = s.compare_columns(columns);
                checked_width = columns.len();
            }
        }
        for bad in batch.bad() {
            report.rows_in += 1;
            drop(bad.clone(), &mut report);
        }
        // Content ids of the records (for duplicates) are the per-record work: in parallel.
        let order = ContentOrder::new(columns);
        let ids: Vec<[u8; 16]> = if seen.is_some() {
            (0..batch.len())
                .into_par_iter()
                .with_min_len(1024)
                .map_init(Vec::new, |key, row| {
                    key.clear();
                    batch.canonical(row, &order, key);
                    let digest = Sha256::digest(&key[..]);
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&digest[..16]);
                    id
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut keep = vec![true; batch.len()];
        let mut bad_rows: Vec<BadRecord> = Vec::new();
        for (row, k) in keep.iter_mut().enumerate() {
            report.rows_in += 1;
            if let Some(c) = checker.as_mut() {
                if let Some(bad) = c.check(&batch, row) {
                    *k = false;
                    bad_rows.push(bad);
                    continue;
                }
            }
            if let Some(seen) = seen.as_deref_mut() {
                if !seen.insert(ids[row]) {
                    *k = false;
                    bad_rows.push(BadRecord {
                        line: batch.line(row),
                        column: None,
                        check: "duplicate",
                        reason: "the same record as an earlier one of this table".into(),
                    });
                }
            }
        }
        for bad in bad_rows {
            drop(bad, &mut report);
        }
        report.kept += keep.iter().filter(|k| **k).count() as u64;
        // Writing, profiling and inferring read the same batch: side by side.
        let (written, ()) = rayon::join(
            || writer.write(&batch, &keep),
            || {
                rayon::join(
                    || profiler.observe(columns, &batch, &keep),
                    || {
                        if let Some(i) = inferrer.as_mut() {
                            i.observe(columns, &batch, &keep);
                        }
                    },
                );
            },
        );
        written?;
    }
    report.bad_records.sort_by_key(|b| b.line);
    if let Some(i) = inferrer {
        *schema = Some((i.finish(name), true));
    }
    let (finished, _) = writer.finish()?;
    let unchanged = report.dropped == 0 && !report.transcoded;
    Ok(FileOut {
        report,
        output: if unchanged { None } else { Some(finished) },
        source: Entry { oid: f.entry.oid, mode: f.entry.mode },
        profile: profiler.finish(),
    })
}

/// Profile tables of a tree (the output of a `--run` transformation), path below `data/` → profile.
pub fn profile_tables(
    repo: &Repo,
    branch: &str,
    files: &[DataFile],
    interrupt: &Interrupt,
) -> Result<BTreeMap<String, TableProfile>> {
    let git = repo.git();
    let extensions = repo.config().tables.extensions();
    let inputs = files
        .iter()
        .filter_map(|f| Format::of(&f.rel, &extensions).map(|fmt| (f, fmt)))
        .map(|(f, fmt)| Ok((f.rel.clone(), fmt, open_input(git, repo.store(), branch, f)?)))
        .collect::<Result<Vec<_>>>()?;
    inputs
        .into_par_iter()
        .map(|(rel, fmt, input)| {
            let shown = format!("{DATA_DIR}/{rel}");
            let mut reader =
                TableReader::open(input, fmt, &ReadOptions::default()).map_err(in_table(&shown))?;
            let mut profiler = Profiler::new(reader.columns());
            while let Some(batch) = reader.next_batch().map_err(in_table(&shown))? {
                interrupt.check("clean")?;
                let keep = vec![true; batch.len()];
                profiler.observe(reader.columns(), &batch, &keep);
            }
            Ok((rel, profiler.finish()))
        })
        .collect()
}

/// `profile.json` of a clean commit: `{"schema": 1, "tables": {path: profile}}`.
pub fn profile_json(profiles: &BTreeMap<String, TableProfile>) -> Result<String> {
    let doc = serde_json::json!({ "schema": 1, "tables": profiles });
    let mut text = serde_json::to_string_pretty(&doc).context("write profile.json")?;
    text.push('\n');
    Ok(text)
}
