//! The repository layer every command builds on: open a repository, read its committed config from
//! `main`, resolve revisions, make signatures that honour git's environment variables.

pub mod lfs_tree;
pub mod lineage_walk;
pub mod lock;
pub mod names;
pub mod refs;
pub mod trailers;
pub mod transaction;
pub mod tree;
pub mod worktree;

use std::path::{Path, PathBuf};

use git2::{Commit, Oid, Repository, Signature, Time};

use crate::config::{Config, CONFIG_FILE};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::store::LfsStore;

/// An open, non-bare repository with its mlgit configuration.
pub struct Repo {
    git: Repository,
    config: Config,
    store: LfsStore,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("path", &self.git.path()).finish()
    }
}

/// The git config key that names the main branch when it is not `main`.
pub const MAIN_BRANCH_KEY: &str = "mlgit.mainBranch";

impl Repo {
    /// Find the repository containing `start` and read its config from the main branch.
    pub fn discover(start: &Path) -> Result<Repo> {
        let git = open_git(start)?;
        let config = load_config(&git)?;
        Ok(Repo::from_parts(git, config))
    }

    /// Wrap an already open repository with a known config (used by `init`, before `main` exists).
    pub fn from_parts(git: Repository, config: Config) -> Repo {
        let store = LfsStore::new(git.commondir());
        Repo { git, config, store }
    }

    pub fn git(&self) -> &Repository {
        &self.git
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &LfsStore {
        &self.store
    }

    /// The top of the working tree this repository was opened from.
    pub fn workdir(&self) -> &Path {
        self.git.workdir().unwrap_or_else(|| self.git.path())
    }

    /// The tip of a local branch, if the branch exists.
    pub fn branch_tip(&self, branch: &str) -> Result<Option<Oid>> {
        branch_tip(&self.git, branch)
    }

    /// The tip commit of a branch that must exist.
    pub fn require_branch(&self, branch: &str) -> Result<Commit<'_>> {
        match self.branch_tip(branch)? {
            Some(oid) => self.git.find_commit(oid).context(format!("read the tip of branch '{branch}'")),
            None => Err(Error::not_found(format!("branch '{branch}' does not exist")).with_hint(
                "run `mlgit init` to create the convention branches, or check the name with `mlgit status`",
            )),
        }
    }

    /// Resolve a branch, tag, commit id or revision expression to a commit.
    pub fn resolve(&self, rev: &str) -> Result<Commit<'_>> {
        resolve_commit(&self.git, rev)
    }

    /// The author/committer for commits mlgit makes (see [`signature`]).
    pub fn signature(&self) -> Result<Signature<'static>> {
        signature(&self.git)
    }

    /// A new repository handle for the same repository (for worker threads, or after another process
    /// may have changed refs).
    pub fn reopen(&self) -> Result<Repo> {
        let git = Repository::open(self.git.path()).context(format!("open {}", self.git.path().display()))?;
        Ok(Repo::from_parts(git, self.config.clone()))
    }
}

/// Open the repository containing `start`, refusing bare repositories.
pub fn open_git(start: &Path) -> Result<Repository> {
    let git = Repository::discover(start).map_err(|e| {
        if e.code() == git2::ErrorCode::NotFound {
            Error::not_found(format!("not inside a git repository: {}", start.display()))
                .with_hint("run `mlgit init` to create one here, or `mlgit -C <dir>` to point at one")
        } else {
            Error::git(format!("open a repository at {}", start.display()), e)
        }
    })?;
    if git.is_bare() {
        return Err(Error::invalid(format!("{} is a bare repository", git.path().display())).with_hint(
            "mlgit needs a working tree: clone it (`git clone <bare> <dir>`) and run mlgit in the clone",
        ));
    }
    Ok(git)
}

/// The name of the main branch: `mlgit.mainBranch` from git config, else `main`.
pub fn main_branch_name(git: &Repository) -> String {
    git.config().ok().and_then(|c| c.get_string(MAIN_BRANCH_KEY).ok()).unwrap_or_else(|| "main".to_string())
}

/// Read `mlgit.yaml` from the tip of the main branch (the committed file, so every branch and
/// worktree sees the same config). A main branch without the file means the defaults.
pub fn load_config(git: &Repository) -> Result<Config> {
    let main = main_branch_name(git);
    let Some(tip) = branch_tip(git, &main)? else {
        return Err(Error::not_found(format!("this repository has no '{main}' branch, so no mlgit config"))
            .with_hint("run `mlgit init` here first (it adds what is missing and overwrites nothing)"));
    };
    let commit = git.find_commit(tip).context(format!("read the tip of '{main}'"))?;
    let tree = commit.tree().context(format!("read the tree of '{main}'"))?;
    let Some(entry) = tree.get_name(CONFIG_FILE) else { return Ok(Config::default()) };
    let blob = git.find_blob(entry.id()).context(format!("read {main}:{CONFIG_FILE}"))?;
    let text = std::str::from_utf8(blob.content()).map_err(|_| {
        Error::new(ErrorKind::Config, format!("{main}:{CONFIG_FILE} is not valid UTF-8"))
            .with_hint("save the file as UTF-8 and commit it on main")
    })?;
    Config::parse(text, &format!("{main}:{CONFIG_FILE}"))
}

