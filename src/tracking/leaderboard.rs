//! The leaderboard of tracked runs as one table model, shared by `mlgit runs` and the generated
//! `tracking/README.md`: the params that differ between runs as columns, where each run was
//! evaluated, best first — but only among runs evaluated on the same data as the newest run; the
//! others are ranked apart, after them, and a footnote says why. Renders as aligned text, CSV and
//! Markdown (the library renders strings; the CLI prints them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::filter::Filter;
use super::{format_metric, metric_names, rank, RunEntry};
use crate::config::Goal;
use crate::error::{Error, Result};
use crate::snapshot::record::Evaluation;

#[derive(Debug, Clone)]
pub struct BoardOptions {
    /// The metric to rank by.
    pub sort: String,
    pub goal: Goal,
    /// `--where` conditions, all of which a run must meet.
    pub filters: Vec<String>,
    /// The columns to show, in order (None: rank, tag, date, data, eval, differing params, metrics).
    pub columns: Option<Vec<String>>,
    /// Show at most this many runs (comparable ones first).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    pub sort: String,
    pub goal: Goal,
    /// Every metric name of the runs that meet the conditions, the sort metric first.
    pub metrics: Vec<String>,
    /// The params (nested ones dotted) whose values differ between those runs.
    pub params: Vec<String>,
    /// The columns of the table, in order.
    pub columns: Vec<String>,
    /// The newest run: runs evaluated on other data are not comparable with it.
    pub reference: Option<Reference>,
    /// Runs on the revision.
    pub total: usize,
    /// Runs that meet every `--where` condition (before `--limit`).
    pub matched: usize,
    /// Comparable runs best first, then each group of other runs, best first within it.
    pub runs: Vec<RankedRun>,
    #[serde(skip)]
    cols: Vec<Column>,
}

/// What the comparable runs were evaluated on.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub tag: String,
    pub evaluation: Option<Evaluation>,
    /// The split commit of its training data (what comparability falls back to for records
    /// written before `evaluation` existed).
    pub split_commit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RankedRun {
    /// The place among the runs evaluated on the same data (1 = best).
    pub rank: usize,
    /// Evaluated on the same data as the reference run.
    pub comparable: bool,
    #[serde(flatten)]
    pub run: RunEntry,
    #[serde(skip)]
    flat: BTreeMap<String, Value>,
}

/// A column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Rank,
    Tag,
    Date,
    Data,
    Eval,
    Commit,
    Branch,
    Param(String),
    Metric(String),
}

const FIXED: [(&str, Column); 7] = [
    ("#", Column::Rank),
    ("tag", Column::Tag),
    ("date", Column::Date),
    ("data", Column::Data),
    ("eval", Column::Eval),
    ("commit", Column::Commit),
    ("branch", Column::Branch),
];

/// What a table is rendered for: cells differ only where a format needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned text for a terminal ([`to_text`]).
    Text,
    /// CSV ([`to_csv`]): full commit ids, which no CSV reader takes for a number (`45e5218` is
    /// 4.5e5218 to pandas).
    Csv,
    /// A Markdown table ([`to_markdown`]).
    Markdown,
    /// The Markdown table of `tracking/README.md`: each tag links to its run file.
    Readme,
}

/// A rendered leaderboard: cells as plain (unescaped) text, ready for any format; each renderer
/// escapes them for its output.
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    pub rows: Vec<TableRow>,
    /// Why some rows are ranked apart (None when every row is comparable).
    pub footnote: Option<Footnote>,
    /// The column whose cells (tags) [`to_markdown`] links to `runs/<tag>.json`.
    pub links: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TableRow {
    pub cells: Vec<String>,
    pub comparable: bool,
}

#[derive(Debug, Clone)]
pub struct Footnote {
    pub text: String,
    /// One line per group of runs evaluated on the same other data.
    pub groups: Vec<String>,
}

