//! The second half of `pull`: after `git fetch` updated `refs/remotes/<remote>/*`, bring each
//! local convention branch up to what the remote has, through the branch transaction (no ref is
//! moved by hand):
//!
//! - missing locally: created at the remote tip, with its upstream set;
//! - behind: fast-forwarded (the checkout, if any, is brought up to date);
//! - ahead or equal: left alone;
//! - diverged, append-only (`raw`, `monitoring/*`): a merge commit whose tree is the union of both
//!   sides, written without a checkout; a path whose content differs on the two sides is refused;
//! - diverged `main`: a merge commit whose tracking is re-merged — the union of both sides' run files
//!   with the run list and leaderboard regenerated, the remote's MLflow runs merged into ours
//!   snapshot by snapshot — and every other path merged three-way;
//! - diverged otherwise (clean, split, dev, stable, env): refused with what to do instead.
//!
//! One branch refused leaves the others integrated; the outcome says which is which.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use git2::{Commit, Delta, DiffOptions, FileMode, Oid, Repository};
use serde::Serialize;

use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::repo::trailers::Message;
use crate::repo::transaction::{Change, Step, Transaction, TxOptions, TxOutcome};
use crate::repo::tree::{entry_at, list_files, Entry, TreeEdits};
use crate::repo::Repo;
use crate::store::attributes;
use crate::tracking::{self, listed_runs, run_files, LEADERBOARD, MLRUNS, RUNS_LIST};

/// The trailer naming how a merge commit was made (`union` or `tracking`).
pub const MERGE_TRAILER: &str = "Mlgit-Merge";
/// The trailer naming the remote-tracking ref and commit that was merged.
pub const MERGED_TRAILER: &str = "Mlgit-Merged";

/// What to integrate.
#[derive(Debug, Clone, Default)]
pub struct IntegrateOptions {
    /// The remote whose remote-tracking refs (`refs/remotes/<remote>/*`) were just fetched.
    pub remote: String,
    /// The branches to integrate; empty: every convention branch the remote has.
    pub branches: Vec<String>,
    pub interrupt: Interrupt,
}

/// What happened to each branch.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrateOutcome {
    pub remote: String,
    pub branches: Vec<BranchIntegration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The branch did not exist locally: it now starts at the remote tip.
    Created,
    FastForwarded,
    /// Both sides had new commits: a merge commit joins them.
    Merged,
    UpToDate,
    /// The local branch has commits the remote lacks (push them with `mlgit push`).
    Ahead,
    /// Left as it was; `reason` and `hint` say why and what to do.
    Refused,
}

#[derive(Debug, Clone, Serialize)]
pub struct BranchIntegration {
    pub branch: String,
    pub kind: BranchKind,
    pub action: Action,
    /// The remote-tracking ref integrated (`origin/raw`).
    pub remote_ref: String,
    /// The remote tip (null when the remote does not have the branch).
    pub remote_tip: Option<String>,
    /// The local tip before and after.
    pub before: Option<String>,
    pub after: Option<String>,
    /// Commits the local branch has that the remote lacks, and the other way round (before).
    pub ahead: usize,
    pub behind: usize,
    /// How a merge was made: `union` (append-only branches) or `tracking` (main).
    pub merge: Option<String>,
    /// Files a union merge added, or runs a tracking merge brought from the remote.
    pub added: Vec<String>,
    /// The checkout that was brought up to date, and why one could not be (the branch moved anyway).
    pub worktree: Option<String>,
    pub sync_error: Option<String>,
    /// Whether `branch.<name>.remote`/`.merge` were set (the branch had no upstream).
    pub upstream_set: bool,
    pub reason: Option<String>,
    pub hint: Option<String>,
    /// The paths that made a merge impossible (different content on the two sides).
    pub paths: Vec<String>,
}

impl IntegrateOutcome {
    /// The branches left as they were.
    pub fn refused(&self) -> impl Iterator<Item = &BranchIntegration> {
        self.branches.iter().filter(|b| b.action == Action::Refused)
    }

