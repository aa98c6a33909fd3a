//! The training outputs: set aside before the command runs (so nothing an earlier run left slips
//! into the snapshot, and nothing uncommitted is lost), then checked, hashed and stored (large files
//! into the LFS store) for the snapshot tree. Until the shared ingest policy lands, the same rules
//! apply here: no symlinks, no FIFOs, sockets or devices (never opened), no `.gitattributes` or
//! `.gitmodules`, files opened with `O_NOFOLLOW` and checked on the open descriptor.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use git2::{FileMode, Repository, Status, StatusOptions};

use super::MODEL_CARD;
use crate::config::{BranchKind, Config};
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree;
use crate::repo::tree::{validate_path, Entry};
use crate::repo::worktree::dirty_paths;
use crate::repo::Repo;
use crate::snapshot::is_output;
use crate::snapshot::record::ModelFile;
use crate::store::stat_cache::Stat;
use crate::store::{hash_reader, Pointer};

/// Files up to this size are read once through the checked descriptor; larger ones are streamed
/// into the LFS store by path (checked against the descriptor's size and mtime).
const READ_WHOLE: u64 = 64 << 20;

/// One output file, stored and ready for the tree.
#[derive(Debug, Clone)]
pub(super) struct Output {
    pub(super) path: String,
    pub(super) entry: Entry,
    /// The LFS pointer, when the file went into the LFS store.
    pub(super) pointer: Option<Pointer>,
    pub(super) sha256: String,
    pub(super) size: u64,
    /// The stat data of the file as it was read (the transaction checks it is still that file).
    pub(super) stat: Stat,
}

impl Output {
    pub(super) fn lfs(&self) -> bool {
        self.pointer.is_some()
    }
}

/// The output paths that were in the worktree before the command ran, moved (renamed) into the
/// worktree's git folder. Renaming never copies and never loses a file.
pub(super) struct SetAside {
    dir: PathBuf,
    moved: Vec<(PathBuf, PathBuf)>,
    /// Some of the moved files are in no commit (outputs of a run that was not tagged).
    uncommitted: Vec<String>,
}

impl SetAside {
    /// Move every existing output path out of the worktree, before the command starts.
    pub(super) fn move_outputs(
        git: &Repository,
        config: &Config,
        workdir: &Path,
        tag: &str,
    ) -> Result<SetAside> {
        let uncommitted = uncommitted_outputs(git, config)?;
        let root = git.path().join("mlgit").join("outputs-before-run");
        let mut dir = root.join(tag.replace('/', "-"));
        let mut n = 1;
        while dir.exists() {
            dir = root.join(format!("{}.{n}", tag.replace('/', "-")));
            n += 1;
        }
        let mut aside = SetAside { dir, moved: Vec::new(), uncommitted };
        for out in &config.snapshot.outputs {
            let rel = out.trim_end_matches('/');
            if rel.is_empty() || validate_path(rel).is_err() {
                continue;
            }
            let from = workdir.join(rel);
            if fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let to = aside.dir.join(rel);
            let moved = to.parent().map_or(Ok(()), fs::create_dir_all).and_then(|()| fs::rename(&from, &to));
            if let Err(e) = moved {
                let err = Error::io("move aside", &from, e).with_hint(format!(
                    "train-tag moves the old outputs to {} before training (it never deletes them); \
                     that folder must be on the worktree's file system: remove or commit {rel} yourself, then retry",
                    aside.dir.display()
                ));
                // Best effort: the error above is the one to report.
                let _ = aside.put_back();
                return Err(err);
            }
            aside.moved.push((from, to));
        }
        Ok(aside)
    }

    /// Where uncommitted outputs were moved and which, if there were any: that folder is kept.
    pub(super) fn kept(&self) -> Option<(&Path, &[String])> {
        (!self.moved.is_empty() && !self.uncommitted.is_empty())
            .then_some((self.dir.as_path(), self.uncommitted.as_slice()))
    }

