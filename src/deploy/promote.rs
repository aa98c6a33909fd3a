//! `mlgit promote` and `mlgit rollback`: one commit on `env/<env>` through the branch transaction.
//! The rules are checked before anything is written; the commit's tree is the snapshot's tree plus
//! `DEPLOYMENT.yaml` and `DEPLOYED_TAG`, its parents the previous deployment and the snapshot; the
//! ref moves by compare-and-swap, so two promotions at once both land, one after the other.

use git2::{FileMode, Oid};
use serde::Serialize;

use super::gto::{self, GtoRequest};
use super::history::{self, LogEntry};
use super::policy::{self, Candidate, RuleOutcome};
use super::record::{promotion, tree_is_snapshot, Action, Deployment, Forced, Identity, Previous, SCHEMA};
use super::{check_env, env_branch, DEPLOYMENT_FILE, TAG_FILE};
use crate::error::{Context, Error, Result};
use crate::repo::format_time;
use crate::repo::trailers::Message;
use crate::repo::transaction::{Change, Step, Transaction, TxOptions};
use crate::repo::tree::{entry_at, Entry, TreeEdits};
use crate::repo::Repo;
use crate::snapshot::record::RunRecord;

#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    pub tag: String,
    pub env: String,
    pub reason: Option<String>,
    /// Override the rules that fail (needs a reason); they are recorded.
    pub force: bool,
    /// Also write GTO-compatible tags.
    pub gto: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    pub env: String,
    /// The tag to go back to (else the previous one, see [`rollback_target`]).
    pub to: Option<String>,
    pub reason: Option<String>,
    pub force: bool,
    pub gto: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromoteOutcome {
    pub env: String,
    pub branch: String,
    pub action: Action,
    pub tag: String,
    pub snapshot: String,
    /// The promotion commit (None: the tag already served the environment).
    pub commit: Option<String>,
    /// The tag that served before.
    pub previous: Option<String>,
    pub unchanged: bool,
    /// Every rule checked, passed or not.
    pub checks: Vec<RuleOutcome>,
    pub forced: Vec<Forced>,
    pub gto_tags: Vec<String>,
    /// The checked-out worktree of the branch that was brought up to date.
    pub worktree: Option<std::path::PathBuf>,
    pub warnings: Vec<String>,
}

/// Promote a snapshot tag to an environment.
pub fn promote(repo: &Repo, opts: &PromoteOptions) -> Result<PromoteOutcome> {
    check_env(repo.config(), &opts.env)?;
    let candidate = snapshot(repo, &opts.tag)?;
    let request = Request {
        env: &opts.env,
        action: Action::Promote,
        reason: opts.reason.as_deref(),
        force: opts.force,
        gto: opts.gto,
    };
    request.check_reason()?;
    if let Some(already) = serving(repo, &opts.env, &candidate)? {
        return Ok(already);
    }
    let rules = repo.config().promotion_rules(&opts.env);
    let checks = policy::evaluate(repo, &opts.env, &candidate, &rules)?;
    deploy(repo, &request, &candidate, checks)
}

/// Roll an environment back to the tag that served it before (or `--to TAG`): a new forward commit.
pub fn rollback(repo: &Repo, opts: &RollbackOptions) -> Result<PromoteOutcome> {
    check_env(repo.config(), &opts.env)?;
    let request = Request {
        env: &opts.env,
        action: Action::Rollback,
        reason: opts.reason.as_deref(),
        force: opts.force,
        gto: opts.gto,
    };
    request.check_reason()?;
    let log = history::log(repo, &opts.env, None)?;
    let branch = env_branch(repo.config(), &opts.env);
    let Some(current) = log.entries.first() else {
        return Err(Error::not_found(format!("nothing to roll back: '{branch}' has no deployment yet"))
            .with_hint(format!("promote a snapshot first: `mlgit promote TAG --env {}`", opts.env)));
    };
    let target = rollback_target(&log.entries, opts.to.as_deref(), &opts.env)?;
    let candidate = recorded_snapshot(repo, target)?;
    if target.tag == current.tag && target.snapshot == current.snapshot {
        if let Some(already) = serving(repo, &opts.env, &candidate)? {
            return Ok(already);
        }
    }
    let rules = repo.config().promotion_rules(&opts.env);
    let checks = policy::evaluate_rollback(repo, &candidate, &rules)?;
    deploy(repo, &request, &candidate, checks)
}