    /// An error naming every refused branch with its reason and hint (for a command that exits 1
    /// when anything was refused); None when every branch was integrated.
    pub fn error(&self) -> Option<Error> {
        let refused: Vec<&BranchIntegration> = self.refused().collect();
        if refused.is_empty() {
            return None;
        }
        let reasons: Vec<String> = refused
            .iter()
            .map(|b| format!("'{}': {}", b.branch, b.reason.as_deref().unwrap_or("refused")))
            .collect();
        let hints: Vec<String> =
            refused.iter().filter_map(|b| b.hint.as_ref().map(|h| format!("'{}': {h}", b.branch))).collect();
        Some(
            Error::conflict(format!(
                "{} branch(es) left as they were: {}",
                refused.len(),
                reasons.join("; ")
            ))
            .with_hint(format!("{} (the other branches were integrated)", hints.join("; "))),
        )
    }
}

/// Integrate the fetched remote-tracking branches of `opts.remote` into the local branches (see
/// the module docs). Errors that concern one branch are reported in its entry, not returned.
pub fn integrate(repo: &Repo, opts: &IntegrateOptions) -> Result<IntegrateOutcome> {
    let git = repo.git();
    let config = repo.config();
    let on_remote = remote_branches(git, &opts.remote)?;
    let mut todo: Vec<(BranchKind, String)> = if opts.branches.is_empty() {
        on_remote
            .keys()
            .map(|b| (config.branch_kind(b), b.clone()))
            .filter(|(k, _)| *k != BranchKind::Other)
            .collect()
    } else {
        opts.branches.iter().map(|b| (config.branch_kind(b), b.clone())).collect()
    };
    todo.sort();
    todo.dedup();
    let mut out = IntegrateOutcome { remote: opts.remote.clone(), branches: Vec::new() };
    for (kind, branch) in todo {
        opts.interrupt.check("pull")?;
        let remote_ref = format!("{}/{branch}", opts.remote);
        let mut entry = BranchIntegration {
            branch: branch.clone(),
            kind,
            action: Action::Refused,
            remote_ref: remote_ref.clone(),
            remote_tip: None,
            before: None,
            after: None,
            ahead: 0,
            behind: 0,
            merge: None,
            added: Vec::new(),
            worktree: None,
            sync_error: None,
            upstream_set: false,
            reason: None,
            hint: None,
            paths: Vec::new(),
        };
        let Some(&remote_tip) = on_remote.get(&branch) else {
            entry.reason = Some(format!("{} has no branch '{branch}'", opts.remote));
            entry.hint = Some(format!(
                "check the name (`git branch -r` lists what {} has), or push it first with `mlgit push`",
                opts.remote
            ));
            out.branches.push(entry);
            continue;
        };
        entry.remote_tip = Some(remote_tip.to_string());
        if let Err(e) = integrate_branch(repo, &opts.remote, &branch, remote_tip, &mut entry) {
            entry.action = Action::Refused;
            entry.reason = Some(e.message().to_string());
            entry.hint = e.hint().map(str::to_string);
        }
        out.branches.push(entry);
    }
    Ok(out)
}

/// Create `branch` from `refs/remotes/<remote>/<branch>` when it is missing locally and the
/// remote-tracking ref exists (`mlgit init` in a clone), with its upstream set. Returns the new
/// tip, or None when there is no such remote-tracking ref or the branch exists.
pub fn create_from_remote(repo: &Repo, remote: &str, branch: &str, writer: &str) -> Result<Option<Oid>> {
    let Some(remote_tip) = remote_tip(repo.git(), remote, branch)? else { return Ok(None) };
    if repo.branch_tip(branch)?.is_some() {
        return Ok(None);
    }
    let tx = Transaction::open(
        repo,
        branch,
        TxOptions { create: true, writer: writer.into(), ..Default::default() },
    )?;
    let done =
        tx.commit(|tip| Ok(if tip.is_none() { Step::FastForward(remote_tip) } else { Step::Nothing }))?;
    if done.commit.is_none() {
        return Ok(None);
    }
    set_upstream(repo.git(), remote, branch)?;
    Ok(done.commit)
}

