//! The environment rule of `mlgit hook pre-receive`: an `env/<env>` branch is the deployment log
//! of its environment, so the only commits that may land on it are promotion commits (what
//! `mlgit promote` and `mlgit rollback` write) and the root commit `mlgit init` starts it with.
//!
//! A promotion commit has the parents `[previous deployment, snapshot]` (just `[snapshot]` when it
//! starts the branch); its `DEPLOYMENT.yaml` parses, names this environment and that snapshot;
//! its `DEPLOYED_TAG` holds the record's tag; and apart from those two files and `.gitattributes`
//! (whose managed block the branch transaction recomputes) its tree is the snapshot's tree. Only
//! the branch's first-parent line is checked: the snapshot's own history is code and data, not
//! deployments.

use std::collections::BTreeSet;

use git2::{Commit, ObjectType, Oid, Repository, Tree};

use crate::deploy::record::Deployment;
use crate::deploy::{DEPLOYMENT_FILE, TAG_FILE};
use crate::error::{Context, Result};
use crate::interrupt::Interrupt;
use crate::store::attributes;

/// The files a promotion commit adds to (or rewrites in) the snapshot's tree.
const EXEMPT: [&str; 3] = [DEPLOYMENT_FILE, TAG_FILE, attributes::FILE];
/// The files of the root commit `mlgit init` makes on an `env/` branch.
const INIT_README: &str = "README.md";
/// A push of an unrelated history can bring thousands of commits: name this many, then stop.
const MAX_REPORTED: usize = 10;

/// A commit that may not land on an environment branch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvViolation {
    pub commit: Oid,
    /// The commit's subject line (who did what, for the report).
    pub subject: String,
    pub reason: String,
}

/// The commits of the push's first-parent line on `env/<env>`, from `new` down to `old` (zero: the
/// branch is new, so down to where the line starts), that are neither promotion commits nor the
/// init root commit. A line that never reaches `old` (a merge that puts the old tip aside) is a
/// violation too. `tag_target` says which commit a tag names on the server, after this push
/// (None: the server does not know the tag, which a promotion may push later).
pub fn violations(
    git: &Repository,
    env: &str,
    old: Oid,
    new: Oid,
    tag_target: &dyn Fn(&str) -> Option<Oid>,
    interrupt: &Interrupt,
) -> Result<Vec<EnvViolation>> {
    let mut out = Vec::new();
    let mut next = Some(new);
    let mut last = new;
    while let Some(id) = next {
        if id == old {
            return Ok(out);
        }
        interrupt.check("the environment branch check")?;
        let commit = git.find_commit(id).context(format!("read commit {id}"))?;
        if let Some(reason) = promotion_problem(git, &commit, env, tag_target)? {
            out.push(violation(&commit, reason));
            if out.len() >= MAX_REPORTED {
                return Ok(out);
            }
        }
        last = id;
        // The first parent is the previous deployment; a commit with one parent starts the line.
        next = if commit.parent_count() >= 2 {
            Some(commit.parent_id(0).context(format!("read the parents of commit {id}"))?)
        } else {
            None
        };
    }
    if !old.is_zero() && out.is_empty() {
        let commit = git.find_commit(last).context(format!("read commit {last}"))?;
        out.push(violation(
            &commit,
            format!(
                "it starts a new deployment line: the branch's previous tip {} is not its first-parent ancestor",
                short(old)
            ),
        ));
    }
    Ok(out)
}

fn violation(commit: &Commit<'_>, reason: String) -> EnvViolation {
    EnvViolation { commit: commit.id(), subject: commit.summary().unwrap_or_default().to_string(), reason }
}

