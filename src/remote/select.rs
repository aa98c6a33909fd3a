//! Which LFS objects a push, fetch or clone moves, read from the commit graph: a push sends the
//! pointers introduced by the commits the remote lacks; a fetch gets the pointers in the trees of
//! the refs asked for, filtered by path globs. Each object once, with one path that needs it.

use std::collections::{HashMap, HashSet};

use git2::{Delta, DiffOptions, Oid, Repository, Sort};

use crate::data::materialize::Include;
use crate::error::{Context, Error, Result};
use crate::lfs::Object;
use crate::repo::lfs_tree::read_pointer;
use crate::repo::tree::list_files;
use crate::repo::Repo;
use crate::store::LfsOid;

/// The LFS objects of commits reachable from `tips` but not from `remote_has` (commits the remote
/// is known to have; ids this repository lacks are ignored). Each commit's tree is compared with
/// its parents': a pointer counts when its path holds something else in every parent. When the
/// remote has every tip, nothing is read beyond the walk's start.
pub fn objects_to_push(repo: &Repo, tips: &[Oid], remote_has: &[Oid]) -> Result<Vec<Object>> {
    let git = repo.git();
    let mut walk = git.revwalk().context("walk the commits to push")?;
    walk.set_sorting(Sort::TOPOLOGICAL).context("walk the commits to push")?;
    for tip in tips {
        let commit = peel_commit(git, *tip)?;
        walk.push(commit).context(format!("walk from {commit}"))?;
    }
    for has in remote_has {
        // A commit the remote has and this repository never saw cannot be hidden (nor needs to be).
        if let Ok(commit) = peel_commit(git, *has) {
            walk.hide(commit).context(format!("leave out {commit}"))?;
        }
    }
    let odb = git.odb().context("open the object database")?;
    let mut found: HashMap<LfsOid, Object> = HashMap::new();
    let mut seen_blobs: HashSet<Oid> = HashSet::new();
    for id in walk {
        let id = id.context("walk the commits to push")?;
        let commit = git.find_commit(id).context(format!("read commit {id}"))?;
        let tree = commit.tree().context(format!("read the tree of {id}"))?;
        let parents: Vec<git2::Tree> = commit
            .parents()
            .map(|p| p.tree())
            .collect::<std::result::Result<_, _>>()
            .context(format!("read the parents of {id}"))?;
        let mut opts = DiffOptions::new();
        opts.include_typechange(true).ignore_submodules(true);
        let diff = git
            .diff_tree_to_tree(parents.first(), Some(&tree), Some(&mut opts))
            .context(format!("compare commit {id} with its parent"))?;
        for delta in diff.deltas() {
            if !matches!(delta.status(), Delta::Added | Delta::Modified | Delta::Typechange) {
                continue;
            }
            let file = delta.new_file();
            let blob = file.id();
            if file.mode() == git2::FileMode::Link || !seen_blobs.insert(blob) {
                continue;
            }
            let Some(path) = file.path().and_then(|p| p.to_str()) else { continue };
            // In a merge, a file another parent already has was introduced on that side.
            let elsewhere = parents
                .iter()
                .skip(1)
                .any(|p| p.get_path(std::path::Path::new(path)).map(|e| e.id() == blob).unwrap_or(false));
            if elsewhere {
                seen_blobs.remove(&blob);
                continue;
            }
            if let Some(pointer) = read_pointer(git, &odb, blob)? {
                found.entry(pointer.oid).or_insert_with(|| Object { pointer, path: path.to_string() });
            }
        }
    }
    Ok(sorted(found))
}

/// The LFS objects in the trees of `refs` (name for messages, tip), restricted to paths that match
/// one of `include` (all when empty) and none of `exclude`: gitattributes-style patterns such as
/// `data/train/**` or `*.csv`, or folder prefixes such as `data/train`.
pub fn objects_for_trees(
    repo: &Repo,
    refs: &[(String, Oid)],
    include: &[String],
    exclude: &[String],
) -> Result<Vec<Object>> {
    let git = repo.git();
    let include = Include::new(include)?;
    let excluded = Include::new(exclude)?;
    let mut found: HashMap<LfsOid, Object> = HashMap::new();
    for (name, tip) in refs {
        let commit = peel_commit(git, *tip).map_err(|e| e.with_hint(format!("fetch '{name}' first")))?;
        let tree =
            git.find_commit(commit).and_then(|c| c.tree()).context(format!("read the tree of {name}"))?;
        for (path, pointer) in tree_pointers(git, tree.id())? {
            if include.matches(&path) && (exclude.is_empty() || !excluded.matches(&path)) {
                found.entry(pointer.oid).or_insert(Object { pointer, path });
            }
        }
    }
    Ok(sorted(found))
}

/// How many trees' pointer lists are kept in the cache.
const CACHED_TREES: usize = 16;

