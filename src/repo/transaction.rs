//! The branch transaction: the one way mlgit writes a branch. Every writing command (commit-data,
//! clean, split, stable update, train-tag, merge-tracking, pull; later monitor, promote) opens one on
//! a branch, computes its new tree from the branch's current tip, and commits through it — or, to
//! take a fetched remote tip, fast-forwards through it ([`Step::FastForward`]). The commit step is
//! the only code in mlgit that
//!
//! - takes the branch's LFS patterns from its kind in the config and rewrites the managed
//!   `.gitattributes` block so it marks exactly the pointer paths;
//! - holds the branch's lock while it checks the checked-out worktree (if any), writes the commit,
//!   moves the ref by compare-and-swap (re-applying the change on a winner's tip) and brings the
//!   worktree up to date;
//! - refuses, before any ref moves, to overwrite a user's untracked file or to write through a
//!   symlink in a checked-out worktree;
//! - leaves a journal while a worktree sync runs, so a sync cut short by a crash or `kill -9` is
//!   finished by the next mlgit command ([`recover`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Commit, Delta, DiffOptions, FileMode, Oid, Repository};
use serde::{Deserialize, Serialize};

use super::lfs_tree::{compile_patterns, read_pointer, write_attributes};
use super::lock::{decode_name, encode_name, lock_path, FileLock, TryLock};
use super::refs::compare_and_swap;
use super::tree::{entry_at, list_files};
use super::worktree::{self, Checkout};
use super::Repo;
use crate::config::BranchKind;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::store::attributes::{self, LfsAttributes, Pattern};
use crate::store::stat_cache::Stat;

/// How often a commit is re-applied after losing a race before giving up.
pub const MAX_TRIES: usize = 32;
/// How long a writer waits for another one holding the branch (a sync of a large checkout).
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);
/// The id of the empty blob: git-lfs keeps empty files as this blob, never as a pointer.
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

/// How a transaction is opened.
#[derive(Debug, Clone, Default)]
pub struct TxOptions {
    /// Create the branch when it does not exist (otherwise a missing branch is an error).
    pub create: bool,
    /// Who writes, for lock messages and reflogs ("mlgit commit-data").
    pub writer: String,
    /// The change is read from the branch's own checkout (train-tag's outputs), which is then
    /// expected to differ from the tip: its state is checked at commit time, against
    /// [`Change::in_place`], instead of being refused when the transaction opens.
    pub from_checkout: bool,
}

/// A write to one branch, opened by [`Transaction::open`] and finished by [`Transaction::commit`].
pub struct Transaction<'r> {
    repo: &'r Repo,
    branch: String,
    kind: BranchKind,
    patterns: Vec<Pattern>,
    opts: TxOptions,
}

/// What a build step wants written on top of the tip it was given.
#[derive(Debug, Clone)]
pub struct Change {
    /// The new tree, before the `.gitattributes` step (which replaces the managed block).
    pub tree: Oid,
    /// Parents after the branch tip (e.g. the raw commit a clean commit derives from).
    pub extra_parents: Vec<Oid>,
    pub message: String,
    /// Blob id → whether it is an LFS pointer, for blobs the caller already knows (spares reads).
    pub pointers: HashMap<Oid, bool>,
    /// Files already in the checked-out worktree with exactly the committed content (train-tag's
    /// outputs): path → the stat data seen when they were read. They are not rewritten; their
    /// index entries get fresh stat data, and their being untracked or modified is expected.
    pub in_place: HashMap<String, Stat>,
    /// An annotated tag to create on the new commit (a snapshot); refused if it exists.
    pub tag: Option<TagSpec>,
    /// Write the commit beside the branch instead of on it: its parents are `extra_parents` only,
    /// and only the tag (if any) is created. For a snapshot whose branch moved on to other code.
    pub beside: bool,
    /// A merge: written even when its tree is the tip's, because its parents join two histories.
    pub merge: bool,
}

impl Change {
    /// A commit of `tree` on top of the tip, with nothing else known.
    pub fn new(tree: Oid, message: impl Into<String>) -> Change {
        Change {
            tree,
            extra_parents: Vec::new(),
            message: message.into(),
            pointers: HashMap::new(),
            in_place: HashMap::new(),
            tag: None,
            beside: false,
            merge: false,
        }
    }
}

/// An annotated tag made together with the commit.
#[derive(Debug, Clone)]
pub struct TagSpec {
    pub name: String,
    pub message: String,
}

/// What the build step decided.
pub enum Step {
    /// Commit this change.
    Commit(Box<Change>),
    /// Move the branch to this existing commit, which must descend from the tip (or, when the
    /// branch does not exist and the transaction may create it, start the branch there). Used to
    /// bring a branch up to a fetched remote tip: no commit is written, so no `.gitattributes`
    /// step; the append-only, checkout, journal, compare-and-swap and sync steps are a commit's.
    FastForward(Oid),
    /// Nothing to write.
    Nothing,
}

