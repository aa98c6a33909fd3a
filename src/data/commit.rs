//! `mlgit commit-data`: commit a folder onto a data branch without a checkout or an index.
//!
//! The folder is walked once (stat data only), each file is read once — hashed and copied into the
//! LFS store in the same pass, in parallel — unless the stat cache says it is unchanged. Pointer
//! blobs and trees go to an in-memory object database that is written out as one pack (50,000 loose
//! objects would make git's next command start a long gc), the managed `.gitattributes` block is
//! rewritten from what is already known (no blob is re-read), and the branch moves last, by
//! compare-and-swap; a lost race re-applies the same files on the winner's tip.
//!
//! What may be read and how is the one ingest policy of [`crate::ingest`] (names, reserved names,
//! symlinks, special files, `O_NOFOLLOW` reads checked on the descriptor, the blob-or-LFS rule);
//! see docs/commit-data.md.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::ingest::{self, LazyRepo, LfsRule, Policy, WalkedFile};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::lfs_tree::read_pointer;
use crate::repo::trailers::{keys, Message};
use crate::repo::transaction::{validate_branch_name, Change, Step, Transaction, TxOptions};
use crate::repo::tree::{entry_at, list_files, validate_path, Entry, TreeEdits};
use crate::repo::{format_time, host_name, user_name, Repo};
use crate::store::attributes;
use crate::store::stat_cache::{CacheEntry, Stat, StatCache};
use crate::store::{self as lfs, LfsStore, Pointer};

/// What to commit, and how.
#[derive(Debug, Clone)]
pub struct CommitDataOptions {
    pub source: PathBuf,
    pub branch: String,
    /// Folder of the branch's tree the files go under ("" or "." for the root).
    pub dest: String,
    pub message: Option<String>,
    /// Make `dest` mirror the source exactly (deletions included); not on append-only branches.
    pub replace: bool,
    /// Create the branch when it does not exist.
    pub create: bool,
    /// Hash and compare only: nothing is written, no ref moves.
    pub dry_run: bool,
    /// Follow symlinks that resolve inside the source folder.
    pub follow_symlinks: bool,
    /// Set by Ctrl-C/TERM: the run stops before the branch moves, nothing committed.
    pub interrupt: Interrupt,
}

impl Default for CommitDataOptions {
    fn default() -> Self {
        CommitDataOptions {
            source: PathBuf::new(),
            branch: "raw".into(),
            dest: "data".into(),
            message: None,
            replace: false,
            create: false,
            dry_run: false,
            follow_symlinks: false,
            interrupt: Interrupt::default(),
        }
    }
}

/// The result of a commit-data run (also its `--json` form).
#[derive(Debug, Clone, Serialize)]
pub struct CommitDataOutcome {
    pub branch: String,
    /// The new commit; null when nothing changed (or on a dry run).
    pub commit: Option<String>,
    /// The branch's tip before the run (null: the branch was created).
    pub previous: Option<String>,
    pub source: PathBuf,
    pub dest: String,
    /// Files in the source folder.
    pub files: u64,
    pub added: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// Files of the source stored in LFS.
    pub lfs_files: u64,
    /// Bytes of the source folder.
    pub bytes: u64,
    /// Bytes actually read (files the stat cache did not vouch for).
    pub bytes_read: u64,
    /// `sha256:<hex>` of the sorted `<sha256>  <path>` lines of the source (sha256sum format).
    pub manifest: String,
    /// Compare-and-swap attempts (more than 1: another writer won a race and the files were re-applied).
    pub tries: usize,
    /// Why the worktree that has the branch checked out could not be brought up to date (the
    /// commit stands; the next mlgit command finishes the sync).
    pub worktree_error: Option<String>,
    pub seconds: f64,
    pub dry_run: bool,
}

/// A file found in the source folder.
type SourceFile = WalkedFile;

/// A file after hashing.
#[derive(Debug, Clone, Copy)]
struct Hashed {
    sha256: lfs::LfsOid,
    size: u64,
    /// The blob the tree gets: the pointer's blob or the content's blob.
    blob: Oid,
    lfs: bool,
    read: bool,
}

