//! CSV and TSV tables: a streaming reader that keeps every record's raw bytes next to its decoded
//! fields, and a writer that copies the selected records' bytes, so that a split or cleaned file
//! keeps the input's dialect exactly (BOM, delimiter, quoting, line ends).
//!
//! The parser is `csv-core` (the state machine under the `csv` crate) run over 1 MiB chunks that
//! this reader reads itself: the `csv` crate's `Reader` hides the bytes a record came from, and
//! copying them is what keeps the dialect.
//!
//! How a file is read:
//! - The header is the first record; its field count is the table's. A UTF-8 byte order mark
//!   before it is not part of the first column's name, and is kept in the output's header bytes.
//! - Delimiter: tab for TSV; for CSV, `;` if the header line (outside quotes) has more `;` than
//!   `,`, else `,` (the European spreadsheet export), whatever the data lines say.
//! - Quoting is RFC 4180: `"` quotes, `""` inside quotes is one quote, quoted fields may hold
//!   delimiters and line ends (TSV too: that is what pandas writes). Line ends are LF, CRLF or CR.
//! - Blank lines are not records: they are skipped, and not written out.
//! - An empty field (`,,` or `""`) is `Cell::Null`; any other field is `Cell::Text`, unquoted and
//!   decoded (UTF-8, or Windows-1252 with `Encoding::Latin1`).
//! - A record whose field count differs from the header's is a bad record (`fields`); under UTF-8,
//!   a record with a field that is not valid UTF-8 is one too (`encoding`, naming the column). A
//!   header that is not UTF-8 is an error: the file is not in the declared encoding.
//! - An empty file (or one of blank lines only, or a BOM only) has no columns and no rows, and is
//!   written as an empty file.
//!
//! How records are written: each selected record's bytes as read, from its first byte through its
//! line end, after the header's bytes (BOM included). The last record of a file may lack a line
//! end: it is written as read, and if another record follows it in the output the file's line end
//! (the header's) is written first, so that outputs stay valid CSV and writing every record of a
//! file reproduces it byte for byte (blank lines aside). With `TextOutput::Utf8` a Latin-1 file's
//! header and records are transcoded to UTF-8, byte by byte (delimiters, quotes and line ends are
//! ASCII, so the dialect is unchanged); a BOM stays. A UTF-8 file is written as read either way.

use std::io::{Read, Write};

use csv_core::{ReadRecordResult, Reader as Parser, ReaderBuilder};

use super::output::Finished;
use super::{
    latin1, BadRecord, Batch, BatchKind, Cell, Column, Encoding, Format, HashingFile, Input, ReadOptions,
    TextOutput,
};
use crate::error::{Error, ErrorKind, Result};

const CHUNK: usize = 1 << 20;
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A growable output buffer for the parser, which writes into initialized slices: `buf` is all
/// zero-filled capacity, `used` the part holding data.
struct Grow<T> {
    buf: Vec<T>,
    used: usize,
}

impl<T: Copy + Default> Grow<T> {
    fn with_len(n: usize) -> Self {
        Grow { buf: vec![T::default(); n.max(16)], used: 0 }
    }
    fn grow(&mut self) {
        let n = self.buf.len() * 2;
        self.buf.resize(n, T::default());
    }
    fn take(&mut self, keep_capacity: usize) -> Vec<T> {
        let mut out = std::mem::replace(&mut self.buf, vec![T::default(); keep_capacity.max(16)]);
        out.truncate(self.used);
        self.used = 0;
        out
    }
}

pub struct CsvReader {
    columns: Vec<Column>,
    source: Box<dyn Read + Send>,
    /// Boxed: its state machine is large.
    parser: Box<Parser>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    done: bool,
    encoding: Encoding,
    batch_rows: usize,
    /// A batch ends once its records' bytes reach this ([`ReadOptions::batch_bytes`] / 2).
    batch_bytes: usize,
    /// Whether the file starts with a UTF-8 BOM (kept out of `header`).
    bom: bool,
    /// The header record's bytes, through its line end.
    header: Vec<u8>,
    /// The file's line end (the header's), written after a final record that lacks one.
    terminator: &'static [u8],
    /// The byte that ends a line, for line numbers (`\r` in a CR-only file).
    line_byte: u8,
    /// The 1-based line of the next unread byte.
    line: u64,
    data: Grow<u8>,
    ends: Grow<usize>,
}

