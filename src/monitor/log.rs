//! `mlgit monitor log` and `mlgit monitor label`: one append-only commit on `monitoring/<env>`
//! holding a batch of production records (or of labels that arrived later), through the same path
//! as every data write: the ingest policy reads the files once into the LFS store, the stored bytes
//! (not the source files, which could change meanwhile) are what is checked, and the branch moves
//! by the branch transaction, or not at all.
//!
//! A request batch is refused, and nothing is committed, when it is empty, when a record has no
//! serving tag, when a tag is not a snapshot of the repository, or when its columns do not match
//! the training table of its tag (a feature missing, or text where the model learned numbers).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use git2::Oid;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::branch::{
    last_seq, BatchKind, BatchManifest, MonitoringBranch, Window, BATCHES_DIR, LABELS_DIR, REQUESTS_DIR,
};
use super::cells;
use super::reference::{ref_table, snapshot_of, Kind, RefTable};
use super::settings::MonitorSettings;
use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::ingest::{self, Ingested, LfsRule, Policy, WalkedFile};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::trailers::Message;
use crate::repo::transaction::{Change, Step, Transaction, TxOptions};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::{host_name, user_name, Repo};
use crate::store::Pointer;
use crate::table::{Format, Input, ReadOptions, TableReader};

/// Trailer keys of monitoring commits.
pub mod keys {
    pub const ENVIRONMENT: &str = "Mlgit-Environment";
    pub const BATCH: &str = "Mlgit-Batch";
    pub const KIND: &str = "Mlgit-Monitoring";
    pub const TAGS: &str = "Mlgit-Tags";
    pub const ROWS_PER_TAG: &str = "Mlgit-Rows-Per-Tag";
    pub const WINDOW_START: &str = "Mlgit-Window-Start";
    pub const WINDOW_END: &str = "Mlgit-Window-End";
    pub const ROWS: &str = "Mlgit-Rows";
    pub const ALERT: &str = "Mlgit-Alert";
}

/// Rows named in a refusal.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub env: String,
    pub source: PathBuf,
    /// The serving tag of every record (else each record's tag column).
    pub tag: Option<String>,
    pub message: Option<String>,
    pub kind: BatchKind,
    pub interrupt: Interrupt,
}

/// The result of `monitor log` / `monitor label` (also its `--json` form).
#[derive(Debug, Clone, Serialize)]
pub struct LogOutcome {
    pub env: String,
    pub branch: String,
    pub commit: String,
    pub previous: String,
    pub batch: String,
    pub kind: BatchKind,
    pub rows: u64,
    pub tags: BTreeMap<String, u64>,
    pub window: Window,
    pub files: Vec<String>,
    pub seconds: f64,
}

