//! Parquet tables: a streaming reader of Arrow record batches (one row group's pages at a time,
//! `batch_rows` rows per batch), cells read from the Arrow arrays, and a writer that writes the
//! selected rows with the input's Arrow schema, key-value metadata (pandas' included) and
//! compression codec.
//!
//! Cells, by Arrow type:
//! - signed and unsigned integers: Int (a UInt64 above i64::MAX: UInt, exact); floats (16/32/64): Float;
//!   Boolean: Bool; Utf8, LargeUtf8, Utf8View: Text; Duration: Int in its own unit;
//! - Timestamp (any unit, any time zone: the stored instant), Date32, Date64: Timestamp in
//!   microseconds (nanoseconds are truncated toward minus infinity);
//! - Decimal (32/64/128/256): Text, the exact decimal (`-12.50`), not a lossy Float;
//! - Binary, LargeBinary, BinaryView, FixedSizeBinary: Text, lowercase hex;
//! - Time32/Time64: Text `HH:MM:SS` with the unit's fraction when not zero;
//! - List, LargeList, FixedSizeList, Struct, Map: Nested, canonical JSON (struct fields and map
//!   keys sorted, no spaces; timestamps as RFC 3339 strings, binary as hex strings, decimals as
//!   numbers, map keys as their text);
//! - Dictionary: the cell of its value (pandas categoricals); Null, and types not listed above
//!   (intervals, unions, run-end encoded): Null.
//!
//! Text columns whose dictionary paid off in the first row group (see [`dictionary_paid_off`])
//! are read as dictionaries: each row an index into its row group's dictionary, with the same
//! cells, and no copy of each row's text. The profile then counts each value once per batch, and
//! the writers, whose schema stays the file's, take the dictionary arrays as the text they are.
//!
//! A batch's `line(row)` is the 1-based row of the file.
//!
//! The writer: same Arrow schema, the input's key-value metadata (`pandas`, …; the Arrow schema
//! itself is encoded again by the writer), the codec of the input's first column chunk
//! (snappy, pandas' default, when the input has no row group), dictionary encoding for the columns
//! whose dictionary paid off in the input's first row group: all pages dictionary encoded, and the
//! dictionary under half the chunk (the others, e.g. unique ids and continuous floats, plain:
//! smaller, and several times faster to write), row groups of the
//! input's first row group's row count, and at most 32 MiB each so that the three writers of a split stay within
//! the memory budget. Output is deterministic: the same batches give the same bytes. An empty input
//! (0 bytes) has no columns and is written as an empty file; a 0-row output of a real input is a
//! valid Parquet file with the schema and no row group. Codecs: uncompressed, snappy, gzip, lz4,
//! lz4_raw, zstd; a file compressed otherwise (brotli, lzo) is refused when read.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, BooleanArray, PrimitiveArray, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use parquet::schema::types::ColumnPath;

use super::object_check::ObjectCheck;
use super::output::Finished;
use super::{canonical_cell, Batch, BatchKind, Cell, Column, HashingFile, Input, ReadOptions};
use crate::error::{Error, ErrorKind, Result};

/// Whether the input's dictionary encoding of a column chunk paid off, so that its output keeps
/// it: every data page was dictionary encoded (none fell back to plain when the dictionary
/// overflowed), and the dictionary page is under half of the chunk. A dictionary that is most of
/// its chunk holds about as many values as the chunk (unique ids, continuous floats): written
/// plain, such a column is smaller and several times faster to write.
fn dictionary_paid_off(c: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
    let all_pages = match c.page_encoding_stats_mask() {
        Some(m) => m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY),
        None => true,
    };
    let small =
        c.dictionary_page_offset().is_some_and(|d| (c.data_page_offset() - d) * 2 < c.compressed_size());
    all_pages && small
}

/// pyarrow's default row group size, for an input without row groups.
const DEFAULT_ROW_GROUP_ROWS: usize = 1024 * 1024;
const MAX_ROW_GROUP_BYTES: usize = 32 << 20;

pub struct ParquetTableReader {
    columns: Vec<Column>,
    /// None for an empty input.
    stream: Option<Stream>,
    /// The hash of the input's LFS object, checked at the end of the table.
    check: Option<ObjectCheck>,
}

struct Stream {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
    metadata: Vec<KeyValue>,
    compression: Compression,
    row_group_rows: usize,
    /// Per leaf column of the first row group: whether its dictionary paid off
    /// ([`dictionary_paid_off`]; a column written plain costs a fraction of trying a dictionary).
    dictionary: Vec<(ColumnPath, bool)>,
    next_row: u64,
}

/// A batch of Parquet rows: the record batch, and its columns ready for cell reads.
pub struct ParquetBatch {
    batch: RecordBatch,
    first_row: u64,
    cols: Vec<Col>,
}

pub struct ParquetTableWriter {
    /// Boxed: Arrow's writer is large.
    writer: Option<Box<ArrowWriter<HashingFile>>>,
    /// The output of an empty input, written as an empty file.
    plain: Option<HashingFile>,
    rows: u64,
}

fn parquet_error(action: &str, err: impl std::fmt::Display) -> Error {
    Error::invalid(format!("cannot {action} the Parquet table: {err}")).with_hint(
        "mlgit reads whole Parquet files compressed with snappy (pandas' default), gzip, lz4 or zstd, or \
         uncompressed: check that pyarrow reads the file, and rewrite a brotli or lzo one with another codec",
    )
}

fn open_stream<T: ChunkReader + 'static>(input: T, opts: &ReadOptions) -> Result<Stream> {
    let file =
        ArrowReaderMetadata::load(&input, ArrowReaderOptions::new()).map_err(|e| parquet_error("read", e))?;
    let meta = Arc::clone(file.metadata());
    let first_group = meta.row_groups().first();
    let compression =
        first_group.and_then(|g| g.columns().first()).map(|c| c.compression()).unwrap_or(Compression::SNAPPY);
    let row_group_rows = first_group
        .map(|g| g.num_rows())
        .filter(|&n| n > 0)
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_ROW_GROUP_ROWS);
    let dictionary: Vec<(ColumnPath, bool)> = first_group
        .map(|g| g.columns().iter().map(|c| (c.column_path().clone(), dictionary_paid_off(c))).collect())
        .unwrap_or_default();
    let metadata = meta
        .file_metadata()
        .key_value_metadata()
        .map(|kv| kv.iter().filter(|k| k.key != parquet::arrow::ARROW_SCHEMA_META_KEY).cloned().collect())
        .unwrap_or_default();
    // The file's schema, not the batches': it carries the file's metadata (pandas').
    let schema = Arc::clone(file.schema());
    let file = match read_schema(&schema, &dictionary) {
        Some(hinted) => {
            ArrowReaderMetadata::try_new(Arc::clone(&meta), ArrowReaderOptions::new().with_schema(hinted))
                .map_err(|e| parquet_error("read", e))?
        }
        None => file,
    };
    let rows = (opts.batch_bytes / row_bytes(file.schema(), &meta)).clamp(1, opts.batch_rows.max(1));
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(input, file);
    let reader = builder.with_batch_size(rows).build().map_err(|e| parquet_error("read", e))?;
    Ok(Stream { reader, schema, metadata, compression, row_group_rows, dictionary, next_row: 0 })
}

