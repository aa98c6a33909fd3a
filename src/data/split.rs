//! `mlgit split`: derive the `split` branch from a `clean` commit. Each file under `data/` goes to
//! `data/train/`, `data/validation/` or `data/test/` (its path below `data/` kept) by a hash of the
//! seed and its key, so the assignment of a file depends on nothing else: everybody gets the same
//! split, and a file never changes split when data is added. No content is read and nothing is
//! re-stored: the split tree reuses clean's blob and pointer ids.
//!
//! The hash (documented in docs/split.md, and fixed forever since changing it would move files):
//! `h = first 8 bytes, big-endian, of sha256("<seed>:<key>")`; with `u = h / 2^64` in [0, 1) and
//! cumulative ratios `c1 = train/100`, `c2 = (train + validation)/100`, a file goes to train when
//! `u < c1`, to validation when `u < c2`, else to test (computed exactly in integers).

use std::collections::BTreeMap;
use std::time::Instant;

use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::flow::{self, keys, DATA_DIR};
use crate::error::{Context, Error, Result};
use crate::progress::Progress;
use crate::repo::trailers::{self, Message};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::Repo;

/// The record of a split in its tree.
pub const SPLIT_FILE: &str = "split.yaml";

/// The splits, in bucket order.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

#[derive(Debug, Clone, Default)]
pub struct SplitOptions {
    pub from: Option<String>,
    pub to: Option<String>,
    /// The clean commit to split (default: the tip of `from`).
    pub rev: Option<String>,
    /// train, validation, test percentages (default: `split.ratios`).
    pub ratios: Option<Vec<u32>>,
    pub seed: Option<u64>,
    /// A regex whose first capture group is the group key (default: `split.group_by`).
    pub group_by: Option<String>,
}

/// What `split.yaml` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitRecord {
    pub schema: u32,
    pub source: SourceRef,
    pub ratios: Vec<u32>,
    pub seed: u64,
    pub group_by: Option<String>,
    pub hash: String,
    pub counts: BTreeMap<String, u64>,
    /// Files the group regex did not match (placed by their own path), with `group_by` only.
    pub ungrouped: u64,
    pub groups: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    pub branch: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitOutcome {
    pub from: String,
    pub to: String,
    pub clean_commit: String,
    pub commit: String,
    pub previous: Option<String>,
    pub unchanged: bool,
    pub tree: String,
    pub files: u64,
    pub ratios: Vec<u32>,
    pub seed: u64,
    pub group_by: Option<String>,
    pub counts: BTreeMap<String, u64>,
    pub groups: u64,
    pub ungrouped: u64,
    /// Up to 10 paths the group regex did not match.
    pub ungrouped_examples: Vec<String>,
    pub seconds: f64,
}

