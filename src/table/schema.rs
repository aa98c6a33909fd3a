//! Table schemas: inferred by the first record-level clean, committed as
//! `schema/<table>.json`, edited by users to add constraints (`not_null`, `min`/`max`,
//! `allowed`, `unique`), enforced record by record by later cleans. Types follow the value rules
//! of [`super::values`]: text is an int if it parses as `i64`, a float if as `f64`, a bool if it
//! is `true`/`false` (any case), a timestamp if it is an ISO-8601 date or date-time.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::sketch::{hash128, BuildKey};
use super::values::{parse_bool_word, parse_timestamp, value_of, Value};
use super::{canonical_cell, BadRecord, Batch, Cell, Column};
use crate::error::{Error, Result};

/// `schema/<table>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// The file format version (1).
    pub schema: u32,
    pub table: String,
    pub columns: Vec<ColumnSchema>,
    /// Columns whose values together identify a record (a user constraint): a repeated key is dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    pub name: String,
    /// `int`, `float`, `bool`, `string`, `timestamp` or `nested`.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Whether the inferred data had nulls (informative; `not_null` is the enforced constraint).
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_null: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Allowed values (canonical text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Int,
    Float,
    Bool,
    String,
    Timestamp,
    Nested,
}

/// How a table's columns differ from its schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnChanges {
    pub added: Vec<String>,
    pub missing: Vec<String>,
    /// (column, schema type, what the data holds).
    pub retyped: Vec<(String, String, String)>,
}

impl ColumnChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.missing.is_empty() && self.retyped.is_empty()
    }
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::String => "string",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Nested => "nested",
        }
    }
}

/// Infers a schema from the rows it is shown.
pub struct SchemaInferrer {
    rows: u64,
    columns: Vec<Inferred>,
}

/// What one column's values have allowed so far.
struct Inferred {
    name: String,
    nulls: bool,
    values: u64,
    int: bool,
    float: bool,
    bool: bool,
    timestamp: bool,
    nested: bool,
    /// A typed (Parquet) column of text or bytes: a string whatever its values look like (zip
    /// codes `01234` in one batch must not make `SW1A` in the next a bad record).
    text: bool,
}

impl Inferred {
    fn new(column: &Column, nulls: bool) -> Inferred {
        Inferred {
            text: stored_as_text(&column.stored),
            name: column.name.clone(),
            nulls,
            values: 0,
            int: true,
            float: true,
            bool: true,
            timestamp: true,
            nested: true,
        }
    }

    fn add(&mut self, cell: Cell<'_>) {
        let v = value_of(cell, self.timestamp);
        if v == Value::Null {
            self.nulls = true;
            return;
        }
        self.values += 1;
        let (int, float, bool, timestamp, nested) = match v {
            Value::Int(_) | Value::UInt(_) => (true, true, false, false, false),
            Value::Float(_) => (false, true, false, false, false),
            Value::Bool(_) => (false, false, true, false, false),
            Value::Timestamp(_) => (false, false, false, true, false),
            Value::Nested(_) => (false, false, false, false, true),
            Value::Text(_) | Value::Null => (false, false, false, false, false),
        };
        self.int &= int;
        self.float &= float;
        self.bool &= bool;
        self.timestamp &= timestamp;
        self.nested &= nested;
    }

    fn finish(self) -> ColumnSchema {
        let kind = if self.text || self.values == 0 {
            ColumnType::String
        } else if self.int {
            ColumnType::Int
        } else if self.float {
            ColumnType::Float
        } else if self.bool {
            ColumnType::Bool
        } else if self.timestamp {
            ColumnType::Timestamp
        } else if self.nested {
            ColumnType::Nested
        } else {
            ColumnType::String
        };
        ColumnSchema {
            name: self.name,
            kind,
            nullable: self.nulls || self.values == 0,
            not_null: false,
            min: None,
            max: None,
            allowed: None,
        }
    }
}

impl SchemaInferrer {
    pub fn new(columns: &[Column]) -> SchemaInferrer {
        SchemaInferrer { rows: 0, columns: columns.iter().map(|c| Inferred::new(c, false)).collect() }
    }

    /// Look at the rows of `batch` whose `keep` is true. `columns` may have grown since the last
    /// batch (JSONL): a new column was null in every row before.
    pub fn observe(&mut self, columns: &[Column], batch: &Batch, keep: &[bool]) {
        for c in columns.iter().skip(self.columns.len()) {
            self.columns.push(Inferred::new(c, self.rows > 0));
        }
        let rows: Vec<usize> = (0..batch.len()).filter(|&r| keep.get(r).copied().unwrap_or(false)).collect();
        for (col, inferred) in self.columns.iter_mut().enumerate() {
            for &row in &rows {
                inferred.add(batch.cell(row, col));
            }
        }
        self.rows += rows.len() as u64;
    }