    /// The command did not start: everything goes back where it was. Never over a file: a path
    /// that was taken meanwhile keeps what is there, and the moved copy stays in the folder.
    pub(super) fn put_back(self) -> Result<()> {
        let hint = format!("the old outputs are in {}: move them back by hand", self.dir.display());
        for (orig, aside) in self.moved.iter().rev() {
            if fs::symlink_metadata(orig).is_ok() {
                return Err(Error::conflict(format!(
                    "{} appeared while train-tag was starting",
                    orig.display()
                ))
                .with_hint(hint));
            }
            fs::rename(aside, orig).map_err(|e| Error::io("move back", orig, e).with_hint(hint.clone()))?;
        }
        let _ = fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// The command started: outputs that git holds are dropped (a commit has them); if some were in
    /// no commit, the folder is kept and returned, so the user can still tag or delete them.
    pub(super) fn settle(self) -> Option<(PathBuf, Vec<String>)> {
        if self.moved.is_empty() {
            return None;
        }
        if self.uncommitted.is_empty() {
            // Best effort: every file here is in the commit trained on.
            let _ = fs::remove_dir_all(&self.dir);
            return None;
        }
        Some((self.dir, self.uncommitted))
    }
}

/// Output paths with changes no commit holds: modified, or untracked and not ignored.
fn uncommitted_outputs(git: &Repository, config: &Config) -> Result<Vec<String>> {
    let mut paths: BTreeSet<String> =
        dirty_paths(git)?.into_iter().filter(|p| is_output(config, p)).collect();
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false).exclude_submodules(true);
    let statuses = git.statuses(Some(&mut opts)).context("read the worktree's status")?;
    for s in statuses.iter() {
        if let Some(p) = s.path() {
            if s.status().contains(Status::WT_NEW) && is_output(config, p) {
                paths.insert(p.to_string());
            }
        }
    }
    Ok(paths.into_iter().collect())
}

/// Why a name cannot be among the outputs (the rules of the ingest policy), if it cannot.
fn refused_name(rel: &str) -> Option<&'static str> {
    rel.split('/').find_map(|c| {
        if c.eq_ignore_ascii_case(".gitattributes") || c.eq_ignore_ascii_case(".gitmodules") {
            Some("git reads a .gitattributes or .gitmodules inside a tree as its own configuration")
        } else {
            None
        }
    })
}

fn refuse(rel: &str, what: String, hint: &str) -> Error {
    Error::invalid(format!("{what} among the training outputs: {rel}")).with_hint(hint.to_string())
}