/// About how many bytes a row takes in the batches read with `schema`: a fixed-width column its
/// width, a column read as a dictionary its 4-byte index, any other its bytes per row in the
/// file uncompressed (text, binary, nested values), plus 8 for offsets.
fn row_bytes(schema: &SchemaRef, meta: &parquet::file::metadata::ParquetMetaData) -> usize {
    let rows: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
    let stored = |name: &str| -> usize {
        let bytes: i64 = meta
            .row_groups()
            .iter()
            .flat_map(|g| g.columns())
            .filter(|c| c.column_path().parts().first().is_some_and(|p| p == name))
            .map(|c| c.uncompressed_size())
            .sum();
        (bytes / rows.max(1)).max(0) as usize + 8
    };
    let total: usize = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, _) => 4,
            t => t.primitive_width().unwrap_or_else(|| stored(f.name())),
        })
        .sum();
    total.max(1)
}

/// The schema to read with: the file's, with the text columns whose dictionary paid off read as
/// dictionaries (the reader then hands over the dictionary and each row's index into it instead
/// of copying every row's text; the profile counts each dictionary value once per batch, and the
/// writers, whose schema stays the file's, take the dictionary arrays as the text they stand for).
/// None when no column is read so.
fn read_schema(schema: &SchemaRef, dictionary: &[(ColumnPath, bool)]) -> Option<SchemaRef> {
    let paid_off = |name: &str| dictionary.iter().any(|(p, d)| *d && p.parts() == [name]);
    let mut hinted = false;
    let fields: Vec<arrow_schema::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 if paid_off(f.name()) => {
                hinted = true;
                let as_dictionary =
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(f.data_type().clone()));
                Arc::new(f.as_ref().clone().with_data_type(as_dictionary))
            }
            _ => Arc::clone(f),
        })
        .collect();
    hinted.then(|| Arc::new(arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone())))
}

impl ParquetTableReader {
    pub fn open(input: Input, opts: &ReadOptions) -> Result<ParquetTableReader> {
        let stream = match input {
            Input::File(f) => {
                let len = f.metadata().map_err(|e| {
                    Error::new(ErrorKind::Io, format!("cannot read the table: {e}")).with_source(e)
                })?;
                if len.len() == 0 {
                    None
                } else {
                    Some(open_stream(f, opts)?)
                }
            }
            Input::Verified { file, pointer, name } => {
                // Read out of order: hashed beside the reading, checked at the end.
                let check = ObjectCheck::start(&file, pointer, name)?;
                return match ParquetTableReader::open(Input::File(file), opts) {
                    Ok(reader) => Ok(ParquetTableReader { check: Some(check), ..reader }),
                    Err(e) => Err(check.finish().err().unwrap_or(e)),
                };
            }
            Input::Bytes(v) if v.is_empty() => None,
            Input::Bytes(v) => Some(open_stream(bytes::Bytes::from(v), opts)?),
        };
        let mut columns: Vec<Column> = stream
            .as_ref()
            .map(|s| {
                s.schema
                    .fields()
                    .iter()
                    .map(|f| Column { name: f.name().clone(), stored: f.data_type().to_string() })
                    .collect()
            })
            .unwrap_or_default();
        super::distinct_names(&mut columns);
        Ok(ParquetTableReader { columns, stream, check: None })
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        let Some(s) = self.stream.as_mut() else {
            self.check_object()?;
            return Ok(None);
        };
        let batch = match s.reader.next() {
            Some(Ok(b)) => b,
            None => {
                self.check_object()?;
                return Ok(None);
            }
            Some(Err(e)) => {
                // A corrupt object is named as such, not by what the parser stumbled on.
                self.check_object()?;
                return Err(parquet_error("read", e));
            }
        };
        let first_row = s.next_row;
        s.next_row += batch.num_rows() as u64;
        let cols = batch.columns().iter().map(|a| Col::of(a.as_ref())).collect::<Result<_>>()?;
        Ok(Some(Batch {
            inner: BatchKind::Parquet(ParquetBatch { batch, first_row, cols }),
            bad: Vec::new(),
        }))
    }

    /// The verdict on the input's LFS object, once (at the end of the table or at a read error).
    fn check_object(&mut self) -> Result<()> {
        match self.check.take() {
            Some(c) => c.finish(),
            None => Ok(()),
        }
    }
}

/// A column of a batch, by what its cells are.
enum Col {
    Null,
    Bool(BooleanArray),
    I8(PrimitiveArray<Int8Type>),
    I16(PrimitiveArray<Int16Type>),
    I32(PrimitiveArray<Int32Type>),
    I64(PrimitiveArray<Int64Type>),
    U8(PrimitiveArray<UInt8Type>),
    U16(PrimitiveArray<UInt16Type>),
    U32(PrimitiveArray<UInt32Type>),
    U64(PrimitiveArray<UInt64Type>),
    F16(PrimitiveArray<Float16Type>),
    F32(PrimitiveArray<Float32Type>),
    F64(PrimitiveArray<Float64Type>),
    Str(arrow_array::StringArray),
    LargeStr(arrow_array::LargeStringArray),
    StrView(arrow_array::StringViewArray),
    /// Dates and timestamps: the stored i64 and how to get microseconds from it.
    Micros(PrimitiveArray<Int64Type>, Scale),
    Days(PrimitiveArray<Date32Type>),
    /// Text from a dictionary (pandas categoricals, and the text columns read as dictionaries):
    /// each row's index into the dictionary's values (Str or LargeStr), checked in range.
    Dict {
        keys: PrimitiveArray<Int32Type>,
        values: Box<Col>,
        len: usize,
    },
    /// Text made once for the batch (decimals, binary, times, nested values).
    Rendered {
        text: String,
        ends: Vec<usize>,
        nulls: Option<NullBuffer>,
        nested: bool,
    },
}