/// Why `commit` may not be on `env/<env>`, or None when it is a promotion commit for `env` or an
/// init root commit.
pub fn promotion_problem(
    git: &Repository,
    commit: &Commit<'_>,
    env: &str,
    tag_target: &dyn Fn(&str) -> Option<Oid>,
) -> Result<Option<String>> {
    let tree = commit.tree().context(format!("read the tree of commit {}", commit.id()))?;
    let parents: Vec<Oid> = commit.parent_ids().collect();
    let snapshot = match parents.as_slice() {
        [] => return Ok(init_root_problem(&tree)),
        [snapshot] | [_, snapshot] => *snapshot,
        _ => {
            return Ok(Some(format!(
                "it has {} parents; a promotion commit has two: the previous deployment and the snapshot",
                parents.len()
            )))
        }
    };
    let Some(bytes) = blob_at(git, &tree, DEPLOYMENT_FILE)? else {
        return Ok(Some(format!("it has no {DEPLOYMENT_FILE} (every promotion commit holds one)")));
    };
    let record = match Deployment::parse(&bytes, DEPLOYMENT_FILE) {
        Ok(r) => r,
        Err(e) => {
            let cause = e.causes().into_iter().next().map(|c| format!(": {c}")).unwrap_or_default();
            return Ok(Some(format!("{}{cause}", e.message())));
        }
    };
    if record.environment != env {
        return Ok(Some(format!(
            "its {DEPLOYMENT_FILE} is for environment '{}', not '{env}'",
            record.environment
        )));
    }
    if record.snapshot != snapshot.to_string() {
        let which = if parents.len() == 1 { "its parent" } else { "its second parent" };
        return Ok(Some(format!(
            "its {DEPLOYMENT_FILE} names snapshot {}, but {which} is {}",
            record.snapshot,
            short(snapshot)
        )));
    }
    let want = format!("{}\n", record.tag);
    match blob_at(git, &tree, TAG_FILE)? {
        Some(b) if b == want.as_bytes() => {}
        Some(b) => {
            return Ok(Some(format!(
                "its {TAG_FILE} holds {:?}, not the tag of its {DEPLOYMENT_FILE} ({want:?})",
                String::from_utf8_lossy(&b)
            )))
        }
        None => return Ok(Some(format!("it has no {TAG_FILE}"))),
    }
    if let Some(target) = tag_target(&record.tag) {
        if target != snapshot {
            return Ok(Some(format!(
                "tag '{}' names commit {} on this server, not the deployed snapshot {}",
                record.tag,
                short(target),
                short(snapshot)
            )));
        }
    }
    let snapshot_tree = git
        .find_commit(snapshot)
        .and_then(|c| c.tree())
        .context(format!("read the tree of snapshot {snapshot}"))?;
    let differ = differing_paths(git, &snapshot_tree, &tree)?;
    if !differ.is_empty() {
        return Ok(Some(format!(
            "its files differ from those of snapshot {} ({}): only {} may",
            short(snapshot),
            list_some(&differ),
            EXEMPT.join(", ")
        )));
    }
    Ok(None)
}

/// The root commit `mlgit init` makes: README.md, maybe .gitattributes, nothing else.
fn init_root_problem(tree: &Tree<'_>) -> Option<String> {
    let names: Vec<String> =
        tree.iter().map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned()).collect();
    let extra: Vec<String> =
        names.iter().filter(|n| *n != INIT_README && *n != attributes::FILE).cloned().collect();
    if !extra.is_empty() {
        return Some(format!(
            "it is a root commit with files other than {INIT_README} ({}); only the branch's first commit from `mlgit init` has no parents",
            list_some(&extra)
        ));
    }
    if !names.iter().any(|n| n == INIT_README) {
        return Some(format!(
            "it is a root commit without {INIT_README}; only the branch's first commit from `mlgit init` has no parents"
        ));
    }
    None
}

/// The bytes of a file at the root of `tree` (None: absent, or not a file).
fn blob_at(git: &Repository, tree: &Tree<'_>, name: &str) -> Result<Option<Vec<u8>>> {
    let Some(entry) = tree.get_name(name) else { return Ok(None) };
    if entry.kind() != Some(ObjectType::Blob) {
        return Ok(None);
    }
    let blob = git.find_blob(entry.id()).context(format!("read {name}"))?;
    Ok(Some(blob.content().to_vec()))
}

