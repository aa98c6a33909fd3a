//! Tables as records: reading CSV, TSV, JSON Lines and Parquet as a stream of record batches
//! (bounded memory whatever the table's size), writing selected records back in the input's own
//! format (CSV keeps its header and dialect byte for byte, JSONL its lines, Parquet its schema and
//! compression), and what record-level `split` and `clean` compute on them: keys, profiles and
//! schemas. Nothing here knows about branches or commits; `data::split` and `data::clean` do.

pub mod csv;
pub mod jsonl;
mod latin1;
mod object_check;
pub mod output;
pub mod parquet;
pub mod prefetch;
pub mod profile;
pub mod schema;
pub(crate) mod sketch;
#[cfg(test)]
mod testing;
mod values;

use std::io::{Read, Seek};

use crate::error::{Error, Result};

pub use output::HashingFile;

/// How a table is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated (the delimiter is still sniffed from the header line: `,` or `;`).
    Csv,
    /// Tab-separated.
    Tsv,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    JsonLines,
    Parquet,
}

/// The extensions (lower case, without the dot) read as tables, and their format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extensions {
    pub csv: Vec<String>,
    pub tsv: Vec<String>,
    pub jsonl: Vec<String>,
    pub parquet: Vec<String>,
}

impl Default for Extensions {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Extensions {
            csv: s(&["csv"]),
            tsv: s(&["tsv"]),
            jsonl: s(&["jsonl", "ndjson"]),
            parquet: s(&["parquet"]),
        }
    }
}

impl Format {
    /// The format a path's extension announces (case-insensitive), or None: not a table.
    pub fn of(path: &str, ext: &Extensions) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let e = match name.rsplit_once('.') {
            Some((stem, e)) if !stem.is_empty() => e.to_ascii_lowercase(),
            _ => return None,
        };
        let has = |list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(&e));
        if has(&ext.csv) {
            Some(Format::Csv)
        } else if has(&ext.tsv) {
            Some(Format::Tsv)
        } else if has(&ext.jsonl) {
            Some(Format::JsonLines)
        } else if has(&ext.parquet) {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

/// The text encoding of CSV/TSV/JSONL input (`clean.encoding`). Output of `clean` is UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Utf8,
    /// ISO-8859-1 / Windows-1252 (every byte decodes).
    Latin1,
}

impl Encoding {
    /// Parse the `clean.encoding` setting (`utf-8`, `latin-1`, `iso-8859-1`, `windows-1252`, `cp1252`).
    pub fn parse(text: &str) -> Result<Encoding> {
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "windows-1252" | "cp1252" => Ok(Encoding::Latin1),
            other => Err(Error::invalid(format!("clean.encoding: '{other}' is not an encoding mlgit reads"))
                .with_hint("use utf-8 (the default) or latin-1 (also: iso-8859-1, windows-1252)")),
        }
    }
}

/// How to read a table.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub encoding: Encoding,
    /// Records per batch at most.
    pub batch_rows: usize,
    /// About how much memory a batch takes. A text batch ends once its records' bytes reach half
    /// of it (a parsed batch keeps each field's position beside the text), so memory stays
    /// bounded however wide the records; a Parquet batch has the rows that fit in it by the
    /// column types and the file's metadata. Fewer, larger batches cost less per record (each
    /// is a round of parallel work); text batches past a few MiB fall out of the caches
    /// (measured in `docs/performance.md`).
    pub batch_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { encoding: Encoding::Utf8, batch_rows: 65_536, batch_bytes: 4 << 20 }
    }
}

/// One cell, as read. Text formats give `Text` (or `Null` for an empty field) and let the schema
/// or profile decide the type; JSONL and Parquet give typed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An unsigned integer above `i64::MAX` (Parquet `UInt64`, a JSON integer past 2^63 − 1).
    /// Only such values: an integer that fits `i64` is always `Int`, so that equal numbers are
    /// equal cells.
    UInt(u64),
    Float(f64),
    Text(&'a str),
    /// Microseconds since 1970-01-01T00:00:00Z (Parquet/Arrow timestamps and dates).
    Timestamp(i64),
    /// A nested value (list, struct, map, JSON array or object) as canonical JSON text: keys
    /// sorted, no spaces.
    Nested(&'a str),
}

impl Cell<'_> {
    /// An unsigned integer as a cell: `Int` when it fits `i64`, else `UInt`.
    pub fn of_u64(v: u64) -> Cell<'static> {
        i64::try_from(v).map_or(Cell::UInt(v), Cell::Int)
    }
}

