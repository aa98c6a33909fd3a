//! The append-only rule over history: which commits of a branch such as `raw` or `monitoring/*`
//! changed or removed a path that one of their parents had. One check for `mlgit verify BRANCH`
//! (someone edited `raw` with plain git), the server's `mlgit hook pre-receive` (a push that would
//! do it), and the branch transaction (a commit that would do it).
//!
//! A commit keeps the rule when every path of every parent is still in its tree with the same
//! entry (blob and mode). `.gitattributes` is exempt: mlgit rewrites its managed block as paths are
//! added. So are changes (not the removal) of the root `monitor.yaml`: a monitoring branch's
//! settings, whose history is the record of which thresholds judged which batch. A merge of two append-only histories (the union) keeps the rule when neither side loses
//! or changes a path; a merge that picked one side's version of a path the other side holds
//! differently changes that path for the other parent, and is reported.

use std::collections::HashSet;

use git2::{Delta, DiffOptions, Oid, Repository, Sort};
use serde::Serialize;

use crate::error::{Context, Result};
use crate::interrupt::Interrupt;
use crate::monitor::settings::MONITOR_FILE;
use crate::store::attributes;

/// How a commit broke the rule against one parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The commit that changed or removed paths.
    pub commit: String,
    /// The parent whose paths it changed or removed.
    pub parent: String,
    /// The commit's subject line (who did what, for the report).
    pub subject: String,
    /// Paths the parent had that the commit holds with other content (or another mode or type).
    pub modified: Vec<String>,
    /// Paths the parent had that the commit no longer has.
    pub deleted: Vec<String>,
}

impl Violation {
    /// Every path involved, modified first.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.modified.iter().chain(&self.deleted)
    }

    /// "modifies a, b; deletes c" (at most `max` paths named per list).
    pub fn describe(&self, max: usize) -> String {
        let mut parts = Vec::new();
        if !self.modified.is_empty() {
            parts.push(format!("modifies {}", list_some(&self.modified, max)));
        }
        if !self.deleted.is_empty() {
            parts.push(format!("deletes {}", list_some(&self.deleted, max)));
        }
        parts.join("; ")
    }
}

/// The paths of `old` that `new` modifies or removes (`.gitattributes` exempt), sorted:
/// (modified, deleted).
pub fn changed_or_removed(git: &Repository, old: Oid, new: Oid) -> Result<(Vec<String>, Vec<String>)> {
    if old == new {
        return Ok((Vec::new(), Vec::new()));
    }
    let old = git.find_tree(old).context("read a tree")?;
    let new = git.find_tree(new).context("read a tree")?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = git.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts)).context("compare trees")?;
    let mut modified = Vec::new();
    let mut deleted = Vec::new();
    for delta in diff.deltas() {
        let list = match delta.status() {
            Delta::Deleted => &mut deleted,
            Delta::Modified | Delta::Typechange => &mut modified,
            _ => continue,
        };
        let Some(path) = delta.old_file().path() else { continue };
        let path = path.to_string_lossy().into_owned();
        let settings = path == MONITOR_FILE && delta.status() == Delta::Modified;
        if path != attributes::FILE && !settings {
            list.push(path);
        }
    }
    modified.sort();
    deleted.sort();
    Ok((modified, deleted))
}

/// The violations of one commit, one per parent it broke the rule against.
pub fn commit_violations(git: &Repository, commit: Oid) -> Result<Vec<Violation>> {
    let c = git.find_commit(commit).context(format!("read commit {commit}"))?;
    let tree = c.tree_id();
    let mut out = Vec::new();
    for parent in c.parent_ids() {
        let p = git.find_commit(parent).context(format!("read commit {parent}"))?;
        let (modified, deleted) = changed_or_removed(git, p.tree_id(), tree)?;
        if modified.is_empty() && deleted.is_empty() {
            continue;
        }
        out.push(Violation {
            commit: commit.to_string(),
            parent: parent.to_string(),
            subject: c.summary().unwrap_or_default().to_string(),
            modified,
            deleted,
        });
    }
    Ok(out)
}

