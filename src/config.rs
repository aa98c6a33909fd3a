//! `mlgit.yaml`: the project's conventions (branch names, environments, LFS patterns, snapshot and
//! tracking settings). Every key has a default; unknown keys and wrong types are errors that name the
//! file, line and column.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The file name of the config, at the root of the main branch.
pub const CONFIG_FILE: &str = "mlgit.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The project's name (used in templates and model cards).
    pub project: String,
    pub branches: BranchNames,
    /// Environments that get a `monitoring/<env>` branch and can be promoted to (`env/<env>`).
    pub environments: Vec<String>,
    /// Per environment, the rules `mlgit promote` checks before it writes (docs/promote.md).
    /// Absent: `prod` requires `staging` when both are environments, and every promotion requires
    /// the snapshot's model bytes to verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<std::collections::BTreeMap<String, PromotionRules>>,
    /// Branch names (or `prefix/*` patterns) on which committed files may never change or disappear.
    pub append_only: Vec<String>,
    pub lfs: LfsConfig,
    pub snapshot: SnapshotConfig,
    pub tracking: TrackingConfig,
    pub clean: CleanConfig,
    pub split: SplitConfig,
    pub tables: TablesConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BranchNames {
    pub main: String,
    pub raw: String,
    pub clean: String,
    pub split: String,
    /// The default `dev/` branch (code).
    pub dev: String,
    /// The default `stable/` branch (training runs and snapshots).
    pub stable: String,
    pub monitoring_prefix: String,
    pub env_prefix: String,
}

/// The rules a promotion to one environment must pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromotionRules {
    /// Environments the tag must have been promoted to first.
    pub requires: Vec<String>,
    /// The snapshot's model files must be in the local store and hash to their recorded sha256.
    pub verify: bool,
    /// No drift alert for the tag on `monitoring/<env>` of each required environment since the
    /// tag was promoted there.
    pub no_drift_alerts: bool,
}

