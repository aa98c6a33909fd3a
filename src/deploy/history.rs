//! Reading the deployment log: `mlgit envs` (what serves each environment now), `envs log ENV`
//! (every deployment, newest first) and `envs at ENV DATE` (what served then). The log is the
//! first-parent history of `env/<env>`; `envs` reads only the tip's `DEPLOYMENT.yaml`, and `envs
//! at` walks commit headers back to the date before it reads one record.

use git2::{Commit, Oid};
use serde::Serialize;

use super::record::{promotion, Action, Deployment, Forced, Identity};
use super::{check_env, env_branch};
use crate::error::{Context, Error, Result};
use crate::monitor::summary::{last_alert, LastReport};
use crate::repo::{format_time, Repo};

/// One environment now.
#[derive(Debug, Clone, Serialize)]
pub struct EnvState {
    pub env: String,
    pub branch: String,
    /// Whether `env/<env>` exists locally.
    pub exists: bool,
    /// The deployed tag (None: nothing promoted yet).
    pub tag: Option<String>,
    pub snapshot: Option<String>,
    pub commit: Option<String>,
    pub action: Option<Action>,
    pub since: Option<String>,
    pub by: Option<Identity>,
    pub reason: Option<String>,
    pub previous: Option<String>,
    /// Rules overridden with --force by the current deployment.
    pub forced: Vec<Forced>,
    /// The newest drift report on `monitoring/<env>` that raised an alert.
    pub last_alert: Option<LastReport>,
    /// Something wrong with the branch that `envs` shows instead of failing (a tip made by hand,
    /// an unreadable record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The branch exists only on the remote (fetch it to see its deployments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_only: Option<String>,
}

/// One deployment of the log.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub commit: String,
    pub action: Action,
    pub tag: String,
    pub snapshot: String,
    pub at: String,
    pub by: Identity,
    pub reason: Option<String>,
    pub previous: Option<String>,
    pub forced: Vec<Forced>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvLog {
    pub env: String,
    pub branch: String,
    /// Newest first.
    pub entries: Vec<LogEntry>,
    /// More deployments exist than `--limit` showed.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvAt {
    pub env: String,
    pub branch: String,
    /// The instant asked about, RFC 3339.
    pub at: String,
    /// What served then (None: nothing had been promoted yet).
    pub serving: Option<LogEntry>,
    /// The deployment that replaced it, if any.
    pub until: Option<String>,
}

/// Every configured environment, in the order of `environments:`.
pub fn environments(repo: &Repo) -> Result<Vec<EnvState>> {
    let git = repo.git();
    let mut out = Vec::new();
    for env in &repo.config().environments {
        let branch = env_branch(repo.config(), env);
        let tip = repo.branch_tip(&branch)?;
        let mut problem = None;
        let deployment = match tip {
            Some(t) => {
                let commit = git.find_commit(t).context(format!("read the tip of '{branch}'"))?;
                match newest_promotion(git, &commit) {
                    Ok(Some((c, d))) => {
                        if c.id() != t {
                            problem = Some(format!(
                                "the tip {} of '{branch}' is not a promotion (a commit made by hand): what is checked out of '{branch}' may differ from {}; promote again to restore it",
                                &t.to_string()[..12],
                                d.tag
                            ));
                        }
                        Some((c.id(), d))
                    }
                    Ok(None) => None,
                    Err(e) => {
                        problem =
                            Some(format!("{e}{}", e.hint().map(|h| format!(" ({h})")).unwrap_or_default()));
                        None
                    }
                }
            }
            None => None,
        };
        let remote_only = match tip {
            Some(_) => None,
            None => crate::remote::default_remote(git).ok().and_then(|r| {
                git.find_reference(&format!("refs/remotes/{r}/{branch}"))
                    .ok()
                    .map(|_| format!("{r}/{branch}"))
            }),
        };
        let last_alert = last_alert(repo, env)?;
        let mut state = EnvState {
            env: env.clone(),
            branch,
            exists: tip.is_some(),
            tag: None,
            snapshot: None,
            commit: None,
            action: None,
            since: None,
            by: None,
            reason: None,
            previous: None,
            forced: Vec::new(),
            last_alert,
            remote_only,
            problem,
        };
        if let Some((t, d)) = deployment {
            state.tag = Some(d.tag);
            state.snapshot = Some(d.snapshot);
            state.commit = Some(t.to_string());
            state.action = Some(d.action);
            state.since = Some(d.promoted_at);
            state.by = Some(d.promoted_by);
            state.reason = d.reason;
            state.previous = d.previous.map(|p| p.tag);
            state.forced = d.forced;
        }
        out.push(state);
    }
    Ok(out)
}

