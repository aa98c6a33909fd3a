//! `mlgit clean`: derive the `clean` branch from a `raw` commit. Every file under `data/` is checked
//! by the built-in validators (reading from the LFS store only what a validator needs, in parallel,
//! re-hashing what it reads); files that fail are left out and listed with the reason in
//! `.mlgit/clean-report.json`. Without `--run` the clean tree reuses raw's blob and pointer ids
//! (zero-copy). With `--run CMD` the validated data is materialized, CMD transforms it, and its
//! output becomes the clean data (see `transform.rs`); the script under `transform/` that ran is
//! committed with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::clean_tables::{self, TableClean};
use super::flow::{self, keys, DataFile, DATA_DIR};
use super::split::PROFILE_FILE;
use super::transform::{run_transform, transform_dir};
pub use super::transform::{TransformFile, TransformRecord};
use super::validate::{self, Problem};
use crate::config::{RecordLevel, Validators};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::trailers::{self, Message};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::Repo;
use crate::store::{LfsStore, Pointer};

/// Where the report lives in the clean tree.
pub const REPORT_PATH: &str = ".mlgit/clean-report.json";

#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    /// The raw branch (default: `branches.raw`).
    pub from: Option<String>,
    /// The clean branch (default: `branches.clean`).
    pub to: Option<String>,
    /// The raw commit to derive from (default: the tip of `from`).
    pub rev: Option<String>,
    /// A transformation command run with `sh -c`.
    pub run: Option<String>,
    /// Drop files whose content equals an earlier file's (also `clean.drop_duplicates`).
    pub drop_duplicates: bool,
    /// Keep today's file-level behaviour for tables too (also `clean.records: file`).
    pub file_level: bool,
    /// Set by Ctrl-C/TERM: stops validation, the transformation (and its whole process group) and
    /// the storing of its output; nothing is committed.
    pub interrupt: Interrupt,
}

/// A file left out of the clean data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Path in the raw tree (`data/...`).
    pub path: String,
    pub check: &'static str,
    pub reason: String,
}

/// What `.mlgit/clean-report.json` holds (deterministic: the same raw commit and settings give the
/// same bytes, so a re-run makes no new commit).
#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    pub schema: u32,
    pub source: SourceRef,
    pub validators: Validators,
    pub drop_duplicates: bool,
    pub files_in: u64,
    pub kept: u64,
    pub dropped: Vec<Dropped>,
    /// Files kept without a content check because they exceed [`MAX_VALIDATED_SIZE`].
    pub unchecked: Vec<String>,
    pub transform: Option<TransformRecord>,
    /// `record` or `file`: how tables were cleaned.
    pub records: &'static str,
    /// The text encoding tables were read with.
    pub encoding: String,
    /// Record-level clean of each table (bad records listed up to 1000 per file; counts exact).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableClean>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceRef {
    pub branch: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanOutcome {
    pub from: String,
    pub to: String,
    pub raw_commit: String,
    /// The clean branch's tip after the command (the new commit, or the old tip when unchanged).
    pub commit: String,
    pub previous: Option<String>,
    pub unchanged: bool,
    pub tree: String,
    pub files_in: u64,
    pub kept: u64,
    pub dropped: Vec<Dropped>,
    /// Dropped files per check (`empty`, `image`, `utf8`, `json`, `records`, `duplicate`).
    pub dropped_by_check: BTreeMap<String, u64>,
    /// Files kept without a content check because they exceed [`MAX_VALIDATED_SIZE`].
    pub unchecked: Vec<String>,
    /// Files and bytes whose content validation read (the rest were judged by size alone).
    pub read_files: u64,
    pub read_bytes: u64,
    pub transform: Option<TransformRecord>,
    /// Tables cleaned record by record.
    pub tables: Vec<TableClean>,
    pub records_in: u64,
    pub records_kept: u64,
    pub records_dropped: u64,
    /// Dropped records per check (`fields`, `encoding`, `json`, `schema`, `duplicate`).
    pub records_dropped_by_check: BTreeMap<String, u64>,
    /// Schemas this clean inferred and committed (`schema/<table>.json`).
    pub schemas_inferred: Vec<String>,
    /// Files whose columns differ from their table's schema.
    pub schema_changes: Vec<SchemaChange>,
    pub seconds: f64,
}

/// How one file's columns differ from its table's schema.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaChange {
    pub path: String,
    pub table: String,
    #[serde(flatten)]
    pub changes: crate::table::schema::ColumnChanges,
}

