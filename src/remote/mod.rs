//! Sharing through a git host and a Git LFS server: which remote, which objects, and moving refs
//! with the system `git` (so the user's SSH config, credential helpers and `insteadOf` rules apply).

pub mod append_only;
pub mod clone;
pub mod env_rule;
pub mod fetch;
pub mod git_cli;
pub mod integrate;
pub mod pre_receive;
pub mod push;
pub mod select;

use std::path::PathBuf;

use git2::Repository;

use crate::error::{Error, Result};

/// A remote, by name (configured with `git remote add`) or by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The configured name; None when a URL or path was given directly.
    pub name: Option<String>,
    /// The fetch URL (or local path).
    pub url: String,
}

impl Remote {
    /// The remote called `name_or_url`, or a URL / local path given directly. A name that is no
    /// configured remote and does not look like a URL or path is refused, naming the remotes there are.
    pub fn find(git: &Repository, name_or_url: &str) -> Result<Remote> {
        if let Ok(remote) = git.find_remote(name_or_url) {
            let url = remote.url().map(str::to_string).ok_or_else(|| {
                Error::invalid(format!("remote '{name_or_url}' has no URL (or one that is not UTF-8)"))
                    .with_hint(format!("set one with `git remote set-url {name_or_url} URL`"))
            })?;
            return Ok(Remote { name: Some(name_or_url.to_string()), url });
        }
        if looks_like_url(name_or_url) {
            return Ok(Remote { name: None, url: name_or_url.to_string() });
        }
        let known = remote_names(git);
        let hint = if known.is_empty() {
            "this repository has no remotes: add one with `git remote add origin URL`".to_string()
        } else {
            format!("the remotes here are: {} (see `git remote -v`)", known.join(", "))
        };
        Err(Error::not_found(format!("no remote named '{name_or_url}'")).with_hint(hint))
    }

    /// The folder of a `file://` URL or a local path; None for network URLs.
    pub fn local_path(&self) -> Option<PathBuf> {
        local_path(&self.url)
    }

    /// The name for messages: the configured name, else the URL.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }
}

/// `text` with the user-info of every URL in it removed, as git shows URLs: credentials in a remote
/// URL (`https://user:token@host/…`) must never reach a terminal, a CI log or a `--json` document.
/// http(s)/ftp(s) URLs lose any user-info (a token alone is often the user name); other schemes
/// lose it when it holds a password (`ssh://git@host` stays).
pub fn anonymize(text: &str) -> std::borrow::Cow<'_, str> {
    use std::sync::OnceLock;
    static WEB: OnceLock<regex::Regex> = OnceLock::new();
    static OTHER: OnceLock<regex::Regex> = OnceLock::new();
    if !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let web = WEB.get_or_init(|| {
        regex::Regex::new(r#"(?i)\b((?:https?|ftps?)://)[^/\s@"'`<>]+@"#).expect("a valid pattern")
    });
    let other = OTHER.get_or_init(|| {
        regex::Regex::new(r#"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:"'`<>]*:[^/\s@"'`<>]*@"#)
            .expect("a valid pattern")
    });
    match web.replace_all(text, "$1") {
        std::borrow::Cow::Borrowed(t) => other.replace_all(t, "$1"),
        std::borrow::Cow::Owned(t) => std::borrow::Cow::Owned(other.replace_all(&t, "$1").into_owned()),
    }
}

/// The remote to use when none is named: `origin`, else the only remote there is.
pub fn default_remote(git: &Repository) -> Result<String> {
    let names = remote_names(git);
    if names.iter().any(|n| n == "origin") {
        return Ok("origin".to_string());
    }
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Error::not_found("this repository has no remote")
            .with_hint("add one with `git remote add origin URL`, or clone with `mlgit clone URL`")),
        _ => Err(Error::invalid(format!(
            "there are several remotes ({}) and none is called origin",
            names.join(", ")
        ))
        .with_hint("name the remote to use, e.g. `mlgit push REMOTE`")),
    }
}

/// The configured remote names, sorted.
pub fn remote_names(git: &Repository) -> Vec<String> {
    let mut names: Vec<String> = match git.remotes() {
        Ok(list) => list.iter().flatten().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Whether `s` is a URL or a path rather than a remote name (as git decides: a scheme, an scp-like
/// `host:path`, or something that starts like a path).
pub fn looks_like_url(s: &str) -> bool {
    s.contains("://")
        || s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('~')
        || scp_like(s)
}

fn scp_like(s: &str) -> bool {
    match s.find(':') {
        Some(colon) => !s[..colon].contains('/') && colon > 0,
        None => false,
    }
}

/// The folder a `file://` URL or a local path names.
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(percent_decode(rest)));
    }
    if url.contains("://") || scp_like(url) {
        return None;
    }
    Some(PathBuf::from(url))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_told_apart() {
        assert!(looks_like_url("https://example.com/a.git"));
        assert!(looks_like_url("git@github.com:org/repo.git"));
        assert!(looks_like_url("/srv/repo.git"));
        assert!(looks_like_url("../repo.git"));
        assert!(!looks_like_url("origin"));
        assert!(!looks_like_url("orgin"));
    }

    #[test]
    fn credentials_in_urls_are_never_shown() {
        let text =
            "cannot reach https://user:s3cret@git.example.com/p.git and http://TOKEN@h/x, \"ftp://a:b@c/d\"";
        let shown = anonymize(text);
        assert!(!shown.contains("s3cret") && !shown.contains("TOKEN") && !shown.contains("a:b@"), "{shown}");
        assert!(shown.contains("https://git.example.com/p.git") && shown.contains("http://h/x"), "{shown}");
        assert_eq!(anonymize("ssh://git@github.com/o/r.git"), "ssh://git@github.com/o/r.git");
        assert_eq!(anonymize("ssh://git:pw@host/r"), "ssh://host/r");
        assert_eq!(anonymize("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(anonymize("no url here"), "no url here");
    }

    #[test]
    fn local_paths_come_from_file_urls_and_paths() {
        assert_eq!(local_path("file:///srv/a%20b.git"), Some(PathBuf::from("/srv/a b.git")));
        assert_eq!(local_path("/srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(local_path("https://h/x"), None);
        assert_eq!(local_path("git@h:x"), None);
    }
}