/// Log a batch of requests (or labels) on the environment's monitoring branch.
pub fn log(repo: &Repo, opts: &LogOptions, progress: &dyn Progress) -> Result<LogOutcome> {
    let start = Instant::now();
    let mb = MonitoringBranch::open(repo, &opts.env)?;
    if opts.kind == BatchKind::Labels && opts.tag.is_some() {
        return Err(Error::invalid(
            "--tag is for request batches; labels are joined to requests by request id",
        ));
    }
    let tx = Transaction::open(
        repo,
        &mb.branch,
        TxOptions { writer: "mlgit monitor".into(), ..Default::default() },
    )?;
    let files = walk_source(repo, &opts.source)?;
    let ext = repo.config().tables.extensions();
    let not_tables: Vec<&str> =
        files.iter().filter(|f| Format::of(&f.rel, &ext).is_none()).map(|f| f.rel.as_str()).collect();
    if !not_tables.is_empty() {
        return Err(Error::invalid(format!(
            "{} is not a table (CSV, TSV, JSONL or Parquet): {}",
            if not_tables.len() == 1 { "this file" } else { "these files" },
            not_tables.join(", ")
        ))
        .with_hint("monitoring batches are tables of records; `tables.extensions` in mlgit.yaml lists the extensions"));
    }

    // Stored first, checked from the store: what is checked is what gets committed.
    let dir = if opts.kind == BatchKind::Requests { REQUESTS_DIR } else { LABELS_DIR };
    let rule = LfsRule::for_kind(repo.config(), BranchKind::Monitoring)?;
    let lfs = |f: &WalkedFile| rule.storage(&format!("{dir}/batch/{}", f.rel), f.size()).lfs;
    let total: u64 = files.iter().map(|f| f.size()).sum();
    progress.begin("storing", files.len() as u64, total);
    let git_dir = repo.git().path().to_path_buf();
    let stored =
        ingest::ingest_files(&git_dir, repo.store(), &files, &lfs, &opts.interrupt, "monitor", progress)?;
    progress.end();

    if let Some(m) = &opts.message {
        if m.trim().is_empty() || m.lines().any(|l| l.trim_start().to_ascii_lowercase().starts_with("mlgit-"))
        {
            return Err(Error::invalid(
                "-m must be a non-empty message without lines starting with 'Mlgit-'",
            )
            .with_hint("mlgit writes the Mlgit-* trailers itself; CI and lineage read them"));
        }
    }
    let logged_at = chrono::Utc::now();
    let scan = match opts.kind {
        BatchKind::Requests => scan_requests(repo, &mb.settings, &files, &stored, opts)?,
        BatchKind::Labels => scan_labels(repo, &mb.settings, &files, &stored, opts)?,
    };
    let content = content_hash(&stored);
    let id = format!("{}-{}", logged_at.format("%Y%m%dT%H%M%SZ"), &content[..8]);
    refuse_duplicate(repo.git(), &mb.branch, Some(mb.tree), &content)?;
    let window = scan.window(logged_at);
    let paths: Vec<String> = files.iter().map(|f| format!("{dir}/{id}/{}", f.rel)).collect();
    let mut manifest = BatchManifest {
        schema: 1,
        id: id.clone(),
        seq: 0,
        kind: opts.kind,
        env: mb.env.clone(),
        files: paths.clone(),
        rows: scan.rows,
        tags: scan.tags.clone(),
        snapshots: scan.snapshots.clone(),
        content,
        tag_column: (opts.kind == BatchKind::Requests && opts.tag.is_none())
            .then(|| mb.settings.tag_column.clone()),
        tag_source: (opts.kind == BatchKind::Requests)
            .then(|| if opts.tag.is_some() { "flag" } else { "column" }.to_string()),
        tag: opts.tag.clone(),
        window: window.clone(),
        logged_at: logged_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        columns: scan.columns.clone(),
    };
    let message = commit_message(&mb, &manifest, opts, repo);
    opts.interrupt.check("monitor")?;

    let git = repo.git();
    ingest::write_pointer_blobs(git, &stored)?;
    let known: HashMap<Oid, bool> = stored.iter().map(|i| (i.blob, i.lfs)).collect();
    let out = tx.commit(|tip| {
        let mut edits = TreeEdits::new();
        for (path, i) in paths.iter().zip(&stored) {
            edits.set(path, Entry { oid: i.blob, mode: i.mode })?;
        }
        // Checked and numbered on the tip it lands on (again after a lost race).
        refuse_duplicate(git, &mb.branch, tip.map(|c| c.tree_id()), &manifest.content)?;
        manifest.seq = last_seq(git, tip.map(|c| c.tree_id()), &mb.branch)? + 1;
        let text = format!("{}\n", serde_json::to_string_pretty(&manifest).expect("a manifest serializes"));
        let manifest_blob = git.blob(text.as_bytes()).context("write the batch manifest")?;
        edits.set(&format!("{BATCHES_DIR}/{id}.json"), Entry::blob(manifest_blob))?;
        let tree = edits.write(git, tip.map(|c| c.tree_id()))?;
        let mut change = Change::new(tree, message.clone());
        change.pointers = known.clone();
        change.pointers.insert(manifest_blob, false);
        Ok(Step::Commit(Box::new(change)))
    })?;
    let commit = out.commit.ok_or_else(|| Error::invalid("the batch made no change to the branch"))?;
    Ok(LogOutcome {
        env: mb.env,
        branch: mb.branch,
        commit: commit.to_string(),
        previous: mb.tip.to_string(),
        batch: id,
        kind: opts.kind,
        rows: scan.rows,
        tags: scan.tags,
        window,
        files: paths,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The files of `--source`: a folder's tables, or one table file, by the ingest policy (no
/// symlinks, no special files, names a tree can hold).
fn walk_source(repo: &Repo, source: &Path) -> Result<Vec<WalkedFile>> {
    let meta = std::fs::symlink_metadata(source)
        .map_err(|e| Error::io("read", source, e).with_hint("check the path given to --source"))?;
    let policy = Policy { follow_symlinks: false, follow_option: None };
    let canon = std::fs::canonicalize(source).map_err(|e| Error::io("resolve", source, e))?;
    for git_dir in [repo.git().path(), repo.git().commondir()] {
        if std::fs::canonicalize(git_dir).is_ok_and(|g| canon.starts_with(g)) {
            return Err(Error::invalid(format!(
                "--source {} is inside the repository's git folder",
                source.display()
            ))
            .with_hint("give the file or folder the serving side wrote"));
        }
    }
    let files = if meta.file_type().is_symlink() {
        return Err(Error::invalid(format!("--source {} is a symlink", source.display()))
            .with_hint("give the file itself: a link could be changed to point elsewhere while it is read"));
    } else if meta.is_dir() {
        ingest::walk(source, &[], &policy)?
    } else if meta.is_file() {
        let parent = source.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::invalid(format!("--source {} has a name that is not UTF-8", source.display()))
        })?;
        ingest::walk_filtered(parent, &[], &policy, &|rel, is_dir| is_dir || rel != name)?
    } else {
        return Err(Error::invalid(format!("--source {} is not a file or a folder", source.display()))
            .with_hint("give a table file (CSV, TSV, JSONL, Parquet) or a folder of them"));
    };
    if files.is_empty() {
        return Err(Error::invalid(format!("--source {} holds no files", source.display()))
            .with_hint("an empty batch has nothing to log"));
    }
    Ok(files)
}

/// The hex sha256 of the files' own sha256s, in path order. A batch id is
/// `<UTC yyyymmddThhmmssZ>-<its first 8 hex>`.
fn content_hash(stored: &[Ingested]) -> String {
    let mut h = Sha256::new();
    for i in stored {
        h.update(i.sha256.0);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The same bytes logged again (a retried upload, two nodes shipping one file) would count every
/// record twice: refused, naming the batch that has them.
fn refuse_duplicate(git: &git2::Repository, branch: &str, tree: Option<Oid>, content: &str) -> Result<()> {
    let Some(tree) = tree else { return Ok(()) };
    let batches = super::branch::read_manifests(git, tree, branch)?;
    let Some(same) = batches.iter().find(|m| m.content == content) else { return Ok(()) };
    Err(Error::new(
        crate::error::ErrorKind::AlreadyExists,
        format!(
            "these files were already logged on '{}' as batch {} ({} records, logged {}); nothing was committed",
            branch, same.id, same.rows, same.logged_at
        ),
    )
    .with_hint("a batch is logged once; if the serving side really sent the same records twice, say so in the data (e.g. a new request id)"))
}

/// A serving tag must be a name the trailers can hold: no `,` or `=` (their separators), no
/// spaces or control characters.
fn check_tag_text(tag: &str, origin: &str) -> Result<()> {
    if tag.chars().any(|c| c == ',' || c == '=' || c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!("the tag {tag:?} ({origin}) contains ',', '=', a space or a control character"))
            .with_hint("snapshot tags made by `mlgit train-tag` never do; give the tag of the snapshot that served the records"));
    }
    Ok(())
}

fn commit_message(mb: &MonitoringBranch, m: &BatchManifest, opts: &LogOptions, repo: &Repo) -> String {
    let user = opts.message.as_deref();
    let tags: Vec<&str> = m.tags.keys().map(String::as_str).collect();
    let subject = match (user, m.kind) {
        (Some(s), _) => s.to_string(),
        (None, BatchKind::Requests) => {
            format!("monitor log: {} records served by {}", m.rows, tags.join(", "))
        }
        (None, BatchKind::Labels) => format!("monitor label: {} labels", m.rows),
    };
    let per_tag: Vec<String> = m.tags.iter().map(|(t, n)| format!("{t}={n}")).collect();
    let mut msg = Message::new(subject)
        .trailer(keys::ENVIRONMENT, &mb.env)
        .trailer(keys::KIND, if m.kind == BatchKind::Requests { "requests" } else { "labels" })
        .trailer(keys::BATCH, &m.id)
        .trailer(keys::ROWS, m.rows);
    if m.kind == BatchKind::Requests {
        msg = msg.trailer(keys::TAGS, tags.join(",")).trailer(keys::ROWS_PER_TAG, per_tag.join(","));
    }
    msg.trailer(keys::WINDOW_START, &m.window.start)
        .trailer(keys::WINDOW_END, &m.window.end)
        .trailer(crate::repo::trailers::keys::SOURCE, crate::repo::absolute(&opts.source).display())
        .trailer(crate::repo::trailers::keys::INGESTED_AT, &m.logged_at)
        .trailer(crate::repo::trailers::keys::HOST, host_name())
        .trailer(crate::repo::trailers::keys::USER, user_name(repo.git()))
        .render()
}

/// What reading a batch found.
struct Scan {
    rows: u64,
    tags: BTreeMap<String, u64>,
    /// The snapshot commit each tag named when the batch was logged.
    snapshots: BTreeMap<String, String>,
    columns: Vec<String>,
    first: Option<i64>,
    last: Option<i64>,
}

impl Scan {
    fn window(&self, logged_at: chrono::DateTime<chrono::Utc>) -> Window {
        match (self.first, self.last) {
            (Some(a), Some(b)) => {
                Window { start: cells::format_micros(a), end: cells::format_micros(b), from: "column".into() }
            }
            _ => {
                let t = logged_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                Window { start: t.clone(), end: t, from: "logged_at".into() }
            }
        }
    }

    fn see_time(&mut self, us: i64) {
        self.first = Some(self.first.map_or(us, |f| f.min(us)));
        self.last = Some(self.last.map_or(us, |l| l.max(us)));
    }
}

/// Open a stored batch file as a table (verified against its pointer as it is read).
fn open_stored(repo: &Repo, f: &WalkedFile, i: &Ingested) -> Result<TableReader> {
    let format = Format::of(&f.rel, &repo.config().tables.extensions()).expect("checked to be a table");
    let input = if i.lfs {
        let pointer = Pointer { oid: i.sha256, size: i.size };
        Input::Verified { file: repo.store().open(&pointer)?, pointer, name: f.rel.clone() }
    } else {
        let blob = repo.git().find_blob(i.blob).context(format!("read the stored {}", f.rel))?;
        Input::Bytes(blob.content().to_vec())
    };
    TableReader::open(input, format, &ReadOptions::default()).map_err(crate::data::table_io::in_table(&f.rel))
}

/// A request's serving tag, resolved once per distinct tag.
struct TagCheck<'a> {
    repo: &'a Repo,
    settings: &'a MonitorSettings,
    tables: HashMap<String, RefTable>,
}