/// Run `mlgit clean`.
pub fn clean(repo: &Repo, opts: &CleanOptions, progress: &dyn Progress) -> Result<CleanOutcome> {
    let start = Instant::now();
    let config = repo.config();
    let git = repo.git();
    let from = opts.from.clone().unwrap_or_else(|| config.branches.raw.clone());
    let to = opts.to.clone().unwrap_or_else(|| config.branches.clean.clone());
    flow::require_data_branch(repo, &from, "--from")?;
    flow::require_data_branch(repo, &to, "--to")?;
    if from == to {
        return Err(Error::invalid(format!("--from and --to are both '{from}'"))
            .with_hint("clean reads one data branch (raw) and writes another (clean)"));
    }
    if repo.config().is_append_only(&to) {
        return Err(Error::invalid(format!("--to {to}: '{to}' is append-only; clean never writes there"))
            .with_hint("write the clean data to the clean branch (the default)"));
    }
    repo.require_branch(&to)?;
    // Refuse a dirty checkout of the target before any work (checked again just before writing).
    crate::repo::transaction::refuse_dirty_checkout(repo, &to, "mlgit clean")?;
    let raw = flow::source_commit(repo, &from, opts.rev.as_deref())?;
    let raw_id = raw.id();
    let files = flow::data_files(git, raw.tree_id())?;
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "'{from}' at {} has no files under {DATA_DIR}/: nothing to clean",
            short(raw_id)
        ))
        .with_hint("add data first: `mlgit commit-data --source <folder>`"));
    }
    let validators = config.clean.validators.clone();
    let drop_duplicates = opts.drop_duplicates || config.clean.drop_duplicates;
    let record_level = !opts.file_level && config.clean.records == RecordLevel::Record;
    let encoding = crate::table::Encoding::parse(&config.clean.encoding)?;
    let extensions = config.tables.extensions();
    let is_table = |f: &DataFile| {
        record_level
            && f.entry.mode != FileMode::Link
            && crate::table::Format::of(&f.rel, &extensions).is_some()
    };
    let clean_tip_tree = repo.require_branch(&to)?.tree_id();
    // Tables first: a schema file that does not parse stops the run before any other work.
    let tables: Vec<&DataFile> = files.iter().filter(|f| is_table(f)).collect();
    let mut known = flow::pointer_map(&files);
    let table_settings = clean_tables::Settings { encoding, drop_duplicates };
    let cleaned = if tables.is_empty() {
        None
    } else {
        Some(clean_tables::clean_tables(
            repo,
            &from,
            &to,
            Some(clean_tip_tree),
            &tables,
            &table_settings,
            &mut known,
            &opts.interrupt,
            progress,
        )?)
    };

    // Validate in parallel; only files a validator needs are read. Small files go to a pool sized
    // for I/O latency; large ones (held in memory while checked) to the CPU-sized pool, so memory
    // stays bounded by cores × MAX_VALIDATED_SIZE.
    let read_files = AtomicU64::new(0);
    let read_bytes = AtomicU64::new(0);
    progress.begin("validate", files.len() as u64, 0);
    let git_dir = git.path().to_path_buf();
    let store = repo.store();
    let (large, small): (Vec<usize>, Vec<usize>) = (0..files.len())
        .filter(|&i| !is_table(&files[i]))
        .partition(|&i| files[i].pointer.is_some_and(|p| p.size > LARGE_FILE));
    let check = |indices: &[usize]| -> Result<Vec<(usize, Verdict)>> {
        indices
            .par_iter()
            .map_init(
                || Repository::open(&git_dir),
                |g, &i| -> Result<(usize, Verdict)> {
                    let g = g.as_ref().map_err(|e| {
                        Error::new(ErrorKind::Git, format!("cannot open the repository: {e}"))
                    })?;
                    opts.interrupt.check("clean")?;
                    let verdict =
                        check_file(g, store, &from, &files[i], &validators, &read_files, &read_bytes)?;
                    progress.advance(1, 0);
                    Ok((i, verdict))
                },
            )
            .collect()
    };
    let mut verdicts = vec![Verdict::Valid; files.len()];
    for (i, v) in io_pool()?.install(|| check(&small))?.into_iter().chain(check(&large)?) {
        verdicts[i] = v;
    }
    progress.end();

    let mut dropped = Vec::new();
    let mut unchecked = Vec::new();
    let mut seen: HashMap<ContentId, &str> = HashMap::new();
    for (f, verdict) in files.iter().zip(verdicts) {
        let path = format!("{DATA_DIR}/{}", f.rel);
        if is_table(f) {
            // Cleaned record by record; a table with no record left is dropped whole.
            if let Some(t) = cleaned.as_ref().and_then(|c| c.tables.iter().find(|t| t.path == f.rel)) {
                if let Some(why) = &t.unreadable {
                    dropped.push(Dropped { path, check: "format", reason: why.clone() });
                } else if t.kept == 0 {
                    let reason = if t.rows_in == 0 {
                        "the table has no records".to_string()
                    } else {
                        format!("none of its {} record(s) is valid", t.rows_in)
                    };
                    dropped.push(Dropped { path, check: "records", reason });
                }
            }
            continue;
        }
        let too_large = match verdict {
            Verdict::Invalid(p) => {
                dropped.push(Dropped { path, check: p.check, reason: p.reason });
                continue;
            }
            Verdict::TooLarge => true,
            Verdict::Valid => false,
        };
        if drop_duplicates {
            let id = match f.pointer {
                Some(p) => ContentId::Lfs(p.oid.0),
                None => ContentId::Blob(f.entry.oid),
            };
            match seen.get(&id) {
                Some(first) => {
                    dropped.push(Dropped {
                        path,
                        check: "duplicate",
                        reason: format!("same content as {DATA_DIR}/{first}"),
                    });
                    continue;
                }
                None => {
                    seen.insert(id, f.rel.as_str());
                }
            }
        }
        if too_large {
            unchecked.push(path);
        }
    }
    let files_in = files.len() as u64;

    // The validated data: raw's data tree minus the dropped files (untouched folders keep their ids).
    let raw_data = flow::data_tree(git, raw.tree_id())?.ok_or_else(|| {
        Error::not_found(format!("'{from}' at {} has no {DATA_DIR}/ folder", short(raw_id)))
    })?;
    let mut minus = TreeEdits::new();
    for d in &dropped {
        minus.remove(d.path.strip_prefix("data/").unwrap_or(&d.path))?;
    }
    if let Some(c) = &cleaned {
        for (rel, entry) in &c.entries {
            minus.set(rel, *entry)?;
        }
    }
    let validated = minus.write(git, Some(raw_data))?;
    let kept = files_in - dropped.len() as u64;
    if kept == 0 {
        return Err(Error::invalid(format!(
            "every one of the {files_in} file(s) of '{from}' at {} failed validation: nothing to commit",
            short(raw_id)
        ))
        .with_hint("look at the reasons with `mlgit clean --json`, or turn validators off under clean.validators in mlgit.yaml"));
    }

    let (data_tree, transform) = match &opts.run {
        None => (validated, None),
        Some(cmd) => {
            let (tree, record, transform_tree) =
                run_transform(repo, cmd, raw_id, validated, clean_tip_tree, &opts.interrupt, progress)?;
            (tree, Some((record, transform_tree)))
        }
    };
    // profile.json describes the clean data: the tables as cleaned, or what the transformation made.
    let profiles = match (&transform, &cleaned) {
        (Some(_), _) if record_level => {
            let out_files = flow::files_under(git, data_tree)?;
            for f in &out_files {
                known.insert(f.entry.oid, f.pointer.is_some());
            }
            Some(clean_tables::profile_tables(repo, &to, &out_files, &opts.interrupt)?)
        }
        (None, Some(c)) => Some(c.profiles.clone()),
        _ => None,
    };
    let profile_blob = match profiles.filter(|p| !p.is_empty()) {
        Some(p) => Some(git.blob(clean_tables::profile_json(&p)?.as_bytes()).context("write profile.json")?),
        None => None,
    };
    let mut schema_blobs = Vec::new();
    if let Some(c) = &cleaned {
        for (name, schema) in &c.new_schemas {
            let blob = git.blob(schema.to_json().as_bytes()).context("write a schema")?;
            schema_blobs.push((clean_tables::schema_path(name), blob));
        }
    }

    let report = CleanReport {
        schema: 1,
        source: SourceRef { branch: from.clone(), commit: raw_id.to_string() },
        validators,
        drop_duplicates,
        files_in,
        kept,
        dropped: dropped.clone(),
        unchecked: unchecked.clone(),
        transform: transform.as_ref().map(|(r, _)| r.clone()),
        records: if record_level { "record" } else { "file" },
        encoding: config.clean.encoding.clone(),
        tables: cleaned.as_ref().map(|c| c.tables.clone()).unwrap_or_default(),
    };
    let mut report_text = serde_json::to_string_pretty(&report).context("write the clean report")?;
    report_text.push('\n');
    let report_blob = git.blob(report_text.as_bytes()).context("write the clean report")?;
    let message = message(&from, raw_id, &report);
    let transform_dir = transform_dir(repo);

    // The last safe point: after this the branch may move.
    opts.interrupt.check("clean")?;
    let derived = flow::commit_derived(repo, &to, raw_id, &message, &known, |base| {
        let mut edits = TreeEdits::new();
        edits.graft(DATA_DIR, data_tree)?;
        edits.set(REPORT_PATH, Entry::blob(report_blob))?;
        match profile_blob {
            Some(b) => edits.set(PROFILE_FILE, Entry::blob(b))?,
            None => edits.remove(PROFILE_FILE)?,
        }
        for (path, blob) in &schema_blobs {
            edits.set(path, Entry::blob(*blob))?;
        }
        if let Some((_, t)) = &transform {
            match t {
                Some(tree) => edits.graft(&transform_dir, *tree)?,
                None => edits.remove(&transform_dir)?,
            }
        }
        edits.write(git, base)
    })?;

    let mut dropped_by_check = BTreeMap::new();
    for d in &dropped {
        *dropped_by_check.entry(d.check.to_string()).or_insert(0) += 1;
    }
    let schemas_inferred: Vec<String> = cleaned
        .as_ref()
        .map(|c| c.new_schemas.iter().map(|(n, _)| clean_tables::schema_path(n)).collect())
        .unwrap_or_default();
    let tables_report = cleaned.map(|c| c.tables).unwrap_or_default();
    let mut records_dropped_by_check: BTreeMap<String, u64> = BTreeMap::new();
    for t in &tables_report {
        for (check, n) in &t.by_check {
            *records_dropped_by_check.entry(check.clone()).or_insert(0) += n;
        }
    }
    Ok(CleanOutcome {
        from,
        to,
        raw_commit: raw_id.to_string(),
        commit: derived.commit.to_string(),
        previous: derived.previous.map(|p| p.to_string()),
        unchanged: derived.unchanged,
        tree: derived.tree.to_string(),
        files_in,
        kept,
        dropped,
        dropped_by_check,
        unchecked,
        read_files: read_files.into_inner(),
        read_bytes: read_bytes.into_inner(),
        transform: transform.map(|(r, _)| r),
        records_in: tables_report.iter().map(|t| t.rows_in).sum(),
        records_kept: tables_report.iter().map(|t| t.kept).sum(),
        records_dropped: tables_report.iter().map(|t| t.dropped).sum(),
        records_dropped_by_check,
        schemas_inferred,
        schema_changes: tables_report
            .iter()
            .filter(|t| !t.schema_changes.is_empty())
            .map(|t| SchemaChange {
                path: format!("{DATA_DIR}/{}", t.path),
                table: t.table.clone(),
                changes: t.schema_changes.clone(),
            })
            .collect(),
        tables: tables_report,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// LFS files above this size are validated on the CPU-sized pool (see [`clean`]).
const LARGE_FILE: u64 = 8 << 20;

/// Files a validator would read but that are larger than this are kept without a content check
/// and listed as `unchecked` (validators hold a file in memory while checking it).
pub const MAX_VALIDATED_SIZE: u64 = 256 << 20;

/// The verdict on one file.
#[derive(Debug, Clone)]
enum Verdict {
    Valid,
    Invalid(Problem),
    TooLarge,
}

impl From<Option<Problem>> for Verdict {
    fn from(p: Option<Problem>) -> Verdict {
        p.map(Verdict::Invalid).unwrap_or(Verdict::Valid)
    }
}

/// Threads that read objects for validation. Reading many small files from a cold cache is bound
/// by I/O latency, not CPU: more requests in flight help (measured in docs/performance-dataflow.md:
/// 50,000 files cold, 15 s with 2 threads, 6 s with 32).
fn io_pool() -> Result<rayon::ThreadPool> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads((cpus * 8).clamp(16, 64))
        .thread_name(|i| format!("mlgit-validate-{i}"))
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the validation threads: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ContentId {
    Lfs([u8; 32]),
    Blob(Oid),
}

fn short(id: Oid) -> String {
    id.to_string()[..7].to_string()
}

/// Validate one file, reading (and re-hashing) its content only when a validator needs it.
fn check_file(
    git: &Repository,
    store: &LfsStore,
    branch: &str,
    f: &DataFile,
    v: &Validators,
    read_files: &AtomicU64,
    read_bytes: &AtomicU64,
) -> Result<Verdict> {
    let path = format!("{DATA_DIR}/{}", f.rel);
    if f.entry.mode == FileMode::Link {
        return Ok(Verdict::Valid);
    }
    let size = match f.pointer {
        Some(p) => p.size,
        None => git
            .odb()
            .and_then(|o| o.read_header(f.entry.oid))
            .map(|(n, _)| n as u64)
            .context(format!("read {path}"))?,
    };
    if !validate::needs_content(&f.rel, size, v) {
        return Ok(validate::validate_size(size, v).into());
    }
    if size > MAX_VALIDATED_SIZE {
        return Ok(Verdict::TooLarge);
    }
    let data = match f.pointer {
        Some(p) => read_lfs(store, branch, &path, &p)?,
        None => git.find_blob(f.entry.oid).context(format!("read {path}"))?.content().to_vec(),
    };
    read_files.fetch_add(1, Ordering::Relaxed);
    read_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    Ok(validate::validate(&f.rel, &data, v).into())
}

/// Read an LFS object and check that it hashes to its pointer: validating corrupt bytes would
/// give a verdict about the wrong file.
fn read_lfs(store: &LfsStore, branch: &str, path: &str, p: &Pointer) -> Result<Vec<u8>> {
    if !store.object_path(&p.oid).exists() {
        return Err(Error::not_found(format!(
            "the LFS object of {branch}:{path} ({}) is not in the local store",
            p.oid
        ))
        .with_hint(format!("fetch it with `git lfs fetch origin {branch}`, then retry; `mlgit verify {branch}` lists every missing object")));
    }
    let data = store.read(p)?;
    let actual = Sha256::digest(&data);
    if actual.as_slice() != p.oid.0 || data.len() as u64 != p.size {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "the LFS object of {branch}:{path} is corrupt: {} holds {} bytes that do not hash to {}",
                store.object_path(&p.oid).display(),
                data.len(),
                p.oid
            ),
        )
        .with_hint(format!(
            "run `mlgit verify {branch}` to list every damaged object, fetch good copies (`git lfs fetch`), then retry; nothing was committed"
        )));
    }
    Ok(data)
}