#[derive(Clone, Copy)]
enum Scale {
    Mul(i64),
    Div(i64),
}

impl Scale {
    fn of(unit: &TimeUnit) -> Scale {
        match unit {
            TimeUnit::Second => Scale::Mul(1_000_000),
            TimeUnit::Millisecond => Scale::Mul(1_000),
            TimeUnit::Microsecond => Scale::Mul(1),
            TimeUnit::Nanosecond => Scale::Div(1_000),
        }
    }
    fn apply(self, v: i64) -> i64 {
        match self {
            Scale::Mul(m) => v.saturating_mul(m),
            Scale::Div(d) => v.div_euclid(d),
        }
    }
}

/// The i64 values of a date or timestamp array, as an Int64 array.
fn as_i64s<T: ArrowPrimitiveType<Native = i64>>(a: &dyn Array) -> PrimitiveArray<Int64Type> {
    let p = a.as_primitive::<T>();
    PrimitiveArray::<Int64Type>::new(p.values().clone(), p.nulls().cloned())
}

impl Col {
    fn cell(&self, row: usize) -> Cell<'_> {
        macro_rules! get {
            ($a:expr, $f:expr) => {
                if $a.is_null(row) {
                    Cell::Null
                } else {
                    $f($a.value(row))
                }
            };
        }
        match self {
            Col::Null => Cell::Null,
            Col::Bool(a) => get!(a, Cell::Bool),
            Col::I8(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::I16(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::I32(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::I64(a) => get!(a, Cell::Int),
            Col::U8(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::U16(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::U32(a) => get!(a, |v| Cell::Int(v as i64)),
            Col::U64(a) => get!(a, Cell::of_u64),
            Col::F16(a) => get!(a, |v: F16Native| Cell::Float(v.to_f64())),
            Col::F32(a) => get!(a, |v| Cell::Float(v as f64)),
            Col::F64(a) => get!(a, Cell::Float),
            Col::Str(a) => get!(a, Cell::Text),
            Col::LargeStr(a) => get!(a, Cell::Text),
            Col::StrView(a) => get!(a, Cell::Text),
            Col::Micros(a, scale) => get!(a, |v| Cell::Timestamp(scale.apply(v))),
            Col::Days(a) => get!(a, |v: i32| Cell::Timestamp(v as i64 * 86_400_000_000)),
            Col::Dict { keys, values, .. } => {
                if keys.is_null(row) {
                    Cell::Null
                } else {
                    values.cell(keys.value(row) as usize)
                }
            }
            Col::Rendered { text, ends, nulls, nested } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    return Cell::Null;
                }
                let start = if row == 0 { 0 } else { ends[row - 1] };
                let s = text.get(start..ends[row]).unwrap_or_default();
                if *nested {
                    Cell::Nested(s)
                } else {
                    Cell::Text(s)
                }
            }
        }
    }

    fn of(a: &dyn Array) -> Result<Col> {
        Ok(match a.data_type() {
            DataType::Boolean => Col::Bool(a.as_boolean().clone()),
            DataType::Int8 => Col::I8(a.as_primitive().clone()),
            DataType::Int16 => Col::I16(a.as_primitive().clone()),
            DataType::Int32 => Col::I32(a.as_primitive().clone()),
            DataType::Int64 => Col::I64(a.as_primitive().clone()),
            DataType::UInt8 => Col::U8(a.as_primitive().clone()),
            DataType::UInt16 => Col::U16(a.as_primitive().clone()),
            DataType::UInt32 => Col::U32(a.as_primitive().clone()),
            DataType::UInt64 => Col::U64(a.as_primitive().clone()),
            DataType::Float16 => Col::F16(a.as_primitive().clone()),
            DataType::Float32 => Col::F32(a.as_primitive().clone()),
            DataType::Float64 => Col::F64(a.as_primitive().clone()),
            DataType::Utf8 => Col::Str(a.as_string::<i32>().clone()),
            DataType::LargeUtf8 => Col::LargeStr(a.as_string::<i64>().clone()),
            DataType::Utf8View => Col::StrView(a.as_string_view().clone()),
            DataType::Duration(TimeUnit::Second) => Col::I64(as_i64s::<DurationSecondType>(a)),
            DataType::Duration(TimeUnit::Millisecond) => Col::I64(as_i64s::<DurationMillisecondType>(a)),
            DataType::Duration(TimeUnit::Microsecond) => Col::I64(as_i64s::<DurationMicrosecondType>(a)),
            DataType::Duration(TimeUnit::Nanosecond) => Col::I64(as_i64s::<DurationNanosecondType>(a)),
            DataType::Timestamp(unit, _) => {
                let values = match unit {
                    TimeUnit::Second => as_i64s::<TimestampSecondType>(a),
                    TimeUnit::Millisecond => as_i64s::<TimestampMillisecondType>(a),
                    TimeUnit::Microsecond => as_i64s::<TimestampMicrosecondType>(a),
                    TimeUnit::Nanosecond => as_i64s::<TimestampNanosecondType>(a),
                };
                Col::Micros(values, Scale::of(unit))
            }
            DataType::Date64 => Col::Micros(as_i64s::<Date64Type>(a), Scale::Mul(1_000)),
            DataType::Date32 => Col::Days(a.as_primitive().clone()),
            DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8) => {
                Col::dict(a)?
            }
            DataType::Dictionary(_, _) => Col::of(undictionary(a)?.as_ref())?,
            DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
            | DataType::Time32(_)
            | DataType::Time64(_) => Col::rendered(a, false),
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Struct(_)
            | DataType::Map(_, _) => Col::rendered(a, true),
            _ => Col::Null,
        })
    }

    /// A dictionary of text: its values, and each row's index into them as an Int32 array whose
    /// valid entries are all in range (a file's keys are checked, not trusted).
    fn dict(a: &dyn Array) -> Result<Col> {
        let Some(dict) = a.as_any_dictionary_opt() else {
            return Err(Error::invalid("internal: not a dictionary array"));
        };
        let values = Col::of(dict.values().as_ref())?;
        let n = dict.values().len();
        macro_rules! keys {
            ($t:ty) => {{
                let k = a.as_dictionary::<$t>().keys();
                // A key past i32 is out of range of any dictionary read here: -1 stands for it.
                let values = k.values().iter().map(|&v| i32::try_from(v).unwrap_or(-1)).collect();
                PrimitiveArray::<Int32Type>::new(values, k.nulls().cloned())
            }};
        }
        let keys = match a.data_type() {
            DataType::Dictionary(k, _) => match **k {
                DataType::Int8 => keys!(Int8Type),
                DataType::Int16 => keys!(Int16Type),
                DataType::Int32 => a.as_dictionary::<Int32Type>().keys().clone(),
                DataType::Int64 => keys!(Int64Type),
                DataType::UInt8 => keys!(UInt8Type),
                DataType::UInt16 => keys!(UInt16Type),
                DataType::UInt32 => keys!(UInt32Type),
                DataType::UInt64 => keys!(UInt64Type),
                _ => return Err(parquet_error("read", "a dictionary with keys that are not integers")),
            },
            _ => return Err(Error::invalid("internal: not a dictionary array")),
        };
        let out_of_range = keys.iter().flatten().any(|k| k < 0 || k as usize >= n);
        if out_of_range {
            return Err(parquet_error("read", "a dictionary index out of range"));
        }
        Ok(Col::Dict { keys, values: Box::new(values), len: n })
    }

    fn rendered(a: &dyn Array, nested: bool) -> Col {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            if !a.is_null(i) {
                if nested {
                    json_value(a, i, &mut text);
                } else {
                    text_value(a, i, &mut text);
                }
            }
            ends.push(text.len());
        }
        Col::Rendered { text, ends, nulls: a.logical_nulls(), nested }
    }
}