impl TagCheck<'_> {
    /// The training table of `tag` (refuses an unknown tag); `columns` are the batch's.
    fn table(&mut self, tag: &str, columns: Option<&[String]>) -> Result<&RefTable> {
        if !self.tables.contains_key(tag) {
            check_tag_text(tag, "a serving tag")?;
            let snap = snapshot_of(self.repo, tag)?;
            let t = ref_table(self.repo, snap, self.settings, columns)?;
            self.tables.insert(tag.to_string(), t);
        }
        Ok(&self.tables[tag])
    }
}

/// A column of a batch that a tag's training table has as numbers, and the first text that is
/// not one.
struct NotANumber {
    tag: String,
    column: String,
    file: String,
    line: u64,
    value: String,
}

fn scan_requests(
    repo: &Repo,
    settings: &MonitorSettings,
    files: &[WalkedFile],
    stored: &[Ingested],
    opts: &LogOptions,
) -> Result<Scan> {
    let mut scan = Scan {
        rows: 0,
        tags: BTreeMap::new(),
        snapshots: BTreeMap::new(),
        columns: Vec::new(),
        first: None,
        last: None,
    };
    let mut check = TagCheck { repo, settings, tables: HashMap::new() };
    if let Some(t) = &opts.tag {
        check_tag_text(t, "--tag")?;
        snapshot_of(repo, t)?;
    }
    let mut untagged: Vec<String> = Vec::new();
    let mut untagged_count = 0u64;
    let mut disagree: Option<String> = None;
    let mut not_number: Option<NotANumber> = None;
    // Per file and tag: the file's columns, for the missing-column check (each file on its own:
    // a feature missing from one file of a folder is missing for its records).
    let mut columns_of_tag: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let mut bad_score: Option<String> = None;
    for (f, i) in files.iter().zip(stored) {
        opts.interrupt.check("monitor")?;
        let mut reader = open_stored(repo, f, i)?;
        let mut numeric_cols: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        let mut file_tags: HashSet<String> = HashSet::new();
        while let Some(batch) = reader.next_batch()? {
            refuse_bad_records(&f.rel, &batch)?;
            let cols = reader.columns();
            for c in cols {
                if !scan.columns.contains(&c.name) {
                    scan.columns.push(c.name.clone());
                }
            }
            refuse_repeated_names(&f.rel, cols, &settings.special_columns())?;
            let tag_col = cols.iter().position(|c| c.name == settings.tag_column);
            let time_col = cols.iter().position(|c| c.name == settings.time_column);
            let score_col = cols.iter().position(|c| c.name == settings.score_column);
            if opts.tag.is_none() && tag_col.is_none() {
                return Err(Error::invalid(format!(
                    "{} has no '{}' column, so its records do not say which model served them",
                    f.rel, settings.tag_column
                ))
                .with_hint("add the serving snapshot's tag to every record, pass --tag TAG for the whole batch, or set `tag_column` in monitor.yaml"));
            }
            let mut last_tag: Option<String> = None;
            for row in 0..batch.len() {
                scan.rows += 1;
                let cell_tag = tag_col.and_then(|c| cells::text(batch.cell(row, c)));
                let tag = match (&opts.tag, cell_tag) {
                    (Some(t), Some(c)) if &c != t => {
                        disagree.get_or_insert(format!(
                            "{} line {} says '{c}' but --tag is '{t}'",
                            f.rel,
                            batch.line(row)
                        ));
                        continue;
                    }
                    (Some(t), _) => t.clone(),
                    (None, Some(c)) => c,
                    (None, None) => {
                        untagged_count += 1;
                        if untagged.len() < EXAMPLES {
                            untagged.push(format!("{} line {}", f.rel, batch.line(row)));
                        }
                        continue;
                    }
                };
                if last_tag.as_deref() != Some(tag.as_str()) {
                    if !file_tags.contains(&tag) {
                        let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
                        let table = check.table(&tag, Some(&names))?;
                        let features: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                        refuse_repeated_names(&f.rel, cols, &features)?;
                        let numeric: Vec<(usize, String)> = table
                            .columns
                            .iter()
                            .filter(|c| c.kind == Kind::Numeric)
                            .filter_map(|c| {
                                cols.iter().position(|k| k.name == c.name).map(|i| (i, c.name.clone()))
                            })
                            .collect();
                        numeric_cols.insert(tag.clone(), numeric);
                        file_tags.insert(tag.clone());
                        columns_of_tag
                            .entry((f.rel.clone(), tag.clone()))
                            .or_default()
                            .extend(cols.iter().map(|c| c.name.clone()));
                    }
                    last_tag = Some(tag.clone());
                }
                match scan.tags.get_mut(&tag) {
                    Some(n) => *n += 1,
                    None => {
                        scan.tags.insert(tag.clone(), 1);
                    }
                }
                if not_number.is_none() {
                    for (ci, name) in &numeric_cols[&tag] {
                        let cell = batch.cell(row, *ci);
                        if !cells::is_null(cell) && !cells::is_plain_number(cell) {
                            not_number = Some(NotANumber {
                                tag: tag.clone(),
                                column: name.clone(),
                                file: f.rel.clone(),
                                line: batch.line(row),
                                value: cells::text(cell).unwrap_or_default(),
                            });
                            break;
                        }
                    }
                }
                if let (Some(c), None) = (score_col, &bad_score) {
                    let cell = batch.cell(row, c);
                    let ok = cells::plain_number(cell).is_some_and(|x| (0.0..=1.0).contains(&x));
                    if !cells::is_null(cell) && !ok {
                        bad_score = Some(format!(
                            "{} line {} has {:?} in '{}'",
                            f.rel,
                            batch.line(row),
                            cells::text(cell).unwrap_or_default(),
                            settings.score_column
                        ));
                    }
                }
                if let Some(us) = time_col.and_then(|c| cells::time_micros(batch.cell(row, c))) {
                    scan.see_time(us);
                }
            }
        }
    }
    for tag in scan.tags.keys() {
        let commit = match check.tables.get(tag) {
            Some(t) => t.snapshot.commit,
            None => snapshot_of(repo, tag)?.commit,
        };
        scan.snapshots.insert(tag.clone(), commit.to_string());
    }
    if let Some(b) = bad_score {
        return Err(Error::invalid(format!("a score is not a probability: {b}"))
            .with_hint("the score column holds the predicted probability of the positive class, between 0 and 1; rename the column in monitor.yaml (`score_column`) if yours holds something else"));
    }
    if scan.rows == 0 {
        return Err(Error::invalid(format!("the batch {} holds no records", opts.source.display()))
            .with_hint("an empty batch has nothing to log; check that the serving side wrote its records"));
    }
    if let Some(d) = disagree {
        return Err(Error::invalid(format!("the tag column and --tag disagree: {d}"))
            .with_hint("leave out --tag to take each record's own tag, or fix the records"));
    }
    if untagged_count > 0 {
        return Err(Error::invalid(format!(
            "{untagged_count} of {} records have no serving tag in column '{}' (first: {})",
            scan.rows,
            settings.tag_column,
            untagged.join(", ")
        ))
        .with_hint("every record must name the snapshot tag that served it; pass --tag TAG if one model served the whole batch"));
    }
    let mut checked: Vec<&(String, String)> = columns_of_tag.keys().collect();
    checked.sort();
    for key in checked {
        let (file, tag) = key;
        let seen = &columns_of_tag[key];
        let table = check.table(tag, None)?;
        let special = special_columns(settings, table);
        let missing: Vec<&str> = table
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !special.contains(n) && !settings.ignore.iter().any(|i| i == n) && !seen.contains(*n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "the schema does not match: the records of {file} served by '{tag}' lack {} of its training table {} ({})",
                if missing.len() == 1 { "a column" } else { "columns" },
                table.name,
                missing.join(", ")
            ))
            .with_hint("log the features the model was given, under the training data's column names; list a column in monitor.yaml's `ignore` to leave it out on purpose"));
        }
    }
    if let Some(n) = not_number {
        return Err(Error::invalid(format!(
            "the schema does not match: column '{}' holds numbers in the training data of '{}', but {} line {} has {:?}",
            n.column, n.tag, n.file, n.line, n.value
        ))
        .with_hint("log the values the model was given; a retyped feature cannot be compared with its training data"));
    }
    Ok(scan)
}