/// The paths that differ between the two trees, the exempt root files aside. The root entries are
/// compared first (equal subtrees have equal ids), so a promotion costs no recursive diff.
fn differing_paths(git: &Repository, snapshot: &Tree<'_>, promoted: &Tree<'_>) -> Result<Vec<String>> {
    let root = |t: &Tree<'_>| -> BTreeSet<(Vec<u8>, Oid, i32)> {
        t.iter()
            .filter(|e| !EXEMPT.iter().any(|x| x.as_bytes() == e.name_bytes()))
            .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
            .collect()
    };
    if root(snapshot) == root(promoted) {
        return Ok(Vec::new());
    }
    let diff = git.diff_tree_to_tree(Some(snapshot), Some(promoted), None).context("compare trees")?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter_map(|d| {
            d.new_file().path().or_else(|| d.old_file().path()).map(|p| p.to_string_lossy().into_owned())
        })
        .filter(|p| !EXEMPT.contains(&p.as_str()))
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

fn list_some(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(MAX_REPORTED).map(String::as_str).collect();
    let more = if names.len() > MAX_REPORTED {
        format!(" and {} more", names.len() - MAX_REPORTED)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::record::{Action, Identity, SCHEMA};
    use crate::snapshot::record::{CodeRef, DataRef, ModelFile};
    use git2::Signature;

    fn tree(git: &Repository, files: &[(&str, &str)]) -> Oid {
        let mut b = git.treebuilder(None).unwrap();
        for (name, content) in files {
            let blob = git.blob(content.as_bytes()).unwrap();
            b.insert(name, blob, 0o100644).unwrap();
        }
        b.write().unwrap()
    }

    fn commit(git: &Repository, tree: Oid, parents: &[Oid], message: &str) -> Oid {
        let sig = Signature::new("t", "t@e", &git2::Time::new(0, 0)).unwrap();
        let tree = git.find_tree(tree).unwrap();
        let parents: Vec<Commit<'_>> = parents.iter().map(|p| git.find_commit(*p).unwrap()).collect();
        let refs: Vec<&Commit<'_>> = parents.iter().collect();
        git.commit(None, &sig, &sig, message, &tree, &refs).unwrap()
    }

    fn record(env: &str, tag: &str, snapshot: Oid) -> String {
        Deployment {
            schema: SCHEMA,
            environment: env.into(),
            action: Action::Promote,
            tag: tag.into(),
            snapshot: snapshot.to_string(),
            model: vec![ModelFile { path: "model/m.json".into(), sha256: "c".repeat(64), size: 3 }],
            data: DataRef::default(),
            code: CodeRef { commit: None },
            promoted_by: Identity { name: "Ada".into(), email: "ada@example.com".into() },
            promoted_at: "2026-11-30T12:00:00+00:00".into(),
            reason: None,
            previous: None,
            checks: vec![],
            forced: vec![],
        }
        .to_yaml()
        .unwrap()
    }

    /// The snapshot's files plus the two deployment files (and `extra`), as promote writes them.
    fn promoted_tree(git: &Repository, env: &str, tag: &str, snapshot: Oid, extra: &[(&str, &str)]) -> Oid {
        let yaml = record(env, tag, snapshot);
        let line = format!("{tag}\n");
        let mut files = vec![("model.bin", "weights"), (".gitattributes", "*.bin filter=lfs\n")];
        files.extend_from_slice(&[(DEPLOYMENT_FILE, yaml.as_str()), (TAG_FILE, line.as_str())]);
        files.extend_from_slice(extra);
        tree(git, &files)
    }

    fn no_tags(_: &str) -> Option<Oid> {
        None
    }

    fn problem(git: &Repository, id: Oid, env: &str) -> Option<String> {
        promotion_problem(git, &git.find_commit(id).unwrap(), env, &no_tags).unwrap()
    }

    #[test]
    fn promotion_and_init_commits_pass_anything_else_is_named_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init_bare(dir.path()).unwrap();
        let snapshot = commit(&git, tree(&git, &[("model.bin", "weights")]), &[], "train");
        let init =
            commit(&git, tree(&git, &[(INIT_README, "env branch\n")]), &[], "mlgit init: env/prod branch");
        assert_eq!(problem(&git, init, "prod"), None);
        let first =
            commit(&git, promoted_tree(&git, "prod", "model-v1", snapshot, &[]), &[init, snapshot], "p");
        assert_eq!(problem(&git, first, "prod"), None);
        let alone = commit(&git, promoted_tree(&git, "prod", "model-v1", snapshot, &[]), &[snapshot], "p");
        assert_eq!(problem(&git, alone, "prod"), None);

        let cases: Vec<(Oid, &str)> = vec![
            (
                commit(&git, tree(&git, &[(INIT_README, "x"), ("model.bin", "w")]), &[], "root"),
                "files other than README.md (model.bin)",
            ),
            (
                commit(&git, tree(&git, &[("model.bin", "weights")]), &[first], "edit"),
                "it has no DEPLOYMENT.yaml",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "staging", "model-v1", snapshot, &[]),
                    &[init, snapshot],
                    "p",
                ),
                "for environment 'staging', not 'prod'",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "prod", "model-v1", snapshot, &[]),
                    &[snapshot, init],
                    "swapped",
                ),
                "but its second parent is",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "prod", "model-v1", snapshot, &[("notes.txt", "hand-made")]),
                    &[init, snapshot],
                    "p",
                ),
                "(notes.txt): only DEPLOYMENT.yaml, DEPLOYED_TAG, .gitattributes may",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "prod", "model-v1", snapshot, &[(TAG_FILE, "model-v9\n")]),
                    &[init, snapshot],
                    "p",
                ),
                "its DEPLOYED_TAG holds \"model-v9\\n\"",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "prod", "model-v1", snapshot, &[(DEPLOYMENT_FILE, "schema: 1\n")]),
                    &[init, snapshot],
                    "p",
                ),
                "not a valid deployment record",
            ),
            (
                commit(
                    &git,
                    promoted_tree(&git, "prod", "model-v1", snapshot, &[]),
                    &[init, first, snapshot],
                    "octopus",
                ),
                "has 3 parents",
            ),
        ];
        for (id, want) in cases {
            let got = problem(&git, id, "prod").unwrap_or_else(|| panic!("{want}: accepted"));
            assert!(got.contains(want), "{got}\nwanted: {want}");
        }
        // A tag the server knows must name the deployed snapshot.
        let moved = |_: &str| Some(init);
        let got = promotion_problem(&git, &git.find_commit(first).unwrap(), "prod", &moved).unwrap().unwrap();
        assert!(got.contains("tag 'model-v1' names commit"), "{got}");
    }

    #[test]
    fn the_first_parent_line_must_reach_the_old_tip() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init_bare(dir.path()).unwrap();
        let i = Interrupt::new();
        let s1 = commit(&git, tree(&git, &[("model.bin", "weights")]), &[], "train 1");
        let s2 = commit(&git, tree(&git, &[("model.bin", "better")]), &[s1], "train 2");
        let init = commit(&git, tree(&git, &[(INIT_README, "env branch\n")]), &[], "init");
        let p1 = commit(&git, promoted_tree(&git, "prod", "v1", s1, &[]), &[init, s1], "promote v1");
        let mut t2 = promoted_tree(&git, "prod", "v2", s2, &[]);
        // s2's tree has other model bytes: rebuild the promoted tree around them.
        let yaml = record("prod", "v2", s2);
        t2 = {
            let _ = t2;
            tree(&git, &[("model.bin", "better"), (DEPLOYMENT_FILE, &yaml), (TAG_FILE, "v2\n")])
        };
        let p2 = commit(&git, t2, &[p1, s2], "promote v2");
        assert!(violations(&git, "prod", p1, p2, &no_tags, &i).unwrap().is_empty());
        assert!(violations(&git, "prod", Oid::zero(), p2, &no_tags, &i).unwrap().is_empty());

        // A first deployment without the old tip below it starts a second line: refused.
        let restart = commit(&git, t2, &[s2], "promote v2 again");
        let v = violations(&git, "prod", p1, restart, &no_tags, &i).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].reason.contains("starts a new deployment line"), "{v:?}");

        // A hand-made commit on top is named, with the valid promotions below it left alone.
        let edit = commit(&git, tree(&git, &[("model.bin", "patched")]), &[p2], "hotfix");
        let v = violations(&git, "prod", p1, edit, &no_tags, &i).unwrap();
        assert_eq!(v.iter().map(|v| v.commit).collect::<Vec<_>>(), vec![edit], "{v:?}");
        assert_eq!(v[0].subject, "hotfix");
    }
}