/// The commit `refs/remotes/<remote>/<branch>` points at, if that ref exists.
pub fn remote_tip(git: &Repository, remote: &str, branch: &str) -> Result<Option<Oid>> {
    match git.find_reference(&format!("refs/remotes/{remote}/{branch}")) {
        Ok(r) => match r.peel_to_commit() {
            Ok(c) => Ok(Some(c.id())),
            Err(_) => Ok(None),
        },
        Err(e) if e.code() == git2::ErrorCode::NotFound || e.code() == git2::ErrorCode::InvalidSpec => {
            Ok(None)
        }
        Err(e) => Err(Error::git(format!("read refs/remotes/{remote}/{branch}"), e)),
    }
}

/// Every branch the remote-tracking refs of `remote` hold: name → commit (`HEAD` left out).
pub fn remote_branches(git: &Repository, remote: &str) -> Result<BTreeMap<String, Oid>> {
    let prefix = format!("refs/remotes/{remote}/");
    let mut out = BTreeMap::new();
    for r in git.references().context("list refs")? {
        let r = r.context("read a ref")?;
        let Some(name) = r.name().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        if name == "HEAD" || r.symbolic_target().is_some() {
            continue;
        }
        let name = name.to_string();
        if let Ok(c) = r.peel_to_commit() {
            out.insert(name, c.id());
        }
    }
    Ok(out)
}

/// Set `branch.<branch>.remote`/`.merge` so git (and `mlgit status`) compare it with the remote's.
fn set_upstream(git: &Repository, remote: &str, branch: &str) -> Result<()> {
    let mut config = git.config().context("open the repository's git config")?;
    config.set_str(&format!("branch.{branch}.remote"), remote).context("set the branch's upstream")?;
    config
        .set_str(&format!("branch.{branch}.merge"), &format!("refs/heads/{branch}"))
        .context("set the branch's upstream")?;
    Ok(())
}

fn has_upstream(git: &Repository, branch: &str) -> bool {
    git.config().and_then(|c| c.get_string(&format!("branch.{branch}.remote"))).is_ok()
}

/// How the local tip and the remote tip relate.
enum Relation {
    Missing,
    Same,
    Ahead(usize),
    Behind(usize),
    Diverged(usize, usize),
}

fn relation(git: &Repository, local: Option<Oid>, remote: Oid) -> Result<Relation> {
    let Some(local) = local else { return Ok(Relation::Missing) };
    if local == remote {
        return Ok(Relation::Same);
    }
    let (ahead, behind) =
        git.graph_ahead_behind(local, remote).context("compare the local and remote tips")?;
    Ok(match (ahead, behind) {
        (_, 0) => Relation::Ahead(ahead),
        (0, _) => Relation::Behind(behind),
        _ => Relation::Diverged(ahead, behind),
    })
}

/// What one attempt decided (the transaction may call the build step again on a moved tip).
#[derive(Default)]
struct Plan {
    action: Option<Action>,
    merge: Option<&'static str>,
    added: Vec<String>,
    paths: Vec<String>,
}

