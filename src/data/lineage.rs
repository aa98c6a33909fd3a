//! `mlgit lineage REF`: follow the links a model or a data commit carries back to the raw data —
//! a snapshot's tracking record (`"data": {"split": …}`) or its `Derived-From: split <sha>`
//! trailer, a split commit's `Derived-From: clean <sha>`, a clean commit's `Derived-From: raw
//! <sha>` — and list the batches behind it (raw, or monitoring) with their provenance trailers.
//! Each commit is named after the kind of the branch it is on or was taken from.

use git2::{Commit, Oid, Repository};
use serde::Serialize;

use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::monitor::log::keys as mk;
use crate::repo::lineage_walk::links;
use crate::repo::trailers::{self, keys};
use crate::repo::tree::entry_at;
use crate::repo::{format_time, Repo};
use crate::snapshot::RUN_RECORD;

/// One commit of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// The kind of the branch the commit is on or was taken from: `snapshot` (a stable commit with a
    /// tracking record), `stable`, `split`, `clean`, `raw`, `monitoring`, `dev`, `main`, `env`,
    /// `other`, or `unknown` (on no branch, and no link tells).
    pub kind: String,
    pub commit: String,
    pub subject: String,
    pub date: String,
    /// The commit this one derives from, and how that was found (`trailer` or `tracking/run.json`).
    pub derived_from: Option<String>,
    pub via: Option<String>,
}

/// A raw or monitoring commit (a batch of ingested data) and its provenance.
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
    /// Monitoring batches: the batch id, records, serving tags and the records' time span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringBatch>,
}

/// What a monitoring commit's trailers say (`mlgit monitor log`, `label`, `drift --commit`,
/// `calibrate`).
#[derive(Debug, Clone, Serialize)]
pub struct MonitoringBatch {
    /// `requests`, `labels`, `alerts` or `settings`.
    pub kind: String,
    pub env: Option<String>,
    pub batch: Option<String>,
    pub rows: Option<String>,
    pub tags: Vec<String>,
    pub rows_per_tag: Option<String>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub alert: Option<String>,
}