/// Commit `opts.source` onto `opts.branch`.
pub fn commit_data(
    repo: &Repo,
    opts: &CommitDataOptions,
    progress: &dyn Progress,
) -> Result<CommitDataOutcome> {
    let start = Instant::now();
    let read_at = chrono::Utc::now().timestamp_nanos_opt().map(i128::from).unwrap_or(i128::MAX);
    let git = repo.git();
    let config = repo.config();
    let dest = normalize_dest(&opts.dest)?;
    let append_only = config.is_append_only(&opts.branch);
    if append_only && opts.replace {
        return Err(Error::invalid(format!(
            "branch '{}' is append-only: --replace would delete or modify committed files",
            opts.branch
        ))
        .with_hint("leave out --replace (files missing from the folder are kept), or commit to a branch that is not append-only"));
    }
    let source = check_source(git, &opts.source)?;
    // Fail early (bad name, missing branch, dirty checkout), before reading any file.
    validate_branch_name(&opts.branch)?;
    if repo.branch_tip(&opts.branch)?.is_none() && !opts.create {
        return Err(Error::not_found(format!("branch '{}' does not exist", opts.branch)).with_hint(
            "run `mlgit init` to create the convention branches, or pass --create to start it here",
        ));
    }
    let tx = match opts.dry_run {
        true => None,
        false => Some(Transaction::open(
            repo,
            &opts.branch,
            TxOptions { create: opts.create, writer: "mlgit commit-data".into(), ..Default::default() },
        )?),
    };

    let policy = Policy { follow_symlinks: opts.follow_symlinks, follow_option: Some("--follow-symlinks") };
    let files = ingest::walk(&source, &[], &policy)?;
    if files.is_empty() {
        return Err(Error::invalid(format!("{} holds no files", source.display()))
            .with_hint("check --source: an empty folder has nothing to commit"));
    }
    // The branch as it is now: what the files are compared with (again on a newer tip after a lost race).
    let tip0 = repo.branch_tip(&opts.branch)?;
    let base0 = match tip0 {
        Some(t) => Some(git.find_commit(t).context("read the branch tip")?.tree_id()),
        None => None,
    };
    let existing0 = existing_files(git, base0, &dest, &opts.branch)?;
    let rule = LfsRule::for_kind(config, config.branch_kind(&opts.branch))?;

    // Hash (and store) every file, in parallel; the stat cache spares unchanged files.
    let cache_path = StatCache::path_in(git.commondir(), &source);
    let mut cache = StatCache::load(&cache_path);
    let store = repo.store();
    let total_bytes: u64 = files.iter().map(|f| f.meta.len()).sum();
    progress.begin("reading", files.len() as u64, total_bytes);
    let bytes_read = AtomicU64::new(0);
    let git_dir = git.path().to_path_buf();
    let hashed: Vec<Hashed> = files
        .par_iter()
        .map_init(
            || LazyRepo::new(&git_dir),
            |worker, f| -> Result<Hashed> {
                opts.interrupt.check("commit-data")?;
                let cached = cache.get(&f.rel, &Stat::of(&f.meta));
                let on_branch = existing0.get(f.rel.as_str()).map(|(oid, _)| *oid);
                let storage = rule.storage(&join(&dest, &f.rel), f.size());
                let h = hash_one(worker, store, f, storage, cached, on_branch, opts.dry_run)?;
                if h.read {
                    bytes_read.fetch_add(h.size, Ordering::Relaxed);
                }
                progress.advance(1, f.meta.len());
                Ok(h)
            },
        )
        .collect::<Result<_>>()?;
    progress.end();

    let manifest = manifest_digest(&files, &hashed);
    let mut by_rel: HashMap<&str, (Hashed, &SourceFile)> = HashMap::with_capacity(files.len());
    for (f, h) in files.iter().zip(&hashed) {
        by_rel.insert(f.rel.as_str(), (*h, f));
    }

    let source_name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let subject_default = format!(
        "Add {} from {source_name} to {}",
        plural(files.len() as u64, "file"),
        if dest.is_empty() { "/".to_string() } else { format!("{dest}/") }
    );
    let sig = repo.signature()?;
    let mut last: Option<Plan> = None;
    let mut tries_seen = 0usize;

    let pointers: HashMap<Oid, bool> = hashed.iter().map(|h| (h.blob, h.lfs)).collect();
    let (commit, previous, sync_error) = match tx {
        None => {
            let same = |old: Oid, h: &Hashed| same_content(git, old, h);
            last = Some(plan(&existing0, &dest, &by_rel, append_only, opts.replace, &opts.branch, &same)?);
            (None, tip0.map(|t| t.to_string()), None)
        }
        Some(tx) => {
            let out = tx.commit(|tip| {
                tries_seen += 1;
                let base_tree = tip.map(|c| c.tree_id());
                let moved;
                let existing = if base_tree == base0 {
                    &existing0
                } else {
                    moved = existing_files(git, base_tree, &dest, &opts.branch)?;
                    &moved
                };
                // The last safe point: after this the branch may move.
                opts.interrupt.check("commit-data")?;
                let same = |old: Oid, h: &Hashed| same_content(git, old, h);
                let plan = plan(existing, &dest, &by_rel, append_only, opts.replace, &opts.branch, &same)?;
                let nothing = plan.added + plan.changed + plan.removed == 0 && tip.is_some();
                if nothing {
                    last = Some(plan);
                    return Ok(Step::Nothing);
                }
                let tree = write_commit_tree(git, base_tree, &dest, &plan, &by_rel)?;
                let message =
                    render_message(git, opts, &subject_default, &source, &plan, total_bytes, &manifest, &sig);
                last = Some(plan);
                let mut change = Change::new(tree, message);
                change.pointers = pointers.clone();
                Ok(Step::Commit(Box::new(change)))
            })?;
            let previous = out.previous.map(|p| p.to_string());
            match out.commit {
                Some(c) => (Some(c.to_string()), previous, out.sync_error),
                None => (None, previous, None),
            }
        }
    };
    let plan = last.ok_or_else(|| Error::new(ErrorKind::Git, "commit-data computed no change set"))?;

    if !opts.dry_run {
        for (f, h) in files.iter().zip(&hashed) {
            let entry = CacheEntry { stat: Stat::of(&f.meta), sha256: h.sha256, lfs: h.lfs, blob: h.blob };
            cache.insert(&f.rel, entry, read_at);
        }
        cache.retain(|k| by_rel.contains_key(k));
        // The cache only speeds up the next run: failing to save it must not fail this one.
        let _ = cache.save();
    }

    Ok(CommitDataOutcome {
        branch: opts.branch.clone(),
        commit,
        previous,
        source,
        dest: if dest.is_empty() { ".".into() } else { dest },
        files: files.len() as u64,
        added: plan.added,
        changed: plan.changed,
        unchanged: plan.unchanged,
        removed: plan.removed,
        lfs_files: hashed.iter().filter(|h| h.lfs).count() as u64,
        bytes: total_bytes,
        bytes_read: bytes_read.into_inner(),
        manifest,
        tries: tries_seen.max(1),
        worktree_error: sync_error,
        seconds: start.elapsed().as_secs_f64(),
        dry_run: opts.dry_run,
    })
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn join(dest: &str, rel: &str) -> String {
    if dest.is_empty() {
        rel.to_string()
    } else {
        format!("{dest}/{rel}")
    }
}

/// "data/", "./data", "." → "data", "data", "". An absolute path is refused: it names a folder of
/// this machine, not of the branch's tree, and silently dropping its `/` would store the files
/// somewhere the user did not ask for.
fn normalize_dest(dest: &str) -> Result<String> {
    if dest.starts_with('/') {
        let relative = dest.trim_start_matches('/');
        let suggestion = if relative.is_empty() { ".".to_string() } else { relative.to_string() };
        return Err(Error::invalid(format!(
            "--dest {dest:?} is an absolute path; it names a folder inside the branch's tree"
        ))
        .with_hint(format!("give a path relative to the branch's root, such as --dest {suggestion}")));
    }
    let trimmed = dest.trim_end_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed.is_empty() || trimmed == "." {
        return Ok(String::new());
    }
    validate_path(trimmed).map_err(|e| {
        Error::invalid(format!("--dest {dest:?} is not a folder path a git tree can hold: {e}"))
            .with_hint("use a relative folder such as data/ or data/2026-11-23, or . for the root")
    })?;
    Ok(trimmed.to_string())
}

/// The source must be an existing, non-empty folder outside the repository's `.git`.
fn check_source(git: &Repository, source: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(source)
        .map_err(|e| Error::io("read the folder", source, e).with_hint("check the path given to --source"))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!("--source {} is a file, not a folder", source.display()))
            .with_hint("give the folder that holds the file(s); commit-data commits a folder's contents"));
    }
    let canon = fs::canonicalize(source).map_err(|e| Error::io("resolve", source, e))?;
    for git_dir in [git.path(), git.commondir()] {
        if let Ok(g) = fs::canonicalize(git_dir) {
            if canon.starts_with(&g) {
                return Err(Error::invalid(format!(
                    "--source {} is inside the repository's git folder {}",
                    source.display(),
                    g.display()
                ))
                .with_hint("commit-data reads a data folder; git's own files must never be committed"));
            }
        }
    }
    Ok(canon)
}