/// A batch of CSV records: their decoded fields (`text`, `ncols` per row, `ends` the end offset
/// of each field) and their raw bytes (`raw`, record i ends at `raw_ends[i]`).
pub struct CsvBatch {
    ncols: usize,
    text: String,
    ends: Vec<usize>,
    raw: Vec<u8>,
    raw_ends: Vec<usize>,
    lines: Vec<u64>,
}

pub struct CsvWriter {
    out: HashingFile,
    transcode: bool,
    terminator: &'static [u8],
    /// The last bytes written lack a line end (a final record, or a header-only file's header).
    pending_terminator: bool,
    rows: u64,
    scratch: Vec<u8>,
}

use super::read_error;

pub(crate) fn write_error(err: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot write the table's output: {err}")).with_source(err)
}

pub(crate) fn source_of(input: Input) -> Box<dyn Read + Send> {
    match input {
        Input::File(f) => Box::new(f),
        Input::Bytes(v) => Box::new(std::io::Cursor::new(v)),
        Input::Verified { file, pointer, name } => Box::new(super::VerifyingReader::new(file, pointer, name)),
    }
}

fn ends_with_line_end(bytes: &[u8]) -> bool {
    matches!(bytes.last(), Some(b'\n' | b'\r'))
}

/// `;` if the first line has more of them than `,` outside quotes, else `,`.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &b in bytes {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas {
        b';'
    } else {
        b','
    }
}

impl CsvReader {
    pub fn open(input: Input, format: Format, opts: &ReadOptions) -> Result<CsvReader> {
        let mut r = CsvReader {
            columns: Vec::new(),
            source: source_of(input),
            parser: Box::new(Parser::new()),
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            eof: false,
            done: false,
            encoding: opts.encoding,
            batch_rows: opts.batch_rows.max(1),
            batch_bytes: (opts.batch_bytes / 2).max(1),
            bom: false,
            header: Vec::new(),
            terminator: b"\n",
            line_byte: b'\n',
            line: 1,
            data: Grow::with_len(64 * 1024),
            ends: Grow::with_len(1024),
        };
        // The BOM and the first line must be in the buffer to be seen: read until a line end
        // (or 1 MiB, or the end).
        while !r.eof && r.len < 3 {
            r.fill_more()?;
        }
        if r.buf[..r.len].starts_with(BOM) {
            r.bom = true;
            r.pos = 3;
        }
        let delimiter = match format {
            Format::Tsv => b'\t',
            _ => {
                while !r.eof
                    && r.len < CHUNK
                    && !r.buf[r.pos..r.len].iter().any(|&b| b == b'\n' || b == b'\r')
                {
                    r.fill_more()?;
                }
                sniff_delimiter(&r.buf[r.pos..r.len])
            }
        };
        r.parser = Box::new(ReaderBuilder::new().delimiter(delimiter).double_quote(true).build());
        let mut header = Vec::new();
        if r.next_record(&mut header)?.is_none() {
            // No header record: nothing to write back either (not even a BOM).
            r.done = true;
            r.bom = false;
            return Ok(r);
        }
        r.terminator = if header.ends_with(b"\r\n") {
            b"\r\n"
        } else if header.ends_with(b"\r") {
            b"\r"
        } else {
            b"\n"
        };
        if r.terminator == b"\r" {
            r.line_byte = b'\r';
            r.line = 1 + header.iter().filter(|&&b| b == b'\r').count() as u64;
        }
        let mut start = 0;
        for i in 0..r.ends.used {
            let end = r.ends.buf[i];
            let bytes = &r.data.buf[start..end];
            start = end;
            let name = match r.encoding {
                Encoding::Utf8 => std::str::from_utf8(bytes)
                    .map_err(|_| {
                        Error::invalid("the table's header line is not UTF-8 text").with_hint(
                            "if the file is a Latin-1 (Windows-1252) export, set `clean.encoding: latin-1` in mlgit.yaml",
                        )
                    })?
                    .to_string(),
                Encoding::Latin1 => {
                    let mut s = String::new();
                    latin1::decode_into(bytes, &mut s);
                    s
                }
            };
            r.columns.push(Column { name, stored: "text".into() });
        }
        super::distinct_names(&mut r.columns);
        r.data.used = 0;
        r.ends.used = 0;
        r.header = header;
        Ok(r)
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Replace the buffer's content with the next chunk.
    fn fill(&mut self) -> Result<()> {
        let n = loop {
            match self.source.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            }
        };
        self.pos = 0;
        self.len = n;
        self.eof = n == 0;
        Ok(())
    }

