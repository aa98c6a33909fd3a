//! JSON Lines tables (`.jsonl`, `.ndjson`): a streaming reader of one JSON object per line, and a
//! writer that copies the selected lines byte for byte.
//!
//! How a file is read:
//! - Each line (ended by `\n`; a `\r` before it is part of the line end) that is not blank must be
//!   a JSON object, else it is a bad record (`json`, with serde_json's reason and column). Blank
//!   (whitespace-only) lines are not records: skipped, and not written out.
//! - Columns are the objects' keys in order of first appearance, across lines: the reader's
//!   `columns()` grows as it reads. A key a line lacks is `Cell::Null` for that line; a key given
//!   twice in one object counts once, with its last value.
//! - Cells: `null` is Null, booleans Bool, integers that fit an i64 Int, integers above i64::MAX
//!   that fit a u64 UInt (exact, not a lossy Float), other numbers Float, strings Text, arrays and objects Nested as canonical JSON (keys sorted, no spaces).
//! - Under UTF-8, a line that is not UTF-8 is a bad record (`encoding`); with `Encoding::Latin1`
//!   the line is decoded from Windows-1252 first.
//!
//! How lines are written: each selected line's bytes as read, with its line end (`\n` or
//! `\r\n`). The last line of a file may lack one: it is written as read, and a `\n` is written
//! before any line that follows it in the output. With `TextOutput::Utf8` a Latin-1 file's lines are
//! transcoded to UTF-8.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::csv::{source_of, write_error};
use super::output::Finished;
use super::{
    latin1, BadRecord, Batch, BatchKind, Cell, Column, Encoding, HashingFile, Input, ReadOptions, TextOutput,
};
use crate::error::{Error, Result};

pub struct JsonlReader {
    columns: Vec<Column>,
    index: HashMap<String, usize>,
    source: BufReader<Box<dyn Read + Send>>,
    encoding: Encoding,
    batch_rows: usize,
    /// A batch ends once its records' bytes reach this ([`ReadOptions::batch_bytes`] / 2).
    batch_bytes: usize,
    /// Lines read so far.
    line: u64,
    done: bool,
    buf: Vec<u8>,
    decoded: String,
}

/// A cell of a batch; text lives in the batch's `text`.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Null,
    Bool(bool),
    Int(i64),
    /// Only above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Text(usize, usize),
    Nested(usize, usize),
}

/// A batch of JSONL records: row r's cells are `slots[row_starts[r]..row_starts[r + 1]]`, one per
/// column known when the line was read; its bytes end at `raw_ends[r]` in `raw`.
pub struct JsonlBatch {
    slots: Vec<Slot>,
    row_starts: Vec<usize>,
    text: String,
    raw: Vec<u8>,
    raw_ends: Vec<usize>,
    lines: Vec<u64>,
}

pub struct JsonlWriter {
    out: HashingFile,
    transcode: bool,
    pending_newline: bool,
    rows: u64,
    scratch: Vec<u8>,
}

/// A JSON object's members in the order of the line.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Members, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Append `v` as canonical JSON: object keys sorted, no spaces.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(k) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl JsonlReader {
    pub fn open(input: Input, opts: &ReadOptions) -> Result<JsonlReader> {
        Ok(JsonlReader {
            columns: Vec::new(),
            index: HashMap::new(),
            source: BufReader::with_capacity(1 << 20, source_of(input)),
            encoding: opts.encoding,
            batch_rows: opts.batch_rows.max(1),
            batch_bytes: (opts.batch_bytes / 2).max(1),
            line: 0,
            done: false,
            buf: Vec::new(),
            decoded: String::new(),
        })
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn column(&mut self, key: String) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.columns.len();
        self.columns.push(Column { name: key.clone(), stored: "json".into() });
        self.index.insert(key, i);
        i
    }

    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.done {
            return Ok(None);
        }
        let mut b = JsonlBatch {
            slots: Vec::new(),
            row_starts: vec![0],
            text: String::new(),
            raw: Vec::new(),
            raw_ends: Vec::new(),
            lines: Vec::new(),
        };
        let mut bad = Vec::new();
        while b.lines.len() < self.batch_rows && bad.len() < self.batch_rows && b.raw.len() < self.batch_bytes
        {
            self.buf.clear();
            let n = self.source.read_until(b'\n', &mut self.buf).map_err(super::read_error)?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let line = self.line;
            let content = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let text = match self.encoding {
                Encoding::Utf8 => match std::str::from_utf8(content) {
                    Ok(s) => s,
                    Err(e) => {
                        let at = e.valid_up_to();
                        bad.push(BadRecord {
                            line,
                            column: None,
                            check: "encoding",
                            reason: format!(
                                "byte 0x{:02X} at column {} is not UTF-8 (is the file a Latin-1 export? set clean.encoding)",
                                content[at],
                                at + 1
                            ),
                        });
                        continue;
                    }
                },
                Encoding::Latin1 => {
                    self.decoded.clear();
                    latin1::decode_into(content, &mut self.decoded);
                    &self.decoded
                }
            };
            let members = match serde_json::from_str::<Members>(text) {
                Ok(m) => m,
                Err(e) => {
                    bad.push(BadRecord { line, column: None, check: "json", reason: e.to_string() });
                    continue;
                }
            };
            let start = b.slots.len();
            for (key, value) in members.0 {
                let col = self.column(key);
                if b.slots.len() < start + col + 1 {
                    b.slots.resize(start + col + 1, Slot::Null);
                }
                b.slots[start + col] = b.slot(value);
            }
            b.row_starts.push(b.slots.len());
            b.raw.extend_from_slice(&self.buf);
            b.raw_ends.push(b.raw.len());
            b.lines.push(line);
        }
        if b.lines.is_empty() && bad.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { inner: BatchKind::Jsonl(b), bad }))
    }
}

