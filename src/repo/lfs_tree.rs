//! Trees as git-lfs sees them: which files of a tree hold pointers, and the step every writer ends
//! with — rewriting the managed `.gitattributes` block so it marks exactly those files.

use git2::{ObjectType, Oid, Repository};

use crate::error::{Context, Result};
use crate::repo::tree::{list_files, Entry, FileEntry, TreeEdits};
use crate::store::attributes::{self, Pattern};
use crate::store::pointer::{Pointer, MAX_POINTER_SIZE};

/// A file of a tree and, if its blob is an LFS pointer, the pointer.
#[derive(Debug, Clone)]
pub struct TreeFile {
    pub entry: FileEntry,
    pub pointer: Option<Pointer>,
}

/// Read the pointer in a blob, if the blob is one. Only small blobs are read.
pub fn read_pointer(git: &Repository, odb: &git2::Odb<'_>, oid: Oid) -> Result<Option<Pointer>> {
    let (size, kind) = odb.read_header(oid).context(format!("read object {oid}"))?;
    if kind != ObjectType::Blob || size > MAX_POINTER_SIZE {
        return Ok(None);
    }
    let blob = git.find_blob(oid).context(format!("read blob {oid}"))?;
    Ok(Pointer::from_blob(blob.content()))
}

/// Every file of `tree` with its pointer, in path order.
pub fn classify(git: &Repository, tree: Oid) -> Result<Vec<TreeFile>> {
    let odb = git.odb().context("open the object database")?;
    list_files(git, tree)?
        .into_iter()
        .map(|entry| {
            let pointer =
                if entry.mode == git2::FileMode::Link { None } else { read_pointer(git, &odb, entry.oid)? };
            Ok(TreeFile { entry, pointer })
        })
        .collect()
}

/// Compile configured patterns (errors name the bad pattern).
pub fn compile_patterns(patterns: &[String]) -> Result<Vec<Pattern>> {
    patterns.iter().map(|p| Pattern::new(p)).collect()
}

/// Rewrite the managed block of the root `.gitattributes` of `tree` for `files` (every file of the
/// tree with whether it holds a pointer) and return the new tree id (the same id if nothing changed).
pub fn write_attributes<'a>(
    git: &Repository,
    tree: Oid,
    patterns: &[Pattern],
    files: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<Oid> {
    let current = match crate::repo::tree::entry_at(git, tree, attributes::FILE)? {
        Some(e) if e.mode != git2::FileMode::Tree => {
            let blob = git.find_blob(e.oid).context("read .gitattributes")?;
            String::from_utf8_lossy(blob.content()).into_owned()
        }
        _ => String::new(),
    };
    let files: Vec<(&str, bool)> = files.into_iter().collect();
    let mut lines = attributes::managed_lines(patterns, files.iter().copied());
    // The user's own lines (a `git lfs track "*.bin"`) may mark plain files: unmark those, so the
    // file as a whole marks exactly the pointers (the block is last, and the last match wins).
    let user = attributes::LfsAttributes::parse(&attributes::splice(&current, &[]));
    let mut unmark: Vec<String> = files
        .iter()
        .filter(|(path, is_pointer)| !is_pointer && *path != attributes::FILE && user.is_lfs(path))
        .map(|(path, _)| format!("{} {}", attributes::escape_path(path), attributes::UNSET_LFS_ATTRS))
        .collect();
    unmark.sort();
    lines.extend(unmark);
    let updated = attributes::splice(&current, &lines);
    if updated == current {
        return Ok(tree);
    }
    let mut edits = TreeEdits::new();
    if updated.is_empty() {
        edits.remove(attributes::FILE)?;
    } else {
        let blob = git.blob(updated.as_bytes()).context("write .gitattributes")?;
        edits.set(attributes::FILE, Entry::blob(blob))?;
    }
    edits.write(git, Some(tree))
}

/// [`write_attributes`] after classifying every file of the tree (reads each small blob once).
pub fn refresh_attributes(git: &Repository, tree: Oid, patterns: &[Pattern]) -> Result<Oid> {
    let files = classify(git, tree)?;
    write_attributes(git, tree, patterns, files.iter().map(|f| (f.entry.path.as_str(), f.pointer.is_some())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LfsOid;

    #[test]
    fn attributes_follow_the_pointers_of_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let p = Pointer { oid: LfsOid([7; 32]), size: 3 };
        let ptr = git.blob(&p.to_bytes()).unwrap();
        let plain = git.blob(b"plain").unwrap();
        let mut edits = TreeEdits::new();
        edits.set("data/a.bin", Entry::blob(ptr)).unwrap();
        edits.set("big file.bin", Entry::blob(ptr)).unwrap();
        edits.set("README.md", Entry::blob(plain)).unwrap();
        let tree = edits.write(&git, None).unwrap();
        let patterns = compile_patterns(&["data/**".into()]).unwrap();
        let t2 = refresh_attributes(&git, tree, &patterns).unwrap();
        let attrs = crate::repo::tree::entry_at(&git, t2, ".gitattributes").unwrap().unwrap();
        let text = String::from_utf8(git.find_blob(attrs.oid).unwrap().content().to_vec()).unwrap();
        assert!(text.contains("data/** filter=lfs"), "{text}");
        assert!(text.contains("/big[[:space:]]file.bin filter=lfs"), "{text}");
        assert!(!text.contains("README"), "{text}");
        assert_eq!(refresh_attributes(&git, t2, &patterns).unwrap(), t2, "idempotent");
    }
}