impl From<Option<Change>> for Step {
    fn from(c: Option<Change>) -> Step {
        match c {
            Some(c) => Step::Commit(Box::new(c)),
            None => Step::Nothing,
        }
    }
}

/// The result of a transaction.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub branch: String,
    /// The commit written (None: nothing changed).
    pub commit: Option<Oid>,
    /// The branch's tip before the commit (or its unchanged tip).
    pub previous: Option<Oid>,
    /// The tree of the commit (or of the unchanged tip).
    pub tree: Option<Oid>,
    /// Compare-and-swap attempts.
    pub tries: usize,
    /// The worktree that has the branch checked out and was brought up to date.
    pub worktree: Option<PathBuf>,
    /// Why that worktree could not be brought up to date (the commit stands; the next mlgit
    /// command finishes the sync).
    pub sync_error: Option<String>,
    /// Whether the commit is on the branch (false for [`Change::beside`]).
    pub on_branch: bool,
}

impl<'r> Transaction<'r> {
    /// Open a transaction on `branch`: the name is checked, the branch must exist unless
    /// `opts.create`, and a checked-out worktree with uncommitted changes is refused now, before the
    /// caller does any long work (the check is repeated under the lock at commit time).
    pub fn open(repo: &'r Repo, branch: &str, opts: TxOptions) -> Result<Transaction<'r>> {
        validate_branch_name(branch)?;
        let git = repo.git();
        if let Ok(r) = git.find_reference(&format!("refs/heads/{branch}")) {
            if let Some(target) = r.symbolic_target() {
                return Err(Error::invalid(format!(
                    "branch '{branch}' is a symbolic ref to {target}, which mlgit does not write through"
                ))
                .with_hint(format!(
                    "name the branch it points to ({})",
                    target.trim_start_matches("refs/heads/")
                )));
            }
        }
        let tip = repo.branch_tip(branch)?;
        if tip.is_none() && !opts.create {
            return Err(Error::not_found(format!("branch '{branch}' does not exist")).with_hint(
                "run `mlgit init` to create the convention branches, or pass --create to start it here",
            ));
        }
        let kind = repo.config().branch_kind(branch);
        let patterns = compile_patterns(repo.config().lfs_patterns(kind))?;
        recover(repo)?;
        if !opts.from_checkout {
            refuse_dirty_checkout(repo, branch, &opts.writer)?;
        }
        Ok(Transaction { repo, branch: branch.to_string(), kind, patterns, opts })
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn kind(&self) -> BranchKind {
        self.kind
    }

    /// The LFS patterns of the branch's kind (for the blob-or-LFS decision of ingested files).
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Commit: under the branch lock, call `build` with the branch's current tip, rewrite the
    /// `.gitattributes` block of its tree, check the checked-out worktree, write the commit, move
    /// the branch by compare-and-swap (calling `build` again on a winner's tip), create the tag, and
    /// bring the worktree up to date. A [`Step::FastForward`] skips writing (and the `.gitattributes`
    /// step: the commit exists) but not the checks, the journal, the swap or the sync. No ref moves
    /// unless every step before the move succeeded.
    pub fn commit(self, mut build: impl FnMut(Option<&Commit<'_>>) -> Result<Step>) -> Result<TxOutcome> {
        let repo = self.repo;
        let git = repo.git();
        let branch = self.branch.as_str();
        let _lock = lock_branch(git, branch, &self.opts.writer)?;
        recover_branch(repo, branch)?;
        let checkout = worktree::find_checkout(git, branch)?;
        let sig = repo.signature()?;
        let append_only = repo.config().is_append_only(branch);

        for attempt in 1..=MAX_TRIES {
            let tip = repo.branch_tip(branch)?;
            if tip.is_none() && !self.opts.create {
                return Err(Error::not_found(format!("branch '{branch}' does not exist"))
                    .with_hint("run `mlgit init` to create the convention branches (or pass --create)"));
            }
            let tip_commit = match tip {
                Some(t) => Some(git.find_commit(t).context(format!("read the tip of '{branch}'"))?),
                None => None,
            };
            let base_tree = tip_commit.as_ref().map(|c| c.tree_id());
            let (change, target) = match build(tip_commit.as_ref())? {
                Step::Commit(c) => (*c, None),
                Step::Nothing => return Ok(self.unchanged(tip, base_tree)),
                Step::FastForward(target) if tip == Some(target) => return Ok(self.unchanged(tip, base_tree)),
                Step::FastForward(target) => {
                    let tree = fast_forward_tree(git, branch, tip, target)?;
                    (Change::new(tree, format!("fast-forward to {target}")), Some(target))
                }
            };
            let tree = match target {
                // An existing commit is taken as it is: its tree is not rewritten.
                Some(_) => change.tree,
                None => {
                    let trusted = trusted_base(git, tip_commit.as_ref());
                    attributes_step(git, trusted, change.tree, &self.patterns, &change.pointers)?
                }
            };
            if change.beside {
                return self.commit_beside(&change, tree, &sig);
            }
            let joins = change.merge && !change.extra_parents.is_empty();
            if target.is_none() && tip.is_some() && Some(tree) == base_tree && change.tag.is_none() && !joins
            {
                return Ok(self.unchanged(tip, base_tree));
            }
            if append_only {
                check_append_only(git, branch, base_tree, tree)?;
            }
            if let Some(co) = &checkout {
                check_checkout(co, branch, base_tree, tree, &change.in_place)?;
            }
            let commit = match target {
                Some(t) => t,
                None => write_commit(git, &sig, tip_commit.as_ref(), &change.extra_parents, tree, &change)?,
            };
            let journal = match &checkout {
                Some(co) => Some(Journal::write(git, branch, co, tip, base_tree, commit)?),
                None => None,
            };
            let log = format!("{}: {}", self.writer(), change.message.lines().next().unwrap_or(""));
            if !compare_and_swap(git, branch, commit, tip, &log)? {
                if let Some(j) = journal {
                    j.remove();
                }
                // Lost a race with a writer that does not take the lock (plain git): re-apply.
                std::thread::sleep(Duration::from_millis(5 * attempt as u64));
                continue;
            }
            crash_point("after-ref-move");
            if let Some(tag) = &change.tag {
                if let Err(e) = create_tag(git, tag, commit, &sig) {
                    // Take the commit back off the branch: a failed snapshot leaves nothing.
                    undo(git, branch, tip, commit)?;
                    if let Some(j) = journal {
                        j.remove();
                    }
                    return Err(e);
                }
            }
            let mut synced = None;
            let mut sync_error = None;
            if let (Some(co), Some(j)) = (&checkout, journal) {
                // The commit stands whatever happens here: a failed sync keeps its journal, and
                // the next mlgit command finishes it.
                match worktree::sync_checkout(co, repo.store(), base_tree, tree, &change.in_place) {
                    Ok(()) => {
                        j.remove();
                        synced = Some(co.path.clone());
                    }
                    Err(e) => {
                        sync_error = Some(format!(
                            "{} was not brought up to date: {e}{}",
                            co.path.display(),
                            e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
                        ))
                    }
                }
            }
            return Ok(TxOutcome {
                branch: branch.to_string(),
                commit: Some(commit),
                previous: tip,
                tree: Some(tree),
                tries: attempt,
                worktree: synced,
                sync_error,
                on_branch: true,
            });
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("branch '{branch}' kept moving: gave up after {MAX_TRIES} tries"),
        )
        .with_hint("other writers are updating the branch continuously; retry when they have finished"))
    }

    fn writer(&self) -> &str {
        if self.opts.writer.is_empty() {
            "mlgit"
        } else {
            &self.opts.writer
        }
    }

    fn unchanged(&self, tip: Option<Oid>, tree: Option<Oid>) -> TxOutcome {
        TxOutcome {
            branch: self.branch.clone(),
            commit: None,
            previous: tip,
            tree,
            tries: 1,
            worktree: None,
            sync_error: None,
            on_branch: true,
        }
    }

    fn commit_beside(&self, change: &Change, tree: Oid, sig: &git2::Signature<'_>) -> Result<TxOutcome> {
        let git = self.repo.git();
        let commit = write_commit(git, sig, None, &change.extra_parents, tree, change)?;
        if let Some(tag) = &change.tag {
            create_tag(git, tag, commit, sig)?;
        }
        Ok(TxOutcome {
            branch: self.branch.clone(),
            commit: Some(commit),
            previous: None,
            tree: Some(tree),
            tries: 1,
            worktree: None,
            sync_error: None,
            on_branch: false,
        })
    }
}

/// Refuse early, before a command's long work, when `branch` is checked out in a worktree with
/// uncommitted changes (the commit step checks again under the lock). A checkout that looks dirty
/// may only be in the middle of another writer's sync: it is looked at again with the branch's lock
/// held, when no sync can be under way.
pub fn refuse_dirty_checkout(repo: &Repo, branch: &str, writer: &str) -> Result<()> {
    let git = repo.git();
    let Some(co) = worktree::find_checkout(git, branch)? else { return Ok(()) };
    // Without the lock another writer's sync may be renaming files while the status is read (a
    // file vanishing mid-read is an error): only a clean answer counts here, anything else is
    // looked at again under the lock.
    if worktree::dirty_paths(&co.repo).is_ok_and(|d| d.is_empty()) {
        return Ok(());
    }
    let _lock = lock_branch(git, branch, writer)?;
    recover_branch(repo, branch)?;
    let dirty = worktree::dirty_paths(&co.repo)?;
    if !dirty.is_empty() {
        return Err(dirty_error(branch, &co, &dirty));
    }
    Ok(())
}

/// A test hook: in a debug build, `MLGIT_TEST_CRASH=<point>` aborts the process at that point, as a
/// `kill -9` there would (the end-to-end tests of crash recovery need the exact moment).
fn crash_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("MLGIT_TEST_CRASH").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Refuse branch names git would store but then trip over (`HEAD`, `@`, `refs/...`, `-x`) as well
/// as names git refuses outright.
pub fn validate_branch_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "HEAD" || name == "@" {
        Some("git reserves it (refname 'HEAD' would be ambiguous)")
    } else if ["refs/", "heads/", "tags/", "remotes/"].iter().any(|p| name.starts_with(p)) {
        Some("git would read it as another ref (refs/…, heads/…, tags/…, remotes/…); give the plain branch name")
    } else if name.ends_with("HEAD") && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        Some("git reads names like FETCH_HEAD or ORIG_HEAD as its own files in .git")
    } else if name.starts_with('-') {
        Some("it starts with '-' and would be read as an option")
    } else if name.contains("@{") || !git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
        Some("git does not allow it (see `git check-ref-format --branch`)")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::invalid(format!("'{name}' is not a usable branch name: {why}"))
            .with_hint("use a name such as raw, clean, split, dev/model or stable/model")),
        None => Ok(()),
    }
}

