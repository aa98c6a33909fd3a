//! The user's own git credentials for an LFS server: `git credential fill` after a 401, then
//! `approve` once the server accepted them, or `reject` when it refused them — so every credential
//! helper git knows (store, cache, libsecret, a host's manager) works, and a bad password is forgotten.

use std::path::Path;

use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::process::{run_with_input, ChildCommand};

/// Credentials from `git credential fill`, with the description they were filled for.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// What `fill` answered (protocol, host, path, username, password…): given back to
    /// `approve` and `reject` unchanged.
    answer: String,
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The `Authorization` header value (HTTP basic).
    pub fn basic(&self) -> String {
        format!("Basic {}", base64(format!("{}:{}", self.username, self.password).as_bytes()))
    }
}

/// The `git credential` description of `url` (protocol, host with port, path, user name).
pub fn describe(url: &str) -> String {
    let (protocol, rest) = url.split_once("://").unwrap_or(("https", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.split(':').next().unwrap_or(user)), host),
        None => (None, authority),
    };
    let mut out = format!("protocol={protocol}\nhost={host}\n");
    if !path.is_empty() {
        out.push_str(&format!("path={path}\n"));
    }
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        out.push_str(&format!("username={user}\n"));
    }
    out
}

/// Ask git's credential helpers (and, when allowed, the terminal) for credentials for `url`.
/// None when git has none to give.
pub fn fill(cwd: &Path, url: &str) -> Option<Credentials> {
    let input = format!("{}\n", describe(url));
    let out = git_credential(cwd, "fill", &input).ok()?;
    let answer = String::from_utf8(out).ok()?;
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    let password = field("password")?;
    Some(Credentials { username: field("username").unwrap_or_default(), password, answer })
}

/// Tell the helpers the credentials worked (best effort: a helper that fails changes nothing).
pub fn approve(cwd: &Path, creds: &Credentials) {
    let _ = git_credential(cwd, "approve", &format!("{}\n", creds.answer.trim_end()));
}

/// Tell the helpers the credentials were refused, so they are not offered again.
pub fn reject(cwd: &Path, creds: &Credentials) {
    let _ = git_credential(cwd, "reject", &format!("{}\n", creds.answer.trim_end()));
}

fn git_credential(cwd: &Path, action: &str, input: &str) -> Result<Vec<u8>> {
    let cmd = ChildCommand::new("git", cwd).arg("credential").arg(action);
    run_with_input(&cmd, input.as_bytes(), &Interrupt::new(), &format!("`git credential {action}`"))
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_as_git_credential_reads_them() {
        assert_eq!(
            describe("http://127.0.0.1:8080/api/org/proj"),
            "protocol=http\nhost=127.0.0.1:8080\npath=api/org/proj\n"
        );
        assert_eq!(
            describe("https://me@h.example/x"),
            "protocol=https\nhost=h.example\npath=x\nusername=me\n"
        );
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        let creds =
            Credentials { answer: String::new(), username: "Aladdin".into(), password: "open sesame".into() };
        assert_eq!(creds.basic(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
