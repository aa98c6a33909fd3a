//! LFS over an SSH remote: the server is the https twin of the SSH URL, and the headers that
//! authenticate us come from `ssh [-p PORT] [USER@]HOST git-lfs-authenticate PATH OPERATION`, run
//! with the user's own SSH command (`GIT_SSH_COMMAND`, `core.sshCommand`, `GIT_SSH`, else `ssh`).

use serde::Deserialize;

use super::endpoint::derive_http;
use super::{Endpoint, Operation};
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::process::{run_with_input, ChildCommand};
use crate::repo::Repo;

/// The parts of an SSH URL (`ssh://[user@]host[:port]/path` or scp-like `[user@]host:path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshUrl {
    /// `user@host` or `host`.
    pub user_host: String,
    pub port: Option<String>,
    /// The repository's path as the server names it (no leading `/`).
    pub path: String,
}

impl SshUrl {
    pub fn parse(url: &str) -> Option<SshUrl> {
        for scheme in ["ssh://", "git+ssh://", "ssh+git://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let (authority, path) = rest.split_once('/')?;
                let (user_host, port) = match authority.rsplit_once(':') {
                    Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                        (h.to_string(), Some(p.to_string()))
                    }
                    _ => (authority.to_string(), None),
                };
                return Some(SshUrl { user_host, port, path: path.trim_start_matches('/').to_string() });
            }
        }
        if url.contains("://") {
            return None;
        }
        let (user_host, path) = url.split_once(':')?;
        if user_host.is_empty() || user_host.contains('/') || path.is_empty() {
            return None;
        }
        Some(SshUrl {
            user_host: user_host.to_string(),
            port: None,
            path: path.trim_start_matches('/').to_string(),
        })
    }

    pub fn host(&self) -> &str {
        self.user_host.rsplit_once('@').map(|(_, h)| h).unwrap_or(&self.user_host)
    }

    /// The https URL git-lfs derives from this SSH URL.
    pub fn https_href(&self) -> String {
        derive_http(&format!("https://{}/{}", self.host(), self.path))
    }
}

#[derive(Deserialize)]
struct AuthReply {
    href: Option<String>,
    #[serde(default)]
    header: Option<std::collections::BTreeMap<String, String>>,
}

/// Ask the SSH server for the LFS URL and headers; when it cannot answer, the https twin of the
/// URL without headers (the credential helpers then apply), as git-lfs does.
pub fn authenticate(repo: &Repo, url: &SshUrl, operation: Operation) -> Result<Endpoint> {
    let fallback = Endpoint::Http { href: url.https_href(), headers: Vec::new() };
    let cmd = ssh_command(repo, url, operation);
    let what = format!("`git-lfs-authenticate` on {}", url.host());
    let Ok(out) = run_with_input(&cmd, b"", &Interrupt::new(), &what) else {
        return Ok(fallback);
    };
    let Ok(reply) = serde_json::from_slice::<AuthReply>(&out) else {
        return Ok(fallback);
    };
    let href = reply.href.filter(|h| !h.is_empty()).unwrap_or_else(|| url.https_href());
    let headers = reply.header.unwrap_or_default().into_iter().collect();
    Ok(Endpoint::Http { href: href.trim_end_matches('/').to_string(), headers })
}

fn ssh_command(repo: &Repo, url: &SshUrl, operation: Operation) -> ChildCommand {
    let mut args: Vec<String> = Vec::new();
    if let Some(port) = &url.port {
        args.push("-p".into());
        args.push(port.clone());
    }
    args.push(url.user_host.clone());
    args.push(format!("git-lfs-authenticate {} {}", shell_quote(&url.path), operation.as_str()));
    let configured = std::env::var("GIT_SSH_COMMAND").ok().filter(|c| !c.trim().is_empty()).or_else(|| {
        repo.git().config().ok()?.get_string("core.sshCommand").ok().filter(|c| !c.trim().is_empty())
    });
    let cwd = repo.workdir();
    match configured {
        // Like git: the command is a shell snippet, the arguments follow it.
        Some(shell) => {
            ChildCommand::new("sh", cwd).arg("-c").arg(format!("{shell} \"$@\"")).arg("ssh").args(args)
        }
        None => {
            let program =
                std::env::var_os("GIT_SSH").filter(|p| !p.is_empty()).unwrap_or_else(|| "ssh".into());
            ChildCommand::new(program, cwd).args(args)
        }
    }
}

/// Quote a path for the remote shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_of_both_forms_are_parsed() {
        let scp = SshUrl::parse("git@github.com:org/repo.git").unwrap();
        assert_eq!(
            scp,
            SshUrl { user_host: "git@github.com".into(), port: None, path: "org/repo.git".into() }
        );
        assert_eq!(scp.https_href(), "https://github.com/org/repo.git/info/lfs");
        let full = SshUrl::parse("ssh://me@h.example:2222/srv/repo").unwrap();
        assert_eq!(full.port.as_deref(), Some("2222"));
        assert_eq!(full.path, "srv/repo");
        assert_eq!(full.https_href(), "https://h.example/srv/repo.git/info/lfs");
        assert_eq!(SshUrl::parse("https://h/x"), None);
        assert_eq!(SshUrl::parse("/srv/x"), None);
    }
}