/// A record the reader could not read (wrong field count, bad encoding, a line that is not JSON)
/// refuses the batch: monitoring data is evidence, and a silently dropped record would bias it.
fn refuse_bad_records(file: &str, batch: &crate::table::Batch) -> Result<()> {
    let Some(first) = batch.bad().first() else { return Ok(()) };
    Err(Error::invalid(format!(
        "{file}: {} record(s) cannot be read, first at line {}: {} ({})",
        batch.bad().len(),
        first.line,
        first.reason,
        first.check
    ))
    .with_hint("fix the file the serving side wrote, then log it again; nothing was committed"))
}

/// A header that names a column twice (read as `x` and `x.1`) makes "the" value of `x`
/// ambiguous: refused for the monitoring columns and the features.
fn refuse_repeated_names(file: &str, cols: &[crate::table::Column], names: &[&str]) -> Result<()> {
    for c in cols {
        let Some((base, n)) = c.name.rsplit_once('.') else { continue };
        if n.parse::<u32>().is_ok() && names.contains(&base) && cols.iter().any(|k| k.name == base) {
            return Err(Error::invalid(format!(
                "{file}: its header names the column '{base}' more than once"
            ))
            .with_hint("which of them holds the value is ambiguous; write each column once"));
        }
    }
    Ok(())
}