fn lock_branch(git: &Repository, branch: &str, writer: &str) -> Result<FileLock> {
    let what = if writer.is_empty() { "mlgit" } else { writer };
    FileLock::acquire(
        &lock_path(git, &format!("branch-{branch}")),
        &format!("branch '{branch}' ({what})"),
        LOCK_TIMEOUT,
    )
}

fn write_commit(
    git: &Repository,
    sig: &git2::Signature<'_>,
    tip: Option<&Commit<'_>>,
    extra: &[Oid],
    tree: Oid,
    change: &Change,
) -> Result<Oid> {
    let tree = git.find_tree(tree).context("read the new tree")?;
    let mut parents: Vec<Commit<'_>> = Vec::new();
    if let Some(t) = tip {
        parents.push(git.find_commit(t.id()).context("read the branch tip")?);
    }
    for p in extra {
        if !parents.iter().any(|c| c.id() == *p) {
            parents.push(git.find_commit(*p).context(format!("read commit {p}"))?);
        }
    }
    let refs: Vec<&Commit<'_>> = parents.iter().collect();
    let message = with_trailer(&change.message, ATTRIBUTES_TRAILER, "exact");
    git.commit(None, sig, sig, &message, &tree, &refs).context("write a commit")
}

fn create_tag(git: &Repository, tag: &TagSpec, commit: Oid, sig: &git2::Signature<'_>) -> Result<()> {
    // Through the main repository: from a linked worktree libgit2 would not see an existing tag.
    let main = Repository::open(git.commondir()).context("open the main repository")?;
    let target = main.find_object(commit, Some(git2::ObjectType::Commit)).context("read the new commit")?;
    main.tag(&tag.name, &target, sig, &tag.message, false).map_err(|e| {
        Error::git(format!("create the tag '{}'", tag.name), e).with_hint(
            "someone created that tag meanwhile outside mlgit; nothing was kept: run again with another name",
        )
    })?;
    Ok(())
}

