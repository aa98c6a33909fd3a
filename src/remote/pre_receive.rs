//! `mlgit hook pre-receive`: the server side of mlgit's branch rules, for a self-hosted bare
//! repository. git hands the hook one `<old> <new> <ref>` line per ref the push updates, before
//! any ref moves; a refusal rejects the whole push. Two kinds of branch are guarded, as the
//! repository's `mlgit.yaml` on main names them: on an append-only branch (`raw`, `monitoring/*`)
//! a push may not delete the branch, rewrite its history (a non-fast-forward), or bring a commit
//! that modifies or deletes a path one of its parents had; on an environment branch (`env/*`) it
//! may not delete the branch, rewrite its history, or bring anything but promotion commits
//! ([`env_rule`]). Other refs pass untouched.

use git2::{Oid, Repository};
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::remote::append_only::{self, Violation};
use crate::remote::env_rule::{self, EnvViolation};
use crate::repo;

/// One line of git's input: a ref moving from `old` to `new` (zero = created / deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: Oid,
    pub new: Oid,
    pub refname: String,
}

/// Parse git's pre-receive input (`<old> <new> <ref>` per line).
pub fn parse_updates(input: &str) -> Result<Vec<RefUpdate>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let bad = || {
            Error::invalid(format!(
                "line {} of the pre-receive input is not `<old> <new> <ref>`: {line}",
                n + 1
            ))
            .with_hint("`mlgit hook pre-receive` is run by git on the server, which writes these lines")
        };
        let [old, new, refname] = fields.as_slice() else { return Err(bad()) };
        out.push(RefUpdate {
            old: parse_oid(old).ok_or_else(bad)?,
            new: parse_oid(new).ok_or_else(bad)?,
            refname: refname.to_string(),
        });
    }
    Ok(out)
}

/// An object id as git prints it; all zeros (of any length) is the zero id.
pub(crate) fn parse_oid(text: &str) -> Option<Oid> {
    if !text.is_empty() && text.bytes().all(|b| b == b'0') {
        return Some(Oid::zero());
    }
    Oid::from_str(text).ok().filter(|_| text.len() >= 40)
}

/// What the check found acceptable.
#[derive(Debug, Clone, Serialize)]
pub struct PreReceiveOutcome {
    /// Append-only and environment branches whose update was checked and accepted.
    pub checked: Vec<String>,
    /// Refs that are neither (accepted without a check).
    pub passed: Vec<String>,
    /// Things the server's administrator should know (a config that could not be read…).
    pub warnings: Vec<String>,
}

/// Which rule guards a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    AppendOnly,
    /// An `env/<env>` branch: the deployment log of environment `env`.
    Environment {
        env: String,
    },
}

impl Guard {
    fn describe(&self, branch: &str) -> String {
        match self {
            Guard::AppendOnly => format!("branch '{branch}' is append-only"),
            Guard::Environment { env } => {
                format!("branch '{branch}' is the deployment log of environment '{env}'")
            }
        }
    }
}

/// Why one ref's update is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Delete { branch: String, guard: Guard },
    Rewrite { branch: String, guard: Guard, old: Oid, new: Oid },
    Changes { branch: String, violations: Vec<Violation> },
    NotPromotions { branch: String, env: String, violations: Vec<EnvViolation> },
}

impl Refusal {
    fn describe(&self) -> String {
        match self {
            Refusal::Delete { branch, guard } => {
                format!("{}: deleting it is refused", guard.describe(branch))
            }
            Refusal::Rewrite { branch, guard, old, new } => format!(
                "{}: the push rewrites its history ({} is not an ancestor of {}; a force push)",
                guard.describe(branch),
                short(*old),
                short(*new)
            ),
            Refusal::Changes { branch, violations } => {
                let mut s = format!(
                    "{}: {} commit(s) modify or delete committed paths:",
                    Guard::AppendOnly.describe(branch),
                    violations.len()
                );
                for v in violations {
                    s.push_str(&format!(
                        "\n  commit {} ({}) {}",
                        &v.commit[..12.min(v.commit.len())],
                        v.subject,
                        v.describe(10)
                    ));
                }
                s
            }
            Refusal::NotPromotions { branch, env, violations } => {
                let mut s = format!(
                    "{}: only promotion commits may land on it, and {} commit(s) are not:",
                    Guard::Environment { env: env.clone() }.describe(branch),
                    violations.len()
                );
                for v in violations {
                    s.push_str(&format!("\n  commit {} ({}): {}", short(v.commit), v.subject, v.reason));
                }
                s
            }
        }
    }

    fn is_environment(&self) -> bool {
        match self {
            Refusal::Delete { guard, .. } | Refusal::Rewrite { guard, .. } => {
                matches!(guard, Guard::Environment { .. })
            }
            Refusal::Changes { .. } => false,
            Refusal::NotPromotions { .. } => true,
        }
    }
}

fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}

/// The config whose `append_only` rules apply: the repository's own main branch (before this
/// push), else the defaults. A config that cannot be read falls back to the defaults with a
/// warning, so that a broken `mlgit.yaml` never lifts the protection of `raw`.
fn server_config(git: &Repository, warnings: &mut Vec<String>) -> Config {
    match repo::load_config(git) {
        Ok(c) => c,
        Err(e) if e.kind() == crate::ErrorKind::NotFound => Config::default(),
        Err(e) => {
            warnings.push(format!("{e}; the default append-only branches (raw, monitoring/*) are protected"));
            Config::default()
        }
    }
}