fn integrate_branch(
    repo: &Repo,
    remote: &str,
    branch: &str,
    remote_tip: Oid,
    entry: &mut BranchIntegration,
) -> Result<()> {
    let git = repo.git();
    let local = repo.branch_tip(branch)?;
    entry.before = local.map(|o| o.to_string());
    entry.after = entry.before.clone();
    match relation(git, local, remote_tip)? {
        Relation::Same => {
            entry.action = Action::UpToDate;
            return Ok(());
        }
        Relation::Ahead(n) => {
            entry.ahead = n;
            entry.action = Action::Ahead;
            return Ok(());
        }
        Relation::Behind(n) => entry.behind = n,
        Relation::Diverged(a, b) => (entry.ahead, entry.behind) = (a, b),
        Relation::Missing => {}
    }
    let remote_ref = entry.remote_ref.clone();
    let target = Target { branch, kind: entry.kind, remote_ref: &remote_ref, remote_tip };
    let mut plan = Plan::default();
    let result = Transaction::open(
        repo,
        branch,
        TxOptions { create: local.is_none(), writer: "mlgit pull".into(), ..Default::default() },
    )
    .and_then(|tx| {
        tx.commit(|tip| {
            plan = Plan::default();
            build(repo, &target, tip, &mut plan)
        })
    });
    entry.paths = std::mem::take(&mut plan.paths);
    let done: TxOutcome = result?;
    entry.action = plan.action.unwrap_or(Action::UpToDate);
    entry.merge = plan.merge.map(str::to_string);
    entry.added = plan.added;
    entry.after = repo.branch_tip(branch)?.map(|o| o.to_string());
    entry.worktree = done.worktree.map(|p| p.display().to_string());
    entry.sync_error = done.sync_error;
    if !has_upstream(git, branch) && git.find_remote(remote).is_ok() {
        set_upstream(git, remote, branch)?;
        entry.upstream_set = true;
    }
    Ok(())
}

/// A local branch and the remote tip it is brought to.
struct Target<'a> {
    branch: &'a str,
    kind: BranchKind,
    /// `origin/raw`.
    remote_ref: &'a str,
    remote_tip: Oid,
}

/// The build step of the transaction: decided again on every tip it is given.
fn build(repo: &Repo, target: &Target<'_>, tip: Option<&Commit<'_>>, plan: &mut Plan) -> Result<Step> {
    let git = repo.git();
    let Target { branch, kind, remote_ref, remote_tip } = *target;
    let Some(tip) = tip else {
        plan.action = Some(Action::Created);
        return Ok(Step::FastForward(remote_tip));
    };
    match relation(git, Some(tip.id()), remote_tip)? {
        Relation::Missing | Relation::Same => {
            plan.action = Some(Action::UpToDate);
            return Ok(Step::Nothing);
        }
        Relation::Ahead(_) => {
            plan.action = Some(Action::Ahead);
            return Ok(Step::Nothing);
        }
        Relation::Behind(_) => {
            plan.action = Some(Action::FastForwarded);
            return Ok(Step::FastForward(remote_tip));
        }
        Relation::Diverged(..) => {}
    }
    let theirs = git.find_commit(remote_tip).context(format!("read {remote_ref}"))?;
    let change = if repo.config().is_append_only(branch) {
        plan.merge = Some("union");
        union_merge(git, branch, remote_ref, tip, &theirs, plan)?
    } else if kind == BranchKind::Main {
        plan.merge = Some("tracking");
        main_merge(repo, branch, remote_ref, tip, &theirs, plan)?
    } else {
        return Err(Error::conflict(format!(
            "'{branch}' and {remote_ref} have both moved on (diverged); mlgit merges only append-only branches and main's tracking"
        ))
        .with_hint(diverged_hint(kind, branch, remote_ref)));
    };
    plan.action = Some(Action::Merged);
    Ok(Step::Commit(Box::new(change)))
}

fn diverged_hint(kind: BranchKind, branch: &str, remote_ref: &str) -> String {
    match kind {
        BranchKind::Clean | BranchKind::Split => {
            let cmd = if kind == BranchKind::Clean { "clean" } else { "split" };
            format!(
                "'{branch}' is derived data: take the remote's (`git branch -f {branch} {remote_ref}`, or \
                 `git reset --hard {remote_ref}` where it is checked out), then run `mlgit {cmd}` again to \
                 derive from the merged history"
            )
        }
        BranchKind::Env => format!(
            "'{branch}' is a deployment log, and someone else deployed meanwhile: see theirs (`mlgit envs log` after \
             `git log {remote_ref}`), take it (`git branch -f {branch} {remote_ref}`), then promote your tag again \
             (`mlgit promote TAG --env …`); a hand-made merge is not a deployment and a protected env/ branch refuses it"
        ),
        _ => format!("merge the code by hand with git: `git checkout {branch} && git merge {remote_ref}`"),
    }
}

