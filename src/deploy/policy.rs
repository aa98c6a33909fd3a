//! The rules a promotion must pass, from `promotion:` in `mlgit.yaml` ([`PromotionRules`]). Each
//! rule is checked before anything is written and has a name (`requires:staging`, `verify`,
//! `no_drift_alerts:staging`) that refusals, `DEPLOYMENT.yaml` and the `Mlgit-Forced` trailer use.

use git2::{FileMode, Oid};
use serde::Serialize;

use super::env_branch;
use crate::config::PromotionRules;
use crate::error::{Context, Result};
use crate::monitor::cells::parse_time;
use crate::repo::lfs_tree::read_pointer;
use crate::repo::tree::{entry_at, list_files};
use crate::repo::Repo;
use crate::snapshot::record::RunRecord;
use crate::store::ObjectState;

/// The snapshot a promotion deploys.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub tag: String,
    pub commit: Oid,
    pub record: RunRecord,
}

/// One rule's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    pub passed: bool,
    /// What was found (why it failed, or what passing means here).
    pub detail: String,
    /// How to satisfy the rule (for a failed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl RuleOutcome {
    fn pass(rule: String, detail: impl Into<String>) -> RuleOutcome {
        RuleOutcome { rule, passed: true, detail: detail.into(), hint: None }
    }

    fn fail(rule: String, detail: impl Into<String>, hint: impl Into<String>) -> RuleOutcome {
        RuleOutcome { rule, passed: false, detail: detail.into(), hint: Some(hint.into()) }
    }
}

/// Check every rule of `rules` for promoting `candidate` to `env`.
pub fn evaluate(
    repo: &Repo,
    env: &str,
    candidate: &Candidate,
    rules: &PromotionRules,
) -> Result<Vec<RuleOutcome>> {
    let mut out = Vec::new();
    let mut promoted_at = Vec::new();
    for req in &rules.requires {
        let rule = format!("requires:{req}");
        match last_promotion(repo, req, candidate)? {
            Some(found) => {
                out.push(RuleOutcome::pass(
                    rule,
                    format!("{} was promoted to {req} at {}", candidate.tag, found.promoted_at),
                ));
                promoted_at.push((req.clone(), Some(found)));
            }
            None => {
                out.push(RuleOutcome::fail(
                    rule,
                    format!("{} was never promoted to {req}", candidate.tag),
                    format!("promote it to {req} first: `mlgit promote {} --env {req}`", candidate.tag),
                ));
                promoted_at.push((req.clone(), None));
            }
        }
    }
    if rules.verify {
        out.push(verify_model(repo, candidate)?);
    }
    if rules.no_drift_alerts {
        for (req, found) in &promoted_at {
            out.push(no_drift_alerts(repo, env, req, candidate, found.as_ref())?);
        }
    }
    Ok(out)
}

/// Only the `verify` rule (what a rollback checks: the tag served this environment before).
pub fn evaluate_rollback(
    repo: &Repo,
    candidate: &Candidate,
    rules: &PromotionRules,
) -> Result<Vec<RuleOutcome>> {
    if rules.verify {
        Ok(vec![verify_model(repo, candidate)?])
    } else {
        Ok(Vec::new())
    }
}

/// A deployment of the candidate found on an environment's branch.
#[derive(Debug, Clone)]
pub struct Found {
    pub commit: Oid,
    pub promoted_at: String,
}

/// The newest deployment of the candidate (same tag, same snapshot commit) on `env/<env>`. The
/// snapshot is the second parent of a promotion commit, so only those commits' records are read.
pub fn last_promotion(repo: &Repo, env: &str, candidate: &Candidate) -> Result<Option<Found>> {
    let git = repo.git();
    let branch = env_branch(repo.config(), env);
    let Some(tip) = repo.branch_tip(&branch)? else { return Ok(None) };
    let mut commit = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?;
    loop {
        let deployed = match commit.parent_ids().nth(1) {
            Some(p) if p == candidate.commit => super::record::promotion(git, &commit)?,
            _ => None,
        };
        if let Some(d) = deployed.filter(|d| d.tag == candidate.tag) {
            return Ok(Some(Found { commit: commit.id(), promoted_at: d.promoted_at }));
        }
        // Through commits made by hand too: they never hide the promotions before them.
        match commit.parent_ids().next() {
            Some(p) => commit = git.find_commit(p).context(format!("read a commit of '{branch}'"))?,
            None => return Ok(None),
        }
    }
}