    /// The schema of table `table` (format version 1, no constraints yet). A column that was
    /// null throughout is a nullable string.
    pub fn finish(self, table: &str) -> TableSchema {
        TableSchema {
            schema: 1,
            table: table.to_string(),
            columns: self.columns.into_iter().map(Inferred::finish).collect(),
            unique: Vec::new(),
        }
    }
}

/// What to do with a schema file that cannot be used.
const PARSE_HINT: &str = "fix the file (keys: schema, table, columns [name, type, nullable, not_null, min, max, \
     allowed], unique; types: int, float, bool, string, timestamp, nested), or delete it and let the next clean \
     infer it again";

impl TableSchema {
    /// Parse a schema file; `origin` names it in errors (e.g. `clean:schema/customers.json`).
    /// Errors name the line and column; besides JSON that does not fit the format, a version
    /// other than 1, a column listed twice, a `unique` column that is not a column, `min`/`max`
    /// on a column that is not a number, and `min` above `max` are refused.
    pub fn parse(text: &str, origin: &str) -> Result<TableSchema> {
        let schema: TableSchema = serde_json::from_str(text).map_err(|e| {
            let what = e.to_string();
            let what = what.rsplit_once(" at line ").map(|(w, _)| w.to_string()).unwrap_or(what);
            Error::invalid(format!(
                "{origin}: line {}, column {}: {what}: not a table schema mlgit reads",
                e.line(),
                e.column()
            ))
            .with_hint(PARSE_HINT)
        })?;
        let refuse = |needle: &str, nth: usize, what: String| {
            let at = match locate(text, needle, nth) {
                Some((l, c)) => format!("line {l}, column {c}: "),
                None => String::new(),
            };
            Err(Error::invalid(format!("{origin}: {at}{what}")).with_hint(PARSE_HINT))
        };
        if schema.schema != 1 {
            return refuse(
                "\"schema\"",
                0,
                format!("schema version {} is not one this mlgit reads (it reads version 1)", schema.schema),
            );
        }
        let mut names = HashSet::new();
        for c in &schema.columns {
            let quoted = serde_json::to_string(&c.name).unwrap_or_default();
            if !names.insert(c.name.as_str()) {
                return refuse(&quoted, 1, format!("column '{}' is listed twice", c.name));
            }
            let numeric = matches!(c.kind, ColumnType::Int | ColumnType::Float);
            if !numeric && (c.min.is_some() || c.max.is_some()) {
                return refuse(
                    &quoted,
                    0,
                    format!(
                        "column '{}' is a {}: min and max apply to int and float columns only",
                        c.name,
                        c.kind.as_str()
                    ),
                );
            }
            if let (Some(min), Some(max)) = (c.min, c.max) {
                if min > max {
                    return refuse(
                        &quoted,
                        0,
                        format!("column '{}' has min {min} above its max {max}", c.name),
                    );
                }
            }
        }
        for u in &schema.unique {
            if !names.contains(u.as_str()) {
                let quoted = serde_json::to_string(u).unwrap_or_default();
                let n = text.matches(quoted.as_str()).count().saturating_sub(1);
                return refuse(&quoted, n, format!("unique names '{u}', which is not a column of the table"));
            }
        }
        Ok(schema)
    }

    /// Deterministic pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// How `columns` (a reader's) differ from the schema: columns added (in the data only, in
    /// data order), missing (in the schema only, in schema order) and retyped. A column is
    /// retyped only when its stored type is a typed Arrow type (Parquet) whose values cannot be
    /// the schema's type (an integer type into a float column is fine, anything into a string
    /// column too); CSV (`text`), JSONL (`json`) and Arrow string columns hold values that are
    /// checked one by one instead.
    pub fn compare_columns(&self, columns: &[Column]) -> ColumnChanges {
        let mut changes = ColumnChanges::default();
        for c in columns {
            match self.columns.iter().find(|s| s.name == c.name) {
                None => changes.added.push(c.name.clone()),
                Some(s) => {
                    if let Some(stored) = stored_type(&c.stored) {
                        let fits = stored == s.kind
                            || s.kind == ColumnType::String
                            || (stored == ColumnType::Int && s.kind == ColumnType::Float);
                        if !fits {
                            changes.retyped.push((
                                c.name.clone(),
                                s.kind.as_str().to_string(),
                                c.stored.clone(),
                            ));
                        }
                    }
                }
            }
        }
        for s in &self.columns {
            if !columns.iter().any(|c| c.name == s.name) {
                changes.missing.push(s.name.clone());
            }
        }
        changes
    }

    /// A checker of rows of a table with these `columns` against this schema.
    pub fn checker(&self, columns: &[Column]) -> RowChecker {
        let mut checker = RowChecker {
            checks: self
                .columns
                .iter()
                .map(|c| Check {
                    name: c.name.clone(),
                    kind: c.kind,
                    not_null: c.not_null,
                    min: c.min,
                    max: c.max,
                    allowed: c.allowed.as_ref().map(|a| a.iter().cloned().collect()),
                    allowed_list: c.allowed.clone().unwrap_or_default(),
                    index: None,
                })
                .collect(),
            unique: self.unique.clone(),
            unique_index: Vec::new(),
            seen: HashSet::with_hasher(BuildKey),
            buf: Vec::new(),
        };
        checker.set_columns(columns);
        checker
    }
}