/// A dictionary array as the plain array of its values.
fn undictionary(a: &dyn Array) -> Result<ArrayRef> {
    let Some(dict) = a.as_any_dictionary_opt() else {
        return Err(Error::invalid("internal: not a dictionary array"));
    };
    if dict.values().is_empty() {
        // No value to point at: every row is null (and `normalized_keys` would panic).
        return Ok(arrow_array::new_null_array(dict.values().data_type(), a.len()));
    }
    let keys: Vec<u64> = dict.normalized_keys().into_iter().map(|k| k as u64).collect();
    let indices = PrimitiveArray::<UInt64Type>::new(keys.into(), dict.keys().logical_nulls());
    arrow_select::take::take(dict.values().as_ref(), &indices, None).map_err(|e| parquet_error("read", e))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn push_time(nanos_of_day: i64, digits: usize, out: &mut String) {
    use std::fmt::Write;
    let secs = nanos_of_day.div_euclid(1_000_000_000);
    let frac = nanos_of_day.rem_euclid(1_000_000_000);
    let _ = write!(out, "{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 && digits > 0 {
        let _ = write!(out, ".{:0width$}", frac / 10i64.pow(9 - digits as u32), width = digits);
    }
}

/// The text of a decimal, binary or time value (not null).
fn text_value(a: &dyn Array, i: usize, out: &mut String) {
    match a.data_type() {
        DataType::Decimal32(_, _) => out.push_str(&a.as_primitive::<Decimal32Type>().value_as_string(i)),
        DataType::Decimal64(_, _) => out.push_str(&a.as_primitive::<Decimal64Type>().value_as_string(i)),
        DataType::Decimal128(_, _) => out.push_str(&a.as_primitive::<Decimal128Type>().value_as_string(i)),
        DataType::Decimal256(_, _) => out.push_str(&a.as_primitive::<Decimal256Type>().value_as_string(i)),
        DataType::Binary => push_hex(a.as_binary::<i32>().value(i), out),
        DataType::LargeBinary => push_hex(a.as_binary::<i64>().value(i), out),
        DataType::BinaryView => push_hex(a.as_binary_view().value(i), out),
        DataType::FixedSizeBinary(_) => push_hex(a.as_fixed_size_binary().value(i), out),
        DataType::Time32(TimeUnit::Second) => {
            push_time(a.as_primitive::<Time32SecondType>().value(i) as i64 * 1_000_000_000, 0, out)
        }
        DataType::Time32(_) => {
            push_time(a.as_primitive::<Time32MillisecondType>().value(i) as i64 * 1_000_000, 3, out)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            push_time(a.as_primitive::<Time64MicrosecondType>().value(i).saturating_mul(1_000), 6, out)
        }
        DataType::Time64(_) => push_time(a.as_primitive::<Time64NanosecondType>().value(i), 9, out),
        _ => {}
    }
}

/// Microseconds of a date or timestamp value (not null), or None for other types.
fn micros_of(a: &dyn Array, i: usize) -> Option<i64> {
    Some(match a.data_type() {
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Scale::of(unit).apply(v)
        }
        DataType::Date32 => (a.as_primitive::<Date32Type>().value(i) as i64) * 86_400_000_000,
        DataType::Date64 => a.as_primitive::<Date64Type>().value(i).saturating_mul(1_000),
        _ => return None,
    })
}

