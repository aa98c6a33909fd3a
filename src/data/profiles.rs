//! Reading the `profile.json` of a clean or split commit back: every table's profile keyed by the
//! path of the file it describes in that commit's tree (`data/<p>` on clean,
//! `data/<split>/<p>` on split), for `mlgit show` and `mlgit diff` (and monitoring's drift
//! reference).

use std::collections::BTreeMap;

use git2::{Oid, Repository};

use super::flow::DATA_DIR;
use super::split::{PROFILE_FILE, SPLITS};
use crate::error::{Context, Error, Result};
use crate::repo::tree::entry_at;
use crate::table::profile::TableProfile;

/// The profiles of the commit whose tree is `tree`, or None when it has no `profile.json`.
pub fn read_profiles(git: &Repository, tree: Oid) -> Result<Option<BTreeMap<String, TableProfile>>> {
    let Some(e) = entry_at(git, tree, PROFILE_FILE)? else { return Ok(None) };
    let blob = git.find_blob(e.oid).context(format!("read {PROFILE_FILE}"))?;
    let doc: serde_json::Value = serde_json::from_slice(blob.content()).map_err(|err| {
        Error::invalid(format!("{PROFILE_FILE} of tree {tree} is not valid JSON: {err}")).with_hint(
            "profile.json is written by mlgit clean and mlgit split; re-run the command that made it",
        )
    })?;
    let tables = doc.get("tables").and_then(|t| t.as_object()).cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    let parse = |v: &serde_json::Value, at: &str| -> Result<TableProfile> {
        serde_json::from_value(v.clone()).map_err(|err| {
            Error::invalid(format!("{PROFILE_FILE}: the profile of {at} cannot be read: {err}"))
                .with_hint("it was written by another mlgit version; re-run the command that made it")
        })
    };
    for (path, value) in tables {
        // A split's entry holds one profile per split; a clean one is the profile itself.
        let per_split = SPLITS.iter().any(|s| value.get(s).is_some_and(|v| v.get("rows").is_some()));
        if per_split {
            for s in SPLITS {
                if let Some(v) = value.get(s) {
                    let at = format!("{DATA_DIR}/{s}/{path}");
                    out.insert(at.clone(), parse(v, &at)?);
                }
            }
        } else {
            let at = format!("{DATA_DIR}/{path}");
            out.insert(at.clone(), parse(&value, &at)?);
        }
    }
    Ok(Some(out))
}

/// `mlgit show` of a clean or split commit: its profiles.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DataShow {
    pub rev: String,
    pub commit: String,
    pub subject: String,
    /// Table path in the commit's tree → profile.
    pub profiles: BTreeMap<String, TableProfile>,
}

/// The profiles of a data commit, or None when `rev` has no `profile.json`.
pub fn show_data(repo: &crate::repo::Repo, rev: &str) -> Result<Option<DataShow>> {
    let commit = repo.resolve(rev)?;
    let Some(profiles) = read_profiles(repo.git(), commit.tree_id())? else { return Ok(None) };
    Ok(Some(DataShow {
        rev: rev.to_string(),
        commit: commit.id().to_string(),
        subject: commit.summary().unwrap_or_default().to_string(),
        profiles,
    }))
}