/// The 1-based line and column of the `nth` (0-based) occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str, nth: usize) -> Option<(usize, usize)> {
    let (at, _) = text.match_indices(needle).nth(nth)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// The schema type of the values of an Arrow type (None: CSV text, JSON, or a type mlgit does not
/// map; their values are checked one by one).
fn stored_type(stored: &str) -> Option<ColumnType> {
    let t = stored.trim().to_ascii_lowercase();
    if let Some(inner) = t.strip_prefix("dictionary(") {
        // Dictionary(Int32, Utf8): the values' type is the second.
        let values = inner.split_once(',').map(|(_, v)| v.trim().trim_end_matches(')'))?;
        return stored_type(values);
    }
    let starts = |p: &[&str]| p.iter().any(|x| t.starts_with(x));
    if starts(&["int", "uint"]) {
        Some(ColumnType::Int)
    } else if starts(&["float", "decimal"]) {
        Some(ColumnType::Float)
    } else if starts(&["bool"]) {
        Some(ColumnType::Bool)
    } else if starts(&["timestamp", "date"]) {
        Some(ColumnType::Timestamp)
    } else if starts(&["list", "largelist", "fixedsizelist", "struct", "map"]) {
        Some(ColumnType::Nested)
    } else if starts(&["utf8", "largeutf8", "utf8view"]) {
        // A Parquet string column where the schema wants numbers: the batch changed type.
        Some(ColumnType::String)
    } else {
        None
    }
}

/// Whether a stored type is an Arrow text or bytes type (Utf8, LargeUtf8, Utf8View, the binary
/// types, Time32/Time64, or a dictionary of them): its values are strings, however they look.
/// CSV (`text`) and JSONL (`json`) columns are typed by their values instead.
fn stored_as_text(stored: &str) -> bool {
    let t = stored.trim().to_ascii_lowercase();
    if let Some(inner) = t.strip_prefix("dictionary(") {
        return inner.split_once(',').is_some_and(|(_, v)| stored_as_text(v.trim().trim_end_matches(')')));
    }
    ["utf8", "largeutf8", "binary", "largebinary", "fixedsizebinary", "time32", "time64"]
        .iter()
        .any(|p| t.starts_with(p))
}

/// One column's checks.
struct Check {
    name: String,
    kind: ColumnType,
    not_null: bool,
    min: Option<f64>,
    max: Option<f64>,
    allowed: Option<HashSet<String>>,
    allowed_list: Vec<String>,
    /// The column's position in the data; None: missing (every value null).
    index: Option<usize>,
}

/// Checks rows one by one (types, `not_null`, `min`/`max`, `allowed`, `unique` across every row
/// it has seen). The unique check keeps a 128-bit xxHash3 of each key, not its text: 16 bytes a
/// record (plus the set's overhead), for as long as the checker lives.
pub struct RowChecker {
    checks: Vec<Check>,
    unique: Vec<String>,
    unique_index: Vec<Option<usize>>,
    seen: HashSet<u128, BuildKey>,
    buf: Vec<u8>,
}

/// Longest value quoted in a reason.
const QUOTE_MAX: usize = 60;

impl RowChecker {
    /// Follow a reader whose columns changed (a JSONL table learned a column), keeping the keys
    /// seen so far for `unique`.
    pub fn set_columns(&mut self, columns: &[Column]) {
        let find = |name: &str| columns.iter().position(|c| c.name == name);
        for c in &mut self.checks {
            c.index = find(&c.name);
        }
        self.unique_index = self.unique.iter().map(|u| find(u)).collect();
    }

    /// None when the row conforms; else why not (check `schema`, the column, the line).
    /// Columns missing from the data are null; columns the schema does not have are not checked.
    /// A row refused for any reason does not take its `unique` key.
    pub fn check(&mut self, batch: &Batch, row: usize) -> Option<BadRecord> {
        for c in &self.checks {
            let cell = c.index.map_or(Cell::Null, |i| batch.cell(row, i));
            if let Err(reason) = check_cell(c, cell, &mut self.buf) {
                return Some(BadRecord {
                    line: batch.line(row),
                    column: Some(c.name.clone()),
                    check: "schema",
                    reason,
                });
            }
        }
        if self.unique.is_empty() {
            return None;
        }
        self.buf.clear();
        for i in &self.unique_index {
            canonical_cell(i.map_or(Cell::Null, |i| batch.cell(row, i)), &mut self.buf);
            self.buf.push(0x1f);
        }
        if self.seen.insert(hash128(&self.buf)) {
            return None;
        }
        let key: Vec<String> = self
            .unique
            .iter()
            .zip(&self.unique_index)
            .map(|(name, i)| {
                let mut text = Vec::new();
                canonical_cell(i.map_or(Cell::Null, |i| batch.cell(row, i)), &mut text);
                format!("{name}={}", quote(&String::from_utf8_lossy(&text)))
            })
            .collect();
        Some(BadRecord {
            line: batch.line(row),
            column: Some(self.unique.join(",")),
            check: "schema",
            reason: format!("duplicate key {}: an earlier record has the same unique key", key.join(", ")),
        })
    }
}