/// The deployments of `env`, newest first (at most `limit`).
pub fn log(repo: &Repo, env: &str, limit: Option<usize>) -> Result<EnvLog> {
    check_env(repo.config(), env)?;
    let branch = env_branch(repo.config(), env);
    let mut entries = Vec::new();
    let mut truncated = false;
    let mut walk = FirstParents::new(repo, &branch)?;
    while let Some(commit) = walk.next_commit()? {
        let Some(d) = promotion(repo.git(), &commit)? else { continue };
        if limit.is_some_and(|l| entries.len() >= l) {
            truncated = true;
            break;
        }
        entries.push(entry(&commit, d));
    }
    Ok(EnvLog { env: env.to_string(), branch, entries, truncated })
}

/// What served `env` at `when` (a date, RFC 3339 time, or git's `@<seconds>`).
pub fn at(repo: &Repo, env: &str, when: &str) -> Result<EnvAt> {
    check_env(repo.config(), env)?;
    let instant = parse_instant(when)?;
    let branch = env_branch(repo.config(), env);
    let mut walk = FirstParents::new(repo, &branch)?;
    let mut newer: Option<String> = None;
    while let Some(commit) = walk.next_commit()? {
        // Commit headers first: a record is read only for the deployment that served then.
        if commit.parent_count() != 2 {
            continue;
        }
        if commit.time().seconds() > instant {
            newer = Some(format_time(commit.time()));
            continue;
        }
        let Some(d) = promotion(repo.git(), &commit)? else { continue };
        let serving = Some(entry(&commit, d));
        return Ok(EnvAt { env: env.to_string(), branch, at: at_text(instant), serving, until: newer });
    }
    Ok(EnvAt { env: env.to_string(), branch, at: at_text(instant), serving: None, until: newer })
}

fn at_text(secs: i64) -> String {
    format_time(git2::Time::new(secs, 0))
}

/// Seconds since the epoch of a date (`2026-11-30`, which is midnight UTC), an RFC 3339 time, a
/// `YYYY-MM-DD HH:MM:SS` UTC time, or git's `@<seconds> [±hhmm]`.
pub fn parse_instant(text: &str) -> Result<i64> {
    let t = text.trim();
    if let Some(us) = crate::monitor::cells::parse_time(t) {
        return Ok(us.div_euclid(1_000_000));
    }
    if let Some(time) = crate::repo::parse_git_date(t) {
        return Ok(time.seconds());
    }
    Err(Error::invalid(format!("'{text}' is not a date"))
        .with_hint("give a date (2026-11-30, midnight UTC), an RFC 3339 time (2026-11-30T12:00:00+01:00) or @<unix seconds>"))
}

fn entry(commit: &Commit<'_>, d: Deployment) -> LogEntry {
    LogEntry {
        commit: commit.id().to_string(),
        action: d.action,
        tag: d.tag,
        snapshot: d.snapshot,
        at: d.promoted_at,
        by: d.promoted_by,
        reason: d.reason,
        previous: d.previous.map(|p| p.tag),
        forced: d.forced,
    }
}

/// The first-parent history of an env branch, down to its root (init's commit).
struct FirstParents<'r> {
    repo: &'r Repo,
    branch: String,
    next: Option<Oid>,
}

impl<'r> FirstParents<'r> {
    fn new(repo: &'r Repo, branch: &str) -> Result<FirstParents<'r>> {
        let tip = repo.branch_tip(branch)?;
        if tip.is_none() {
            let remote = crate::remote::default_remote(repo.git()).ok();
            let hint = match remote {
                Some(r) => {
                    format!("fetch it: `mlgit fetch {r}` (or `mlgit init` to create the env/ branches)")
                }
                None => {
                    "run `mlgit init` to create the env/ branches, then `mlgit promote TAG --env ENV`".into()
                }
            };
            return Err(Error::not_found(format!("branch '{branch}' does not exist")).with_hint(hint));
        }
        Ok(FirstParents { repo, branch: branch.to_string(), next: tip })
    }

    fn next_commit(&mut self) -> Result<Option<Commit<'r>>> {
        let Some(oid) = self.next.take() else { return Ok(None) };
        let commit =
            self.repo.git().find_commit(oid).context(format!("read a commit of '{}'", self.branch))?;
        // A promotion's first parent is the previous deployment; a commit made by hand on the
        // branch is passed through the same way, so it never hides the deployments before it.
        self.next = commit.parent_id(0).ok();
        Ok(Some(commit))
    }
}

/// The newest promotion on the first-parent line from `tip` (the tip itself, unless commits were
/// made on the branch by hand), with its record.
pub fn newest_promotion<'r>(
    git: &'r git2::Repository,
    tip: &Commit<'r>,
) -> Result<Option<(Commit<'r>, Deployment)>> {
    let mut commit = tip.clone();
    loop {
        if let Some(d) = promotion(git, &commit)? {
            return Ok(Some((commit, d)));
        }
        match commit.parent_id(0) {
            Ok(p) => commit = git.find_commit(p).context("read a commit of an env/ branch")?,
            Err(_) => return Ok(None),
        }
    }
}
