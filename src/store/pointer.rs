//! Git LFS pointer files: the small blob git stores in place of a large file's content.
//! mlgit writes only canonical pointers (the exact bytes `git lfs` itself writes), and reads any
//! pointer that `git lfs` accepts.

use std::fmt;

/// The first line of every pointer.
pub const VERSION_LINE: &str = "version https://git-lfs.github.com/spec/v1";

/// Pointers are small; anything larger is content, whatever it says.
pub const MAX_POINTER_SIZE: usize = 1024;

/// A SHA-256 object id, as stored in pointers and in the LFS store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LfsOid(pub [u8; 32]);

impl LfsOid {
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
        }
        s
    }

    /// Parse 64 lowercase hex digits (git-lfs writes lowercase only).
    pub fn from_hex(hex: &str) -> Option<LfsOid> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(LfsOid(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for LfsOid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A parsed LFS pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pointer {
    pub oid: LfsOid,
    pub size: u64,
}

/// What a blob turned out to be when read as a possible pointer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a pointer at all: ordinary content.
    NotPointer,
    /// A valid pointer; `canonical` is false when its bytes differ from what git-lfs writes
    /// (`git lfs fsck` reports those as nonCanonicalPointer).
    Pointer { pointer: Pointer, canonical: bool },
}

impl Pointer {
    /// The canonical bytes: version, oid, size, each line ending in a single `\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("{VERSION_LINE}\noid sha256:{}\nsize {}\n", self.oid.to_hex(), self.size).into_bytes()
    }

    /// Read a blob as a pointer, following the spec's parsing rules: the version line first, then
    /// keys in sorted order; extra keys (extensions) are allowed but make the pointer non-canonical.
    pub fn parse(data: &[u8]) -> Parsed {
        if data.len() > MAX_POINTER_SIZE || !data.starts_with(b"version ") {
            return Parsed::NotPointer;
        }
        let Ok(text) = std::str::from_utf8(data) else { return Parsed::NotPointer };
        let mut oid = None;
        let mut size = None;
        let mut version_ok = false;
        for (i, line) in text.split_terminator('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((key, value)) = line.split_once(' ') else { return Parsed::NotPointer };
            match (i, key) {
                (0, "version") => {
                    version_ok = value == "https://git-lfs.github.com/spec/v1"
                        || value == "https://hawser.github.com/spec/v1";
                }
                (0, _) => return Parsed::NotPointer,
                (_, "oid") => oid = value.strip_prefix("sha256:").and_then(LfsOid::from_hex),
                (_, "size") => size = value.parse::<u64>().ok(),
                _ => {}
            }
        }
        match (version_ok, oid, size) {
            (true, Some(oid), Some(size)) => {
                let pointer = Pointer { oid, size };
                let canonical = pointer.to_bytes() == data;
                Parsed::Pointer { pointer, canonical }
            }
            _ => Parsed::NotPointer,
        }
    }

    /// The pointer in `data`, if it is one (canonical or not).
    pub fn from_blob(data: &[u8]) -> Option<Pointer> {
        match Pointer::parse(data) {
            Parsed::Pointer { pointer, .. } => Some(pointer),
            Parsed::NotPointer => None,
        }
    }

    /// The git blob id the canonical pointer has, without writing it anywhere.
    pub fn blob_id(&self) -> git2::Oid {
        // Hashing a small in-memory buffer cannot fail; fall back to the zero id only to avoid a panic.
        git2::Oid::hash_object(git2::ObjectType::Blob, &self.to_bytes()).unwrap_or_else(|_| git2::Oid::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn canonical_bytes_match_the_spec() {
        let p = Pointer { oid: LfsOid::from_hex(HEX).unwrap(), size: 12345 };
        let text = String::from_utf8(p.to_bytes()).unwrap();
        assert_eq!(
            text,
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{HEX}\nsize 12345\n")
        );
        assert_eq!(Pointer::parse(&p.to_bytes()), Parsed::Pointer { pointer: p, canonical: true });
    }

    #[test]
    fn missing_trailing_newline_is_a_non_canonical_pointer() {
        let text = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{HEX}\nsize 1");
        match Pointer::parse(text.as_bytes()) {
            Parsed::Pointer { pointer, canonical } => {
                assert_eq!(pointer.size, 1);
                assert!(!canonical);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_is_not_a_pointer() {
        assert_eq!(Pointer::parse(b"hello\n"), Parsed::NotPointer);
        assert_eq!(Pointer::parse(b"version 1\nfoo"), Parsed::NotPointer);
        let upper = format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 1\n",
            HEX.to_uppercase()
        );
        assert_eq!(Pointer::parse(upper.as_bytes()), Parsed::NotPointer);
    }

    #[test]
    fn blob_id_is_git_hash_object_of_the_pointer() {
        let p = Pointer { oid: LfsOid::from_hex(HEX).unwrap(), size: 3 };
        let expected = git2::Oid::hash_object(git2::ObjectType::Blob, &p.to_bytes()).unwrap();
        assert_eq!(p.blob_id(), expected);
    }
}
