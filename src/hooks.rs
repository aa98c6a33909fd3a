//! The git hooks mlgit installs: a `pre-push` hook that makes a plain `git push` upload the LFS
//! objects of the commits it sends (`mlgit hook pre-push`, see [`pre_push`]), so that a colleague's
//! clone never meets a pointer whose content the server lacks.
//!
//! The hook is a small `sh` script that runs this very binary (by absolute path, falling back to
//! `mlgit` on PATH). A pre-push hook that is already there and is not ours — git-lfs's own, a
//! user's — is never overwritten: it is moved aside to `pre-push.before-mlgit` and the script runs
//! it first, with the same arguments and the same input, and a failure there stops the push.
//! Installing again rewrites only our own script (a newer binary path); it is idempotent.

pub mod pre_push;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::Serialize;

use crate::error::{Error, Result};

/// The hook git runs before a push.
pub const HOOK: &str = "pre-push";
/// Where a pre-push hook that was there before ours is kept (and run from, first).
pub const CHAINED: &str = "pre-push.before-mlgit";
/// The line that marks a hook file as ours (any version).
const MARKER: &str = "# mlgit-managed pre-push hook";

/// What `install` did with the pre-push hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    /// Written where there was no pre-push hook.
    Installed,
    /// Written after moving an existing hook aside to [`CHAINED`] (it runs first).
    Chained,
    /// Our own hook, rewritten (it ran another mlgit binary).
    Upgraded,
    /// Our own hook, already as it would be written.
    Unchanged,
    /// Nothing written; `note` says why and what to do.
    Skipped,
}

/// The outcome of [`install`] (part of `init`'s and `clone`'s outcomes).
#[derive(Debug, Clone, Serialize)]
pub struct HookInstall {
    /// The hook file (in `core.hooksPath` when set).
    pub hook: PathBuf,
    pub action: HookAction,
    /// The earlier hook, kept and run first, when there is one.
    pub chained: Option<PathBuf>,
    /// The mlgit the hook runs (an absolute path, or `mlgit` from PATH).
    pub runs: String,
    /// Something the user should know (why nothing was written, a hook git did not run…).
    pub note: Option<String>,
}

/// Install (or upgrade) mlgit's pre-push hook in the hooks folder of `git`: `core.hooksPath` when
/// set, else `.git/hooks` (the common one for linked worktrees). Never overwrites a file that is
/// not ours and never writes through a symlinked hook; a hooks folder that cannot take the hook is
/// reported in the outcome (action `skipped`), not as an error, so `init` and `clone` go on.
pub fn install(git: &Repository) -> Result<HookInstall> {
    let dir = hooks_dir(git);
    let runs = current_binary();
    let script = script(runs.as_deref());
    let runs = runs.map_or_else(|| "mlgit".to_string(), |p| p.display().to_string());
    let hook = dir.join(HOOK);
    let chained = dir.join(CHAINED);
    let outcome = |action, chained: Option<PathBuf>, note: Option<String>| HookInstall {
        hook: hook.clone(),
        action,
        chained,
        runs: runs.clone(),
        note,
    };
    let skipped = |note: String| outcome(HookAction::Skipped, None, Some(note));
    let existing_chained = fs::symlink_metadata(&chained).ok().map(|_| chained.clone());

    match fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(&dir).map_err(|e| hook_io("create the hooks folder", &dir, e))?
        }
        Err(e) => return Err(hook_io("read the hooks folder", &dir, e)),
        Ok(_) => match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Ok(skipped(format!(
                    "{} is not a folder, so no pre-push hook was installed",
                    dir.display()
                )))
            }
            Err(_) => {
                return Ok(skipped(format!(
                    "the hooks folder {} is a symlink to nothing, so no pre-push hook was installed",
                    dir.display()
                )))
            }
        },
    }

    let meta = match fs::symlink_metadata(&hook) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(match write_new(&dir, &hook, &script)? {
                true => outcome(HookAction::Installed, existing_chained, None),
                false => {
                    skipped(format!("{} appeared while mlgit was writing it: left alone", hook.display()))
                }
            });
        }
        Err(e) => return Err(hook_io("read", &hook, e)),
        Ok(m) => m,
    };
    if meta.file_type().is_file() {
        let text = fs::read(&hook).map_err(|e| hook_io("read", &hook, e))?;
        if is_ours(&text) {
            if text == script.as_bytes() && meta.permissions().mode() & 0o111 == 0o111 {
                return Ok(outcome(HookAction::Unchanged, existing_chained, None));
            }
            replace(&dir, &hook, &script)?;
            return Ok(outcome(HookAction::Upgraded, existing_chained, None));
        }
    } else if !meta.file_type().is_symlink() {
        return Ok(skipped(format!("{} is not a file, so no pre-push hook was installed", hook.display())));
    }

    // A hook that is not ours: keep it, under a name that says so, and run it first.
    if existing_chained.is_some() {
        return Ok(skipped(format!(
            "{} is not mlgit's and {} exists too: mlgit keeps one earlier hook; merge the two (or remove one), then run `mlgit hook install`",
            hook.display(),
            chained.display()
        )));
    }
    let not_executable = match fs::metadata(&hook) {
        Ok(m) => m.permissions().mode() & 0o111 == 0,
        Err(_) => true,
    };
    move_aside(&hook, &chained)?;
    match write_new(&dir, &hook, &script) {
        Ok(true) => {}
        other => {
            // Put the user's hook back where it was: the push behaves as before.
            let _ = fs::rename(&chained, &hook);
            other?;
            return Ok(skipped(format!(
                "{} appeared while mlgit was writing it: left alone",
                hook.display()
            )));
        }
    }
    let note = not_executable.then(|| {
        format!(
            "the earlier pre-push hook (now {}) is not executable, so git never ran it; mlgit's hook skips it too until you make it executable",
            chained.display()
        )
    });
    Ok(outcome(HookAction::Chained, Some(chained), note))
}