/// The split index (0 train, 1 validation, 2 test) of `key` under `seed` and `ratios`.
pub fn assign(seed: u64, key: &str, ratios: &[u32]) -> usize {
    let digest = Sha256::digest(format!("{seed}:{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first) as u128;
    // u < c/100  ⇔  h * 100 < c * 2^64, exact in u128.
    let mut cumulative = 0u128;
    for (i, r) in ratios.iter().enumerate().take(ratios.len().saturating_sub(1)) {
        cumulative += *r as u128;
        if h * 100 < cumulative << 64 {
            return i;
        }
    }
    ratios.len().saturating_sub(1)
}

/// Parse and check `--ratios` text like `80,10,10`.
pub fn parse_ratios(text: &str) -> Result<Vec<u32>> {
    let bad = |why: String| {
        Err(Error::invalid(format!("--ratios {text}: {why}"))
            .with_hint("give three positive whole percentages for train, validation and test that sum to 100, e.g. --ratios 80,10,10"))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        match part.parse::<i64>() {
            Ok(n) if n <= 0 => return bad(format!("'{part}' is not a positive part")),
            Ok(n) if n > 100 => return bad(format!("'{part}' is more than 100")),
            Ok(n) => out.push(n as u32),
            Err(_) => return bad(format!("'{part}' is not a whole number")),
        }
    }
    check_ratios(&out).map_err(|e| e.with_hint("e.g. --ratios 80,10,10"))?;
    Ok(out)
}

fn check_ratios(r: &[u32]) -> Result<()> {
    if r.len() != 3 {
        return Err(Error::invalid(format!(
            "ratios {r:?}: need three parts (train, validation, test), got {}",
            r.len()
        )));
    }
    if r.contains(&0) {
        return Err(Error::invalid(format!("ratios {r:?}: every part must be positive")));
    }
    let sum: u32 = r.iter().sum();
    if sum != 100 {
        return Err(Error::invalid(format!("ratios {r:?} sum to {sum}, not 100")));
    }
    Ok(())
}

/// Run `mlgit split`.
pub fn split(repo: &Repo, opts: &SplitOptions, progress: &dyn Progress) -> Result<SplitOutcome> {
    let start = Instant::now();
    let config = repo.config();
    let git = repo.git();
    let from = opts.from.clone().unwrap_or_else(|| config.branches.clean.clone());
    let to = opts.to.clone().unwrap_or_else(|| config.branches.split.clone());
    let ratios = opts.ratios.clone().unwrap_or_else(|| config.split.ratios.clone());
    check_ratios(&ratios)?;
    let seed = opts.seed.unwrap_or(config.split.seed);
    let group_by = opts.group_by.clone().or_else(|| config.split.group_by.clone());
    let regex = match &group_by {
        None => None,
        Some(text) => {
            let re = Regex::new(text).map_err(|e| {
                Error::invalid(format!("--group-by {text:?} is not a valid regular expression"))
                    .with_source(e)
                    .with_hint(
                        "use Rust regex syntax (https://docs.rs/regex), e.g. --group-by '^patient-(\\d+)/'",
                    )
            })?;
            if re.captures_len() < 2 {
                return Err(Error::invalid(format!("--group-by {text:?} has no capture group")).with_hint(
                    "put the group key in parentheses, e.g. --group-by '^([^/]+)/' (the first folder)",
                ));
            }
            Some(re)
        }
    };
    flow::require_data_branch(repo, &from, "--from")?;
    flow::require_data_branch(repo, &to, "--to")?;
    if from == to {
        return Err(Error::invalid(format!("--from and --to are both '{from}'"))
            .with_hint("split reads one data branch (clean) and writes another (split)"));
    }
    if config.is_append_only(&to) {
        return Err(Error::invalid(format!("--to {to}: '{to}' is append-only; split never writes there"))
            .with_hint("write the split to the split branch (the default)"));
    }
    repo.require_branch(&to)?;
    // Refuse a dirty checkout of the target before any work (checked again just before writing).
    crate::repo::transaction::refuse_dirty_checkout(repo, &to, "mlgit split")?;
    let clean = flow::source_commit(repo, &from, opts.rev.as_deref())?;
    let clean_id = clean.id();
    let files = flow::data_files(git, clean.tree_id())?;
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "'{from}' at {} has no files under {DATA_DIR}/: nothing to split",
            &clean_id.to_string()[..7]
        ))
        .with_hint("derive clean data first: `mlgit clean`"));
    }

    progress.begin("split", files.len() as u64, 0);
    let mut edits = TreeEdits::new();
    let mut counts: BTreeMap<String, u64> = SPLITS.iter().map(|s| (s.to_string(), 0)).collect();
    let mut ungrouped = Vec::new();
    let mut groups = std::collections::HashSet::new();
    for f in &files {
        // The key: the first capture group of --group-by, else (or when it does not match) the path.
        let key = match regex.as_ref().map(|re| re.captures(&f.rel).and_then(|c| c.get(1))) {
            Some(Some(m)) => {
                groups.insert(m.as_str().to_string());
                m.as_str()
            }
            Some(None) => {
                ungrouped.push(f.rel.clone());
                f.rel.as_str()
            }
            None => f.rel.as_str(),
        };
        let which = SPLITS[assign(seed, key, &ratios)];
        *counts.entry(which.to_string()).or_insert(0) += 1;
        edits
            .set(&format!("{DATA_DIR}/{which}/{}", f.rel), Entry { oid: f.entry.oid, mode: f.entry.mode })?;
        progress.advance(1, 0);
    }
    progress.end();
    if let (Some(text), true) = (&group_by, groups.is_empty()) {
        return Err(Error::invalid(format!(
            "--group-by {text:?} matches none of the {} file(s) under {DATA_DIR}/ of '{from}'",
            files.len()
        ))
        .with_hint(format!(
            "the regex is applied to the path below {DATA_DIR}/ (e.g. '{}'); its first capture group is the group key",
            files[0].rel
        )));
    }
    let data_tree = edits.write(git, None)?;
    let data_tree = crate::repo::tree::entry_at(git, data_tree, DATA_DIR)?
        .map(|e| e.oid)
        .ok_or_else(|| Error::invalid("the split has no data"))?;

    let record = SplitRecord {
        schema: 1,
        source: SourceRef { branch: from.clone(), commit: clean_id.to_string() },
        ratios: ratios.clone(),
        seed,
        group_by: group_by.clone(),
        hash: "sha256(\"<seed>:<key>\")[0..8] as big-endian u64 / 2^64, cumulative buckets".into(),
        counts: counts.clone(),
        ungrouped: ungrouped.len() as u64,
        groups: groups.len() as u64,
    };
    let yaml = serde_yaml::to_string(&record)
        .map_err(|e| Error::invalid("cannot write split.yaml").with_source(e))?;
    let yaml = format!("# Written by `mlgit split`; see docs/split.md. Do not edit.\n{yaml}");
    let yaml_blob = git.blob(yaml.as_bytes()).context("write split.yaml")?;

    let short = &clean_id.to_string()[..7];
    let parts: Vec<String> = SPLITS.iter().map(|s| format!("{} {s}", counts[*s])).collect();
    let mut body = format!(
        "Ratios {}/{}/{}, seed {seed}{}.\n",
        ratios[0],
        ratios[1],
        ratios[2],
        group_by
            .as_ref()
            .map(|g| format!(", grouped by {g:?} ({} groups)", groups.len()))
            .unwrap_or_default()
    );
    if !ungrouped.is_empty() {
        body.push_str(&format!(
            "{} file(s) matched no group and were placed by their path.\n",
            ungrouped.len()
        ));
    }
    let mut message = Message::new(format!("Split {from} {short}: {}", parts.join(", ")))
        .body(body)
        .trailer(trailers::keys::DERIVED_FROM, format!("{from} {clean_id}"))
        .trailer(keys::SPLIT_RATIOS, format!("{},{},{}", ratios[0], ratios[1], ratios[2]))
        .trailer(keys::SPLIT_SEED, seed);
    if let Some(g) = &group_by {
        message = message.trailer(keys::SPLIT_GROUP_BY, g);
    }
    let message = message.render();

    let known = flow::pointer_map(&files);
    let derived = flow::commit_derived(repo, &to, clean_id, &message, &known, |base| {
        let mut e = TreeEdits::new();
        e.graft(DATA_DIR, data_tree)?;
        e.set(SPLIT_FILE, Entry::blob(yaml_blob))?;
        e.write(git, base)
    })?;
    Ok(SplitOutcome {
        from,
        to,
        clean_commit: clean_id.to_string(),
        commit: derived.commit.to_string(),
        previous: derived.previous.map(|p| p.to_string()),
        unchanged: derived.unchanged,
        tree: derived.tree.to_string(),
        files: files.len() as u64,
        ratios,
        seed,
        group_by,
        counts,
        groups: groups.len() as u64,
        ungrouped: ungrouped.len() as u64,
        ungrouped_examples: ungrouped.into_iter().take(10).collect(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The split a path of a split tree belongs to (`data/train/x` → `train`).
pub fn split_of(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("data/")?;
    let first = rest.split('/').next()?;
    SPLITS.iter().find(|s| **s == first).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_the_documented_hash() {
        // sha256("42:a.csv") computed independently: `printf '42:a.csv' | sha256sum`.
        let d = Sha256::digest(b"42:a.csv");
        let h = u64::from_be_bytes(d[..8].try_into().unwrap());
        let u = h as f64 / 2f64.powi(64);
        let expected = if u < 0.8 {
            0
        } else if u < 0.9 {
            1
        } else {
            2
        };
        assert_eq!(assign(42, "a.csv", &[80, 10, 10]), expected);
        assert_eq!(assign(42, "a.csv", &[80, 10, 10]), assign(42, "a.csv", &[80, 10, 10]));
    }

    #[test]
    fn ratios_are_respected_and_seed_matters() {
        let n = 20_000;
        let mut counts = [0usize; 3];
        let mut moved = 0;
        for i in 0..n {
            let k = format!("img/{i}.png");
            let a = assign(7, &k, &[70, 20, 10]);
            counts[a] += 1;
            if assign(8, &k, &[70, 20, 10]) != a {
                moved += 1;
            }
        }
        let share = |c: usize| c as f64 / n as f64;
        assert!((share(counts[0]) - 0.7).abs() < 0.02, "{counts:?}");
        assert!((share(counts[1]) - 0.2).abs() < 0.02, "{counts:?}");
        assert!((share(counts[2]) - 0.1).abs() < 0.02, "{counts:?}");
        assert!(moved > n / 4, "another seed gives another split");
    }

    #[test]
    fn ratio_text_is_checked() {
        assert_eq!(parse_ratios("70, 20,10").unwrap(), vec![70, 20, 10]);
        for (text, why) in [
            ("80,10,5", "sum to 95"),
            ("80,-10,30", "not a positive part"),
            ("90,10,0", "not a positive part"),
            ("80,20", "three parts"),
            ("a,b,c", "whole number"),
        ] {
            let e = parse_ratios(text).unwrap_err();
            assert!(e.message().contains(why), "{text}: {}", e.message());
        }
    }

    #[test]
    fn split_of_reads_the_layout() {
        assert_eq!(split_of("data/train/a/b.png"), Some("train"));
        assert_eq!(split_of("data/validation/x"), Some("validation"));
        assert_eq!(split_of("data/other/x"), None);
        assert_eq!(split_of("split.yaml"), None);
    }
}