/// `'text'`, cut to [`QUOTE_MAX`] characters.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((at, _)) => format!("'{}…'", &s[..at]),
        None => format!("'{s}'"),
    }
}

fn check_cell(c: &Check, cell: Cell<'_>, buf: &mut Vec<u8>) -> std::result::Result<(), String> {
    if cell == Cell::Null {
        if c.not_null {
            return Err("the value is missing (null) and the column is not_null".to_string());
        }
        return Ok(());
    }
    let text = || {
        let mut out = Vec::new();
        canonical_cell(cell, &mut out);
        quote(&String::from_utf8_lossy(&out))
    };
    let number = match coerce(c.kind, cell) {
        Some(n) => n,
        None => {
            let what = match c.kind {
                ColumnType::Int => "an int",
                ColumnType::Float => "a float",
                ColumnType::Bool => "a bool (true, false, 1 or 0)",
                ColumnType::Timestamp => "a timestamp (an ISO-8601 date or date-time)",
                ColumnType::Nested => "a nested value (a JSON array or object)",
                ColumnType::String => "a string",
            };
            return Err(format!("value {} is not {what}", text()));
        }
    };
    if let Some(x) = number {
        if let Some(min) = c.min {
            if x.below(min) {
                return Err(format!("value {} is below the minimum {min}", text()));
            }
        }
        if let Some(max) = c.max {
            if x.above(max) {
                return Err(format!("value {} is above the maximum {max}", text()));
            }
        }
    }
    if let Some(allowed) = &c.allowed {
        buf.clear();
        canonical_cell(cell, buf);
        let ok = std::str::from_utf8(buf).is_ok_and(|s| allowed.contains(s));
        if !ok {
            let mut list: Vec<String> = c.allowed_list.iter().take(10).map(|a| quote(a)).collect();
            if c.allowed_list.len() > 10 {
                list.push("…".into());
            }
            return Err(format!("value {} is not one of the allowed values ({})", text(), list.join(", ")));
        }
    }
    Ok(())
}

/// A value of an int or float column, for `min`/`max`: integers (`i64` and `u64` alike) are
/// kept exact, so 2^53 + 1 is above a max of 2^53 and `u64::MAX` above a max of `u64::MAX − 1`
/// as far as an `f64` bound can say it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    /// Whether the value is below `bound`. For an integer n, n < b exactly when n < ceil(b);
    /// `as i128` saturates far beyond any `i64` or `u64`, so huge bounds still compare right.
    fn below(self, bound: f64) -> bool {
        match self {
            Number::Int(n) => n < bound.ceil() as i128,
            Number::Float(x) => x < bound,
        }
    }

    /// Whether the value is above `bound` (n > b exactly when n > floor(b)).
    fn above(self, bound: f64) -> bool {
        match self {
            Number::Int(n) => n > bound.floor() as i128,
            Number::Float(x) => x > bound,
        }
    }
}

/// Text as an integer: `i64`, or `u64` above `i64::MAX`.
fn parse_int(s: &str) -> Option<Number> {
    match s.parse::<i64>() {
        Ok(i) => Some(Number::Int(i128::from(i))),
        Err(_) => s.parse::<u64>().ok().map(|u| Number::Int(i128::from(u))),
    }
}