/// The columns of a batch that are not features.
pub fn special_columns<'a>(settings: &'a MonitorSettings, table: &'a RefTable) -> Vec<&'a str> {
    let mut out = settings.special_columns();
    if let Some(l) = &table.split_label {
        out.push(l.as_str());
    }
    out
}

fn scan_labels(
    repo: &Repo,
    settings: &MonitorSettings,
    files: &[WalkedFile],
    stored: &[Ingested],
    opts: &LogOptions,
) -> Result<Scan> {
    let mut scan = Scan {
        rows: 0,
        tags: BTreeMap::new(),
        snapshots: BTreeMap::new(),
        columns: Vec::new(),
        first: None,
        last: None,
    };
    let mut no_id = (0u64, Vec::new());
    for (f, i) in files.iter().zip(stored) {
        opts.interrupt.check("monitor")?;
        let mut reader = open_stored(repo, f, i)?;
        while let Some(batch) = reader.next_batch()? {
            refuse_bad_records(&f.rel, &batch)?;
            let cols = reader.columns();
            let find = |name: &str| cols.iter().position(|c| c.name == name);
            let (Some(id_col), Some(label_col)) =
                (find(&settings.request_id_column), find(&settings.label_column))
            else {
                let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::invalid(format!(
                    "{} needs the columns '{}' and '{}' (it has: {})",
                    f.rel,
                    settings.request_id_column,
                    settings.label_column,
                    names.join(", ")
                ))
                .with_hint("a label file joins ground truth to logged requests by request id; set `request_id_column` and `label_column` in monitor.yaml if yours are named otherwise"));
            };
            for c in cols {
                if !scan.columns.contains(&c.name) {
                    scan.columns.push(c.name.clone());
                }
            }
            let time_col = find(&settings.time_column);
            for row in 0..batch.len() {
                scan.rows += 1;
                if cells::is_null(batch.cell(row, id_col)) || cells::is_null(batch.cell(row, label_col)) {
                    no_id.0 += 1;
                    if no_id.1.len() < EXAMPLES {
                        no_id.1.push(format!("{} line {}", f.rel, batch.line(row)));
                    }
                }
                if let Some(us) = time_col.and_then(|c| cells::time_micros(batch.cell(row, c))) {
                    scan.see_time(us);
                }
            }
        }
    }
    if scan.rows == 0 {
        return Err(Error::invalid(format!("{} holds no labels", opts.source.display()))
            .with_hint("an empty batch has nothing to log"));
    }
    if no_id.0 > 0 {
        return Err(Error::invalid(format!(
            "{} of {} labels have no request id in column '{}' or no label in '{}' (first: {})",
            no_id.0,
            scan.rows,
            settings.request_id_column,
            settings.label_column,
            no_id.1.join(", ")
        ))
        .with_hint("a label without its request id cannot be joined to the prediction it judges, and an empty label judges nothing"));
    }
    Ok(scan)
}
