//! The settings of `mlgit split`, remembered: with no flags a split reuses what the split
//! branch's `split.yaml` recorded; a flag that would move records or files (ratios, seed, key,
//! group column, group regex) is refused unless `--reshuffle` says so; `--reshuffle` takes the
//! flags, else `mlgit.yaml`.

use serde::{Deserialize, Serialize};

use super::split::{SplitOptions, SPLIT_FILE};
use super::split_table::{KeySpec, Placement};
use crate::error::{Error, Result};
use crate::repo::Repo;

/// The settings a split runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Settings {
    pub ratios: Vec<u32>,
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Settings {
    /// How records are placed under these settings.
    pub fn placement(&self) -> Placement {
        let key = match (&self.key, &self.group_column) {
            (Some(k), _) => KeySpec::Columns(k.clone()),
            (None, Some(g)) => KeySpec::Group(g.clone()),
            (None, None) => KeySpec::Content,
        };
        Placement { seed: self.seed, ratios: self.ratios.clone(), key }
    }

    /// The settings that decide where records and files go, as (name, text) pairs.
    fn moving(&self) -> [(&'static str, String); 5] {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
        [
            ("ratios", self.ratios.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
            ("seed", self.seed.to_string()),
            ("key", self.key.as_ref().map(|k| k.join(",")).unwrap_or_else(|| "none (record content)".into())),
            ("group column", opt(&self.group_column)),
            ("group regex", opt(&self.group_by)),
        ]
    }
}

/// What the split branch's tip recorded (None: no split yet, or a tip without `split.yaml`).
pub fn recorded(repo: &Repo, branch: &str) -> Result<Option<Settings>> {
    let git = repo.git();
    let Ok(tip) = git.revparse_single(&format!("refs/heads/{branch}")).and_then(|o| o.peel_to_commit())
    else {
        return Ok(None);
    };
    let Some(entry) = crate::repo::tree::entry_at(git, tip.tree_id(), SPLIT_FILE)? else { return Ok(None) };
    let Ok(blob) = git.find_blob(entry.oid) else { return Ok(None) };
    // Every split.yaml mlgit wrote has ratios and seed; the table keys came later (absent = none).
    let settings: Settings = serde_yaml::from_slice(blob.content()).map_err(|e| {
        Error::invalid(format!("{branch}:{SPLIT_FILE} cannot be read: {e}"))
            .with_hint("split.yaml is written by mlgit; restore it, or split afresh with --reshuffle and explicit settings")
    })?;
    Ok(Some(settings))
}

/// The settings to run with, and the recorded ones when they differ (a reshuffle).
pub fn resolve(repo: &Repo, to: &str, opts: &SplitOptions) -> Result<(Settings, Option<Settings>)> {
    let config = &repo.config().split;
    let from_config = Settings {
        ratios: config.ratios.clone(),
        seed: config.seed,
        group_by: config.group_by.clone(),
        key: config.key.as_ref().map(|k| k.to_vec()),
        group_column: config.group_column.clone(),
        label: config.label.clone(),
    };
    let recorded = recorded(repo, to)?;
    // The base: what the split recorded, unless there is none or the user reshuffles.
    let base = match (&recorded, opts.reshuffle) {
        (Some(r), false) => r.clone(),
        _ => from_config.clone(),
    };
    let mut s = base;
    if let Some(r) = &opts.ratios {
        s.ratios = r.clone();
    }
    if let Some(seed) = opts.seed {
        s.seed = seed;
    }
    if let Some(g) = &opts.group_by {
        s.group_by = Some(g.clone());
    }
    if let Some(k) = &opts.key {
        s.key = Some(k.clone());
        s.group_column = None;
    }
    if let Some(g) = &opts.group_column {
        s.group_column = Some(g.clone());
        s.key = None;
    }
    if let Some(l) = &opts.label {
        s.label = Some(l.clone());
    }
    if s.key.is_some() && s.group_column.is_some() {
        return Err(Error::invalid("a key column and a group column are both set")
            .with_hint("give one: --key COL places each record by its id; --group-column COL keeps a group's records together"));
    }
    let Some(recorded) = recorded else { return Ok((s, None)) };
    let changed: Vec<String> = recorded
        .moving()
        .iter()
        .zip(s.moving().iter())
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, b)| format!("{} {} → {}", a.0, a.1, b.1))
        .collect();
    if changed.is_empty() {
        return Ok((s, None));
    }
    if !opts.reshuffle {
        return Err(Error::invalid(format!(
            "the split of '{to}' was made with other settings ({}); changing them moves records between train, validation and test",
            changed.join("; ")
        ))
        .with_hint("run `mlgit split` with no flags to keep the recorded settings, or add --reshuffle to re-split with the new ones (it reports how much moves)"));
    }
    Ok((s, Some(recorded)))
}