/// Where a rollback goes: `--to TAG` (which must have served the environment), else the newest
/// earlier deployment whose tag differs from the current one and that no later rollback moved away
/// from — so two rollbacks in a row go back two steps instead of swapping the same two tags.
pub fn rollback_target<'a>(entries: &'a [LogEntry], to: Option<&str>, env: &str) -> Result<&'a LogEntry> {
    let current = &entries[0];
    if let Some(tag) = to {
        return entries.iter().find(|e| e.tag == tag).ok_or_else(|| {
            Error::not_found(format!("'{tag}' never served {env}, so there is nothing to roll back to"))
                .with_hint(format!("a rollback goes back to an earlier deployment (see `mlgit envs log {env}`); to deploy a new tag use `mlgit promote {tag} --env {env}`"))
        });
    }
    let mut rolled_away: Vec<&str> = Vec::new();
    for e in entries {
        if e.action == Action::Rollback {
            if let Some(p) = &e.previous {
                rolled_away.push(p);
            }
        }
        if e.tag != current.tag && !rolled_away.contains(&e.tag.as_str()) {
            return Ok(e);
        }
    }
    let why = if rolled_away.is_empty() {
        format!("only {} served it", current.tag)
    } else {
        format!("the other tags that served it were rolled back from ({})", rolled_away.join(", "))
    };
    Err(Error::not_found(format!("no earlier deployment of {env} to roll back to: {why}")).with_hint(
        format!("name one with --to TAG (see `mlgit envs log {env}`), or promote another snapshot"),
    ))
}

/// What a write is for.
struct Request<'a> {
    env: &'a str,
    action: Action,
    reason: Option<&'a str>,
    force: bool,
    gto: bool,
}

impl Request<'_> {
    fn check_reason(&self) -> Result<()> {
        if self.reason.is_some_and(|r| r.trim().is_empty()) {
            return Err(Error::invalid("--reason is empty").with_hint("say in a few words why"));
        }
        if self.force && self.reason.is_none() {
            let verb = match self.action {
                Action::Promote => "promote",
                Action::Rollback => "rollback",
            };
            return Err(Error::invalid("--force needs --reason: an override is recorded with why")
                .with_hint(format!("e.g. `mlgit {verb} … --force --reason \"hotfix approved by …\"`")));
        }
        Ok(())
    }
}

/// The snapshot a tag names: `refs/tags/<tag>` on a commit with a tracking record.
pub fn snapshot(repo: &Repo, tag: &str) -> Result<Candidate> {
    let (commit, record) = crate::snapshot::tagged(
        repo.git(),
        tag,
        "promote a snapshot tag made by `mlgit train-tag` (list them with `mlgit runs` or `mlgit status`; fetch them with `mlgit pull`)",
    )?;
    Ok(Candidate { tag: tag.to_string(), commit, record })
}

/// The snapshot a log entry deployed (the recorded commit, whatever the tag names now).
fn recorded_snapshot(repo: &Repo, entry: &LogEntry) -> Result<Candidate> {
    let git = repo.git();
    let oid = Oid::from_str(&entry.snapshot)
        .map_err(|_| Error::invalid(format!("the deployment {} names no snapshot commit", entry.commit)))?;
    let commit = git.find_commit(oid).map_err(|_| {
        Error::not_found(format!("snapshot {} of '{}' is not in this repository", entry.snapshot, entry.tag))
            .with_hint("fetch it: `mlgit pull`")
    })?;
    let record = RunRecord::read(git, &commit)?.ok_or_else(|| {
        Error::not_found(format!("{} (deployed as '{}') has no tracking record", entry.snapshot, entry.tag))
    })?;
    Ok(Candidate { tag: entry.tag.clone(), commit: oid, record })
}

