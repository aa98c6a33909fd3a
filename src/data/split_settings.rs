//! The settings of `mlgit split`, remembered: a split starts from what the split branch's
//! `split.yaml` recorded (the first split from `mlgit.yaml`), flags override it, and a flag that
//! would move records or files (ratios, seed, key, group column, group regex) is refused unless
//! `--reshuffle` says so. `mlgit.yaml` never changes a recorded split by itself: where it differs,
//! a warning says which flags apply it. So reshuffling only the seed keeps the recorded key.

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

/// The settings to run with, the recorded ones when they differ (a reshuffle), and warnings about
/// `mlgit.yaml` settings that differ from the recorded ones.
pub fn resolve(repo: &Repo, to: &str, opts: &SplitOptions) -> Result<Resolved> {
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
    // The base: what the split recorded (the first split: mlgit.yaml).
    let mut s = recorded.clone().unwrap_or_else(|| from_config.clone());
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
    let Some(recorded) = recorded else {
        return Ok(Resolved { settings: s, before: None, warnings: Vec::new() });
    };
    let differs = |a: &Settings, b: &Settings| -> Vec<String> {
        a.moving()
            .iter()
            .zip(b.moving().iter())
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| format!("{} {} → {}", x.0, x.1, y.1))
            .collect()
    };
    let mut warnings = Vec::new();
    // Only what mlgit.yaml sets (an unset key, or the built-in ratios and seed, say nothing).
    let defaults = crate::config::SplitConfig::default();
    let set_in_config = Settings {
        ratios: if config.ratios != defaults.ratios { from_config.ratios.clone() } else { s.ratios.clone() },
        seed: if config.seed != defaults.seed { from_config.seed } else { s.seed },
        group_by: from_config.group_by.clone().or_else(|| s.group_by.clone()),
        key: from_config.key.clone().or_else(|| {
            if from_config.group_column.is_some() {
                None
            } else {
                s.key.clone()
            }
        }),
        group_column: from_config.group_column.clone().or_else(|| {
            if from_config.key.is_some() {
                None
            } else {
                s.group_column.clone()
            }
        }),
        label: s.label.clone(),
    };
    let drift = differs(&s, &set_in_config);
    if !drift.is_empty() {
        warnings.push(format!(
            "mlgit.yaml's split settings differ from the ones this split uses ({}); the split keeps its own. To apply mlgit.yaml's, pass them as flags with --reshuffle",
            drift.join("; ")
        ));
    }
    let changed = differs(&recorded, &s);
    if changed.is_empty() {
        return Ok(Resolved { settings: s, before: None, warnings });
    }
    if !opts.reshuffle {
        return Err(Error::invalid(format!(
            "the split of '{to}' was made with other settings ({}); changing them moves records between train, validation and test",
            changed.join("; ")
        ))
        .with_hint("run `mlgit split` with no flags to keep the recorded settings, or add --reshuffle to re-split with the new ones (it reports how much moves)"));
    }
    Ok(Resolved { settings: s, before: Some(recorded), warnings })
}

/// What [`resolve`] decided.
pub struct Resolved {
    pub settings: Settings,
    /// The recorded settings, when these differ (a reshuffle).
    pub before: Option<Settings>,
    pub warnings: Vec<String>,
}
