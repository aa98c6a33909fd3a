//! `mlgit monitor drift`: the records of a window of request batches, tag by tag, against the
//! training split of each tag's own snapshot. Per feature the statistics and verdict of
//! [`super::decide`]; besides, the prediction distribution (against the training labels), schema
//! changes, and, once labels exist, the primary metric and calibration. `--commit` keeps the
//! report on the branch under `alerts/`, so the alert history is git history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use super::branch::{reported_batches, BatchManifest, MonitoringBranch, ALERTS_DIR};
use super::cells;
use super::decide::{judge, FeatureData, FeatureInput, FeatureVerdict, Status};
use super::labels::{metrics, read_labels, Joined, LabelMetrics};
use super::log::{keys, special_columns};
use super::reference::{
    self, ref_table, snapshot_pinned, Acc, Kind, RefColumn, RefSource, RefTable, Reference, Snapshot,
};
use super::settings::MonitorSettings;
use super::stored::open_table;
use super::window::Selection;
use crate::config::Goal;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::repo::trailers::Message;
use crate::repo::Repo;

#[derive(Debug, Clone, Default)]
pub struct DriftOptions {
    pub env: String,
    pub since: Option<String>,
    pub last: Option<usize>,
    /// Every batch no committed report covers yet.
    pub unreported: bool,
    /// Only the records served by this tag.
    pub tag: Option<String>,
    /// Also commit the report under `alerts/` on the branch.
    pub commit: bool,
    pub interrupt: Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub severity: Severity,
    pub tag: String,
    /// `drift`, `prediction_drift`, `schema`, `null_rate_points`, `out_of_range`, `outliers`,
    /// `metric_drop`, `calibration`.
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SchemaChanges {
    /// Columns of the batch the training table does not have (besides the monitoring columns).
    pub added: Vec<String>,
    /// Features of the training table the batch lacks.
    pub missing: Vec<String>,
    /// Numeric features with values that are not numbers.
    pub retyped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagReport {
    pub tag: String,
    pub snapshot: String,
    pub split: String,
    pub reference: RefSource,
    pub rows: u64,
    pub status: Status,
    pub features: Vec<FeatureVerdict>,
    /// The prediction column against the training labels' distribution (when both exist).
    pub prediction: Option<FeatureVerdict>,
    pub schema: SchemaChanges,
    pub labels: Option<LabelMetrics>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportWindow {
    pub batches: Vec<String>,
    pub start: String,
    pub end: String,
}

/// The drift report (the `--json` result, and the body of `alerts/<time>.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub schema: u32,
    pub env: String,
    pub branch: String,
    pub generated_at: String,
    /// The branch commit whose monitor.yaml and batches the report read.
    pub monitoring_commit: String,
    pub window: ReportWindow,
    pub min_rows: u64,
    pub alert: bool,
    pub tags: Vec<TagReport>,
    /// Every alert, most severe first.
    pub alerts: Vec<Alert>,
    /// With `--commit`: the commit holding the report, and its path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why the report is empty, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Things to know about the comparison (a tag moved since the batch was logged…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub seconds: f64,
}

fn empty_report(mb: &MonitoringBranch, note: &str, start: Instant) -> DriftReport {
    DriftReport {
        schema: 1,
        env: mb.env.clone(),
        branch: mb.branch.clone(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        monitoring_commit: mb.tip.to_string(),
        window: ReportWindow { batches: Vec::new(), start: String::new(), end: String::new() },
        min_rows: mb.settings.min_rows,
        alert: false,
        tags: Vec::new(),
        alerts: Vec::new(),
        commit: None,
        path: None,
        note: Some(note.to_string()),
        warnings: Vec::new(),
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// What one tag's records of the window add up to.
struct TagAcc {
    table: RefTable,
    features: Vec<RefColumn>,
    accs: Vec<Acc>,
    /// Feature index → rows whose value was not a number (numeric features).
    not_numbers: Vec<u64>,
    prediction: Option<(RefColumn, Acc)>,
    rows: u64,
    seen_columns: HashSet<String>,
    joined: Joined,
}

/// Build the report for the window of `opts`.
pub fn drift(repo: &Repo, opts: &DriftOptions) -> Result<DriftReport> {
    let start = Instant::now();
    let mb = MonitoringBranch::open(repo, &opts.env)?;
    let git = repo.git();
    let all = mb.batches(git)?;
    let selection = Selection::parse(opts.since.as_deref(), opts.last, opts.unreported)?;
    let reported = if opts.unreported { reported_batches(git, mb.tree)? } else { Vec::new() };
    let window = selection.select(&all, &reported);
    if window.is_empty() {
        // Nothing to compare is not a failure (the first push of a new project, a push of
        // labels only, every batch already reported): an empty report, no alert, no commit.
        let note = if all.iter().any(|m| m.kind == super::branch::BatchKind::Requests) {
            "no request batch selected: nothing to compare"
        } else {
            "no request batch logged yet: nothing to compare"
        };
        return Ok(empty_report(&mb, note, start));
    }
    let mut tags: Vec<String> = window.iter().flat_map(|m| m.tags.keys().cloned()).collect();
    tags.sort();
    tags.dedup();
    if let Some(t) = &opts.tag {
        if !tags.contains(t) {
            return Err(Error::not_found(format!(
                "no record of the selected batches was served by '{t}' (they were: {})",
                tags.join(", ")
            ))
            .with_hint("leave out --tag, or widen the window with --last N or --since DATE"));
        }
        tags = vec![t.clone()];
    }
    let settings = &mb.settings;
    let mut accs: BTreeMap<String, TagAcc> = BTreeMap::new();
    let mut columns: Vec<String> = window.iter().flat_map(|m| m.columns.iter().cloned()).collect();
    columns.sort();
    columns.dedup();
    let mut warnings = Vec::new();
    let mut unresolved = Vec::new();
    for t in &tags {
        // The snapshot pinned by the newest batch of the window that has this tag.
        let pinned = window.iter().rev().find_map(|m| m.snapshots.get(t)).map(String::as_str);
        let acc = snapshot_pinned(repo, t, pinned).and_then(|(snap, w)| {
            warnings.extend(w);
            tag_acc(repo, settings, snap, &columns)
        });
        match acc {
            Ok(a) => {
                accs.insert(t.clone(), a);
            }
            // One tag that cannot be compared (a retired canary's snapshot not fetched) does not
            // stop the others: it is an alert of its own.
            Err(e) => unresolved.push((t.clone(), e)),
        }
    }
    if accs.is_empty() && !unresolved.is_empty() {
        return Err(unresolved.swap_remove(0).1);
    }
    // The references are read on a thread of their own while this one reads the batches.
    let wanted: Vec<(RefTable, Vec<RefColumn>)> = accs
        .values()
        .map(|a| {
            let mut cols = a.features.clone();
            cols.extend(a.prediction.as_ref().map(|(c, _)| c.clone()));
            (a.table.clone(), cols)
        })
        .collect();
    let other = repo.reopen()?;
    let interrupt = opts.interrupt.clone();
    let (read, references) = std::thread::scope(|scope| {
        let loader = scope.spawn(move || -> Result<Vec<Reference>> {
            let mut out = Vec::new();
            for (table, cols) in wanted {
                interrupt.check("monitor drift")?;
                let refs: Vec<&RefColumn> = cols.iter().collect();
                out.push(reference::load(&other, table, &refs)?);
            }
            Ok(out)
        });
        let read = (|| -> Result<()> {
            let labels = read_labels(repo, &mb.branch, mb.tree, &all, settings)?;
            for m in &window {
                read_batch(repo, &mb, m, &labels, &mut accs, &opts.interrupt)?;
            }
            Ok(())
        })();
        let references = loader.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (read, references)
    });
    read?;
    let mut reports = Vec::new();
    for ((tag, acc), reference) in accs.into_iter().zip(references?) {
        opts.interrupt.check("monitor drift")?;
        reports.push(tag_report(repo, settings, tag, acc, reference)?);
    }
    let mut alerts: Vec<Alert> = reports.iter().flat_map(|r| r.alerts.clone()).collect();
    for (tag, e) in &unresolved {
        alerts.push(Alert {
            severity: Severity::Medium,
            tag: tag.clone(),
            check: "reference".into(),
            feature: None,
            message: format!("{tag}: not compared: {}", e.message()),
        });
    }
    alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.tag.cmp(&b.tag)));
    let now = chrono::Utc::now();
    let mut report = DriftReport {
        schema: 1,
        env: mb.env.clone(),
        branch: mb.branch.clone(),
        generated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        monitoring_commit: mb.tip.to_string(),
        window: ReportWindow {
            batches: window.iter().map(|m| m.id.clone()).collect(),
            start: window.iter().map(|m| m.window.start.clone()).min().unwrap_or_default(),
            end: window.iter().map(|m| m.window.end.clone()).max().unwrap_or_default(),
        },
        min_rows: settings.min_rows,
        alert: !alerts.is_empty(),
        tags: reports,
        alerts,
        commit: None,
        path: None,
        note: None,
        warnings,
        seconds: 0.0,
    };
    if opts.commit {
        let path = format!("{ALERTS_DIR}/{}.json", now.format("%Y%m%dT%H%M%S%.3fZ"));
        report.path = Some(path.clone());
        report.commit = Some(commit_report(repo, &mb, &report, &path)?);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The features of a tag's training table (all its comparable columns but the monitoring ones).
pub fn features_of(settings: &MonitorSettings, table: &RefTable) -> Vec<RefColumn> {
    let special = special_columns(settings, table);
    table
        .columns
        .iter()
        .filter(|c| !special.contains(&c.name.as_str()) && !settings.ignore.contains(&c.name))
        .cloned()
        .collect()
}

fn tag_acc(
    repo: &Repo,
    settings: &MonitorSettings,
    snapshot: Snapshot,
    columns: &[String],
) -> Result<TagAcc> {
    let table = ref_table(repo, snapshot, settings, Some(columns))?;
    let features = features_of(settings, &table);
    let accs = features.iter().map(Acc::for_column).collect();
    let prediction = label_column(settings, &table).map(|c| {
        let acc = Acc::for_column(&c);
        (c, acc)
    });
    Ok(TagAcc {
        not_numbers: vec![0; features.len()],
        accs,
        features,
        prediction,
        table,
        rows: 0,
        seen_columns: HashSet::new(),
        joined: Joined::default(),
    })
}

/// The training table's label column (the split's, else monitor.yaml's `label_column`).
fn label_column(settings: &MonitorSettings, table: &RefTable) -> Option<RefColumn> {
    let name = table.split_label.as_deref().unwrap_or(&settings.label_column);
    table.columns.iter().find(|c| c.name == name).cloned()
}

fn read_batch(
    repo: &Repo,
    mb: &MonitoringBranch,
    m: &BatchManifest,
    labels: &HashMap<String, String>,
    accs: &mut BTreeMap<String, TagAcc>,
    interrupt: &Interrupt,
) -> Result<()> {
    let s = &mb.settings;
    let mut scratch = Vec::new();
    let mut label_scratch = Vec::new();
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    for path in &m.files {
        interrupt.check("monitor drift")?;
        let mut reader = open_table(repo, &mb.branch, mb.tree, path)?;
        while let Some(batch) = reader.next_batch()? {
            let cols = reader.columns();
            let find = |name: &str| cols.iter().position(|c| c.name == name);
            let tag_col = m.tag_column(s).and_then(&find);
            let pred_col = find(&s.prediction_column);
            let score_col = find(&s.score_column);
            let id_col = find(&s.request_id_column);
            // Column indices per tag, resolved once per batch of records.
            let mut index: BTreeMap<String, Vec<Option<usize>>> = BTreeMap::new();
            for (tag, acc) in accs.iter_mut() {
                acc.seen_columns.extend(cols.iter().map(|c| c.name.clone()));
                index.insert(tag.clone(), acc.features.iter().map(|f| find(&f.name)).collect());
            }
            // The tag's text, reused while consecutive records share it (no allocation per row).
            let mut tag_bytes = Vec::new();
            let mut tag = m.tag.clone().unwrap_or_default();
            for row in 0..batch.len() {
                if m.tag.is_none() {
                    let Some(c) = tag_col else { continue };
                    let cell = batch.cell(row, c);
                    if cells::is_null(cell) {
                        continue;
                    }
                    cells::category(cell, false, &mut tag_bytes);
                    if tag_bytes != tag.as_bytes() {
                        tag = String::from_utf8_lossy(&tag_bytes).into_owned();
                    }
                }
                match found.get_mut(&tag) {
                    Some(n) => *n += 1,
                    None => {
                        found.insert(tag.clone(), 1);
                    }
                }
                let Some(acc) = accs.get_mut(&tag) else { continue };
                acc.rows += 1;
                let idx = &index[&tag];
                for (k, (a, col)) in acc.accs.iter_mut().zip(idx).enumerate() {
                    let cell = col.map_or(crate::table::Cell::Null, |c| batch.cell(row, c));
                    if !a.add(cell, &mut scratch) {
                        acc.not_numbers[k] += 1;
                    }
                }
                if let (Some((_, pa)), Some(pc)) = (acc.prediction.as_mut(), pred_col) {
                    pa.add(batch.cell(row, pc), &mut scratch);
                }
                if labels.is_empty() {
                    continue;
                }
                let Some(label) =
                    id_col.and_then(|c| cells::text(batch.cell(row, c))).and_then(|id| labels.get(&id))
                else {
                    continue;
                };
                if let Some(pc) = pred_col {
                    cells::category(batch.cell(row, pc), true, &mut label_scratch);
                    acc.joined
                        .pairs
                        .push((String::from_utf8_lossy(&label_scratch).into_owned(), label.clone()));
                }
                if let Some(x) = score_col.and_then(|c| cells::number(batch.cell(row, c))) {
                    acc.joined.scored.push((x, label.clone()));
                }
            }
        }
    }
    if let Some(e) = m.mismatch(&mb.branch, &found) {
        return Err(e);
    }
    Ok(())
}

fn tag_report(
    repo: &Repo,
    settings: &MonitorSettings,
    tag: String,
    acc: TagAcc,
    reference: Reference,
) -> Result<TagReport> {
    let TagAcc { table, features, accs, not_numbers, prediction, rows, seen_columns, joined } = acc;
    let snapshot = table.snapshot.clone();
    let special: Vec<String> = special_columns(settings, &table).into_iter().map(str::to_string).collect();
    let current: Vec<FeatureData> = accs.into_iter().map(Acc::finish).collect();

    let mut schema = SchemaChanges::default();
    let table_names: HashSet<&str> = table.profiles[0].columns.iter().map(|c| c.name.as_str()).collect();
    let mut added: Vec<String> = seen_columns
        .iter()
        .filter(|c| !table_names.contains(c.as_str()) && !special.contains(c) && !settings.ignore.contains(c))
        .cloned()
        .collect();
    added.sort();
    schema.added = added;
    let mut inputs = Vec::new();
    let mut judged_names = Vec::new();
    for ((f, cur), bad) in features.iter().zip(&current).zip(&not_numbers) {
        if !seen_columns.contains(&f.name) {
            schema.missing.push(f.name.clone());
            continue;
        }
        if *bad > 0 {
            schema.retyped.push(f.name.clone());
        }
        let Some(r) = reference.columns.get(&f.name) else { continue };
        inputs.push(FeatureInput {
            name: &f.name,
            reference: r,
            current: cur,
            thresholds: settings.thresholds_for(&f.name),
        });
        judged_names.push(f.name.clone());
    }
    let verdicts = judge(&inputs, settings.min_rows);
    let prediction_verdict = match prediction {
        Some((c, acc)) if seen_columns.contains(&settings.prediction_column) => {
            let cur = acc.finish();
            reference.columns.get(&c.name).map(|r| {
                let one = [FeatureInput {
                    name: &settings.prediction_column,
                    reference: r,
                    current: &cur,
                    thresholds: settings.thresholds_for(&settings.prediction_column),
                }];
                judge(&one, settings.min_rows).remove(0)
            })
        }
        _ => None,
    };
    let recorded_metric = snapshot.record.metrics.get(&repo.config().tracking.primary_metric).copied();
    let label_metrics = (!joined.pairs.is_empty() || !joined.scored.is_empty())
        .then(|| metrics(&joined, &repo.config().tracking.primary_metric, recorded_metric));

    let mut alerts = Vec::new();
    let alert = |severity, check: &str, feature: Option<&str>, message: String| Alert {
        severity,
        tag: tag.clone(),
        check: check.to_string(),
        feature: feature.map(str::to_string),
        message,
    };
    for v in &verdicts {
        if v.status == Status::Drift {
            alerts.push(alert(
                Severity::High,
                "drift",
                Some(&v.feature),
                format!("{}: {}", v.feature, v.reason),
            ));
        }
        // Too few records say nothing: no alert of any kind on them.
        if v.status == Status::InsufficientData {
            continue;
        }
        for c in v.checks.iter().filter(|c| c.exceeded) {
            // A feature going null is a broken input; values out of range or outliers, a hint.
            let severity = if c.metric == "null_rate_points" { Severity::Medium } else { Severity::Low };
            alerts.push(alert(
                severity,
                c.metric,
                Some(&v.feature),
                format!("{}: {} = {:.4} (threshold {})", v.feature, c.metric, c.value, c.threshold),
            ));
        }
    }
    if let Some(p) = prediction_verdict.as_ref().filter(|p| p.status != Status::InsufficientData) {
        for c in p.checks.iter().filter(|c| c.exceeded && c.metric == "null_rate_points") {
            alerts.push(alert(
                Severity::High,
                "prediction_nulls",
                Some(&p.feature),
                format!(
                    "{}: {:.1} more points of records have no prediction (threshold {})",
                    p.feature, c.value, c.threshold
                ),
            ));
        }
    }
    if let Some(p) = prediction_verdict.as_ref().filter(|p| p.status == Status::Drift) {
        alerts.push(alert(
            Severity::Medium,
            "prediction_drift",
            Some(&p.feature),
            format!("the predictions' distribution moved away from the training labels': {}", p.reason),
        ));
    }
    if !schema.missing.is_empty() || !schema.retyped.is_empty() {
        alerts.push(alert(
            Severity::Medium,
            "schema",
            None,
            format!(
                "schema change against the training data: missing [{}], retyped [{}]",
                schema.missing.join(", "),
                schema.retyped.join(", ")
            ),
        ));
    }
    if let Some(m) = &label_metrics {
        let t = &settings.thresholds;
        let enough = m.rows >= settings.min_rows;
        if let (Some(v), Some(r), true) = (m.value, m.recorded, enough) {
            let drop = match repo.config().tracking.goal {
                Goal::Max => r - v,
                Goal::Min => v - r,
            };
            if drop >= t.metric_drop {
                alerts.push(alert(
                    Severity::High,
                    "metric_drop",
                    None,
                    format!(
                        "{} is {v:.4} on {} labelled requests, {r:.4} at training (threshold {})",
                        m.primary_metric, m.rows, t.metric_drop
                    ),
                ));
            }
        }
        if let (Some(e), true) = (m.ece, enough) {
            if e >= t.ece {
                alerts.push(alert(
                    Severity::Medium,
                    "calibration",
                    None,
                    format!("expected calibration error {e:.4} ≥ {} on {} labelled requests", t.ece, m.rows),
                ));
            }
        }
    }
    let status = verdicts
        .iter()
        .map(|v| v.status)
        .chain(prediction_verdict.iter().map(|v| v.status))
        .max()
        .unwrap_or(Status::InsufficientData);
    Ok(TagReport {
        tag: tag.clone(),
        snapshot: snapshot.commit.to_string(),
        split: snapshot.split.to_string(),
        reference: reference.source,
        rows,
        status,
        features: verdicts,
        prediction: prediction_verdict,
        schema,
        labels: label_metrics,
        alerts,
    })
}

fn commit_report(repo: &Repo, mb: &MonitoringBranch, report: &DriftReport, path: &str) -> Result<String> {
    let body = format!("{}\n", serde_json::to_string_pretty(report).expect("a report serializes"));
    let subject = match report.alerts.len() {
        0 => format!("monitor drift: no alert on {} batch(es)", report.window.batches.len()),
        n => format!("monitor drift: {n} alert(s) on {} batch(es)", report.window.batches.len()),
    };
    let message = Message::new(subject)
        .trailer(keys::ENVIRONMENT, &mb.env)
        .trailer(keys::KIND, "alerts")
        .trailer(keys::ALERT, if report.alert { "yes" } else { "no" })
        .trailer(keys::BATCH, report.window.batches.join(","))
        .render();
    let commit = mb.commit_file(repo, path, body.as_bytes(), &message, "mlgit monitor drift")?;
    Ok(commit.to_string())
}

/// A kind's name in reports.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Numeric => "numeric",
        Kind::Categorical => "categorical",
    }
}
