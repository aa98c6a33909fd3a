//! The folder a restore writes into: resolved once, refused when it lies inside a `.git` folder
//! (any, or the repository's own git dir wherever GIT_DIR put it), then held open so every later
//! step works relative to it and never follows a link that sits inside it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use git2::Repository;

use super::at;
use crate::error::{Error, ErrorKind, Result};

/// An open folder to restore into.
#[derive(Debug)]
pub struct Target {
    root: OwnedFd,
    path: PathBuf,
}

impl Target {
    /// Open `into` (created if missing) for a restore, refusing a folder inside any `.git`.
    /// Links in `into` itself are resolved first (they are the user's choice of folder); from its
    /// resolved form on, nothing is followed.
    pub fn create(git: &Repository, into: &Path) -> Result<Target> {
        let resolved = resolve(into)?;
        refuse_git_dir(git, into, &resolved)?;
        let mut fd = at::open_dir_path(Path::new("/")).map_err(|e| Error::io("open", Path::new("/"), e))?;
        let mut sofar = PathBuf::from("/");
        for comp in resolved.components() {
            let Component::Normal(name) = comp else { continue };
            sofar.push(name);
            fd = open_or_make(fd.as_fd(), name, &sofar, false)?;
        }
        Ok(Target { root: fd, path: resolved })
    }

    /// Open a worktree's top folder (the repository's own checkout, so trusted as it is).
    pub fn worktree(root: &Path) -> Result<Target> {
        let fd = at::open_dir_path(root).map_err(|e| Error::io("open", root, e))?;
        Ok(Target { root: fd, path: root.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Open the folder `rel` (`'/'`-separated, relative to the target), creating missing folders.
    /// When `replace` is set, a symlink or file standing where the tree has a folder is removed
    /// (the link itself, never its target) and a real folder made in its place; otherwise it is
    /// an error. A link is never followed either way.
    pub fn dir(&self, rel: &Path, replace: bool) -> Result<OwnedFd> {
        let mut fd = self.root.try_clone().map_err(|e| Error::io("open", &self.path, e))?;
        let mut sofar = self.path.clone();
        for name in names(rel)? {
            sofar.push(name);
            fd = open_or_make(fd.as_fd(), name, &sofar, replace)?;
        }
        Ok(fd)
    }

    /// The folders from the target down to `rel`, open, if `rel` is a real folder all the way down
    /// (`None` otherwise: nothing below a link or a file belongs to the target).
    pub fn existing_chain(&self, rel: &Path) -> Result<Option<Vec<OwnedFd>>> {
        let full = self.path.join(rel);
        let mut chain = vec![self.root.try_clone().map_err(|e| Error::io("open", &self.path, e))?];
        for name in names(rel)? {
            let c = at::c_name(name).map_err(|e| Error::io("open", &full, e))?;
            let Some(parent) = chain.last() else { break };
            match at::open_dir(parent.as_fd(), &c) {
                Ok(next) => chain.push(next),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) || is_not_a_folder(&e) => return Ok(None),
                Err(e) => return Err(Error::io("open", &full, e)),
            }
        }
        Ok(Some(chain))
    }
}

/// The file-name components of a relative tree path; anything else (`..`, `/`, `.git`) is refused.
pub fn names(rel: &Path) -> Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) if !n.as_encoded_bytes().eq_ignore_ascii_case(b".git") => Ok(n),
            _ => Err(Error::invalid(format!(
                "refusing to write the path {}: it leaves its folder or enters .git",
                rel.display()
            ))
            .with_hint("the tree was not written by mlgit or git: check it with `git fsck`")),
        })
        .collect()
}

fn is_not_a_folder(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

fn not_a_folder(path: &Path, e: std::io::Error) -> Error {
    if is_not_a_folder(&e) {
        Error::conflict(format!("{} is a symlink or a file, not a folder", path.display()))
            .with_hint("move it away (mlgit never writes through a link), then retry")
    } else {
        Error::io("open", path, e)
    }
}

/// The absolute form of `into` with every link of its existing part resolved, and its missing part
/// (which holds no link yet) normalised.
fn resolve(into: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(into).map_err(|e| Error::io("resolve", into, e))?;
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut base = loop {
        match std::fs::canonicalize(&existing) {
            Ok(c) => break c,
            Err(_) => {
                let Some(name) = existing.file_name() else { break PathBuf::from("/") };
                rest.push(name.to_os_string());
                existing.pop();
            }
        }
    };
    for name in rest.iter().rev() {
        match name.to_str() {
            Some("..") => {
                base.pop();
            }
            Some(".") => {}
            _ => base.push(name),
        }
    }
    Ok(base)
}

/// Refuse a target inside any `.git` folder, or inside this repository's git dir or common dir.
fn refuse_git_dir(git: &Repository, into: &Path, resolved: &Path) -> Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let in_dot_git =
        resolved.components().any(|c| c.as_os_str().as_encoded_bytes().eq_ignore_ascii_case(b".git"));
    let git_dirs = [canon(git.path()), canon(git.commondir())];
    if in_dot_git || git_dirs.iter().any(|d| resolved.starts_with(d)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "refusing to write into {} ({}): it is inside a .git folder",
                into.display(),
                resolved.display()
            ),
        )
        .with_hint("choose a folder outside the repository's git folder, e.g. `--into out/`"));
    }
    Ok(())
}

/// Open the folder `name` in `parent` without following a link, creating it when missing; with
/// `replace`, a link or file standing there is removed (itself, never its target) for a folder.
fn open_or_make(
    parent: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    path: &Path,
    replace: bool,
) -> Result<OwnedFd> {
    let c = at::c_name(name).map_err(|e| Error::io("open", path, e))?;
    match at::open_dir(parent, &c) {
        Ok(next) => Ok(next),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            match at::mkdir(parent, &c) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
            at::open_dir(parent, &c).map_err(|e| not_a_folder(path, e))
        }
        Err(e) if replace && is_not_a_folder(&e) => {
            at::remove_entry(parent, &c).map_err(|e| Error::io("replace", path, e))?;
            at::mkdir(parent, &c).map_err(|e| Error::io("create", path, e))?;
            at::open_dir(parent, &c).map_err(|e| not_a_folder(path, e))
        }
        Err(e) => Err(not_a_folder(path, e)),
    }
}