fn message(from: &str, raw: Oid, r: &CleanReport) -> String {
    let mut subject = format!("Clean {from} {}: {} of {} files kept", short(raw), r.kept, r.files_in);
    if let Some(t) = &r.transform {
        subject.push_str(&format!(", transformed into {} files", t.output_files));
    }
    let mut body = String::new();
    if r.dropped.is_empty() {
        body.push_str("No file dropped.\n");
    } else {
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for d in &r.dropped {
            *by.entry(d.check).or_insert(0) += 1;
        }
        let parts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {k}")).collect();
        body.push_str(&format!("Dropped {} file(s): {}.\n", r.dropped.len(), parts.join(", ")));
        for d in r.dropped.iter().take(20) {
            body.push_str(&format!("  {}: {}\n", d.path, d.reason));
        }
        if r.dropped.len() > 20 {
            body.push_str(&format!("  … and {} more\n", r.dropped.len() - 20));
        }
        body.push_str(&format!("Every dropped file and its reason: {REPORT_PATH}\n"));
    }
    if !r.unchecked.is_empty() {
        body.push_str(&format!(
            "{} file(s) over {} MiB kept without a content check (listed in {REPORT_PATH}).\n",
            r.unchecked.len(),
            MAX_VALIDATED_SIZE >> 20
        ));
    }
    let mut m = Message::new(subject)
        .body(body)
        .trailer(trailers::keys::DERIVED_FROM, format!("{from} {raw}"))
        .trailer(keys::FILES_KEPT, r.kept)
        .trailer(keys::FILES_DROPPED, r.dropped.len());
    if let Some(t) = &r.transform {
        m = m.trailer(keys::TRANSFORM_COMMAND, &t.command);
        if let Some(tree) = &t.tree {
            m = m.trailer(keys::TRANSFORM, format!("{} {tree}", t.dir));
        }
    }
    m.render()
}

/// Parse a clean commit's report, if its tree has one.
pub fn read_report(git: &Repository, tree: Oid) -> Result<Option<serde_json::Value>> {
    let Some(e) = crate::repo::tree::entry_at(git, tree, REPORT_PATH)? else { return Ok(None) };
    let blob = git.find_blob(e.oid).context(format!("read {REPORT_PATH}"))?;
    Ok(serde_json::from_slice(blob.content()).ok())
}