impl Default for PromotionRules {
    fn default() -> Self {
        PromotionRules { requires: Vec::new(), verify: true, no_drift_alerts: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LfsConfig {
    /// Files larger than this (bytes) go to the LFS store even when no pattern matches them.
    pub max_blob_size: u64,
    pub patterns: LfsPatterns,
}

/// gitattributes-style patterns of the files stored in LFS, per branch kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LfsPatterns {
    /// raw, clean and split.
    pub data: Vec<String>,
    pub monitoring: Vec<String>,
    pub stable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Tag name pattern: `{model}` is the stable branch's name without its prefix, `{n}` a counter.
    pub tag_pattern: String,
    /// Paths (folders end with `/`) that training writes and `train-tag` commits.
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    pub metrics_file: String,
    pub params_files: Vec<String>,
    /// The metric that orders the leaderboard.
    pub primary_metric: String,
    pub goal: Goal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Max,
    Min,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanConfig {
    pub validators: Validators,
    pub drop_duplicates: bool,
    /// Where the user's transformation script lives on the clean branch.
    pub transform_dir: String,
    /// `record`: a table's bad records are dropped, not the table; `file`: any bad record drops
    /// the whole file (the file-level behaviour of mlgit before tables were records).
    pub records: RecordLevel,
    /// The text encoding of CSV/TSV/JSONL exports (`utf-8`, or `latin-1` for a Windows export);
    /// clean writes UTF-8.
    pub encoding: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordLevel {
    Record,
    File,
}

/// Which files are tables, read record by record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TablesConfig {
    /// File extensions (without the dot, case-insensitive) per table format.
    pub extensions: TableExtensions,
    /// A regex on the path below `data/` whose first capture group names the table a file is a
    /// batch of (its schema is `schema/<name>.json` on clean). Default: the file name without its
    /// extension, so `2026-01/customers.csv` and `2026-02/customers.csv` are one table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableExtensions {
    pub csv: Vec<String>,
    pub tsv: Vec<String>,
    pub jsonl: Vec<String>,
    pub parquet: Vec<String>,
}

impl Default for TableExtensions {
    fn default() -> Self {
        let d = crate::table::Extensions::default();
        TableExtensions { csv: d.csv, tsv: d.tsv, jsonl: d.jsonl, parquet: d.parquet }
    }
}

impl TablesConfig {
    /// The extensions in the record layer's form.
    pub fn extensions(&self) -> crate::table::Extensions {
        let e = &self.extensions;
        crate::table::Extensions {
            csv: e.csv.clone(),
            tsv: e.tsv.clone(),
            jsonl: e.jsonl.clone(),
            parquet: e.parquet.clone(),
        }
    }
}

/// One column name or several (`key: id` or `key: [a, b]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Columns::One(c) => vec![c.clone()],
            Columns::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Validators {
    pub empty: bool,
    pub images: bool,
    pub utf8: bool,
    pub json: bool,
    pub records: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplitConfig {
    /// train, validation, test percentages; they sum to 100.
    pub ratios: Vec<u32>,
    pub seed: u64,
    /// Optional regex whose first capture group is the grouping key (e.g. a patient id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// Tables: the id column(s) whose values place a record (default: the record's content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Columns>,
    /// Tables: a column whose value keeps records together (a customer, a patient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
    /// Tables: the label column whose distribution each split reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            project: "project".into(),
            branches: BranchNames::default(),
            environments: vec!["dev".into(), "staging".into(), "prod".into()],
            promotion: None,
            append_only: vec!["raw".into(), "monitoring/*".into()],
            lfs: LfsConfig::default(),
            snapshot: SnapshotConfig::default(),
            tracking: TrackingConfig::default(),
            clean: CleanConfig::default(),
            split: SplitConfig::default(),
            tables: TablesConfig::default(),
        }
    }
}

impl Default for BranchNames {
    fn default() -> Self {
        BranchNames {
            main: "main".into(),
            raw: "raw".into(),
            clean: "clean".into(),
            split: "split".into(),
            dev: "dev/model".into(),
            stable: "stable/model".into(),
            monitoring_prefix: "monitoring/".into(),
            env_prefix: "env/".into(),
        }
    }
}

impl Default for LfsConfig {
    fn default() -> Self {
        LfsConfig { max_blob_size: 1024 * 1024, patterns: LfsPatterns::default() }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Default for LfsPatterns {
    fn default() -> Self {
        LfsPatterns {
            data: strings(&["data/**"]),
            monitoring: strings(&["data/**"]),
            stable: strings(&[
                "data/**",
                "model/**",
                "checkpoints/**",
                "*.pkl",
                "*.pt",
                "*.pth",
                "*.onnx",
                "*.h5",
                "*.safetensors",
                "*.joblib",
                "*.parquet",
            ]),
        }
    }
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            tag_pattern: "{model}-v{n}".into(),
            outputs: strings(&[
                "model/",
                "checkpoints/",
                "metrics.json",
                "params.json",
                "params.yaml",
                "MODEL_CARD.md",
                "mlruns/",
            ]),
        }
    }
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            metrics_file: "metrics.json".into(),
            params_files: strings(&["params.json", "params.yaml"]),
            primary_metric: "accuracy".into(),
            goal: Goal::Max,
        }
    }
}

impl Default for CleanConfig {
    fn default() -> Self {
        CleanConfig {
            validators: Validators::default(),
            drop_duplicates: false,
            transform_dir: "transform/".into(),
            records: RecordLevel::Record,
            encoding: "utf-8".into(),
        }
    }
}

impl Default for Validators {
    fn default() -> Self {
        Validators { empty: true, images: true, utf8: true, json: true, records: true }
    }
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            ratios: vec![80, 10, 10],
            seed: 42,
            group_by: None,
            key: None,
            group_column: None,
            label: None,
        }
    }
}

/// The kind of a branch in the framework, which decides its rules and LFS patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchKind {
    Main,
    Raw,
    Clean,
    Split,
    Dev,
    Stable,
    Monitoring,
    Env,
    Other,
}

impl BranchKind {
    /// Data branches hold ingested or derived data: raw, clean, split.
    pub fn is_data(self) -> bool {
        matches!(self, BranchKind::Raw | BranchKind::Clean | BranchKind::Split)
    }
}

/// The `prefix/` of a configured default branch name like `dev/model` (`dev/`).
fn prefix_of(name: &str) -> &str {
    match name.find('/') {
        Some(i) => &name[..=i],
        None => "",
    }
}

