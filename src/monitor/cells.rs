//! Cells of logged and reference tables as the drift checks read them: numbers, categories, tags
//! and times, whatever the table's format (CSV text, JSON values, Parquet types).

use crate::table::{canonical_cell, Cell};

/// `str::trim`, with the common case (nothing to trim) decided from the first and last bytes: this
/// runs for every cell of every column a log or a drift report reads.
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    // Bytes past ASCII may start or end a Unicode space: those take the full trim.
    let plain = |c: u8| c.is_ascii_graphic();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if plain(f) && plain(l) => s,
        _ => s.trim(),
    }
}

fn is_bool_text(t: &str) -> bool {
    t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false")
}

/// Whether a cell holds no value: null, or empty or blank text.
pub fn is_null(cell: Cell<'_>) -> bool {
    match cell {
        Cell::Null => true,
        Cell::Text(s) => trim(s).is_empty(),
        _ => false,
    }
}

/// The number a cell holds: numbers, booleans as 0/1, text that parses as a finite number. None for
/// anything else (and for null).
pub fn number(cell: Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Int(i) => Some(i as f64),
        Cell::UInt(u) => Some(u as f64),
        Cell::Float(f) => f.is_finite().then_some(f),
        Cell::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        Cell::Text(s) => {
            let t = trim(s);
            // No allocation: this runs for every cell of every numeric column.
            match t.parse::<f64>() {
                Ok(f) => f.is_finite().then_some(f),
                Err(_) if t.eq_ignore_ascii_case("true") => Some(1.0),
                Err(_) if t.eq_ignore_ascii_case("false") => Some(0.0),
                Err(_) => None,
            }
        }
        _ => None,
    }
}

/// A number that is a number: as [`number`], but booleans (JSON `true`, text `true`/`false`) are
/// not numbers here (a feature the model learned as prices does not take `true`).
pub fn plain_number(cell: Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Bool(_) => None,
        Cell::Text(s) if is_bool_text(trim(s)) => None,
        other => number(other),
    }
}

/// Whether a cell holds a number, as [`plain_number`] would say, but without parsing the common
/// case: text of digits with at most one point and a leading minus (a log checks every cell).
pub fn is_plain_number(cell: Cell<'_>) -> bool {
    if let Cell::Text(s) = cell {
        let b = trim(s).as_bytes();
        let digits = b.strip_prefix(b"-").unwrap_or(b);
        let mut points = 0;
        let simple = !digits.is_empty()
            && digits.len() < 16
            && digits.iter().all(|&c| {
                points += usize::from(c == b'.');
                c.is_ascii_digit() || c == b'.'
            })
            && points <= 1
            && digits != b".";
        if simple {
            return true;
        }
    }
    plain_number(cell).is_some()
}

/// The category text of a cell into `out` (cleared first). With `numeric`, a value that is a
/// number is written in one canonical form, so `1`, `1.0` and `true` of a 0/1 column are one
/// category whichever format holds them.
pub fn category(cell: Cell<'_>, numeric: bool, out: &mut Vec<u8>) {
    out.clear();
    if numeric {
        if let Some(x) = number(cell) {
            canonical_cell(Cell::Float(x), out);
            return;
        }
    }
    match cell {
        Cell::Text(s) => out.extend_from_slice(trim(s).as_bytes()),
        other => canonical_cell(other, out),
    }
}

/// A cell as text (tags, request ids, labels): canonical text, trimmed. None when null.
pub fn text(cell: Cell<'_>) -> Option<String> {
    if is_null(cell) {
        return None;
    }
    let mut out = Vec::new();
    category(cell, false, &mut out);
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A time cell as microseconds since the epoch: Parquet timestamps, or RFC 3339 / ISO-8601 text
/// (a date alone is its midnight UTC), or a number of seconds since the epoch.
pub fn time_micros(cell: Cell<'_>) -> Option<i64> {
    match cell {
        Cell::Timestamp(us) => Some(us),
        Cell::Int(s) => s.checked_mul(1_000_000),
        Cell::Float(s) if s.is_finite() => Some((s * 1e6) as i64),
        Cell::Text(s) => parse_time(trim(s)),
        _ => None,
    }
}

/// RFC 3339 (or ISO-8601 without a zone, taken as UTC; or a date alone) to microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// Microseconds since the epoch as RFC 3339 UTC (seconds precision).
pub fn format_micros(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_categories_agree_across_formats() {
        assert_eq!(number(Cell::Text(" 2.5 ")), Some(2.5));
        assert_eq!(number(Cell::Text("abc")), None);
        assert_eq!(number(Cell::Text("NaN")), None);
        let mut a = Vec::new();
        let mut b = Vec::new();
        category(Cell::Text("1.0"), true, &mut a);
        category(Cell::Int(1), true, &mut b);
        assert_eq!(a, b);
        category(Cell::Text(" red "), false, &mut a);
        assert_eq!(a, b"red");
        assert!(is_null(Cell::Text("  ")));
    }

    #[test]
    fn the_quick_number_check_agrees_with_parsing() {
        for t in [
            "1",
            "-2.5",
            "0.",
            ".5",
            ".",
            "-",
            "",
            "1.2.3",
            "1e5",
            "nan",
            "true",
            " 7 ",
            "12345678901234567890",
            "--1",
        ] {
            assert_eq!(is_plain_number(Cell::Text(t)), plain_number(Cell::Text(t)).is_some(), "{t:?}");
        }
    }

    #[test]
    fn the_quick_trim_trims_what_str_trim_trims() {
        for t in ["a", " a", "a ", "\ta\n", "\u{a0}1\u{3000}", "\u{2003}", "é", "\u{1}x", "", "  ", "x y"] {
            assert_eq!(trim(t), t.trim(), "{t:?}");
        }
        assert_eq!(number(Cell::Text("\u{a0}3\u{a0}")), Some(3.0));
        assert!(is_null(Cell::Text("\u{3000}")));
    }

    #[test]
    fn times_parse_in_the_usual_forms() {
        let t = parse_time("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_time("2026-01-02 03:04:05"), Some(t));
        assert_eq!(parse_time("2026-01-02"), Some(t - (3 * 3600 + 4 * 60 + 5) * 1_000_000));
        assert_eq!(format_micros(t), "2026-01-02T03:04:05Z");
        assert_eq!(parse_time("yesterday"), None);
    }
}
