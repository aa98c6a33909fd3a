//! `mlgit status`: the convention branches (tip, date, subject; files and bytes for data branches;
//! how far ahead of or behind its remote-tracking branch each is, and which exist only on the
//! remote) and the snapshot tags with their primary metric. It reads what the last fetch brought
//! (`refs/remotes/…`); it never contacts a remote.

use git2::Oid;
use serde::Serialize;

use crate::config::BranchKind;
use crate::error::{Context, Result};
use crate::remote::default_remote;
use crate::remote::integrate::{remote_branches, remote_tip};
use crate::repo::lfs_tree::classify;
use crate::repo::{format_time, Repo};

#[derive(Debug, Clone, Serialize)]
pub struct StatusOutcome {
    pub repository: String,
    pub branches: Vec<BranchStatus>,
    pub snapshots: Vec<SnapshotStatus>,
    pub primary_metric: String,
    /// Per environment: the last request batch and its tags, and the last drift report.
    pub monitoring: Vec<crate::monitor::summary::EnvMonitoring>,
    /// Per environment: the deployed tag, since when and by whom (what `mlgit envs` shows).
    pub environments: Vec<crate::deploy::history::EnvState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BranchStatus {
    pub name: String,
    pub kind: BranchKind,
    /// Whether the branch exists locally.
    pub exists: bool,
    /// The branch exists only on the remote (a remote-tracking ref `<remote>/<name>` and no local
    /// branch): `fetch_with` is the command that brings it here.
    pub remote_only: bool,
    pub fetch_with: Option<String>,
    /// The remote-tracking branch it is compared with: its upstream, else `<remote>/<name>` of the
    /// default remote (origin, or the only remote). Null when there is none.
    pub upstream: Option<Upstream>,
    pub tip: Option<Tip>,
    /// Data and monitoring branches: file count, bytes (LFS files counted at their real size).
    pub data: Option<DataSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// `origin/raw`.
    pub name: String,
    pub commit: String,
    /// Commits the local branch has that the remote-tracking branch lacks, and the other way round
    /// (both 0 for a branch that exists only on the remote).
    pub ahead: usize,
    pub behind: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tip {
    pub commit: String,
    pub short: String,
    pub date: String,
    pub subject: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DataSummary {
    pub files: u64,
    pub bytes: u64,
    pub lfs_files: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStatus {
    pub tag: String,
    pub commit: String,
    pub date: String,
    /// The primary metric's value, when the tracking record has it.
    pub metric: Option<f64>,
}

/// Describe the repository.
pub fn status(repo: &Repo) -> Result<StatusOutcome> {
    let config = repo.config();
    let git = repo.git();
    let mut names: Vec<(String, BranchKind)> = config.convention_branches();
    // Other framework branches that exist (more dev/stable/monitoring/env branches).
    let mut extra = Vec::new();
    for b in git.branches(Some(git2::BranchType::Local)).context("list branches")? {
        let (b, _) = b.context("read a branch")?;
        let Some(name) = b.name().ok().flatten().map(str::to_string) else { continue };
        let kind = config.branch_kind(&name);
        if kind != BranchKind::Other && !names.iter().any(|(n, _)| *n == name) {
            extra.push((name, kind));
        }
    }
    // And those only the default remote has (a colleague's dev/ or stable/ branch).
    let remote = default_remote(git).ok();
    if let Some(remote) = &remote {
        for name in remote_branches(git, remote)?.into_keys() {
            let kind = config.branch_kind(&name);
            if kind != BranchKind::Other
                && !names.iter().any(|(n, _)| *n == name)
                && !extra.iter().any(|(n, _)| *n == name)
            {
                extra.push((name, kind));
            }
        }
    }
    extra.sort();
    names.extend(extra);

    let mut branches = Vec::new();
    for (name, kind) in names {
        let tip = repo.branch_tip(&name)?;
        let Some(tip) = tip else {
            let on_remote = match &remote {
                Some(r) => remote_tip(git, r, &name)?.map(|c| (r.clone(), c)),
                None => None,
            };
            let upstream = on_remote.as_ref().map(|(r, c)| Upstream {
                name: format!("{r}/{name}"),
                commit: c.to_string(),
                ahead: 0,
                behind: 0,
            });
            branches.push(BranchStatus {
                fetch_with: upstream.as_ref().map(|_| format!("mlgit pull --ref {name}")),
                remote_only: upstream.is_some(),
                upstream,
                name,
                kind,
                exists: false,
                tip: None,
                data: None,
            });
            continue;
        };
        let upstream = upstream_of(git, &name, tip, remote.as_deref())?;
        let commit = git.find_commit(tip).context(format!("read the tip of '{name}'"))?;
        let data = if kind.is_data() || kind == BranchKind::Monitoring {
            Some(summarise(repo, commit.tree_id())?)
        } else {
            None
        };
        branches.push(BranchStatus {
            name,
            kind,
            exists: true,
            remote_only: false,
            fetch_with: None,
            upstream,
            tip: Some(Tip {
                commit: tip.to_string(),
                short: tip.to_string()[..7].to_string(),
                date: format_time(commit.time()),
                subject: commit.summary().unwrap_or("").to_string(),
            }),
            data,
        });
    }
    Ok(StatusOutcome {
        repository: repo.workdir().display().to_string(),
        branches,
        snapshots: snapshots(repo)?,
        primary_metric: config.tracking.primary_metric.clone(),
        monitoring: crate::monitor::summary::environments(repo)?,
        environments: crate::deploy::history::environments(repo)?,
    })
}

/// The remote-tracking branch a local branch is compared with, and the counts.
fn upstream_of(
    git: &git2::Repository,
    name: &str,
    tip: Oid,
    remote: Option<&str>,
) -> Result<Option<Upstream>> {
    let configured = git
        .find_branch(name, git2::BranchType::Local)
        .ok()
        .and_then(|b| b.upstream().ok())
        .and_then(|u| Some((u.name().ok().flatten()?.to_string(), u.get().peel_to_commit().ok()?.id())));
    let found = match (configured, remote) {
        (Some(c), _) => Some(c),
        (None, Some(r)) => remote_tip(git, r, name)?.map(|c| (format!("{r}/{name}"), c)),
        (None, None) => None,
    };
    let Some((upstream, commit)) = found else { return Ok(None) };
    let (ahead, behind) =
        git.graph_ahead_behind(tip, commit).context(format!("compare '{name}' with {upstream}"))?;
    Ok(Some(Upstream { name: upstream, commit: commit.to_string(), ahead, behind }))
}

/// Files, bytes and LFS files of a data tree.
pub fn summarise(repo: &Repo, tree: Oid) -> Result<DataSummary> {
    let git = repo.git();
    let odb = git.odb().context("open the object database")?;
    let mut s = DataSummary { files: 0, bytes: 0, lfs_files: 0 };
    for f in classify(git, tree)? {
        if f.entry.path == ".gitattributes" || f.entry.path == "README.md" {
            continue;
        }
        s.files += 1;
        match f.pointer {
            Some(p) => {
                s.lfs_files += 1;
                s.bytes += p.size;
            }
            None => s.bytes += odb.read_header(f.entry.oid).map(|(n, _)| n as u64).unwrap_or(0),
        }
    }
    Ok(s)
}

/// Every tag whose commit carries a tracking record, oldest first.
pub fn snapshots(repo: &Repo) -> Result<Vec<SnapshotStatus>> {
    let git = repo.git();
    let metric = &repo.config().tracking.primary_metric;
    let mut out = Vec::new();
    let names = git.tag_names(None).context("list tags")?;
    for name in names.iter().flatten() {
        let Ok(obj) = git.revparse_single(&format!("refs/tags/{name}")) else { continue };
        let Ok(commit) = obj.peel_to_commit() else { continue };
        let Some(record) = crate::repo::tree::entry_at(git, commit.tree_id(), crate::snapshot::RUN_RECORD)?
        else {
            continue;
        };
        let value = git
            .find_blob(record.oid)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b.content()).ok())
            .and_then(|v| v.get("metrics").and_then(|m| m.get(metric)).and_then(|m| m.as_f64()));
        out.push(SnapshotStatus {
            tag: name.to_string(),
            commit: commit.id().to_string(),
            date: format_time(commit.time()),
            metric: value,
        });
    }
    out.sort_by(|a, b| a.date.cmp(&b.date).then(a.tag.cmp(&b.tag)));
    Ok(out)
}
