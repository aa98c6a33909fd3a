//! The transform sandbox of `mlgit clean --run`: the validated data is materialized read-only into a
//! temporary folder beside a copy of the committed `transform/`, the command runs there, anything it
//! writes outside `MLGIT_OUTPUT` is refused, and `MLGIT_OUTPUT` becomes the clean data.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{FileMode, Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;

use super::flow::DATA_DIR;
use super::materialize::write_tree;
use crate::config::BranchKind;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repo::lfs_tree::compile_patterns;
use crate::repo::tree::{validate_path, Entry, TreeEdits};
use crate::repo::Repo;
use crate::store::attributes::Pattern;
use crate::store::LfsStore;

/// The transformation that produced the clean data (with `--run`).
#[derive(Debug, Clone, Serialize)]
pub struct TransformRecord {
    pub command: String,
    /// The transform folder in the clean tree (`transform/`), its tree id, and each file's blob id.
    pub dir: String,
    pub tree: Option<String>,
    pub files: Vec<TransformFile>,
    pub output_files: u64,
    pub output_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformFile {
    pub path: String,
    pub blob: String,
}

/// `transform/` without its trailing slash (a tree path).
pub(super) fn transform_dir(repo: &Repo) -> String {
    let d = repo.config().clean.transform_dir.trim_matches('/');
    if d.is_empty() {
        "transform".into()
    } else {
        d.to_string()
    }
}

/// Materialize the validated data, run CMD on it, and store its output. Returns the clean data
/// tree, the transform record and the transform folder's tree (None: no transform folder).
pub(super) fn run_transform(
    repo: &Repo,
    cmd: &str,
    raw: Oid,
    validated: Oid,
    clean_tree: Oid,
    progress: &dyn Progress,
) -> Result<(Oid, TransformRecord, Option<Oid>)> {
    let git = repo.git();
    let dir_name = transform_dir(repo);
    let tmp =
        tempfile::Builder::new().prefix("mlgit-clean-").tempdir().context("create a temporary folder")?;
    let root = tmp.path().to_path_buf();
    let input = root.join("input");
    let output = root.join("output");
    let work = root.join("work");
    for d in [&input, &output, &work] {
        fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    write_tree(repo, validated, &input, &|_| true, progress)?;

    // The transform folder: the worktree's (where the user edits it), else the clean branch's.
    let local = repo.workdir().join(&dir_name);
    let transform_tree = if local.is_dir() {
        Some(store_folder_as_blobs(git, &local)?)
    } else {
        flow_subtree(git, clean_tree, &dir_name)?
    };
    let work_transform = work.join(&dir_name);
    if let Some(t) = transform_tree {
        write_tree(repo, t, &work_transform, &|_| true, &crate::progress::NoProgress)?;
    }

    set_read_only(&input, true)?;
    let before = match listing(&root, &output) {
        Ok(l) => l,
        Err(e) => {
            // Leave a removable temporary folder behind whatever happens.
            let _ = set_read_only(&input, false);
            return Err(e);
        }
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(&work)
        .env("MLGIT_INPUT", &input)
        .env("MLGIT_OUTPUT", &output)
        .env("MLGIT_SOURCE_COMMIT", raw.to_string())
        .env("MLGIT_TRANSFORM_DIR", &work_transform)
        .stdin(Stdio::null())
        .stdout(child_stdout())
        .status();
    // Make the input writable again whatever happened, so the temporary folder can be removed.
    let restored = set_read_only(&input, false);
    let status = status.map_err(|e| {
        Error::invalid(format!("cannot start `sh -c {cmd:?}`"))
            .with_source(e)
            .with_hint("check that sh is on PATH")
    })?;
    restored?;
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        return Err(Error::new(
            ErrorKind::ChildFailed(1),
            format!("the transformation `{cmd}` failed (exit status {code}); nothing was committed"),
        )
        .with_hint("fix the command (it runs with `sh -c` in a folder holding transform/, reading $MLGIT_INPUT and writing $MLGIT_OUTPUT), then retry"));
    }
    let after = listing(&root, &output)?;
    if before != after {
        let changed = diff_listings(&before, &after);
        return Err(Error::invalid(format!(
            "the transformation `{cmd}` wrote outside MLGIT_OUTPUT ({}); nothing was committed",
            changed.join(", ")
        ))
        .with_hint("write results only under $MLGIT_OUTPUT; $MLGIT_INPUT is read-only and the working folder must stay as it was"));
    }

    let outputs = output_files(&output)?;
    if outputs.is_empty() {
        return Err(Error::invalid(format!(
            "the transformation `{cmd}` succeeded but wrote nothing into MLGIT_OUTPUT; nothing was committed"
        ))
        .with_hint("write the clean files under $MLGIT_OUTPUT (folders are kept: $MLGIT_OUTPUT/a/b.csv becomes data/a/b.csv)"));
    }
    let patterns = compile_patterns(repo.config().lfs_patterns(BranchKind::Clean))?;
    let max_blob = repo.config().lfs.max_blob_size;
    progress.begin("store", outputs.len() as u64, 0);
    let git_dir = git.path().to_path_buf();
    let store = repo.store();
    let stored: Vec<(String, Oid, u64)> = outputs
        .par_iter()
        .map_init(
            || Repository::open(&git_dir),
            |g, (rel, path)| -> Result<(String, Oid, u64)> {
                let g = g
                    .as_ref()
                    .map_err(|e| Error::new(ErrorKind::Git, format!("cannot open the repository: {e}")))?;
                let r = store_output(g, store, &patterns, max_blob, rel, path)?;
                progress.advance(1, 0);
                Ok(r)
            },
        )
        .collect::<Result<_>>()?;
    progress.end();
    let mut edits = TreeEdits::new();
    let mut bytes = 0;
    for (rel, oid, size) in &stored {
        edits.set(rel, Entry::blob(*oid))?;
        bytes += size;
    }
    let tree = edits.write(git, None)?;
    let mut files = Vec::new();
    if let Some(t) = transform_tree {
        for f in crate::repo::tree::list_files(git, t)? {
            files.push(TransformFile { path: format!("{dir_name}/{}", f.path), blob: f.oid.to_string() });
        }
    }
    let record = TransformRecord {
        command: cmd.to_string(),
        dir: format!("{dir_name}/"),
        tree: transform_tree.map(|t| t.to_string()),
        files,
        output_files: stored.len() as u64,
        output_bytes: bytes,
    };
    Ok((tree, record, transform_tree))
}

fn flow_subtree(git: &Repository, tree: Oid, path: &str) -> Result<Option<Oid>> {
    Ok(crate::repo::tree::entry_at(git, tree, path)?.filter(|e| e.mode == FileMode::Tree).map(|e| e.oid))
}

/// The child's stdout goes to our stderr, so `--json` keeps stdout to one document.
fn child_stdout() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    }
}

