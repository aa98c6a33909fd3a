//! `mlgit verify --repair`: rewrite corrupt or missing LFS objects from files whose bytes hash
//! right. Candidates are the worktree files at the paths that need the object (main and linked
//! worktrees), then files of the source folders named by the `Mlgit-Source` trailers in the refs'
//! history: those commit-data's stat cache recorded with this content, and those at the needed
//! path or one of its tails (`data/sub/a.csv` → `sub/a.csv`, `a.csv`: the `--dest` prefix is not
//! recorded, and a file read just after it was written is never cached). Every candidate is
//! re-hashed while it is copied into the store; one whose content differs is never used.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::Serialize;

use crate::error::{Context, Result};
use crate::interrupt::Interrupt;
use crate::repo::trailers::{self, keys};
use crate::store::stat_cache::StatCache;
use crate::store::{LfsOid, LfsStore, Pointer};

/// An object rewritten from a good copy.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    pub oid: String,
    pub size: u64,
    /// The file whose bytes rebuilt it.
    pub from: PathBuf,
}

/// An object no candidate could rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct Unrepaired {
    pub oid: String,
    pub size: u64,
    /// `REF:PATH` of the files that need it.
    pub needed_by: Vec<String>,
    /// How many existing candidate files were tried and found to hold other bytes.
    pub candidates_tried: u64,
}

/// Try to rebuild each bad object (with the tree paths that need it) from a good copy.
pub fn repair(
    git: &Repository,
    store: &LfsStore,
    revs: &[String],
    bad: &[(Pointer, Vec<String>, Vec<String>)],
    interrupt: &Interrupt,
) -> Result<(Vec<Repaired>, Vec<Unrepaired>)> {
    let worktrees = worktree_roots(git)?;
    let sources = source_folders(git, revs)?;
    let cached = cached_sources(git, &sources);
    let mut repaired = Vec::new();
    let mut unrepaired = Vec::new();
    for (pointer, paths, needed_by) in bad {
        interrupt.check("verify --repair")?;
        let mut candidates: Vec<PathBuf> =
            worktrees.iter().flat_map(|root| paths.iter().map(move |p| root.join(p))).collect();
        candidates.extend(cached.get(&pointer.oid).into_iter().flatten().cloned());
        for source in &sources {
            candidates.extend(paths.iter().flat_map(|p| tails(p)).map(|t| source.join(t)));
        }
        let mut tried = 0;
        let mut from = None;
        for c in candidates {
            if c.symlink_metadata().is_err() {
                continue;
            }
            if store.repair_from(pointer, &c)? {
                from = Some(c);
                break;
            }
            tried += 1;
        }
        match from {
            Some(from) => repaired.push(Repaired { oid: pointer.oid.to_hex(), size: pointer.size, from }),
            None => unrepaired.push(Unrepaired {
                oid: pointer.oid.to_hex(),
                size: pointer.size,
                needed_by: needed_by.clone(),
                candidates_tried: tried,
            }),
        }
    }
    Ok((repaired, unrepaired))
}

/// The top folders of the main worktree and of every valid linked worktree.
fn worktree_roots(git: &Repository) -> Result<Vec<PathBuf>> {
    let main = Repository::open(git.commondir()).context("open the main repository")?;
    let mut roots: Vec<PathBuf> = main.workdir().map(Path::to_path_buf).into_iter().collect();
    let names = main.worktrees().context("list worktrees")?;
    for name in names.iter().flatten() {
        let Ok(wt) = main.find_worktree(name) else { continue };
        if wt.validate().is_ok() {
            roots.push(wt.path().to_path_buf());
        }
    }
    Ok(roots)
}

/// The source folders named in the history of `revs` (commit-data's `Mlgit-Source` trailers).
fn source_folders(git: &Repository, revs: &[String]) -> Result<BTreeSet<PathBuf>> {
    let mut walk = git.revwalk().context("walk the history")?;
    for rev in revs {
        let commit =
            git.revparse_single(rev).and_then(|o| o.peel_to_commit()).context(format!("resolve {rev}"))?;
        walk.push(commit.id()).context(format!("walk the history of {rev}"))?;
    }
    let mut sources = BTreeSet::new();
    for oid in walk {
        let oid = oid.context("walk the history")?;
        let commit = git.find_commit(oid).context(format!("read commit {oid}"))?;
        if let Some(source) = trailers::get(commit.message().unwrap_or(""), keys::SOURCE) {
            sources.insert(PathBuf::from(source));
        }
    }
    Ok(sources)
}

/// Source files the stat caches of `sources` recorded, by content.
fn cached_sources(git: &Repository, sources: &BTreeSet<PathBuf>) -> HashMap<LfsOid, Vec<PathBuf>> {
    let mut by_content: HashMap<LfsOid, Vec<PathBuf>> = HashMap::new();
    for source in sources {
        let cache = StatCache::load(&StatCache::path_in(git.commondir(), source));
        for (rel, entry) in cache.entries() {
            by_content.entry(entry.sha256).or_default().push(source.join(rel));
        }
    }
    by_content
}

/// A tree path and each of its tails: `a/b/c` → `a/b/c`, `b/c`, `c`.
fn tails(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once(path).chain(path.match_indices('/').map(move |(i, _)| &path[i + 1..]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tails_drop_leading_folders() {
        assert_eq!(
            super::tails("data/sub/a.csv").collect::<Vec<_>>(),
            vec!["data/sub/a.csv", "sub/a.csv", "a.csv"]
        );
        assert_eq!(super::tails("a").collect::<Vec<_>>(), vec!["a"]);
    }
}