impl Config {
    /// Parse `mlgit.yaml` text. `origin` names the file in error messages (e.g. `main:mlgit.yaml`).
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_yaml::from_str(text).map_err(|e| {
            let at = match e.location() {
                Some(loc) => format!("{origin}:{}:{}", loc.line(), loc.column()),
                None => origin.to_string(),
            };
            Error::new(ErrorKind::Config, format!("invalid config {at}: {e}")).with_hint(
                "fix the file (every key is documented in docs/config.md), commit it on main, and retry",
            )
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks that serde cannot express.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |msg: String| {
            Err(Error::new(ErrorKind::Config, format!("invalid config {origin}: {msg}"))
                .with_hint("fix the file (see docs/config.md), commit it on main, and retry"))
        };
        let b = &self.branches;
        for (key, name) in [
            ("branches.main", &b.main),
            ("branches.raw", &b.raw),
            ("branches.clean", &b.clean),
            ("branches.split", &b.split),
            ("branches.dev", &b.dev),
            ("branches.stable", &b.stable),
        ] {
            if !git2::Branch::name_is_valid(name).unwrap_or(false) {
                return bad(format!("{key}: '{name}' is not a valid branch name"));
            }
        }
        for (key, prefix) in
            [("branches.monitoring_prefix", &b.monitoring_prefix), ("branches.env_prefix", &b.env_prefix)]
        {
            if !prefix.ends_with('/') || prefix.len() < 2 {
                return bad(format!("{key}: '{prefix}' must be a non-empty prefix ending with '/'"));
            }
        }
        if !b.dev.contains('/') || !b.stable.contains('/') {
            return bad(
                "branches.dev and branches.stable must look like 'dev/<name>' and 'stable/<name>'".into()
            );
        }
        for env in &self.environments {
            let name = format!("{}{}", b.monitoring_prefix, env);
            if env.contains('/') || !git2::Branch::name_is_valid(&name).unwrap_or(false) {
                return bad(format!("environments: '{env}' is not a valid environment name"));
            }
        }
        if let Some(rules) = &self.promotion {
            for (env, r) in rules {
                if !self.environments.contains(env) {
                    return bad(format!("promotion.{env}: '{env}' is not one of the environments"));
                }
                for req in &r.requires {
                    if req == env {
                        return bad(format!(
                            "promotion.{env}.requires: an environment cannot require itself"
                        ));
                    }
                    if !self.environments.contains(req) {
                        return bad(format!(
                            "promotion.{env}.requires: '{req}' is not one of the environments"
                        ));
                    }
                }
                if r.no_drift_alerts && r.requires.is_empty() {
                    return bad(format!(
                        "promotion.{env}.no_drift_alerts: it checks the monitoring of the required environments, and `requires` names none"
                    ));
                }
            }
        }
        // git keeps refs as files: `data` and `data/clean` cannot both exist.
        let mut names: Vec<String> = [&b.main, &b.raw, &b.clean, &b.split, &b.dev, &b.stable]
            .into_iter()
            .cloned()
            .chain(self.environments.iter().map(|e| format!("{}{e}", b.monitoring_prefix)))
            .collect();
        names.push(b.env_prefix.trim_end_matches('/').to_string() + "/x");
        for a in &names {
            for other in &names {
                if other.len() > a.len() && other.starts_with(a.as_str()) && other.as_bytes()[a.len()] == b'/'
                {
                    return bad(format!(
                        "branch '{a}' and branch '{other}' cannot both exist (git stores '{a}' as a file where '{other}' needs a folder)"
                    ));
                }
            }
        }
        let r = &self.split.ratios;
        if r.len() != 3 || r.iter().sum::<u32>() != 100 || r.contains(&0) {
            return bad(format!(
                "split.ratios: {r:?} must be three positive parts (train, validation, test) that sum to 100"
            ));
        }
        if let Some(name) = &self.tables.name {
            match regex::Regex::new(name) {
                Ok(re) if re.captures_len() >= 2 => {}
                Ok(_) => {
                    return bad(format!("tables.name {name:?} has no capture group (it names the table)"))
                }
                Err(e) => return bad(format!("tables.name {name:?} is not a valid regular expression: {e}")),
            }
        }
        if let Err(e) = crate::table::Encoding::parse(&self.clean.encoding) {
            return bad(e.message().to_string());
        }
        if self.split.key.is_some() && self.split.group_column.is_some() {
            return bad("split.key and split.group_column: set one (a group column already decides where each record goes)".into());
        }
        if !self.snapshot.tag_pattern.contains("{n}") && !self.snapshot.tag_pattern.contains("{model}") {
            return bad("snapshot.tag_pattern must contain {n} (and usually {model})".into());
        }
        Ok(())
    }

    /// The kind of branch `name` is under these conventions.
    pub fn branch_kind(&self, name: &str) -> BranchKind {
        let b = &self.branches;
        if name == b.main {
            BranchKind::Main
        } else if name == b.raw {
            BranchKind::Raw
        } else if name == b.clean {
            BranchKind::Clean
        } else if name == b.split {
            BranchKind::Split
        } else if name.starts_with(&b.monitoring_prefix) {
            BranchKind::Monitoring
        } else if name.starts_with(&b.env_prefix) {
            BranchKind::Env
        } else if name.starts_with(prefix_of(&b.stable)) && !prefix_of(&b.stable).is_empty() {
            BranchKind::Stable
        } else if name.starts_with(prefix_of(&b.dev)) && !prefix_of(&b.dev).is_empty() {
            BranchKind::Dev
        } else {
            BranchKind::Other
        }
    }

    /// Whether files committed on `branch` may never change or disappear.
    pub fn is_append_only(&self, branch: &str) -> bool {
        self.append_only.iter().any(|rule| match rule.strip_suffix('*') {
            Some(prefix) => branch.starts_with(prefix),
            None => branch == rule,
        })
    }

    /// The LFS patterns for a branch kind (empty for code branches).
    pub fn lfs_patterns(&self, kind: BranchKind) -> &[String] {
        match kind {
            BranchKind::Raw | BranchKind::Clean | BranchKind::Split => &self.lfs.patterns.data,
            BranchKind::Monitoring => &self.lfs.patterns.monitoring,
            // An env/ commit's tree is a snapshot's tree.
            BranchKind::Stable | BranchKind::Env => &self.lfs.patterns.stable,
            _ => &[],
        }
    }

    /// The rules a promotion to `env` must pass: `promotion.<env>` when the config has a
    /// `promotion` section (an environment it leaves out has the defaults of [`PromotionRules`]),
    /// else the built-in policy: `prod` requires `staging` when both are environments.
    pub fn promotion_rules(&self, env: &str) -> PromotionRules {
        match &self.promotion {
            Some(rules) => rules.get(env).cloned().unwrap_or_default(),
            None => {
                let has = |e: &str| self.environments.iter().any(|x| x == e);
                let requires = if env == "prod" && has("prod") && has("staging") {
                    vec!["staging".into()]
                } else {
                    vec![]
                };
                PromotionRules { requires, ..PromotionRules::default() }
            }
        }
    }

    /// The monitoring branch of an environment.
    pub fn monitoring_branch(&self, env: &str) -> String {
        format!("{}{}", self.branches.monitoring_prefix, env)
    }

    /// The model name of a stable branch (`stable/model` → `model`).
    pub fn model_name<'a>(&self, stable_branch: &'a str) -> &'a str {
        stable_branch.rsplit('/').next().unwrap_or(stable_branch)
    }

    /// Every convention branch `mlgit init` creates, with its kind, in creation order.
    pub fn convention_branches(&self) -> Vec<(String, BranchKind)> {
        let b = &self.branches;
        let mut out = vec![
            (b.main.clone(), BranchKind::Main),
            (b.raw.clone(), BranchKind::Raw),
            (b.clean.clone(), BranchKind::Clean),
            (b.split.clone(), BranchKind::Split),
            (b.dev.clone(), BranchKind::Dev),
            (b.stable.clone(), BranchKind::Stable),
        ];
        for env in &self.environments {
            out.push((self.monitoring_branch(env), BranchKind::Monitoring));
        }
        for env in &self.environments {
            out.push((format!("{}{env}", b.env_prefix), BranchKind::Env));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_defaults() {
        assert_eq!(Config::parse("", "mlgit.yaml").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = Config::parse("project: x\nbranchez:\n  main: m\n", "main:mlgit.yaml").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("main:mlgit.yaml:2:1"), "{}", err.message());
        assert!(err.message().contains("branchez"), "{}", err.message());
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = Config::parse("lfs:\n  max_blob_size: big\n", "mlgit.yaml").unwrap_err();
        assert!(err.message().contains("mlgit.yaml:2:"), "{}", err.message());
    }

    #[test]
    fn ratios_must_sum_to_100() {
        let err = Config::parse("split:\n  ratios: [80, 10, 5]\n", "mlgit.yaml").unwrap_err();
        assert!(err.message().contains("split.ratios"), "{}", err.message());
    }

    #[test]
    fn branch_names_that_clash_as_refs_are_refused() {
        let err = Config::parse("branches:\n  raw: data\n  clean: data/clean\n", "mlgit.yaml").unwrap_err();
        assert!(
            err.message().contains("'data' and branch 'data/clean' cannot both exist"),
            "{}",
            err.message()
        );
        let err = Config::parse("branches:\n  main: monitoring\n", "mlgit.yaml").unwrap_err();
        assert!(err.message().contains("'monitoring' and branch 'monitoring/dev'"), "{}", err.message());
        assert!(Config::parse("branches:\n  raw: data-raw\n  clean: data-clean\n", "mlgit.yaml").is_ok());
    }

    #[test]
    fn branch_kinds_follow_the_names() {
        let c = Config::default();
        assert_eq!(c.branch_kind("raw"), BranchKind::Raw);
        assert_eq!(c.branch_kind("stable/churn"), BranchKind::Stable);
        assert_eq!(c.branch_kind("dev/alice"), BranchKind::Dev);
        assert_eq!(c.branch_kind("monitoring/prod"), BranchKind::Monitoring);
        assert_eq!(c.branch_kind("feature"), BranchKind::Other);
        assert!(c.is_append_only("raw"));
        assert!(c.is_append_only("monitoring/prod"));
        assert!(!c.is_append_only("clean"));
    }

    #[test]
    fn template_config_parses_to_defaults() {
        let text =
            include_str!("../templates/default/main/mlgit.yaml").replace("{{project_name}}", "project");
        assert_eq!(Config::parse(&text, "mlgit.yaml").unwrap(), Config::default());
    }

    #[test]
    fn promotion_defaults_to_prod_after_staging_and_verify_everywhere() {
        let c = Config::default();
        assert_eq!(c.promotion_rules("prod").requires, vec!["staging".to_string()]);
        assert!(c.promotion_rules("prod").verify && !c.promotion_rules("prod").no_drift_alerts);
        assert!(c.promotion_rules("staging").requires.is_empty());
        let two = Config::parse("environments: [dev, prod]\n", "mlgit.yaml").unwrap();
        assert!(two.promotion_rules("prod").requires.is_empty());
        let own =
            Config::parse("promotion:\n  staging: {requires: [dev], no_drift_alerts: true}\n", "mlgit.yaml")
                .unwrap();
        assert_eq!(own.promotion_rules("staging").requires, vec!["dev".to_string()]);
        // A promotion section replaces the built-in policy: prod is not listed, so verify only.
        assert!(own.promotion_rules("prod").requires.is_empty());
    }

    #[test]
    fn promotion_rules_must_name_environments() {
        for (text, needle) in [
            ("promotion:\n  moon: {}\n", "promotion.moon"),
            ("promotion:\n  prod: {requires: [qa]}\n", "'qa' is not one of the environments"),
            ("promotion:\n  prod: {requires: [prod]}\n", "cannot require itself"),
            ("promotion:\n  prod: {no_drift_alerts: true}\n", "no_drift_alerts"),
            ("promotion:\n  prod: {requirez: [staging]}\n", "requirez"),
        ] {
            let err = Config::parse(text, "mlgit.yaml").unwrap_err();
            assert!(err.message().contains(needle), "{text}: {}", err.message());
        }
    }
}