/// The repository git runs the hook in. git sets `GIT_DIR` and, during a push, keeps the pushed
/// objects in a quarantine that `GIT_OBJECT_DIRECTORY` / `GIT_ALTERNATE_OBJECT_DIRECTORIES` name:
/// open it the way git describes it. Without `GIT_DIR` (run by hand), the repository around `dir`.
pub fn open_repo(dir: &std::path::Path) -> Result<Repository> {
    let opened = if std::env::var_os("GIT_DIR").is_some() {
        Repository::open_from_env()
    } else {
        Repository::discover(dir)
    };
    opened.map_err(|e| {
        Error::git(format!("open the repository at {}", dir.display()), e)
            .with_hint("install `mlgit hook pre-receive` as the hooks/pre-receive of a bare repository: git runs it there")
    })
}

/// Check a push. Ok when every update is acceptable; an error (kind Conflict, exit 1) that names
/// each refused branch, commit and path otherwise.
pub fn check(git: &Repository, updates: &[RefUpdate], interrupt: &Interrupt) -> Result<PreReceiveOutcome> {
    let mut out = PreReceiveOutcome { checked: Vec::new(), passed: Vec::new(), warnings: Vec::new() };
    let config = server_config(git, &mut out.warnings);
    // Commits the repository already has on some ref were accepted before: a new branch that
    // starts from them is checked only for what it adds.
    let known: Vec<Oid> = match git.references() {
        Ok(refs) => refs.flatten().filter_map(|r| r.peel_to_commit().ok().map(|c| c.id())).collect(),
        Err(e) => return Err(Error::git("list the repository's refs", e)),
    };
    let tag_target = |tag: &str| tag_target(git, updates, tag);
    let mut refusals = Vec::new();
    for u in updates {
        let Some(branch) = u.refname.strip_prefix("refs/heads/") else {
            out.passed.push(u.refname.clone());
            continue;
        };
        let guard = match branch.strip_prefix(config.branches.env_prefix.as_str()) {
            Some(env) => Guard::Environment { env: env.to_string() },
            None if config.is_append_only(branch) => Guard::AppendOnly,
            None => {
                out.passed.push(u.refname.clone());
                continue;
            }
        };
        let branch = branch.to_string();
        if u.new.is_zero() {
            refusals.push(Refusal::Delete { branch, guard });
            continue;
        }
        if !u.old.is_zero() && !append_only::is_ancestor(git, u.old, u.new)? {
            refusals.push(Refusal::Rewrite { branch, guard, old: u.old, new: u.new });
            continue;
        }
        let refusal = match guard {
            Guard::AppendOnly => {
                let hide: Vec<Oid> = if u.old.is_zero() { known.clone() } else { vec![u.old] };
                let violations = append_only::range_violations(git, u.new, &hide, interrupt)?;
                (!violations.is_empty()).then(|| Refusal::Changes { branch: branch.clone(), violations })
            }
            Guard::Environment { env } => {
                let violations = env_rule::violations(git, &env, u.old, u.new, &tag_target, interrupt)?;
                (!violations.is_empty()).then(|| Refusal::NotPromotions {
                    branch: branch.clone(),
                    env,
                    violations,
                })
            }
        };
        match refusal {
            Some(r) => refusals.push(r),
            None => out.checked.push(branch),
        }
    }
    if refusals.is_empty() {
        return Ok(out);
    }
    let text: Vec<String> = refusals.iter().map(Refusal::describe).collect();
    let mut hints = Vec::new();
    if refusals.iter().any(|r| !r.is_environment()) {
        hints.push(APPEND_ONLY_HINT);
    }
    if refusals.iter().any(Refusal::is_environment) {
        hints.push(ENVIRONMENT_HINT);
    }
    Err(Error::conflict(format!("push refused by mlgit's pre-receive hook:\n{}", text.join("\n")))
        .with_hint(hints.join("; and ")))
}

const APPEND_ONLY_HINT: &str = "committed files on an append-only branch are never changed or removed: give new \
    versions new names (`mlgit commit-data` adds files), move the refused commits off the branch in your clone \
    (`git branch -f BRANCH origin/BRANCH` after saving what you need), then push again";

const ENVIRONMENT_HINT: &str = "an environment changes only through `mlgit promote TAG --env ENV` or \
    `mlgit rollback --env ENV`, each one new commit on top of its branch, and its history is never rewritten: \
    reset the branch in your clone (`git branch -f BRANCH origin/BRANCH`), promote or roll back, then push";

/// The commit a tag names on the server once this push lands: the push's own update of
/// `refs/tags/<tag>` first, else the tag the repository has (None: unknown, or deleted by the push).
fn tag_target(git: &Repository, updates: &[RefUpdate], tag: &str) -> Option<Oid> {
    let name = format!("refs/tags/{tag}");
    let oid = match updates.iter().find(|u| u.refname == name) {
        Some(u) if u.new.is_zero() => return None,
        Some(u) => u.new,
        None => git.refname_to_id(&name).ok()?,
    };
    git.find_object(oid, None).ok()?.peel_to_commit().ok().map(|c| c.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_parse_and_zero_ids_are_zero() {
        let z = "0".repeat(40);
        let a = "1".repeat(40);
        let u = parse_updates(&format!("{z} {a} refs/heads/raw\n{a} {z} refs/tags/v1\n")).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u[0].old.is_zero() && !u[0].new.is_zero());
        assert_eq!(u[1].refname, "refs/tags/v1");
        assert!(parse_updates("abc refs/heads/raw\n").is_err());
        assert!(parse_updates(&format!("{a} 12 refs/heads/raw")).is_err());
    }
}