    /// Append input to the buffer (only while opening, to see the whole first line).
    fn fill_more(&mut self) -> Result<()> {
        if self.len == self.buf.len() {
            return Ok(());
        }
        let n = loop {
            match self.source.read(&mut self.buf[self.len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            }
        };
        self.len += n;
        self.eof = n == 0;
        Ok(())
    }

    /// Parse the next record: its bytes are appended to `raw` (blank lines before it left out),
    /// its fields to `self.data` and their ends (offsets into `self.data`) to `self.ends`.
    /// Returns the line its first line is on, or None at the end of the input.
    fn next_record(&mut self, raw: &mut Vec<u8>) -> Result<Option<u64>> {
        let data_start = self.data.used;
        let ends_start = self.ends.used;
        let mut leading = true;
        let mut line = self.line;
        loop {
            if self.pos == self.len && !self.eof {
                self.fill()?;
                continue;
            }
            if leading {
                while self.pos < self.len && matches!(self.buf[self.pos], b'\r' | b'\n') {
                    self.line += (self.buf[self.pos] == self.line_byte) as u64;
                    self.pos += 1;
                }
                if self.pos == self.len && !self.eof {
                    continue;
                }
                leading = false;
                line = self.line;
            }
            let input = &self.buf[self.pos..self.len];
            let (res, nin, nout, nend) = self.parser.read_record(
                input,
                &mut self.data.buf[self.data.used..],
                &mut self.ends.buf[self.ends.used..],
            );
            let consumed = &input[..nin];
            self.line += memchr::memchr_iter(self.line_byte, consumed).count() as u64;
            raw.extend_from_slice(consumed);
            self.pos += nin;
            self.data.used += nout;
            self.ends.used += nend;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.data.grow(),
                ReadRecordResult::OutputEndsFull => self.ends.grow(),
                ReadRecordResult::Record => {
                    // The parser ends a CRLF record at its CR; the LF belongs to it too.
                    if raw.last() == Some(&b'\r') {
                        if self.pos == self.len && !self.eof {
                            self.fill()?;
                        }
                        if self.pos < self.len && self.buf[self.pos] == b'\n' {
                            raw.push(b'\n');
                            self.pos += 1;
                            self.line += (self.line_byte == b'\n') as u64;
                        }
                    }
                    for e in &mut self.ends.buf[ends_start..self.ends.used] {
                        *e += data_start;
                    }
                    return Ok(Some(line));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.done || self.columns.is_empty() {
            return Ok(None);
        }
        let ncols = self.columns.len();
        let rows = self.batch_rows.min(1 << 16);
        let mut raw = Vec::with_capacity(rows * 64);
        let mut raw_ends = Vec::with_capacity(rows);
        let mut lines = Vec::with_capacity(rows);
        let mut bad = Vec::new();
        while lines.len() < self.batch_rows && bad.len() < self.batch_rows && raw.len() < self.batch_bytes {
            let raw_start = raw.len();
            let data_start = self.data.used;
            let ends_start = self.ends.used;
            let Some(line) = self.next_record(&mut raw)? else {
                self.done = true;
                break;
            };
            let got = self.ends.used - ends_start;
            let problem = if got != ncols {
                Some(BadRecord {
                    line,
                    column: None,
                    check: "fields",
                    reason: format!("expected {ncols} fields (as in the header), got {got}"),
                })
            } else if self.encoding == Encoding::Utf8 {
                self.check_utf8(data_start, ends_start).map(|(col, reason)| BadRecord {
                    line,
                    column: Some(self.columns[col].name.clone()),
                    check: "encoding",
                    reason,
                })
            } else {
                None
            };
            match problem {
                Some(b) => {
                    bad.push(b);
                    raw.truncate(raw_start);
                    self.data.used = data_start;
                    self.ends.used = ends_start;
                }
                None => {
                    raw_ends.push(raw.len());
                    lines.push(line);
                }
            }
        }
        if lines.is_empty() && bad.is_empty() {
            return Ok(None);
        }
        let data_cap = self.data.buf.len();
        let ends_cap = self.ends.buf.len();
        let data = self.data.take(data_cap);
        let mut ends = self.ends.take(ends_cap);
        let text = match self.encoding {
            Encoding::Utf8 => String::from_utf8(data)
                .map_err(|_| Error::invalid("internal: a CSV batch's checked text is not UTF-8"))?,
            Encoding::Latin1 => {
                if data.is_ascii() {
                    String::from_utf8(data).unwrap_or_default()
                } else {
                    let mut text = String::with_capacity(data.len() + data.len() / 4);
                    let mut start = 0;
                    for e in ends.iter_mut() {
                        latin1::decode_into(&data[start..*e], &mut text);
                        start = *e;
                        *e = text.len();
                    }
                    text
                }
            }
        };
        Ok(Some(Batch { inner: BatchKind::Csv(CsvBatch { ncols, text, ends, raw, raw_ends, lines }), bad }))
    }

    /// The first column of the record (fields at `ends[ends_start..]`) that is not UTF-8, and why.
    fn check_utf8(&self, data_start: usize, ends_start: usize) -> Option<(usize, String)> {
        let data = &self.data.buf[..self.data.used];
        let ends = &self.ends.buf[ends_start..self.ends.used];
        // One check for the record, then the field boundaries (a character split across two
        // fields would pass the first check).
        let whole_ok = std::str::from_utf8(&data[data_start..]).is_ok();
        let continuation = |at: usize| data.get(at).is_some_and(|&b| (b as i8) < -0x40);
        let mut start = data_start;
        for (col, &end) in ends.iter().enumerate() {
            let field = &data[start..end];
            if !whole_ok || (start < end && (continuation(start) || continuation(end))) {
                if let Err(e) = std::str::from_utf8(field) {
                    let at = e.valid_up_to();
                    return Some((
                        col,
                        format!(
                            "byte 0x{:02X} at offset {at} of the field is not UTF-8 (is the file a Latin-1 export? set clean.encoding)",
                            field[at]
                        ),
                    ));
                }
            }
            start = end;
        }
        None
    }
}

impl CsvBatch {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    fn field(&self, row: usize, col: usize) -> &str {
        let i = row * self.ncols + col;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..self.ends[i]).unwrap_or_default()
    }

    pub fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        if col >= self.ncols {
            return Cell::Null;
        }
        match self.field(row, col) {
            "" => Cell::Null,
            s => Cell::Text(s),
        }
    }

    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }

    /// [`Batch::canonical`] without going through cells (same bytes: a field's text, or nothing
    /// for an empty one, then 0x1f).
    fn raw_range(&self, row: usize) -> std::ops::Range<usize> {
        let start = if row == 0 { 0 } else { self.raw_ends[row - 1] };
        start..self.raw_ends[row]
    }
}

impl CsvWriter {
    pub fn new(reader: &CsvReader, text: TextOutput, out: HashingFile) -> Result<CsvWriter> {
        let transcode = text == TextOutput::Utf8 && reader.encoding == Encoding::Latin1;
        let mut w = CsvWriter {
            out,
            transcode,
            terminator: reader.terminator,
            pending_terminator: false,
            rows: 0,
            scratch: Vec::new(),
        };
        if reader.bom {
            w.out.write_all(BOM).map_err(write_error)?;
        }
        w.put(&reader.header)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.pending_terminator {
            self.out.write_all(self.terminator).map_err(write_error)?;
        }
        if self.transcode {
            self.scratch.clear();
            latin1::transcode_into(bytes, &mut self.scratch);
            self.out.write_all(&self.scratch).map_err(write_error)?;
        } else {
            self.out.write_all(bytes).map_err(write_error)?;
        }
        self.pending_terminator = !ends_with_line_end(bytes);
        Ok(())
    }

    pub fn write(&mut self, batch: &Batch, keep: &[bool]) -> Result<()> {
        let BatchKind::Csv(b) = &batch.inner else {
            return Err(Error::invalid("internal: a CSV writer was given a batch of another format"));
        };
        if keep.len() != b.len() {
            return Err(Error::invalid("internal: the keep mask and the batch differ in length"));
        }
        // Consecutive kept records are one slice of `raw`: one write each run.
        for run in super::kept_runs(keep) {
            let range = b.raw_range(run.start).start..b.raw_range(run.end - 1).end;
            self.put(&b.raw[range])?;
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
    use super::super::{Cell, Encoding, Format, OwnedCell, ReadOptions, TextOutput};

    fn opts(batch_rows: usize) -> ReadOptions {
        ReadOptions { encoding: Encoding::Utf8, batch_rows, ..ReadOptions::default() }
    }

    fn text(s: &str) -> OwnedCell {
        OwnedCell::Text(s.into())
    }

    /// A batch ends at `batch_rows` records or once its records' bytes reach `batch_bytes` / 2,
    /// whichever comes first; every record is read once.
    #[test]
    fn a_batch_ends_at_its_row_or_byte_limit() {
        let mut file = b"id,name\n".to_vec();
        for i in 0..100 {
            file.extend_from_slice(format!("{i:03},abcdef\n").as_bytes()); // 11 bytes a record
        }
        let by_bytes = ReadOptions { batch_rows: 1000, batch_bytes: 100, ..ReadOptions::default() };
        let (_, batches) = read_all(&file, Format::Csv, &by_bytes);
        let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [5; 20], "5 records of 11 bytes reach half of 100");
        let by_rows = ReadOptions { batch_rows: 30, batch_bytes: 1 << 20, ..ReadOptions::default() };
        let (_, batches) = read_all(&file, Format::Csv, &by_rows);
        assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [30, 30, 30, 10]);
    }