/// A snapshot that served records of the monitoring history, and the split it was trained on.
#[derive(Debug, Clone, Serialize)]
pub struct Serving {
    pub tag: String,
    /// None when the tag is not a snapshot here (not fetched, or deleted).
    pub snapshot: Option<String>,
    pub split: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineageOutcome {
    pub rev: String,
    pub commit: String,
    /// From REF back to the raw (or monitoring) commit.
    pub chain: Vec<Link>,
    /// Every batch in the first-parent history of the chain's last commit when that is a raw or
    /// monitoring commit, newest first (commits with provenance trailers). The name is kept for
    /// monitoring batches too, so the JSON schema does not change.
    pub raw_batches: Vec<RawBatch>,
    /// For a monitoring chain: every tag that served its batches, followed to its snapshot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub serving: Vec<Serving>,
}

/// The most links a chain can have (snapshot → split → clean → raw, with room for renamed setups).
const MAX_LINKS: usize = 8;

/// Run `mlgit lineage`.
pub fn lineage(repo: &Repo, rev: &str) -> Result<LineageOutcome> {
    let git = repo.git();
    let start = repo.resolve(rev)?;
    let mut chain: Vec<Link> = Vec::new();
    let mut current = start.clone();
    // The kind of the commit being added: from the branch named in the link that led to it, or,
    // for the first commit, from the branch it is on.
    let mut kind: Option<BranchKind> = None;
    let mut last_kind;
    loop {
        if chain.len() >= MAX_LINKS {
            return Err(Error::invalid(format!("the lineage of {rev} has more than {MAX_LINKS} links"))
                .with_hint(
                    "look at the Derived-From trailers with `git log --format=%B`; they may form a loop",
                ));
        }
        let next = next_link(repo, &current)?;
        let this_kind = match kind {
            Some(k) => Some(k),
            None => start_kind(repo, rev, &current, next.as_ref())?,
        };
        last_kind = this_kind;
        let label = label(git, this_kind, &current)?;
        chain.push(Link {
            kind: label.clone(),
            commit: current.id().to_string(),
            subject: current.summary().unwrap_or("").to_string(),
            date: format_time(current.time()),
            derived_from: next.as_ref().map(|n| n.commit.to_string()),
            via: next.as_ref().map(|n| n.via.to_string()),
        });
        let Some(n) = next else { break };
        current = git.find_commit(n.commit).map_err(|e| {
            Error::not_found(format!(
                "{label} {} derives from {} {}, which is not in this repository",
                &chain[chain.len() - 1].commit[..7],
                n.branch,
                n.commit
            ))
            .with_source(e)
            .with_hint(format!("fetch the '{b}' branch (`git fetch origin {b}`), then retry", b = n.branch))
        })?;
        kind = Some(n.kind);
    }
    // Raw and monitoring commits are where data enters: their batches are the end of the story.
    let ingested = matches!(last_kind, Some(BranchKind::Raw | BranchKind::Monitoring));
    if chain.len() == 1 && !ingested {
        return Err(Error::not_found(format!(
            "{rev} ({}) has no lineage: no Derived-From trailer and no data in {RUN_RECORD}",
            &start.id().to_string()[..7]
        ))
        .with_hint("lineage starts from a commit made by `mlgit split`, `mlgit clean`, `mlgit train-tag` or `mlgit commit-data` (e.g. `mlgit lineage split`)"));
    }
    let raw_batches = if ingested { batches(git, current.id())? } else { Vec::new() };
    let serving = serving_snapshots(repo, &raw_batches);
    Ok(LineageOutcome { rev: rev.to_string(), commit: start.id().to_string(), chain, raw_batches, serving })
}

struct Next {
    commit: Oid,
    /// The branch the link names (`raw`, `split`, `monitoring/prod`…), and its kind.
    branch: String,
    kind: BranchKind,
    via: &'static str,
}

/// The kind a `Derived-From` word stands for: the kind of the branch it names under this
/// repository's conventions, or the kind itself when a writer recorded the kind (`split`, `dev`)
/// rather than a configured branch name.
fn kind_of_link(repo: &Repo, word: &str) -> BranchKind {
    match repo.config().branch_kind(word) {
        BranchKind::Other => match word {
            "raw" => BranchKind::Raw,
            "clean" => BranchKind::Clean,
            "split" => BranchKind::Split,
            "dev" => BranchKind::Dev,
            "stable" => BranchKind::Stable,
            "monitoring" => BranchKind::Monitoring,
            _ => BranchKind::Other,
        },
        kind => kind,
    }
}

/// What lineage calls a commit of `kind`: the kind's name, except that a commit on a stable
/// branch holding a tracking record is a `snapshot`.
fn label(git: &Repository, kind: Option<BranchKind>, commit: &Commit<'_>) -> Result<String> {
    let name = match kind {
        None => "unknown",
        Some(BranchKind::Stable) if entry_at(git, commit.tree_id(), RUN_RECORD)?.is_some() => "snapshot",
        Some(BranchKind::Main) => "main",
        Some(BranchKind::Raw) => "raw",
        Some(BranchKind::Clean) => "clean",
        Some(BranchKind::Split) => "split",
        Some(BranchKind::Dev) => "dev",
        Some(BranchKind::Stable) => "stable",
        Some(BranchKind::Monitoring) => "monitoring",
        Some(BranchKind::Env) => "env",
        Some(BranchKind::Other) => "other",
    };
    Ok(name.to_string())
}

/// Where content is made, upstream first: a commit reachable from several branches (a split
/// commit is a parent of the stable commit that took its data; main's commits are in every dev
/// branch) was made on the most upstream one.
fn upstream_rank(kind: BranchKind) -> u8 {
    match kind {
        BranchKind::Raw => 0,
        BranchKind::Monitoring => 1,
        BranchKind::Clean => 2,
        BranchKind::Split => 3,
        BranchKind::Main => 4,
        BranchKind::Dev => 5,
        BranchKind::Stable => 6,
        BranchKind::Env => 7,
        BranchKind::Other => 8,
    }
}

/// The kind of the commit lineage starts from: the kind of the branch REF names, else of the most
/// upstream branch (local or remote-tracking) that contains it, else what its link implies (a
/// commit that derives from split data is a stable commit), else unknown.
fn start_kind(
    repo: &Repo,
    rev: &str,
    commit: &Commit<'_>,
    next: Option<&Next>,
) -> Result<Option<BranchKind>> {
    let git = repo.git();
    let config = repo.config();
    if git.find_reference(&format!("refs/heads/{rev}")).is_ok() {
        return Ok(Some(config.branch_kind(rev)));
    }
    let mut best: Option<BranchKind> = None;
    let branches = git.branches(None).context("list the branches")?;
    for item in branches {
        let (branch, branch_type) = item.context("list the branches")?;
        let reference = branch.get();
        if reference.symbolic_target().is_some() {
            continue; // origin/HEAD
        }
        let (Some(name), Some(tip)) = (reference.shorthand(), reference.target()) else { continue };
        let name = match branch_type {
            git2::BranchType::Local => name,
            // `origin/raw` is the remote's `raw`.
            git2::BranchType::Remote => name.split_once('/').map_or(name, |(_, n)| n),
        };
        let kind = config.branch_kind(name);
        if best.is_some_and(|b| upstream_rank(b) <= upstream_rank(kind)) {
            continue;
        }
        let contains = tip == commit.id()
            || git
                .graph_descendant_of(tip, commit.id())
                .context(format!("compare {name} with {}", commit.id()))?;
        if contains {
            best = Some(kind);
        }
    }
    if best.is_some() {
        return Ok(best);
    }
    Ok(next.and_then(|n| match n.kind {
        BranchKind::Raw | BranchKind::Monitoring => Some(BranchKind::Clean),
        BranchKind::Clean => Some(BranchKind::Split),
        BranchKind::Split => Some(BranchKind::Stable),
        _ => None,
    }))
}

fn next_link(repo: &Repo, commit: &Commit<'_>) -> Result<Option<Next>> {
    let git = repo.git();
    // A commit may derive from several (a snapshot from dev code and from split data): follow the
    // data link. Every link must be readable: a malformed one is reported, not taken for missing.
    for (branch, oid) in links(commit)? {
        let kind = kind_of_link(repo, &branch);
        if kind.is_data() || kind == BranchKind::Monitoring {
            return Ok(Some(Next { commit: oid, branch, kind, via: "trailer" }));
        }
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
                    .with_hint(format!(
                        "read it with `git show {}:{RUN_RECORD}`; `data.split` is the full id of the split commit trained on",
                        &commit.id().to_string()[..7]
                    ))
                })?;
                return Ok(Some(Next {
                    commit: oid,
                    branch: repo.config().branches.split.clone(),
                    kind: BranchKind::Split,
                    via: "tracking/run.json",
                }));
            }
        }
    }
    Ok(None)
}