fn push_json_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn push_json_f64(f: f64, out: &mut String) {
    match serde_json::Number::from_f64(f) {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

/// Append the canonical JSON of value `i` of `a`.
fn json_value(a: &dyn Array, i: usize, out: &mut String) {
    use std::fmt::Write;
    if a.is_null(i) {
        out.push_str("null");
        return;
    }
    macro_rules! int {
        ($t:ty) => {{
            let _ = write!(out, "{}", a.as_primitive::<$t>().value(i));
        }};
    }
    match a.data_type() {
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) { "true" } else { "false" }),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Duration(TimeUnit::Second) => int!(DurationSecondType),
        DataType::Duration(TimeUnit::Millisecond) => int!(DurationMillisecondType),
        DataType::Duration(TimeUnit::Microsecond) => int!(DurationMicrosecondType),
        DataType::Duration(TimeUnit::Nanosecond) => int!(DurationNanosecondType),
        DataType::Float16 => push_json_f64(a.as_primitive::<Float16Type>().value(i).to_f64(), out),
        DataType::Float32 => push_json_f64(a.as_primitive::<Float32Type>().value(i) as f64, out),
        DataType::Float64 => push_json_f64(a.as_primitive::<Float64Type>().value(i), out),
        DataType::Utf8 => push_json_str(a.as_string::<i32>().value(i), out),
        DataType::LargeUtf8 => push_json_str(a.as_string::<i64>().value(i), out),
        DataType::Utf8View => push_json_str(a.as_string_view().value(i), out),
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => text_value(a, i, out),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Time32(_)
        | DataType::Time64(_) => {
            let mut s = String::new();
            text_value(a, i, &mut s);
            push_json_str(&s, out);
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let mut s = Vec::new();
            if let Some(us) = micros_of(a, i) {
                canonical_cell(Cell::Timestamp(us), &mut s);
            }
            push_json_str(&String::from_utf8_lossy(&s), out);
        }
        DataType::List(_) => json_list(a.as_list::<i32>().value(i).as_ref(), out),
        DataType::LargeList(_) => json_list(a.as_list::<i64>().value(i).as_ref(), out),
        DataType::FixedSizeList(_, _) => json_list(a.as_fixed_size_list().value(i).as_ref(), out),
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let mut order: Vec<usize> = (0..fields.len()).collect();
            order.sort_by(|&x, &y| fields[x].name().cmp(fields[y].name()));
            out.push('{');
            for (n, &f) in order.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_json_str(fields[f].name(), out);
                out.push(':');
                json_value(s.column(f).as_ref(), i, out);
            }
            out.push('}');
        }
        DataType::Map(_, _) => {
            let entries = a.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut items: Vec<(String, usize)> = (0..entries.len())
                .map(|e| {
                    let mut k = String::new();
                    match keys.data_type() {
                        DataType::Utf8 => k.push_str(keys.as_string::<i32>().value(e)),
                        DataType::LargeUtf8 => k.push_str(keys.as_string::<i64>().value(e)),
                        DataType::Utf8View => k.push_str(keys.as_string_view().value(e)),
                        _ => json_value(keys.as_ref(), e, &mut k),
                    }
                    (k, e)
                })
                .collect();
            items.sort();
            out.push('{');
            for (n, (k, e)) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_json_str(k, out);
                out.push(':');
                json_value(values.as_ref(), *e, out);
            }
            out.push('}');
        }
        DataType::Dictionary(_, _) => match a.as_any_dictionary_opt() {
            Some(d) => match d.normalized_keys().get(i) {
                Some(&k) => json_value(d.values().as_ref(), k, out),
                None => out.push_str("null"),
            },
            None => out.push_str("null"),
        },
        _ => out.push_str("null"),
    }
}

fn json_list(items: &dyn Array, out: &mut String) {
    out.push('[');
    for j in 0..items.len() {
        if j > 0 {
            out.push(',');
        }
        json_value(items, j, out);
    }
    out.push(']');
}

impl ParquetBatch {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn cell(&self, row: usize, col: usize) -> Cell<'_> {
        match self.cols.get(col) {
            Some(c) => c.cell(row),
            None => Cell::Null,
        }
    }

    /// [`super::Batch::for_each_cell`] on this batch: one loop per column kind.
    #[inline]
    pub fn for_each_cell<'a>(&'a self, col: usize, rows: &[usize], mut f: impl FnMut(Cell<'a>)) {
        macro_rules! each {
            ($a:expr, $f:expr) => {
                for &row in rows {
                    f(if $a.is_null(row) { Cell::Null } else { $f($a.value(row)) })
                }
            };
        }
        match self.cols.get(col) {
            Some(Col::I64(a)) => each!(a, Cell::Int),
            Some(Col::F64(a)) => each!(a, Cell::Float),
            Some(Col::Str(a)) => each!(a, Cell::Text),
            Some(Col::LargeStr(a)) => each!(a, Cell::Text),
            Some(Col::Dict { keys, values, .. }) => each!(keys, |k: i32| values.cell(k as usize)),
            _ => rows.iter().for_each(|&row| f(self.cell(row, col))),
        }
    }

    pub fn line(&self, row: usize) -> u64 {
        self.first_row + row as u64 + 1
    }

    /// Column `col` as a dictionary, when it was read as one.
    pub fn dictionary(&self, col: usize) -> Option<Dictionary<'_>> {
        match self.cols.get(col) {
            Some(Col::Dict { keys, values, len }) => Some(Dictionary { keys, values, len: *len }),
            _ => None,
        }
    }
}

/// A text column read as a dictionary: its values, and each row's index into them.
pub struct Dictionary<'a> {
    keys: &'a PrimitiveArray<Int32Type>,
    values: &'a Col,
    len: usize,
}

impl<'a> Dictionary<'a> {
    /// How many values the dictionary holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Value `i` (`i < len()`): text, or null.
    pub fn value(&self, i: usize) -> Cell<'a> {
        self.values.cell(i)
    }

    /// The index of `row`'s value, or None when the row is null.
    #[inline]
    pub fn index(&self, row: usize) -> Option<usize> {
        if self.keys.is_null(row) {
            None
        } else {
            Some(self.keys.value(row) as usize)
        }
    }
}

type F16Native = <Float16Type as ArrowPrimitiveType>::Native;

