//! Following `Derived-From: <kind> <commit>` trailers back through history: which dev commit a
//! stable commit's code came from, which split commit its data came from, and on to clean and raw.
//! Kept small so `mlgit lineage` (and `show`) can share it.

use git2::{Commit, Oid, Repository};
use serde::Serialize;

use super::trailers::{self, keys};
use crate::error::{Context, Error, Result};

/// How many first-parent commits are searched for a trailer before giving up (a bound, so a long
/// history without trailers cannot make a lookup slow).
pub const MAX_WALK: usize = 10_000;

/// The `Derived-From` links of one commit message: `(kind, commit)` pairs such as `("split", …)`,
/// where the kind is the branch (or branch kind) the commit was taken from. `Err` carries the
/// value of the first trailer that is not `<kind> <40-hex commit id>`: a link that cannot be read
/// is reported, never skipped, because skipping it would make an older link look like the answer.
pub fn derived_from(message: &str) -> std::result::Result<Vec<(String, Oid)>, String> {
    trailers::parse(message)
        .into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(keys::DERIVED_FROM))
        .map(|(_, v)| parse_link(&v).ok_or(v))
        .collect()
}

fn parse_link(value: &str) -> Option<(String, Oid)> {
    let mut parts = value.split_whitespace();
    let (kind, id) = (parts.next()?, parts.next()?);
    // Only a full id names one commit for good: an abbreviation can become ambiguous later.
    if parts.next().is_some() || id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((kind.to_string(), Oid::from_str(id).ok()?))
}

/// The `Derived-From` links of a commit; a malformed one is an error naming the commit and the
/// trailer.
pub fn links(commit: &Commit<'_>) -> Result<Vec<(String, Oid)>> {
    let message = String::from_utf8_lossy(commit.message_bytes());
    derived_from(&message).map_err(|value| {
        let id = commit.id();
        Error::invalid(format!(
            "commit {id} has a malformed {} trailer: \"{}: {value}\"",
            keys::DERIVED_FROM,
            keys::DERIVED_FROM
        ))
        .with_hint(format!(
            "a {key} trailer is `{key}: <branch> <full 40-hex commit id>`, as mlgit writes it; read the \
             message with `git log -1 --format=%B {short}`, and correct the trailer (`git commit --amend` \
             if the commit is not shared yet) or start from the commit it should name",
            key = keys::DERIVED_FROM,
            short = &id.to_string()[..7]
        ))
    })
}

/// The nearest `Derived-From: <kind> …` link on `start` or its first-parent ancestors.
pub fn find_source(git: &Repository, start: Oid, kind: &str) -> Result<Option<Oid>> {
    let mut next = Some(start);
    for _ in 0..MAX_WALK {
        let Some(id) = next else { break };
        let commit = git.find_commit(id).context(format!("read commit {id}"))?;
        if let Some((_, oid)) = links(&commit)?.into_iter().find(|(k, _)| k == kind) {
            return Ok(Some(oid));
        }
        next = commit.parent_id(0).ok();
    }
    Ok(None)
}

/// Where a stable commit's code and data came from, as far as trailers tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// The dev commit of the code.
    pub code: Option<String>,
    pub split: Option<String>,
    pub clean: Option<String>,
    pub raw: Option<String>,
}

/// Follow code → dev and data → split → clean → raw from `commit`.
pub fn lineage(git: &Repository, commit: Oid) -> Result<Lineage> {
    let code = find_source(git, commit, "dev")?;
    let split = find_source(git, commit, "split")?;
    let clean = match split {
        Some(s) if git.find_commit(s).is_ok() => find_source(git, s, "clean")?,
        _ => None,
    };
    let raw = match clean {
        Some(c) if git.find_commit(c).is_ok() => find_source(git, c, "raw")?,
        _ => None,
    };
    let hex = |o: Option<Oid>| o.map(|o| o.to_string());
    Ok(Lineage { code: hex(code), split: hex(split), clean: hex(clean), raw: hex(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::trailers::Message;

    #[test]
    fn reads_kind_and_commit_and_reports_malformed_values() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let good =
            Message::new("s").trailer(keys::DERIVED_FROM, format!("split {a}")).trailer(keys::SOURCE, "/x");
        assert_eq!(derived_from(&good.render()), Ok(vec![("split".to_string(), Oid::from_str(a).unwrap())]));
        for bad in ["clean not-a-sha", "clean", "clean 0123456", a, &format!("raw {a} extra")] {
            let msg = good.clone().trailer(keys::DERIVED_FROM, bad).render();
            assert_eq!(derived_from(&msg), Err(bad.to_string()), "{bad}");
        }
    }

    #[test]
    fn walks_first_parents_to_the_nearest_link() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let tree = git.find_tree(git.treebuilder(None).unwrap().write().unwrap()).unwrap();
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(0, 0)).unwrap();
        let raw = git.commit(None, &sig, &sig, "raw\n", &tree, &[]).unwrap();
        let m1 = Message::new("clean").trailer(keys::DERIVED_FROM, format!("raw {raw}")).render();
        let c1 = git.commit(None, &sig, &sig, &m1, &tree, &[]).unwrap();
        let m2 = Message::new("split").trailer(keys::DERIVED_FROM, format!("clean {c1}")).render();
        let s1 = git.commit(None, &sig, &sig, &m2, &tree, &[]).unwrap();
        let m3 = Message::new("stable").trailer(keys::DERIVED_FROM, format!("split {s1}")).render();
        let st = git.commit(None, &sig, &sig, &m3, &tree, &[]).unwrap();
        let later =
            git.commit(None, &sig, &sig, "snapshot\n", &tree, &[&git.find_commit(st).unwrap()]).unwrap();
        let l = lineage(&git, later).unwrap();
        assert_eq!(l.split, Some(s1.to_string()));
        assert_eq!(l.clean, Some(c1.to_string()));
        assert_eq!(l.raw, Some(raw.to_string()));
        assert_eq!(l.code, None);
    }
}
