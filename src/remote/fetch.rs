//! `mlgit fetch` and `mlgit pull`: bring a remote's branches (as remote-tracking branches) and
//! tags here with the system git, then only the LFS objects the named refs' trees need, filtered
//! by path globs. `pull` then integrates the fetched history into the local convention branches.

use std::collections::BTreeMap;
use std::time::Instant;

use git2::{BranchType, Oid};
use serde::Serialize;

use super::git_cli::{self, RemoteRefs};
use super::integrate::{integrate, IntegrateOptions, IntegrateOutcome};
use super::select::{check_patterns_select, objects_for_trees, peel_commit};
use super::{default_remote, Remote};
use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::lfs::{self, Object, Operation, TransferOptions, TransferReport};
use crate::progress::Progress;
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// A configured remote (None: `origin`, or the only remote).
    pub remote: Option<String>,
    /// Branches or tags whose LFS objects to get (empty: the checked-out branch's upstream, else
    /// main).
    pub refs: Vec<String>,
    /// Only objects at paths matching one of these (gitattributes-style globs or folders).
    pub include: Vec<String>,
    /// No objects at paths matching one of these.
    pub exclude: Vec<String>,
    /// Parallel LFS transfers (None: the configured default).
    pub jobs: Option<usize>,
    pub interrupt: Interrupt,
}

