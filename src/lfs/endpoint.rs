//! Finding a remote's LFS server as git-lfs does: `lfs.pushurl` (uploads), `lfs.url`,
//! `remote.<name>.lfspushurl` (uploads), `remote.<name>.lfsurl` — in that order, each key from git's
//! config, else from `.lfsconfig` (in the branch's tree, else HEAD's, else the worktree's file), so a
//! committed `.lfsconfig` with `lfs.url` wins over a local `remote.<name>.lfsurl`, as in git-lfs — then derived from
//! the remote's git URL: `https://host/p(.git)` → `https://host/p.git/info/lfs`, SSH → the same on
//! https, authenticated by `git-lfs-authenticate` over SSH. `file://` URLs and local paths are read
//! and written directly.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::{ssh, Endpoint, Operation};
use crate::error::{Error, Result};
use crate::remote::Remote;
use crate::repo::Repo;

/// The endpoint of `remote` for `operation` (see the module's documentation for the order).
pub fn discover(
    repo: &Repo,
    remote: &Remote,
    operation: Operation,
    branch_tree: Option<Oid>,
) -> Result<Endpoint> {
    let git = repo.git();
    let config = git.config().map_err(|e| Error::git("read the git config", e))?;
    let lfsconfig = LfsConfig::load(repo, branch_tree);
    let get = |key: &str| -> Option<String> {
        config.get_string(key).ok().filter(|v| !v.is_empty()).or_else(|| lfsconfig.get(key))
    };
    let mut keys: Vec<String> = Vec::new();
    if operation == Operation::Upload {
        keys.push("lfs.pushurl".into());
    }
    keys.push("lfs.url".into());
    if let Some(name) = &remote.name {
        if operation == Operation::Upload {
            keys.push(format!("remote.{name}.lfspushurl"));
        }
        keys.push(format!("remote.{name}.lfsurl"));
    }
    if let Some(url) = keys.iter().find_map(|k| get(k)) {
        return from_lfs_url(repo, &url, operation);
    }
    from_git_url(repo, &remote.url, operation)
}

/// An endpoint given as an LFS URL (`lfs.url` and the like): used as it is.
fn from_lfs_url(repo: &Repo, url: &str, operation: Operation) -> Result<Endpoint> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Endpoint::Http { href: url.trim_end_matches('/').to_string(), headers: Vec::new() });
    }
    if let Some(path) = crate::remote::local_path(url) {
        return local(repo, &path);
    }
    match ssh::SshUrl::parse(url) {
        Some(ssh) => ssh::authenticate(repo, &ssh, operation),
        None => Err(Error::invalid(format!("cannot use the LFS URL '{url}'"))
            .with_hint("set lfs.url to an https:// URL of your LFS server (`git config lfs.url URL`)")),
    }
}

/// An endpoint derived from a remote's git URL.
fn from_git_url(repo: &Repo, url: &str, operation: Operation) -> Result<Endpoint> {
    if let Some(path) = crate::remote::local_path(url) {
        return local(repo, &path);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Endpoint::Http { href: derive_http(url), headers: Vec::new() });
    }
    if let Some(rest) = url.strip_prefix("git://") {
        return Ok(Endpoint::Http { href: derive_http(&format!("https://{rest}")), headers: Vec::new() });
    }
    match ssh::SshUrl::parse(url) {
        Some(ssh) => ssh::authenticate(repo, &ssh, operation),
        None => Err(Error::invalid(format!("cannot find the LFS server of the remote URL '{url}'"))
            .with_hint("set it with `git config lfs.url https://HOST/PATH/info/lfs`")),
    }
}

/// `https://host/p` and `https://host/p.git` (with or without a trailing `/`) →
/// `https://host/p.git/info/lfs`, as git-lfs derives it.
pub fn derive_http(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with(".git") {
        format!("{base}/info/lfs")
    } else {
        format!("{base}.git/info/lfs")
    }
}

/// The objects folder of the repository at `path` (bare: `<path>/lfs/objects`; with a worktree:
/// `<path>/.git/lfs/objects`).
fn local(repo: &Repo, path: &Path) -> Result<Endpoint> {
    let path: PathBuf = if path.is_relative() { repo.workdir().join(path) } else { path.to_path_buf() };
    let other = Repository::open_ext(&path, git2::RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&str>())
        .map_err(|e| {
            Error::not_found(format!("{} is not a git repository", path.display()))
                .with_source(e)
                .with_hint("check the remote's URL (`git remote -v`)")
        })?;
    Ok(Endpoint::Local { objects: other.commondir().join("lfs").join("objects") })
}

/// The `.lfsconfig` file that applies: from the branch's tree, else HEAD's, else the worktree.
struct LfsConfig {
    config: Option<git2::Config>,
    _file: Option<tempfile::NamedTempFile>,
}

impl LfsConfig {
    fn load(repo: &Repo, branch_tree: Option<Oid>) -> LfsConfig {
        let none = LfsConfig { config: None, _file: None };
        let git = repo.git();
        let head_tree = || git.head().ok()?.peel_to_tree().ok().map(|t| t.id());
        for tree in [branch_tree, head_tree()].into_iter().flatten() {
            if let Some(blob) = lfsconfig_blob(git, tree) {
                let Ok(mut file) = tempfile::NamedTempFile::new() else { return none };
                if std::io::Write::write_all(&mut file, &blob).is_err() {
                    return none;
                }
                let config = git2::Config::open(file.path()).ok();
                return LfsConfig { config, _file: Some(file) };
            }
        }
        let worktree = repo.workdir().join(".lfsconfig");
        if worktree.is_file() {
            return LfsConfig { config: git2::Config::open(&worktree).ok(), _file: None };
        }
        none
    }

    fn get(&self, key: &str) -> Option<String> {
        self.config.as_ref()?.get_string(key).ok().filter(|v| !v.is_empty())
    }
}

fn lfsconfig_blob(git: &Repository, tree: Oid) -> Option<Vec<u8>> {
    let tree = git.find_tree(tree).ok()?;
    let entry = tree.get_name(".lfsconfig")?;
    let blob = git.find_blob(entry.id()).ok()?;
    Some(blob.content().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_get_dot_git_info_lfs() {
        assert_eq!(derive_http("https://h.example/org/p.git"), "https://h.example/org/p.git/info/lfs");
        assert_eq!(derive_http("https://h.example/org/p"), "https://h.example/org/p.git/info/lfs");
        assert_eq!(derive_http("https://h.example/org/p/"), "https://h.example/org/p.git/info/lfs");
        assert_eq!(derive_http("http://127.0.0.1:8080/p.git/"), "http://127.0.0.1:8080/p.git/info/lfs");
    }
}