/// Every file under the output paths, checked (see the module doc) before anything is stored.
fn list_outputs(
    git: &Repository,
    config: &Config,
    workdir: &Path,
) -> Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for out in &config.snapshot.outputs {
        let rel = out.trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        let full = workdir.join(rel);
        if fs::symlink_metadata(&full).is_err() {
            continue;
        }
        for e in walkdir::WalkDir::new(&full).follow_links(false).follow_root_links(false).sort_by_file_name()
        {
            let e =
                e.map_err(|e| Error::invalid(format!("cannot list {}", full.display())).with_source(e))?;
            let Ok(rel) = e.path().strip_prefix(workdir) else { continue };
            let rel_str = rel.to_string_lossy().into_owned();
            if git.is_path_ignored(rel).unwrap_or(false) {
                continue;
            }
            validate_path(&rel_str)?;
            if let Some(why) = refused_name(&rel_str) {
                return Err(refuse(
                    &rel_str,
                    "a reserved name".into(),
                    &format!("{why}: make the training write it elsewhere, or remove it"),
                ));
            }
            let meta = e.metadata().map_err(|err| {
                Error::invalid(format!("cannot stat {}", e.path().display())).with_source(err)
            })?;
            let ft = meta.file_type();
            if ft.is_dir() {
                continue;
            }
            if ft.is_symlink() {
                let target = fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default();
                return Err(refuse(
                    &rel_str,
                    format!("a symlink (→ {target})"),
                    "snapshots hold files, never links (a link can point outside the snapshot and breaks \
                     `mlgit checkout`): make the training copy the file instead, or remove the link",
                ));
            }
            if !ft.is_file() {
                let kind = if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "a device file"
                };
                return Err(refuse(
                    &rel_str,
                    kind.to_string(),
                    "only regular files can be committed (it was not opened): make the training remove it",
                ));
            }
            if seen.insert(rel_str.clone()) {
                files.push((rel_str, e.path().to_path_buf(), meta));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Open a file that was listed as a regular file: never through a link, never blocking on a FIFO
/// swapped in since, and only if the descriptor is still the file that was listed.
fn open_listed(full: &Path, listed: &fs::Metadata) -> Result<(File, fs::Metadata)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(full)
        .map_err(|e| Error::io("read", full, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", full, e))?;
    if !meta.file_type().is_file() || meta.ino() != listed.ino() || meta.dev() != listed.dev() {
        return Err(Error::conflict(format!("{} was replaced while it was being read", full.display()))
            .with_hint("something else is writing the training outputs: wait for it, then retry"));
    }
    Ok((file, meta))
}

/// Check, hash and store every file under the output paths (large ones into the LFS store). A
/// refused file stops the whole collection before anything is stored.
pub(super) fn collect_outputs(repo: &Repo, workdir: &Path) -> Result<Vec<Output>> {
    let git = repo.git();
    let config = repo.config();
    let patterns = lfs_tree::compile_patterns(config.lfs_patterns(BranchKind::Stable))?;
    let mut out = Vec::new();
    for (path, full, listed) in list_outputs(git, config, workdir)? {
        let (mut file, meta) = open_listed(&full, &listed)?;
        let mode = if meta.mode() & 0o111 != 0 { FileMode::BlobExecutable } else { FileMode::Blob };
        let lfs = patterns.iter().any(|p| p.is_match(&path)) || meta.len() > config.lfs.max_blob_size;
        if lfs && meta.len() > READ_WHOLE {
            let stored = repo.store().store_file(&full, Some(&meta))?;
            out.push(pointer_output(git, path, mode, stored.pointer, Stat::of(&meta))?);
            continue;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes).map_err(|e| Error::io("read", &full, e))?;
        if lfs {
            let stored = repo.store().store_bytes(&bytes)?;
            out.push(pointer_output(git, path, mode, stored.pointer, Stat::of(&meta))?);
        } else {
            let (sha, size) = hash_reader(&mut bytes.as_slice()).map_err(|e| Error::io("hash", &full, e))?;
            let oid = git.blob(&bytes).context(format!("store {path}"))?;
            let stat = Stat::of(&meta);
            out.push(Output {
                path,
                entry: Entry { oid, mode },
                pointer: None,
                sha256: sha.to_hex(),
                size,
                stat,
            });
        }
    }
    Ok(out)
}

fn pointer_output(
    git: &Repository,
    path: String,
    mode: FileMode,
    pointer: Pointer,
    stat: Stat,
) -> Result<Output> {
    let oid = git.blob(&pointer.to_bytes()).context(format!("store the pointer of {path}"))?;
    Ok(Output {
        entry: Entry { oid, mode },
        sha256: pointer.oid.to_hex(),
        size: pointer.size,
        pointer: Some(pointer),
        path,
        stat,
    })
}

/// Write a file train-tag generated (the model card) at an output path the training left empty,
/// so the worktree already holds what the commit holds: `create_new`, so nothing there, the
/// training's or anyone's, is ever overwritten. None when the path is taken.
pub(super) fn place_generated(workdir: &Path, rel: &str, bytes: &[u8]) -> Result<Option<Stat>> {
    use std::io::Write;
    let full = workdir.join(rel);
    let mut file = match fs::OpenOptions::new().write(true).create_new(true).open(&full) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(Error::io("write", &full, e)),
    };
    file.write_all(bytes).map_err(|e| Error::io("write", &full, e))?;
    file.sync_all().map_err(|e| Error::io("write", &full, e))?;
    let meta = fs::symlink_metadata(&full).map_err(|e| Error::io("stat", &full, e))?;
    Ok(Some(Stat::of(&meta)))
}

/// Remove a file [`place_generated`] wrote, if it is still that file (best effort).
pub(super) fn remove_generated(workdir: &Path, rel: &str, placed: &Stat) {
    let full = workdir.join(rel);
    if fs::symlink_metadata(&full).is_ok_and(|m| Stat::of(&m) == *placed) {
        let _ = fs::remove_file(&full);
    }
}

/// The content of a collected output, as committed (not re-read from the worktree).
pub(super) fn output_bytes(repo: &Repo, output: &Output) -> Result<Vec<u8>> {
    match &output.pointer {
        Some(p) => repo.store().read(p),
        None => Ok(repo
            .git()
            .find_blob(output.entry.oid)
            .context(format!("read {}", output.path))?
            .content()
            .to_vec()),
    }
}

/// The model files of the record: outputs other than metrics, params, model card and `mlruns/`.
pub(super) fn model_files(config: &Config, outputs: &[Output]) -> Vec<ModelFile> {
    let t = &config.tracking;
    outputs
        .iter()
        .filter(|o| {
            o.path != t.metrics_file
                && !t.params_files.contains(&o.path)
                && o.path != MODEL_CARD
                && !o.path.starts_with("mlruns/")
        })
        .map(|o| ModelFile { path: o.path.clone(), sha256: o.sha256.clone(), size: o.size })
        .collect()
}