/// A column as the reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: String,
    /// The stored type: `text` for CSV/TSV, `json` for JSONL, the Arrow type (e.g. `Int64`,
    /// `Utf8`, `List(Int64)`) for Parquet.
    pub stored: String,
}

/// Make column names distinct as pandas does (`a, a, b` reads as `a, a.1, b`): a header may
/// repeat a name, but a schema, a profile and a key name each column once. Only the names change;
/// the bytes written are the ones read.
pub(crate) fn distinct_names(columns: &mut [Column]) {
    let mut taken: std::collections::HashSet<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    for c in columns.iter_mut() {
        if seen.insert(c.name.clone()) {
            continue;
        }
        let mut n = 1;
        let name = loop {
            let candidate = format!("{}.{n}", c.name);
            if !taken.contains(&candidate) {
                break candidate;
            }
            n += 1;
        };
        taken.insert(name.clone());
        seen.insert(name.clone());
        c.name = name;
    }
}

/// A record the reader could not read as a record of the table. Not part of a batch's rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRecord {
    /// 1-based line of the record's first line (text formats) or 1-based row (Parquet).
    pub line: u64,
    pub column: Option<String>,
    /// `fields` (wrong field count), `encoding` (bytes that do not decode), `json` (a line that is
    /// not a JSON object), `schema` (a value the table's schema refuses), `duplicate`.
    pub check: &'static str,
    pub reason: String,
}

/// Where a table's bytes come from: an LFS object file (seekable; Parquet needs that) or a blob.
pub enum Input {
    File(std::fs::File),
    Bytes(Vec<u8>),
    /// An LFS object that must hash to its pointer: text formats hash it as they read it and fail
    /// at its end when it does not; Parquet (read out of order) is hashed by a thread beside the
    /// reading, and fails at its end (or at a read error) when it does not.
    /// `name` says which file it is in the error (e.g. `clean:data/t.csv`).
    Verified {
        file: std::fs::File,
        pointer: crate::store::Pointer,
        name: String,
    },
}

/// A reader that hashes what it reads and, at the end, fails unless the bytes are the object its
/// pointer names (so corrupt bytes in the LFS store are never split or cleaned as data).
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    size: u64,
    pointer: crate::store::Pointer,
    name: String,
    /// The end was reached and the bytes were good.
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, pointer: crate::store::Pointer, name: String) -> Self {
        use sha2::Digest;
        VerifyingReader { inner, hasher: sha2::Sha256::new(), size: 0, pointer, name, verified: false }
    }
}

/// The error of an LFS object whose bytes are not the ones its pointer names.
pub(crate) fn corrupt_object(name: &str, pointer: &crate::store::Pointer, size: u64) -> String {
    format!(
        "the LFS object of {name} is corrupt: its {size} bytes do not hash to {} ({} bytes); nothing was written",
        pointer.oid.to_hex(),
        pointer.size
    )
}

/// The I/O error a [`VerifyingReader`] fails with (so readers can tell it from other I/O errors).
#[derive(Debug)]
pub(crate) struct CorruptObject(pub(crate) String);

impl std::fmt::Display for CorruptObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CorruptObject {}

const CORRUPT_HINT: &str =
    "run `mlgit verify` to list every damaged object, fetch good copies (`git lfs fetch`), then retry";

/// An error reading a table's bytes: a corrupt LFS object is named as such, other I/O errors
/// are "cannot read the table".
pub(crate) fn read_error(err: std::io::Error) -> Error {
    if let Some(c) = err.get_ref().and_then(|e| e.downcast_ref::<CorruptObject>()) {
        return Error::new(crate::error::ErrorKind::Conflict, c.0.clone()).with_hint(CORRUPT_HINT);
    }
    Error::new(crate::error::ErrorKind::Io, format!("cannot read the table: {err}")).with_source(err)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        if self.verified {
            return Ok(n);
        }
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if n == 0 || self.size > self.pointer.size {
            let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if self.size != self.pointer.size || digest != self.pointer.oid.0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    CorruptObject(corrupt_object(&self.name, &self.pointer, self.size)),
                ));
            }
            self.verified = true;
        }
        Ok(n)
    }
}

/// `Read + Seek` over an [`Input`].
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// A streaming reader of one table.
pub struct TableReader {
    pub(crate) inner: ReaderKind,
}

pub(crate) enum ReaderKind {
    Csv(csv::CsvReader),
    Jsonl(jsonl::JsonlReader),
    Parquet(parquet::ParquetTableReader),
}

