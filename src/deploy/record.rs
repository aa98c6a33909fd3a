//! `DEPLOYMENT.yaml`: what one promotion commit on `env/<env>` deployed — the tag and its snapshot
//! commit, the model files with their sha256, the data and code lineage, who promoted it, when and
//! why, the tag it replaced, and the rules that were overridden with `--force`.

use serde::{Deserialize, Serialize};

use super::DEPLOYMENT_FILE;
use crate::error::{Context, Error, Result};
use crate::repo::tree::entry_at;
use crate::snapshot::record::{CodeRef, DataRef, ModelFile};

/// The record's format version; readers refuse versions they do not know.
pub const SCHEMA: u32 = 1;

/// How the deployment came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Promote,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// The deployment this one replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    pub tag: String,
    pub snapshot: String,
}

/// A rule that did not pass and was overridden with `--force`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forced {
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub schema: u32,
    pub environment: String,
    pub action: Action,
    pub tag: String,
    /// The snapshot commit (the tag's target, and the promotion commit's second parent).
    pub snapshot: String,
    /// The model files of the snapshot's tracking record, with their sha256.
    pub model: Vec<ModelFile>,
    /// The split, clean and raw commits the model was trained on.
    pub data: DataRef,
    pub code: CodeRef,
    pub promoted_by: Identity,
    /// RFC 3339, the promotion commit's time.
    pub promoted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What served the environment before (None for its first deployment).
    pub previous: Option<Previous>,
    /// The rules that were checked and passed.
    #[serde(default)]
    pub checks: Vec<String>,
    /// The rules that failed and were overridden with `--force`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<Forced>,
}

impl Deployment {
    /// The record as committed: YAML with a comment line on top.
    pub fn to_yaml(&self) -> Result<String> {
        let body = serde_yaml::to_string(self)
            .map_err(|e| Error::invalid("cannot serialise the deployment record").with_source(e))?;
        Ok(format!(
            "# Written by `mlgit {}`: what serves this environment. Do not edit; promote or roll back instead.\n{body}",
            match self.action {
                Action::Promote => "promote",
                Action::Rollback => "rollback",
            }
        ))
    }

    /// Parse a record; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Deployment> {
        let value: serde_yaml::Value = serde_yaml::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("{origin} is not valid YAML")).with_source(e))?;
        let schema = value.get("schema").and_then(|s| s.as_u64());
        if schema != Some(SCHEMA as u64) {
            return Err(Error::invalid(format!(
                "{origin} has schema {schema:?}; this mlgit reads schema {SCHEMA}"
            ))
            .with_hint("use the mlgit version that wrote it"));
        }
        serde_yaml::from_value(value)
            .map_err(|e| Error::invalid(format!("{origin} is not a valid deployment record")).with_source(e))
    }

    /// The record in a commit's tree (None: not a promotion commit, e.g. the branch's first commit).
    pub fn read(git: &git2::Repository, commit: &git2::Commit<'_>) -> Result<Option<Deployment>> {
        let Some(entry) = entry_at(git, commit.tree_id(), DEPLOYMENT_FILE)? else { return Ok(None) };
        let blob = git.find_blob(entry.oid).context(format!("read {DEPLOYMENT_FILE}"))?;
        let origin = format!("{}:{DEPLOYMENT_FILE}", &commit.id().to_string()[..7]);
        Deployment::parse(blob.content(), &origin).map(Some)
    }
}

/// The record of a promotion commit: two parents, the second being the snapshot its record
/// names. None for anything else on an env branch (init's root, a commit made by hand with git).
/// A record that does not parse is an error naming the commit, with a way out.
pub fn promotion(git: &git2::Repository, commit: &git2::Commit<'_>) -> Result<Option<Deployment>> {
    if commit.parent_count() != 2 {
        return Ok(None);
    }
    let record = Deployment::read(git, commit).map_err(|e| {
        e.with_hint(format!(
            "commit {} on the env/ branch was not written by mlgit: restore the branch to the last promotion \
             (`git branch -f BRANCH <commit>`), or promote again (`mlgit promote TAG --env ENV`)",
            &commit.id().to_string()[..12]
        ))
    })?;
    let second = commit.parent_id(1).ok().map(|p| p.to_string());
    Ok(record.filter(|d| Some(&d.snapshot) == second.as_ref()))
}

/// Whether `commit`'s tree is exactly what a promotion of `snapshot` writes: the snapshot's tree
/// plus the record and the tag file (`.gitattributes` aside, whose managed block is recomputed).
/// A commit made by hand that changed the model on the branch is not.
pub fn tree_is_snapshot(
    git: &git2::Repository,
    commit: &git2::Commit<'_>,
    snapshot: git2::Oid,
) -> Result<bool> {
    // Top-level entries suffice: any change below shows as another subtree id. Nothing is written.
    let top = |tree: git2::Oid, skip: &[&str]| -> Result<Vec<(Vec<u8>, git2::Oid, i32)>> {
        let tree = git.find_tree(tree).context("read a tree")?;
        Ok(tree
            .iter()
            .filter(|e| !skip.iter().any(|s| e.name_bytes() == s.as_bytes()))
            .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
            .collect())
    };
    let attrs = crate::store::attributes::FILE;
    let snap = git.find_commit(snapshot).context("read the snapshot commit")?.tree_id();
    Ok(top(commit.tree_id(), &[super::DEPLOYMENT_FILE, super::TAG_FILE, attrs])? == top(snap, &[attrs])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Deployment {
        Deployment {
            schema: SCHEMA,
            environment: "prod".into(),
            action: Action::Promote,
            tag: "model-v2".into(),
            snapshot: "a".repeat(40),
            model: vec![ModelFile { path: "model/m.json".into(), sha256: "c".repeat(64), size: 3 }],
            data: DataRef { split: Some("b".repeat(40)), clean: None, raw: None },
            code: CodeRef { commit: Some("d".repeat(40)) },
            promoted_by: Identity { name: "Ada".into(), email: "ada@example.com".into() },
            promoted_at: "2026-11-30T12:00:00+00:00".into(),
            reason: Some("better recall: see #12".into()),
            previous: Some(Previous { tag: "model-v1".into(), snapshot: "e".repeat(40) }),
            checks: vec!["verify".into()],
            forced: vec![Forced { rule: "requires staging".into(), detail: "never on staging".into() }],
        }
    }

    #[test]
    fn round_trips_and_refuses_unknown_schemas_and_fields() {
        let d = sample();
        let yaml = d.to_yaml().unwrap();
        assert!(yaml.starts_with("# Written by `mlgit promote`"));
        assert_eq!(Deployment::parse(yaml.as_bytes(), "x").unwrap(), d);
        let newer = yaml.replace("schema: 1", "schema: 2");
        assert!(Deployment::parse(newer.as_bytes(), "x").unwrap_err().message().contains("schema"));
        let extra = format!("{yaml}extra: 1\n");
        assert!(Deployment::parse(extra.as_bytes(), "x").is_err());
    }
}