/// The trailer the transaction puts on every commit it writes: the commit's `.gitattributes`
/// managed block was computed by reading (or knowing) every blob, so it marks exactly the pointers.
pub const ATTRIBUTES_TRAILER: &str = "Mlgit-Attributes";
/// How far back a tip written by plain git is followed to the last commit mlgit wrote.
const TRUST_DEPTH: usize = 64;

/// The tree of the newest first-parent ancestor of `tip` (itself included) that the transaction
/// wrote: its managed block can be trusted for every path unchanged since. A commit made with
/// plain git (a colleague without git-lfs adding a file by hand) carries no such promise.
fn trusted_base(git: &Repository, tip: Option<&Commit<'_>>) -> Option<Oid> {
    let mut commit = git.find_commit(tip?.id()).ok()?;
    for _ in 0..TRUST_DEPTH {
        let marked = commit.message().and_then(|m| super::trailers::get(m, ATTRIBUTES_TRAILER));
        if marked.as_deref() == Some("exact") {
            return Some(commit.tree_id());
        }
        commit = commit.parent(0).ok()?;
    }
    None
}

/// `message` with one more trailer, in its trailer paragraph if it has one.
fn with_trailer(message: &str, key: &str, value: &str) -> String {
    let text = message.trim_end_matches('\n');
    let has_trailers = !super::trailers::parse(message).is_empty();
    if has_trailers {
        format!("{text}\n{key}: {value}\n")
    } else {
        format!("{text}\n\n{key}: {value}\n")
    }
}