/// Build the leaderboard of `runs` (every run of a revision).
pub fn build(runs: Vec<RunEntry>, opts: &BoardOptions) -> Result<Leaderboard> {
    let total = runs.len();
    let reference = runs.iter().max_by(|a, b| newer(a, b)).map(|r| Reference {
        tag: r.tag.clone(),
        evaluation: r.evaluation.clone(),
        split_commit: r.data.get("split").cloned(),
    });
    let mut flat: Vec<BTreeMap<String, Value>> = runs.iter().map(effective_params).collect();
    // A param that is the run's own tag (a run name set to it) differs in every run and says nothing.
    let own_tag = |k: &String| {
        runs.iter().zip(&flat).all(|(r, p)| p.get(k).map_or(true, |v| v.as_str() == Some(r.tag.as_str())))
    };
    let tag_params: Vec<String> =
        flat.iter().flat_map(|p| p.keys()).filter(|k| own_tag(k)).cloned().collect();
    for p in &mut flat {
        p.retain(|k, _| !tag_params.contains(k));
    }
    let all_metrics = metric_names(&runs, &opts.sort);
    let mut all_params: Vec<String> = flat.iter().flat_map(|p| p.keys().cloned()).collect();
    all_params.sort();
    all_params.dedup();
    let filters = opts
        .filters
        .iter()
        .map(|f| Filter::parse(f).and_then(|f| f.resolve(&all_metrics, &all_params)))
        .collect::<Result<Vec<_>>>()?;
    let matched: Vec<(RunEntry, BTreeMap<String, Value>)> =
        runs.into_iter().zip(flat).filter(|(r, p)| filters.iter().all(|f| f.matches(r, p))).collect();
    let (entries, flats): (Vec<RunEntry>, Vec<_>) = matched.iter().cloned().unzip();
    let metrics = metric_names(&entries, &opts.sort);
    let params = differing(&flats, &all_params);
    let cols = match &opts.columns {
        None => default_columns(&params, &metrics),
        Some(names) => chosen_columns(names, &all_metrics, &all_params)?,
    };
    let matched_count = matched.len();
    let mut ranked = group_and_rank(matched, reference.as_ref(), opts);
    ranked.truncate(opts.limit.unwrap_or(usize::MAX));
    let columns = cols.iter().map(|c| header(c, &metrics)).collect();
    Ok(Leaderboard {
        sort: opts.sort.clone(),
        goal: opts.goal,
        metrics,
        params,
        columns,
        reference,
        total,
        matched: matched_count,
        runs: ranked,
        cols,
    })
}

/// Newer by `created_at` as an instant (records keep the trainer's UTC offset, so their text does
/// not sort by time), then by tag.
fn newer(a: &RunEntry, b: &RunEntry) -> std::cmp::Ordering {
    by_time(a.created_at.as_deref(), b.created_at.as_deref()).then_with(|| a.tag.cmp(&b.tag))
}

/// Order two `created_at` values by the instant they name; a value that is not RFC 3339 sorts
/// before every parsed one (by its text among its kind).
pub fn by_time(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    let parse = |s: Option<&str>| s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => a.cmp(&b),
    }
}

/// Whether two runs' metrics were measured on the same data. When both records say what they were
/// evaluated on: the same split name, the same size when both sizes are known, and the same data
/// tree — a split with no data in the repository (an outside hold-out set) is only comparable with
/// runs of that split name trained from the same split commit. A record that says nothing about
/// its evaluation (written before it existed) is unknown: comparable only with other such records
/// of the same split commit, never with one that does say.
pub fn comparable(a: &RunEntry, b: &RunEntry) -> bool {
    let split = |r: &RunEntry| r.data.get("split").cloned();
    match (&a.evaluation, &b.evaluation) {
        (Some(x), Some(y)) => {
            let rows = match (x.rows, y.rows) {
                (Some(m), Some(n)) => m == n,
                _ => true,
            };
            let data = match (&x.data, &y.data) {
                (Some(m), Some(n)) => m == n,
                (None, None) => split(a) == split(b),
                _ => false,
            };
            x.split == y.split && rows && data
        }
        (None, None) => split(a) == split(b),
        _ => false,
    }
}