/// Hash one file (storing it unless `dry_run`), or take its identity from the stat cache.
fn hash_one(
    git: &mut LazyRepo<'_>,
    store: &LfsStore,
    f: &SourceFile,
    storage: ingest::Storage,
    cached: Option<CacheEntry>,
    on_branch: Option<Oid>,
    dry_run: bool,
) -> Result<Hashed> {
    let size = f.size();
    let lfs = storage.lfs;
    if let Some(c) = cached.filter(|c| c.lfs == lfs) {
        // The content must be in the store (or the blob in git) for the commit to be complete. An
        // LFS object is always looked for (a stat): the branch holding its pointer does not mean
        // the store still has it, and a file the cache vouches for is how a lost object comes back.
        let present = dry_run
            || if lfs {
                store.contains(&Pointer { oid: c.sha256, size })
            } else {
                on_branch == Some(c.blob) || git.get()?.odb().map(|o| o.exists(c.blob)).unwrap_or(false)
            };
        if present {
            return Ok(Hashed { sha256: c.sha256, size, blob: c.blob, lfs, read: false });
        }
    }
    let i = ingest::ingest_file(git, store, f, lfs, dry_run)?;
    Ok(Hashed { sha256: i.sha256, size: i.size, blob: i.blob, lfs, read: true })
}