fn changes(git: &Repository, old: Oid, new: Oid) -> Result<Vec<(Delta, String, Entry)>> {
    let old = git.find_tree(old).context("read a tree")?;
    let new = git.find_tree(new).context("read a tree")?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = git.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts)).context("compare trees")?;
    Ok(diff
        .deltas()
        .filter_map(|d| {
            let file = if d.status() == Delta::Deleted { d.old_file() } else { d.new_file() };
            let path = file.path()?.to_string_lossy().into_owned();
            Some((d.status(), path, Entry { oid: file.id(), mode: file.mode() }))
        })
        .collect())
}

/// Whether any of `paths` existed in the merge base of the two sides (then one side changed a
/// committed file; otherwise both added it).
fn in_merge_base(git: &Repository, ours: &Commit<'_>, theirs: &Commit<'_>, paths: &[String]) -> bool {
    let Ok(base) = git.merge_base(ours.id(), theirs.id()) else { return false };
    let Ok(tree) = git.find_commit(base).and_then(|c| c.tree()) else { return false };
    paths.iter().any(|p| tree.get_path(std::path::Path::new(p)).is_ok())
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// The union of an append-only branch's two sides: every file of ours, plus every file only
/// theirs has. A path with different content on the two sides (or a file on one side where the
/// other has a folder) cannot be in a union: refused, the paths named.
fn union_merge(
    git: &Repository,
    branch: &str,
    remote_ref: &str,
    ours: &Commit<'_>,
    theirs: &Commit<'_>,
    plan: &mut Plan,
) -> Result<Change> {
    let mut added: BTreeMap<String, Entry> = BTreeMap::new();
    let mut ours_only: HashSet<String> = HashSet::new();
    let mut conflicts: BTreeSet<String> = BTreeSet::new();
    for (status, path, entry) in changes(git, ours.tree_id(), theirs.tree_id())? {
        if path == attributes::FILE {
            // Merged below: the managed block is rewritten by the transaction's attributes step.
            continue;
        }
        match status {
            Delta::Added => {
                added.insert(path, entry);
            }
            Delta::Deleted => {
                ours_only.insert(path);
            }
            _ => {
                conflicts.insert(path);
            }
        }
    }
    // A file on one side where the other side has a folder.
    for path in added.keys() {
        if let Some(a) = ancestors(path).find(|a| ours_only.contains(*a)) {
            conflicts.insert(a.to_string());
        }
    }
    for path in &ours_only {
        if let Some(a) = ancestors(path).find(|a| added.contains_key(*a)) {
            conflicts.insert(a.to_string());
        }
    }
    if !conflicts.is_empty() {
        plan.paths = conflicts.into_iter().collect();
        let unrelated = git.merge_base(ours.id(), theirs.id()).is_err();
        let hint = if unrelated {
            // The trap of an older `mlgit init` in a clone: a new orphan branch beside the remote's.
            format!(
                "'{branch}' and {remote_ref} share no commit (the local one was started without the remote's \
                 history): move yours aside (`git branch -m {branch} {branch}-local`), run `mlgit init` to \
                 start '{branch}' from {remote_ref}, then commit your data again with `mlgit commit-data`; nothing was written"
            )
        } else if !in_merge_base(git, ours, theirs, &plan.paths) {
            // The usual way: two people committed batches under the same --dest.
            format!(
                "both sides added these paths with different content (two batches under the same --dest?): keep \
                 yours aside (`git branch {branch}-mine {branch}`), take the remote's (`git branch -f {branch} \
                 {remote_ref}`, or `git reset --hard {remote_ref}` where '{branch}' is checked out), then commit your \
                 batch again under another --dest (`mlgit materialize {branch}-mine --into DIR` gives its files \
                 back); nothing was written"
            )
        } else {
            format!(
                "an append-only branch never changes a committed file, so one side was edited with plain git: \
                 find which with `git log -p {branch} {remote_ref} -- PATH` and `mlgit verify {branch}`; nothing was written"
            )
        };
        return Err(Error::conflict(format!(
            "'{branch}' is append-only and diverged from {remote_ref}, and {} path(s) hold different content on the two sides: {}",
            plan.paths.len(),
            list_some(&plan.paths)
        ))
        .with_hint(hint));
    }
    let mut edits = TreeEdits::new();
    for (path, entry) in &added {
        edits.set(path, *entry)?;
    }
    if let Some(e) = merge_attributes(git, ours.tree_id(), theirs.tree_id())? {
        edits.set(attributes::FILE, e)?;
    }
    let tree = edits.write(git, Some(ours.tree_id()))?;
    plan.added = added.into_keys().collect();
    let message =
        Message::new(format!("Merge {remote_ref} into {branch}: union of two append-only histories"))
            .body(format!(
                "Both sides added files since they diverged. Every file of both is kept; none differs.\n\
             {} file(s) came from {remote_ref}.",
                plan.added.len()
            ))
            .trailer(MERGE_TRAILER, "union")
            .trailer(MERGED_TRAILER, format!("{remote_ref} {}", theirs.id()))
            .trailer(crate::repo::trailers::keys::FILES_ADDED, plan.added.len())
            .render();
    let mut change = Change::new(tree, message);
    change.extra_parents.push(theirs.id());
    change.merge = true;
    Ok(change)
}

/// The lines of a `.gitattributes` outside mlgit's managed block (the user's own).
fn user_lines(text: &str) -> Vec<&str> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line == attributes::BEGIN {
            inside = true;
        } else if line == attributes::END && inside {
            inside = false;
        } else if !inside {
            out.push(line);
        }
    }
    out
}