/// A batch of records. Rows are numbered 0..len(); records the reader could not read are in
/// [`Batch::bad`], not in the rows.
pub struct Batch {
    pub(crate) inner: BatchKind,
    pub(crate) bad: Vec<BadRecord>,
}

pub(crate) enum BatchKind {
    Csv(csv::CsvBatch),
    Jsonl(jsonl::JsonlBatch),
    Parquet(parquet::ParquetBatch),
    /// Built by [`Batch::from_rows`] (tests, and profile/schema code that has rows in hand).
    Owned(OwnedBatch),
}

/// Cells owned by a batch built from values.
pub(crate) struct OwnedBatch {
    pub(crate) rows: Vec<Vec<OwnedCell>>,
}

/// An owned [`Cell`].
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedCell {
    Null,
    Bool(bool),
    Int(i64),
    /// Only above `i64::MAX`, as [`Cell::UInt`].
    UInt(u64),
    Float(f64),
    Text(String),
    Timestamp(i64),
    Nested(String),
}

impl OwnedCell {
    pub fn as_cell(&self) -> Cell<'_> {
        match self {
            OwnedCell::Null => Cell::Null,
            OwnedCell::Bool(b) => Cell::Bool(*b),
            OwnedCell::Int(i) => Cell::Int(*i),
            OwnedCell::UInt(u) => Cell::UInt(*u),
            OwnedCell::Float(f) => Cell::Float(*f),
            OwnedCell::Text(s) => Cell::Text(s),
            OwnedCell::Timestamp(t) => Cell::Timestamp(*t),
            OwnedCell::Nested(s) => Cell::Nested(s),
        }
    }
}

impl TableReader {
    /// Open a table. Reads the header (CSV/TSV: the first record; JSONL: the keys of the first
    /// object, later new keys are appended as columns; Parquet: the footer). An empty input is a
    /// table with no columns and no rows.
    pub fn open(input: Input, format: Format, opts: &ReadOptions) -> Result<TableReader> {
        let inner = match format {
            Format::Csv | Format::Tsv => ReaderKind::Csv(csv::CsvReader::open(input, format, opts)?),
            Format::JsonLines => ReaderKind::Jsonl(jsonl::JsonlReader::open(input, opts)?),
            Format::Parquet => ReaderKind::Parquet(parquet::ParquetTableReader::open(input, opts)?),
        };
        Ok(TableReader { inner })
    }

    /// The columns known so far (JSONL may learn more as it reads).
    pub fn columns(&self) -> &[Column] {
        match &self.inner {
            ReaderKind::Csv(r) => r.columns(),
            ReaderKind::Jsonl(r) => r.columns(),
            ReaderKind::Parquet(r) => r.columns(),
        }
    }

    /// The next batch of up to `batch_rows` records, or None at the end. Records that cannot be
    /// read go to the batch's `bad` list; only an I/O error or a file that is not of the format at
    /// all (a Parquet file without its footer) is an error.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        match &mut self.inner {
            ReaderKind::Csv(r) => r.next_batch(),
            ReaderKind::Jsonl(r) => r.next_batch(),
            ReaderKind::Parquet(r) => r.next_batch(),
        }
    }
}

impl Batch {
    /// A batch from owned rows (every row as long as the columns).
    pub fn from_rows(rows: Vec<Vec<OwnedCell>>) -> Batch {
        Batch { inner: BatchKind::Owned(OwnedBatch { rows }), bad: Vec::new() }
    }

    pub fn len(&self) -> usize {
        match &self.inner {
            BatchKind::Csv(b) => b.len(),
            BatchKind::Jsonl(b) => b.len(),
            BatchKind::Parquet(b) => b.len(),
            BatchKind::Owned(b) => b.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the reader could not read, in input order.
    pub fn bad(&self) -> &[BadRecord] {
        &self.bad
    }

    /// The cell at `row`, `col` (Null past the end of a short row or for a column this record lacks).
    pub fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        match &self.inner {
            BatchKind::Csv(b) => b.cell(row, col),
            BatchKind::Jsonl(b) => b.cell(row, col),
            BatchKind::Parquet(b) => b.cell(row, col),
            BatchKind::Owned(b) => b.rows[row].get(col).map(OwnedCell::as_cell).unwrap_or(Cell::Null),
        }
    }

    /// `f` of the cells of column `col` in `rows`, in order: what [`Batch::cell`] gives, with the
    /// column's kind decided once instead of per cell (a typed Parquet column's loop knows its
    /// cells' variant).
    #[inline]
    pub fn for_each_cell<'a>(&'a self, col: usize, rows: &[usize], mut f: impl FnMut(Cell<'a>)) {
        match &self.inner {
            BatchKind::Parquet(b) => b.for_each_cell(col, rows, f),
            _ => rows.iter().for_each(|&row| f(self.cell(row, col))),
        }
    }

    /// Column `col` as a dictionary of text and each row's index into it, when the reader kept it
    /// so (Parquet text columns whose dictionary paid off, and categoricals): a consumer may then
    /// work once per distinct value instead of once per row.
    pub fn dictionary(&self, col: usize) -> Option<parquet::Dictionary<'_>> {
        match &self.inner {
            BatchKind::Parquet(b) => b.dictionary(col),
            _ => None,
        }
    }