/// Whether the blob `old` the branch holds has the same content as the file `h`, however each is
/// stored: a plain blob and a pointer to the same bytes are the same file (after `lfs.patterns`
/// or `lfs.max_blob_size` changed, an identical file must count as unchanged, not as different).
fn same_content(git: &Repository, old: Oid, h: &Hashed) -> Result<bool> {
    let odb = git.odb().context("open the object database")?;
    if let Some(p) = read_pointer(git, &odb, old)? {
        return Ok(p.oid == h.sha256 && p.size == h.size);
    }
    let (len, _) = odb.read_header(old).context(format!("read blob {old}"))?;
    if len as u64 != h.size {
        return Ok(false);
    }
    let blob = git.find_blob(old).context(format!("read blob {old}"))?;
    Ok(lfs::LfsOid(Sha256::digest(blob.content()).into()) == h.sha256)
}

/// `sha256:` of the sorted `<sha256>  <path>\n` lines (what `sha256sum` prints), paths relative to the source.
fn manifest_digest(files: &[SourceFile], hashed: &[Hashed]) -> String {
    let mut h = Sha256::new();
    for (f, x) in files.iter().zip(hashed) {
        h.update(x.sha256.to_hex().as_bytes());
        h.update(b"  ");
        h.update(f.rel.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", lfs::LfsOid(h.finalize().into()).to_hex())
}

/// How the source compares with the branch's files under the destination.
#[derive(Debug, Default)]
struct Plan {
    added: u64,
    changed: u64,
    unchanged: u64,
    removed: u64,
    /// Relative paths to (re)write.
    set: Vec<String>,
    /// Relative paths to delete (--replace).
    remove: Vec<String>,
}

/// The files of the branch under `dest` (relative paths), without the managed `.gitattributes`.
fn existing_files(
    git: &Repository,
    base_tree: Option<Oid>,
    dest: &str,
    branch: &str,
) -> Result<HashMap<String, (Oid, FileMode)>> {
    let mut existing = HashMap::new();
    let Some(base) = base_tree else { return Ok(existing) };
    let sub = if dest.is_empty() {
        Some(base)
    } else {
        match entry_at(git, base, dest)? {
            Some(e) if e.mode == FileMode::Tree => Some(e.oid),
            Some(_) => {
                return Err(Error::conflict(format!("'{dest}' is a file on branch '{branch}', not a folder"))
                    .with_hint("choose another --dest"))
            }
            None => None,
        }
    };
    if let Some(sub) = sub {
        for f in list_files(git, sub)? {
            if dest.is_empty() && f.path == attributes::FILE {
                continue; // managed by mlgit, never part of the data
            }
            existing.insert(f.path, (f.oid, f.mode));
        }
    }
    Ok(existing)
}

fn plan(
    existing: &HashMap<String, (Oid, FileMode)>,
    dest: &str,
    source: &HashMap<&str, (Hashed, &SourceFile)>,
    append_only: bool,
    replace: bool,
    branch: &str,
    same_content: &dyn Fn(Oid, &Hashed) -> Result<bool>,
) -> Result<Plan> {
    let existing_dirs: HashSet<&str> =
        if append_only { existing.keys().flat_map(|k| ancestors(k)).collect() } else { HashSet::new() };
    let mut p = Plan::default();
    let mut conflicts = Vec::new();
    let mut rels: Vec<&&str> = source.keys().collect();
    rels.sort();
    for rel in rels {
        let (h, f) = &source[*rel];
        let mode = f.mode();
        match existing.get(*rel) {
            Some((oid, m)) if *oid == h.blob && *m == mode => p.unchanged += 1,
            Some((oid, m)) if *m == mode && same_content(*oid, h)? => p.unchanged += 1,
            Some(_) => {
                if append_only {
                    conflicts.push(rel.to_string());
                } else {
                    p.changed += 1;
                    p.set.push(rel.to_string());
                }
            }
            None => {
                // A file where the branch has a folder (or below one of its files) would delete data.
                if append_only && !existing.is_empty() {
                    let ancestors = ancestors(rel).any(|a| existing.contains_key(a));
                    if ancestors || existing_dirs.contains(*rel) {
                        conflicts.push(rel.to_string());
                        continue;
                    }
                }
                p.added += 1;
                p.set.push(rel.to_string());
            }
        }
    }
    if !conflicts.is_empty() {
        let shown: Vec<String> = conflicts.iter().take(10).map(|r| join(dest, r)).collect();
        let more =
            if conflicts.len() > 10 { format!(" and {} more", conflicts.len() - 10) } else { String::new() };
        return Err(Error::conflict(format!(
            "branch '{branch}' is append-only and already holds different content at {} path(s): {}{more}",
            conflicts.len(),
            shown.join(", ")
        ))
        .with_hint("committed files are never modified on an append-only branch: give the new versions new names (or a new --dest folder); nothing was committed"));
    }
    if replace {
        let mut gone: Vec<String> =
            existing.keys().filter(|k| !source.contains_key(k.as_str())).cloned().collect();
        gone.sort();
        p.removed = gone.len() as u64;
        p.remove = gone;
    }
    Ok(p)
}

fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

/// Write the new tree: pointer blobs and trees into an in-memory object database dumped as one
/// pack (the transaction then rewrites the managed `.gitattributes` block from what is known).
fn write_commit_tree(
    git: &Repository,
    base_tree: Option<Oid>,
    dest: &str,
    plan: &Plan,
    source: &HashMap<&str, (Hashed, &SourceFile)>,
) -> Result<Oid> {
    // A second handle whose object database has the in-memory backend in front, so everything
    // written through it lands in memory until dumped. Commits are written by `git` (no mempack),
    // after the pack is on disk.
    let writer = Repository::open(git.path()).context("open the repository")?;
    let odb = writer.odb().context("open the object database")?;
    let mempack = odb.add_new_mempack_backend(1000).context("set up the in-memory object database")?;

    let mut edits = TreeEdits::new();
    for rel in &plan.set {
        let (h, f) = &source[rel.as_str()];
        if h.lfs {
            let pointer = Pointer { oid: h.sha256, size: h.size };
            let id = writer.blob(&pointer.to_bytes()).context("write a pointer blob")?;
            debug_assert_eq!(id, h.blob);
        }
        let mode = f.mode();
        edits.set(&join(dest, rel), Entry { oid: h.blob, mode })?;
    }
    for rel in &plan.remove {
        edits.remove(&join(dest, rel))?;
    }
    let tree = edits.write(&writer, base_tree)?;
    drop(edits);

    // Pack what this commit adds (new trees and blobs; unchanged subtrees are skipped) and hand
    // the pack to the on-disk object database, which indexes it.
    let mut new = Vec::new();
    new_objects(&writer, tree, base_tree, &mut new)?;
    if !new.is_empty() {
        // Written straight into objects/pack (temporary files, then renamed: .pack before .idx),
        // streamed through libgit2's indexer, so no second copy of the pack is held in memory.
        let mut pb = writer.packbuilder().context("start a pack")?;
        for id in &new {
            pb.insert_object(*id, None).context("add an object to the pack")?;
        }
        let pack_dir = git.commondir().join("objects").join("pack");
        pb.write(&pack_dir, 0).context(format!("write a pack into {}", pack_dir.display()))?;
        drop(pb);
        // Make the new pack visible to this handle (libgit2 does not rescan on every miss).
        git.odb().and_then(|o| o.refresh()).context("rescan the object database")?;
    }
    mempack.reset().context("reset the in-memory object database")?;
    drop(odb);
    Ok(tree)
}

/// The trees of `new` that differ from `old` at the same path, and the blobs they point to that
/// differ: what a commit of `new` on top of `old` adds to the repository.
fn new_objects(git: &Repository, new: Oid, old: Option<Oid>, out: &mut Vec<Oid>) -> Result<()> {
    if Some(new) == old {
        return Ok(());
    }
    out.push(new);
    let tree = git.find_tree(new).context(format!("read tree {new}"))?;
    let old_tree = match old {
        Some(o) => Some(git.find_tree(o).context(format!("read tree {o}"))?),
        None => None,
    };
    for entry in tree.iter() {
        let before =
            old_tree.as_ref().and_then(|t| t.get_name_bytes(entry.name_bytes()).map(|e| (e.id(), e.kind())));
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let old_sub = before.filter(|(_, k)| *k == Some(git2::ObjectType::Tree)).map(|(id, _)| id);
                new_objects(git, entry.id(), old_sub, out)?;
            }
            Some(git2::ObjectType::Blob) if before.map(|(id, _)| id) != Some(entry.id()) => {
                out.push(entry.id())
            }
            _ => {}
        }
    }
    Ok(())
}