/// Whether `commit` is a promotion of exactly the candidate: its record names the tag and the
/// snapshot, the snapshot is its second parent, and its tree is the snapshot's (a commit made by
/// hand on the branch that changed the model does not count, so promoting again restores it).
fn deploys(git: &git2::Repository, commit: &git2::Commit<'_>, candidate: &Candidate) -> Result<bool> {
    let Ok(Some(d)) = promotion(git, commit) else { return Ok(false) };
    if d.tag != candidate.tag || d.snapshot != candidate.commit.to_string() {
        return Ok(false);
    }
    tree_is_snapshot(git, commit, candidate.commit)
}

/// The outcome "already serves" when the environment's current deployment is the candidate.
fn serving(repo: &Repo, env: &str, candidate: &Candidate) -> Result<Option<PromoteOutcome>> {
    let git = repo.git();
    let branch = env_branch(repo.config(), env);
    let Some(tip) = repo.branch_tip(&branch)? else { return Ok(None) };
    let commit = git.find_commit(tip).context(format!("read the tip of '{branch}'"))?;
    if !deploys(git, &commit, candidate)? {
        return Ok(None);
    }
    let Some(current) = promotion(git, &commit)? else { return Ok(None) };
    Ok(Some(PromoteOutcome {
        env: env.to_string(),
        branch,
        action: current.action,
        tag: current.tag,
        snapshot: current.snapshot,
        commit: None,
        previous: current.previous.map(|p| p.tag),
        unchanged: true,
        checks: Vec::new(),
        forced: Vec::new(),
        gto_tags: Vec::new(),
        worktree: None,
        warnings: Vec::new(),
    }))
}

