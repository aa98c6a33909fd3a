//! Opening a table committed on a branch (an LFS object checked against its pointer as it is read,
//! or a blob) for the record layer.

use git2::{Oid, Repository};

use crate::data::flow::{DataFile, DATA_DIR};
use crate::data::table_io::{in_table, open_input};
use crate::error::{Context, Error, Result};
use crate::repo::lfs_tree::read_pointer;
use crate::repo::tree::entry_at;
use crate::repo::Repo;
use crate::store::Presence;
use crate::table::{Format, ReadOptions, TableReader};

/// A file of a commit's tree, with its pointer when it is stored in LFS.
pub fn data_file(git: &Repository, tree: Oid, path: &str) -> Result<Option<DataFile>> {
    let Some(entry) = entry_at(git, tree, path)? else { return Ok(None) };
    let odb = git.odb().context("open the object database")?;
    let pointer = read_pointer(git, &odb, entry.oid)?;
    let rel = path.strip_prefix(&format!("{DATA_DIR}/")).unwrap_or(path).to_string();
    let entry = crate::repo::tree::FileEntry { path: path.to_string(), oid: entry.oid, mode: entry.mode };
    Ok(Some(DataFile { rel, entry, pointer }))
}

/// Whether the content of `f` can be read here (a blob, or an LFS object in the local store).
pub fn available(repo: &Repo, f: &DataFile) -> bool {
    match &f.pointer {
        Some(p) => repo.store().presence(p) == Presence::Present,
        None => true,
    }
}

/// Open the table at `path` of `tree` (on `branch`, named in errors).
pub fn open_table(repo: &Repo, branch: &str, tree: Oid, path: &str) -> Result<TableReader> {
    let git = repo.git();
    let format = Format::of(path, &repo.config().tables.extensions()).ok_or_else(|| {
        Error::invalid(format!("{branch}:{path} is not a table"))
            .with_hint("tables are the files whose extension `tables.extensions` in mlgit.yaml lists")
    })?;
    let f = data_file(git, tree, path)?
        .ok_or_else(|| Error::not_found(format!("{branch}:{path} does not exist")))?;
    let input = open_input(git, repo.store(), branch, &f)?;
    let shown = format!("{branch}:{path}");
    TableReader::open(input, format, &ReadOptions::default()).map_err(in_table(&shown))
}