impl JsonlBatch {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&mut self, v: Value) -> Slot {
        match v {
            Value::Null => Slot::Null,
            Value::Bool(x) => Slot::Bool(x),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Slot::Int(i),
                (None, Some(u)) => Slot::UInt(u),
                (None, None) => Slot::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => {
                let start = self.text.len();
                self.text.push_str(&s);
                Slot::Text(start, self.text.len())
            }
            nested => {
                let start = self.text.len();
                write_canonical(&nested, &mut self.text);
                Slot::Nested(start, self.text.len())
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        let (start, end) = (self.row_starts[row], self.row_starts[row + 1]);
        if start + col >= end {
            return Cell::Null;
        }
        let text = |a: usize, b: usize| self.text.get(a..b).unwrap_or_default();
        match self.slots[start + col] {
            Slot::Null => Cell::Null,
            Slot::Bool(x) => Cell::Bool(x),
            Slot::Int(i) => Cell::Int(i),
            Slot::UInt(u) => Cell::UInt(u),
            Slot::Float(f) => Cell::Float(f),
            Slot::Text(a, b) => Cell::Text(text(a, b)),
            Slot::Nested(a, b) => Cell::Nested(text(a, b)),
        }
    }

    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }
}

impl JsonlWriter {
    pub fn new(reader: &JsonlReader, text: TextOutput, out: HashingFile) -> Result<JsonlWriter> {
        let transcode = text == TextOutput::Utf8 && reader.encoding == Encoding::Latin1;
        Ok(JsonlWriter { out, transcode, pending_newline: false, rows: 0, scratch: Vec::new() })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.pending_newline {
            self.out.write_all(b"\n").map_err(write_error)?;
        }
        if self.transcode {
            self.scratch.clear();
            latin1::transcode_into(bytes, &mut self.scratch);
            self.out.write_all(&self.scratch).map_err(write_error)?;
        } else {
            self.out.write_all(bytes).map_err(write_error)?;
        }
        self.pending_newline = bytes.last() != Some(&b'\n');
        Ok(())
    }