/// Every LFS pointer of a tree with its path. A tree never changes, so its list is kept under
/// `.git/mlgit/pointers/<tree>` once computed: a fetch or pull with nothing to download then reads
/// one file instead of tens of thousands of blobs. A cache file that does not parse is ignored.
fn tree_pointers(git: &Repository, tree: Oid) -> Result<Vec<(String, crate::store::Pointer)>> {
    let dir = git.commondir().join("mlgit").join("pointers");
    let cached = dir.join(tree.to_string());
    if let Ok(text) = std::fs::read_to_string(&cached) {
        if let Some(list) = parse_pointer_list(&text) {
            return Ok(list);
        }
    }
    let candidates: Vec<(Oid, String)> = list_files(git, tree)?
        .into_iter()
        .filter(|f| f.mode != git2::FileMode::Link)
        .map(|f| (f.oid, f.path))
        .collect();
    let pointers = read_pointers(git, &candidates)?;
    let list: Vec<(String, crate::store::Pointer)> =
        candidates.into_iter().zip(pointers).filter_map(|((_, path), p)| p.map(|p| (path, p))).collect();
    // Best effort: a cache that cannot be written only costs the next run its time.
    if list.iter().all(|(path, _)| !path.contains(['\n', '\r'])) {
        let mut text = String::with_capacity(list.len() * 100);
        for (path, p) in &list {
            text.push_str(&format!("{} {} {path}\n", p.oid.to_hex(), p.size));
        }
        let _ = write_cache(&dir, &cached, &text);
    }
    Ok(list)
}

fn parse_pointer_list(text: &str) -> Option<Vec<(String, crate::store::Pointer)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let oid = LfsOid::from_hex(parts.next()?)?;
        let size = parts.next()?.parse().ok()?;
        out.push((parts.next()?.to_string(), crate::store::Pointer { oid, size }));
    }
    Some(out)
}