    #[test]
    fn every_record_written_back_reproduces_the_file_byte_for_byte() {
        let files: [&[u8]; 6] = [
            b"id,name\n1,a\n2,\"b, c\"\n3,\n",
            b"id,name\r\n1,a\r\n2,\"two\r\nlines\"\r\n",
            b"\xef\xbb\xbfid;name\n1;\"x;y\"\n2;z",
            b"id\tname\n1\t\"a\tb\"\n",
            b"a,b\n",
            b"a,b\r1,2\r3,4\r",
        ];
        for (i, f) in files.iter().enumerate() {
            let format = if i == 3 { Format::Tsv } else { Format::Csv };
            for batch_rows in [1, 2, 8192] {
                let (out, _) = round_trip(f, format, &opts(batch_rows));
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(f),
                    "file {i}, batches of {batch_rows}"
                );
            }
        }
    }

    #[test]
    fn quoted_newlines_and_delimiters_are_one_field_and_lines_count_from_one() {
        let f = b"id,note\n1,\"a\nb, c\"\"d\"\"\"\n\n2,x\n";
        let (reader, batches) = read_all(f, Format::Csv, &opts(10));
        assert_eq!(reader.columns().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "note"]);
        assert_eq!(
            rows_of(&batches, 2),
            vec![vec![text("1"), text("a\nb, c\"d\"")], vec![text("2"), text("x")]]
        );
        assert_eq!((batches[0].line(0), batches[0].line(1)), (2, 5));
    }

    #[test]
    fn a_bom_is_kept_in_the_output_but_not_in_the_first_column_name() {
        let f = b"\xef\xbb\xbfid,name\r\n1,a\r\n2,b\r\n";
        let (reader, batches) = read_all(f, Format::Csv, &opts(10));
        assert_eq!(reader.columns()[0].name, "id");
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r == 1);
        assert_eq!(rows, 1);
        assert_eq!(out, b"\xef\xbb\xbfid,name\r\n2,b\r\n");
        let (out, _) = write_kept(&reader, &batches, TextOutput::Utf8, |_| true);
        assert_eq!(out, f, "a UTF-8 file is written as read under TextOutput::Utf8 too");
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header_line() {
        let (reader, batches) = read_all(b"a;b;\"c,d\"\n1,5;2;3\n", Format::Csv, &opts(10));
        assert_eq!(reader.columns().len(), 3);
        assert_eq!(rows_of(&batches, 3), vec![vec![text("1,5"), text("2"), text("3")]]);
        let (reader, _) = read_all(b"\"a;b\",c\n", Format::Csv, &opts(10));
        assert_eq!(reader.columns().len(), 2);
    }

    #[test]
    fn a_record_with_a_wrong_field_count_is_bad_not_an_error() {
        let f = b"a,b\n1,2\n1,2,3\n4\n5,6\n";
        let (reader, batches) = read_all(f, Format::Csv, &opts(10));
        let b = &batches[0];
        assert_eq!(rows_of(&batches, 2), vec![vec![text("1"), text("2")], vec![text("5"), text("6")]]);
        assert_eq!(b.bad().len(), 2);
        assert_eq!((b.bad()[0].line, b.bad()[0].check), (3, "fields"));
        assert_eq!(b.bad()[0].reason, "expected 2 fields (as in the header), got 3");
        assert_eq!(b.bad()[1].line, 4);
        assert_eq!(b.line(1), 5);
        let (out, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!(out, b"a,b\n1,2\n5,6\n");
    }

    #[test]
    fn empty_fields_are_null_and_columns_past_the_record_are_null() {
        let (_, batches) = read_all(b"a,b,c\n,\"\",x\n1,,\n,,\n", Format::Csv, &opts(10));
        let b = &batches[0];
        assert_eq!(
            (b.cell(0, 0), b.cell(0, 1), b.cell(0, 2), b.cell(0, 3)),
            (Cell::Null, Cell::Null, Cell::Text("x"), Cell::Null)
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_make_a_bad_record_naming_the_column() {
        let f = b"id,name\n1,caf\xe9\n2,ok\n";
        let (_, batches) = read_all(f, Format::Csv, &opts(10));
        let b = &batches[0];
        assert_eq!(rows_of(&batches, 2), vec![vec![text("2"), text("ok")]]);
        assert_eq!(b.bad()[0].check, "encoding");
        assert_eq!(b.bad()[0].column.as_deref(), Some("name"));
        assert_eq!(b.bad()[0].line, 2);
        // A character split by a delimiter is not UTF-8 in either field.
        let (_, batches) = read_all(b"a,b\n\xc3,\xa9\n", Format::Csv, &opts(10));
        assert_eq!(batches[0].bad()[0].column.as_deref(), Some("a"));
    }

    #[test]
    fn a_latin1_file_decodes_and_transcodes_to_utf8_on_request() {
        let f = b"id,nom\xe9\r\n1,caf\xe9 \x80\r\n";
        let o = ReadOptions { encoding: Encoding::Latin1, batch_rows: 10, ..ReadOptions::default() };
        let (reader, batches) = read_all(f, Format::Csv, &o);
        assert_eq!(reader.columns()[1].name, "nomé");
        assert_eq!(rows_of(&batches, 2), vec![vec![text("1"), text("café €")]]);
        let (out, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!(out, f);
        let (out, _) = write_kept(&reader, &batches, TextOutput::Utf8, |_| true);
        assert_eq!(out, "id,nomé\r\n1,café €\r\n".as_bytes());
    }

    #[test]
    fn a_header_that_is_not_utf8_is_an_error_with_a_hint() {
        let r = super::super::TableReader::open(
            super::super::Input::Bytes(b"caf\xe9\n1\n".to_vec()),
            Format::Csv,
            &opts(10),
        );
        let err = r.err().expect("an error");
        assert!(err.hint().unwrap_or_default().contains("latin-1"));
    }

    #[test]
    fn an_empty_file_has_no_columns_and_writes_an_empty_file() {
        for f in [&b""[..], b"\n\n", b"\xef\xbb\xbf"] {
            let (reader, batches) = read_all(f, Format::Csv, &opts(10));
            assert!(reader.columns().is_empty() && batches.is_empty());
            let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
            assert_eq!((out, rows), (Vec::new(), 0));
        }
        let (reader, batches) = read_all(b"a,b\r\n", Format::Csv, &opts(10));
        assert_eq!((reader.columns().len(), batches.len()), (2, 0));
        let (out, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!(out, b"a,b\r\n", "a header-only file stays a header-only file");
    }

    #[test]
    fn a_kept_last_record_without_a_line_end_gets_one_only_when_a_record_follows() {
        let f = b"a\r\n1\r\n2";
        let (reader, batches) = read_all(f, Format::Csv, &opts(1));
        assert_eq!(batches.len(), 2);
        let (out, _) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r == 1);
        assert_eq!(out, b"a\r\n2");
        // The writer sees batches in any order the caller gives; a record after the unterminated
        // one is put on its own line.
        let mut w_batches = batches;
        w_batches.reverse();
        let (out, _) = write_kept(&reader, &w_batches, TextOutput::AsRead, |_| true);
        assert_eq!(out, b"a\r\n2\r\n1\r\n");
    }

    #[test]
    fn batches_hold_batch_rows_records_and_records_span_chunks() {
        let mut f = b"id,text\n".to_vec();
        for i in 0..5000 {
            f.extend_from_slice(format!("{i},\"{}\r\n{}\"\r\n", "x".repeat(i % 700), i).as_bytes());
        }
        let (reader, batches) = read_all(&f, Format::Csv, &opts(1000));
        assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [1000; 5]);
        assert_eq!(batches[4].cell(999, 0), Cell::Text("4999"));
        assert_eq!(batches[4].line(999), 2 + 2 * 4999);
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r % 3 == 0);
        assert_eq!(rows, 1667);
        let (_, again) = read_all(&out, Format::Csv, &opts(100_000));
        assert_eq!(again[0].cell(1, 0), Cell::Text("3"));
    }
}
