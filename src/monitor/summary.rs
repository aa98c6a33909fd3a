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
        let last_report = match entry_at(git, tree, ALERTS_DIR)?.filter(|e| e.mode == git2::FileMode::Tree) {
            Some(dir) => {
                list_files(git, dir.oid)?.into_iter().rev().find(|f| f.path.ends_with(".json")).map(|f| {
                    let doc: serde_json::Value = git
                        .find_blob(f.oid)
                        .ok()
                        .and_then(|b| serde_json::from_slice(b.content()).ok())
                        .unwrap_or_default();
                    let alerts = doc.get("alerts").and_then(|a| a.as_array());
                    LastReport {
                        path: format!("{ALERTS_DIR}/{}", f.path),
                        generated_at: doc.get("generated_at").and_then(|g| g.as_str()).map(str::to_string),
                        alert: doc.get("alert").and_then(|a| a.as_bool()).unwrap_or(false),
                        alerts: alerts.map_or(0, |a| a.len() as u64),
                        first: alerts
                            .and_then(|a| a.first())
                            .and_then(|a| a.get("message"))
                            .and_then(|m| m.as_str())
                            .map(str::to_string),
                    }
                })
            }
            None => None,
        };
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