fn attributes_text(git: &Repository, tree: Oid) -> Result<Option<String>> {
    match entry_at(git, tree, attributes::FILE)? {
        Some(e) if e.mode != FileMode::Tree => {
            let blob = git.find_blob(e.oid).context("read .gitattributes")?;
            Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
        }
        _ => Ok(None),
    }
}

/// Our `.gitattributes` with the lines of their own that the other side added outside the managed
/// block (a colleague's `git lfs track`), when it has any; None: ours stands as it is. The managed
/// block is rewritten for the merged tree by the transaction.
fn merge_attributes(git: &Repository, ours: Oid, theirs: Oid) -> Result<Option<Entry>> {
    let Some(their_text) = attributes_text(git, theirs)? else { return Ok(None) };
    let our_text = attributes_text(git, ours)?.unwrap_or_default();
    let ours_user = user_lines(&our_text);
    let extra: Vec<&str> = user_lines(&their_text)
        .into_iter()
        .filter(|l| !l.trim().is_empty() && !ours_user.contains(l))
        .collect();
    if extra.is_empty() {
        return Ok(None);
    }
    let mut user: Vec<&str> = ours_user;
    while user.last().is_some_and(|l| l.trim().is_empty()) {
        user.pop();
    }
    user.extend(extra);
    let mut text = user.join("\n");
    text.push('\n');
    let oid = git.blob(text.as_bytes()).context("write .gitattributes")?;
    Ok(Some(Entry::blob(oid)))
}

fn is_tracking(path: &str) -> bool {
    path.starts_with("tracking/") || path.starts_with(&format!("{MLRUNS}/"))
}

/// The files under the folder `dir` of a tree.
fn files_under(git: &Repository, tree: Oid, dir: &str) -> Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    if let Some(e) = entry_at(git, tree, dir)?.filter(|e| e.mode == FileMode::Tree) {
        for f in list_files(git, e.oid)? {
            out.insert(format!("{dir}/{}", f.path), Entry { oid: f.oid, mode: f.mode });
        }
    }
    Ok(out)
}