/// Refuse on failed rules (unless forced), then write the commit and the GTO tags. The branch
/// must exist (init makes it), so every deployment has two parents: the log is its first parents.
fn deploy(
    repo: &Repo,
    req: &Request<'_>,
    candidate: &Candidate,
    checks: Vec<RuleOutcome>,
) -> Result<PromoteOutcome> {
    let failed: Vec<&RuleOutcome> = checks.iter().filter(|c| !c.passed).collect();
    if !failed.is_empty() && !req.force {
        return Err(refusal(req, candidate, &failed));
    }
    let forced: Vec<Forced> =
        failed.iter().map(|c| Forced { rule: c.rule.clone(), detail: c.detail.clone() }).collect();
    let passed: Vec<String> = checks.iter().filter(|c| c.passed).map(|c| c.rule.clone()).collect();
    let branch = env_branch(repo.config(), req.env);
    let git = repo.git();
    let snapshot_commit = git.find_commit(candidate.commit).context("read the snapshot commit")?;
    let snapshot_tree = snapshot_commit.tree_id();
    for reserved in [DEPLOYMENT_FILE, TAG_FILE] {
        if entry_at(git, snapshot_tree, reserved)?.is_some() {
            return Err(Error::conflict(format!(
                "snapshot '{}' has a file named {reserved}, which mlgit writes on env/ branches",
                candidate.tag
            ))
            .with_hint(format!(
                "rename {reserved} in the code on dev/, train and tag a new snapshot, and promote that"
            )));
        }
    }
    let gto_plan = if req.gto {
        let request = gto_request(repo, req, candidate)?;
        Some((gto::plan(repo, &request)?, request))
    } else {
        None
    };
    if repo.branch_tip(&branch)?.is_none() {
        return Err(Error::not_found(format!("branch '{branch}' does not exist")).with_hint(
            "run `mlgit init`: it creates the env/ branches (in a clone, from origin's), then promote again",
        ));
    }
    let writer = format!("mlgit {}", verb(req.action));
    let tx = Transaction::open(repo, &branch, TxOptions { create: false, writer, from_checkout: false })?;
    let mut previous_tag = None;
    let outcome = tx.commit(|tip| {
        // The deployment being replaced: the newest promotion on the branch (the tip, unless
        // someone committed on the branch by hand; an unreadable record is replaced, not read).
        let current = match tip {
            Some(t) => super::history::newest_promotion(git, t).ok().flatten().map(|(_, d)| d),
            None => None,
        };
        if tip.is_some_and(|t| deploys(git, t, candidate).unwrap_or(false)) {
            // Another process deployed the same snapshot meanwhile.
            return Ok(Step::Nothing);
        }
        let sig = repo.signature()?;
        let record = Deployment {
            schema: SCHEMA,
            environment: req.env.to_string(),
            action: req.action,
            tag: candidate.tag.clone(),
            snapshot: candidate.commit.to_string(),
            model: candidate.record.model.clone(),
            data: candidate.record.data.clone(),
            code: candidate.record.code.clone(),
            promoted_by: Identity {
                name: sig.name().unwrap_or("").to_string(),
                email: sig.email().unwrap_or("").to_string(),
            },
            promoted_at: format_time(sig.when()),
            reason: req.reason.map(|r| r.trim().to_string()),
            previous: current.as_ref().map(|c| Previous { tag: c.tag.clone(), snapshot: c.snapshot.clone() }),
            checks: passed.clone(),
            forced: forced.clone(),
        };
        previous_tag = record.previous.as_ref().map(|p| p.tag.clone());
        let mut edits = TreeEdits::new();
        let yaml = git.blob(record.to_yaml()?.as_bytes()).context("write DEPLOYMENT.yaml")?;
        let tag_line = git.blob(format!("{}\n", candidate.tag).as_bytes()).context("write DEPLOYED_TAG")?;
        edits.set(DEPLOYMENT_FILE, Entry { oid: yaml, mode: FileMode::Blob })?;
        edits.set(TAG_FILE, Entry { oid: tag_line, mode: FileMode::Blob })?;
        let tree = edits.write(git, Some(snapshot_tree))?;
        let mut change = Change::new(tree, message(&record).render());
        change.extra_parents = vec![candidate.commit];
        change.merge = true;
        Ok(Step::Commit(Box::new(change)))
    })?;
    let mut out = PromoteOutcome {
        env: req.env.to_string(),
        branch,
        action: req.action,
        tag: candidate.tag.clone(),
        snapshot: candidate.commit.to_string(),
        commit: outcome.commit.map(|c| c.to_string()),
        previous: previous_tag,
        unchanged: outcome.commit.is_none(),
        checks,
        forced,
        gto_tags: Vec::new(),
        worktree: outcome.worktree,
        warnings: outcome.sync_error.into_iter().collect(),
    };
    if let (Some((plan, request)), Some(_)) = (gto_plan, outcome.commit) {
        match gto::write(repo, &request, plan) {
            Ok(tags) => out.gto_tags = tags,
            Err(e) => out.warnings.push(format!(
                "the deployment stands, but the GTO tags were not written: {e}{}",
                e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
            )),
        }
    }
    Ok(out)
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Promote => "promote",
        Action::Rollback => "rollback",
    }
}

fn gto_request(repo: &Repo, req: &Request<'_>, candidate: &Candidate) -> Result<GtoRequest> {
    Ok(GtoRequest {
        model: repo.config().model_name(&candidate.record.branch).to_string(),
        snapshot_tag: candidate.tag.clone(),
        snapshot_commit: candidate.commit,
        env: req.env.to_string(),
        message: format!("{} {} to {}", verb(req.action), candidate.tag, req.env),
    })
}

