//! `mlgit hook pre-push REMOTE URL`: what the pre-push hook runs. git writes one line per ref it
//! is about to push, `<local ref> <local sha> <remote ref> <remote sha>`; the LFS objects that
//! the pushed commits bring and the remote cannot have yet are uploaded to the remote's LFS
//! server before git sends a single ref. A failed upload is an error, so git pushes no ref and the
//! remote never holds a pointer without its content. Deletions send nothing.

use std::collections::HashSet;

use git2::Oid;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::lfs::{self, Operation, TransferOptions, TransferReport};
use crate::progress::Progress;
use crate::remote::pre_receive::parse_oid;
use crate::remote::select;
use crate::remote::Remote;
use crate::repo::Repo;

/// One line of git's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushLine {
    pub local_ref: String,
    #[serde(serialize_with = "oid_str")]
    pub local: Oid,
    pub remote_ref: String,
    #[serde(serialize_with = "oid_str")]
    pub remote: Oid,
}

fn oid_str<S: serde::Serializer>(oid: &Oid, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&oid.to_string())
}

impl PushLine {
    /// A deletion (`git push origin :branch`): nothing to upload.
    pub fn is_delete(&self) -> bool {
        self.local.is_zero()
    }
}

/// Parse git's pre-push input.
pub fn parse_lines(input: &str) -> Result<Vec<PushLine>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || {
            Error::invalid(format!(
                "line {} of the pre-push input is not `<local ref> <local sha> <remote ref> <remote sha>`: {line}",
                n + 1
            ))
            .with_hint("`mlgit hook pre-push` is run by git's pre-push hook, which writes these lines")
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let [local_ref, local, remote_ref, remote] = fields.as_slice() else { return Err(bad()) };
        out.push(PushLine {
            local_ref: local_ref.to_string(),
            local: parse_oid(local).ok_or_else(bad)?,
            remote_ref: remote_ref.to_string(),
            remote: parse_oid(remote).ok_or_else(bad)?,
        });
    }
    Ok(out)
}

pub struct PrePushOptions<'a> {
    /// The remote's name as git passes it (the URL itself when pushing to a URL).
    pub remote: String,
    /// The URL git pushes to.
    pub url: String,
    /// git's input lines.
    pub lines: Vec<PushLine>,
    pub interrupt: Interrupt,
    pub progress: &'a dyn Progress,
}

/// What the hook uploaded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrePushOutcome {
    /// The remote refs being updated (deletions included).
    pub refs: Vec<String>,
    /// LFS objects the pushed commits bring.
    pub objects: usize,
    /// Objects uploaded, and those the server already had.
    pub transferred: usize,
    pub already_there: usize,
    pub bytes: u64,
}

/// The repository the hook runs in, with its config from main when it can be read and the
/// defaults otherwise: the hook only needs the LFS store, and a broken `mlgit.yaml` must not
/// stop the push that fixes it.
pub fn open_repo(dir: &std::path::Path) -> Result<Repo> {
    // `git --git-dir=… push` hands its repository to the hook in GIT_DIR.
    let from_env = std::env::var_os("GIT_DIR").and_then(|_| git2::Repository::open_from_env().ok());
    let git = match from_env {
        Some(git) => git,
        None => crate::repo::open_git(dir)?,
    };
    let config = crate::repo::load_config(&git).unwrap_or_default();
    Ok(Repo::from_parts(git, config))
}

/// Upload the LFS objects of the commits `opts.lines` push. Nothing to upload means no request to
/// the LFS server at all.
pub fn pre_push(repo: &Repo, opts: &PrePushOptions) -> Result<PrePushOutcome> {
    let git = repo.git();
    let remote = match git.find_remote(&opts.remote) {
        Ok(_) => Remote { name: Some(opts.remote.clone()), url: opts.url.clone() },
        Err(_) => Remote { name: None, url: opts.url.clone() },
    };
    // What the remote has: the old values of the refs being pushed, and what this clone last saw
    // there (its remote-tracking refs). Their objects were uploaded when they were pushed.
    let mut remote_has: Vec<Oid> =
        opts.lines.iter().map(|l| l.remote).filter(|o| !o.is_zero() && git.find_commit(*o).is_ok()).collect();
    if let Some(name) = &remote.name {
        let glob = format!("refs/remotes/{name}/*");
        if let Ok(refs) = git.references_glob(&glob) {
            remote_has.extend(refs.flatten().filter_map(|r| r.peel_to_commit().ok().map(|c| c.id())));
        }
    }
    let mut out = PrePushOutcome {
        refs: opts.lines.iter().map(|l| l.remote_ref.clone()).collect(),
        ..Default::default()
    };
    let mut endpoint = None;
    let mut sent: HashSet<String> = HashSet::new();
    for line in opts.lines.iter().filter(|l| !l.is_delete()) {
        opts.interrupt.check("the pre-push upload")?;
        let commit = git.find_commit(line.local).context(format!("read the pushed commit {}", line.local));
        // A pushed tag can point at a tree or blob: those carry no history to select from.
        let Ok(commit) = commit.or_else(|_| {
            git.find_object(line.local, None).and_then(|o| o.peel_to_commit()).context("peel a pushed ref")
        }) else {
            continue;
        };
        let objects: Vec<lfs::Object> = select::objects_to_push(repo, &[commit.id()], &remote_has)?
            .into_iter()
            .filter(|o| sent.insert(o.pointer.oid.to_hex()))
            .collect();
        if objects.is_empty() {
            continue;
        }
        out.objects += objects.len();
        if endpoint.is_none() {
            endpoint = Some(lfs::endpoint(repo, &remote, Operation::Upload, Some(commit.tree_id()))?);
        }
        let Some(ep) = endpoint.as_ref() else { continue };
        let transfer = TransferOptions {
            interrupt: opts.interrupt.clone(),
            progress: opts.progress,
            jobs: None,
            refspec: Some(line.remote_ref.clone()),
            dry_run: false,
        };
        let TransferReport { transferred, bytes, already_there, .. } =
            lfs::upload(repo, ep, &objects, &transfer).map_err(|e| {
                let hint = e.hint().map(|h| format!("{h}; ")).unwrap_or_default();
                e.with_hint(format!(
                    "{hint}git pushed no ref (the LFS objects must be on the server first); `git push --no-verify` pushes without them"
                ))
            })?;
        out.transferred += transferred;
        out.already_there += already_there;
        out.bytes += bytes;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_pre_push_lines_parse() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let l =
            parse_lines(&format!("refs/heads/raw {a} refs/heads/raw {z}\n(delete) {z} refs/heads/x {a}\n"))
                .unwrap();
        assert_eq!(l.len(), 2);
        assert!(!l[0].is_delete() && l[0].remote.is_zero());
        assert!(l[1].is_delete());
        assert!(parse_lines("refs/heads/raw abc\n").is_err());
    }
}
