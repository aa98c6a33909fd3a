//! Table schemas (stub: owned by the profile/schema helper): inferred by the first record-level
//! clean, committed as `schema/<table>.json`, edited by users to add constraints, enforced record
//! by record by later cleans.

use serde::{Deserialize, Serialize};

use super::{BadRecord, Batch, Column};
use crate::error::Result;

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

/// Infers a schema from the rows it is shown.
pub struct SchemaInferrer {
    _columns: Vec<Column>,
}

impl SchemaInferrer {
    pub fn new(columns: &[Column]) -> SchemaInferrer {
        SchemaInferrer { _columns: columns.to_vec() }
    }
    pub fn observe(&mut self, _columns: &[Column], _batch: &Batch, _keep: &[bool]) {
        todo!()
    }
    pub fn finish(self, _table: &str) -> TableSchema {
        todo!()
    }
}

impl TableSchema {
    /// Parse a schema file; `origin` names it in errors (e.g. `clean:schema/customers.json`).
    pub fn parse(_text: &str, _origin: &str) -> Result<TableSchema> {
        todo!()
    }

    /// Deterministic pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        todo!()
    }

    pub fn compare_columns(&self, _columns: &[Column]) -> ColumnChanges {
        todo!()
    }

    /// A checker of rows of a table with these `columns` against this schema.
    pub fn checker(&self, _columns: &[Column]) -> RowChecker {
        todo!()
    }
}

/// Checks rows one by one (types, `not_null`, `min`/`max`, `allowed`, `unique` across every row
/// it has seen).
pub struct RowChecker {}

impl RowChecker {
    /// None when the row conforms; else why not (check `schema`, the column, the line).
    pub fn check(&mut self, _batch: &Batch, _row: usize) -> Option<BadRecord> {
        todo!()
    }
}
