//! What `mlgit status` shows of each environment's monitoring: the last request batch with its
//! tags, and the last drift report. Read from the branch as it is (a broken `monitor.yaml` does not
//! hide the status).

use serde::Serialize;

use super::branch::{read_manifests, BatchKind, ALERTS_DIR};
use crate::error::{Context, Result};
use crate::repo::tree::{entry_at, list_files};
use crate::repo::Repo;

#[derive(Debug, Clone, Serialize)]
pub struct EnvMonitoring {
    pub env: String,
    pub branch: String,
    pub batches: u64,
    pub last_batch: Option<LastBatch>,
    pub last_report: Option<LastReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastBatch {
    pub id: String,
    pub end: String,
    pub rows: u64,
    pub tags: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastReport {
    pub path: String,
    pub generated_at: Option<String>,
    pub alert: bool,
    pub alerts: u64,
    /// The most severe alert's message.
    pub first: Option<String>,
}

/// The monitoring summary of every environment whose branch exists.
pub fn environments(repo: &Repo) -> Result<Vec<EnvMonitoring>> {
    let git = repo.git();
    let mut out = Vec::new();
    for env in &repo.config().environments {
        let branch = repo.config().monitoring_branch(env);
        let Some(tip) = repo.branch_tip(&branch)? else { continue };
        let tree = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?.tree_id();
        let manifests = read_manifests(git, tree, &branch).unwrap_or_default();
        let requests: Vec<_> = manifests.iter().filter(|m| m.kind == BatchKind::Requests).collect();
        let last_batch = requests.last().map(|m| LastBatch {
            id: m.id.clone(),
            end: m.window.end.clone(),
            rows: m.rows,
            tags: m.tags.clone(),
        });
        let last_report = report_files(git, tree)?.first().map(|(path, oid)| read_report(git, path, *oid));
        out.push(EnvMonitoring {
            env: env.clone(),
            branch,
            batches: requests.len() as u64,
            last_batch,
            last_report,
        });
    }
    Ok(out)
}

/// The drift reports committed on a monitoring tree, newest first (their names are their times).
fn report_files(git: &git2::Repository, tree: git2::Oid) -> Result<Vec<(String, git2::Oid)>> {
    let Some(dir) = entry_at(git, tree, ALERTS_DIR)?.filter(|e| e.mode == git2::FileMode::Tree) else {
        return Ok(Vec::new());
    };
    let files = list_files(git, dir.oid)?;
    Ok(files.into_iter().rev().filter(|f| f.path.ends_with(".json")).map(|f| (f.path, f.oid)).collect())
}

fn read_report(git: &git2::Repository, path: &str, oid: git2::Oid) -> LastReport {
    let doc: serde_json::Value =
        git.find_blob(oid).ok().and_then(|b| serde_json::from_slice(b.content()).ok()).unwrap_or_default();
    let alerts = doc.get("alerts").and_then(|a| a.as_array());
    LastReport {
        path: format!("{ALERTS_DIR}/{path}"),
        generated_at: doc.get("generated_at").and_then(|g| g.as_str()).map(str::to_string),
        alert: doc.get("alert").and_then(|a| a.as_bool()).unwrap_or(false),
        alerts: alerts.map_or(0, |a| a.len() as u64),
        first: alerts
            .and_then(|a| a.first())
            .and_then(|a| a.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_string),
    }
}

/// The newest committed drift report on `monitoring/<env>` that raised an alert (None: no such
/// report, or no such branch).
pub fn last_alert(repo: &Repo, env: &str) -> Result<Option<LastReport>> {
    let git = repo.git();
    let branch = repo.config().monitoring_branch(env);
    let Some(tip) = repo.branch_tip(&branch)? else { return Ok(None) };
    let tree = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?.tree_id();
    // Read newest first, and stop at the first alert.
    Ok(report_files(git, tree)?.iter().map(|(path, oid)| read_report(git, path, *oid)).find(|r| r.alert))
}
