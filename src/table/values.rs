//! What a cell's value is, whatever format it came from: the parsing rules shared by profiles
//! (which type a column profiles as) and schemas (which type a column infers as, and whether a
//! value coerces to it). Text cells are parsed here; typed cells are taken as they are.

use super::Cell;

/// A cell read as a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    /// An integer (an `Int` cell, or text that parses as `i64`).
    Int(i64),
    /// An integer above `i64::MAX` (a `UInt` cell, or text that parses as `u64` but not `i64`).
    UInt(u64),
    /// A finite non-integer-typed number (a `Float` cell, or text that parses as `f64` but not `i64`).
    Float(f64),
    Bool(bool),
    /// Microseconds since the epoch (a `Timestamp` cell, or ISO-8601 text when asked for).
    Timestamp(i64),
    /// Text that is none of the above.
    Text(&'a str),
    Nested(&'a str),
}

/// Read a cell as a value. Text is tried as an integer, a number, `true`/`false` (any case) and,
/// when `timestamps` is set, an ISO-8601 date or date-time (parsing dates costs more, so callers
/// stop asking once a column has shown text that is not one). Non-finite floats (`NaN`, `inf`,
/// as cells or as text) are not numbers: a `Float` cell holding one is returned as is and the
/// caller decides; text such as `NaN` stays text.
pub(crate) fn value_of(cell: Cell<'_>, timestamps: bool) -> Value<'_> {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(b),
        Cell::Int(i) => Value::Int(i),
        Cell::UInt(u) => Value::UInt(u),
        Cell::Float(f) => Value::Float(f),
        Cell::Timestamp(t) => Value::Timestamp(t),
        Cell::Nested(s) => Value::Nested(s),
        Cell::Text(s) => text_value(s, timestamps),
    }
}

fn text_value(s: &str, timestamps: bool) -> Value<'_> {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return Value::Text(s);
    };
    // Every number starts with a digit, a sign or a dot; skip the parsers for the rest.
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::UInt(u);
        }
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() {
                return Value::Float(f);
            }
        }
        if timestamps && first.is_ascii_digit() {
            if let Some(t) = parse_timestamp(s) {
                return Value::Timestamp(t);
            }
        }
        return Value::Text(s);
    }
    if let Some(v) = parse_bool_word(s) {
        return Value::Bool(v);
    }
    Value::Text(s)
}

/// `true` / `false` in any case.
pub(crate) fn parse_bool_word(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An ISO-8601 date (`2024-01-31`) or date-time (`2024-01-31T12:00:00`, a space for the `T`,
/// optional fraction of a second, optional `Z` or `+hh:mm` offset; without an offset it is UTC),
/// as microseconds since the epoch.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let b = s.as_bytes();
    // A cheap shape check first: `dddd-dd-dd`.
    if b.len() < 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !b[..4].iter().all(u8::is_ascii_digit)
        || !b[5..7].iter().all(u8::is_ascii_digit)
        || !b[8..10].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    if b.len() == 10 {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    if b[10] != b'T' && b[10] != b' ' && b[10] != b't' {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_read_as_the_narrowest_value() {
        let v = |s| value_of(Cell::Text(s), true);
        assert_eq!(v("42"), Value::Int(42));
        assert_eq!(v("-7"), Value::Int(-7));
        assert_eq!(v("3.5"), Value::Float(3.5));
        assert_eq!(v("1e3"), Value::Float(1000.0));
        assert_eq!(v("99999999999999999999"), Value::Float(1e20));
        assert_eq!(v("9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(v("9223372036854775808"), Value::UInt(1 << 63), "past i64::MAX: exact, not a float");
        assert_eq!(v("18446744073709551615"), Value::UInt(u64::MAX));
        assert_eq!(v("18446744073709551616"), Value::Float(18446744073709551616.0), "past u64::MAX");
        assert_eq!(value_of(Cell::UInt(u64::MAX), true), Value::UInt(u64::MAX));
        assert_eq!(v("TRUE"), Value::Bool(true));
        assert_eq!(v("false"), Value::Bool(false));
        assert_eq!(v("NaN"), Value::Text("NaN"));
        assert_eq!(v("-inf"), Value::Text("-inf"));
        assert_eq!(v("abc"), Value::Text("abc"));
        assert_eq!(v(" 3"), Value::Text(" 3"));
        assert_eq!(v("2024-01-31"), Value::Timestamp(1_706_659_200_000_000));
        assert_eq!(v("2024-01-31T00:00:01Z"), Value::Timestamp(1_706_659_201_000_000));
        assert_eq!(v("2024-01-31 00:00:01.5"), Value::Timestamp(1_706_659_201_500_000));
        assert_eq!(v("2024-01-31T01:00:00+01:00"), Value::Timestamp(1_706_659_200_000_000));
        assert_eq!(v("2024-02-30"), Value::Text("2024-02-30"));
        assert_eq!(value_of(Cell::Text("2024-01-31"), false), Value::Text("2024-01-31"));
    }
}