/// Store a folder's files as git blobs and return its tree (the transform scripts are code, not data).
fn store_folder_as_blobs(git: &Repository, dir: &Path) -> Result<Oid> {
    use std::os::unix::fs::PermissionsExt;
    let mut edits = TreeEdits::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| Error::invalid(format!("cannot list {}: {e}", dir.display())))?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = rel_path(dir, e.path())?;
        if e.file_type().is_symlink() || !e.file_type().is_file() {
            return Err(Error::invalid(format!("{} is not a regular file", e.path().display()))
                .with_hint("keep only regular files in the transform folder"));
        }
        let data = fs::read(e.path()).map_err(|err| Error::io("read", e.path(), err))?;
        let meta = e
            .metadata()
            .map_err(|err| Error::invalid(format!("cannot stat {}: {err}", e.path().display())))?;
        let mode =
            if meta.permissions().mode() & 0o111 != 0 { FileMode::BlobExecutable } else { FileMode::Blob };
        let blob = git.blob(&data).context(format!("store {}", e.path().display()))?;
        edits.set(&rel, Entry { oid: blob, mode })?;
    }
    edits.write(git, None)
}

fn rel_path(root: &Path, path: &Path) -> Result<String> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| Error::invalid(format!("{} is outside {}", path.display(), root.display())))?;
    let text = rel.to_str().ok_or_else(|| {
        Error::invalid(format!("the file name {:?} is not UTF-8", rel)).with_hint("rename the file")
    })?;
    let text = text.replace(std::path::MAIN_SEPARATOR, "/");
    validate_path(&text)?;
    Ok(text)
}

