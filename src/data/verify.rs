//! `mlgit verify`: check that refs are complete and that git-lfs will read them as mlgit meant —
//! every LFS object they need is in the local store and hashes to its name, every pointer is
//! byte-canonical, and the root `.gitattributes` marks exactly the pointer paths (the invariant).
//! With `repair`, corrupt or missing objects are rebuilt from good copies ([`repair`]).
//! For an append-only branch (`raw`, `monitoring/*`) it also checks the history: every commit
//! that changed or removed a path one of its parents had (someone edited `raw` with plain git).

pub mod repair;

use std::collections::HashMap;
use std::time::Instant;

use git2::{FileMode, ObjectType, Repository};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::remote::append_only::{range_violations, Violation};
use crate::repo::tree::{entry_at, list_files};
use crate::repo::Repo;
use crate::store::attributes::{self, LfsAttributes};
use crate::store::pointer::{Parsed, MAX_POINTER_SIZE};
use crate::store::{ObjectState, Pointer};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Branches, tags or commits; empty means HEAD (unless `all`).
    pub refs: Vec<String>,
    /// Every local branch and tag.
    pub all: bool,
    /// Rewrite corrupt or missing objects from files whose bytes hash right.
    pub repair: bool,
    /// Checked between objects: a set flag stops the run.
    pub interrupt: Interrupt,
}

/// What is wrong with one path of one ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The LFS object is not in the local store.
    Missing,
    /// The LFS object's bytes do not hash to its name or have the wrong size.
    Corrupt,
    /// The pointer is valid but not byte-canonical (`git lfs fsck` reports nonCanonicalPointer).
    NonCanonicalPointer,
    /// A pointer that `.gitattributes` does not mark `filter=lfs` (checked out as pointer text).
    PointerNotMarked,
    /// A plain file that `.gitattributes` marks `filter=lfs` (git-lfs reports unexpectedGitObject).
    MarkedNotPointer,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "ref")]
    pub rev: String,
    pub path: String,
    pub problem: ProblemKind,
    /// The LFS object id, for object problems.
    pub oid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckedRef {
    #[serde(rename = "ref")]
    pub rev: String,
    pub commit: String,
    pub files: u64,
    pub lfs_files: u64,
}

/// A commit of an append-only branch that changed or removed committed paths.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryProblem {
    pub branch: String,
    #[serde(flatten)]
    pub violation: Violation,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyOutcome {
    pub ok: bool,
    pub refs: Vec<CheckedRef>,
    /// Distinct LFS objects re-hashed.
    pub objects: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// With `repair`: the objects rewritten from a good copy.
    pub repaired: Vec<repair::Repaired>,
    /// With `repair`: the bad objects no candidate could rebuild.
    pub unrepaired: Vec<repair::Unrepaired>,
    /// The append-only branches among the refs, whose whole history was checked.
    pub append_only_checked: Vec<String>,
    /// Commits of those branches that changed or removed a path (oldest first per branch).
    pub append_only: Vec<HistoryProblem>,
    pub seconds: f64,
}