    pub fn write(&mut self, batch: &Batch, keep: &[bool]) -> Result<()> {
        let BatchKind::Jsonl(b) = &batch.inner else {
            return Err(Error::invalid("internal: a JSONL writer was given a batch of another format"));
        };
        if keep.len() != b.len() {
            return Err(Error::invalid("internal: the keep mask and the batch differ in length"));
        }
        for run in super::kept_runs(keep) {
            let start = if run.start == 0 { 0 } else { b.raw_ends[run.start - 1] };
            self.put(&b.raw[start..b.raw_ends[run.end - 1]])?;
            self.rows += run.len() as u64;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(Finished, u64)> {
        Ok((self.out.finish()?, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{read_all, round_trip, rows_of, write_kept};
    use super::super::{Encoding, Format, OwnedCell, ReadOptions, TextOutput};

    fn opts(batch_rows: usize) -> ReadOptions {
        ReadOptions { encoding: Encoding::Utf8, batch_rows, ..ReadOptions::default() }
    }

    #[test]
    fn every_line_written_back_reproduces_the_file_byte_for_byte() {
        let files: [&[u8]; 4] = [
            b"{\"a\": 1, \"b\": \"x\"}\n{\"b\":2}\n",
            b"{\"a\":1}\r\n{\"a\":2}\r\n",
            b"{\"a\":1}\n{\"a\":2}",
            b"",
        ];
        for f in files {
            for n in [1, 8192] {
                let (out, _) = round_trip(f, Format::JsonLines, &opts(n));
                assert_eq!(out, f);
            }
        }
    }

    #[test]
    fn columns_grow_in_order_of_first_appearance_and_cells_are_typed() {
        let f = br#"{"b": 1, "a": "x"}
{"c": [1, {"z": 1, "y": null}], "a": null, "b": 1.5}

{"b": 12345678901234567890, "d": true, "c": {"k": "v w"}}
"#;
        let (reader, batches) = read_all(f, Format::JsonLines, &opts(10));
        let names: Vec<_> = reader.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "d"]);
        use OwnedCell::*;
        assert_eq!(
            rows_of(&batches, 4),
            vec![
                vec![Int(1), Text("x".into()), Null, Null],
                vec![Float(1.5), Null, Nested(r#"[1,{"y":null,"z":1}]"#.into()), Null],
                vec![UInt(12345678901234567890), Null, Nested(r#"{"k":"v w"}"#.into()), Bool(true)],
            ]
        );
        assert_eq!((batches[0].line(0), batches[0].line(2)), (1, 4), "blank lines count as lines");
    }

    #[test]
    fn a_line_that_is_not_a_json_object_is_a_bad_record_with_serdes_reason() {
        let f = b"{\"a\":1}\n{\"a\":\n[1,2]\n{\"a\":2}\n";
        let (reader, batches) = read_all(f, Format::JsonLines, &opts(10));
        let bad = batches[0].bad();
        assert_eq!(bad.len(), 2);
        assert_eq!((bad[0].line, bad[0].check), (2, "json"));
        assert!(bad[0].reason.contains("column"), "{}", bad[0].reason);
        assert!(bad[1].reason.contains("expected a JSON object"), "{}", bad[1].reason);
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!((out.as_slice(), rows), (&b"{\"a\":1}\n{\"a\":2}\n"[..], 2));
    }

    #[test]
    fn latin1_lines_decode_and_bad_utf8_is_an_encoding_bad_record() {
        let f = b"{\"a\":\"caf\xe9\"}\n";
        let (_, batches) = read_all(f, Format::JsonLines, &opts(10));
        assert_eq!(batches[0].bad()[0].check, "encoding");
        let o = ReadOptions { encoding: Encoding::Latin1, batch_rows: 10, ..ReadOptions::default() };
        let (reader, batches) = read_all(f, Format::JsonLines, &o);
        assert_eq!(rows_of(&batches, 1), vec![vec![OwnedCell::Text("café".into())]]);
        let (out, _) = write_kept(&reader, &batches, TextOutput::Utf8, |_| true);
        assert_eq!(out, "{\"a\":\"café\"}\n".as_bytes());
    }

    #[test]
    fn kept_lines_are_written_in_order_and_an_unterminated_last_line_gets_a_newline_only_when_followed() {
        let f = b"{\"i\":0}\n{\"i\":1}\n{\"i\":2}";
        let (reader, batches) = read_all(f, Format::JsonLines, &opts(2));
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r != 1);
        assert_eq!((out.as_slice(), rows), (&b"{\"i\":0}\n{\"i\":2}"[..], 2));
        let mut rev = batches;
        rev.reverse();
        let (out, _) = write_kept(&reader, &rev, TextOutput::AsRead, |_| true);
        assert_eq!(out, b"{\"i\":2}\n{\"i\":0}\n{\"i\":1}\n");
    }

    #[test]
    fn json_integers_above_i64_max_are_exact_uint_cells_not_one_float() {
        let f = b"{\"id\": 18446744073709551615}\n{\"id\": 18446744073709551614}\n{\"id\": 9223372036854775807}\n\
{\"id\": 9223372036854775808}\n{\"id\": 18446744073709551616}\n{\"id\": -9223372036854775808}\n";
        let (_, batches) = read_all(f, Format::JsonLines, &opts(4));
        use OwnedCell::*;
        assert_eq!(
            rows_of(&batches, 1),
            vec![
                vec![UInt(u64::MAX)],
                vec![UInt(u64::MAX - 1)],
                vec![Int(i64::MAX)],
                vec![UInt(1 << 63)],
                vec![Float(18446744073709551616.0)],
                vec![Int(i64::MIN)],
            ]
        );
    }
}