/// Whether `cell` is a value of type `kind`: None if not; Some(number) with the number for int
/// and float columns (for min/max), Some(None) for the others.
fn coerce(kind: ColumnType, cell: Cell<'_>) -> Option<Option<Number>> {
    match kind {
        ColumnType::String => Some(None),
        ColumnType::Int => match cell {
            Cell::Int(i) => Some(Some(Number::Int(i128::from(i)))),
            Cell::UInt(u) => Some(Some(Number::Int(i128::from(u)))),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(Some(Number::Float(f))),
            Cell::Text(s) => parse_int(s).map(Some),
            _ => None,
        },
        ColumnType::Float => match cell {
            Cell::Int(i) => Some(Some(Number::Int(i128::from(i)))),
            Cell::UInt(u) => Some(Some(Number::Int(i128::from(u)))),
            Cell::Float(f) => Some(Some(Number::Float(f))),
            Cell::Text(s) => parse_int(s).or_else(|| s.parse::<f64>().ok().map(Number::Float)).map(Some),
            _ => None,
        },
        ColumnType::Bool => match cell {
            Cell::Bool(_) | Cell::Int(0 | 1) => Some(None),
            Cell::Text(s) if parse_bool_word(s).is_some() || s == "1" || s == "0" => Some(None),
            _ => None,
        },
        ColumnType::Timestamp => match cell {
            Cell::Timestamp(_) => Some(None),
            Cell::Text(s) => parse_timestamp(s).map(|_| None),
            _ => None,
        },
        ColumnType::Nested => match cell {
            Cell::Nested(_) => Some(None),
            Cell::Text(s) if s.starts_with('[') || s.starts_with('{') => {
                serde_json::from_str::<serde_json::Value>(s).ok().map(|_| None)
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::OwnedCell;

    fn cols(names: &[&str], stored: &str) -> Vec<Column> {
        names.iter().map(|n| Column { name: n.to_string(), stored: stored.into() }).collect()
    }

    fn t(s: &str) -> OwnedCell {
        if s.is_empty() {
            OwnedCell::Null
        } else {
            OwnedCell::Text(s.into())
        }
    }

    fn infer(names: &[&str], rows: Vec<Vec<OwnedCell>>) -> TableSchema {
        let columns = cols(names, "text");
        let mut i = SchemaInferrer::new(&columns);
        let n = rows.len();
        i.observe(&columns, &Batch::from_rows(rows), &vec![true; n]);
        i.finish("people")
    }

    fn kinds(s: &TableSchema) -> Vec<(&str, &str, bool)> {
        s.columns.iter().map(|c| (c.name.as_str(), c.kind.as_str(), c.nullable)).collect()
    }

    #[test]
    fn a_parquet_string_column_of_digits_is_inferred_as_int() {
        // Typed text columns are strings whatever their values look like (a zip code `01234`
        // in the first batch must not refuse `SW1A` in the next); text/json columns still are
        // typed by their values.
        let columns = vec![
            Column { name: "zip".into(), stored: "Utf8".into() },
            Column { name: "big".into(), stored: "LargeUtf8".into() },
            Column { name: "cat".into(), stored: "Dictionary(Int32, Utf8)".into() },
            Column { name: "raw".into(), stored: "FixedSizeBinary(2)".into() },
            Column { name: "n".into(), stored: "Int64".into() },
            Column { name: "csv".into(), stored: "text".into() },
        ];
        let mut i = SchemaInferrer::new(&columns);
        let rows = vec![vec![t("01234"), t("7"), t("1"), t("0102"), OwnedCell::Int(3), t("5")]];
        i.observe(&columns, &Batch::from_rows(rows), &[true]);
        let s = i.finish("t");
        assert_eq!(
            kinds(&s),
            vec![
                ("zip", "string", false),
                ("big", "string", false),
                ("cat", "string", false),
                ("raw", "string", false),
                ("n", "int", false),
                ("csv", "int", false),
            ]
        );
        let mut checker = s.checker(&columns);
        let next =
            Batch::from_rows(vec![vec![t("SW1A"), t("x"), t("y"), t("ffee"), OwnedCell::Int(4), t("6")]]);
        assert_eq!(checker.check(&next, 0), None);
    }

    #[test]
    fn inference_takes_the_narrowest_type_every_value_fits() {
        let s = infer(
            &["id", "score", "ok", "day", "name", "empty", "tags", "flag01"],
            vec![
                vec![
                    t("1"),
                    t("1.5"),
                    t("true"),
                    t("2024-01-31"),
                    t("ann"),
                    t(""),
                    OwnedCell::Nested("[1]".into()),
                    t("1"),
                ],
                vec![
                    t("2"),
                    t("2"),
                    t("False"),
                    t("2024-02-01T10:00:00Z"),
                    t("3"),
                    t(""),
                    OwnedCell::Null,
                    t("0"),
                ],
            ],
        );
        assert_eq!(
            kinds(&s),
            vec![
                ("id", "int", false),
                ("score", "float", false),
                ("ok", "bool", false),
                ("day", "timestamp", false),
                ("name", "string", false),
                ("empty", "string", true),
                ("tags", "nested", true),
                ("flag01", "int", false),
            ]
        );
        assert_eq!((s.schema, s.table.as_str()), (1, "people"));
        let typed = infer(
            &["a", "b", "c"],
            vec![
                vec![OwnedCell::Int(1), OwnedCell::Timestamp(0), OwnedCell::Bool(true)],
                vec![OwnedCell::Float(2.5), OwnedCell::Timestamp(5), t("x")],
            ],
        );
        assert_eq!(
            kinds(&typed),
            vec![("a", "float", false), ("b", "timestamp", false), ("c", "string", false)]
        );
    }

    #[test]
    fn a_column_learned_late_is_nullable() {
        let mut columns = cols(&["a"], "json");
        let mut i = SchemaInferrer::new(&columns);
        i.observe(&columns, &Batch::from_rows(vec![vec![OwnedCell::Int(1)]]), &[true]);
        columns.push(Column { name: "b".into(), stored: "json".into() });
        i.observe(&columns, &Batch::from_rows(vec![vec![OwnedCell::Int(2), OwnedCell::Int(3)]]), &[true]);
        let s = i.finish("t");
        assert_eq!(kinds(&s), vec![("a", "int", false), ("b", "int", true)]);
    }

    #[test]
    fn to_json_is_pretty_deterministic_and_parses_back() {
        let mut s = infer(&["id", "name"], vec![vec![t("1"), t("a")]]);
        s.columns[0].not_null = true;
        s.columns[0].min = Some(0.0);
        s.columns[1].allowed = Some(vec!["a".into(), "b".into()]);
        s.unique = vec!["id".into()];
        let json = s.to_json();
        assert!(json.ends_with("}\n"));
        assert_eq!(json, s.clone().to_json());
        assert!(json.contains("\n  \"columns\": [\n"), "{json}");
        assert_eq!(TableSchema::parse(&json, "clean:schema/people.json").expect("parses"), s);
        let bare = infer(&["x"], vec![vec![t("1")]]).to_json();
        assert_eq!(
            bare,
            "{\n  \"schema\": 1,\n  \"table\": \"people\",\n  \"columns\": [\n    {\n      \"name\": \"x\",\n      \
             \"type\": \"int\",\n      \"nullable\": false\n    }\n  ]\n}\n"
        );
    }

    fn parse_err(text: &str) -> Error {
        TableSchema::parse(text, "clean:schema/people.json").expect_err("refused")
    }

    #[test]
    fn schema_files_that_do_not_parse_are_refused_naming_the_line_and_column() {
        let unknown = "{\n  \"schema\": 1,\n  \"table\": \"people\",\n  \"columns\": [\n    {\"name\": \"id\", \"type\": \"int\", \"nullable\": false, \"unique\": true}\n  ]\n}\n";
        let e = parse_err(unknown);
        assert!(e.message().starts_with("clean:schema/people.json: line 5, column "), "{}", e.message());
        assert!(e.message().contains("unknown field `unique`"), "{}", e.message());
        assert!(e.hint().is_some_and(|h| h.contains("not_null")));
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput);

        let e = parse_err("{\"schema\": 1, \"table\": \"p\", \"columns\": [{\"name\": \"id\", \"type\": \"integer\", \"nullable\": false}]}");
        assert!(
            e.message().contains("line 1, column") && e.message().contains("unknown variant `integer`"),
            "{}",
            e.message()
        );

        let e = parse_err("{\"schema\": 1,");
        assert!(e.message().contains("line 1, column 13"), "{}", e.message());
    }

    #[test]
    fn schema_files_with_contradictions_are_refused_naming_the_place() {
        let col = |name: &str, extra: &str| {
            format!("{{\"name\": \"{name}\", \"type\": \"int\", \"nullable\": false{extra}}}")
        };
        let doc = |cols: &[String], unique: &str| {
            format!(
                "{{\n\"schema\": 1,\n\"table\": \"p\",\n\"columns\": [\n{}\n]{unique}\n}}",
                cols.join(",\n")
            )
        };
        let e = parse_err(&doc(&[col("id", ""), col("id", "")], ""));
        assert_eq!(e.message(), "clean:schema/people.json: line 6, column 10: column 'id' is listed twice");
        let e = parse_err(&doc(&[col("id", "")], ",\n\"unique\": [\"ident\"]"));
        assert!(
            e.message().contains("line 7") && e.message().contains("unique names 'ident'"),
            "{}",
            e.message()
        );
        let e = parse_err(&doc(&[col("age", ", \"min\": 5, \"max\": 1")], ""));
        assert!(
            e.message().ends_with("line 5, column 10: column 'age' has min 5 above its max 1"),
            "{}",
            e.message()
        );
        let e = parse_err(&doc(
            &["{\"name\": \"s\", \"type\": \"string\", \"nullable\": true, \"min\": 1}".into()],
            "",
        ));
        assert!(e.message().contains("min and max apply to int and float columns only"), "{}", e.message());
        let e = parse_err("{\"schema\": 2, \"table\": \"p\", \"columns\": []}");
        assert!(e.message().contains("line 1, column 2: schema version 2"), "{}", e.message());
    }

    fn schema(text: &str) -> TableSchema {
        TableSchema::parse(text, "test").expect("parses")
    }

    /// Check each row of `rows` (columns `names`); the reasons (None for a good row).
    fn check(
        s: &TableSchema,
        names: &[&str],
        rows: Vec<Vec<OwnedCell>>,
    ) -> Vec<Option<(u64, String, String)>> {
        let columns = cols(names, "text");
        let mut checker = s.checker(&columns);
        let batch = Batch::from_rows(rows);
        (0..batch.len())
            .map(|r| {
                checker.check(&batch, r).map(|b| {
                    assert_eq!(b.check, "schema");
                    (b.line, b.column.unwrap_or_default(), b.reason)
                })
            })
            .collect()
    }

    #[test]
    fn values_are_coerced_to_the_column_type_or_refused_with_a_reason() {
        let s = schema(
            r#"{"schema": 1, "table": "p", "columns": [
                {"name": "i", "type": "int", "nullable": true},
                {"name": "f", "type": "float", "nullable": true},
                {"name": "b", "type": "bool", "nullable": true},
                {"name": "d", "type": "timestamp", "nullable": true},
                {"name": "s", "type": "string", "nullable": true},
                {"name": "n", "type": "nested", "nullable": true}
            ]}"#,
        );
        let names = ["i", "f", "b", "d", "s", "n"];
        let good = vec![
            vec![t("3"), t("1e3"), t("TRUE"), t("2024-01-31"), t("x"), OwnedCell::Nested("{}".into())],
            vec![
                OwnedCell::Int(3),
                OwnedCell::Int(4),
                t("0"),
                OwnedCell::Timestamp(7),
                OwnedCell::Int(1),
                t("[1, 2]"),
            ],
            vec![
                OwnedCell::Float(4.0),
                OwnedCell::Float(0.5),
                OwnedCell::Bool(false),
                t("2024-01-31 10:00:00"),
                t(""),
                t(""),
            ],
        ];
        assert_eq!(check(&s, &names, good), vec![None, None, None]);
        let row = |col: usize, cell: OwnedCell| {
            let mut r = vec![OwnedCell::Null; 6];
            r[col] = cell;
            r
        };
        let bad = vec![
            row(0, t("3.5")),
            row(0, t("abc")),
            row(1, t("1,5")),
            row(2, t("yes")),
            row(3, t("yesterday")),
            row(5, t("[1,")),
            row(0, OwnedCell::Bool(true)),
        ];
        let reasons: Vec<(String, String)> = check(&s, &names, bad)
            .into_iter()
            .map(|r| r.map(|(_, c, why)| (c, why)).expect("refused"))
            .collect();
        let want = [
            ("i", "value '3.5' is not an int"),
            ("i", "value 'abc' is not an int"),
            ("f", "value '1,5' is not a float"),
            ("b", "value 'yes' is not a bool (true, false, 1 or 0)"),
            ("d", "value 'yesterday' is not a timestamp (an ISO-8601 date or date-time)"),
            ("n", "value '[1,' is not a nested value (a JSON array or object)"),
            ("i", "value 'true' is not an int"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(c, w)| (c.to_string(), w.to_string())).collect();
        assert_eq!(reasons, want);
    }

    #[test]
    fn constraints_are_enforced_and_missing_columns_are_null() {
        let s = schema(
            r#"{"schema": 1, "table": "p", "columns": [
                {"name": "id", "type": "int", "nullable": false, "not_null": true},
                {"name": "age", "type": "int", "nullable": false, "min": 0, "max": 130},
                {"name": "tier", "type": "string", "nullable": false, "allowed": ["gold", "silver"]},
                {"name": "gone", "type": "float", "nullable": true}
            ], "unique": ["id"]}"#,
        );
        let names = ["id", "age", "tier", "extra"];
        let rows = vec![
            vec![t("1"), t("30"), t("gold"), t("anything")],
            vec![t(""), t("30"), t("gold"), t("")],
            vec![t("2"), t("-1"), t("gold"), t("")],
            vec![t("3"), t("131"), t("silver"), t("")],
            vec![t("4"), t("40"), t("bronze"), t("")],
            vec![t("1"), t("50"), t("silver"), t("")],
            vec![t("5"), t(""), t(""), t("")],
        ];
        let got = check(&s, &names, rows);
        let want: Vec<Option<(u64, String, String)>> = vec![
            None,
            Some((2, "id".into(), "the value is missing (null) and the column is not_null".into())),
            Some((3, "age".into(), "value '-1' is below the minimum 0".into())),
            Some((4, "age".into(), "value '131' is above the maximum 130".into())),
            Some((
                5,
                "tier".into(),
                "value 'bronze' is not one of the allowed values ('gold', 'silver')".into(),
            )),
            Some((6, "id".into(), "duplicate key id='1': an earlier record has the same unique key".into())),
            None,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_refused_row_does_not_take_its_unique_key_and_keys_survive_new_columns() {
        let s = schema(
            r#"{"schema": 1, "table": "p", "columns": [
                {"name": "a", "type": "int", "nullable": false},
                {"name": "b", "type": "string", "nullable": true}
            ], "unique": ["a", "b"]}"#,
        );
        let mut columns = cols(&["a", "b"], "json");
        let mut c = s.checker(&columns);
        let b1 = Batch::from_rows(vec![
            vec![t("x"), t("k")],
            vec![t("1"), t("k")],
            vec![t("1"), t("j")],
            vec![OwnedCell::Int(1), t("k")],
        ]);
        assert!(c.check(&b1, 0).is_some());
        assert!(c.check(&b1, 1).is_none());
        assert!(c.check(&b1, 2).is_none());
        let dup = c.check(&b1, 3).expect("the same key, typed");
        assert_eq!(dup.column.as_deref(), Some("a,b"));
        assert!(dup.reason.starts_with("duplicate key a='1', b='k'"), "{}", dup.reason);
        columns.insert(0, Column { name: "new".into(), stored: "json".into() });
        c.set_columns(&columns);
        let b2 = Batch::from_rows(vec![vec![t("whatever"), t("1"), t("j")]]);
        assert!(c.check(&b2, 0).is_some_and(|b| b.reason.starts_with("duplicate key")));
    }

    #[test]
    fn compare_columns_reports_added_missing_and_typed_columns_that_changed_type() {
        let s = schema(
            r#"{"schema": 1, "table": "p", "columns": [
                {"name": "id", "type": "int", "nullable": false},
                {"name": "x", "type": "float", "nullable": false},
                {"name": "when", "type": "timestamp", "nullable": false},
                {"name": "label", "type": "string", "nullable": false},
                {"name": "old", "type": "bool", "nullable": false}
            ]}"#,
        );
        let parquet = |n: &str, t: &str| Column { name: n.into(), stored: t.into() };
        let changes = s.compare_columns(&[
            parquet("id", "Float64"),
            parquet("x", "Int64"),
            parquet("when", "Timestamp(Microsecond, None)"),
            parquet("label", "Int32"),
            parquet("new", "Utf8"),
        ]);
        assert_eq!(changes.added, vec!["new"]);
        assert_eq!(changes.missing, vec!["old"]);
        assert_eq!(changes.retyped, vec![("id".into(), "int".into(), "Float64".into())]);
        let csv = s.compare_columns(&cols(&["id", "x", "when", "label", "old"], "text"));
        assert!(csv.is_empty());
        // A Parquet string column where the schema wants numbers: the batch changed type.
        let strings = s.compare_columns(&[parquet("id", "Utf8"), parquet("x", "Dictionary(Int32, Utf8)")]);
        assert_eq!(strings.retyped.len(), 2, "{strings:?}");
        let text = s.compare_columns(&[parquet("label", "LargeUtf8")]);
        assert!(text.retyped.is_empty());
        let dict = s.compare_columns(&[parquet("id", "Dictionary(Int32, LargeList(Int64))")]);
        assert_eq!(dict.retyped.len(), 1);
    }

    #[test]
    fn uint64_ids_above_i64_max_are_ints_distinct_unique_keys_and_compare_exactly() {
        let max = u64::MAX.to_string();
        let s = infer(&["id"], vec![vec![OwnedCell::UInt(u64::MAX)], vec![t(&max)], vec![OwnedCell::Int(1)]]);
        assert_eq!(kinds(&s), vec![("id", "int", false)]);
        let s = schema(
            r#"{"schema": 1, "table": "p", "columns": [
                {"name": "id", "type": "int", "nullable": false},
                {"name": "n", "type": "int", "nullable": true, "min": -9007199254740992, "max": 9007199254740992},
                {"name": "f", "type": "float", "nullable": true, "max": 1e19}
            ], "unique": ["id"]}"#,
        );
        let names = ["id", "n", "f"];
        let row = |id: OwnedCell, n: OwnedCell, f: OwnedCell| vec![id, n, f];
        let rows = vec![
            row(OwnedCell::UInt(u64::MAX), OwnedCell::Int(1 << 53), OwnedCell::UInt(1 << 63)),
            row(OwnedCell::UInt(u64::MAX - 1), OwnedCell::Int(-(1 << 53)), t("9223372036854775808")),
            row(t("18446744073709551613"), OwnedCell::Null, OwnedCell::Null),
            row(t(&max), OwnedCell::Null, OwnedCell::Null),
            row(OwnedCell::Int(5), OwnedCell::Int((1 << 53) + 1), OwnedCell::Null),
            row(OwnedCell::Int(6), OwnedCell::Int(-(1 << 53) - 1), OwnedCell::Null),
            row(OwnedCell::Int(7), OwnedCell::Null, t(&max)),
            row(t("18446744073709551616"), OwnedCell::Null, OwnedCell::Null),
        ];
        let got: Vec<Option<(String, String)>> =
            check(&s, &names, rows).into_iter().map(|r| r.map(|(_, c, why)| (c, why))).collect();
        let bad = |c: &str, why: &str| Some((c.to_string(), why.to_string()));
        assert_eq!(
            got,
            vec![
                None,
                None,
                None,
                bad(
                    "id",
                    "duplicate key id='18446744073709551615': an earlier record has the same unique key"
                ),
                bad("n", "value '9007199254740993' is above the maximum 9007199254740992"),
                bad("n", "value '-9007199254740993' is below the minimum -9007199254740992"),
                bad("f", "value '18446744073709551615' is above the maximum 10000000000000000000"),
                bad("id", "value '18446744073709551616' is not an int"),
            ]
        );
    }
}