/// The tip of a local branch, if it exists.
pub fn branch_tip(git: &Repository, branch: &str) -> Result<Option<Oid>> {
    match git.find_reference(&format!("refs/heads/{branch}")) {
        Ok(r) => match r.resolve() {
            Ok(r) => Ok(r.target()),
            Err(e) => Err(Error::git(format!("resolve branch '{branch}'"), e)),
        },
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) if e.code() == git2::ErrorCode::InvalidSpec => {
            Err(Error::invalid(format!("'{branch}' is not a valid branch name")))
        }
        Err(e) => Err(Error::git(format!("read branch '{branch}'"), e)),
    }
}

/// Resolve a revision to a commit (tags are peeled).
pub fn resolve_commit<'r>(git: &'r Repository, rev: &str) -> Result<Commit<'r>> {
    let obj = git.revparse_single(rev).map_err(|e| {
        Error::not_found(format!("'{rev}' is not a branch, tag or commit of this repository"))
            .with_source(e)
            .with_hint("list branches and snapshots with `mlgit status`")
    })?;
    obj.peel_to_commit()
        .map_err(|e| Error::invalid(format!("'{rev}' does not point at a commit")).with_source(e))
}

/// The signature for commits and tags: name and email from `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL`,
/// else `user.name`/`user.email`, else "mlgit"; time from `GIT_COMMITTER_DATE` or
/// `GIT_AUTHOR_DATE` when set (so tests get stable ids), else now.
pub fn signature(git: &Repository) -> Result<Signature<'static>> {
    let cfg = git.config().ok();
    let get = |env: &str, key: &str, default: &str| {
        std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| cfg.as_ref().and_then(|c| c.get_string(key).ok()))
            .unwrap_or_else(|| default.to_string())
    };
    let name = get("GIT_AUTHOR_NAME", "user.name", "mlgit");
    let email = get("GIT_AUTHOR_EMAIL", "user.email", "mlgit@localhost");
    let date = std::env::var("GIT_COMMITTER_DATE").ok().or_else(|| std::env::var("GIT_AUTHOR_DATE").ok());
    match date.filter(|d| !d.is_empty()) {
        Some(text) => {
            let time = parse_git_date(&text).ok_or_else(|| {
                Error::invalid(format!(
                    "cannot parse the date '{text}' from GIT_COMMITTER_DATE/GIT_AUTHOR_DATE"
                ))
                .with_hint("use '@<unix seconds> +0000', RFC 3339 or RFC 2822")
            })?;
            Signature::new(&name, &email, &time).context("make a signature")
        }
        None => Signature::now(&name, &email).context("make a signature"),
    }
}

/// Parse the date formats git accepts most often: `@<secs> [±hhmm]`, `<secs> ±hhmm`, RFC 3339 and
/// RFC 2822.
pub fn parse_git_date(text: &str) -> Option<Time> {
    let text = text.trim();
    let mut parts = text.trim_start_matches('@').split_whitespace();
    if let Some(Ok(secs)) = parts.next().map(str::parse::<i64>) {
        let offset = match parts.next() {
            Some(tz) => parse_tz(tz)?,
            None => 0,
        };
        return Some(Time::new(secs, offset));
    }
    let dt = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(text))
        .ok()?;
    Some(Time::new(dt.timestamp(), dt.offset().local_minus_utc() / 60))
}

fn parse_tz(tz: &str) -> Option<i32> {
    let (sign, digits) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    if digits.len() != 4 {
        return None;
    }
    let n: i32 = digits.parse().ok()?;
    Some(sign * ((n / 100) * 60 + n % 100))
}

/// Format a git time as RFC 3339 in its own offset.
pub fn format_time(time: Time) -> String {
    let offset = chrono::FixedOffset::east_opt(time.offset_minutes() * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset is valid"));
    match chrono::DateTime::from_timestamp(time.seconds(), 0) {
        Some(dt) => dt.with_timezone(&offset).to_rfc3339(),
        None => time.seconds().to_string(),
    }
}

/// The host name, for provenance.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The user name, for provenance: the login (`$USER`, `$LOGNAME`), else git's identity
/// (`GIT_AUTHOR_NAME`, then `user.name` and `user.email` from the repository's config, as git
/// reads them), else "unknown". Containers and CI jobs often run without `$USER` but with a git
/// identity, which says more than "unknown".
pub fn user_name(git: &Repository) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(login) = env("USER").or_else(|| env("LOGNAME")) {
        return login;
    }
    let config = git.config().ok();
    let get =
        |key: &str| config.as_ref().and_then(|c| c.get_string(key).ok()).filter(|v| !v.trim().is_empty());
    let name = env("GIT_AUTHOR_NAME").or_else(|| get("user.name"));
    let email = env("GIT_AUTHOR_EMAIL").or_else(|| get("user.email"));
    match (name, email) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (Some(n), None) => n,
        (None, Some(e)) => e,
        (None, None) => "unknown".into(),
    }
}

/// An absolute, normalised form of `path` for messages and provenance (no symlink resolution needed).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_date_formats_tests_use() {
        let t = parse_git_date("@1700000000 +0100").unwrap();
        assert_eq!((t.seconds(), t.offset_minutes()), (1700000000, 60));
        let t = parse_git_date("1700000000 -0230").unwrap();
        assert_eq!(t.offset_minutes(), -150);
        let t = parse_git_date("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(t.seconds(), 1795428000);
        assert!(parse_git_date("yesterday").is_none());
        assert_eq!(format_time(Time::new(0, 0)), "1970-01-01T00:00:00+00:00");
    }
}
