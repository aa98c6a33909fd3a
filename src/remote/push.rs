//! `mlgit push`: send the LFS objects the remote's LFS server lacks, then the refs (the convention
//! branches, the snapshot tags) in one atomic `git push`. A ref the remote would reject is found
//! before anything is sent; a failed transfer moves no ref.

use std::time::Instant;

use git2::{BranchType, Oid};
use serde::Serialize;

use super::git_cli::{self, short_ref, RefStatus};
use super::select::{objects_to_push, peel_commit};
use super::{default_remote, Remote};
use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::lfs::{self, Operation, TransferOptions, TransferReport};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::snapshot::RUN_RECORD;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// A remote name or URL (None: `origin`, or the only remote).
    pub remote: Option<String>,
    /// Branches or tags to push (empty: the convention branches and snapshot tags).
    pub refs: Vec<String>,
    /// Every branch and every tag.
    pub all: bool,
    /// Ask the servers what they lack, send nothing.
    pub dry_run: bool,
    /// Parallel LFS transfers (None: the configured default).
    pub jobs: Option<usize>,
    pub interrupt: Interrupt,
}

/// One ref of a push.
#[derive(Debug, Clone, Serialize)]
pub struct RefUpdate {
    /// The short name (`raw`, `model-v3`).
    pub name: String,
    /// The full ref (`refs/heads/raw`).
    #[serde(rename = "ref")]
    pub full: String,
    pub status: RefStatus,
    /// The remote's value before the push.
    pub old: Option<String>,
    pub new: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub remote: String,
    pub url: String,
    pub dry_run: bool,
    pub refs: Vec<RefUpdate>,
    /// LFS objects introduced by the commits the remote lacked.
    pub objects: usize,
    pub lfs: TransferReport,
    /// Whether the refs moved in one atomic push (false: the server does not support it, or
    /// nothing had to move).
    pub atomic: bool,
    pub seconds: f64,
}

