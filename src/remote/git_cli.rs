//! Moving refs with the system `git` (`ls-remote`, `fetch`, `push --porcelain`), so that the user's
//! SSH config, credential helpers, `insteadOf` rules and proxies apply as they do for plain git.
//! Every run goes through [`crate::process`] (its own process group, the interrupt, no leftovers);
//! git's output is read, never shown, and its failures become typed errors with hints.

use std::collections::BTreeMap;
use std::path::Path;

use git2::Oid;
use serde::Serialize;

use super::Remote;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::process::{run_captured, Captured, ChildCommand};

/// The refs a remote has, as `git ls-remote` lists them.
#[derive(Debug, Clone, Default)]
pub struct RemoteRefs {
    /// Full ref name → the object it points at (a tag object for annotated tags).
    pub refs: BTreeMap<String, Oid>,
    /// Annotated tag → the object it peels to (the `^{}` lines).
    pub peeled: BTreeMap<String, Oid>,
}

impl RemoteRefs {
    /// The branches (`refs/heads/` stripped) with their tips.
    pub fn branches(&self) -> impl Iterator<Item = (&str, Oid)> {
        self.refs.iter().filter_map(|(name, oid)| name.strip_prefix("refs/heads/").map(|b| (b, *oid)))
    }

    /// What a ref points at, peeled (the commit of an annotated tag).
    pub fn peeled(&self, name: &str) -> Option<Oid> {
        self.peeled.get(name).or_else(|| self.refs.get(name)).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}

/// A `git` command for remote work in `dir`: no terminal prompt (mlgit's child has no terminal of
/// its own; credentials come from the user's helpers and agents), messages in English (they are
/// parsed), and git-lfs's hooks and filters kept out (mlgit moves the LFS objects itself).
fn git(dir: &Path) -> ChildCommand {
    ChildCommand::new("git", dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C")
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .env("GIT_LFS_SKIP_PUSH", "1")
}

/// How git is told which remote: by name when it has one (its config applies), else by URL.
fn target(remote: &Remote) -> &str {
    remote.name.as_deref().unwrap_or(&remote.url)
}

/// The refs (branches and tags) of `remote`.
pub fn ls_remote(dir: &Path, remote: &Remote, interrupt: &Interrupt) -> Result<RemoteRefs> {
    let cmd = git(dir).args(["ls-remote", target(remote), "refs/heads/*", "refs/tags/*"]);
    let out = run_captured(&cmd, b"", interrupt, "`git ls-remote`")?;
    if !out.success() {
        return Err(remote_error(remote, "list the refs of", &out));
    }
    Ok(parse_ls_remote(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_ls_remote(text: &str) -> RemoteRefs {
    let mut refs = RemoteRefs::default();
    for line in text.lines() {
        let Some((oid, name)) = line.split_once('\t') else { continue };
        let Ok(oid) = Oid::from_str(oid.trim()) else { continue };
        match name.strip_suffix("^{}") {
            Some(tag) => {
                refs.peeled.insert(tag.to_string(), oid);
            }
            None => {
                refs.refs.insert(name.to_string(), oid);
            }
        }
    }
    refs
}

/// Fetch `refspecs` from the remote called `name` (`--prune`: remote-tracking branches deleted on
/// the remote go; `--no-tags`: only the tags named in `refspecs` come). The refspecs go on stdin,
/// so thousands of tags fit.
pub fn fetch(dir: &Path, remote: &Remote, refspecs: &[String], interrupt: &Interrupt) -> Result<()> {
    let mut input = refspecs.join("\n");
    input.push('\n');
    let cmd = git(dir).args(["fetch", "--prune", "--no-tags", "--quiet", target(remote), "--stdin"]);
    let out = run_captured(&cmd, input.as_bytes(), interrupt, "`git fetch`")?;
    if !out.success() {
        return Err(remote_error(remote, "fetch from", &out));
    }
    Ok(())
}

/// `git clone --no-checkout URL DIR`, run in `parent` (no LFS smudge: mlgit writes the files).
pub fn clone_no_checkout(parent: &Path, url: &str, dir: &Path, interrupt: &Interrupt) -> Result<()> {
    let cmd =
        git(parent).args(["clone", "--no-checkout", "--quiet", "--origin", "origin", "--", url]).arg(dir);
    let out = run_captured(&cmd, b"", interrupt, "`git clone`")?;
    if !out.success() {
        let remote = Remote { name: None, url: url.to_string() };
        return Err(remote_error(&remote, "clone", &out));
    }
    Ok(())
}

/// How one ref fared in a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefStatus {
    New,
    FastForward,
    Forced,
    Deleted,
    UpToDate,
    Rejected,
}

/// One line of `git push --porcelain`.
#[derive(Debug, Clone, Serialize)]
pub struct PushedRef {
    /// The local ref (`refs/heads/raw`).
    pub local: String,
    /// The remote ref it was pushed to.
    pub remote: String,
    pub status: RefStatus,
    /// git's summary: `a1b2..c3d4`, `[new branch]`, `[rejected]`.
    pub summary: String,
    /// Why it was rejected (`non-fast-forward`, `fetch first`, `atomic push failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushResult {
    pub refs: Vec<PushedRef>,
    /// Whether git pushed atomically (false: the server does not support it).
    pub atomic: bool,
}

/// `git push --porcelain` of `refspecs` (`src:dst`), atomic when the server supports it (a server
/// that refuses `--atomic` gets a plain push). `--no-verify`: mlgit has sent the LFS objects
/// already, and a git-lfs pre-push hook would fail in a clone that lacks some of them. A rejected
/// ref is an [`ErrorKind::Conflict`] naming the refs; with an atomic push no ref moved.
pub fn push(
    dir: &Path,
    remote: &Remote,
    refspecs: &[String],
    dry_run: bool,
    interrupt: &Interrupt,
) -> Result<PushResult> {
    let mut atomic = true;
    loop {
        let mut cmd = git(dir).args(["push", "--porcelain", "--no-verify"]);
        if atomic {
            cmd = cmd.arg("--atomic");
        }
        if dry_run {
            cmd = cmd.arg("--dry-run");
        }
        cmd = cmd.arg(target(remote)).args(refspecs);
        let out = run_captured(&cmd, b"", interrupt, "`git push`")?;
        let refs = parse_porcelain(&String::from_utf8_lossy(&out.stdout));
        if out.success() {
            return Ok(PushResult { refs, atomic });
        }
        if atomic && out.stderr_text().contains("does not support --atomic") {
            atomic = false;
            continue;
        }
        let rejected: Vec<&PushedRef> = refs.iter().filter(|r| r.status == RefStatus::Rejected).collect();
        if rejected.is_empty() {
            return Err(remote_error(remote, "push to", &out));
        }
        let err = rejected_error(remote, &rejected, atomic);
        let stderr = out.stderr_text();
        return Err(if stderr.is_empty() { err } else { err.with_source(GitMessage(stderr)) });
    }
}

/// The error of a push the remote rejected.
pub fn rejected_error(remote: &Remote, rejected: &[&PushedRef], atomic: bool) -> Error {
    // With an atomic push, the refs that were fine are listed as "atomic push failure": name the
    // ones that caused it.
    let causes: Vec<&&PushedRef> = rejected
        .iter()
        .filter(|r| !r.reason.as_deref().is_some_and(|x| x.starts_with("atomic push fail")))
        .collect();
    let shown: Vec<String> = if causes.is_empty() { rejected.iter().collect::<Vec<_>>() } else { causes }
        .iter()
        .map(|r| {
            let name = short_ref(&r.remote);
            match &r.reason {
                Some(reason) => format!("{name} ({reason})"),
                None => name.to_string(),
            }
        })
        .collect();
    let moved = if atomic { "no ref was moved on the remote; " } else { "" };
    let reason_is =
        |names: &[&str]| rejected.iter().any(|r| r.reason.as_deref().is_some_and(|x| names.contains(&x)));
    let hint = if reason_is(&["non-fast-forward", "fetch first", "stale info", "already exists"]) {
        format!("{moved}the remote has commits this repository does not have: run `mlgit pull` first, then push again")
    } else if reason_is(&["atomic transaction failed", "failed to lock", "failed to update ref"]) {
        // git's own compare-and-swap on the server lost: another push moved the ref meanwhile.
        format!("{moved}another push moved it at the same time: run `mlgit pull`, then push again")
    } else {
        format!("{moved}the server refused it (a hook, branch protection or permissions: its message is above); fix that, then push again")
    };
    Error::conflict(format!("{} rejected the push of {}", remote.label(), shown.join(", "))).with_hint(hint)
}

/// `refs/heads/raw` → `raw`, `refs/tags/v1` → `v1`.
pub fn short_ref(name: &str) -> &str {
    name.strip_prefix("refs/heads/").or_else(|| name.strip_prefix("refs/tags/")).unwrap_or(name)
}

fn parse_porcelain(text: &str) -> Vec<PushedRef> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(flag), Some(refs), Some(summary)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let status = match flag {
            " " => RefStatus::FastForward,
            "+" => RefStatus::Forced,
            "-" => RefStatus::Deleted,
            "*" => RefStatus::New,
            "=" => RefStatus::UpToDate,
            "!" => RefStatus::Rejected,
            _ => continue,
        };
        let (local, remote) = refs.split_once(':').unwrap_or((refs, refs));
        let (summary, reason) = match summary.split_once(" (") {
            Some((s, r)) => (s.to_string(), Some(r.trim_end_matches(')').to_string())),
            None => (summary.to_string(), None),
        };
        out.push(PushedRef { local: local.to_string(), remote: remote.to_string(), status, summary, reason });
    }
    out
}

/// A failed git run against a remote as a typed error: a remote that is not a repository, failed
/// authentication, an unreachable host, or git's own message.
pub fn remote_error(remote: &Remote, action: &str, out: &Captured) -> Error {
    let stderr = out.stderr_text();
    let lower = stderr.to_lowercase();
    let label = remote.label();
    let url = &remote.url;
    let shown = if remote.name.is_some() { format!("remote '{label}' ({url})") } else { url.clone() };
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let err = if has(&[
        "does not appear to be a git repository",
        "not found",
        "not a git repository",
        "repository not found",
        "no such file or directory",
    ]) && !has(&["could not resolve", "failed to connect"])
    {
        Error::not_found(format!("cannot {action} {shown}: there is no git repository there")).with_hint(
            "check the URL (`git remote -v`); on a git host, create the repository first (empty, without a README)",
        )
    } else if has(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
        "error: 401",
        "error: 403",
        "returned error: 401",
        "returned error: 403",
        "access denied",
        "terminal prompts disabled",
    ]) {
        Error::new(ErrorKind::InvalidInput, format!("cannot {action} {shown}: the server refused the credentials"))
            .with_hint(
                "check that `git ls-remote` works there: set up a credential helper (`git config --global credential.helper store`, or your host's) or an SSH key in ssh-agent",
            )
    } else if has(&[
        "could not resolve",
        "failed to connect",
        "couldn't connect",
        "connection refused",
        "connection timed out",
        "network is unreachable",
        "no route to host",
        "operation timed out",
        "unable to access",
        "could not read from remote repository",
    ]) {
        Error::new(ErrorKind::Io, format!("cannot {action} {shown}: the server cannot be reached"))
            .with_hint("check the network and the URL (`git remote -v`), then retry")
    } else {
        let code = out.status.code().map_or("a signal".to_string(), |c| format!("exit code {c}"));
        Error::new(ErrorKind::Git, format!("cannot {action} {shown}: git failed ({code})"))
            .with_hint("git's message is above; fix what it names, then retry")
    };
    if stderr.is_empty() {
        err
    } else {
        err.with_source(GitMessage(stderr))
    }
}

/// git's own words, kept as the cause of an error.
#[derive(Debug)]
struct GitMessage(String);

impl std::fmt::Display for GitMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.0.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        write!(f, "git: {}", lines.join(" / "))
    }
}