/// Rewrite the managed `.gitattributes` block of `tree` so it marks exactly the pointer paths.
/// Which files are pointers: `known` first; files unchanged since `base` (a tree mlgit wrote, see
/// [`trusted_base`]) keep the verdict of its managed block; every other blob is read (pointer blobs
/// are tiny).
fn attributes_step(
    git: &Repository,
    base: Option<Oid>,
    tree: Oid,
    patterns: &[Pattern],
    known: &HashMap<Oid, bool>,
) -> Result<Oid> {
    let base_attrs = match base {
        Some(b) => managed_attributes(git, b)?,
        None => None,
    };
    let changed: HashSet<String> = match (&base_attrs, base) {
        (Some(_), Some(b)) => changed_paths(git, b, tree)?,
        _ => HashSet::new(),
    };
    let empty = Oid::from_str(EMPTY_BLOB).context("parse the empty blob id")?;
    let odb = git.odb().context("open the object database")?;
    let files = list_files(git, tree)?;
    let mut flags = Vec::with_capacity(files.len());
    for f in &files {
        let marked = if f.mode == FileMode::Link {
            false
        } else if f.oid == empty {
            // An empty file under an LFS rule stays marked, as git-lfs leaves it.
            patterns.iter().any(|p| p.is_match(&f.path))
        } else if let Some(k) = known.get(&f.oid) {
            *k
        } else if let (Some(a), false) = (&base_attrs, changed.contains(&f.path)) {
            a.is_lfs(&f.path)
        } else {
            read_pointer(git, &odb, f.oid)?.is_some()
        };
        flags.push(marked);
    }
    write_attributes(git, tree, patterns, files.iter().zip(&flags).map(|(f, m)| (f.path.as_str(), *m)))
}

/// The base tree's `.gitattributes`, when it carries mlgit's managed block.
fn managed_attributes(git: &Repository, tree: Oid) -> Result<Option<LfsAttributes>> {
    match entry_at(git, tree, attributes::FILE)? {
        Some(e) if e.mode != FileMode::Tree => {
            let blob = git.find_blob(e.oid).context("read .gitattributes")?;
            let text = String::from_utf8_lossy(blob.content());
            Ok(text.lines().any(|l| l == attributes::BEGIN).then(|| LfsAttributes::parse(&text)))
        }
        _ => Ok(None),
    }
}

/// Paths whose entry differs between two trees (added, modified, type-changed).
fn changed_paths(git: &Repository, old: Oid, new: Oid) -> Result<HashSet<String>> {
    let old = git.find_tree(old).context("read the old tree")?;
    let new = git.find_tree(new).context("read the new tree")?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = git.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts)).context("compare trees")?;
    Ok(diff
        .deltas()
        .filter(|d| d.status() != Delta::Deleted)
        .filter_map(|d| d.new_file().path().map(|p| p.to_string_lossy().into_owned()))
        .collect())
}

/// The tree of `target` when the branch may move there without losing a commit: `target` must
/// descend from the tip (any commit starts a branch that does not exist yet).
fn fast_forward_tree(git: &Repository, branch: &str, tip: Option<Oid>, target: Oid) -> Result<Oid> {
    let commit = git.find_commit(target).map_err(|e| {
        Error::git(format!("read commit {target}, the fast-forward target of '{branch}'"), e)
            .with_hint("fetch it first (`mlgit fetch`), then retry")
    })?;
    if let Some(tip) = tip {
        let descends = git.graph_descendant_of(target, tip).context("compare commits")?;
        if !descends {
            return Err(Error::conflict(format!(
                "cannot fast-forward '{branch}' to {target}: it does not contain the branch's tip {tip}"
            ))
            .with_hint("the histories diverged: merge them (`mlgit pull` merges what it can) instead"));
        }
    }
    Ok(commit.tree_id())
}

/// An append-only branch (raw, monitoring) never loses or changes a committed file (the rule of
/// [`crate::remote::append_only`], which the server's hook and `verify` apply too).
fn check_append_only(git: &Repository, branch: &str, base: Option<Oid>, new: Oid) -> Result<()> {
    let Some(base) = base else { return Ok(()) };
    let (mut broken, deleted) = crate::remote::append_only::changed_or_removed(git, base, new)?;
    broken.extend(deleted);
    if broken.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "branch '{branch}' is append-only, and this commit would modify or delete {} committed file(s): {}",
        broken.len(),
        list_some(&broken)
    ))
    .with_hint("committed files are never modified on an append-only branch: give new versions new names; nothing was committed"))
}