// The provenance trailers need the repository (git's identity, for Mlgit-User) besides the plan.
#[allow(clippy::too_many_arguments)]
fn render_message(
    git: &Repository,
    opts: &CommitDataOptions,
    default_subject: &str,
    source: &Path,
    plan: &Plan,
    bytes: u64,
    manifest: &str,
    sig: &git2::Signature<'_>,
) -> String {
    let (subject, body) = match opts.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => match m.split_once('\n') {
            Some((s, b)) => (s.to_string(), b.trim().to_string()),
            None => (m.to_string(), String::new()),
        },
        None => (default_subject.to_string(), String::new()),
    };
    Message::new(subject)
        .body(body)
        .trailer(keys::SOURCE, source.display())
        .trailer(keys::HOST, host_name())
        .trailer(keys::USER, user_name(git))
        .trailer(keys::INGESTED_AT, format_time(sig.when()))
        .trailer(keys::FILES_ADDED, plan.added)
        .trailer(keys::FILES_CHANGED, plan.changed)
        .trailer(keys::FILES_UNCHANGED, plan.unchanged)
        .trailer(keys::FILES_REMOVED, plan.removed)
        .trailer(keys::BYTES, bytes)
        .trailer(keys::MANIFEST, manifest)
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_is_normalized() {
        assert_eq!(normalize_dest("data/").unwrap(), "data");
        assert_eq!(normalize_dest("./data/x/").unwrap(), "data/x");
        assert_eq!(normalize_dest(".").unwrap(), "");
        assert!(normalize_dest("/").is_err());
        assert!(normalize_dest("/abs").is_err());
        assert!(normalize_dest("data/../x").is_err());
        assert!(normalize_dest("a/.git").is_err());
    }

    #[test]
    fn ancestors_are_the_parent_folders() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
