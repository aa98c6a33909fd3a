//! Helpers for the table readers' and writers' unit tests: read a table from bytes, write the
//! rows a mask keeps, get the output's bytes back.

use super::{Batch, Format, HashingFile, Input, ReadOptions, TableReader, TableWriter, TextOutput};
use crate::store::LfsStore;

/// Every batch of `bytes` read as `format`.
pub(crate) fn read_all(bytes: &[u8], format: Format, opts: &ReadOptions) -> (TableReader, Vec<Batch>) {
    let mut reader = TableReader::open(Input::Bytes(bytes.to_vec()), format, opts).expect("open");
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch().expect("next_batch") {
        batches.push(b);
    }
    (reader, batches)
}

/// The bytes of the file written from `batches` keeping the rows `keep(global row)` says, and the
/// rows written.
pub(crate) fn write_kept(
    reader: &TableReader,
    batches: &[Batch],
    text: TextOutput,
    keep: impl Fn(usize) -> bool,
) -> (Vec<u8>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LfsStore::new(dir.path());
    let out = HashingFile::create(&store).expect("create");
    let mut w = TableWriter::for_reader(reader, text, out).expect("writer");
    let mut row = 0;
    for b in batches {
        let mask: Vec<bool> = (row..row + b.len()).map(&keep).collect();
        row += b.len();
        w.write(b, &mask).expect("write");
    }
    let (fin, rows) = w.finish().expect("finish");
    let bytes = std::fs::read(fin.file.path()).expect("read output");
    assert_eq!(fin.pointer.size, bytes.len() as u64);
    (bytes, rows)
}

/// Read `bytes` and write every row back as read.
pub(crate) fn round_trip(bytes: &[u8], format: Format, opts: &ReadOptions) -> (Vec<u8>, u64) {
    let (reader, batches) = read_all(bytes, format, opts);
    write_kept(&reader, &batches, TextOutput::AsRead, |_| true)
}

/// The cells of every row, as owned values (`columns` wide).
pub(crate) fn rows_of(batches: &[Batch], columns: usize) -> Vec<Vec<super::OwnedCell>> {
    use super::{Cell, OwnedCell};
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.len() {
            out.push(
                (0..columns)
                    .map(|c| match b.cell(r, c) {
                        Cell::Null => OwnedCell::Null,
                        Cell::Bool(x) => OwnedCell::Bool(x),
                        Cell::Int(x) => OwnedCell::Int(x),
                        Cell::UInt(x) => OwnedCell::UInt(x),
                        Cell::Float(x) => OwnedCell::Float(x),
                        Cell::Text(s) => OwnedCell::Text(s.to_string()),
                        Cell::Timestamp(t) => OwnedCell::Timestamp(t),
                        Cell::Nested(s) => OwnedCell::Nested(s.to_string()),
                    })
                    .collect(),
            );
        }
    }
    out
}
