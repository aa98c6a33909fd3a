//! `mlgit monitor history --feature F`: one feature's drift, request batch by request batch, each
//! tag against its own training data, with the batches where the serving tags changed marked, so a
//! move in the statistic can be put down to a new model or to a change in the inputs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::branch::{BatchKind, MonitoringBranch};
use super::cells;
use super::decide::{judge, FeatureData, FeatureInput, Status};
use super::drift::features_of;
use super::reference::{self, ref_table, snapshot_of, Acc, Kind, RefColumn};
use super::stored::open_table;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    pub env: String,
    pub feature: String,
    pub interrupt: Interrupt,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub batch: String,
    pub start: String,
    pub end: String,
    pub rows: u64,
    /// The serving tags of the batch differ from the previous batch's.
    pub switch: bool,
    pub tags: Vec<TagPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagPoint {
    pub tag: String,
    pub rows: u64,
    /// `wasserstein` (numeric, in reference IQRs) or `js` (categorical).
    pub statistic: &'static str,
    pub value: Option<f64>,
    pub p_value: Option<f64>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub env: String,
    pub branch: String,
    pub feature: String,
    pub rows: Vec<HistoryRow>,
}

/// The history of `opts.feature` over every request batch of the branch.
pub fn history(repo: &Repo, opts: &HistoryOptions) -> Result<History> {
    let mb = MonitoringBranch::open(repo, &opts.env)?;
    let s = &mb.settings;
    let batches = mb.batches(repo.git())?;
    let mut refs: BTreeMap<String, (RefColumn, FeatureData)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut previous: Option<Vec<String>> = None;
    for m in batches.iter().filter(|m| m.kind == BatchKind::Requests) {
        opts.interrupt.check("monitor history")?;
        for tag in m.tags.keys() {
            if refs.contains_key(tag) {
                continue;
            }
            let table = ref_table(repo, snapshot_of(repo, tag)?, s, Some(&m.columns))?;
            let Some(col) = features_of(s, &table).into_iter().find(|c| c.name == opts.feature) else {
                let names: Vec<String> = features_of(s, &table).into_iter().map(|c| c.name).collect();
                return Err(Error::not_found(format!(
                    "'{}' is not a feature of the training data of '{tag}' (its features: {})",
                    opts.feature,
                    names.join(", ")
                ))
                .with_hint("name one of the features the model was trained on"));
            };
            let loaded = reference::load(repo, table, &[&col])?;
            let data = loaded.columns.get(&col.name).cloned().ok_or_else(|| {
                Error::not_found(format!("the training data of '{tag}' has no profile of '{}'", opts.feature))
            })?;
            refs.insert(tag.clone(), (col, data));
        }
        let mut accs: BTreeMap<&str, (u64, Acc)> =
            m.tags.keys().map(|t| (t.as_str(), (0, Acc::for_column(&refs[t].0)))).collect();
        let mut scratch = Vec::new();
        for path in &m.files {
            let mut reader = open_table(repo, &mb.branch, mb.tree, path)?;
            while let Some(batch) = reader.next_batch()? {
                let cols = reader.columns();
                let tag_col = m.tag_column(s).and_then(|t| cols.iter().position(|c| c.name == t));
                let Some(fc) = cols.iter().position(|c| c.name == opts.feature) else { continue };
                for row in 0..batch.len() {
                    let tag = match (&m.tag, tag_col) {
                        (Some(t), _) => Some(t.clone()),
                        (None, Some(c)) => cells::text(batch.cell(row, c)),
                        _ => None,
                    };
                    if let Some((n, acc)) = tag.and_then(|t| accs.get_mut(t.as_str())) {
                        *n += 1;
                        acc.add(batch.cell(row, fc), &mut scratch);
                    }
                }
            }
        }
        let mut points = Vec::new();
        for (tag, (n, acc)) in accs {
            let (col, reference) = &refs[tag];
            let current = acc.finish();
            let t = s.thresholds_for(&opts.feature);
            let v = judge(
                &[FeatureInput { name: &opts.feature, reference, current: &current, thresholds: t }],
                s.min_rows,
            )
            .remove(0);
            let statistic = if col.kind == Kind::Numeric { "wasserstein" } else { "js" };
            let value = v.effects.iter().find(|e| e.metric == statistic).map(|e| e.value);
            points.push(TagPoint {
                tag: tag.to_string(),
                rows: n,
                statistic,
                value,
                p_value: v.p_adjusted,
                status: v.status,
            });
        }
        let tags: Vec<String> = m.tags.keys().cloned().collect();
        let switch = previous.as_ref().is_some_and(|p| p != &tags);
        previous = Some(tags);
        out.push(HistoryRow {
            batch: m.id.clone(),
            start: m.window.start.clone(),
            end: m.window.end.clone(),
            rows: m.rows,
            switch,
            tags: points,
        });
    }
    if out.is_empty() {
        return Err(Error::not_found(format!("'{}' holds no request batch yet", mb.branch))
            .with_hint("log one first: `mlgit monitor log --env ENV --source FILE`"));
    }
    Ok(History { env: mb.env, branch: mb.branch, feature: opts.feature.clone(), rows: out })
}