fn list_some(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
    let more = if paths.len() > 5 { format!(" and {} more", paths.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

fn dirty_error(branch: &str, co: &Checkout, dirty: &[String]) -> Error {
    Error::conflict(format!(
        "branch '{branch}' is checked out in {} with uncommitted changes ({})",
        co.path.display(),
        list_some(dirty)
    ))
    .with_hint(format!(
        "commit or stash them there (`git -C {} stash`), or check out another branch there, then retry",
        co.path.display()
    ))
}

/// Before the ref moves: the checkout must have no uncommitted change the commit would not
/// reproduce, and no untracked file (or symlinked folder) at a path the commit writes.
fn check_checkout(
    co: &Checkout,
    branch: &str,
    base: Option<Oid>,
    new: Oid,
    in_place: &HashMap<String, Stat>,
) -> Result<()> {
    let new_files: BTreeMap<String, (Oid, FileMode)> =
        list_files(&co.repo, new)?.into_iter().map(|f| (f.path, (f.oid, f.mode))).collect();
    // A change the commit reproduces exactly is no loss: an output read in place, or a file the
    // user deleted that the commit deletes too.
    let reproduced = |p: &str| {
        in_place_matches(&co.path, p, in_place) || (gone(&co.path, p) && !new_files.contains_key(p))
    };
    let dirty: Vec<String> =
        worktree::dirty_paths(&co.repo)?.into_iter().filter(|p| !reproduced(p)).collect();
    if !dirty.is_empty() {
        return Err(dirty_error(branch, co, &dirty));
    }
    let index = co.repo.index().context("read the index")?;
    let tracked = |p: &str| is_tracked(&index, p);
    let written: Vec<&String> = match base {
        Some(b) => {
            let changed = changed_paths(&co.repo, b, new)?;
            new_files.keys().filter(|p| changed.contains(*p)).collect()
        }
        None => new_files.keys().collect(),
    };
    let mut blocked = Vec::new();
    let mut dirs_ok: HashSet<String> = HashSet::new();
    for path in written {
        if in_place.contains_key(path) {
            continue;
        }
        if let Some(why) = blocker(&co.path, path, &tracked, &mut dirs_ok) {
            blocked.push(format!("{path} ({why})"));
        }
    }
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "the checkout of '{branch}' in {} has untracked files that the commit would overwrite: {}",
        co.path.display(),
        list_some(&blocked)
    ))
    .with_hint(format!(
        "move or remove them in {} (or commit them), then retry; nothing was committed",
        co.path.display()
    )))
}

/// Whether the index holds exactly `path`. With `core.ignorecase` libgit2's lookup also finds a
/// path that differs only in case, which is a different, untracked file to protect.
fn is_tracked(index: &git2::Index, path: &str) -> bool {
    index.get_path(Path::new(path), 0).is_some_and(|e| e.path == path.as_bytes())
}

fn in_place_matches(root: &Path, path: &str, in_place: &HashMap<String, Stat>) -> bool {
    match (in_place.get(path), fs::symlink_metadata(root.join(path))) {
        (Some(seen), Ok(meta)) => Stat::of(&meta) == *seen,
        _ => false,
    }
}

fn gone(root: &Path, path: &str) -> bool {
    matches!(fs::symlink_metadata(root.join(path)), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Why writing `path` in the worktree would destroy or escape something, if it would: an untracked
/// file or folder at the path, or a symlink or untracked file where a parent folder must be.
fn blocker(
    root: &Path,
    path: &str,
    tracked: &dyn Fn(&str) -> bool,
    dirs_ok: &mut HashSet<String>,
) -> Option<&'static str> {
    let mut prefix = String::new();
    for comp in path.split('/').collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default()
    {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        if dirs_ok.contains(&prefix) {
            continue;
        }
        match fs::symlink_metadata(root.join(&prefix)) {
            Err(_) => {
                dirs_ok.insert(prefix.clone());
                // Nothing below a missing folder can be in the way.
                return None;
            }
            // A tracked symlink (the checkout is clean, so it is the committed one) is replaced by
            // the sync, which removes the link itself and never follows it.
            Ok(m) if m.file_type().is_symlink() && tracked(&prefix) => {
                dirs_ok.insert(prefix.clone());
                return None;
            }
            Ok(m) if m.file_type().is_symlink() => return Some("a symlink where a folder goes"),
            Ok(m) if m.is_dir() => {
                dirs_ok.insert(prefix.clone());
            }
            Ok(_) if tracked(&prefix) => {
                dirs_ok.insert(prefix.clone());
                return None;
            }
            Ok(_) => return Some("an untracked file where a folder goes"),
        }
    }
    match fs::symlink_metadata(root.join(path)) {
        Err(_) => None,
        Ok(_) if tracked(path) => None,
        Ok(m) if m.file_type().is_symlink() => Some("an untracked symlink"),
        Ok(m) if m.is_dir() => Some("an untracked folder"),
        Ok(_) => Some("an untracked file"),
    }
}

/// A record, under the common git dir, that a worktree sync is under way: written before the ref
/// moves, removed when the worktree matches the branch. If mlgit dies in between, [`recover`]
/// finishes the sync.
#[derive(Debug, Serialize, Deserialize)]
struct JournalData {
    branch: String,
    worktree: PathBuf,
    /// The branch tip the worktree and index showed (None: the branch was created).
    from_commit: Option<String>,
    from_tree: Option<String>,
    to_commit: String,
}

struct Journal {
    path: PathBuf,
}

fn journal_dir(git: &Repository) -> PathBuf {
    git.commondir().join("mlgit").join("sync")
}

fn journal_path(git: &Repository, branch: &str) -> PathBuf {
    journal_dir(git).join(format!("{}.json", encode_name(branch)))
}

impl Journal {
    fn write(
        git: &Repository,
        branch: &str,
        co: &Checkout,
        from_commit: Option<Oid>,
        from_tree: Option<Oid>,
        to: Oid,
    ) -> Result<Journal> {
        let data = JournalData {
            branch: branch.to_string(),
            worktree: co.path.clone(),
            from_commit: from_commit.map(|c| c.to_string()),
            from_tree: from_tree.map(|t| t.to_string()),
            to_commit: to.to_string(),
        };
        let path = journal_path(git, branch);
        let dir = journal_dir(git);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let bytes = serde_json::to_vec(&data).context("write the sync journal")?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io("create a file in", &dir, e))?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| Error::io("write", tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| Error::io("sync", &path, e))?;
        tmp.persist(&path).map_err(|e| Error::io("write", &path, e.error))?;
        Ok(Journal { path })
    }

    fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub branch: String,
    pub worktree: PathBuf,
}