/// Verify the refs of `opts`. Problems are reported in the outcome (not as an error).
pub fn verify(repo: &Repo, opts: &VerifyOptions, progress: &dyn Progress) -> Result<VerifyOutcome> {
    let start = Instant::now();
    let git = repo.git();
    let revs = refs_to_check(git, opts)?;
    let odb = git.odb().context("open the object database")?;
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    // Each distinct object once, with the first (ref, path) that needs it for the report.
    let mut objects: HashMap<Pointer, Vec<(usize, String)>> = HashMap::new();
    for (i, rev) in revs.iter().enumerate() {
        let commit = repo.resolve(rev)?;
        let tree = commit.tree_id();
        let attrs = match entry_at(git, tree, attributes::FILE)? {
            Some(e) if e.mode != FileMode::Tree => {
                let blob = git.find_blob(e.oid).context("read .gitattributes")?;
                LfsAttributes::parse(&String::from_utf8_lossy(blob.content()))
            }
            _ => LfsAttributes::default(),
        };
        let files = list_files(git, tree)?;
        let mut lfs_files = 0;
        for f in &files {
            if f.path == attributes::FILE || f.mode == FileMode::Link {
                continue;
            }
            let (size, kind) = odb.read_header(f.oid).context(format!("read {rev}:{}", f.path))?;
            let parsed = if kind == ObjectType::Blob && size <= MAX_POINTER_SIZE {
                let blob = git.find_blob(f.oid).context(format!("read {rev}:{}", f.path))?;
                Pointer::parse(blob.content())
            } else {
                Parsed::NotPointer
            };
            let marked = attrs.is_lfs(&f.path);
            let mut report = |problem, oid: Option<String>| {
                problems.push(Problem { rev: rev.clone(), path: f.path.clone(), problem, oid })
            };
            match parsed {
                Parsed::Pointer { pointer, canonical } => {
                    lfs_files += 1;
                    if !canonical {
                        report(ProblemKind::NonCanonicalPointer, Some(pointer.oid.to_hex()));
                    }
                    if !marked {
                        report(ProblemKind::PointerNotMarked, Some(pointer.oid.to_hex()));
                    }
                    objects.entry(pointer).or_default().push((i, f.path.clone()));
                }
                Parsed::NotPointer => {
                    // git-lfs keeps empty files as the empty blob, so a marked empty file is fine.
                    if marked && size > 0 {
                        report(ProblemKind::MarkedNotPointer, None);
                    }
                }
            }
        }
        checked.push(CheckedRef {
            rev: rev.clone(),
            commit: commit.id().to_string(),
            files: files.iter().filter(|f| f.path != attributes::FILE).count() as u64,
            lfs_files,
        });
    }

    let store = repo.store();
    let list: Vec<(&Pointer, &Vec<(usize, String)>)> = objects.iter().collect();
    let bytes: u64 = list.iter().map(|(p, _)| p.size).sum();
    progress.begin("verifying", list.len() as u64, bytes);
    let states: Vec<ObjectState> = list
        .par_iter()
        .map(|(p, _)| {
            opts.interrupt.check("verify")?;
            let s = store.check(p);
            progress.advance(1, p.size);
            s
        })
        .collect::<Result<_>>()?;
    progress.end();
    let (repaired, unrepaired) = if opts.repair {
        let bad: Vec<(Pointer, Vec<String>, Vec<String>)> = list
            .iter()
            .zip(&states)
            .filter(|(_, s)| **s != ObjectState::Ok)
            .map(|((p, users), _)| {
                let paths = users.iter().map(|(_, path)| path.clone()).collect();
                let needed_by = users.iter().map(|(i, path)| format!("{}:{path}", revs[*i])).collect();
                (**p, paths, needed_by)
            })
            .collect();
        repair::repair(git, store, &revs, &bad, &opts.interrupt)?
    } else {
        (Vec::new(), Vec::new())
    };
    for ((pointer, users), state) in list.iter().zip(states) {
        let problem = match state {
            ObjectState::Ok => continue,
            _ if repaired.iter().any(|r| r.oid == pointer.oid.to_hex()) => continue,
            ObjectState::Missing => ProblemKind::Missing,
            ObjectState::Corrupt => ProblemKind::Corrupt,
        };
        for (i, path) in users.iter() {
            problems.push(Problem {
                rev: revs[*i].clone(),
                path: path.clone(),
                problem,
                oid: Some(pointer.oid.to_hex()),
            });
        }
    }
    problems.sort_by(|a, b| (&a.rev, &a.path).cmp(&(&b.rev, &b.path)));
    let (append_only_checked, append_only) = check_histories(repo, &revs, &opts.interrupt)?;
    Ok(VerifyOutcome {
        ok: problems.is_empty() && append_only.is_empty(),
        refs: checked,
        objects: list.len() as u64,
        bytes,
        problems,
        repaired,
        unrepaired,
        append_only_checked,
        append_only,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The local branch a rev names (`raw`, `refs/heads/raw`, or `HEAD` on a branch), if any.
fn branch_named(git: &Repository, rev: &str) -> Option<String> {
    let full = if rev == "HEAD" {
        git.find_reference("HEAD").ok()?.symbolic_target()?.to_string()
    } else if rev.starts_with("refs/heads/") {
        rev.to_string()
    } else {
        format!("refs/heads/{rev}")
    };
    git.find_reference(&full).ok()?;
    full.strip_prefix("refs/heads/").map(str::to_string)
}

/// The whole history of every append-only branch among `revs`: the commits that broke the rule.
fn check_histories(
    repo: &Repo,
    revs: &[String],
    interrupt: &Interrupt,
) -> Result<(Vec<String>, Vec<HistoryProblem>)> {
    let git = repo.git();
    let mut checked = Vec::new();
    let mut found = Vec::new();
    for rev in revs {
        let Some(branch) = branch_named(git, rev) else { continue };
        if !repo.config().is_append_only(&branch) || checked.contains(&branch) {
            continue;
        }
        let Some(tip) = repo.branch_tip(&branch)? else { continue };
        for violation in range_violations(git, tip, &[], interrupt)? {
            found.push(HistoryProblem { branch: branch.clone(), violation });
        }
        checked.push(branch);
    }
    Ok((checked, found))
}

fn refs_to_check(git: &Repository, opts: &VerifyOptions) -> Result<Vec<String>> {
    let mut revs = opts.refs.clone();
    if opts.all {
        let refs = git.references().context("list refs")?;
        for r in refs.flatten() {
            let Some(name) = r.name() else { continue };
            if let Some(short) = name.strip_prefix("refs/heads/").or_else(|| name.strip_prefix("refs/tags/"))
            {
                // Only refs that lead to a commit.
                if r.peel_to_commit().is_ok() {
                    revs.push(short.to_string());
                }
            }
        }
    }
    if revs.is_empty() {
        revs.push("HEAD".to_string());
    }
    let mut seen = std::collections::HashSet::new();
    revs.retain(|r| seen.insert(r.clone()));
    if revs.is_empty() {
        return Err(Error::not_found("nothing to verify: the repository has no branches or tags"));
    }
    Ok(revs)
}