/// The regular files under MLGIT_OUTPUT (symlinks and other special files are refused: a link
/// could point anywhere on this machine).
fn output_files(output: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(output).sort_by_file_name() {
        let e = e.map_err(|e| Error::invalid(format!("cannot list {}: {e}", output.display())))?;
        if e.file_type().is_dir() {
            continue;
        }
        if !e.file_type().is_file() {
            return Err(Error::invalid(format!(
                "the transformation wrote {}, which is not a regular file (symlink or special file); nothing was committed",
                e.path().display()
            ))
            .with_hint("write regular files under $MLGIT_OUTPUT"));
        }
        if e.file_name() == ".gitattributes" {
            return Err(Error::invalid(format!(
                "the transformation wrote {}: a .gitattributes inside data/ would change how git and git-lfs read the data; nothing was committed",
                e.path().display()
            ))
            .with_hint("leave .gitattributes out of $MLGIT_OUTPUT (mlgit writes the LFS rules itself)"));
        }
        out.push((rel_path(output, e.path())?, e.path().to_path_buf()));
    }
    Ok(out)
}

/// Store one output file as `data/<rel>`: in LFS when the data patterns (or the size guard) say so.
fn store_output(
    git: &Repository,
    store: &LfsStore,
    patterns: &[Pattern],
    max_blob: u64,
    rel: &str,
    path: &Path,
) -> Result<(String, Oid, u64)> {
    let meta = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    let full = format!("{DATA_DIR}/{rel}");
    if patterns.iter().any(|p| p.is_match(&full)) || meta.len() > max_blob {
        let stored = store.store_file(path, Some(&meta))?;
        let blob = git.blob(&stored.pointer.to_bytes()).context(format!("write the pointer of {full}"))?;
        Ok((rel.to_string(), blob, stored.pointer.size))
    } else {
        let data = fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let blob = git.blob(&data).context(format!("store {full}"))?;
        Ok((rel.to_string(), blob, data.len() as u64))
    }
}

/// Make a folder tree read-only (or writable again).
fn set_read_only(dir: &Path, read_only: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entries: Vec<_> = walkdir::WalkDir::new(dir).into_iter().filter_map(|e| e.ok()).collect();
    // Files first when locking, folders first when unlocking, so every step is permitted.
    let mut ordered = entries;
    if !read_only {
        ordered.sort_by_key(|e| e.depth());
    } else {
        ordered.sort_by_key(|e| std::cmp::Reverse(e.depth()));
    }
    for e in ordered {
        let is_dir = e.file_type().is_dir();
        if e.file_type().is_symlink() {
            continue;
        }
        let mode = match (is_dir, read_only) {
            (true, true) => 0o555,
            (true, false) => 0o755,
            (false, true) => 0o444,
            (false, false) => 0o644,
        };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode))
            .map_err(|err| Error::io("change the permissions of", e.path(), err))?;
    }
    Ok(())
}

/// (path, size, mtime, mode) of everything under `root` except `skip`.
fn listing(root: &Path, skip: &Path) -> Result<BTreeMap<String, (u64, i64, i64, u32)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| e.path() != skip) {
        let e = e.map_err(|e| Error::invalid(format!("cannot list {}: {e}", root.display())))?;
        let meta = fs::symlink_metadata(e.path()).map_err(|err| Error::io("stat", e.path(), err))?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path()).to_string_lossy().into_owned();
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        let size = if meta.is_dir() { 0 } else { meta.len() };
        out.insert(rel, (size, meta.mtime(), meta.mtime_nsec(), meta.mode() & !0o777));
    }
    Ok(out)
}

fn diff_listings(
    a: &BTreeMap<String, (u64, i64, i64, u32)>,
    b: &BTreeMap<String, (u64, i64, i64, u32)>,
) -> Vec<String> {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    let is_dir = |v: &(u64, i64, i64, u32)| v.3 & S_IFMT == S_IFDIR;
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for (k, v) in b {
        match a.get(k) {
            None => files.push(format!("created {k}")),
            Some(old) if old != v && is_dir(v) => folders.push(format!("changed the folder {k}")),
            Some(old) if old != v => files.push(format!("changed {k}")),
            _ => {}
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) {
            files.push(format!("removed {k}"));
        }
    }
    // A folder's mtime changes with every entry made or removed in it: name it only when no file
    // change explains it (a file created and deleted again).
    let mut out = if files.is_empty() { folders } else { files };
    let n = out.len();
    out.truncate(5);
    if n > 5 {
        out.push(format!("{} more", n - 5));
    }
    out
}
