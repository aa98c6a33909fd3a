//! The built-in validators of `mlgit clean`: pure functions from a file's path and bytes to the
//! reason it is unusable, if any. They check each format's own structure (PNG chunks and CRCs, JPEG
//! markers and segments, GIF header and trailer), text encodings and record syntax — never the
//! extension alone — and name the line or byte where a file goes wrong.

use serde::Serialize;

use crate::config::Validators;

/// Why a file was dropped: the validator that refused it and a sentence saying where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `empty`, `image`, `utf8`, `json` or `records` (the `clean.validators` key that turns it off),
    /// or `duplicate` (from `--drop-duplicates`).
    pub check: &'static str,
    pub reason: String,
}

impl Problem {
    fn new(check: &'static str, reason: impl Into<String>) -> Problem {
        Problem { check, reason: reason.into() }
    }
}

/// The format a path's extension announces (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    Text,
    Csv,
    Tsv,
    Json,
    JsonLines,
    Other,
}

impl Format {
    pub fn of(path: &str) -> Format {
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => return Format::Other,
        };
        match ext.as_str() {
            "png" => Format::Png,
            "jpg" | "jpeg" => Format::Jpeg,
            "gif" => Format::Gif,
            "txt" => Format::Text,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "json" => Format::Json,
            "jsonl" => Format::JsonLines,
            _ => Format::Other,
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Format::Text | Format::Csv | Format::Tsv | Format::Json | Format::JsonLines)
    }

    fn is_image(self) -> bool {
        matches!(self, Format::Png | Format::Jpeg | Format::Gif)
    }
}

/// Whether validating `path` (of `size` bytes) needs its content. When false, [`validate_size`]
/// decides alone and the content is never read (zero-copy cleaning reads only what it must).
pub fn needs_content(path: &str, size: u64, v: &Validators) -> bool {
    if size == 0 {
        return false;
    }
    let f = Format::of(path);
    (f.is_image() && v.images)
        || (f.is_text() && (v.empty || v.utf8))
        || (f == Format::Json && v.json)
        || (matches!(f, Format::Csv | Format::Tsv | Format::JsonLines) && v.records)
}

/// The verdict for a file whose content is not needed (see [`needs_content`]).
pub fn validate_size(size: u64, v: &Validators) -> Option<Problem> {
    (v.empty && size == 0).then(|| Problem::new("empty", "empty file (0 bytes)"))
}

/// Validate a file's content with the enabled validators; None when the file is usable.
pub fn validate(path: &str, data: &[u8], v: &Validators) -> Option<Problem> {
    if data.is_empty() {
        return validate_size(0, v);
    }
    let format = Format::of(path);
    if format.is_text() {
        if v.empty && data.iter().all(u8::is_ascii_whitespace) {
            return Some(Problem::new("empty", "text file holds only whitespace"));
        }
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                if !v.utf8 {
                    return None;
                }
                let at = e.valid_up_to();
                let line = 1 + data[..at].iter().filter(|&&b| b == b'\n').count();
                return Some(Problem::new(
                    "utf8",
                    format!("not valid UTF-8: invalid byte at offset {at} (line {line})"),
                ));
            }
        };
        // A byte-order mark (Windows exports) is an encoding detail, not content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        return match format {
            Format::Json if v.json => check_json(text),
            Format::JsonLines if v.records => check_json_lines(text),
            Format::Csv if v.records => check_delimited(text, b',', "CSV"),
            Format::Tsv if v.records => check_delimited(text, b'\t', "TSV"),
            _ => None,
        };
    }
    if v.images {
        let result = match format {
            Format::Png => check_png(data),
            Format::Jpeg => check_jpeg(data),
            Format::Gif => check_gif(data),
            _ => Ok(()),
        };
        if let Err(why) = result {
            return Some(Problem::new("image", why));
        }
    }
    None
}

fn check_json(text: &str) -> Option<Problem> {
    let err = serde_json::from_str::<serde::de::IgnoredAny>(text).err()?;
    Some(Problem::new("json", format!("JSON does not parse: {err}")))
}

fn check_json_lines(text: &str) -> Option<Problem> {
    for (i, line) in text.lines().enumerate() {
        // JSON Lines allows no blank records, but a blank line carries no record either: skip it.
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            return Some(Problem::new("records", format!("line {}: not a JSON value: {e}", i + 1)));
        }
    }
    None
}

