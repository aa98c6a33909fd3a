//! The library's error type: a kind (which decides the exit code), a message that names the path,
//! ref or object involved, an optional hint saying what to do next, and the underlying cause.

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely: enough for the CLI to pick an exit code and for tests to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user asked for something that cannot be done as asked (bad path, bad name, bad ratio…).
    InvalidInput,
    /// A repository, branch, tag, file or object that the operation needs does not exist.
    NotFound,
    /// Something already exists that the operation must not overwrite.
    AlreadyExists,
    /// The repository is not in a state the operation accepts (dirty worktree, append-only violation…).
    Conflict,
    /// `mlgit.yaml` is malformed.
    Config,
    /// Reading or writing a file failed.
    Io,
    /// libgit2 reported an error.
    Git,
    /// A check ran and found problems (verify, drift): exit code 3.
    CheckFailed,
    /// A child process (training command, transform) failed with this exit code.
    ChildFailed(i32),
    /// The user interrupted the operation.
    Interrupted,
}

/// An error from the library, with context and a hint.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), hint: None, source: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// Attach a hint: one sentence telling the user what to do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O error on `path`, with what was being done.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Io,
        };
        Self::new(kind, format!("cannot {action} {}", path.display())).with_source(err)
    }

    /// A libgit2 error, with what was being done.
    pub fn git(action: impl fmt::Display, err: git2::Error) -> Self {
        let kind = match err.code() {
            git2::ErrorCode::NotFound => ErrorKind::NotFound,
            git2::ErrorCode::Exists => ErrorKind::AlreadyExists,
            _ => ErrorKind::Git,
        };
        Self::new(kind, format!("cannot {action}")).with_source(err)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The process exit code this error maps to (see docs/architecture.md).
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::CheckFailed => 3,
            ErrorKind::ChildFailed(code) if code != 0 => code,
            ErrorKind::Interrupted => 130,
            _ => 1,
        }
    }

    /// The chain of causes below the message, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(err) = next {
            out.push(err.to_string());
            next = err.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// Adds context to foreign errors, turning them into [`Error`].
pub trait Context<T> {
    /// Wrap the error with a message saying what was being done ("cannot <action>").
    fn context(self, action: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, git2::Error> {
    fn context(self, action: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::git(action, e))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, action: impl fmt::Display) -> Result<T> {
        self.map_err(|e| {
            let kind =
                if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Io };
            Error::new(kind, format!("cannot {action}")).with_source(e)
        })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn context(self, action: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::invalid(format!("cannot {action}")).with_source(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind() {
        assert_eq!(Error::invalid("x").exit_code(), 1);
        assert_eq!(Error::new(ErrorKind::CheckFailed, "x").exit_code(), 3);
        assert_eq!(Error::new(ErrorKind::ChildFailed(7), "x").exit_code(), 7);
    }

    #[test]
    fn causes_are_listed_outermost_first() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = Error::io("read", Path::new("/x"), io).with_hint("check permissions");
        assert_eq!(err.to_string(), "cannot read /x");
        assert_eq!(err.causes(), vec!["denied".to_string()]);
        assert_eq!(err.hint(), Some("check permissions"));
        assert_eq!(err.kind(), ErrorKind::Io);
    }
}
