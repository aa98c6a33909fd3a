//! Building trees in the object database without a checkout or an index: a set of edits (files
//! set, paths removed, subtrees grafted) applied on top of an optional base tree, bottom-up. Subtrees
//! no edit touches keep their ids, so unchanged data is never rewritten.

use std::collections::BTreeMap;

use git2::{FileMode, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use crate::error::{Error, Result};

/// A file or subtree to put at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub oid: Oid,
    pub mode: FileMode,
}

impl Entry {
    pub fn blob(oid: Oid) -> Entry {
        Entry { oid, mode: FileMode::Blob }
    }
}

#[derive(Debug, Default)]
struct Dir {
    children: BTreeMap<String, Node>,
}

#[derive(Debug)]
enum Node {
    Set(Entry),
    Remove,
    /// Replace the whole subtree with an existing tree (graft); further edits may go below it.
    Graft(Oid, Dir),
    /// Edits on top of the base's subtree at this path.
    Edit(Dir),
    /// A new folder that ignores the base's content (a path removed, then written below again).
    Fresh(Dir),
}

/// Edits to apply to a tree.
#[derive(Debug, Default)]
pub struct TreeEdits {
    root: Dir,
    len: usize,
}

/// Check that a '/'-separated path can be written into a git tree: no empty, `.` or `..`
/// component, no `.git` component (git refuses those), no NUL or newline.
pub fn validate_path(path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!("cannot store the path {path:?}: {why}"))
            .with_hint("rename the file (or leave it out of the folder) and run the command again"))
    };
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.contains(|c: char| c.is_ascii_control()) {
        return bad("it contains a control character (newline, tab…), which .gitattributes and most tools cannot express");
    }
    for comp in path.split('/') {
        match comp {
            "" => return bad("it has an empty component"),
            "." | ".." => return bad("it has a '.' or '..' component"),
            c if c.eq_ignore_ascii_case(".git") => return bad("git does not allow a '.git' component"),
            _ => {}
        }
    }
    Ok(())
}

impl TreeEdits {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many edits were recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn dir_for<'a>(&'a mut self, parents: &[&str]) -> &'a mut Dir {
        let mut dir = &mut self.root;
        for name in parents {
            let node = dir.children.entry(name.to_string()).or_insert_with(|| Node::Edit(Dir::default()));
            // A removed path or a file that becomes a folder starts empty: the base's content at
            // that path must not come back.
            if matches!(node, Node::Remove | Node::Set(_)) {
                *node = Node::Fresh(Dir::default());
            }
            dir = match node {
                Node::Edit(d) | Node::Graft(_, d) | Node::Fresh(d) => d,
                Node::Remove | Node::Set(_) => unreachable!("just replaced by a folder"),
            };
        }
        dir
    }

    fn put(&mut self, path: &str, node: Node) {
        let parts: Vec<&str> = path.split('/').collect();
        let (name, parents) = parts.split_last().expect("split always yields one part");
        self.dir_for(parents).children.insert(name.to_string(), node);
        self.len += 1;
    }

    /// Put a file (blob, executable or symlink) at `path`, replacing whatever is there.
    pub fn set(&mut self, path: &str, entry: Entry) -> Result<()> {
        validate_path(path)?;
        self.put(path, Node::Set(entry));
        Ok(())
    }

    /// Remove `path` (a file or a whole subtree) if present. Below a path already set to a file
    /// there is nothing to remove: that file replaces the whole folder.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        validate_path(path)?;
        if self.set_above(path) {
            return Ok(());
        }
        self.put(path, Node::Remove);
        Ok(())
    }

    /// Whether a folder on the way to `path` is already set to a file.
    fn set_above(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut dir = &self.root;
        for name in &parts[..parts.len() - 1] {
            match dir.children.get(*name) {
                Some(Node::Set(_)) => return true,
                Some(Node::Edit(d) | Node::Graft(_, d) | Node::Fresh(d)) => dir = d,
                Some(Node::Remove) | None => return false,
            }
        }
        false
    }

    /// Put an existing tree at `path` (zero-copy graft); `path` "" is not allowed (use it as base).
    pub fn graft(&mut self, path: &str, tree: Oid) -> Result<()> {
        validate_path(path)?;
        self.put(path, Node::Graft(tree, Dir::default()));
        Ok(())
    }

    /// Write the edited tree on top of `base` (None: the empty tree) and return its id.
    pub fn write(&self, git: &Repository, base: Option<Oid>) -> Result<Oid> {
        let id = write_dir(git, base, &self.root)?;
        match id {
            Some(id) => Ok(id),
            None => git
                .treebuilder(None)
                .and_then(|b| b.write())
                .map_err(|e| Error::git("write an empty tree", e)),
        }
    }
}