impl ParquetTableWriter {
    pub fn new(reader: &ParquetTableReader, out: HashingFile) -> Result<ParquetTableWriter> {
        let Some(s) = reader.stream.as_ref() else {
            return Ok(ParquetTableWriter { writer: None, plain: Some(out), rows: 0 });
        };
        let mut props = WriterProperties::builder()
            .set_compression(s.compression)
            .set_max_row_group_row_count(Some(s.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
            .set_key_value_metadata(if s.metadata.is_empty() { None } else { Some(s.metadata.clone()) });
        for (path, dictionary) in &s.dictionary {
            props = props.set_column_dictionary_enabled(path.clone(), *dictionary);
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(out, Arc::clone(&s.schema), Some(props))
            .map_err(|e| parquet_error("write", e))?;
        Ok(ParquetTableWriter { writer: Some(Box::new(writer)), plain: None, rows: 0 })
    }

    pub fn write(&mut self, batch: &Batch, keep: &[bool]) -> Result<()> {
        let BatchKind::Parquet(b) = &batch.inner else {
            return Err(Error::invalid("internal: a Parquet writer was given a batch of another format"));
        };
        if keep.len() != b.len() {
            return Err(Error::invalid("internal: the keep mask and the batch differ in length"));
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let kept = keep.iter().filter(|&&k| k).count();
        if kept == 0 {
            return Ok(());
        }
        if kept == keep.len() {
            w.write(&b.batch).map_err(|e| parquet_error("write", e))?;
        } else {
            let mask = BooleanArray::from(keep.to_vec());
            let filtered = arrow_select::filter::filter_record_batch(&b.batch, &mask)
                .map_err(|e| parquet_error("write", e))?;
            w.write(&filtered).map_err(|e| parquet_error("write", e))?;
        }
        self.rows += kept as u64;
        Ok(())
    }

    pub fn finish(self) -> Result<(Finished, u64)> {
        let out = match (self.writer, self.plain) {
            (Some(w), _) => w.into_inner().map_err(|e| parquet_error("write", e))?,
            (None, Some(out)) => out,
            (None, None) => return Err(Error::invalid("internal: a Parquet writer without output")),
        };
        Ok((out.finish()?, self.rows))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::builder::{Int64Builder, ListBuilder};
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float64Array,
        Int32Array, Int64Array, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
        TimestampNanosecondArray, UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    use super::super::testing::{read_all, write_kept};
    use super::super::{Cell, Format, ReadOptions, TextOutput};

    fn opts(batch_rows: usize) -> ReadOptions {
        ReadOptions { batch_rows, ..ReadOptions::default() }
    }

    /// A table of every kind of column mlgit reads, 10 rows, with nulls.
    fn table() -> RecordBatch {
        let n = 10;
        let mut list = ListBuilder::new(Int64Builder::new());
        for i in 0..n {
            if i % 4 == 3 {
                list.append_null();
            } else {
                for j in 0..(i % 3) {
                    list.values().append_value(j as i64);
                }
                list.append(true);
            }
        }
        let ids: Int64Array = (0..n as i64).map(|i| if i == 5 { None } else { Some(i) }).collect();
        let x: Float64Array = (0..n).map(|i| Some(i as f64 * 0.5)).collect();
        let name: StringArray =
            (0..n).map(|i| if i % 3 == 0 { None } else { Some(format!("n{i}")) }).collect();
        let flag: BooleanArray = (0..n).map(|i| Some(i % 2 == 0)).collect();
        let ts = TimestampMicrosecondArray::from((0..n as i64).map(|i| i * 1_000_000).collect::<Vec<_>>())
            .with_timezone("UTC");
        let ns = TimestampNanosecondArray::from(vec![-1i64; n]);
        let day = Date32Array::from(vec![1; n]);
        let dec = Decimal128Array::from(vec![-1250i128; n]).with_precision_and_scale(10, 2).expect("decimal");
        let bin = BinaryArray::from(vec![&b"\x00\xff"[..]; n]);
        let big = UInt64Array::from(vec![u64::MAX; n]);
        let cat: DictionaryArray<arrow_array::types::Int8Type> = (0..n).map(|i| ["a", "b"][i % 2]).collect();
        let st = StructArray::from(vec![
            (
                Arc::new(Field::new("z", DataType::Int32, true)),
                Arc::new(Int32Array::from(vec![7; n])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("a", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["q\""; n])) as ArrayRef,
            ),
        ]);
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(ids)),
            ("x", Arc::new(x)),
            ("name", Arc::new(name)),
            ("flag", Arc::new(flag)),
            ("ts", Arc::new(ts)),
            ("ns", Arc::new(ns)),
            ("day", Arc::new(day)),
            ("dec", Arc::new(dec)),
            ("bin", Arc::new(bin)),
            ("big", Arc::new(big)),
            ("cat", Arc::new(cat)),
            ("st", Arc::new(st)),
            ("list", Arc::new(list.finish())),
        ];
        let fields: Vec<Field> =
            cols.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
        let meta = HashMap::from([("pandas".to_string(), "{\"index_columns\": []}".to_string())]);
        let schema = Arc::new(Schema::new_with_metadata(fields, meta));
        RecordBatch::try_new(schema, cols.into_iter().map(|(_, a)| a).collect()).expect("batch")
    }

    fn parquet_of(batch: &RecordBatch, compression: Compression, row_group: usize) -> Vec<u8> {
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(row_group))
            // as pyarrow does: the pandas metadata as a key of its own too
            .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                "pandas".into(),
                "{\"index_columns\": []}".to_string(),
            )]))
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
        w.write(batch).expect("write");
        w.close().expect("close");
        out
    }

    /// The whole file as one record batch, its first column chunk's codec, its row group sizes
    /// and its key-value metadata.
    type KeyValues = Vec<(String, Option<String>)>;

    fn reread(bytes: &[u8]) -> (RecordBatch, Option<Compression>, Vec<i64>, KeyValues) {
        let b =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec())).expect("parquet");
        let meta = b.metadata().clone();
        let codec = meta.row_groups().first().map(|g| g.column(0).compression());
        let groups = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        let kv = meta
            .file_metadata()
            .key_value_metadata()
            .map(|kv| kv.iter().map(|k| (k.key.clone(), k.value.clone())).collect())
            .unwrap_or_default();
        let schema = b.schema().clone();
        let batches: Vec<RecordBatch> = b.build().expect("reader").map(|r| r.expect("batch")).collect();
        (arrow_select::concat::concat_batches(&schema, &batches).expect("concat"), codec, groups, kv)
    }

    /// A text column whose dictionary paid off is read as its dictionary (no copy of each row's
    /// text); the cells, and the text written back (as text: the output's schema is the input's),
    /// are those of the rows.
    #[test]
    fn text_read_as_a_dictionary_gives_its_rows_cells_and_is_written_back_as_text() {
        use arrow_array::cast::AsArray;
        use arrow_array::Array;
        let n = 1000;
        let city: StringArray =
            (0..n).map(|i| (i % 7 != 0).then(|| ["Paris", "Lyon", "Nice"][i % 3])).collect();
        let unique: StringArray = (0..n).map(|i| Some(format!("row-{i}"))).collect();
        let batch = RecordBatch::try_from_iter([
            ("city", Arc::new(city.clone()) as ArrayRef),
            ("unique", Arc::new(unique) as ArrayRef),
        ])
        .expect("batch");
        let file = parquet_of(&batch, Compression::SNAPPY, 400);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(300));
        assert!(batches.iter().all(|b| b.dictionary(0).is_some()), "city is read as its dictionary");
        assert!(batches[0].dictionary(1).is_none(), "a dictionary as large as its chunk is not");
        let city_at = |row: usize| (!city.is_null(row)).then(|| city.value(row));
        let mut row = 0;
        for b in &batches {
            for r in 0..b.len() {
                assert_eq!(b.cell(r, 0), city_at(row).map_or(Cell::Null, Cell::Text), "row {row}");
                row += 1;
            }
        }
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r % 4 != 1);
        assert_eq!(rows, 750);
        let (got, _, _, _) = reread(&out);
        assert_eq!(got.schema().field(0).data_type(), &DataType::Utf8);
        let kept: Vec<Option<&str>> = (0..n).filter(|r| r % 4 != 1).map(city_at).collect();
        let got_city: Vec<Option<&str>> = got.column(0).as_string::<i32>().iter().collect();
        assert_eq!(got_city, kept);
    }

    /// Parquet batches hold as many rows as fit in `batch_bytes` by the column types (8 bytes an
    /// Int64, 4 a text column read as a dictionary, the stored bytes per row of other text, + 8),
    /// and at most `batch_rows`.
    #[test]
    fn a_parquet_batch_holds_the_rows_that_fit_in_its_bytes() {
        let n = 1000;
        let id = Int64Array::from((0..n as i64).collect::<Vec<_>>());
        let city: StringArray = (0..n).map(|i| Some(["Paris", "Lyon", "Nice"][i * 7919 % 31 % 3])).collect();
        let unique: StringArray = (0..n).map(|i| Some(format!("{i:030}"))).collect();
        let narrow = RecordBatch::try_from_iter([
            ("id", Arc::new(id.clone()) as ArrayRef),
            ("city", Arc::new(city) as ArrayRef),
        ])
        .expect("batch");
        let file = parquet_of(&narrow, Compression::SNAPPY, 1000);
        let o = ReadOptions { batch_rows: 1000, batch_bytes: 120, ..ReadOptions::default() };
        let (_, batches) = read_all(&file, Format::Parquet, &o);
        assert!(batches[0].dictionary(1).is_some(), "city is read as a dictionary");
        assert_eq!(batches[0].len(), 10, "12 bytes a row");
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), n);
        let wide = RecordBatch::try_from_iter([
            ("id", Arc::new(id) as ArrayRef),
            ("unique", Arc::new(unique) as ArrayRef),
        ])
        .expect("batch");
        let file = parquet_of(&wide, Compression::SNAPPY, 1000);
        let (_, batches) = read_all(&file, Format::Parquet, &ReadOptions { batch_bytes: 4800, ..o.clone() });
        let rows = batches[0].len();
        assert!((80..=100).contains(&rows), "about 50 bytes a row: {rows}");
        let capped = ReadOptions { batch_rows: 7, batch_bytes: 1 << 20, ..ReadOptions::default() };
        let (_, batches) = read_all(&file, Format::Parquet, &capped);
        assert_eq!(batches[0].len(), 7);
    }

    /// A categorical column whose every value is null: its cells are null, and it is written back.
    #[test]
    fn an_all_null_categorical_column_reads_as_nulls() {
        let keys = arrow_array::Int8Array::from(vec![None::<i8>; 5]);
        let values: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
        let cat = DictionaryArray::<arrow_array::types::Int8Type>::try_new(keys, values).expect("dictionary");
        let id = Int64Array::from((0..5).collect::<Vec<i64>>());
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(id) as ArrayRef),
            ("cat", Arc::new(cat) as ArrayRef),
        ])
        .expect("batch");
        let file = parquet_of(&batch, Compression::SNAPPY, 5);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(3));
        for b in &batches {
            for r in 0..b.len() {
                assert_eq!(b.cell(r, 1), Cell::Null);
            }
        }
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!(rows, 5);
        assert_eq!(reread(&out).0.column(1).null_count(), 5);
    }

    #[test]
    fn cells_come_from_the_arrow_arrays_with_nulls_nested_values_and_file_rows() {
        let file = parquet_of(&table(), Compression::SNAPPY, 4);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(3));
        assert_eq!(reader.columns()[0].name, "id");
        assert_eq!(reader.columns()[0].stored, "Int64");
        assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), [3, 3, 3, 1]);
        let b = &batches[1]; // rows 3, 4, 5
        assert_eq!(b.line(0), 4);
        assert_eq!(b.cell(2, 0), Cell::Null, "a null id");
        assert_eq!(b.cell(0, 0), Cell::Int(3));
        assert_eq!(b.cell(0, 1), Cell::Float(1.5));
        assert_eq!((b.cell(0, 2), b.cell(1, 2)), (Cell::Null, Cell::Text("n4")));
        assert_eq!(b.cell(0, 3), Cell::Bool(false));
        assert_eq!(b.cell(0, 4), Cell::Timestamp(3_000_000));
        assert_eq!(b.cell(0, 5), Cell::Timestamp(-1), "nanoseconds floor to microseconds");
        assert_eq!(b.cell(0, 6), Cell::Timestamp(86_400_000_000));
        assert_eq!(b.cell(0, 7), Cell::Text("-12.50"));
        assert_eq!(b.cell(0, 8), Cell::Text("00ff"));
        assert_eq!(b.cell(0, 9), Cell::UInt(u64::MAX), "a UInt64 above i64::MAX stays exact");
        assert_eq!((b.cell(0, 10), b.cell(1, 10)), (Cell::Text("b"), Cell::Text("a")));
        assert_eq!(b.cell(0, 11), Cell::Nested(r#"{"a":"q\"","z":7}"#));
        assert_eq!(
            (b.cell(0, 12), b.cell(1, 12), b.cell(2, 12)),
            (Cell::Null, Cell::Nested("[0]"), Cell::Nested("[0,1]"))
        );
        assert_eq!(b.cell(0, 99), Cell::Null);
    }

    #[test]
    fn for_each_cell_gives_the_cells_that_cell_gives_for_every_column_kind() {
        let file = parquet_of(&table(), Compression::SNAPPY, 4);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(4));
        for b in &batches {
            let rows: Vec<usize> = (0..b.len()).rev().step_by(2).collect();
            for col in 0..=reader.columns().len() {
                let mut got = Vec::new();
                b.for_each_cell(col, &rows, |cell| got.push(cell));
                let want: Vec<Cell> = rows.iter().map(|&r| b.cell(r, col)).collect();
                assert_eq!(got, want, "column {col}");
            }
        }
    }

    #[test]
    fn every_row_written_back_gives_the_same_batches_schema_metadata_codec_and_row_groups() {
        for codec in [
            Compression::SNAPPY,
            Compression::ZSTD(ZstdLevel::default()),
            Compression::GZIP(Default::default()),
            Compression::LZ4_RAW,
            Compression::LZ4,
            Compression::UNCOMPRESSED,
        ] {
            let file = parquet_of(&table(), codec, 4);
            let (reader, batches) = read_all(&file, Format::Parquet, &opts(3));
            let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
            assert_eq!(rows, 10);
            let (want, want_codec, want_groups, want_kv) = reread(&file);
            let (got, got_codec, got_groups, kv) = reread(&out);
            assert_eq!(kv, want_kv);
            assert_eq!(got, want);
            assert_eq!(got.schema().metadata().get("pandas"), Some(&"{\"index_columns\": []}".to_string()));
            assert!(kv.iter().any(|(k, _)| k == "pandas"), "{kv:?}");
            assert_eq!(got_codec, want_codec);
            assert_eq!(got_groups, want_groups);
            let (again, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
            assert_eq!(again, out, "deterministic output");
        }
    }

    #[test]
    fn the_keep_mask_selects_rows_in_order() {
        let file = parquet_of(&table(), Compression::SNAPPY, 4);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(4));
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r % 3 == 1);
        assert_eq!(rows, 3);
        let (got, _, _, _) = reread(&out);
        let ids = got.column(0).as_any().downcast_ref::<Int64Array>().expect("ids");
        assert_eq!(ids.iter().collect::<Vec<_>>(), [Some(1), Some(4), Some(7)]);
        let want = table();
        let idx = arrow_array::UInt32Array::from(vec![1, 4, 7]);
        for c in 0..want.num_columns() {
            let w = arrow_select::take::take(want.column(c).as_ref(), &idx, None).expect("take");
            assert_eq!(got.column(c).as_ref(), w.as_ref(), "column {c}");
        }
    }

    #[test]
    fn a_zero_row_output_is_a_valid_file_with_the_schema() {
        let file = parquet_of(&table(), Compression::SNAPPY, 4);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(4));
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| false);
        assert_eq!(rows, 0);
        let (got, _, groups, _) = reread(&out);
        assert_eq!((got.num_rows(), groups.len()), (0, 0));
        assert_eq!(got.schema().fields(), table().schema().fields());
        // and such a file reads as a table with its columns and no rows
        let (reader, batches) = read_all(&out, Format::Parquet, &opts(4));
        assert_eq!((reader.columns().len(), batches.len()), (13, 0));
        let (again, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        let (got, codec, _, _) = reread(&again);
        assert_eq!((got.num_rows(), codec), (0, None));
    }

    #[test]
    fn an_empty_input_has_no_columns_and_a_truncated_file_is_an_error() {
        let (reader, batches) = read_all(b"", Format::Parquet, &opts(4));
        assert!(reader.columns().is_empty() && batches.is_empty());
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        assert_eq!((out.len(), rows), (0, 0));
        let file = parquet_of(&table(), Compression::SNAPPY, 4);
        let cut = file[..file.len() - 10].to_vec();
        let err = super::super::TableReader::open(super::super::Input::Bytes(cut), Format::Parquet, &opts(4));
        assert!(err.is_err());
    }

    #[test]
    fn columns_keep_dictionary_encoding_only_where_the_input_had_it_throughout() {
        let n = 2000;
        let x: Float64Array = (0..n).map(|i| Some(i as f64 / 7.0)).collect();
        let c: StringArray = (0..n).map(|i| Some(["a", "b"][i % 2])).collect();
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(x) as ArrayRef), ("c", Arc::new(c) as ArrayRef)])
                .expect("batch");
        let props = WriterProperties::builder().set_dictionary_page_size_limit(256).build();
        let mut file = Vec::new();
        let mut w = ArrowWriter::try_new(&mut file, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        assert_eq!(
            rewritten_first_group(&file).iter().map(dictionary_encoded).collect::<Vec<_>>(),
            [false, true]
        );
    }

    /// The first row group's columns of `file` read and written back whole by mlgit.
    fn rewritten_first_group(file: &[u8]) -> Vec<parquet::file::metadata::ColumnChunkMetaData> {
        let (reader, batches) = read_all(file, Format::Parquet, &opts(500));
        let (out, _) = write_kept(&reader, &batches, TextOutput::AsRead, |_| true);
        let meta = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).expect("parquet");
        meta.metadata().row_group(0).columns().to_vec()
    }

    fn dictionary_encoded(c: &parquet::file::metadata::ColumnChunkMetaData) -> bool {
        c.dictionary_page_offset().is_some()
    }

    #[test]
    fn a_column_whose_dictionary_held_every_value_is_written_plain() {
        let n = 4000;
        let id: Int64Array = (0..n).map(|i| Some(i * 7919)).collect();
        let c: StringArray = (0..n).map(|i| Some(["a", "b", "c"][i as usize % 3])).collect();
        let batch =
            RecordBatch::try_from_iter([("id", Arc::new(id) as ArrayRef), ("c", Arc::new(c) as ArrayRef)])
                .expect("batch");
        // Arrow's default dictionary limit (1 MiB) holds all 4000 ids: every page is dictionary
        // encoded, and the dictionary is most of the chunk.
        let file = parquet_of(&batch, Compression::SNAPPY, 4000);
        let input =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file.clone())).expect("parquet");
        let id_in = input.metadata().row_group(0).column(0).clone();
        assert!(dictionary_encoded(&id_in));
        assert!(!super::dictionary_paid_off(&id_in));
        assert!(super::dictionary_paid_off(input.metadata().row_group(0).column(1)));
        let out = rewritten_first_group(&file);
        assert_eq!(out.iter().map(dictionary_encoded).collect::<Vec<_>>(), [false, true]);
        assert!(
            out[0].compressed_size() < id_in.compressed_size(),
            "plain ids are smaller than their dictionary"
        );
    }

    #[test]
    fn uint64_values_above_i64_max_are_exact_uint_cells_and_the_rest_int() {
        let ids = UInt64Array::from(vec![
            Some(u64::MAX),
            Some(u64::MAX - 1),
            Some(i64::MAX as u64),
            Some(1 << 63),
            None,
        ]);
        let batch = RecordBatch::try_from_iter([("id", Arc::new(ids) as ArrayRef)]).expect("batch");
        let file = parquet_of(&batch, Compression::SNAPPY, 2);
        let (reader, batches) = read_all(&file, Format::Parquet, &opts(3));
        assert_eq!(reader.columns()[0].stored, "UInt64");
        use super::super::testing::rows_of;
        use super::super::OwnedCell::*;
        use arrow_array::cast::AsArray;
        assert_eq!(
            rows_of(&batches, 1),
            vec![
                vec![UInt(u64::MAX)],
                vec![UInt(u64::MAX - 1)],
                vec![Int(i64::MAX)],
                vec![UInt(1 << 63)],
                vec![Null]
            ]
        );
        let (out, rows) = write_kept(&reader, &batches, TextOutput::AsRead, |r| r != 0);
        let (got, _, _, _) = reread(&out);
        assert_eq!(rows, 4);
        let back = got.column(0).as_primitive::<arrow_array::types::UInt64Type>();
        assert_eq!((back.value(0), back.value(2)), (u64::MAX - 1, 1 << 63));
    }
}