fn write_cache(dir: &std::path::Path, file: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(file).map_err(|e| e.error)?;
    // Keep the newest few.
    let mut entries: Vec<(std::time::SystemTime, std::path::PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() > CACHED_TREES {
        entries.sort();
        for (_, path) in &entries[..entries.len() - CACHED_TREES] {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// The pointer (if any) in each blob, read in parallel: each worker opens its own handle on the
/// repository (a libgit2 handle is not shared between threads). Reading tens of thousands of small
/// blobs is what a fetch with nothing to download spends its time on.
fn read_pointers(git: &Repository, blobs: &[(Oid, String)]) -> Result<Vec<Option<crate::store::Pointer>>> {
    use rayon::prelude::*;
    const CHUNK: usize = 2048;
    if blobs.len() <= CHUNK {
        let odb = git.odb().context("open the object database")?;
        return blobs.iter().map(|(oid, _)| read_pointer(git, &odb, *oid)).collect();
    }
    let path = git.path().to_path_buf();
    let chunks: Vec<Result<Vec<Option<crate::store::Pointer>>>> = blobs
        .par_chunks(CHUNK)
        .map(|chunk| {
            let git = Repository::open(&path).context(format!("open {}", path.display()))?;
            let odb = git.odb().context("open the object database")?;
            chunk.iter().map(|(oid, _)| read_pointer(&git, &odb, *oid)).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(blobs.len());
    for chunk in chunks {
        out.extend(chunk?);
    }
    Ok(out)
}

/// Refuse `include`/`exclude` patterns under which no file of the trees of `refs` is left: a
/// pattern that matches nothing is most likely mistyped, and would quietly fetch nothing.
pub fn check_patterns_select(
    repo: &Repo,
    refs: &[(String, Oid)],
    include: &[String],
    exclude: &[String],
) -> Result<()> {
    if include.is_empty() && exclude.is_empty() {
        return Ok(());
    }
    let git = repo.git();
    let inc = Include::new(include)?;
    let exc = Include::new(exclude)?;
    for (name, tip) in refs {
        let commit = peel_commit(git, *tip)?;
        let tree =
            git.find_commit(commit).and_then(|c| c.tree()).context(format!("read the tree of {name}"))?;
        if list_files(git, tree.id())?
            .iter()
            .any(|f| inc.matches(&f.path) && (exclude.is_empty() || !exc.matches(&f.path)))
        {
            return Ok(());
        }
    }
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    let mut given = Vec::new();
    if !include.is_empty() {
        given.push(format!("--include {}", include.join(" ")));
    }
    if !exclude.is_empty() {
        given.push(format!("--exclude {}", exclude.join(" ")));
    }
    Err(Error::invalid(format!("no file of {} is selected by {}", names.join(", "), given.join(" ")))
        .with_hint(format!(
            "patterns are gitattributes-style ('data/train/**', '*.csv') or folders ('data/train'); list the files with `git ls-tree -r --name-only {}`",
            names.first().copied().unwrap_or("REF")
        )))
}

/// The commit an id names (a tag is peeled).
pub fn peel_commit(git: &Repository, id: Oid) -> Result<Oid> {
    let obj = git.find_object(id, None).map_err(|e| {
        Error::git(format!("read object {id}"), e).with_hint("fetch it first (`mlgit fetch`)")
    })?;
    let commit = obj.peel_to_commit().map_err(|e| {
        Error::git(format!("read object {id} as a commit"), e).with_hint("name a branch, a tag or a commit")
    })?;
    Ok(commit.id())
}

fn sorted(found: HashMap<LfsOid, Object>) -> Vec<Object> {
    let mut out: Vec<Object> = found.into_values().collect();
    out.sort_by(|a, b| a.path.cmp(&b.path).then(a.pointer.oid.0.cmp(&b.pointer.oid.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::repo::tree::{Entry, TreeEdits};
    use crate::store::Pointer;

    fn pointer(n: u8) -> Pointer {
        Pointer { oid: LfsOid([n; 32]), size: u64::from(n) }
    }

    fn commit(git: &Repository, files: &[(&str, u8)], parents: &[Oid]) -> Oid {
        let mut edits = TreeEdits::new();
        for (path, n) in files {
            let blob = git.blob(&pointer(*n).to_bytes()).unwrap();
            edits.set(path, Entry::blob(blob)).unwrap();
        }
        let tree = git.find_tree(edits.write(git, None).unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@e").unwrap();
        let parents: Vec<git2::Commit> = parents.iter().map(|p| git.find_commit(*p).unwrap()).collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        git.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
    }

    fn oids(objects: &[Object]) -> Vec<u8> {
        let mut v: Vec<u8> = objects.iter().map(|o| o.pointer.oid.0[0]).collect();
        v.sort();
        v
    }

    #[test]
    fn a_push_offers_what_the_commits_the_remote_lacks_introduced() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let base = commit(&git, &[("data/a", 1)], &[]);
        let ours = commit(&git, &[("data/a", 1), ("data/b", 2)], &[base]);
        let theirs = commit(&git, &[("data/a", 1), ("data/c", 3)], &[base]);
        // A merge that keeps both sides introduces nothing; one that resolves with new content does.
        let merge = commit(&git, &[("data/a", 1), ("data/b", 2), ("data/c", 3)], &[ours, theirs]);
        let resolved = commit(&git, &[("data/a", 4), ("data/b", 2), ("data/c", 3)], &[ours, theirs]);
        let repo = Repo::from_parts(git, Config::default());
        assert_eq!(oids(&objects_to_push(&repo, &[merge], &[theirs]).unwrap()), vec![2]);
        assert_eq!(oids(&objects_to_push(&repo, &[merge], &[ours, theirs]).unwrap()), Vec::<u8>::new());
        assert_eq!(oids(&objects_to_push(&repo, &[resolved], &[ours, theirs]).unwrap()), vec![4]);
        assert_eq!(oids(&objects_to_push(&repo, &[merge], &[]).unwrap()), vec![1, 2, 3]);
        // An id the remote has that this repository never saw is ignored.
        let unknown = Oid::from_str("1234567890123456789012345678901234567890").unwrap();
        assert_eq!(oids(&objects_to_push(&repo, &[ours], &[unknown, base]).unwrap()), vec![2]);
    }

    #[test]
    fn a_fetch_takes_the_trees_pointers_by_glob_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let tip = commit(
            &git,
            &[("data/train/a", 1), ("data/train/b", 1), ("data/train/c", 2), ("data/test/d", 3)],
            &[],
        );
        let repo = Repo::from_parts(git, Config::default());
        let refs = vec![("split".to_string(), tip)];
        let train = objects_for_trees(&repo, &refs, &["data/train/**".into()], &[]).unwrap();
        assert_eq!(oids(&train), vec![1, 2], "deduplicated by oid");
        let folder =
            objects_for_trees(&repo, &refs, &["data/train".into()], &["data/train/c".into()]).unwrap();
        assert_eq!(oids(&folder), vec![1]);
        assert_eq!(oids(&objects_for_trees(&repo, &refs, &[], &[]).unwrap()), vec![1, 2, 3]);
        assert!(check_patterns_select(&repo, &refs, &["data/trian/**".into()], &[]).is_err());
        // The tree's pointer list is cached; a damaged cache file is not believed.
        let tree = repo.git().find_commit(tip).unwrap().tree_id();
        let cache = repo.git().commondir().join("mlgit/pointers").join(tree.to_string());
        assert!(cache.is_file());
        std::fs::write(&cache, "not a pointer list\n").unwrap();
        assert_eq!(oids(&objects_for_trees(&repo, &refs, &[], &[]).unwrap()), vec![1, 2, 3]);
    }
}