/// Finish every worktree sync that an earlier mlgit process started and did not end (it was killed
/// after the branch moved): the worktree and its index are brought to the branch's tip. Every mlgit
/// command calls this first. A sync whose ref never moved is simply forgotten.
pub fn recover(repo: &Repo) -> Result<Vec<Recovered>> {
    let git = repo.git();
    let dir = journal_dir(git);
    let Ok(entries) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut done = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(branch) = name.strip_suffix(".json").map(decode_name) else { continue };
        if validate_branch_name(&branch).is_err() {
            // Not a journal mlgit wrote (hand-made or mangled): it describes no sync to finish.
            let _ = fs::remove_file(&path);
            continue;
        }
        // A busy lock means the writer is alive and its sync is under way, not interrupted.
        let lock = lock_path(git, &format!("branch-{branch}"));
        let TryLock::Acquired(_held) = FileLock::try_acquire(&lock, "mlgit (finishing an interrupted sync)")?
        else {
            continue;
        };
        if let Some(r) = recover_branch(repo, &branch)? {
            done.push(r);
        }
    }
    Ok(done)
}

/// [`recover`] for one branch, with the branch's lock held by the caller.
fn recover_branch(repo: &Repo, branch: &str) -> Result<Option<Recovered>> {
    let path = journal_path(repo.git(), branch);
    let Ok(bytes) = fs::read(&path) else { return Ok(None) };
    match serde_json::from_slice::<JournalData>(&bytes) {
        Ok(data) if data.branch == branch => finish(repo, &path, &data),
        _ => {
            let _ = fs::remove_file(&path);
            Ok(None)
        }
    }
}

fn finish(repo: &Repo, journal: &Path, data: &JournalData) -> Result<Option<Recovered>> {
    let git = repo.git();
    let tip = repo.branch_tip(&data.branch)?;
    let from_commit = data.from_commit.as_deref().and_then(|s| Oid::from_str(s).ok());
    let forget = || {
        let _ = fs::remove_file(journal);
    };
    // The ref never moved (killed before the swap): the worktree was never touched.
    if tip == from_commit {
        forget();
        return Ok(None);
    }
    let Some(tip) = tip else {
        forget();
        return Ok(None);
    };
    let Some(co) = worktree::find_checkout(git, &data.branch)? else {
        forget();
        return Ok(None);
    };
    let from_tree = data.from_tree.as_deref().and_then(|s| Oid::from_str(s).ok());
    let to_tree = git.find_commit(tip).context("read the branch tip")?.tree_id();
    // Wherever the branch is checked out now (a worktree may have been moved), finish only a
    // checkout whose index still shows the tree the interrupted sync started from.
    let index_tree = co.repo.index().and_then(|mut i| i.write_tree()).ok();
    // A branch the sync created started from nothing: an empty index (an unborn checkout).
    let started_from = match from_tree {
        Some(t) => Some(t),
        None => Some(Oid::hash_object(git2::ObjectType::Tree, b"").context("hash the empty tree")?),
    };
    if index_tree.is_none() || index_tree != started_from {
        forget();
        return Ok(None);
    }
    check_recovery(co.repo.path(), &co, &data.branch, from_tree, to_tree)?;
    worktree::sync_checkout(&co, repo.store(), from_tree, to_tree, &HashMap::new()).map_err(|e| {
        let hint = format!(
            "the branch '{}' moved but its checkout in {} could not be brought up to date; fix the cause above (move away a file in the way) and run any mlgit command again",
            data.branch,
            co.path.display(),
        );
        e.with_hint(hint)
    })?;
    // The killed run may have left a temporary file beside one it was writing.
    let mut dirs: Vec<String> = list_files(git, to_tree)?
        .into_iter()
        .map(|f| f.path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default())
        .collect();
    dirs.push(String::new());
    dirs.sort_unstable();
    dirs.dedup();
    crate::restore::remove_temp_files(&co.path, &dirs)?;
    forget();
    Ok(Some(Recovered { branch: data.branch.clone(), worktree: co.path.clone() }))
}

