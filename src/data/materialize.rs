//! `mlgit materialize`: write the files of a branch, tag or commit into a folder with LFS content
//! resolved from the local store — no checkout, no git-lfs — in parallel, at copy speed.
//!
//! Every LFS object needed is checked before the first file is written, so a missing object fails
//! the whole run up front with the paths that need it. While files are being written, a marker
//! `.mlgit-incomplete` sits in the folder; it is removed only when every file is in place.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::progress::Progress;
use crate::repo::lfs_tree::{read_pointer, TreeFile};
use crate::repo::tree::validate_path;
use crate::repo::tree::{list_files, FileEntry};
use crate::repo::Repo;
use crate::store::attributes::Pattern;
use crate::store::LfsStore;

/// The marker present in a folder while materialize is writing it.
pub const INCOMPLETE_MARKER: &str = ".mlgit-incomplete";

#[derive(Debug, Clone, Default)]
pub struct MaterializeOptions {
    /// A branch, tag or commit.
    pub rev: String,
    pub into: PathBuf,
    /// Only paths matching one of these (gitattributes-style patterns, or folder prefixes).
    pub include: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaterializeOutcome {
    pub rev: String,
    pub commit: String,
    pub into: PathBuf,
    pub files: u64,
    pub lfs_files: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Paths to include: a pattern (`*.csv`, `data/train/**`) or a folder prefix (`data/train`).
#[derive(Debug, Default)]
pub struct Include {
    patterns: Vec<(Pattern, String)>,
}

impl Include {
    pub fn new(specs: &[String]) -> Result<Include> {
        let patterns = specs
            .iter()
            .map(|s| Ok((Pattern::new(s)?, s.trim_end_matches('/').to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Include { patterns })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|(p, prefix)| {
                p.is_match(path)
                    || (path.len() > prefix.len()
                        && path.starts_with(prefix.as_str())
                        && path.as_bytes()[prefix.len()] == b'/')
            })
    }
}

/// Materialize `opts.rev` into `opts.into`.
pub fn materialize(
    repo: &Repo,
    opts: &MaterializeOptions,
    progress: &dyn Progress,
) -> Result<MaterializeOutcome> {
    let start = Instant::now();
    let commit = repo.resolve(&opts.rev)?;
    let include = Include::new(&opts.include)?;
    if !opts.include.is_empty() {
        // Check the patterns select something before writing anything.
        let files = list_files(repo.git(), commit.tree_id())?;
        if !files.iter().any(|f| include.matches(&f.path)) {
            return Err(Error::invalid(format!(
                "no file of {} matches --include {}",
                opts.rev,
                opts.include.join(" ")
            ))
            .with_hint(format!("list the files with `git ls-tree -r --name-only {}`", opts.rev)));
        }
    }
    let written = write_tree(repo, commit.tree_id(), &opts.into, &|p| include.matches(p), progress)?;
    Ok(MaterializeOutcome {
        rev: opts.rev.clone(),
        commit: commit.id().to_string(),
        into: crate::repo::absolute(&opts.into),
        files: written.files,
        lfs_files: written.lfs_files,
        bytes: written.bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Counts of what [`write_tree`] wrote.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Written {
    pub files: u64,
    pub lfs_files: u64,
    pub bytes: u64,
}

/// Write the files of `tree` that `filter` accepts into `into` (created if missing; files at the
/// same paths are replaced, other files are left alone).
pub fn write_tree(
    repo: &Repo,
    tree: Oid,
    into: &Path,
    filter: &(dyn Fn(&str) -> bool + Sync),
    progress: &dyn Progress,
) -> Result<Written> {
    let entries: Vec<FileEntry> =
        list_files(repo.git(), tree)?.into_iter().filter(|f| filter(&f.path)).collect();
    for f in &entries {
        validate_path(&f.path)?;
    }
    let store = repo.store();
    let git_dir = repo.git().path().to_path_buf();
    let open = || Repository::open(&git_dir);

    // First pass, in parallel: which files are pointers, and is every object they need here?
    // Nothing is written before the answer is yes.
    let files: Vec<(TreeFile, bool)> = entries
        .into_par_iter()
        .map_init(open, |git, entry| -> Result<(TreeFile, bool)> {
            let git = git.as_ref().map_err(open_error)?;
            let pointer = if entry.mode == FileMode::Link {
                None
            } else {
                let odb = git.odb().context("open the object database")?;
                read_pointer(git, &odb, entry.oid)?
            };
            let present = pointer.map(|p| store.contains(&p)).unwrap_or(true);
            Ok((TreeFile { entry, pointer }, present))
        })
        .collect::<Result<_>>()?;
    let missing: Vec<&str> = files.iter().filter(|(_, ok)| !ok).map(|(f, _)| f.entry.path.as_str()).collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).copied().collect();
        let more =
            if missing.len() > 10 { format!(" and {} more", missing.len() - 10) } else { String::new() };
        return Err(Error::not_found(format!(
            "{} LFS object(s) are not in the local store, for: {}{more}",
            missing.len(),
            shown.join(", ")
        ))
        .with_hint("fetch them with `git lfs fetch origin <ref>` (or `git lfs pull`), then retry; nothing was written"));
    }

    // A folder that is new or empty needs no check for files in the way (saves a stat per file).
    let fresh = match fs::read_dir(into) {
        Ok(mut it) => it.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io("read", into, e)),
    };
    fs::create_dir_all(into).map_err(|e| Error::io("create", into, e))?;
    let marker = into.join(INCOMPLETE_MARKER);
    fs::write(&marker, b"mlgit materialize is writing this folder; if this file stays, the run failed\n")
        .map_err(|e| Error::io("write", &marker, e))?;
    let mut dirs: Vec<PathBuf> =
        files.iter().filter_map(|(f, _)| Path::new(&f.entry.path).parent().map(|p| into.join(p))).collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }

    let total: u64 = files.iter().map(|(f, _)| f.pointer.map(|p| p.size).unwrap_or(0)).sum();
    progress.begin("materialize", files.len() as u64, total);
    let bytes = AtomicU64::new(0);
    files
        .par_iter()
        .map_init(open, |git, (f, _)| -> Result<()> {
            let git = git.as_ref().map_err(open_error)?;
            let n = write_one(git, store, into, f, fresh)?;
            bytes.fetch_add(n, Ordering::Relaxed);
            progress.advance(1, f.pointer.map(|p| p.size).unwrap_or(0));
            Ok(())
        })
        .collect::<Result<()>>()?;
    progress.end();
    fs::remove_file(&marker).map_err(|e| Error::io("remove", &marker, e))?;
    Ok(Written {
        files: files.len() as u64,
        lfs_files: files.iter().filter(|(f, _)| f.pointer.is_some()).count() as u64,
        bytes: bytes.into_inner(),
    })
}

fn open_error(e: &git2::Error) -> Error {
    Error::new(crate::ErrorKind::Git, format!("cannot open the repository: {e}"))
}

fn write_one(git: &Repository, store: &LfsStore, into: &Path, f: &TreeFile, fresh: bool) -> Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let dest = into.join(&f.entry.path);
    if !fresh {
        if let Ok(meta) = fs::symlink_metadata(&dest) {
            let removed = if meta.is_dir() { fs::remove_dir_all(&dest) } else { fs::remove_file(&dest) };
            removed.map_err(|e| Error::io("replace", &dest, e))?;
        }
    }
    if f.entry.mode == FileMode::Link {
        let blob = git.find_blob(f.entry.oid).context(format!("read {}", f.entry.path))?;
        let target = String::from_utf8_lossy(blob.content()).into_owned();
        std::os::unix::fs::symlink(&target, &dest).map_err(|e| Error::io("create the symlink", &dest, e))?;
        return Ok(0);
    }
    let size = match f.pointer {
        Some(p) => {
            // open + create + copy_file_range: no extra stat or chmod per file (fs::copy does both).
            let mut src = store.open(&p)?;
            let mut out = fs::File::create(&dest).map_err(|e| Error::io("create", &dest, e))?;
            let copied = std::io::copy(&mut src, &mut out).map_err(|e| Error::io("write", &dest, e))?;
            if copied != p.size {
                return Err(Error::new(
                    crate::ErrorKind::CheckFailed,
                    format!("LFS object {} has {copied} bytes, its pointer says {}", p.oid, p.size),
                )
                .with_hint("the store is corrupt: run `mlgit verify` and fetch the object again"));
            }
            p.size
        }
        None => {
            let blob = git.find_blob(f.entry.oid).context(format!("read {}", f.entry.path))?;
            fs::write(&dest, blob.content()).map_err(|e| Error::io("write", &dest, e))?;
            blob.size() as u64
        }
    };
    if f.entry.mode == FileMode::BlobExecutable {
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod", &dest, e))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_takes_patterns_and_folder_prefixes() {
        let inc = Include::new(&["data/train".into(), "*.json".into()]).unwrap();
        assert!(inc.matches("data/train/a.csv"));
        assert!(!inc.matches("data/training/a.csv"));
        assert!(inc.matches("x/y.json"));
        assert!(!inc.matches("data/test/a.csv"));
        assert!(Include::new(&[]).unwrap().matches("anything"));
    }
}
