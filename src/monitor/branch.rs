//! A monitoring branch as the monitor commands see it: the environment checked against
//! `mlgit.yaml`, the branch's tip, its `monitor.yaml`, and its batch manifests.

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use super::settings::MonitorSettings;
use crate::error::{Context, Error, Result};
use crate::repo::transaction::{Change, Step, Transaction, TxOptions};
use crate::repo::tree::{entry_at, list_files, Entry, TreeEdits};
use crate::repo::Repo;

/// Folder of the batch manifests on the branch.
pub const BATCHES_DIR: &str = "batches";
/// Folder of the drift reports written by `monitor drift --commit`.
pub const ALERTS_DIR: &str = "alerts";
/// Folders of the logged tables, under which each batch has its own folder.
pub const REQUESTS_DIR: &str = "data/requests";
pub const LABELS_DIR: &str = "data/labels";

/// The monitoring branch of one environment, read at its tip.
pub struct MonitoringBranch {
    pub env: String,
    pub branch: String,
    pub tip: Oid,
    pub tree: Oid,
    pub settings: MonitorSettings,
}

impl MonitoringBranch {
    /// Open `monitoring/<env>`: the environment must be listed in `mlgit.yaml` and the branch must
    /// exist; its `monitor.yaml` must parse.
    pub fn open(repo: &Repo, env: &str) -> Result<MonitoringBranch> {
        let config = repo.config();
        if !config.environments.iter().any(|e| e == env) {
            return Err(Error::not_found(format!("unknown environment '{env}'")).with_hint(format!(
                "the environments are those of `environments` in mlgit.yaml on main: {}",
                if config.environments.is_empty() { "(none)".into() } else { config.environments.join(", ") }
            )));
        }
        let branch = config.monitoring_branch(env);
        let tip = repo.branch_tip(&branch)?.ok_or_else(|| {
            Error::not_found(format!("branch '{branch}' does not exist")).with_hint(
                "run `mlgit init` to create the monitoring branches (or `mlgit pull` to fetch them)",
            )
        })?;
        let git = repo.git();
        let tree = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?.tree_id();
        let settings = MonitorSettings::read(git, tree, &branch)?;
        Ok(MonitoringBranch { env: env.to_string(), branch, tip, tree, settings })
    }

    /// Commit one small file (a report, the settings) at `path` on top of the branch's tip, whatever
    /// the tip is by then, through the branch transaction. The commit id, or the tip when the file
    /// was already there with these bytes.
    pub fn commit_file(
        &self,
        repo: &Repo,
        path: &str,
        bytes: &[u8],
        message: &str,
        writer: &str,
    ) -> Result<Oid> {
        let git = repo.git();
        let blob = git.blob(bytes).context(format!("write {path}"))?;
        let tx =
            Transaction::open(repo, &self.branch, TxOptions { writer: writer.into(), ..Default::default() })?;
        let out = tx.commit(|tip| {
            let mut edits = TreeEdits::new();
            edits.set(path, Entry::blob(blob))?;
            let tree = edits.write(git, tip.map(|c| c.tree_id()))?;
            let mut change = Change::new(tree, message.to_string());
            change.pointers.insert(blob, false);
            Ok(Step::Commit(Box::new(change)))
        })?;
        Ok(out.commit.or(out.previous).unwrap_or(self.tip))
    }

    /// Every batch manifest on the branch, oldest first.
    pub fn batches(&self, git: &Repository) -> Result<Vec<BatchManifest>> {
        read_manifests(git, self.tree, &self.branch)
    }
}

/// Whether a batch holds requests (with predictions) or labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    Requests,
    Labels,
}

