//! What `clean` and `split` share: checking the branches they read and write, listing the files
//! under `data/` with their pointers, and committing a derived tree on top of the target branch's
//! tip through the branch transaction (raw/clean commit as second parent, no commit when nothing
//! changed).

use std::collections::HashMap;

use git2::{Oid, Repository};

use crate::config::BranchKind;
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree::read_pointer;
use crate::repo::transaction::{Change, Step, Transaction, TxOptions};
use crate::repo::tree::{entry_at, FileEntry};
use crate::repo::Repo;
use crate::store::Pointer;

/// The folder of a data branch's tree that holds the data.
pub const DATA_DIR: &str = "data";

/// Trailer keys of derived commits (besides `Derived-From`, in `repo::trailers::keys`).
pub mod keys {
    pub const FILES_KEPT: &str = "Mlgit-Files-Kept";
    pub const FILES_DROPPED: &str = "Mlgit-Files-Dropped";
    pub const TRANSFORM: &str = "Mlgit-Transform";
    pub const TRANSFORM_COMMAND: &str = "Mlgit-Transform-Command";
    pub const SPLIT_SEED: &str = "Mlgit-Split-Seed";
    pub const SPLIT_RATIOS: &str = "Mlgit-Split-Ratios";
    pub const SPLIT_GROUP_BY: &str = "Mlgit-Split-Group-By";
    pub const SPLIT_KEY: &str = "Mlgit-Split-Key";
    pub const SPLIT_GROUP_COLUMN: &str = "Mlgit-Split-Group-Column";
}

/// Check that `name` is a data branch of the expected role; `option` names the flag for messages.
pub fn require_data_branch(repo: &Repo, name: &str, option: &str) -> Result<BranchKind> {
    let kind = repo.config().branch_kind(name);
    if !kind.is_data() {
        let b = &repo.config().branches;
        return Err(Error::invalid(format!(
            "{option} {name}: '{name}' is not a data branch (data branches: {}, {}, {})",
            b.raw, b.clean, b.split
        ))
        .with_hint("name one of the data branches, or rename them under `branches:` in mlgit.yaml on main"));
    }
    Ok(kind)
}

/// Resolve the source commit: `rev` (which must be on `branch`), else the tip of `branch`.
pub fn source_commit<'r>(repo: &'r Repo, branch: &str, rev: Option<&str>) -> Result<git2::Commit<'r>> {
    let tip = repo.require_branch(branch)?;
    let Some(rev) = rev else { return Ok(tip) };
    let commit = repo.resolve(rev)?;
    let on_branch = commit.id() == tip.id()
        || repo.git().graph_descendant_of(tip.id(), commit.id()).context("compare commits")?;
    if !on_branch {
        return Err(Error::invalid(format!(
            "--rev {rev}: commit {} is not on branch '{branch}'",
            commit.id()
        ))
        .with_hint(format!("list the commits of '{branch}' with `git log --oneline {branch}`")));
    }
    Ok(commit)
}

/// A data file: its path relative to `data/`, its entry, and its pointer when it is an LFS file.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub rel: String,
    pub entry: FileEntry,
    pub pointer: Option<Pointer>,
}

/// The id of the `data/` subtree of a commit's tree, if there is one.
pub fn data_tree(git: &Repository, tree: Oid) -> Result<Option<Oid>> {
    Ok(entry_at(git, tree, DATA_DIR)?.filter(|e| e.mode == git2::FileMode::Tree).map(|e| e.oid))
}

/// Every file under `data/` of `tree`, in path order, with its pointer (pointer blobs are read,
/// content never).
pub fn data_files(git: &Repository, tree: Oid) -> Result<Vec<DataFile>> {
    let Some(data) = data_tree(git, tree)? else { return Ok(Vec::new()) };
    files_under(git, data)
}

/// Every file of a `data/` tree itself (paths relative to it), as [`data_files`] lists them.
pub fn files_under(git: &Repository, data: Oid) -> Result<Vec<DataFile>> {
    let odb = git.odb().context("open the object database")?;
    crate::repo::tree::list_files(git, data)?
        .into_iter()
        .map(|entry| {
            let pointer =
                if entry.mode == git2::FileMode::Link { None } else { read_pointer(git, &odb, entry.oid)? };
            Ok(DataFile { rel: entry.path.clone(), entry, pointer })
        })
        .collect()
}

/// The size of a file: the pointer's size for LFS files, the blob's otherwise.
pub fn file_size(odb: &git2::Odb<'_>, oid: Oid, pointer: Option<&Pointer>) -> u64 {
    match pointer {
        Some(p) => p.size,
        None => odb.read_header(oid).map(|(n, _)| n as u64).unwrap_or(0),
    }
}

/// Every blob id of `files` mapped to whether it is an LFS pointer.
pub fn pointer_map(files: &[DataFile]) -> HashMap<Oid, bool> {
    files.iter().map(|f| (f.entry.oid, f.pointer.is_some())).collect()
}

/// The result of [`commit_derived`].
#[derive(Debug, Clone, Copy)]
pub struct Derived {
    pub commit: Oid,
    pub tree: Oid,
    /// The branch's previous tip; None when nothing changed (then `commit` is the current tip).
    pub previous: Option<Oid>,
    pub unchanged: bool,
}

/// Commit on `branch`, through the branch transaction, the tree `compose(tip tree)` returns, with
/// `source` as the second parent and `message`; `known` says, per blob id, whether a blob is a
/// pointer, so the data files are not read again. When the composed tree equals the tip's, nothing
/// is committed.
pub fn commit_derived(
    repo: &Repo,
    branch: &str,
    source: Oid,
    message: &str,
    known: &HashMap<Oid, bool>,
    compose: impl Fn(Option<Oid>) -> Result<Oid>,
) -> Result<Derived> {
    let tx = Transaction::open(repo, branch, TxOptions { writer: "mlgit".into(), ..Default::default() })?;
    let out = tx.commit(|tip| {
        let mut change = Change::new(compose(tip.map(|c| c.tree_id()))?, message);
        change.extra_parents = vec![source];
        change.pointers = known.clone();
        Ok(Step::Commit(Box::new(change)))
    })?;
    let tree = out.tree.ok_or_else(|| Error::invalid("no tree was composed"))?;
    match out.commit {
        Some(commit) => Ok(Derived { commit, tree, previous: out.previous, unchanged: false }),
        None => {
            let commit =
                out.previous.ok_or_else(|| Error::not_found(format!("branch '{branch}' does not exist")))?;
            Ok(Derived { commit, tree, previous: None, unchanged: true })
        }
    }
}