/// Before a sync cut short by a crash is finished: the user may have worked in the checkout since.
/// Every path the sync writes must be free or already hold exactly its new content (written by
/// the interrupted run), and no folder on the way to a written or deleted file may be a symlink.
fn check_recovery(_: &Path, co: &Checkout, branch: &str, from: Option<Oid>, to: Oid) -> Result<()> {
    let git = &co.repo;
    let new_files: BTreeMap<String, Oid> =
        list_files(git, to)?.into_iter().map(|f| (f.path, f.oid)).collect();
    let written: Vec<&String> = match from {
        Some(f) => {
            let changed = changed_paths(git, f, to)?;
            new_files.keys().filter(|p| changed.contains(*p)).collect()
        }
        None => new_files.keys().collect(),
    };
    let deleted: Vec<String> = match from {
        Some(f) => {
            list_files(git, f)?.into_iter().map(|f| f.path).filter(|p| !new_files.contains_key(p)).collect()
        }
        None => Vec::new(),
    };
    let index = git.index().context("read the index")?;
    let tracked = |p: &str| is_tracked(&index, p);
    let mut dirs_ok = HashSet::new();
    let mut blocked = Vec::new();
    for path in written {
        match blocker(&co.path, path, &tracked, &mut dirs_ok) {
            None => {}
            Some("an untracked file") if holds(git, &co.path.join(path), new_files[path.as_str()]) => {}
            Some(why) => blocked.push(format!("{path} ({why})")),
        }
    }
    for path in &deleted {
        // Every file counts as tracked here, a symlink never: none may stand where a folder goes.
        let not_a_link =
            |p: &str| !fs::symlink_metadata(co.path.join(p)).is_ok_and(|m| m.file_type().is_symlink());
        if let Some(why @ "a symlink where a folder goes") =
            blocker(&co.path, path, &not_a_link, &mut dirs_ok)
        {
            blocked.push(format!("{path} ({why})"));
        }
    }
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "an earlier mlgit run moved '{branch}' and was interrupted before it updated its checkout in {}; \
         finishing that update would overwrite or escape through: {}",
        co.path.display(),
        list_some(&blocked)
    ))
    .with_hint(format!(
        "move those paths out of {} (they are not in any commit), then run any mlgit command again",
        co.path.display()
    )))
}

/// Whether the regular file at `full` holds exactly what the blob `oid` stands for (its LFS content
/// when the blob is a pointer).
fn holds(git: &Repository, full: &Path, oid: Oid) -> bool {
    let Ok(blob) = git.find_blob(oid) else { return false };
    let Ok(meta) = fs::symlink_metadata(full) else { return false };
    if !meta.is_file() {
        return false;
    }
    match crate::store::Pointer::from_blob(blob.content()) {
        Some(p) => fs::File::open(full)
            .and_then(|mut f| crate::store::hash_reader(&mut f))
            .is_ok_and(|(sha, size)| sha == p.oid && size == p.size),
        None => meta.len() == blob.size() as u64 && fs::read(full).is_ok_and(|b| b == blob.content()),
    }
}

/// Put the branch back where it was before `commit` (delete it if the transaction created it),
/// only if it still points at `commit`.
fn undo(git: &Repository, branch: &str, previous: Option<Oid>, commit: Oid) -> Result<()> {
    match previous {
        Some(p) => {
            compare_and_swap(git, branch, p, Some(commit), "mlgit: undo")?;
        }
        None => {
            if let Ok(mut r) = git.find_reference(&format!("refs/heads/{branch}")) {
                if r.target() == Some(commit) {
                    r.delete().context(format!("delete branch '{branch}'"))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_git_trips_over_are_refused() {
        for bad in [
            "",
            "HEAD",
            "@",
            "refs/heads/x",
            "refs/tags/v1",
            "-x",
            "a..b",
            "a b",
            "x@{1}",
            "a.lock",
            "heads/raw",
            "tags/v1",
            "remotes/origin/x",
            "FETCH_HEAD",
            "ORIG_HEAD",
            "MERGE_HEAD",
        ] {
            assert!(validate_branch_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["raw", "stable/model", "monitoring/prod", "dev/a-b_c.1"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok:?}");
        }
    }
}