    /// 1-based line (text formats) or row (Parquet) of a row, for reports.
    pub fn line(&self, row: usize) -> u64 {
        match &self.inner {
            BatchKind::Csv(b) => b.line(row),
            BatchKind::Jsonl(b) => b.line(row),
            BatchKind::Parquet(b) => b.line(row),
            BatchKind::Owned(_) => row as u64 + 1,
        }
    }

    /// Append the canonical content of a row to `out`: equal bytes iff the records hold the same
    /// values under the same column names, whatever the quoting, spacing, key or column order.
    /// Each non-null cell is written as `name 0x1e value 0x1f`, in the name order of `order`;
    /// null cells are left out (a record reads the same before and after a JSONL table learns a
    /// new column, or in a batch whose header lacks a column it has no value for). Used as the split
    /// key without id column and to find duplicate records.
    pub fn canonical(&self, row: usize, order: &ContentOrder, out: &mut Vec<u8>) {
        for (col, name) in &order.0 {
            let cell = self.cell(row, *col);
            if cell == Cell::Null {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0x1e);
            canonical_cell(cell, out);
            out.push(0x1f);
        }
    }
}

/// The runs of consecutive kept rows of a keep mask, as `start..end` ranges (writers copy each run
/// of records in one write).
pub(crate) fn kept_runs(keep: &[bool]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < keep.len() && !keep[i] {
            i += 1;
        }
        if i == keep.len() {
            return None;
        }
        let start = i;
        while i < keep.len() && keep[i] {
            i += 1;
        }
        Some(start..i)
    })
}

/// The columns of a table in name order, for [`Batch::canonical`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentOrder(Vec<(usize, String)>);

impl ContentOrder {
    pub fn new(columns: &[Column]) -> ContentOrder {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        ContentOrder::of_names(&names)
    }

    pub fn of_names(names: &[&str]) -> ContentOrder {
        let mut order: Vec<(usize, String)> =
            names.iter().enumerate().map(|(i, n)| (i, n.to_string())).collect();
        order.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        ContentOrder(order)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The canonical text of one cell (also the split key of an id column): integers in decimal
/// (exactly, `UInt` too: two different integers never share a text),
/// floats in Rust's shortest round-trip form (`1.5`, `1e100`), booleans `true`/`false`, text as is,
/// timestamps as RFC 3339 UTC with microseconds, Null as the empty string.
pub fn canonical_cell(cell: Cell<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    match cell {
        Cell::Null => {}
        Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Cell::Int(i) => out.extend_from_slice(int_text(i, &mut [0; 24])),
        Cell::UInt(u) => out.extend_from_slice(uint_text(false, u, &mut [0; 24])),
        Cell::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                out.extend_from_slice(int_text(f as i64, &mut [0; 24]));
            } else {
                let _ = write!(out, "{f}");
            }
        }
        Cell::Text(s) | Cell::Nested(s) => out.extend_from_slice(s.as_bytes()),
        Cell::Timestamp(us) => {
            let secs = us.div_euclid(1_000_000);
            let micros = us.rem_euclid(1_000_000) as u32;
            match chrono::DateTime::from_timestamp(secs, micros * 1000) {
                Some(t) => {
                    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
                }
                None => {
                    let _ = write!(out, "{us}");
                }
            }
        }
    }
}

/// The decimal text of `i` (what [`canonical_cell`] writes), without allocating.
pub(crate) fn int_text(i: i64, buf: &mut [u8; 24]) -> &[u8] {
    uint_text(i < 0, i.unsigned_abs(), buf)
}