impl std::error::Error for GitMessage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lines_are_parsed() {
        let text = "To /srv/x.git\n=\trefs/heads/main:refs/heads/main\t[up to date]\n!\trefs/heads/raw:refs/heads/raw\t[rejected] (non-fast-forward)\n \trefs/heads/split:refs/heads/split\t1111111..2222222\n*\trefs/tags/m-v1:refs/tags/m-v1\t[new tag]\nDone\n";
        let refs = parse_porcelain(text);
        assert_eq!(refs.len(), 4);
        assert_eq!(refs[0].status, RefStatus::UpToDate);
        assert_eq!(refs[1].status, RefStatus::Rejected);
        assert_eq!(refs[1].reason.as_deref(), Some("non-fast-forward"));
        assert_eq!(refs[2].status, RefStatus::FastForward);
        assert_eq!(refs[3].status, RefStatus::New);
        assert_eq!(refs[3].remote, "refs/tags/m-v1");
    }

    #[test]
    fn ls_remote_keeps_peeled_tags_apart() {
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let text = format!("{a}\trefs/heads/main\n{a}\trefs/tags/v1\n{b}\trefs/tags/v1^{{}}\n");
        let refs = parse_ls_remote(&text);
        assert_eq!(refs.refs.len(), 2);
        assert_eq!(refs.peeled("refs/tags/v1"), Some(Oid::from_str(&b).unwrap()));
        assert_eq!(refs.peeled("refs/heads/main"), Some(Oid::from_str(&a).unwrap()));
        assert_eq!(refs.branches().count(), 1);
    }

    #[test]
    fn atomic_rejections_name_the_ref_that_caused_them() {
        let remote = Remote { name: Some("origin".into()), url: "/srv/x".into() };
        let raw = PushedRef {
            local: "refs/heads/raw".into(),
            remote: "refs/heads/raw".into(),
            status: RefStatus::Rejected,
            summary: "[rejected]".into(),
            reason: Some("non-fast-forward".into()),
        };
        let main = PushedRef {
            reason: Some("atomic push failure".into()),
            remote: "refs/heads/main".into(),
            ..raw.clone()
        };
        let err = rejected_error(&remote, &[&main, &raw], true);
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.message().contains("raw (non-fast-forward)"), "{}", err.message());
        assert!(!err.message().contains("main"), "{}", err.message());
        assert!(err.hint().unwrap_or_default().contains("mlgit pull"));
    }
}
