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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::flow::{self, keys, DataFile, DATA_DIR};
use super::split_settings::{self, Settings};
use super::split_tables;
use crate::error::{Context, Error, Result};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::repo::trailers::{self, Message};
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::Repo;
use crate::table::Format;

/// The record of a split in its tree.
pub const SPLIT_FILE: &str = "split.yaml";

/// The profiles of a split's tables, per split, in its tree (also on clean: one per table).
pub const PROFILE_FILE: &str = "profile.json";

/// The splits, in bucket order.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

#[derive(Debug, Clone, Default)]
pub struct SplitOptions {
    pub from: Option<String>,
    pub to: Option<String>,
    /// The clean commit to split (default: the tip of `from`).
    pub rev: Option<String>,
    /// train, validation, test percentages (default: recorded, else `split.ratios`).
    pub ratios: Option<Vec<u32>>,
    pub seed: Option<u64>,
    /// A regex whose first capture group is the group key of a file (default: `split.group_by`).
    pub group_by: Option<String>,
    /// Tables: id column(s) (default: `split.key`).
    pub key: Option<Vec<String>>,
    /// Tables: a group column (default: `split.group_column`).
    pub group_column: Option<String>,
    /// Tables: the label column (default: `split.label`).
    pub label: Option<String>,
    /// Allow settings other than the recorded ones (records and files may change split).
    pub reshuffle: bool,
    pub interrupt: Interrupt,
}

/// What `split.yaml` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitRecord {
    pub schema: u32,
    pub source: SourceRef,
    #[serde(flatten)]
    pub settings: Settings,
    pub hash: String,
    /// Files placed whole (not tables) per split.
    pub counts: BTreeMap<String, u64>,
    /// Table records per split.
    pub records: BTreeMap<String, u64>,
    /// Files the group regex did not match (placed by their own path), with `group_by` only.
    pub ungrouped: u64,
    pub groups: u64,
    pub tables: Vec<TableRecord>,
}

/// One table of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    /// Path below `data/`.
    pub path: String,
    /// The clean blob it was split from (a table whose blob is unchanged is not read again).
    pub source: String,
    pub rows: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub groups: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// Files placed whole (not tables).
    pub files: u64,
    pub ratios: Vec<u32>,
    pub seed: u64,
    pub group_by: Option<String>,
    pub key: Option<Vec<String>>,
    pub group_column: Option<String>,
    pub label: Option<String>,
    /// Files placed whole, per split.
    pub counts: BTreeMap<String, u64>,
    /// Tables split record by record.
    pub tables: u64,
    /// Tables read this time (the others were unchanged since the previous split).
    pub tables_read: u64,
    /// Table records per split.
    pub records: BTreeMap<String, u64>,
    /// With a label column: per split, label value → records.
    pub labels: BTreeMap<String, BTreeMap<String, u64>>,
    pub groups: u64,
    pub ungrouped: u64,
    /// Up to 10 paths the group regex did not match.
    pub ungrouped_examples: Vec<String>,
    /// With `--reshuffle`: records and files whose split changed.
    pub moved_records: u64,
    pub moved_files: u64,
    pub reshuffled: bool,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// The split index (0 train, 1 validation, 2 test) of `key` under `seed` and `ratios`.
pub fn assign(seed: u64, key: &str, ratios: &[u32]) -> usize {
    assign_bytes(seed, key.as_bytes(), ratios)
}

