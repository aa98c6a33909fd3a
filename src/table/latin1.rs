//! Decoding `clean.encoding: latin-1` text: Windows-1252, the superset of ISO-8859-1 that
//! Windows tools and Python's `cp1252` write (the WHATWG mapping: 0x80–0x9F are the Windows
//! characters `€`, `‚`, `“`…, and the five bytes Windows leaves undefined map to the C1 control of
//! the same value, as ISO-8859-1 does). Every byte decodes, so a Latin-1 table has no `encoding`
//! bad records.

/// The characters of bytes 0x80–0x9F.
const HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// The character a byte stands for.
pub(crate) fn char_of(b: u8) -> char {
    match b {
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        _ => b as char,
    }
}

/// Append the UTF-8 text of `bytes` to `out`.
pub(crate) fn decode_into(bytes: &[u8], out: &mut String) {
    if bytes.is_ascii() {
        // Valid UTF-8 as is; the common case, worth its own loop.
        out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
        return;
    }
    out.reserve(bytes.len() + bytes.len() / 2);
    for &b in bytes {
        out.push(char_of(b));
    }
}

/// Append the UTF-8 bytes of `bytes` to `out` (for writers: transcoded record bytes).
pub(crate) fn transcode_into(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_ascii() {
        out.extend_from_slice(bytes);
        return;
    }
    let mut tmp = [0u8; 4];
    for &b in bytes {
        if b.is_ascii() {
            out.push(b);
        } else {
            out.extend_from_slice(char_of(b).encode_utf8(&mut tmp).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_bytes_decode_like_python_cp1252() {
        let mut s = String::new();
        decode_into(b"caf\xe9 \x80 \x93q\x94 \x81", &mut s);
        assert_eq!(s, "café € “q” \u{81}");
        let mut v = Vec::new();
        transcode_into(b"a\xe9", &mut v);
        assert_eq!(v, "aé".as_bytes());
    }
}