/// The comparable runs ranked first, then each group of runs evaluated on the same other data
/// (newest group first), each ranked within itself.
fn group_and_rank(
    runs: Vec<(RunEntry, BTreeMap<String, Value>)>,
    reference: Option<&Reference>,
    opts: &BoardOptions,
) -> Vec<RankedRun> {
    let is_ref = |r: &RunEntry| reference.is_some_and(|x| x.tag == r.tag);
    let reference_run = runs.iter().map(|(r, _)| r).find(|r| is_ref(r)).cloned();
    let mut newest_first: Vec<(RunEntry, BTreeMap<String, Value>)> = runs;
    newest_first.sort_by(|a, b| newer(&b.0, &a.0));
    // Group 0 holds the runs comparable with the reference (which may itself be filtered out).
    let mut groups: Vec<Vec<(RunEntry, BTreeMap<String, Value>)>> = vec![Vec::new()];
    for (run, flat) in newest_first {
        let with_reference = match (&reference_run, reference) {
            (Some(r), _) => comparable(r, &run),
            (None, Some(x)) => comparable(&reference_entry(x), &run),
            (None, None) => true,
        };
        if with_reference {
            groups[0].push((run, flat));
            continue;
        }
        match groups.iter_mut().skip(1).find(|g| comparable(&g[0].0, &run)) {
            Some(g) => g.push((run, flat)),
            None => groups.push(vec![(run, flat)]),
        }
    }
    let mut out = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        let (mut entries, flats): (Vec<RunEntry>, Vec<_>) = group.into_iter().unzip();
        let by_tag: BTreeMap<String, BTreeMap<String, Value>> =
            entries.iter().map(|e| e.tag.clone()).zip(flats).collect();
        rank(&mut entries, &opts.sort, opts.goal);
        for (n, run) in entries.into_iter().enumerate() {
            let flat = by_tag.get(&run.tag).cloned().unwrap_or_default();
            out.push(RankedRun { rank: n + 1, comparable: i == 0, run, flat });
        }
    }
    out
}

/// A stand-in entry holding what the reference recorded about its data.
fn reference_entry(x: &Reference) -> RunEntry {
    RunEntry {
        tag: x.tag.clone(),
        commit: None,
        branch: None,
        created_at: None,
        duration_s: None,
        code_commit: None,
        data: x.split_commit.iter().map(|s| ("split".to_string(), s.clone())).collect(),
        params: Value::Null,
        metrics: BTreeMap::new(),
        record: String::new(),
        evaluation: x.evaluation.clone(),
        overrides: BTreeMap::new(),
    }
}

/// Params with nested objects flattened to dotted keys (`opt.lr`); not an object: none. When a
/// key that holds a dot (`"opt.lr"`, as MLflow-style params are named) would flatten to the same
/// name as a nested one (`opt: {lr}`), its dotted parts are quoted (`"opt.lr"`) so both stay.
pub fn flatten_params(params: &Value) -> BTreeMap<String, Value> {
    fn walk(path: &mut Vec<String>, v: &Value, out: &mut Vec<(Vec<String>, Value)>) {
        match v {
            Value::Object(map) if !map.is_empty() || path.is_empty() => {
                for (k, v) in map {
                    path.push(k.clone());
                    walk(path, v, out);
                    path.pop();
                }
            }
            _ if path.is_empty() => {}
            _ => out.push((path.clone(), v.clone())),
        }
    }
    let mut leaves = Vec::new();
    walk(&mut Vec::new(), params, &mut leaves);
    let plain = |p: &[String]| p.join(".");
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (p, _) in &leaves {
        *count.entry(plain(p)).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (p, v) in leaves {
        let name = plain(&p);
        let key = if count[&name] > 1 && p.iter().any(|k| k.contains('.')) {
            p.iter()
                .map(|k| if k.contains('.') { format!("\"{k}\"") } else { k.clone() })
                .collect::<Vec<_>>()
                .join(".")
        } else {
            name
        };
        out.entry(key).or_insert(v);
    }
    out
}

/// A run's params as shown and compared: the params its training reported, plus each
/// `train-tag --set` override whose key the training did not report (a training that only reads
/// `$MLGIT_PARAMS` reports none).
pub fn effective_params(run: &RunEntry) -> BTreeMap<String, Value> {
    let mut flat = flatten_params(&run.params);
    for (k, v) in &run.overrides {
        let nested = match v {
            Value::Object(_) => flatten_params(v).into_iter().map(|(c, v)| (format!("{k}.{c}"), v)).collect(),
            _ => vec![(k.clone(), v.clone())],
        };
        for (k, v) in nested {
            flat.entry(k).or_insert(v);
        }
    }
    flat
}

/// Whether two param values are the same: numbers by value (`10` and `10.0`, as Python writes a
/// float), arrays and objects element by element, anything else exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// The params whose value (or absence) is not the same in every run.
fn differing(flats: &[BTreeMap<String, Value>], names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|k| {
            let mut values = flats.iter().map(|p| p.get(*k));
            let first = values.next().flatten();
            values.any(|v| match (v, first) {
                (Some(x), Some(y)) => !same_value(x, y),
                (x, y) => x.is_some() != y.is_some(),
            })
        })
        .cloned()
        .collect()
}

