//! GTO-compatible tags (`--gto`). Interface fixed for the lead; the GTO helper writes the body.

use git2::Oid;

use crate::error::{Error, Result};
use crate::repo::Repo;

/// What to tag for GTO.
#[derive(Debug, Clone)]
pub struct GtoRequest {
    pub model: String,
    pub snapshot_tag: String,
    pub snapshot_commit: Oid,
    pub env: String,
    pub message: String,
}

/// The tags to create, computed and checked before the env commit is written.
#[derive(Debug, Clone)]
pub struct GtoPlan {
    pub tags: Vec<String>,
}

pub fn plan(_repo: &Repo, _req: &GtoRequest) -> Result<GtoPlan> {
    Err(Error::invalid("--gto is not available yet"))
}

pub fn write(_repo: &Repo, _req: &GtoRequest, plan: GtoPlan) -> Result<Vec<String>> {
    Ok(plan.tags)
}