/// The violations of the commits reachable from `tip` and not from any of `known` (commits
/// already accepted), oldest first. `known` ids that are not in the repository are ignored.
pub fn range_violations(
    git: &Repository,
    tip: Oid,
    known: &[Oid],
    interrupt: &Interrupt,
) -> Result<Vec<Violation>> {
    let mut walk = git.revwalk().context("walk history")?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE).context("walk history")?;
    walk.push(tip).context(format!("walk the history of {tip}"))?;
    let mut hidden = HashSet::new();
    for k in known {
        if hidden.insert(*k) && git.find_commit(*k).is_ok() {
            walk.hide(*k).context(format!("walk the history of {tip}"))?;
        }
    }
    let mut out = Vec::new();
    for id in walk {
        interrupt.check("the append-only check")?;
        let id = id.context(format!("walk the history of {tip}"))?;
        out.extend(commit_violations(git, id)?);
    }
    Ok(out)
}

/// Whether `ancestor` is `descendant` or one of its ancestors (a fast-forward from it).
pub fn is_ancestor(git: &Repository, ancestor: Oid, descendant: Oid) -> Result<bool> {
    if ancestor == descendant {
        return Ok(true);
    }
    git.graph_descendant_of(descendant, ancestor).context("compare histories")
}

fn list_some(paths: &[String], max: usize) -> String {
    let shown: Vec<&str> = paths.iter().take(max).map(String::as_str).collect();
    let more = if paths.len() > max { format!(" and {} more", paths.len() - max) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{FileMode, Signature};

    fn commit(git: &Repository, files: &[(&str, &str)], parents: &[Oid]) -> Oid {
        let mut idx = git2::Index::new().unwrap();
        for (path, content) in files {
            let oid = git.blob(content.as_bytes()).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: u32::from(FileMode::Blob),
                uid: 0,
                gid: 0,
                file_size: 0,
                id: oid,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            idx.add(&entry).unwrap();
        }
        let tree = idx.write_tree_to(git).unwrap();
        let tree = git.find_tree(tree).unwrap();
        let sig = Signature::new("t", "t@e", &git2::Time::new(0, 0)).unwrap();
        let parents: Vec<git2::Commit<'_>> = parents.iter().map(|p| git.find_commit(*p).unwrap()).collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        git.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
    }

    #[test]
    fn appends_and_union_merges_keep_the_rule_edits_and_deletions_break_it() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init_bare(dir.path()).unwrap();
        let i = Interrupt::new();
        let a = commit(&git, &[("data/a", "1")], &[]);
        let b = commit(&git, &[("data/a", "1"), ("data/b", "2"), (".gitattributes", "x")], &[a]);
        let c = commit(&git, &[("data/a", "1"), ("data/c", "3"), (".gitattributes", "y")], &[a]);
        let union = commit(&git, &[("data/a", "1"), ("data/b", "2"), ("data/c", "3")], &[b, c]);
        assert!(range_violations(&git, union, &[], &i).unwrap().is_empty());

        let edit = commit(&git, &[("data/a", "changed"), ("data/b", "2"), ("data/c", "3")], &[union]);
        let gone = commit(&git, &[("data/a", "changed"), ("data/c", "3")], &[edit]);
        let v = range_violations(&git, gone, &[union], &i).unwrap();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(
            (v[0].commit.as_str(), v[0].modified.as_slice()),
            (edit.to_string().as_str(), &["data/a".to_string()][..])
        );
        assert_eq!(v[1].deleted, vec!["data/b".to_string()]);
        assert_eq!(v[1].describe(5), "deletes data/b");

        // A merge that keeps only one side's version of a path changes it for the other parent.
        let left = commit(&git, &[("data/a", "1"), ("data/x", "left")], &[a]);
        let right = commit(&git, &[("data/a", "1"), ("data/x", "right")], &[a]);
        let picked = commit(&git, &[("data/a", "1"), ("data/x", "left")], &[left, right]);
        let v = commit_violations(&git, picked).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].parent, right.to_string());
        assert_eq!(v[0].modified, vec!["data/x".to_string()]);
    }
}