fn default_columns(params: &[String], metrics: &[String]) -> Vec<Column> {
    let mut cols = vec![Column::Rank, Column::Tag, Column::Date, Column::Data, Column::Eval];
    cols.extend(params.iter().cloned().map(Column::Param));
    cols.extend(metrics.iter().cloned().map(Column::Metric));
    cols
}

/// `--columns` names: fixed columns (`#`/`rank`, tag, date, data, eval, commit, branch),
/// `params.X`, `metrics.X`, or a bare metric (else param) name.
fn chosen_columns(names: &[String], metrics: &[String], params: &[String]) -> Result<Vec<Column>> {
    let known = |list: &[String], n: &str| list.iter().any(|k| k == n);
    let cols = names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            if n == "rank" {
                return Ok(Column::Rank);
            }
            if let Some((_, c)) = FIXED.iter().find(|(name, _)| *name == n) {
                return Ok(c.clone());
            }
            match (n.strip_prefix("params."), n.strip_prefix("metrics.")) {
                (Some(p), _) if known(params, p) => Ok(Column::Param(p.to_string())),
                (_, Some(m)) if known(metrics, m) => Ok(Column::Metric(m.to_string())),
                _ if known(metrics, n) => Ok(Column::Metric(n.to_string())),
                _ if known(params, n) => Ok(Column::Param(n.to_string())),
                _ => Err(Error::invalid(format!("--columns: no column '{n}'")).with_hint(format!(
                    "columns: #, tag, date, data, eval, commit, branch, the metrics ({}) and the params ({})",
                    if metrics.is_empty() { "none".into() } else { metrics.join(", ") },
                    if params.is_empty() { "none".into() } else { params.join(", ") },
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if cols.is_empty() {
        return Err(Error::invalid(format!("--columns '{}' names no column", names.join(",")))
            .with_hint("name the columns, comma-separated, e.g. `--columns tag,lr,accuracy`"));
    }
    Ok(cols)
}

/// A column's title: a param named like a metric, a fixed column or the CSV's own `comparable`
/// column keeps its `params.` prefix, so every title names one column.
fn header(c: &Column, metrics: &[String]) -> String {
    match c {
        Column::Param(p)
            if metrics.contains(p)
                || p == "comparable"
                || p == "rank"
                || FIXED.iter().any(|(n, _)| n == p) =>
        {
            format!("params.{p}")
        }
        Column::Param(p) | Column::Metric(p) => p.clone(),
        _ => FIXED.iter().find(|(_, col)| col == c).map(|(n, _)| n.to_string()).unwrap_or_default(),
    }
}

fn short(s: &str) -> &str {
    s.get(..7).unwrap_or(s)
}

/// The evaluation in a cell: `validation (91)`.
fn eval_cell(r: &RunEntry) -> String {
    match &r.evaluation {
        Some(Evaluation { split, rows: Some(n), .. }) => format!("{split} ({n})"),
        Some(e) => e.split.clone(),
        None => "-".into(),
    }
}

/// What a run was evaluated on, in words, for the footnote.
fn describe(evaluation: Option<&Evaluation>, split_commit: Option<&String>) -> String {
    match evaluation {
        Some(e) => {
            let mut parts = vec![e.split.clone()];
            if let Some(n) = e.rows {
                parts.push(format!("{n} rows"));
            }
            if let Some(d) = &e.data {
                parts.push(format!("data {}", short(d)));
            }
            parts.join(", ")
        }
        None => match split_commit {
            Some(c) => format!("split commit {}", short(c)),
            None => "data not recorded".into(),
        },
    }
}

/// A `created_at` in UTC to the minute (records keep the trainer's offset: local times of
/// machines in different zones would not read in order).
fn date_cell(d: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(d) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => d.get(..16).unwrap_or(d).replace('T', " "),
    }
}

fn param_cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

impl Leaderboard {
    /// The table's cells for one output.
    pub fn table(&self, style: Style) -> Table {
        let numeric = self
            .cols
            .iter()
            .map(|c| match c {
                Column::Rank | Column::Metric(_) => true,
                Column::Param(p) => self.runs.iter().all(|r| r.flat.get(p).map_or(true, Value::is_number)),
                _ => false,
            })
            .collect();
        let rows = self
            .runs
            .iter()
            .map(|r| TableRow {
                cells: self.cols.iter().map(|c| self.cell(r, c, style)).collect(),
                comparable: r.comparable,
            })
            .collect();
        let links =
            (style == Style::Readme).then(|| self.cols.iter().position(|c| *c == Column::Tag)).flatten();
        Table { header: self.columns.clone(), numeric, rows, footnote: self.footnote(), links }
    }

    fn cell(&self, r: &RankedRun, c: &Column, style: Style) -> String {
        let run = &r.run;
        let csv = style == Style::Csv;
        // CSV is read by programs: nothing for a missing value (pandas' NaN, not the text "-"),
        // full ids and exact metric values.
        let missing = if csv { "" } else { "-" };
        let or_dash = |s: Option<&str>| s.unwrap_or(missing).to_string();
        let id = |s: &str| if csv { s.to_string() } else { short(s).to_string() };
        match c {
            Column::Rank if r.comparable => r.rank.to_string(),
            Column::Rank => "*".into(),
            Column::Tag => run.tag.clone(),
            Column::Date => or_dash(run.created_at.as_deref().map(date_cell).as_deref()),
            Column::Data => or_dash(run.data.get("split").map(|c| id(c)).as_deref()),
            Column::Eval if run.evaluation.is_none() => missing.to_string(),
            Column::Eval => eval_cell(run),
            Column::Commit => or_dash(run.commit.as_deref().map(id).as_deref()),
            Column::Branch => or_dash(run.branch.as_deref()),
            Column::Param(p) => r.flat.get(p).map_or_else(|| missing.to_string(), param_cell),
            Column::Metric(m) => match run.metrics.get(m) {
                Some(v) if csv => v.to_string(),
                Some(v) => format_metric(*v),
                None => missing.to_string(),
            },
        }
    }

    fn footnote(&self) -> Option<Footnote> {
        let reference = self.reference.as_ref()?;
        let apart: Vec<&RankedRun> = self.runs.iter().filter(|r| !r.comparable).collect();
        if apart.is_empty() {
            return None;
        }
        let text = format!(
            "* evaluated on other data than the newest run, {} ({}): not comparable with it, so ranked apart",
            reference.tag,
            describe(reference.evaluation.as_ref(), reference.split_commit.as_ref())
        );
        // One line per group, in table order: a group's runs are contiguous, from its rank 1.
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for r in apart {
            let what = describe(r.run.evaluation.as_ref(), r.run.data.get("split"));
            match groups.last_mut() {
                Some((_, tags)) if r.rank > 1 => tags.push(&r.run.tag),
                _ => groups.push((what, vec![&r.run.tag])),
            }
        }
        Some(Footnote {
            text,
            groups: groups.into_iter().map(|(what, tags)| format!("{}: {what}", tags.join(", "))).collect(),
        })
    }
}

/// Text as a terminal shows it: control characters (escape sequences, newlines) and invisible
/// Unicode formatting (bidirectional overrides, line separators) written as escapes (`\n`,
/// `\u{1b}`), so a record cannot drive the viewer's terminal or break a row.
pub fn terminal_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            _ if c.is_control() => c.escape_default().to_string(),
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' => {
                c.escape_unicode().to_string()
            }
            _ => c.to_string(),
        })
        .collect()
}