/// Push to a remote: objects first, then refs.
pub fn push(repo: &Repo, opts: &PushOptions, progress: &dyn Progress) -> Result<PushOutcome> {
    let start = Instant::now();
    let git = repo.git();
    let remote_name = match &opts.remote {
        Some(r) => r.clone(),
        None => default_remote(git)?,
    };
    let remote = Remote::find(git, &remote_name)?;
    let local = refs_to_push(repo, opts)?;
    if local.is_empty() {
        return Err(Error::not_found(
            "there is nothing to push: no convention branch or snapshot tag exists here",
        )
        .with_hint("name the branches to push (`mlgit push origin BRANCH`), or push everything with --all"));
    }
    let dir = repo.workdir().to_path_buf();
    progress.begin("asking the remote for its refs", 0, 0);
    let remote_refs = git_cli::ls_remote(&dir, &remote, &opts.interrupt);
    progress.end();
    let remote_refs = remote_refs?;
    refuse_foreign_remote(repo, &remote, &remote_refs)?;

    let mut updates = Vec::new();
    let mut rejected = Vec::new();
    for (full, oid) in &local {
        let old = remote_refs.refs.get(full).copied();
        let (status, reason) = match old {
            Some(o) if o == *oid => (RefStatus::UpToDate, None),
            None => (RefStatus::New, None),
            Some(o) if full.starts_with("refs/heads/") && is_ancestor(repo, o, *oid) => {
                (RefStatus::FastForward, None)
            }
            Some(_) if full.starts_with("refs/tags/") => {
                (RefStatus::Rejected, Some("already exists".to_string()))
            }
            Some(_) => (RefStatus::Rejected, Some("non-fast-forward".to_string())),
        };
        let update = RefUpdate {
            name: short_ref(full).to_string(),
            full: full.clone(),
            status,
            old: old.map(|o| o.to_string()),
            new: oid.to_string(),
            reason,
        };
        if update.status == RefStatus::Rejected {
            rejected.push(update.clone());
        }
        updates.push(update);
    }
    if !rejected.is_empty() {
        return Err(refused_before_sending(&remote, &rejected));
    }

    let moving: Vec<&RefUpdate> = updates.iter().filter(|u| u.status != RefStatus::UpToDate).collect();
    let mut outcome = PushOutcome {
        remote: remote.label().to_string(),
        url: remote.url.clone(),
        dry_run: opts.dry_run,
        refs: Vec::new(),
        objects: 0,
        lfs: TransferReport::default(),
        atomic: false,
        seconds: 0.0,
    };
    if moving.is_empty() {
        outcome.refs = updates;
        outcome.seconds = start.elapsed().as_secs_f64();
        return Ok(outcome);
    }

    let tips: Vec<Oid> = moving.iter().filter_map(|u| Oid::from_str(&u.new).ok()).collect();
    let remote_has: Vec<Oid> = remote_refs.refs.keys().filter_map(|name| remote_refs.peeled(name)).collect();
    progress.begin("finding the LFS objects to send", 0, 0);
    let objects = objects_to_push(repo, &tips, &remote_has);
    progress.end();
    let objects = objects?;
    outcome.objects = objects.len();
    if !objects.is_empty() {
        opts.interrupt.check("the push")?;
        let branch_tree = lfsconfig_tree(repo, &moving)?;
        let endpoint = lfs::endpoint(repo, &remote, Operation::Upload, branch_tree)?;
        let transfer = TransferOptions {
            interrupt: opts.interrupt.clone(),
            progress,
            jobs: opts.jobs,
            refspec: moving.iter().find(|u| u.full.starts_with("refs/heads/")).map(|u| u.full.clone()),
            dry_run: opts.dry_run,
        };
        outcome.lfs = lfs::upload(repo, &endpoint, &objects, &transfer)?;
    }

    opts.interrupt.check("the push")?;
    let refspecs: Vec<String> = moving.iter().map(|u| format!("{0}:{0}", u.full)).collect();
    progress.begin("pushing the refs", 0, 0);
    let pushed = git_cli::push(&dir, &remote, &refspecs, opts.dry_run, &opts.interrupt);
    progress.end();
    let pushed = pushed?;
    outcome.atomic = pushed.atomic;
    for update in &mut updates {
        if let Some(p) = pushed.refs.iter().find(|p| p.remote == update.full) {
            update.status = p.status.clone();
            update.reason = p.reason.clone();
        }
    }
    if !opts.dry_run {
        if let Some(name) = &remote.name {
            track_new_branches(repo, name, &updates)?;
        }
    }
    outcome.refs = updates;
    outcome.seconds = start.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The error of a push that git would reject: branches the remote moved on, tags it has with
/// another value. Nothing was sent.
fn refused_before_sending(remote: &Remote, rejected: &[RefUpdate]) -> Error {
    let (tags, branches): (Vec<&RefUpdate>, Vec<&RefUpdate>) =
        rejected.iter().partition(|r| r.full.starts_with("refs/tags/"));
    let mut parts = Vec::new();
    if !branches.is_empty() {
        let names: Vec<String> = branches.iter().map(|r| format!("{} (non-fast-forward)", r.name)).collect();
        parts.push(format!("it has commits on {} that this repository does not have", names.join(", ")));
    }
    if !tags.is_empty() {
        let names: Vec<String> = tags.iter().map(|r| format!("{} (already exists)", r.name)).collect();
        parts.push(format!("it has the tags {} with other values", names.join(", ")));
    }
    let hint = if branches.is_empty() {
        "nothing was sent; a snapshot tag never moves: give yours another name (`git tag -m … NEW OLD && git tag -d OLD`), then push again"
    } else {
        "nothing was sent; run `mlgit pull` first to bring them in, then push again"
    };
    Error::conflict(format!("{} would reject the push: {}", remote.label(), parts.join("; "))).with_hint(hint)
}

/// The refs to push with their local values: the ones named, every branch and tag (`--all`), or
/// the convention branches and snapshot tags that exist here.
fn refs_to_push(repo: &Repo, opts: &PushOptions) -> Result<Vec<(String, Oid)>> {
    let git = repo.git();
    let mut out: Vec<(String, Oid)> = Vec::new();
    if !opts.refs.is_empty() {
        for name in &opts.refs {
            out.push(resolve_local_ref(repo, name)?);
        }
    } else {
        let branches = git.branches(Some(BranchType::Local)).context("list the branches")?;
        for branch in branches {
            let (branch, _) = branch.context("list the branches")?;
            let Ok(Some(name)) = branch.name() else { continue };
            let Some(tip) = branch.get().target() else { continue };
            if opts.all || repo.config().branch_kind(name) != crate::config::BranchKind::Other {
                out.push((format!("refs/heads/{name}"), tip));
            }
        }
        let tags = git.tag_names(None).context("list the tags")?;
        for tag in tags.iter().flatten() {
            let full = format!("refs/tags/{tag}");
            let Ok(oid) = git.refname_to_id(&full) else { continue };
            if opts.all || is_snapshot_tag(repo, oid) {
                out.push((full, oid));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A branch or tag of this repository by short or full name.
fn resolve_local_ref(repo: &Repo, name: &str) -> Result<(String, Oid)> {
    let git = repo.git();
    let candidates = if name.starts_with("refs/") {
        vec![name.to_string()]
    } else {
        vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
    };
    for full in candidates {
        if let Ok(oid) = git.refname_to_id(&full) {
            return Ok((full, oid));
        }
    }
    Err(Error::not_found(format!("there is no branch or tag '{name}' here"))
        .with_hint("list them with `git branch` and `git tag`; `mlgit status` shows the convention branches"))
}

/// An annotated tag whose commit holds a tracking record: what `train-tag` makes.
fn is_snapshot_tag(repo: &Repo, oid: Oid) -> bool {
    let git = repo.git();
    let Ok(tag) = git.find_tag(oid) else { return false };
    let Ok(commit) = tag.target().and_then(|t| t.peel_to_commit()) else { return false };
    commit.tree().map(|t| t.get_path(std::path::Path::new(RUN_RECORD)).is_ok()).unwrap_or(false)
}

fn is_ancestor(repo: &Repo, ancestor: Oid, of: Oid) -> bool {
    let git = repo.git();
    let (Ok(a), Ok(b)) = (peel_commit(git, ancestor), peel_commit(git, of)) else { return false };
    a == b || git.graph_descendant_of(b, a).unwrap_or(false)
}

/// A remote with branches, none of them mlgit's, whose main this repository does not know, is
/// someone else's repository: pushing mlgit's branches into it is refused.
fn refuse_foreign_remote(repo: &Repo, remote: &Remote, refs: &git_cli::RemoteRefs) -> Result<()> {
    let config = repo.config();
    let mut branches = refs.branches().peekable();
    if branches.peek().is_none() {
        return Ok(());
    }
    let mut known = false;
    for (name, oid) in branches {
        let kind = config.branch_kind(name);
        if kind != crate::config::BranchKind::Other && kind != crate::config::BranchKind::Main {
            return Ok(());
        }
        if repo.git().find_commit(oid).is_ok() {
            known = true;
        }
    }
    if known {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "{} ({}) is not an mlgit repository: it has branches, but none of mlgit's and none this repository shares history with",
        remote.label(),
        remote.url
    ))
    .with_hint("push to an empty repository made for this project (on a git host: create it without a README)"))
}

/// The tree whose `.lfsconfig` names the LFS server: main's, if it is pushed, else the first ref's.
fn lfsconfig_tree(repo: &Repo, moving: &[&RefUpdate]) -> Result<Option<Oid>> {
    let main = format!("refs/heads/{}", repo.config().branches.main);
    let chosen = moving.iter().find(|u| u.full == main).or(moving.first());
    let Some(update) = chosen else { return Ok(None) };
    let Ok(oid) = Oid::from_str(&update.new) else { return Ok(None) };
    let commit = peel_commit(repo.git(), oid)?;
    let tree = repo.git().find_commit(commit).and_then(|c| c.tree()).context("read a pushed tree")?;
    Ok(Some(tree.id()))
}

/// Branches pushed for the first time track their remote branch (as `git push -u` would), unless
/// they already track something.
fn track_new_branches(repo: &Repo, remote: &str, updates: &[RefUpdate]) -> Result<()> {
    let git = repo.git();
    for update in updates.iter().filter(|u| u.status == RefStatus::New) {
        let Some(name) = update.full.strip_prefix("refs/heads/") else { continue };
        let Ok(branch) = git.find_branch(name, BranchType::Local) else { continue };
        if branch.upstream().is_ok() {
            continue;
        }
        let mut config = git.config().context("open the git config")?;
        config.set_str(&format!("branch.{name}.remote"), remote).context("set the branch's upstream")?;
        config.set_str(&format!("branch.{name}.merge"), &update.full).context("set the branch's upstream")?;
    }
    Ok(())
}