/// Main's two sides: every path but the tracking merged three-way (git's merge of trees); the
/// tracking is the union of both sides' run files and MLflow store, with the run list and the
/// leaderboard regenerated, as the tracking merge makes them. A conflict elsewhere is refused.
fn main_merge(
    repo: &Repo,
    branch: &str,
    remote_ref: &str,
    ours: &Commit<'_>,
    theirs: &Commit<'_>,
    plan: &mut Plan,
) -> Result<Change> {
    let git = repo.git();
    let base_tree = match git.merge_base(ours.id(), theirs.id()) {
        Ok(b) => git.find_commit(b).context("read the merge base")?.tree().context("read the merge base")?,
        Err(_) => {
            let empty = TreeEdits::new().write(git, None)?;
            git.find_tree(empty).context("read the empty tree")?
        }
    };
    let our_tree = ours.tree().context("read the local tree")?;
    let their_tree = theirs.tree().context("read the remote tree")?;
    let mut index = git.merge_trees(&base_tree, &our_tree, &their_tree, None).context("merge the trees")?;

    let mut conflicts: BTreeSet<String> = BTreeSet::new();
    let mut settled = Vec::new();
    for c in index.conflicts().context("read the merge's conflicts")? {
        let c = c.context("read a merge conflict")?;
        let Some(e) = c.our.as_ref().or(c.their.as_ref()).or(c.ancestor.as_ref()) else { continue };
        let path = String::from_utf8_lossy(&e.path).into_owned();
        if is_tracking(&path) || path == attributes::FILE {
            settled.push(path);
        } else {
            conflicts.insert(path);
        }
    }
    if !conflicts.is_empty() {
        plan.paths = conflicts.into_iter().collect();
        return Err(Error::conflict(format!(
            "'{branch}' diverged from {remote_ref} and {} path(s) outside the tracking changed on both sides: {}",
            plan.paths.len(),
            list_some(&plan.paths)
        ))
        .with_hint(format!(
            "merge by hand with git (`git merge {remote_ref}` on {branch}), then `mlgit merge-tracking` if runs are missing; nothing was written"
        )));
    }
    for path in &settled {
        index.conflict_remove(std::path::Path::new(path)).context("settle a tracking conflict")?;
    }
    let merged = index.write_tree_to(git).context("write the merged tree")?;

    // The tracking: the union of both sides' run files (a run recorded differently is a real
    // conflict), and their MLflow stores merged as the tracking merge merges snapshots.
    let ours_tracking = files_under(git, ours.tree_id(), "tracking")?;
    let theirs_tracking = files_under(git, theirs.tree_id(), "tracking")?;
    let mut union = ours_tracking.clone();
    let mut differ = BTreeSet::new();
    for (path, entry) in &theirs_tracking {
        match union.get(path) {
            None => {
                union.insert(path.clone(), *entry);
            }
            Some(e) if e == entry || path == RUNS_LIST || path == LEADERBOARD => {}
            Some(_) => {
                differ.insert(path.clone());
            }
        }
    }
    if !differ.is_empty() {
        plan.paths = differ.into_iter().collect();
        return Err(Error::conflict(format!(
            "'{branch}' diverged from {remote_ref} and {} tracking file(s) differ on the two sides: {}",
            plan.paths.len(),
            list_some(&plan.paths)
        ))
        .with_hint(format!(
            "take the remote's main (`git branch -f {branch} {remote_ref}`, or `git reset --hard {remote_ref}` where it is checked out) \
             and run `mlgit merge-tracking`: it merges again every snapshot tag main lacks; nothing was written"
        )));
    }
    let mut edits = TreeEdits::new();
    edits.remove("tracking")?;
    edits.remove(MLRUNS)?;
    for (path, entry) in &union {
        edits.set(path, *entry)?;
    }
    let store_of = |tree: Oid| -> Result<Option<Oid>> {
        Ok(entry_at(git, tree, MLRUNS)?.filter(|e| e.mode == FileMode::Tree).map(|e| e.oid))
    };
    match (store_of(ours.tree_id())?, store_of(theirs.tree_id())?) {
        (Some(o), Some(t)) if o != t => {
            let merged = tracking::merge::merge_stores(
                &tracking::merge::read_store(git, o, &format!("{MLRUNS}/"))?,
                &tracking::merge::read_store(git, t, &format!("{remote_ref}:{MLRUNS}/"))?,
            )?;
            for (path, bytes) in &merged {
                let blob = git.blob(bytes).context(format!("write {MLRUNS}/{path}"))?;
                edits.set(&format!("{MLRUNS}/{path}"), Entry::blob(blob))?;
            }
        }
        (Some(one), _) | (None, Some(one)) => edits.graft(MLRUNS, one)?,
        (None, None) => {}
    }
    if settled.iter().any(|p| p == attributes::FILE) {
        // Its managed block is rewritten by the transaction; the user's lines of both sides stay.
        match merge_attributes(git, ours.tree_id(), theirs.tree_id())? {
            Some(e) => edits.set(attributes::FILE, e)?,
            None => match entry_at(git, ours.tree_id(), attributes::FILE)? {
                Some(e) => edits.set(attributes::FILE, e)?,
                None => edits.remove(attributes::FILE)?,
            },
        }
    }
    let mut tree = edits.write(git, Some(merged))?;
    let ours_runs = run_files(git, ours.tree_id())?;
    let theirs_runs = run_files(git, theirs.tree_id())?;
    if !ours_runs.is_empty() || !theirs_runs.is_empty() {
        let known: BTreeMap<String, String> = listed_runs(git, ours.tree_id())?
            .into_iter()
            .chain(listed_runs(git, theirs.tree_id())?)
            .filter_map(|r| r.commit.map(|c| (r.tag, c)))
            .collect();
        tree = tracking::merge::regenerate(repo, tree, &known)?;
    }
    plan.added = theirs_runs.keys().filter(|t| !ours_runs.contains_key(*t)).cloned().collect();
    let message = Message::new(format!("Merge {remote_ref} into {branch}"))
        .body(format!(
            "Tracking re-merged over the runs of both sides ({} from {remote_ref}); tracking/runs.json and\n\
             tracking/README.md regenerated. Every other path merged three-way.",
            plan.added.len()
        ))
        .trailer(MERGE_TRAILER, "tracking")
        .trailer(MERGED_TRAILER, format!("{remote_ref} {}", theirs.id()))
        .render();
    let mut change = Change::new(tree, message);
    change.extra_parents.push(theirs.id());
    change.merge = true;
    Ok(change)
}