/// Text as a Markdown (GitHub) table cell shows it literally: [`terminal_text`] (one line), then
/// `<`, `>`, `&` as HTML entities and a backslash before every other character Markdown acts on,
/// so params cannot add HTML, links, images, emphasis or math to the page, nor end the cell.
pub fn markdown_text(s: &str) -> String {
    let mut out = String::new();
    for c in terminal_text(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ if "\\`*_[]|~!$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Aligned columns, numbers on the right, then the footnote.
pub fn to_text(t: &Table) -> String {
    let esc = |row: &Vec<String>| row.iter().map(|c| terminal_text(c)).collect::<Vec<_>>();
    let rows: Vec<Vec<String>> =
        std::iter::once(esc(&t.header)).chain(t.rows.iter().map(|r| esc(&r.cells))).collect();
    let all = rows.iter();
    let mut widths = vec![0; t.header.len()];
    for row in all.clone() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for row in all {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if t.numeric[c] {
                    format!("{v:>w$}", w = widths[c])
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    if let Some(f) = &t.footnote {
        s.push_str(&terminal_text(&f.text));
        s.push_str(":\n");
        for g in &f.groups {
            s.push_str(&format!("  {}\n", terminal_text(g)));
        }
    }
    s
}

/// CSV (RFC 4180) with a final `comparable` column instead of the footnote.
pub fn to_csv(t: &Table) -> String {
    fn field(v: &str) -> String {
        if v.contains([',', '"', '\n', '\r']) || v.trim() != v {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    }
    let line = |cells: &[String], last: &str| {
        let mut f: Vec<String> = cells.iter().map(|c| field(c)).collect();
        f.push(last.to_string());
        f.join(",") + "\n"
    };
    let mut s = line(&t.header, "comparable");
    for r in &t.rows {
        s.push_str(&line(&r.cells, if r.comparable { "true" } else { "false" }));
    }
    s
}

/// A Markdown (GitHub) table, then the footnote as a paragraph and a list.
pub fn to_markdown(t: &Table) -> String {
    let esc = markdown_text;
    let mut s = format!("| {} |\n|", t.header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | "));
    for n in &t.numeric {
        s.push_str(if *n { "---:|" } else { "---|" });
    }
    s.push('\n');
    for r in &t.rows {
        let cells: Vec<String> = r
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| match t.links {
                Some(l) if l == i => format!("[{}](runs/{}.json)", esc(c), url_path(c)),
                _ => esc(c),
            })
            .collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if let Some(f) = &t.footnote {
        s.push_str(&format!("\n{}:\n\n", esc(&f.text)));
        for g in &f.groups {
            s.push_str(&format!("- {}\n", esc(g)));
        }
    }
    s
}

/// A tag as a relative link's path: anything but letters, digits and `-._/` percent-encoded.
fn url_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The generated `tracking/README.md`: the table `mlgit runs --format markdown` prints, with each
/// tag linked to its run file.
pub fn readme(board: &Leaderboard) -> String {
    let dir = if board.goal == Goal::Max { "highest" } else { "lowest" };
    let mut s = String::from("# Tracking\n\n");
    s.push_str(&format!(
        "Generated by `mlgit merge-tracking`; do not edit. Every training run (snapshot tag) merged into \
         main, best first by `{}` ({dir} first, as set in `mlgit.yaml`), among the runs evaluated on the \
         same data as the newest run; `eval` is the split evaluated on and its size, `data` the split \
         commit trained on, the other columns the params that differ between runs, then the metrics. One \
         file per run is in `runs/`, the list of all runs in `runs.json`; `mlgit runs` prints this table \
         and `mlgit show TAG` one run in detail.\n\n",
        board.sort
    ));
    if board.runs.is_empty() {
        s.push_str("No runs yet.\n");
        return s;
    }
    s.push_str(&to_markdown(&board.table(Style::Readme)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(tag: &str, at: &str, params: Value, acc: f64, eval: Option<(&str, u64, &str)>) -> RunEntry {
        let mut record = json!({"schema": 1, "tag": tag, "created_at": at, "params": params,
            "metrics": {"accuracy": acc}, "data": {"split": "a".repeat(40)}});
        if let Some((split, rows, data)) = eval {
            record["evaluation"] = json!({"split": split, "rows": rows, "data": data});
        }
        super::super::entry_of(tag, &record, None)
    }

    fn opts() -> BoardOptions {
        BoardOptions { sort: "accuracy".into(), goal: Goal::Max, filters: vec![], columns: None, limit: None }
    }

    #[test]
    fn differing_params_become_columns_and_other_data_is_ranked_apart() {
        let v91 = Some(("validation", 91, "d1"));
        let runs = vec![
            entry(
                "m-v1",
                "2026-01-01T10:00:00Z",
                json!({"model": "logreg", "seed": 1, "name": "m-v1"}),
                0.8,
                v91,
            ),
            entry(
                "m-v2",
                "2026-01-02T10:00:00Z",
                json!({"model": "forest", "seed": 1, "opt": {"lr": 0.1}}),
                0.9,
                v91,
            ),
            entry(
                "m-v3",
                "2026-01-03T10:00:00Z",
                json!({"model": "forest", "seed": 1, "name": "m-v3"}),
                0.7,
                Some(("validation", 105, "d2")),
            ),
        ];
        let board = build(runs, &opts()).unwrap();
        assert_eq!(board.params, ["model", "opt.lr"]);
        let t = board.table(Style::Text);
        assert_eq!(t.header, ["#", "tag", "date", "data", "eval", "model", "opt.lr", "accuracy"]);
        let tags: Vec<(&str, &str)> =
            t.rows.iter().map(|r| (r.cells[0].as_str(), r.cells[1].as_str())).collect();
        assert_eq!(tags, [("1", "m-v3"), ("*", "m-v2"), ("*", "m-v1")]);
        let text = to_text(&t);
        assert!(
            text.contains(
                "* evaluated on other data than the newest run, m-v3 (validation, 105 rows, data d2)"
            ),
            "{text}"
        );
        assert!(text.contains("  m-v2, m-v1: validation, 91 rows, data d1\n"), "{text}");
        let csv = to_csv(&t);
        assert!(
            csv.starts_with(
                "#,tag,date,data,eval,model,opt.lr,accuracy,comparable\n1,m-v3,2026-01-03 10:00,"
            ),
            "{csv}"
        );
        assert!(to_markdown(&board.table(Style::Readme)).contains(r"| \* | [m-v2](runs/m-v2.json) |"));
    }

    #[test]
    fn csv_leaves_missing_values_empty_and_keeps_metrics_exact() {
        let runs = vec![
            entry("a", "2026-01-01T00:00:00Z", json!({"lr": 0.1}), 0.123456789, None),
            entry("b", "2026-01-02T00:00:00Z", json!({}), 0.9, None),
        ];
        let board = build(runs, &opts()).unwrap();
        let csv = to_csv(&board.table(Style::Csv));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "#,tag,date,data,eval,lr,accuracy,comparable", "{csv}");
        assert!(lines[1].ends_with(",,,0.9,true") && lines[1].contains(&"a".repeat(40)), "{csv}");
        assert!(lines[2].ends_with(",0.1,0.123456789,true"), "{csv}");
        // The terminal keeps its dashes and four decimals.
        let text = to_text(&board.table(Style::Text));
        assert!(text.contains("0.1235") && text.contains(" - "), "{text}");
    }

    #[test]
    fn columns_and_conditions_choose_what_is_shown() {
        let runs = vec![
            entry("a", "2026-01-01", json!({"lr": 0.1}), 0.8, None),
            entry("b", "2026-01-02", json!({"lr": 0.01}), 0.9, None),
        ];
        let o = BoardOptions {
            filters: vec!["params.lr<0.05".into()],
            columns: Some(vec!["tag,lr".into(), "accuracy".into()]),
            ..opts()
        };
        let board = build(runs.clone(), &o).unwrap();
        assert_eq!((board.total, board.matched), (2, 1));
        let t = board.table(Style::Text);
        assert_eq!(t.header, ["tag", "lr", "accuracy"]);
        assert_eq!(t.rows[0].cells, ["b", "0.01", "0.9"]);
        let bad = BoardOptions { columns: Some(vec!["f1".into()]), ..opts() };
        let e = build(runs, &bad).unwrap_err();
        assert!(e.message().contains("no column 'f1'") && e.hint().unwrap().contains("lr"), "{e}");
    }

    #[test]
    fn old_records_without_evaluation_compare_by_split_commit() {
        let mut a = entry("a", "2026-01-01", json!({}), 0.8, None);
        let b = entry("b", "2026-01-02", json!({}), 0.9, None);
        assert!(comparable(&a, &b));
        a.data.insert("split".into(), "b".repeat(40));
        assert!(!comparable(&a, &b));
        // Unknown data is not silently taken for known data.
        a.data.clear();
        assert!(!comparable(&a, &b));
    }
}