/// `verify`: every model file of the tracking record is in the snapshot, and its bytes (the LFS
/// object in the local store, or the blob) hash to the recorded sha256.
pub fn verify_model(repo: &Repo, candidate: &Candidate) -> Result<RuleOutcome> {
    let git = repo.git();
    let rule = "verify".to_string();
    let tree = git.find_commit(candidate.commit).context("read the snapshot commit")?.tree_id();
    let odb = git.odb().context("open the object database")?;
    let mut problems = Vec::new();
    for file in &candidate.record.model {
        let Some(entry) = entry_at(git, tree, &file.path)?.filter(|e| e.mode != FileMode::Tree) else {
            problems.push(format!("{} is listed in tracking/run.json but not in the snapshot", file.path));
            continue;
        };
        match read_pointer(git, &odb, entry.oid)? {
            Some(pointer) => {
                if pointer.oid.to_hex() != file.sha256 {
                    problems.push(format!("{}: its pointer names another object than the record", file.path));
                    continue;
                }
                match repo.store().check(&pointer)? {
                    ObjectState::Ok => {}
                    ObjectState::Missing => problems
                        .push(format!("{}: LFS object {} is not in the local store", file.path, file.sha256)),
                    ObjectState::Corrupt => {
                        problems.push(format!("{}: LFS object {} is corrupt", file.path, file.sha256))
                    }
                }
            }
            None => {
                let blob = git.find_blob(entry.oid).context(format!("read {}", file.path))?;
                let hex = crate::store::hash_reader(&mut blob.content())
                    .map(|(oid, _)| oid.to_hex())
                    .map_err(|e| crate::Error::invalid(format!("hash {}", file.path)).with_source(e))?;
                if hex != file.sha256 {
                    problems.push(format!("{}: its bytes do not match the recorded sha256", file.path));
                }
            }
        }
    }
    if problems.is_empty() {
        let n = candidate.record.model.len();
        return Ok(RuleOutcome::pass(rule, format!("{n} model file(s) present and matching their sha256")));
    }
    Ok(RuleOutcome::fail(
        rule,
        problems.join("; "),
        format!(
            "fetch the model objects (`mlgit pull --ref {tag}`, or `git lfs fetch origin {tag}`), then check with `mlgit verify {tag}`",
            tag = candidate.tag
        ),
    ))
}

/// `no_drift_alerts:<req>`: no committed drift report on `monitoring/<req>` alerts about the tag
/// since it was promoted to `req`.
fn no_drift_alerts(
    repo: &Repo,
    env: &str,
    req: &str,
    candidate: &Candidate,
    found: Option<&Found>,
) -> Result<RuleOutcome> {
    let rule = format!("no_drift_alerts:{req}");
    let Some(found) = found else {
        return Ok(RuleOutcome::pass(
            rule,
            format!("{} never served {req}, so no alert there can concern it", candidate.tag),
        ));
    };
    let since = parse_time(&found.promoted_at).unwrap_or(i64::MIN);
    let branch = repo.config().monitoring_branch(req);
    let git = repo.git();
    let Some(tip) = repo.branch_tip(&branch)? else {
        return Ok(RuleOutcome::pass(rule, format!("'{branch}' does not exist: no alert")));
    };
    let tree = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?.tree_id();
    let dir = crate::monitor::branch::ALERTS_DIR;
    let Some(alerts) = entry_at(git, tree, dir)?.filter(|e| e.mode == FileMode::Tree) else {
        return Ok(RuleOutcome::pass(rule, format!("no drift report on '{branch}'")));
    };
    let mut hits = Vec::new();
    for f in list_files(git, alerts.oid)? {
        if !f.path.ends_with(".json") {
            continue;
        }
        let Ok(blob) = git.find_blob(f.oid) else { continue };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(blob.content()) else { continue };
        let at = doc.get("generated_at").and_then(|g| g.as_str()).and_then(parse_time);
        if !at.is_some_and(|t| t >= since) {
            continue;
        }
        let about_tag = doc
            .get("alerts")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .find(|a| a.get("tag").and_then(|t| t.as_str()) == Some(candidate.tag.as_str()));
        if let Some(alert) = about_tag {
            let msg = alert.get("message").and_then(|m| m.as_str()).unwrap_or("drift");
            hits.push(format!("{dir}/{}: {msg}", f.path));
        }
    }
    if hits.is_empty() {
        return Ok(RuleOutcome::pass(
            rule,
            format!("no drift alert for {} on '{branch}' since {}", candidate.tag, found.promoted_at),
        ));
    }
    Ok(RuleOutcome::fail(
        rule,
        format!("{} drift report(s) on '{branch}' alert about {}: {}", hits.len(), candidate.tag, hits.join("; ")),
        format!(
            "look at the reports (`mlgit monitor history --env {req}`), train a better model, or promote anyway to {env} with --force --reason"
        ),
    ))
}
