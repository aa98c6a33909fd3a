//! The `evaluation` of a tracking record: which split of the training data the metrics were measured
//! on, its size and its content id, so that `mlgit runs` never ranks runs measured on different data
//! against each other.

use std::collections::BTreeMap;

use super::outputs::{output_bytes, Output};
use super::tracking::parse_json_with_non_finite;
use crate::data::split::SPLIT_FILE;
use crate::error::{Context, Result};
use crate::repo::tree::entry_at;
use crate::repo::Repo;
use crate::snapshot::record::Evaluation;

/// Keys of the metrics file that may name the split evaluated on (the template's `eval_on` first).
pub(super) const SPLIT_KEYS: [&str; 2] = ["eval_on", "eval_split"];

/// Where the run's metrics were measured. The split is the one the metrics file names, else
/// `validation`, or `train` when the split commit has no validation data (what the template's
/// training falls back to); its size is the one the metrics report (`n_<split>`, `n_eval`,
/// `eval_rows`), else split.yaml's count. None when the run has neither a split commit nor a hint
/// in its metrics: nothing is known, and claiming "validation" would be a guess.
pub(super) fn evaluation(
    repo: &Repo,
    outputs: &[Output],
    metrics: &BTreeMap<String, f64>,
    split_commit: Option<&str>,
) -> Result<Option<Evaluation>> {
    let git = repo.git();
    let named = named_split(repo, outputs)?;
    let tree = match split_commit {
        Some(id) => {
            let oid = git2::Oid::from_str(id).context(format!("read the split commit {id}"))?;
            git.find_commit(oid).context(format!("read the split commit {id}"))?.tree_id()
        }
        None if named.is_none() => return Ok(None),
        None => {
            let split = named.unwrap_or_default();
            return Ok(Some(Evaluation { rows: reported_size(metrics, &split), split, data: None }));
        }
    };
    let data_of = |split: &str| -> Result<Option<String>> {
        Ok(entry_at(git, tree, &format!("data/{split}"))?
            .filter(|e| e.mode == git2::FileMode::Tree)
            .map(|e| e.oid.to_string()))
    };
    let split = match named {
        Some(s) => s,
        // git stores no empty folder: no data/validation tree is an empty validation split.
        None if data_of("validation")?.is_none() => "train".to_string(),
        None => "validation".to_string(),
    };
    let rows = match reported_size(metrics, &split) {
        Some(n) => Some(n),
        None => split_size(repo, tree, &split)?,
    };
    Ok(Some(Evaluation { data: data_of(&split)?, split, rows }))
}

/// The evaluated size the metrics report: `n_<split>`, `n_eval` or `eval_rows` (a whole number).
fn reported_size(metrics: &BTreeMap<String, f64>, split: &str) -> Option<u64> {
    [format!("n_{split}"), "n_eval".into(), "eval_rows".into()]
        .iter()
        .find_map(|k| metrics.get(k).copied())
        // A count, exactly: beyond 2^53 a float no longer holds every whole number.
        .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0 && *n <= 9_007_199_254_740_992.0)
        .map(|n| n as u64)
}

/// The split the metrics file names (`eval_on` or `eval_split`), if it names one plainly.
fn named_split(repo: &Repo, outputs: &[Output]) -> Result<Option<String>> {
    let file = &repo.config().tracking.metrics_file;
    let Some(o) = outputs.iter().find(|o| &o.path == file) else { return Ok(None) };
    // The metrics file was read and checked before: a failure here only means no hint.
    let Ok(value) = parse_json_with_non_finite(&output_bytes(repo, o)?) else { return Ok(None) };
    Ok(SPLIT_KEYS.iter().find_map(|k| value.get(*k).and_then(|v| v.as_str())).and_then(split_name))
}

/// The split a metrics file names, as a folder name under `data/`: `validation/` and
/// `./validation` are `validation`; a name that is not one plain folder name (a path, `..`, a
/// newline, markup) is no split name, and the default applies.
fn split_name(text: &str) -> Option<String> {
    let name = text.trim().trim_start_matches("./").trim_end_matches('/');
    let plain = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plain.then(|| name.to_string())
}

/// Records of `split` in split.yaml (tables split record by record), else its files placed whole.
fn split_size(repo: &Repo, tree: git2::Oid, split: &str) -> Result<Option<u64>> {
    let git = repo.git();
    let Some(e) = entry_at(git, tree, SPLIT_FILE)? else { return Ok(None) };
    let blob = git.find_blob(e.oid).context(format!("read {SPLIT_FILE}"))?;
    // split.yaml is mlgit's own file; one it cannot read only leaves the size unknown.
    let Ok(yaml) = serde_yaml::from_slice::<serde_yaml::Value>(blob.content()) else { return Ok(None) };
    let count = |field: &str| yaml.get(field).and_then(|m| m.get(split)).and_then(serde_yaml::Value::as_u64);
    Ok(match (count("records"), count("counts")) {
        (Some(n), _) if n > 0 => Some(n),
        (_, Some(n)) => Some(n),
        (records, None) => records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_are_plain_folder_names() {
        assert_eq!(split_name(" validation/ ").as_deref(), Some("validation"));
        assert_eq!(split_name("./test").as_deref(), Some("test"));
        assert_eq!(split_name("holdout-2026").as_deref(), Some("holdout-2026"));
        for bad in ["", "..", ".", "../../etc", "/abs", "train/../validation", "a\n# h", "<b>x</b>", "a b"] {
            assert_eq!(split_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes_are_exact_counts() {
        let m = |v: f64| BTreeMap::from([("n_eval".to_string(), v)]);
        assert_eq!(reported_size(&m(18.0), "validation"), Some(18));
        assert_eq!(reported_size(&m(1e30), "validation"), None);
        assert_eq!(reported_size(&m(-1.0), "validation"), None);
        assert_eq!(reported_size(&m(2.5), "validation"), None);
    }
}