fn list_some(paths: &[String]) -> String {
    let shown: Vec<&str> = paths.iter().take(10).map(String::as_str).collect();
    let more = if paths.len() > 10 { format!(" and {} more", paths.len() - 10) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(branch: &str, action: Action) -> BranchIntegration {
        BranchIntegration {
            branch: branch.into(),
            kind: BranchKind::Raw,
            action,
            remote_ref: format!("origin/{branch}"),
            remote_tip: None,
            before: None,
            after: None,
            ahead: 0,
            behind: 0,
            merge: None,
            added: vec![],
            worktree: None,
            sync_error: None,
            upstream_set: false,
            reason: Some("it diverged".into()),
            hint: Some("do this".into()),
            paths: vec![],
        }
    }

    #[test]
    fn the_error_names_every_refused_branch_with_its_hint() {
        let mut o =
            IntegrateOutcome { remote: "origin".into(), branches: vec![entry("raw", Action::Merged)] };
        assert!(o.error().is_none());
        o.branches.push(entry("clean", Action::Refused));
        let e = o.error().unwrap();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert_eq!(e.message(), "1 branch(es) left as they were: 'clean': it diverged");
        assert_eq!(e.hint(), Some("'clean': do this (the other branches were integrated)"));
    }

    #[test]
    fn user_lines_leave_out_the_managed_block() {
        let text = format!(
            "*.txt eol=lf\n\n{}\ndata/a filter=lfs\n{}\n*.md text\n",
            attributes::BEGIN,
            attributes::END
        );
        assert_eq!(user_lines(&text), ["*.txt eol=lf", "", "*.md text"]);
    }

    #[test]
    fn ancestors_are_the_folders_on_the_way() {
        let a: Vec<&str> = ancestors("data/b/c.csv").collect();
        assert_eq!(a, ["data", "data/b"]);
        assert_eq!(ancestors("top").count(), 0);
    }
}
