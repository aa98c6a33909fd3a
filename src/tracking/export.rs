//! `mlgit tracking export`: write main's merged MLflow store (`mlruns/`) to a folder MLflow can
//! serve. Git keeps no empty folders, but MLflow needs every run's `metrics/`, `params/`, `tags/`
//! and `artifacts/` (and the store's `.trash/`), and artifact locations must name the folder the
//! store is served from; LFS pointers are replaced by their content from the local store.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::merge::read_store;
use super::mlflow::export_layout;
use super::MLRUNS;
use crate::error::{Error, ErrorKind, Result};
use crate::repo::tree::entry_at;
use crate::repo::{absolute, Repo};
use crate::store::Pointer;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The revision whose `mlruns/` is exported (default: the main branch).
    pub rev: Option<String>,
    /// The folder to create (it must not exist, or be empty).
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    pub dir: String,
    pub rev: String,
    pub commit: String,
    /// The URI every artifact location now starts with.
    pub artifact_root: String,
    pub experiments: usize,
    pub runs: usize,
    pub files: usize,
    /// Empty folders created for MLflow.
    pub folders_created: usize,
    /// Files that are LFS pointers whose content is not in the local store (written as pointer
    /// text; fetch it with `git lfs fetch` and export again).
    pub lfs_missing: Vec<String>,
}

/// Export the MLflow store of `rev` (default: main) into `opts.dir`.
pub fn export(repo: &Repo, opts: &ExportOptions) -> Result<ExportOutcome> {
    let rev = opts.rev.clone().unwrap_or_else(|| repo.config().branches.main.clone());
    let commit = match &opts.rev {
        Some(r) => repo.resolve(r)?,
        None => repo.require_branch(&rev)?,
    };
    let git = repo.git();
    let tree = match entry_at(git, commit.tree_id(), MLRUNS)? {
        Some(e) if e.mode == git2::FileMode::Tree => e.oid,
        _ => {
            return Err(Error::not_found(format!("{rev} has no {MLRUNS}/ folder: no MLflow runs were merged")).with_hint(
                "snapshots whose training logged to MLflow (./mlruns) bring their runs along with `mlgit merge-tracking`",
            ))
        }
    };
    let store = read_store(git, tree, &format!("{rev}:{MLRUNS}/"))?;

    let dir = absolute(&opts.dir);
    check_target(&dir)?;
    let root = format!("file://{}", dir.display());
    let (files, dirs) = export_layout(&store, &root)?;

    // Written next to the target and renamed at the end: a failed export leaves no half store.
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    fs::create_dir_all(&parent).map_err(|e| Error::io("create", &parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".mlgit-export-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io("create a staging folder in", &parent, e))?;
    let mut lfs_missing = Vec::new();
    for (rel, bytes) in &files {
        let path = staging.path().join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))?;
        }
        match Pointer::from_blob(bytes) {
            Some(pointer) if repo.store().contains(&pointer) => repo.store().copy_to(&pointer, &path)?,
            Some(_) => {
                lfs_missing.push(format!("{MLRUNS}/{rel}"));
                fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))?;
            }
            None => fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))?,
        }
    }
    for d in &dirs {
        let path = staging.path().join(d);
        fs::create_dir_all(&path).map_err(|e| Error::io("create", &path, e))?;
    }
    if dir.exists() {
        fs::remove_dir(&dir).map_err(|e| Error::io("replace the empty folder", &dir, e))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &dir).map_err(|e| {
        let _ = fs::remove_dir_all(&staged);
        Error::io("move the exported store to", &dir, e)
    })?;

    let is_meta = |k: &&String, depth: usize| k.ends_with("/meta.yaml") && k.split('/').count() == depth;
    let experiments = files.keys().filter(|k| is_meta(k, 2) && !k.starts_with(".trash/")).count();
    let runs = files
        .keys()
        .filter(|k| is_meta(k, 3))
        .filter(|k| !matches!(k.split('/').nth(1), Some("tags" | "datasets" | "models" | "traces")))
        .filter(|k| !k.starts_with(".trash/") && !k.starts_with("models/"))
        .count();
    Ok(ExportOutcome {
        dir: dir.display().to_string(),
        rev,
        commit: commit.id().to_string(),
        artifact_root: root,
        experiments,
        runs,
        files: files.len(),
        folders_created: dirs.len(),
        lfs_missing,
    })
}

/// The target must be new or an empty folder: an export never mixes with other files.
fn check_target(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::new(ErrorKind::AlreadyExists, format!("{} is a file", dir.display()))
            .with_hint("export into a new folder"));
    }
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::new(ErrorKind::AlreadyExists, format!("{} is not empty", dir.display()))
                    .with_hint("export into a new folder, or remove the old export first"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("read", dir, e)),
    }
}