/// The folder git runs hooks from: `core.hooksPath` (a relative one is relative to the top of the
/// working tree, or the git folder of a bare repository), else `hooks/` of the common git folder.
pub fn hooks_dir(git: &Repository) -> PathBuf {
    let configured = git.config().ok().and_then(|c| c.get_path("core.hooksPath").ok());
    match configured {
        Some(p) if p.is_absolute() => p,
        Some(p) => git.workdir().unwrap_or_else(|| git.path()).join(p),
        None => git.commondir().join("hooks"),
    }
}

/// Whether a hook file's bytes are a hook mlgit wrote.
fn is_ours(text: &[u8]) -> bool {
    String::from_utf8_lossy(text).lines().take(3).any(|l| l.trim() == MARKER)
}

/// This binary's absolute path, when it is mlgit (not a program that links the library, such as
/// a test harness, which must never be run as a hook) and is still there.
fn current_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let text = exe.to_string_lossy();
    if text.ends_with(" (deleted)") || !exe.is_file() || exe.file_name()? != "mlgit" {
        return None;
    }
    Some(exe)
}

/// The hook script; `mlgit` is the binary it runs first (else the one on PATH).
fn script(mlgit: Option<&Path>) -> String {
    let bin = match mlgit {
        Some(p) => sh_quote(&p.to_string_lossy()),
        None => "mlgit".to_string(),
    };
    format!(
        r#"#!/bin/sh
{MARKER}
# It uploads the LFS objects of the commits being pushed, so that a plain `git push` carries the
# data (see `mlgit hook pre-push --help`). Written by `mlgit init`, `mlgit clone` or
# `mlgit hook install`, which rewrite it: keep your own pre-push steps in {CHAINED} next to
# this file (a hook that was here before mlgit's was moved there); it runs first, with the same
# arguments and input, and its failure stops the push.
mlgit={bin}
if [ -f "$mlgit" ] && [ -x "$mlgit" ]; then
    :
elif command -v mlgit >/dev/null 2>&1; then
    mlgit=mlgit
else
    printf >&2 '%s\n' "error: the pre-push hook cannot run mlgit: not at $mlgit, not on PATH; the LFS objects of this push cannot be uploaded, so the push stops" \
        "hint: put mlgit on PATH (or run \`mlgit hook install\` with the binary where it is now); \`git push --no-verify\` pushes without uploading LFS objects"
    exit 1
fi
chained="$(dirname -- "$0")/{CHAINED}"
if [ -e "$chained" ] || [ -L "$chained" ]; then
    if [ -x "$chained" ]; then
        input="$(mktemp)" || exit 1
        trap 'rm -f -- "$input"' EXIT
        trap 'exit 130' INT TERM
        cat > "$input" || exit 1
        "$chained" "$@" < "$input" || exit $?
        "$mlgit" hook pre-push "$@" < "$input"
        exit $?
    fi
    printf >&2 '%s\n' "hint: $chained is not executable, so it was skipped (as git skips a hook that is not executable)"
fi
exec "$mlgit" hook pre-push "$@"
"#
    )
}

/// `s` quoted for sh (single quotes; a single quote inside becomes `'\''`).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn hook_io(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(action, path, e).with_hint(
        "check the permissions of the git hooks folder (`git config core.hooksPath` names it when set)",
    )
}

/// A temporary file in `dir` holding `content`, executable.
fn write_temp(dir: &Path, content: &str) -> Result<PathBuf> {
    let tmp = dir.join(format!(".{HOOK}.mlgit-{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(|e| hook_io("write", &tmp, e))?;
    let written = f.write_all(content.as_bytes()).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(hook_io("write", &tmp, e));
    }
    // The mode of `open` is masked by the umask; a hook must be executable.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .map_err(|e| hook_io("make executable", &tmp, e))?;
    Ok(tmp)
}

/// Write `path` whole (temp file + link), only if nothing is there. False when something is.
fn write_new(dir: &Path, path: &Path, content: &str) -> Result<bool> {
    let tmp = write_temp(dir, content)?;
    // A hard link never replaces an existing file, unlike a rename.
    let linked = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: rename, after checking again that nothing is there.
        Err(_) if fs::symlink_metadata(path).is_err() => fs::rename(&tmp, path).map(|()| true),
        Err(e) => Err(e),
    };
    let _ = fs::remove_file(&tmp);
    linked.map_err(|e| hook_io("write", path, e))
}

/// Replace our own hook file whole (temp file + rename: never a half-written hook).
fn replace(dir: &Path, path: &Path, content: &str) -> Result<()> {
    let tmp = write_temp(dir, content)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        hook_io("write", path, e)
    })
}

/// Move the user's hook (a file or a symlink, itself, not what it points to) to `to`, which must
/// not exist.
fn move_aside(from: &Path, to: &Path) -> Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).map_err(|e| {
            let _ = fs::remove_file(to);
            hook_io("move aside", from, e)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(hook_io("keep the existing hook as", to, e))
        }
        Err(_) => fs::rename(from, to).map_err(|e| hook_io("move aside", from, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_binary_path_and_is_recognised_as_ours() {
        let s = script(Some(Path::new("/opt/it's here/mlgit")));
        assert!(s.contains(r"mlgit='/opt/it'\''s here/mlgit'"), "{s}");
        assert!(is_ours(s.as_bytes()));
        assert!(!is_ours(b"#!/bin/sh\ngit lfs pre-push \"$@\"\n"));
        assert!(script(None).contains("\nmlgit=mlgit\n"));
    }
}
