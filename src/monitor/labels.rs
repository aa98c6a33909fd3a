//! Ground truth that arrived after the predictions (`monitor label`), joined to the logged requests
//! by request id, and the metrics it allows: the primary metric per tag, calibration (expected
//! calibration error, Brier score) and ROC AUC when the requests carry a score.

use std::collections::HashMap;

use git2::Oid;
use serde::Serialize;

use super::branch::{BatchKind, BatchManifest};
use super::cells;
use super::settings::MonitorSettings;
use super::stats;
use super::stored::open_table;
use crate::error::Result;
use crate::repo::Repo;

/// Every label committed on the branch: request id → label (canonical text; a later label for the
/// same request replaces an earlier one).
pub fn read_labels(
    repo: &Repo,
    branch: &str,
    tree: Oid,
    batches: &[BatchManifest],
    settings: &MonitorSettings,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut scratch = Vec::new();
    for m in batches.iter().filter(|m| m.kind == BatchKind::Labels) {
        for path in &m.files {
            let mut reader = open_table(repo, branch, tree, path)?;
            while let Some(batch) = reader.next_batch()? {
                let cols = reader.columns();
                let id = cols.iter().position(|c| c.name == settings.request_id_column);
                let label = cols.iter().position(|c| c.name == settings.label_column);
                let (Some(id), Some(label)) = (id, label) else { continue };
                for row in 0..batch.len() {
                    let (Some(k), false) =
                        (cells::text(batch.cell(row, id)), cells::is_null(batch.cell(row, label)))
                    else {
                        continue;
                    };
                    cells::category(batch.cell(row, label), true, &mut scratch);
                    out.insert(k, String::from_utf8_lossy(&scratch).into_owned());
                }
            }
        }
    }
    Ok(out)
}

/// The labelled requests of one tag.
#[derive(Default)]
pub struct Joined {
    /// (prediction, label) as canonical texts.
    pub pairs: Vec<(String, String)>,
    /// (score, label) where the request has a score.
    pub scored: Vec<(f64, String)>,
}

/// Metrics of one tag's labelled requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelMetrics {
    /// Requests of the window that have a label.
    pub rows: u64,
    /// `tracking.primary_metric` when it can be computed from labels (accuracy, auc), else accuracy.
    pub primary_metric: String,
    pub value: Option<f64>,
    /// The snapshot's own value of the primary metric (its tracking record).
    pub recorded: Option<f64>,
    pub accuracy: Option<f64>,
    /// Binary labels with a score: expected calibration error (10 bins), Brier score, ROC AUC.
    pub ece: Option<f64>,
    pub brier: Option<f64>,
    pub auc: Option<f64>,
    /// The positive class used for the score-based metrics.
    pub positive: Option<String>,
}

/// The positive class of binary labels: `1` of 0/1, `true` of booleans, `yes` of yes/no,
/// `positive` of positive/negative (any case); else none.
fn positive_class<'a>(labels: impl Iterator<Item = &'a str>) -> Option<&'static str> {
    let mut seen = std::collections::BTreeSet::new();
    for l in labels {
        seen.insert(l.to_ascii_lowercase());
        if seen.len() > 2 {
            return None;
        }
    }
    let all = |set: &[&str]| seen.iter().all(|s| set.contains(&s.as_str()));
    [
        ("1", ["0", "1"]),
        ("true", ["true", "false"]),
        ("yes", ["yes", "no"]),
        ("positive", ["positive", "negative"]),
    ]
    .into_iter()
    .find(|(_, set)| all(set))
    .map(|(positive, _)| positive)
}

/// The metrics of `j`; `primary` names the metric, `recorded` is the snapshot's own value.
pub fn metrics(j: &Joined, primary: &str, recorded: Option<f64>) -> LabelMetrics {
    let rows = j.pairs.len() as u64;
    let accuracy = (rows > 0).then(|| j.pairs.iter().filter(|(p, l)| p == l).count() as f64 / rows as f64);
    let positive = positive_class(j.scored.iter().map(|(_, l)| l.as_str()));
    let (mut ece, mut brier, mut auc) = (None, None, None);
    if let (Some(pos), false) = (positive, j.scored.is_empty()) {
        let scores: Vec<f64> = j.scored.iter().map(|(s, _)| *s).collect();
        let labels: Vec<bool> = j.scored.iter().map(|(_, l)| l.eq_ignore_ascii_case(pos)).collect();
        ece = Some(stats::ece(&scores, &labels, 10));
        brier = Some(stats::brier(&scores, &labels));
        auc = stats::roc_auc(&scores, &labels);
    }
    let (name, value) = match primary.to_ascii_lowercase().as_str() {
        "auc" | "roc_auc" | "auroc" => (primary.to_string(), auc),
        "accuracy" | "acc" => (primary.to_string(), accuracy),
        _ => ("accuracy".to_string(), accuracy),
    };
    let recorded = if name == primary { recorded } else { None };
    LabelMetrics {
        rows,
        primary_metric: name,
        value,
        recorded,
        accuracy,
        ece,
        brier,
        auc,
        positive: positive.map(str::to_string),
    }
}
