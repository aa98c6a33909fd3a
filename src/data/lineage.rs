//! `mlgit lineage REF`: follow the links a model or a data commit carries back to the raw data —
//! a snapshot's tracking record (`"data": {"split": …}`) or its `Derived-From: split <sha>`
//! trailer, a split commit's `Derived-From: clean <sha>`, a clean commit's `Derived-From: raw
//! <sha>` — and list the raw batches behind it with their provenance trailers.

use git2::{Commit, Oid, Repository};
use serde::Serialize;

use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::repo::lineage_walk::derived_from;
use crate::repo::trailers::{self, keys};
use crate::repo::tree::entry_at;
use crate::repo::{format_time, Repo};
use crate::snapshot::RUN_RECORD;

/// One commit of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// `snapshot`, `split`, `clean` or `raw`.
    pub kind: String,
    pub commit: String,
    pub subject: String,
    pub date: String,
    /// The commit this one derives from, and how that was found (`trailer` or `tracking/run.json`).
    pub derived_from: Option<String>,
    pub via: Option<String>,
}

/// A raw commit (a batch of ingested data) and its provenance.
#[derive(Debug, Clone, Serialize)]
pub struct RawBatch {
    pub commit: String,
    pub subject: String,
    pub date: String,
    pub source: Option<String>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub ingested_at: Option<String>,
    pub files_added: Option<String>,
    pub bytes: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageOutcome {
    pub rev: String,
    pub commit: String,
    /// From REF back to the raw commit.
    pub chain: Vec<Link>,
    /// Every batch in the history of the raw commit, newest first (commits with provenance trailers).
    pub raw_batches: Vec<RawBatch>,
}

/// The most links a chain can have (snapshot → split → clean → raw, with room for renamed setups).
const MAX_LINKS: usize = 8;

/// Run `mlgit lineage`.
pub fn lineage(repo: &Repo, rev: &str) -> Result<LineageOutcome> {
    let git = repo.git();
    let start = repo.resolve(rev)?;
    let mut chain: Vec<Link> = Vec::new();
    let mut current = start.clone();
    let mut kind: Option<String> = None;
    loop {
        if chain.len() >= MAX_LINKS {
            return Err(Error::invalid(format!("the lineage of {rev} has more than {MAX_LINKS} links"))
                .with_hint(
                    "look at the Derived-From trailers with `git log --format=%B`; they may form a loop",
                ));
        }
        let next = next_link(repo, &current)?;
        let this_kind = match (&kind, &next) {
            (Some(k), _) => k.clone(),
            (None, Some(n)) => n.child_kind.clone(),
            (None, None) => guess_kind(repo, &current),
        };
        chain.push(Link {
            kind: this_kind.clone(),
            commit: current.id().to_string(),
            subject: current.summary().unwrap_or("").to_string(),
            date: format_time(current.time()),
            derived_from: next.as_ref().map(|n| n.commit.to_string()),
            via: next.as_ref().map(|n| n.via.to_string()),
        });
        let Some(n) = next else { break };
        current = git.find_commit(n.commit).map_err(|e| {
            Error::not_found(format!(
                "{} derives from {} {}, which is not in this repository",
                this_kind, n.kind, n.commit
            ))
            .with_source(e)
            .with_hint(format!("fetch the '{}' branch (`git fetch origin {}`), then retry", n.kind, n.kind))
        })?;
        kind = Some(n.kind);
    }
    let last = chain.last().map(|l| l.kind.clone()).unwrap_or_default();
    if chain.len() == 1 && last != "raw" {
        return Err(Error::not_found(format!(
            "{rev} ({}) has no lineage: no Derived-From trailer and no data in {RUN_RECORD}",
            &start.id().to_string()[..7]
        ))
        .with_hint("lineage starts from a commit made by `mlgit split`, `mlgit clean` or `mlgit train-tag` (e.g. `mlgit lineage split`)"));
    }
    let raw_batches = if last == "raw" { batches(git, current.id())? } else { Vec::new() };
    Ok(LineageOutcome { rev: rev.to_string(), commit: start.id().to_string(), chain, raw_batches })
}

struct Next {
    commit: Oid,
    /// The kind of the commit linked to.
    kind: String,
    /// The kind of the commit that links (deduced from what it links to).
    child_kind: String,
    via: &'static str,
}

fn kind_name(repo: &Repo, branch: &str) -> String {
    match repo.config().branch_kind(branch) {
        BranchKind::Raw => "raw".into(),
        BranchKind::Clean => "clean".into(),
        BranchKind::Split => "split".into(),
        _ => branch.to_string(),
    }
}

/// The kind of the commit that derives from a commit of `parent_kind`.
fn child_of(parent_kind: &str) -> String {
    match parent_kind {
        "raw" => "clean",
        "clean" => "split",
        "split" => "snapshot",
        _ => "derived",
    }
    .to_string()
}

fn next_link(repo: &Repo, commit: &Commit<'_>) -> Result<Option<Next>> {
    let git = repo.git();
    let message = commit.message().unwrap_or("");
    // A commit may derive from several (a snapshot from dev code and from split data): follow the
    // data link.
    for (branch, oid) in derived_from(message) {
        if !repo.config().branch_kind(&branch).is_data() {
            continue;
        }
        let kind = kind_name(repo, &branch);
        return Ok(Some(Next { commit: oid, child_kind: child_of(&kind), kind, via: "trailer" }));
    }
    // A snapshot: its tracking record names the split it trained on.
    if let Some(e) = entry_at(git, commit.tree_id(), RUN_RECORD)? {
        let blob = git.find_blob(e.oid).context(format!("read {RUN_RECORD}"))?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(blob.content()) {
            if let Some(sha) = v.get("data").and_then(|d| d.get("split")).and_then(|s| s.as_str()) {
                let oid = Oid::from_str(sha).map_err(|_| {
                    Error::invalid(format!(
                        "{RUN_RECORD} of {} names a malformed split commit {sha:?}",
                        commit.id()
                    ))
                })?;
                return Ok(Some(Next {
                    commit: oid,
                    kind: "split".into(),
                    child_kind: "snapshot".into(),
                    via: "tracking/run.json",
                }));
            }
        }
    }
    Ok(None)
}

/// A commit with no link: raw when it carries provenance or is on the raw branch.
fn guess_kind(repo: &Repo, commit: &Commit<'_>) -> String {
    let message = commit.message().unwrap_or("");
    if trailers::get(message, keys::SOURCE).is_some() {
        return "raw".into();
    }
    let raw = &repo.config().branches.raw;
    if let Ok(Some(tip)) = repo.branch_tip(raw) {
        if tip == commit.id() || repo.git().graph_descendant_of(tip, commit.id()).unwrap_or(false) {
            return "raw".into();
        }
    }
    "unknown".into()
}

/// The raw commits up to `raw` (first parents), newest first, that carry provenance trailers.
fn batches(git: &Repository, raw: Oid) -> Result<Vec<RawBatch>> {
    let mut walk = git.revwalk().context("walk the raw history")?;
    walk.push(raw).context("walk the raw history")?;
    walk.simplify_first_parent().context("walk the raw history")?;
    let mut out = Vec::new();
    for oid in walk {
        let oid = oid.context("walk the raw history")?;
        let c = git.find_commit(oid).context(format!("read commit {oid}"))?;
        let msg = c.message().unwrap_or("");
        let t = trailers::parse(msg);
        let get = |k: &str| t.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        if !t.iter().any(|(k, _)| k.starts_with("Mlgit-")) {
            continue;
        }
        out.push(RawBatch {
            commit: oid.to_string(),
            subject: c.summary().unwrap_or("").to_string(),
            date: format_time(c.time()),
            source: get(keys::SOURCE),
            host: get(keys::HOST),
            user: get(keys::USER),
            ingested_at: get(keys::INGESTED_AT),
            files_added: get(keys::FILES_ADDED),
            bytes: get(keys::BYTES),
        });
    }
    Ok(out)
}