/// The commit message: what happened, why, and trailers for `git log`.
fn message(d: &Deployment) -> Message {
    let subject = match d.action {
        Action::Promote => format!("promote {} to {}", d.tag, d.environment),
        Action::Rollback => format!("rollback {} to {}", d.environment, d.tag),
    };
    let mut m = Message::new(subject).body(d.reason.clone().unwrap_or_default());
    m = m
        .trailer("Mlgit-Environment", &d.environment)
        .trailer("Mlgit-Action", verb(d.action))
        .trailer("Mlgit-Tag", &d.tag)
        .trailer(crate::repo::trailers::keys::SNAPSHOT, &d.snapshot);
    if let Some(p) = &d.previous {
        m = m.trailer("Mlgit-Previous-Tag", &p.tag);
    }
    for f in &d.forced {
        m = m.trailer("Mlgit-Forced", &f.rule);
    }
    m
}

/// The refusal: each failed rule with what was found and how to satisfy it, and the override.
fn refusal(req: &Request<'_>, candidate: &Candidate, failed: &[&RuleOutcome]) -> Error {
    let what = match req.action {
        Action::Promote => format!("promotion of {} to {}", candidate.tag, req.env),
        Action::Rollback => format!("rollback of {} to {}", req.env, candidate.tag),
    };
    let mut text = format!("{what} refused; nothing was written:");
    for f in failed {
        text.push_str(&format!("\n  rule `{}`: {}", f.rule, f.detail));
        if let Some(h) = &f.hint {
            text.push_str(&format!("\n    to satisfy it: {h}"));
        }
    }
    let rerun = match req.action {
        Action::Promote => format!("mlgit promote {} --env {}", candidate.tag, req.env),
        Action::Rollback => format!("mlgit rollback --env {} --to {}", req.env, candidate.tag),
    };
    Error::conflict(text).with_hint(format!(
        "satisfy the rule(s), or override and record why: `{rerun} --force --reason \"…\"` (the rules are `promotion:` in mlgit.yaml; see docs/promote.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(action: Action, tag: &str, previous: Option<&str>) -> LogEntry {
        LogEntry {
            commit: "0".repeat(40),
            action,
            tag: tag.into(),
            snapshot: format!("{tag}-commit"),
            at: "2026-11-30T00:00:00+00:00".into(),
            by: Identity { name: "a".into(), email: "a@b".into() },
            reason: None,
            previous: previous.map(str::to_string),
            forced: vec![],
        }
    }

    #[test]
    fn a_second_rollback_goes_back_further_instead_of_swapping_two_tags() {
        // v1 → v2 → v3, then a rollback to v2: newest first.
        let log = vec![
            e(Action::Rollback, "v2", Some("v3")),
            e(Action::Promote, "v3", Some("v2")),
            e(Action::Promote, "v2", Some("v1")),
            e(Action::Promote, "v1", None),
        ];
        assert_eq!(rollback_target(&log, None, "prod").unwrap().tag, "v1");
        // Before the rollback, the target is v2.
        assert_eq!(rollback_target(&log[1..], None, "prod").unwrap().tag, "v2");
    }

    #[test]
    fn rollback_to_names_an_earlier_deployment_or_is_refused() {
        let log = vec![e(Action::Promote, "v2", Some("v1")), e(Action::Promote, "v1", None)];
        assert_eq!(rollback_target(&log, Some("v1"), "prod").unwrap().tag, "v1");
        let err = rollback_target(&log, Some("v9"), "prod").unwrap_err();
        assert!(err.message().contains("never served prod"), "{}", err.message());
        let only = vec![e(Action::Promote, "v1", None)];
        assert!(rollback_target(&only, None, "prod").unwrap_err().message().contains("only v1"));
    }

    #[test]
    fn force_needs_a_reason_and_a_reason_needs_words() {
        let mut r = Request { env: "prod", action: Action::Promote, reason: None, force: true, gto: false };
        assert!(r.check_reason().unwrap_err().message().contains("--force needs --reason"));
        r.reason = Some("  ");
        assert!(r.check_reason().is_err());
        r.reason = Some("hotfix");
        assert!(r.check_reason().is_ok());
    }
}