/// RFC 4180 records (quoted fields may hold delimiters, doubled quotes and newlines): every record
/// must have as many fields as the first one (the header).
fn check_delimited(text: &str, delim: u8, name: &str) -> Option<Problem> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line = 1usize;
    let mut expected: Option<(usize, usize)> = None; // (fields, line of the header)
    while i < bytes.len() {
        let start_line = line;
        let mut fields = 1usize;
        let mut blank = true;
        // One record.
        loop {
            if i >= bytes.len() {
                break;
            }
            let b = bytes[i];
            if b == b'"' {
                blank = false;
                // Quoted field: runs to the closing quote not followed by another quote.
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Some(Problem::new(
                                "records",
                                format!("line {start_line}: {name} quoted field is never closed"),
                            ))
                        }
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
                match bytes.get(i) {
                    None | Some(b'\n') | Some(b'\r') => {}
                    Some(&c) if c == delim => {}
                    Some(_) => {
                        return Some(Problem::new(
                            "records",
                            format!("line {line}: {name} text after a closing quote"),
                        ))
                    }
                }
                continue;
            }
            if b == b'\n' {
                i += 1;
                line += 1;
                break;
            }
            if b == delim {
                fields += 1;
            }
            if b != b'\r' {
                blank = false;
            }
            i += 1;
        }
        if blank {
            continue; // blank lines (a trailing newline, an empty last line) are not records
        }
        match expected {
            None => expected = Some((fields, start_line)),
            Some((n, header)) if n != fields => {
                return Some(Problem::new(
                    "records",
                    format!(
                        "line {start_line}: {name} record has {fields} field(s), the header (line {header}) has {n}"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    None
}

/// CRC-32 (ISO-HDLC, as PNG uses), table-free bitwise form: PNG chunks are small enough that the
/// table would not pay for itself in code clarity.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for part in parts {
        for &b in *part {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
    }
    !crc
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Signature, then chunks (length, type, data, CRC) with correct CRCs, IHDR first, up to IEND.
pub fn check_png(data: &[u8]) -> Result<(), String> {
    if data.len() < 8 || data[..8] != PNG_SIGNATURE {
        return Err("not a PNG: bad signature".into());
    }
    let mut at = 8usize;
    let mut first = true;
    loop {
        if at + 8 > data.len() {
            return Err(format!("PNG truncated at byte {at}: no IEND chunk"));
        }
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let kind = &data[at + 4..at + 8];
        let name = String::from_utf8_lossy(kind).into_owned();
        let end = at.checked_add(12).and_then(|x| x.checked_add(len));
        let Some(end) = end.filter(|&e| e <= data.len()) else {
            return Err(format!("PNG truncated in chunk {name} at byte {at}"));
        };
        if first && kind != b"IHDR" {
            return Err(format!("PNG does not start with IHDR (first chunk {name})"));
        }
        first = false;
        let body = &data[at + 8..at + 8 + len];
        let stored = u32::from_be_bytes([data[end - 4], data[end - 3], data[end - 2], data[end - 1]]);
        if crc32(&[kind, body]) != stored {
            return Err(format!("PNG chunk {name} at byte {at} has a bad CRC"));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        at = end;
    }
}

/// SOI first; then marker segments whose lengths stay inside the file; entropy-coded data after
/// each SOS up to the next marker; and an EOI marker reached that way (a truncated file never has one).
pub fn check_jpeg(data: &[u8]) -> Result<(), String> {
    if data.len() < 4 || data[0] != 0xff || data[1] != 0xd8 {
        return Err("not a JPEG: no SOI marker".into());
    }
    let mut at = 2usize;
    loop {
        // Fill bytes (0xff) may precede a marker.
        while at < data.len() && data[at] == 0xff && data.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        if at + 1 >= data.len() {
            return Err(format!("JPEG truncated at byte {at}: no EOI marker"));
        }
        if data[at] != 0xff {
            return Err(format!("JPEG segment structure broken at byte {at} (expected a marker)"));
        }
        let marker = data[at + 1];
        at += 2;
        match marker {
            // Data after EOI (maker trailers, appended previews) is ignored, as decoders do.
            0xd9 => return Ok(()),
            0x01 | 0xd0..=0xd7 => continue, // markers without a length
            _ => {}
        }
        if at + 2 > data.len() {
            return Err(format!("JPEG truncated at byte {at}: no EOI marker"));
        }
        let len = u16::from_be_bytes([data[at], data[at + 1]]) as usize;
        if len < 2 || at + len > data.len() {
            return Err(format!("JPEG truncated in segment 0x{marker:02X} at byte {}", at - 2));
        }
        at += len;
        if marker == 0xda {
            // Entropy-coded data: skip to the next marker that is not a stuffed 0xff00 or a restart.
            loop {
                if at + 1 >= data.len() {
                    return Err(format!("JPEG truncated in scan data at byte {at}: no EOI marker"));
                }
                if data[at] == 0xff && data[at + 1] != 0 && !(0xd0..=0xd7).contains(&data[at + 1]) {
                    break;
                }
                at += 1;
            }
        }
    }
}

/// `GIF87a`/`GIF89a`, a logical screen descriptor, and the trailer byte 0x3B at the end.
pub fn check_gif(data: &[u8]) -> Result<(), String> {
    if data.len() < 6 || !(data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")) {
        return Err("not a GIF: bad header".into());
    }
    if data.len() < 14 {
        return Err("GIF truncated: no logical screen descriptor".into());
    }
    if data.last() != Some(&0x3b) {
        return Err("GIF truncated: no trailer (0x3B) at the end".into());
    }
    Ok(())
}

/// Small, valid sample files of each image format, built by hand (real encoders' files are in
/// tests/fixtures/images).
#[cfg(test)]
mod samples {
    /// A 1x1 PNG built chunk by chunk with real CRCs.
    pub fn png() -> Vec<u8> {
        let mut out = super::PNG_SIGNATURE.to_vec();
        let chunk = |out: &mut Vec<u8>, kind: &[u8], body: &[u8]| {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(body);
            out.extend_from_slice(&super::crc32(&[kind, body]).to_be_bytes());
        };
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        // zlib stream of one scanline: filter byte 0 and one grey pixel.
        chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff, 0x00, 0x80, 0x00, 0x82, 0x00, 0x81],
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A structurally complete baseline JPEG skeleton: SOI, APP0, DQT-like segment, SOS with scan
    /// data (including a stuffed 0xFF00 and a restart marker), EOI.
    pub fn jpeg() -> Vec<u8> {
        let mut out = vec![0xff, 0xd8];
        out.extend_from_slice(&[0xff, 0xe0, 0x00, 0x10]);
        out.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        out.extend_from_slice(&[0xff, 0xdb, 0x00, 0x04, 0x00, 0x01]);
        out.extend_from_slice(&[0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00]);
        out.extend_from_slice(&[0x12, 0x34, 0xff, 0x00, 0x56, 0xff, 0xd0, 0x78]);
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    /// A 1x1 GIF89a.
    pub fn gif() -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        out.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00]);
        out.push(0x3b);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Validators {
        Validators::default()
    }

    fn check(path: &str, data: &[u8]) -> Option<&'static str> {
        validate(path, data, &all()).map(|p| p.check)
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
        assert_eq!(crc32(&[b"IEND"]), 0xae42_6082);
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert_eq!(check("a.bin", b""), Some("empty"));
        assert_eq!(check("a.txt", b" \n\t\r\n"), Some("empty"));
        assert_eq!(check("a.bin", b"   "), None, "binary files are not text");
        assert_eq!(validate_size(0, &all()).map(|p| p.check), Some("empty"));
        let off = Validators { empty: false, ..all() };
        assert!(validate("a.txt", b"  ", &off).is_none());
        assert!(validate_size(0, &off).is_none());
    }

    #[test]
    fn png_structure() {
        let good = samples::png();
        assert!(check_png(&good).is_ok());
        assert_eq!(check("x/a.PNG", &good), None);
        let truncated = &good[..good.len() - 12];
        assert!(check_png(truncated).unwrap_err().contains("no IEND"), "{:?}", check_png(truncated));
        let cut = &good[..45];
        let err = check_png(cut).unwrap_err();
        assert!(err.contains("truncated in chunk IDAT"), "{err}");
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1; // inside IHDR's data
        assert!(check_png(&bad_crc).unwrap_err().contains("IHDR at byte 8 has a bad CRC"));
        assert!(check_png(b"\x89PNX\r\n\x1a\n").unwrap_err().contains("signature"));
        assert_eq!(check("a.png", &samples::jpeg()), Some("image"), "a JPEG named .png is refused");
    }

    #[test]
    fn jpeg_structure() {
        let good = samples::jpeg();
        assert!(check_jpeg(&good).is_ok(), "{:?}", check_jpeg(&good));
        let mut trailer = good.clone();
        trailer.extend_from_slice(b"\0\0maker trailer");
        assert!(check_jpeg(&trailer).is_ok(), "data after EOI is ignored, as decoders do");
        let no_eoi = &good[..good.len() - 2];
        assert!(check_jpeg(no_eoi).unwrap_err().contains("no EOI"));
        assert!(check_jpeg(&good[..10]).unwrap_err().contains("truncated in segment 0xE0"));
        assert!(check_jpeg(b"\x00\x00\xff\xd9").unwrap_err().contains("SOI"));
        let mut scan_cut = good[..good.len() - 2].to_vec();
        scan_cut.extend_from_slice(&[0x11, 0x22]);
        assert!(check_jpeg(&scan_cut).unwrap_err().contains("truncated in scan data"));
    }

    #[test]
    fn gif_structure() {
        assert!(check_gif(&samples::gif()).is_ok());
        let g = samples::gif();
        assert!(check_gif(&g[..g.len() - 1]).unwrap_err().contains("trailer"));
        assert!(check_gif(b"GIF90a0000000000;").unwrap_err().contains("header"));
        let off = Validators { images: false, ..all() };
        assert!(validate("a.gif", b"nope", &off).is_none());
    }

    #[test]
    fn utf8_reports_offset_and_line() {
        let p = validate("a.csv", b"a,b\n1,\xff\n", &all()).unwrap();
        assert_eq!(p.check, "utf8");
        assert!(p.reason.contains("offset 6 (line 2)"), "{}", p.reason);
        assert_eq!(check("a.bin", b"\xff\xfe"), None, "only text formats are checked");
    }

    #[test]
    fn json_and_json_lines() {
        assert_eq!(check("a.json", br#"{"a": [1, 2]}"#), None);
        assert_eq!(check("bom.json", b"\xef\xbb\xbf{\"a\": 1}"), None, "a BOM is not a JSON error");
        let p = validate("a.json", b"{\"a\": \n}", &all()).unwrap();
        assert_eq!(p.check, "json");
        assert!(p.reason.contains("line 2"), "{}", p.reason);
        assert_eq!(check("a.jsonl", b"{\"a\":1}\n\n[2]\n"), None);
        let p = validate("a.jsonl", b"{\"a\":1}\n{\"b\":\n3\n", &all()).unwrap();
        assert_eq!((p.check, p.reason.starts_with("line 2:")), ("records", true), "{}", p.reason);
    }

    #[test]
    fn csv_and_tsv_field_counts() {
        assert_eq!(check("a.csv", b"a,b,c\n1,2,3\r\n\"x,y\",\"multi\nline\",\"q\"\"\"\n\n"), None);
        let p = validate("a.csv", b"a,b,c\n1,2,3\n4,5\n", &all()).unwrap();
        assert_eq!(p.reason, "line 3: CSV record has 2 field(s), the header (line 1) has 3");
        let p = validate("a.csv", b"a,b\n\"open,2\n3,4\n", &all()).unwrap();
        assert!(p.reason.contains("line 2: CSV quoted field is never closed"), "{}", p.reason);
        let p = validate("a.csv", b"a,b\n\"1\n2\",3\n4,5,6\n", &all()).unwrap();
        assert!(p.reason.starts_with("line 4:"), "line numbers count embedded newlines: {}", p.reason);
        assert_eq!(check("a.tsv", b"a\tb\n1\t2\n"), None);
        assert_eq!(check("a.tsv", b"a\tb\n1,2\n"), Some("records"));
        let off = Validators { records: false, ..all() };
        assert!(validate("a.csv", b"a,b\n1\n", &off).is_none());
    }

    #[test]
    fn content_is_read_only_when_a_validator_needs_it() {
        let v = all();
        assert!(needs_content("a.png", 10, &v));
        assert!(needs_content("a.csv", 10, &v));
        assert!(!needs_content("a.bin", 10, &v));
        assert!(!needs_content("a.png", 0, &v), "size alone decides");
        let none = Validators { empty: false, images: false, utf8: false, json: false, records: false };
        assert!(!needs_content("a.png", 10, &none));
        assert!(!needs_content("a.jsonl", 10, &none));
        assert_eq!(Format::of("dir.d/.png"), Format::Other, "a dot-file has no extension");
    }
}

#[cfg(test)]
mod real_files {
    //! Files written by a real encoder (Pillow), committed under tests/fixtures/images.
    use super::*;

    const PNG: &[u8] = include_bytes!("../../tests/fixtures/images/photo.png");
    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/images/photo.jpg");
    const PROGRESSIVE: &[u8] = include_bytes!("../../tests/fixtures/images/progressive.jpg");
    const GIF: &[u8] = include_bytes!("../../tests/fixtures/images/photo.gif");

    #[test]
    fn real_images_pass_and_every_truncation_fails() {
        let v = Validators::default();
        for (name, data) in [("a.png", PNG), ("a.jpg", JPEG), ("b.jpeg", PROGRESSIVE), ("a.gif", GIF)] {
            assert_eq!(validate(name, data, &v), None, "{name}");
            // Cutting the file anywhere must be caught (GIF: its trailer is the only end marker).
            for cut in 1..data.len() {
                assert!(validate(name, &data[..cut], &v).is_some(), "{name} cut at {cut} passed");
            }
        }
    }
}
