//! Getting a table of a data tree in and out of the record layer: opening a file of a tree (its
//! LFS object, or its blob) as a table input, and storing a table writer's finished output as a
//! tree entry (an LFS object plus its pointer blob, or a blob) by the branch's LFS rule.

use std::collections::HashMap;

use git2::{Oid, Repository};

use super::flow::{DataFile, DATA_DIR};
use crate::error::{Context, Error, Result};
use crate::ingest::LfsRule;
use crate::repo::tree::Entry;
use crate::store::{LfsStore, Presence};
use crate::table::output::Finished;
use crate::table::Input;

/// Open the data file `f` (`data/<f.rel>`) for reading as a table.
pub fn open_input(git: &Repository, store: &LfsStore, branch: &str, f: &DataFile) -> Result<Input> {
    match &f.pointer {
        Some(p) => {
            if store.presence(p) != Presence::Present {
                return Err(Error::not_found(format!(
                    "the content of {DATA_DIR}/{} on '{branch}' is not in this repository's LFS store",
                    f.rel
                ))
                .with_hint(format!(
                    "fetch it first: `mlgit pull --ref {branch} --include '{DATA_DIR}/{}'`",
                    f.rel
                )));
            }
            // Verified as it is read: corrupt bytes in the store are never taken for the table.
            Ok(Input::Verified {
                file: store.open(p)?,
                pointer: *p,
                name: format!("{branch}:{DATA_DIR}/{}", f.rel),
            })
        }
        None => {
            let blob = git.find_blob(f.entry.oid).context(format!("read {DATA_DIR}/{}", f.rel))?;
            Ok(Input::Bytes(blob.content().to_vec()))
        }
    }
}

/// Store a finished table output that goes to `tree_path`: into the LFS store with a pointer blob
/// when the rule says LFS, else as a blob. Records in `known` whether the entry's blob is a pointer
/// (so the branch transaction does not read it again).
pub fn store_output(
    git: &Repository,
    store: &LfsStore,
    rule: &LfsRule,
    tree_path: &str,
    out: Finished,
    known: &mut HashMap<Oid, bool>,
) -> Result<Entry> {
    let Finished { file, pointer } = out;
    let storage = rule.storage(tree_path, pointer.size);
    let blob = if storage.lfs {
        let path = file.into_temp_path();
        store.install_checked(&path, &pointer)?;
        // Already moved into place (or removed, when the object was there): nothing to delete.
        let _ = path.keep();
        git.blob(&pointer.to_bytes()).context(format!("write the pointer of {tree_path}"))?
    } else {
        git.blob_path(file.path()).context(format!("store {tree_path}"))?
    };
    known.insert(blob, storage.lfs);
    Ok(Entry::blob(blob))
}

/// An error reading the table at `path` (e.g. `data/x.parquet`), naming it when the reader's message
/// does not (a Parquet file that is not Parquet, a codec mlgit was built without…).
pub fn in_table(path: &str) -> impl Fn(Error) -> Error + '_ {
    move |e: Error| {
        if e.message().contains(path) {
            return e;
        }
        let mut out = Error::new(e.kind(), format!("{path}: {}", e.message()));
        if let Some(h) = e.hint() {
            out = out.with_hint(h.to_string());
        }
        out
    }
}
