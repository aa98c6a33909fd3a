//! The training outputs: set aside before the command runs (so nothing an earlier run left slips
//! into the snapshot, and nothing uncommitted is lost), then read into the snapshot through the one
//! ingest policy ([`crate::ingest`]), as commit-data reads its source.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{Repository, Status, StatusOptions};

use super::MODEL_CARD;
use crate::config::{BranchKind, Config};
use crate::error::{Context, Error, Result};
use crate::ingest::{ingest_files, walk_filtered, write_pointer_blobs, LfsRule, Policy};
use crate::interrupt::Interrupt;
use crate::progress::NoProgress;
use crate::repo::tree::{validate_path, Entry};
use crate::repo::worktree::dirty_paths;
use crate::repo::Repo;
use crate::snapshot::is_output;
use crate::snapshot::record::ModelFile;
use crate::store::stat_cache::Stat;
use crate::store::Pointer;

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

/// Check, hash and store every file under the output paths through the one ingest policy (no
/// links, no special files, no reserved names; opened with `O_NOFOLLOW` and checked on the
/// descriptor; large files into the LFS store). A refused file stops everything before any file is
/// read: the walk lists all of them in one error.
pub(super) fn collect_outputs(repo: &Repo, workdir: &Path, interrupt: &Interrupt) -> Result<Vec<Output>> {
    let git = repo.git();
    let config = repo.config();
    let subpaths: Vec<&str> =
        config.snapshot.outputs.iter().map(|o| o.trim_end_matches('/')).filter(|o| !o.is_empty()).collect();
    // Files git ignores (a cache the training keeps) are not outputs; git2 handles are not Sync.
    let ignores = Mutex::new(Repository::open(git.path()).context("open the repository")?);
    let skip = |rel: &str, _is_dir: bool| {
        ignores.lock().map(|g| g.is_path_ignored(rel).unwrap_or(false)).unwrap_or(false)
    };
    let policy = Policy { follow_symlinks: false, follow_option: None };
    let files = walk_filtered(workdir, &subpaths, &policy, &skip)?;
    let rule = LfsRule::for_kind(config, BranchKind::Stable)?;
    let ingested = ingest_files(
        git.path(),
        repo.store(),
        &files,
        &|f| rule.storage(&f.rel, f.size()).lfs,
        interrupt,
        "train-tag",
        &NoProgress,
    )?;
    write_pointer_blobs(git, &ingested)?;
    Ok(files
        .iter()
        .zip(ingested)
        .map(|(f, i)| Output {
            path: f.rel.clone(),
            entry: Entry { oid: i.blob, mode: i.mode },
            pointer: i.lfs.then_some(Pointer { oid: i.sha256, size: i.size }),
            sha256: i.sha256.to_hex(),
            size: i.size,
            stat: Stat::of(&f.meta),
        })
        .collect())
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