/// `batches/<id>.json`: what one `monitor log` or `monitor label` committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchManifest {
    pub schema: u32,
    /// `<UTC yyyymmddThhmmssZ>-<8 hex>`: the log time and the content.
    pub id: String,
    /// 1 + the number of batches on the branch before this one: the order batches were committed
    /// in (ids of batches logged within one second, or by racing writers, do not tell it).
    #[serde(default)]
    pub seq: u64,
    pub kind: BatchKind,
    pub env: String,
    /// Tree paths of the batch's tables.
    pub files: Vec<String>,
    pub rows: u64,
    /// Rows per serving tag (requests only).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, u64>,
    /// `column` (from the tag column) or `flag` (`--tag` for the whole batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_source: Option<String>,
    /// The snapshot commit each tag named when the batch was logged (drift compares with it,
    /// even if the tag is later moved or deleted).
    #[serde(default)]
    pub snapshots: std::collections::BTreeMap<String, String>,
    /// sha256 of the batch's files' own sha256s, in path order: the same bytes logged again have
    /// the same `content` (refused as a duplicate).
    #[serde(default)]
    pub content: String,
    /// With `column`: the column the tags were read from (later reads use it, whatever
    /// monitor.yaml says by then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_column: Option<String>,
    /// With `flag`: the batch's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub window: Window,
    /// RFC 3339.
    pub logged_at: String,
    pub columns: Vec<String>,
}

/// The time span of a batch's records (from the time column), or the log time when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: String,
    pub end: String,
    /// `column` or `logged_at`.
    pub from: String,
}

/// The manifests under `batches/` of `tree`, in the order they were committed. Files there that
/// are not manifests of their own name (added by hand) are left out. Files there that
/// are not manifests of their own name (added by hand) are left out.
pub fn read_manifests(git: &Repository, tree: Oid, branch: &str) -> Result<Vec<BatchManifest>> {
    let Some(dir) = entry_at(git, tree, BATCHES_DIR)?.filter(|e| e.mode == git2::FileMode::Tree) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in list_files(git, dir.oid)? {
        if !f.path.ends_with(".json") {
            continue;
        }
        let blob = git.find_blob(f.oid).context(format!("read {branch}:{BATCHES_DIR}/{}", f.path))?;
        // A file someone added by hand that is not a manifest of its own name is not a batch: it
        // cannot stop monitoring (and, the branch being append-only, could never be removed).
        let Ok(m) = serde_json::from_slice::<BatchManifest>(blob.content()) else { continue };
        if m.id.is_empty() || format!("{}.json", m.id) != f.path {
            continue;
        }
        out.push(m);
    }
    out.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// The `seq` of the newest batch manifest of `tree` (0 when there is none); the next batch's is
/// one more, so a new batch always sorts last.
pub fn last_seq(git: &Repository, tree: Option<Oid>, branch: &str) -> Result<u64> {
    let Some(tree) = tree else { return Ok(0) };
    Ok(read_manifests(git, tree, branch)?.iter().map(|m| m.seq).max().unwrap_or(0))
}

impl BatchManifest {
    /// The column holding each record's tag (None: `tag` serves the whole batch).
    pub fn tag_column<'a>(&'a self, settings: &'a super::settings::MonitorSettings) -> Option<&'a str> {
        match (&self.tag, &self.tag_column) {
            (Some(_), _) => None,
            (None, Some(c)) => Some(c),
            (None, None) => Some(&settings.tag_column),
        }
    }

    /// The error of a batch whose records no longer add up to what was logged.
    pub fn mismatch(
        &self,
        branch: &str,
        found: &std::collections::BTreeMap<String, u64>,
    ) -> Option<crate::error::Error> {
        if *found == self.tags {
            return None;
        }
        Some(
            crate::error::Error::conflict(format!(
                "batch {} on '{branch}' was logged with {:?} records per tag, but reading it finds {:?}",
                self.id, self.tags, found
            ))
            .with_hint("its files or the tag column were changed after logging: check `git log` of the branch and monitor.yaml"),
        )
    }
}

/// The ids of the request batches the committed reports under `alerts/` cover.
pub fn reported_batches(git: &Repository, tree: Oid) -> Result<Vec<String>> {
    let Some(dir) = entry_at(git, tree, ALERTS_DIR)?.filter(|e| e.mode == git2::FileMode::Tree) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in list_files(git, dir.oid)? {
        let blob = git.find_blob(f.oid).context(format!("read {ALERTS_DIR}/{}", f.path))?;
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(blob.content()) else { continue };
        if let Some(ids) = doc.pointer("/window/batches").and_then(|b| b.as_array()) {
            out.extend(ids.iter().filter_map(|i| i.as_str().map(str::to_string)));
        }
    }
    Ok(out)
}