/// The decimal text of `n` (of `-n` when `negative`), without allocating.
pub(crate) fn uint_text(negative: bool, mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Writes the selected rows of batches in the format (header, dialect, schema, compression) of
/// the reader it was made for.
pub struct TableWriter {
    pub(crate) inner: WriterKind,
}

pub(crate) enum WriterKind {
    Csv(csv::CsvWriter),
    Jsonl(jsonl::JsonlWriter),
    Parquet(parquet::ParquetTableWriter),
}

/// What to do to the bytes of text records on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextOutput {
    /// Copy each record's bytes as read (split).
    #[default]
    AsRead,
    /// Decode with the reader's encoding and write UTF-8 (clean of a Latin-1 export).
    Utf8,
}

impl TableWriter {
    /// A writer into `out` in the format of `reader` (its header line, BOM, delimiter and line
    /// ends; its Parquet schema, compression and row group size).
    pub fn for_reader(reader: &TableReader, text: TextOutput, out: HashingFile) -> Result<TableWriter> {
        let inner = match &reader.inner {
            ReaderKind::Csv(r) => WriterKind::Csv(csv::CsvWriter::new(r, text, out)?),
            ReaderKind::Jsonl(r) => WriterKind::Jsonl(jsonl::JsonlWriter::new(r, text, out)?),
            ReaderKind::Parquet(r) => WriterKind::Parquet(parquet::ParquetTableWriter::new(r, out)?),
        };
        Ok(TableWriter { inner })
    }

    /// Write the rows of `batch` whose `keep` is true (keep.len() == batch.len()), in order.
    pub fn write(&mut self, batch: &Batch, keep: &[bool]) -> Result<()> {
        match &mut self.inner {
            WriterKind::Csv(w) => w.write(batch, keep),
            WriterKind::Jsonl(w) => w.write(batch, keep),
            WriterKind::Parquet(w) => w.write(batch, keep),
        }
    }

    /// Finish the file (Parquet: the footer) and return the hashed output and the rows written.
    pub fn finish(self) -> Result<(output::Finished, u64)> {
        match self.inner {
            WriterKind::Csv(w) => w.finish(),
            WriterKind::Jsonl(w) => w.finish(),
            WriterKind::Parquet(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(cell: Cell<'_>) -> String {
        let mut out = Vec::new();
        canonical_cell(cell, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn canonical_cell_writes_uint64_ids_above_i64_max_exactly_and_apart() {
        assert_eq!(text(Cell::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(text(Cell::UInt(u64::MAX - 1)), "18446744073709551614");
        assert_eq!(text(Cell::UInt(1 << 63)), "9223372036854775808");
        assert_eq!(text(Cell::Int(i64::MAX)), "9223372036854775807");
        assert_eq!(text(Cell::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(Cell::of_u64(u64::MAX), Cell::UInt(u64::MAX));
        assert_eq!(Cell::of_u64(i64::MAX as u64), Cell::Int(i64::MAX), "what fits i64 stays Int");
        assert_eq!(Cell::of_u64(1 << 63), Cell::UInt(1 << 63));
        assert_eq!(OwnedCell::UInt(7 << 61).as_cell(), Cell::UInt(7 << 61));
    }

    #[test]
    fn integers_are_written_as_rust_formats_them() {
        let mut ints = vec![0i64, 1, -1, 9, 10, -10, 99, 100, i64::MAX, i64::MIN, i64::MIN + 1];
        ints.extend((0..19).map(|p| 10i64.pow(p)).flat_map(|x| [x - 1, x, -x, 1 - x]));
        for i in ints {
            assert_eq!(text(Cell::Int(i)), i.to_string());
            let f = i as f64;
            if f.abs() < 1e15 {
                assert_eq!(text(Cell::Float(f)), (f as i64).to_string(), "{f}");
            }
        }
        for u in [0u64, 7, u64::MAX, u64::MAX - 1, 1 << 63, 10u64.pow(19), 10u64.pow(19) - 1] {
            assert_eq!(text(Cell::UInt(u)), u.to_string());
        }
        assert_eq!(text(Cell::Float(-3.0)), "-3");
        assert_eq!(text(Cell::Float(1e14)), "100000000000000");
        assert_eq!(text(Cell::Float(2.5)), "2.5");
    }

    #[test]
    fn records_that_differ_only_in_a_uint64_id_have_different_canonical_content() {
        let id = |v: u64| vec![OwnedCell::UInt(v), OwnedCell::Text("same".into())];
        let b = Batch::from_rows(vec![id(u64::MAX), id(u64::MAX - 1), id(u64::MAX)]);
        let order = ContentOrder::of_names(&["id", "name"]);
        let content = |r| {
            let mut out = Vec::new();
            b.canonical(r, &order, &mut out);
            out
        };
        assert_ne!(content(0), content(1));
        assert_eq!(content(0), content(2));
    }
}