/// Returns None when the resulting tree is empty (git keeps no empty folders).
fn write_dir(git: &Repository, base: Option<Oid>, dir: &Dir) -> Result<Option<Oid>> {
    let base_tree = match base {
        Some(id) => Some(git.find_tree(id).map_err(|e| Error::git(format!("read tree {id}"), e))?),
        None => None,
    };
    if dir.children.is_empty() {
        return Ok(base_tree.filter(|t| !t.is_empty()).map(|t| t.id()));
    }
    let mut builder = git.treebuilder(base_tree.as_ref()).map_err(|e| Error::git("start a tree", e))?;
    for (name, node) in &dir.children {
        let (exists, existing_tree) =
            match builder.get(name).map_err(|e| Error::git("read a tree entry", e))? {
                Some(e) => (true, (e.kind() == Some(ObjectType::Tree)).then(|| e.id())),
                None => (false, None),
            };
        let result = match node {
            Node::Set(entry) => Some((entry.oid, entry.mode)),
            Node::Remove => None,
            Node::Graft(tree, sub) => write_dir(git, Some(*tree), sub)?.map(|id| (id, FileMode::Tree)),
            Node::Edit(sub) => write_dir(git, existing_tree, sub)?.map(|id| (id, FileMode::Tree)),
            Node::Fresh(sub) => write_dir(git, None, sub)?.map(|id| (id, FileMode::Tree)),
        };
        match result {
            Some((oid, mode)) => {
                builder
                    .insert(name, oid, mode.into())
                    .map_err(|e| Error::git(format!("add '{name}' to a tree"), e))?;
            }
            None => {
                if exists {
                    builder
                        .remove(name)
                        .map_err(|e| Error::git(format!("remove '{name}' from a tree"), e))?;
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    builder.write().map(Some).map_err(|e| Error::git("write a tree", e))
}

/// A file in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// '/'-separated path from the tree's root.
    pub path: String,
    pub oid: Oid,
    pub mode: FileMode,
}

/// Every file (blob, executable, symlink; not submodules) of a tree, in path order.
pub fn list_files(git: &Repository, tree: Oid) -> Result<Vec<FileEntry>> {
    let tree = git.find_tree(tree).map_err(|e| Error::git(format!("read tree {tree}"), e))?;
    let mut out = Vec::new();
    let mut bad_name = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
            bad_name = Some(format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes())));
            return TreeWalkResult::Abort;
        };
        let mode = match entry.filemode() {
            0o100755 => FileMode::BlobExecutable,
            0o120000 => FileMode::Link,
            _ => FileMode::Blob,
        };
        out.push(FileEntry { path: format!("{dir}{name}"), oid: entry.id(), mode });
        TreeWalkResult::Ok
    })
    .map_err(|e| Error::git("walk a tree", e))?;
    if let Some(name) = bad_name {
        return Err(Error::invalid(format!("the tree has a file name that is not UTF-8: {name:?}")));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The entry at `path` in `tree`, if any.
pub fn entry_at(git: &Repository, tree: Oid, path: &str) -> Result<Option<Entry>> {
    let tree = git.find_tree(tree).map_err(|e| Error::git(format!("read tree {tree}"), e))?;
    match tree.get_path(std::path::Path::new(path)) {
        Ok(e) => {
            let mode = match e.filemode() {
                0o040000 => FileMode::Tree,
                0o100755 => FileMode::BlobExecutable,
                0o120000 => FileMode::Link,
                0o160000 => FileMode::Commit,
                _ => FileMode::Blob,
            };
            Ok(Some(Entry { oid: e.id(), mode }))
        }
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(Error::git(format!("look up '{path}'"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(git: &Repository, s: &str) -> Oid {
        git.blob(s.as_bytes()).unwrap()
    }

    #[test]
    fn builds_nested_trees_and_reuses_untouched_subtrees() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let mut edits = TreeEdits::new();
        edits.set("data/a/1.csv", Entry::blob(blob(&git, "1"))).unwrap();
        edits.set("data/b/2.csv", Entry::blob(blob(&git, "2"))).unwrap();
        edits.set("README.md", Entry::blob(blob(&git, "r"))).unwrap();
        let t1 = edits.write(&git, None).unwrap();
        let paths: Vec<String> = list_files(&git, t1).unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["README.md", "data/a/1.csv", "data/b/2.csv"]);

        let mut more = TreeEdits::new();
        more.set("data/b/3.csv", Entry::blob(blob(&git, "3"))).unwrap();
        more.remove("README.md").unwrap();
        let t2 = more.write(&git, Some(t1)).unwrap();
        let a1 = entry_at(&git, t1, "data/a").unwrap().unwrap();
        let a2 = entry_at(&git, t2, "data/a").unwrap().unwrap();
        assert_eq!(a1.oid, a2.oid, "untouched subtree keeps its id");
        assert!(entry_at(&git, t2, "README.md").unwrap().is_none());
        assert_eq!(list_files(&git, t2).unwrap().len(), 3);
    }

    #[test]
    fn removing_the_last_file_removes_the_folder_and_grafts_are_zero_copy() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let mut edits = TreeEdits::new();
        edits.set("x/only", Entry::blob(blob(&git, "o"))).unwrap();
        edits.set("keep", Entry::blob(blob(&git, "k"))).unwrap();
        let t1 = edits.write(&git, None).unwrap();
        let mut rm = TreeEdits::new();
        rm.remove("x/only").unwrap();
        let t2 = rm.write(&git, Some(t1)).unwrap();
        assert!(entry_at(&git, t2, "x").unwrap().is_none());

        let x = entry_at(&git, t1, "x").unwrap().unwrap().oid;
        let mut g = TreeEdits::new();
        g.graft("data", x).unwrap();
        let t3 = g.write(&git, Some(t2)).unwrap();
        assert_eq!(entry_at(&git, t3, "data").unwrap().unwrap().oid, x);
    }

    #[test]
    fn a_removed_folder_written_again_keeps_none_of_its_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let mut edits = TreeEdits::new();
        edits.set("model/old.bin", Entry::blob(blob(&git, "old"))).unwrap();
        edits.set("model/keep/also-old", Entry::blob(blob(&git, "old2"))).unwrap();
        let t1 = edits.write(&git, None).unwrap();
        let mut again = TreeEdits::new();
        again.remove("model").unwrap();
        again.set("model/new.bin", Entry::blob(blob(&git, "new"))).unwrap();
        let t2 = again.write(&git, Some(t1)).unwrap();
        let paths: Vec<String> = list_files(&git, t2).unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["model/new.bin"]);
    }

    #[test]
    fn a_folder_replaced_by_a_file_keeps_the_file_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let mut edits = TreeEdits::new();
        edits.set("data/x/a.csv", Entry::blob(blob(&git, "a"))).unwrap();
        let t1 = edits.write(&git, None).unwrap();
        for set_first in [true, false] {
            let mut e = TreeEdits::new();
            if set_first {
                e.set("data/x", Entry::blob(blob(&git, "file"))).unwrap();
                e.remove("data/x/a.csv").unwrap();
            } else {
                e.remove("data/x/a.csv").unwrap();
                e.set("data/x", Entry::blob(blob(&git, "file"))).unwrap();
            }
            let t2 = e.write(&git, Some(t1)).unwrap();
            let paths: Vec<String> = list_files(&git, t2).unwrap().into_iter().map(|f| f.path).collect();
            assert_eq!(paths, ["data/x"], "set first: {set_first}");
        }
    }

    #[test]
    fn refuses_paths_git_cannot_hold() {
        for p in ["", "a//b", "../x", "a/./b", "a/.git/config", ".GIT/x", "a\nb"] {
            assert!(validate_path(p).is_err(), "{p:?}");
        }
        for p in ["-leading", "sp ace/ünï", "a.git/b"] {
            assert!(validate_path(p).is_ok(), "{p:?}");
        }
    }
}