/// A ref that a fetch created, moved or removed.
#[derive(Debug, Clone, Serialize)]
pub struct RefChange {
    #[serde(rename = "ref")]
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FetchOutcome {
    pub remote: String,
    pub url: String,
    /// Remote-tracking branches and tags that changed.
    pub updated: Vec<RefChange>,
    /// Tags of the remote that differ from a local tag of the same name: the local one was kept.
    pub tags_kept: Vec<String>,
    /// The refs whose trees chose the LFS objects (`origin/split`).
    pub refs: Vec<String>,
    /// LFS objects those trees need (after --include/--exclude).
    pub objects: usize,
    /// Of those, the ones this repository lacked.
    pub missing: usize,
    pub lfs: TransferReport,
    pub seconds: f64,
}

/// Fetch refs, then the LFS objects the selected remote-tracking tips need.
pub fn fetch(repo: &Repo, opts: &FetchOptions, progress: &dyn Progress) -> Result<FetchOutcome> {
    let start = Instant::now();
    let (remote, name) = named_remote(repo, opts.remote.as_deref())?;
    let mut outcome = fetch_refs(repo, &remote, &name, opts, progress)?;
    let targets = remote_targets(repo, &name, &opts.refs)?;
    outcome.refs = targets.iter().map(|(n, _)| n.clone()).collect();
    let (objects, missing, report) = get_objects(repo, &remote, &targets, opts, progress)?;
    outcome.objects = objects;
    outcome.missing = missing;
    outcome.lfs = report;
    outcome.seconds = start.elapsed().as_secs_f64();
    Ok(outcome)
}

/// What `mlgit pull` did: the fetch, the integration, and the objects the local tips then needed.
#[derive(Debug, Clone, Serialize)]
pub struct PullOutcome {
    pub fetch: FetchOutcome,
    pub integrate: IntegrateOutcome,
    /// Objects the integrated local branches needed beyond what the fetch brought.
    pub lfs_after: TransferReport,
    pub seconds: f64,
}

/// Fetch, then integrate the fetched history into the local convention branches, then get the
/// objects the integrated local tips need. The objects of the fetched tips come first, so a
/// checked-out branch that moves gets its files with their content.
pub fn pull(repo: &Repo, opts: &FetchOptions, progress: &dyn Progress) -> Result<PullOutcome> {
    let start = Instant::now();
    let fetched = fetch(repo, opts, progress)?;
    let name = fetched.remote.clone();
    opts.interrupt.check("the pull")?;
    let integrate_opts =
        IntegrateOptions { remote: name.clone(), branches: Vec::new(), interrupt: opts.interrupt.clone() };
    let integrated = integrate(repo, &integrate_opts)?;
    // The local branches named (or the checked-out one): their tips may be merges of both sides.
    let repo = repo.reopen()?;
    let mut locals = Vec::new();
    for target in &fetched.refs {
        let Some(branch) = target.strip_prefix(&format!("{name}/")) else { continue };
        if let Some(tip) = repo.branch_tip(branch)? {
            locals.push((branch.to_string(), tip));
        }
    }
    let remote = Remote::find(repo.git(), &name)?;
    let (_, _, lfs_after) = get_objects(&repo, &remote, &locals, opts, progress)?;
    Ok(PullOutcome {
        fetch: fetched,
        integrate: integrated,
        lfs_after,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The remote to fetch from: it must be a configured one (remote-tracking branches need a name).
fn named_remote(repo: &Repo, given: Option<&str>) -> Result<(Remote, String)> {
    let git = repo.git();
    let name = match given {
        Some(n) => n.to_string(),
        None => default_remote(git)?,
    };
    let remote = Remote::find(git, &name)?;
    let Some(name) = remote.name.clone() else {
        return Err(Error::invalid(format!("'{name}' is a URL, not a configured remote"))
            .with_hint(format!("add it first: `git remote add origin {name}`, then `mlgit fetch origin`")));
    };
    Ok((remote, name))
}

/// `git fetch` of every branch (into `refs/remotes/<name>/`) and of the remote's tags that are
/// new here; a tag that exists here with another value is kept and reported.
fn fetch_refs(
    repo: &Repo,
    remote: &Remote,
    name: &str,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<FetchOutcome> {
    let git = repo.git();
    let dir = repo.workdir().to_path_buf();
    let before = snapshot_refs(repo, name)?;
    progress.begin("fetching refs", 0, 0);
    let result = (|| -> Result<Vec<String>> {
        let remote_refs = git_cli::ls_remote(&dir, remote, &opts.interrupt)?;
        if remote_refs.is_empty() {
            return Err(Error::not_found(format!(
                "{} ({}) is empty: there is nothing to fetch",
                remote.label(),
                remote.url
            ))
            .with_hint("push this repository there first with `mlgit push`"));
        }
        let (refspecs, kept) = fetch_refspecs(git, name, &remote_refs);
        git_cli::fetch(&dir, remote, &refspecs, &opts.interrupt)?;
        Ok(kept)
    })();
    progress.end();
    let tags_kept = result?;
    let after = snapshot_refs(repo, name)?;
    refuse_foreign_remote(repo, remote, name)?;
    let mut updated = Vec::new();
    for (refname, new) in &after {
        let old = before.get(refname);
        if old != Some(new) {
            updated.push(RefChange {
                name: refname.clone(),
                old: old.map(|o| o.to_string()),
                new: Some(new.to_string()),
            });
        }
    }
    for (refname, old) in &before {
        if !after.contains_key(refname) {
            updated.push(RefChange { name: refname.clone(), old: Some(old.to_string()), new: None });
        }
    }
    Ok(FetchOutcome {
        remote: name.to_string(),
        url: remote.url.clone(),
        updated,
        tags_kept,
        refs: Vec::new(),
        objects: 0,
        missing: 0,
        lfs: TransferReport::default(),
        seconds: 0.0,
    })
}

/// Every branch into `refs/remotes/<name>/`, and the remote's tags that are new here (a tag that
/// exists here with another value is kept, and named in the second list).
fn fetch_refspecs(
    git: &git2::Repository,
    name: &str,
    remote_refs: &RemoteRefs,
) -> (Vec<String>, Vec<String>) {
    let mut refspecs = vec![format!("+refs/heads/*:refs/remotes/{name}/*")];
    let mut kept = Vec::new();
    for (full, oid) in remote_refs.refs.iter().filter(|(n, _)| n.starts_with("refs/tags/")) {
        match git.refname_to_id(full) {
            Ok(local) if local == *oid => {}
            Ok(_) => kept.push(git_cli::short_ref(full).to_string()),
            Err(_) => refspecs.push(format!("{full}:{full}")),
        }
    }
    (refspecs, kept)
}

/// The remote-tracking branches of `name` and the tags, with their values.
fn snapshot_refs(repo: &Repo, name: &str) -> Result<BTreeMap<String, Oid>> {
    let git = repo.git();
    let mut out = BTreeMap::new();
    for glob in [format!("refs/remotes/{name}/*"), "refs/tags/*".to_string()] {
        let refs = git.references_glob(&glob).context("list the refs")?;
        for r in refs.flatten() {
            if let (Some(n), Some(t)) = (r.name(), r.target()) {
                out.insert(n.to_string(), t);
            }
        }
    }
    Ok(out)
}

/// A remote whose main has no `mlgit.yaml` and that has no raw branch is no mlgit repository.
fn refuse_foreign_remote(repo: &Repo, remote: &Remote, name: &str) -> Result<()> {
    let git = repo.git();
    let branches = &repo.config().branches;
    let tracking = |b: &str| git.refname_to_id(&format!("refs/remotes/{name}/{b}")).ok();
    if tracking(&branches.raw).is_some() {
        return Ok(());
    }
    if let Some(main) = tracking(&branches.main) {
        let has_config = git
            .find_commit(main)
            .and_then(|c| c.tree())
            .map(|t| t.get_name(crate::config::CONFIG_FILE).is_some())
            .unwrap_or(false);
        if has_config {
            return Ok(());
        }
    }
    Err(Error::not_found(format!(
        "{} ({}) is not an mlgit repository: its '{}' has no {} and it has no '{}' branch",
        remote.label(),
        remote.url,
        branches.main,
        crate::config::CONFIG_FILE,
        branches.raw
    ))
    .with_hint("check the URL (`git remote -v`); push this repository there first with `mlgit push`"))
}

/// The remote-tracking tips whose trees choose the objects: the refs named (a branch of the
/// remote, else a tag), or the checked-out branch's upstream on this remote, else main's.
fn remote_targets(repo: &Repo, name: &str, refs: &[String]) -> Result<Vec<(String, Oid)>> {
    let git = repo.git();
    let mut out = Vec::new();
    if refs.is_empty() {
        let branch = upstream_of_head(repo, name).unwrap_or_else(|| repo.config().branches.main.clone());
        let full = format!("refs/remotes/{name}/{branch}");
        return match git.refname_to_id(&full) {
            Ok(oid) => Ok(vec![(format!("{name}/{branch}"), oid)]),
            Err(_) => Ok(Vec::new()),
        };
    }
    for r in refs {
        let short = r.strip_prefix(&format!("{name}/")).unwrap_or(r);
        if let Ok(oid) = git.refname_to_id(&format!("refs/remotes/{name}/{short}")) {
            out.push((format!("{name}/{short}"), oid));
        } else if let Ok(oid) = git.refname_to_id(&format!("refs/tags/{short}")) {
            out.push((short.to_string(), oid));
        } else {
            let mut known: Vec<String> = git
                .branches(Some(BranchType::Remote))
                .context("list the remote-tracking branches")?
                .flatten()
                .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
                .filter_map(|b| b.strip_prefix(&format!("{name}/")).map(str::to_string))
                .filter(|b| b != "HEAD")
                .collect();
            known.sort();
            return Err(Error::not_found(format!("'{short}' is neither a branch of {name} nor a tag"))
                .with_hint(format!("the branches of {name} are: {}", known.join(", "))));
        }
    }
    Ok(out)
}

/// The branch of `remote` that the checked-out branch tracks.
fn upstream_of_head(repo: &Repo, remote: &str) -> Option<String> {
    let git = repo.git();
    let head = git.head().ok()?;
    let branch = head.shorthand()?.to_string();
    let config = git.config().ok()?;
    let its_remote = config.get_string(&format!("branch.{branch}.remote")).ok()?;
    if its_remote != remote {
        return None;
    }
    let merge = config.get_string(&format!("branch.{branch}.merge")).ok()?;
    merge.strip_prefix("refs/heads/").map(str::to_string)
}

/// Select the objects of `targets`' trees, and download the ones the store lacks (no LFS request
/// at all when none is missing). Returns (selected, missing, report).
fn get_objects(
    repo: &Repo,
    remote: &Remote,
    targets: &[(String, Oid)],
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<(usize, usize, TransferReport)> {
    if targets.is_empty() {
        return Ok((0, 0, TransferReport::default()));
    }
    check_patterns_select(repo, targets, &opts.include, &opts.exclude)?;
    progress.begin("finding the LFS objects needed", 0, 0);
    let objects = objects_for_trees(repo, targets, &opts.include, &opts.exclude);
    progress.end();
    let objects = objects?;
    let missing: Vec<Object> =
        objects.iter().filter(|o| !repo.store().contains(&o.pointer)).cloned().collect();
    if missing.is_empty() {
        return Ok((objects.len(), 0, TransferReport { objects: 0, ..TransferReport::default() }));
    }
    opts.interrupt.check("the fetch")?;
    let commit = peel_commit(repo.git(), targets[0].1)?;
    let tree = repo.git().find_commit(commit).and_then(|c| c.tree()).context("read a fetched tree")?;
    let endpoint = lfs::endpoint(repo, remote, Operation::Download, Some(tree.id()))?;
    let transfer = TransferOptions {
        interrupt: opts.interrupt.clone(),
        progress,
        jobs: opts.jobs,
        refspec: None,
        dry_run: false,
    };
    let report = lfs::download(repo, &endpoint, &missing, &transfer)?;
    Ok((objects.len(), missing.len(), report))
}