/// [`assign`] of a key given as bytes (a record's key need not be valid UTF-8 text).
pub fn assign_bytes(seed: u64, key: &[u8], ratios: &[u32]) -> usize {
    let mut hasher = Sha256::new();
    hasher.update(format!("{seed}:").as_bytes());
    hasher.update(key);
    let digest = hasher.finalize();
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
    let (settings, before) = split_settings::resolve(repo, &to, opts)?;
    check_ratios(&settings.ratios)?;
    let regex = compile_group_by(settings.group_by.as_deref())?;
    let old_regex = match &before {
        Some(b) => compile_group_by(b.group_by.as_deref()).ok().flatten(),
        None => None,
    };
    // Refuse a dirty checkout of the target before any work (checked again just before writing).
    crate::repo::transaction::refuse_dirty_checkout(repo, &to, "mlgit split")?;
    let clean = flow::source_commit(repo, &from, opts.rev.as_deref())?;
    let clean_id = clean.id();
    let all = flow::data_files(git, clean.tree_id())?;
    if all.is_empty() {
        return Err(Error::invalid(format!(
            "'{from}' at {} has no files under {DATA_DIR}/: nothing to split",
            &clean_id.to_string()[..7]
        ))
        .with_hint("derive clean data first: `mlgit clean`"));
    }
    let extensions = config.tables.extensions();
    let (tables, files): (Vec<&DataFile>, Vec<&DataFile>) = all
        .iter()
        .partition(|f| f.entry.mode != git2::FileMode::Link && Format::of(&f.rel, &extensions).is_some());

    // Files: placed whole, by path or group.
    progress.begin("split", all.len() as u64, 0);
    let mut edits = TreeEdits::new();
    let mut counts: BTreeMap<String, u64> = SPLITS.iter().map(|s| (s.to_string(), 0)).collect();
    let mut ungrouped = Vec::new();
    let mut groups = std::collections::HashSet::new();
    let mut moved_files = 0u64;
    for f in &files {
        let key = file_key(regex.as_ref(), &f.rel, Some(&mut groups), Some(&mut ungrouped));
        let which = assign(settings.seed, key, &settings.ratios);
        if let Some(b) = &before {
            let old = file_key(old_regex.as_ref(), &f.rel, None, None);
            if assign(b.seed, old, &b.ratios) != which {
                moved_files += 1;
            }
        }
        *counts.entry(SPLITS[which].to_string()).or_insert(0) += 1;
        edits.set(
            &format!("{DATA_DIR}/{}/{}", SPLITS[which], f.rel),
            Entry { oid: f.entry.oid, mode: f.entry.mode },
        )?;
        progress.advance(1, 0);
    }
    if let (Some(text), true, false) = (&settings.group_by, groups.is_empty(), files.is_empty()) {
        return Err(Error::invalid(format!(
            "--group-by {text:?} matches none of the {} file(s) under {DATA_DIR}/ of '{from}'",
            files.len()
        ))
        .with_hint(format!(
            "the regex is applied to the path below {DATA_DIR}/ (e.g. '{}'); its first capture group is the group key",
            files[0].rel
        )));
    }

    // Tables: record by record (a table unchanged since the previous split is not read again).
    let mut known = flow::pointer_map(&all);
    let tables_out = split_tables::split_all(
        repo,
        &from,
        &to,
        &tables,
        &settings,
        before.as_ref(),
        &mut known,
        &opts.interrupt,
        progress,
    )?;
    progress.end();
    for t in &tables_out.tables {
        for (i, name) in SPLITS.iter().enumerate() {
            edits.set(&format!("{DATA_DIR}/{name}/{}", t.record.path), t.entries[i])?;
        }
    }
    let data_tree = edits.write(git, None)?;
    let data_tree = crate::repo::tree::entry_at(git, data_tree, DATA_DIR)?
        .map(|e| e.oid)
        .ok_or_else(|| Error::invalid("the split has no data"))?;

    let mut records: BTreeMap<String, u64> = SPLITS.iter().map(|s| (s.to_string(), 0)).collect();
    let mut labels: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut table_groups = 0;
    for t in &tables_out.tables {
        for (name, n) in &t.record.rows {
            *records.entry(name.clone()).or_insert(0) += n;
        }
        for (name, by) in &t.record.labels {
            let into = labels.entry(name.clone()).or_default();
            for (value, n) in by {
                *into.entry(value.clone()).or_insert(0) += n;
            }
        }
        table_groups += t.record.groups;
    }
    let warnings = warnings(&files, &counts, &tables, &records, &labels, settings.label.as_deref());

    let record = SplitRecord {
        schema: 2,
        source: SourceRef { branch: from.clone(), commit: clean_id.to_string() },
        settings: settings.clone(),
        hash: "sha256(\"<seed>:<key>\")[0..8] as big-endian u64 / 2^64, cumulative buckets".into(),
        counts: counts.clone(),
        records: records.clone(),
        ungrouped: ungrouped.len() as u64,
        groups: groups.len() as u64 + table_groups,
        tables: tables_out.tables.iter().map(|t| t.record.clone()).collect(),
    };
    let yaml = serde_yaml::to_string(&record)
        .map_err(|e| Error::invalid("cannot write split.yaml").with_source(e))?;
    let yaml = format!("# Written by `mlgit split`; see docs/split.md. Do not edit.\n{yaml}");
    let yaml_blob = git.blob(yaml.as_bytes()).context("write split.yaml")?;
    let profile_blob = if tables_out.tables.is_empty() {
        None
    } else {
        Some(git.blob(tables_out.profile_json()?.as_bytes()).context("write profile.json")?)
    };

    let message = commit_message(
        &from,
        clean_id,
        &settings,
        &counts,
        &records,
        &files,
        &tables,
        groups.len(),
        ungrouped.len(),
    );
    let derived = flow::commit_derived(repo, &to, clean_id, &message, &known, |base| {
        let mut e = TreeEdits::new();
        e.graft(DATA_DIR, data_tree)?;
        e.set(SPLIT_FILE, Entry::blob(yaml_blob))?;
        match profile_blob {
            Some(b) => e.set(PROFILE_FILE, Entry::blob(b))?,
            None => e.remove(PROFILE_FILE)?,
        }
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
        ratios: settings.ratios.clone(),
        seed: settings.seed,
        group_by: settings.group_by.clone(),
        key: settings.key.clone(),
        group_column: settings.group_column.clone(),
        label: settings.label.clone(),
        counts,
        tables: tables.len() as u64,
        tables_read: tables_out.read,
        records,
        labels,
        groups: groups.len() as u64 + table_groups,
        ungrouped: ungrouped.len() as u64,
        ungrouped_examples: ungrouped.into_iter().take(10).collect(),
        moved_records: tables_out.moved,
        moved_files,
        reshuffled: before.is_some(),
        warnings,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn compile_group_by(text: Option<&str>) -> Result<Option<Regex>> {
    let Some(text) = text else { return Ok(None) };
    let re = Regex::new(text).map_err(|e| {
        Error::invalid(format!("--group-by {text:?} is not a valid regular expression"))
            .with_source(e)
            .with_hint("use Rust regex syntax (https://docs.rs/regex), e.g. --group-by '^patient-(\\d+)/'")
    })?;
    if re.captures_len() < 2 {
        return Err(Error::invalid(format!("--group-by {text:?} has no capture group"))
            .with_hint("put the group key in parentheses, e.g. --group-by '^([^/]+)/' (the first folder)"));
    }
    Ok(Some(re))
}

/// A file's key: the first capture group of the group regex, else (or when it does not match)
/// its path below `data/`.
fn file_key<'a>(
    regex: Option<&Regex>,
    rel: &'a str,
    groups: Option<&mut std::collections::HashSet<String>>,
    ungrouped: Option<&mut Vec<String>>,
) -> &'a str {
    match regex.map(|re| re.captures(rel).and_then(|c| c.get(1))) {
        Some(Some(m)) => {
            if let Some(g) = groups {
                g.insert(m.as_str().to_string());
            }
            &rel[m.start()..m.end()]
        }
        Some(None) => {
            if let Some(u) = ungrouped {
                u.push(rel.to_string());
            }
            rel
        }
        None => rel,
    }
}

/// A split with nothing in it, and (with a label) a class missing from a split.
fn warnings(
    files: &[&DataFile],
    counts: &BTreeMap<String, u64>,
    tables: &[&DataFile],
    records: &BTreeMap<String, u64>,
    labels: &BTreeMap<String, BTreeMap<String, u64>>,
    label: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in SPLITS {
        if !tables.is_empty() && records.get(name).copied().unwrap_or(0) == 0 {
            out.push(format!("the {name} split has 0 records (of {} table(s)): add data, or change the ratios with --reshuffle", tables.len()));
        }
        if !files.is_empty() && counts.get(name).copied().unwrap_or(0) == 0 {
            out.push(format!("the {name} split has 0 of the {} file(s) placed whole: add data, or change the ratios with --reshuffle", files.len()));
        }
    }
    if let Some(label) = label {
        let classes: std::collections::BTreeSet<&String> = labels.values().flat_map(|m| m.keys()).collect();
        for name in SPLITS {
            let here = labels.get(name);
            let missing: Vec<&str> = classes
                .iter()
                .filter(|c| here.and_then(|m| m.get(c.as_str())).copied().unwrap_or(0) == 0)
                .map(|c| c.as_str())
                .collect();
            if !missing.is_empty() && records.get(name).copied().unwrap_or(0) > 0 {
                let shown: Vec<String> = missing.iter().take(5).map(|c| format!("'{c}'")).collect();
                out.push(format!(
                    "the {name} split has no record of {label} = {}{}",
                    shown.join(", "),
                    if missing.len() > 5 {
                        format!(" and {} more classes", missing.len() - 5)
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn commit_message(
    from: &str,
    clean_id: git2::Oid,
    settings: &Settings,
    counts: &BTreeMap<String, u64>,
    records: &BTreeMap<String, u64>,
    files: &[&DataFile],
    tables: &[&DataFile],
    groups: usize,
    ungrouped: usize,
) -> String {
    let short = &clean_id.to_string()[..7];
    let parts: Vec<String> = SPLITS
        .iter()
        .map(|s| match (tables.is_empty(), files.is_empty()) {
            (true, _) => format!("{} {s}", counts[*s]),
            (false, true) => format!("{} {s}", records[*s]),
            (false, false) => format!("{}+{} {s}", records[*s], counts[*s]),
        })
        .collect();
    let r = &settings.ratios;
    let mut body = format!("Ratios {}/{}/{}, seed {}", r[0], r[1], r[2], settings.seed);
    if let Some(g) = &settings.group_by {
        body.push_str(&format!(", files grouped by {g:?} ({groups} groups)"));
    }
    if let Some(k) = &settings.key {
        body.push_str(&format!(", records keyed by {}", k.join(", ")));
    }
    if let Some(g) = &settings.group_column {
        body.push_str(&format!(", records grouped by column {g}"));
    }
    body.push_str(".\n");
    if !tables.is_empty() {
        body.push_str(&format!(
            "{} table(s) split record by record; {} file(s) placed whole.\n",
            tables.len(),
            files.len()
        ));
    }
    if ungrouped > 0 {
        body.push_str(&format!("{ungrouped} file(s) matched no group and were placed by their path.\n"));
    }
    let mut message = Message::new(format!("Split {from} {short}: {}", parts.join(", ")))
        .body(body)
        .trailer(trailers::keys::DERIVED_FROM, format!("{from} {clean_id}"))
        .trailer(keys::SPLIT_RATIOS, format!("{},{},{}", r[0], r[1], r[2]))
        .trailer(keys::SPLIT_SEED, settings.seed);
    if let Some(g) = &settings.group_by {
        message = message.trailer(keys::SPLIT_GROUP_BY, g);
    }
    if let Some(k) = &settings.key {
        message = message.trailer(keys::SPLIT_KEY, k.join(","));
    }
    if let Some(g) = &settings.group_column {
        message = message.trailer(keys::SPLIT_GROUP_COLUMN, g);
    }
    message.render()
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
