//! `mlgit show TAG`: read a snapshot back — its tag, commit, tracking record, lineage (code, and
//! data split → clean → raw from the `Derived-From` trailers) and model files.

use serde::Serialize;

use super::record::RunRecord;
use crate::error::{Error, Result};
use crate::repo::lineage_walk::{lineage, Lineage};
use crate::repo::{format_time, Repo};
use crate::snapshot::RUN_RECORD;

#[derive(Debug, Clone, Serialize)]
pub struct ShowOutcome {
    pub tag: String,
    pub commit: String,
    pub date: String,
    /// The annotated tag's message (None for a lightweight tag).
    pub tag_message: Option<String>,
    pub lineage: Lineage,
    pub record: RunRecord,
    /// The environments this snapshot serves now (their `env/<env>` tip deploys this commit).
    pub serving: Vec<Serving>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Serving {
    pub env: String,
    pub since: Option<String>,
}

/// The commit a snapshot tag (or any revision) names, with its tracking record.
pub fn read_snapshot<'r>(repo: &'r Repo, rev: &str) -> Result<(git2::Commit<'r>, RunRecord)> {
    let commit = repo.resolve(rev)?;
    let record = RunRecord::read(repo.git(), &commit)?.ok_or_else(|| {
        Error::not_found(format!("'{rev}' is not a snapshot: its commit has no {RUN_RECORD}"))
            .with_hint("list the snapshots with `mlgit status`; they are made by `mlgit train-tag`")
    })?;
    Ok((commit, record))
}

pub fn show(repo: &Repo, rev: &str) -> Result<ShowOutcome> {
    let git = repo.git();
    let (commit, record) = read_snapshot(repo, rev)?;
    let tag_message = match git.find_reference(&format!("refs/tags/{rev}")) {
        Ok(r) => match r.target().map(|t| git.find_tag(t)) {
            Some(Ok(tag)) => tag.message().map(str::to_string),
            _ => None,
        },
        Err(_) => None,
    };
    let lineage = lineage(git, commit.id())?;
    let id = commit.id().to_string();
    let serving = crate::deploy::history::environments(repo)?
        .into_iter()
        .filter(|e| e.snapshot.as_deref() == Some(id.as_str()))
        .map(|e| Serving { env: e.env, since: e.since })
        .collect();
    Ok(ShowOutcome {
        tag: rev.to_string(),
        commit: commit.id().to_string(),
        date: format_time(commit.time()),
        tag_message,
        lineage,
        record,
        serving,
    })
}
