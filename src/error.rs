//! The library's error type: a kind (which decides the exit code), a message that names the path,
//! ref or object involved, an optional hint saying what to do next, and the underlying cause.

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely: enough for the CLI to pick an exit code and for tests to match on.
/// Its `--json` form is the stable snake_case name of [`ErrorKind::as_str`] (documented in
/// docs/json.md), never the Rust spelling.
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
    /// The command line does not parse (exit code 2).
    Usage,
}

impl ErrorKind {
    /// Every kind, for documentation and tests (`ChildFailed` with a placeholder code).
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Conflict,
        ErrorKind::Config,
        ErrorKind::Io,
        ErrorKind::Git,
        ErrorKind::CheckFailed,
        ErrorKind::ChildFailed(1),
        ErrorKind::Interrupted,
        ErrorKind::Usage,
    ];

    /// The stable name of the kind: what `--json` prints as `error.kind` (docs/json.md).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Config => "config",
            ErrorKind::Io => "io",
            ErrorKind::Git => "git",
            ErrorKind::CheckFailed => "check_failed",
            ErrorKind::ChildFailed(_) => "child_failed",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Usage => "usage",
        }
    }

    /// The hint of an error that was given none: the kind's general advice, so that no error is
    /// ever shown without a next step.
    fn fallback_hint(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "check the arguments against `mlgit <command> --help`, then retry",
            ErrorKind::NotFound => "check the name or path; `mlgit status` lists the branches and snapshots",
            ErrorKind::AlreadyExists => "choose another name, or remove the existing one first",
            ErrorKind::Conflict => "resolve what the message describes, then run the command again",
            ErrorKind::Config => "fix mlgit.yaml (docs/config.md lists every setting), then retry",
            ErrorKind::Io => "check the path, its permissions and the free space, then retry",
            ErrorKind::Git => "check the repository with `git fsck`, then retry",
            ErrorKind::CheckFailed => "see the problems listed above; docs/verify.md says how to repair them",
            ErrorKind::ChildFailed(_) => "fix the command (its output is above), then run mlgit again",
            ErrorKind::Interrupted => "run the command again when you are ready",
            ErrorKind::Usage => "see `mlgit --help`, or `mlgit <command> --help`",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An error from the library, with context and a hint.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    /// The hint comes from the cause (a full disk, too many open files…) and says more than any
    /// caller's generic advice, so [`Error::with_hint`] keeps it.
    hint_from_cause: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), hint: None, hint_from_cause: false, source: None }
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

    /// Attach a hint: one sentence telling the user what to do next. An I/O error whose cause
    /// names the remedy itself (no space left, too many open files, a read-only file system, a
    /// name too long, a symlink loop) keeps the cause's hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        if !self.hint_from_cause {
            self.hint = Some(hint.into());
        }
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O error on `path`, with what was being done, and the hint its cause calls for.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Self {
        Self::from_io(format!("cannot {action} {}", path.display()), Some(path), err)
    }

    /// An I/O error with its message; the hint follows from the OS error (see [`io_hint`]).
    fn from_io(message: String, path: Option<&Path>, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Io,
        };
        let mut out = Self::new(kind, message);
        if let Some((hint, decisive)) = io_hint(&err, path) {
            out.hint = Some(hint);
            out.hint_from_cause = decisive;
        }
        out.with_source(err)
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

    /// What to do next. Never `None`: an error given no hint gets its kind's general advice (an
    /// `Option` so that callers can pass it on unchanged).
    pub fn hint(&self) -> Option<&str> {
        Some(self.hint.as_deref().unwrap_or(self.kind.fallback_hint()))
    }

    /// The process exit code this error maps to (see docs/architecture.md).
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::CheckFailed => 3,
            ErrorKind::ChildFailed(code) if code != 0 => code,
            ErrorKind::Interrupted => 130,
            ErrorKind::Usage => 2,
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

/// The hint an OS error calls for, and whether it is decisive (the cause says exactly what is wrong,
/// so a caller's generic advice such as "make it readable" would mislead).
fn io_hint(err: &std::io::Error, path: Option<&Path>) -> Option<(String, bool)> {
    let at = path.map(|p| format!(" {}", p.display())).unwrap_or_default();
    let hint = match err.raw_os_error()? {
        libc::ENOSPC => (format!("the device holding{at} is full: free some space (`df -h`), then retry"), true),
        libc::EDQUOT => (format!("your disk quota is used up on the device holding{at}: free some space, then retry"), true),
        libc::EMFILE | libc::ENFILE => (
            "too many files are open: raise the limit (`ulimit -n 4096`) or close other programs, then retry".into(),
            true,
        ),
        libc::EROFS => (format!("{} is on a read-only file system: use a writable location", shown(path)), true),
        libc::ENAMETOOLONG => (
            format!("the name or path{at} is too long for the file system: use shorter folder or file names"),
            true,
        ),
        libc::ELOOP => (
            format!("{} is a symlink loop, or a symlink where mlgit follows none: replace it with the real file or folder", shown(path)),
            true,
        ),
        libc::EACCES | libc::EPERM => (
            format!("check the permissions of {} (`ls -ld`): this user must be allowed to use it", shown(path)),
            false,
        ),
        libc::ENOTDIR => (format!("a part of{at} is a file where a folder is expected: check the path"), false),
        libc::EISDIR => (format!("{} is a folder where a file is expected: check the path", shown(path)), false),
        _ => return None,
    };
    Some(hint)
}

/// A path for a hint, or "the path" when the error names none.
fn shown(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_else(|| "the path".into())
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
        self.map_err(|e| Error::from_io(format!("cannot {action}"), None, e))
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

    #[test]
    fn kinds_have_distinct_snake_case_names() {
        let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        for name in &names {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(serde_json::to_value(ErrorKind::ChildFailed(7)).unwrap(), "child_failed");
    }

    #[test]
    fn every_error_has_a_hint() {
        for kind in ErrorKind::ALL {
            let hint = Error::new(kind, "x").hint().map(str::to_string);
            assert!(hint.is_some_and(|h| !h.is_empty()), "{kind} has no hint");
        }
    }

    #[test]
    fn an_os_error_gets_the_hint_its_cause_calls_for() {
        let cases = [
            (libc::ENOSPC, "full"),
            (libc::EMFILE, "ulimit -n"),
            (libc::ENFILE, "ulimit -n"),
            (libc::ELOOP, "symlink loop"),
            (libc::ENAMETOOLONG, "too long"),
            (libc::EACCES, "permissions"),
            (libc::EROFS, "read-only"),
        ];
        for (errno, expected) in cases {
            let err = Error::io("write", Path::new("/data/x"), std::io::Error::from_raw_os_error(errno));
            let hint = err.hint().unwrap_or_default();
            assert!(hint.contains(expected), "errno {errno}: {hint}");
            assert!(!hint.contains("readable"), "errno {errno}: {hint}");
        }
    }

    #[test]
    fn a_full_disk_keeps_its_hint_over_a_generic_one() {
        let full = Error::io("write", Path::new("/x"), std::io::Error::from_raw_os_error(libc::ENOSPC))
            .with_hint("make /x readable by this user");
        assert!(full.hint().unwrap_or_default().contains("full"), "{:?}", full.hint());
        let denied = Error::io("read", Path::new("/x"), std::io::Error::from_raw_os_error(libc::EACCES))
            .with_hint("make /x readable by this user");
        assert_eq!(denied.hint(), Some("make /x readable by this user"));
    }
}