/// The snapshots behind the request batches' tags, by tag name.
fn serving_snapshots(repo: &Repo, batches: &[RawBatch]) -> Vec<Serving> {
    let mut out: Vec<Serving> = Vec::new();
    let tags = batches.iter().filter_map(|b| b.monitoring.as_ref()).filter(|m| m.kind == "requests");
    for tag in tags.flat_map(|m| m.tags.iter()) {
        if out.iter().any(|s| &s.tag == tag) {
            continue;
        }
        let snap = crate::monitor::reference::snapshot_of(repo, tag).ok();
        out.push(Serving {
            tag: tag.clone(),
            snapshot: snap.as_ref().map(|s| s.commit.to_string()),
            split: snap.as_ref().map(|s| s.split.to_string()),
        });
    }
    out.sort_by(|a, b| a.tag.cmp(&b.tag));
    out
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
            monitoring: get(mk::KIND).map(|kind| MonitoringBatch {
                kind,
                env: get(mk::ENVIRONMENT),
                batch: get(mk::BATCH),
                rows: get(mk::ROWS),
                tags: get(mk::TAGS)
                    .map(|t| {
                        t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
                    })
                    .unwrap_or_default(),
                rows_per_tag: get(mk::ROWS_PER_TAG),
                window_start: get(mk::WINDOW_START),
                window_end: get(mk::WINDOW_END),
                alert: get(mk::ALERT),
            }),
        });
    }
    Ok(out)
}
