//! The stat cache (`.git/mlgit/stat-cache/<digest of the source folder>`): for each file of a source
//! folder commit-data has read, its size, mtime, inode and device with the SHA-256 of its content and
//! the blob its tree entry got (pointer or plain blob), so a re-commit of a mostly unchanged folder
//! reads only the files whose stat data changed. One file per source folder, keyed by relative path.
//!
//! An entry is trusted only when every stat field matches and the file's mtime is older than the
//! moment the entry was recorded minus a safety margin (files written in the same instant as they
//! were read are "racy", as in git's index, and are read again next time).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::LfsOid;

const HEADER: &str = "mlgit stat cache v2";
/// Files modified less than this long before they were read are not cached: the kernel stamps
/// mtimes from a coarse clock (a few milliseconds), so a write in the same tick as our read could
/// leave mtime unchanged. File systems without sub-second mtimes (mtime_ns of 0) get 2 s, as FAT needs.
const RACY_NANOS: i128 = 100_000_000;
const RACY_NANOS_COARSE: i128 = 2_000_000_000;

/// What the cache knows about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

impl Stat {
    pub fn of(meta: &fs::Metadata) -> Stat {
        Stat {
            size: meta.len(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheEntry {
    pub stat: Stat,
    pub sha256: LfsOid,
    /// Whether the file was stored in LFS (then `blob` is its pointer's blob).
    pub lfs: bool,
    /// The blob the file's tree entry got.
    pub blob: git2::Oid,
}

/// The cache, loaded in memory (one line per file; ~150 bytes per entry on disk).
#[derive(Debug, Default)]
pub struct StatCache {
    path: PathBuf,
    entries: HashMap<String, CacheEntry>,
    dirty: bool,
}

impl StatCache {
    /// The cache file for the source folder `source` (absolute) in a repository (`common_dir` is the
    /// `.git` shared by all worktrees).
    pub fn path_in(common_dir: &Path, source: &Path) -> PathBuf {
        use sha2::{Digest, Sha256};
        use std::os::unix::ffi::OsStrExt;
        let digest = LfsOid(Sha256::digest(source.as_os_str().as_bytes()).into()).to_hex();
        common_dir.join("mlgit").join("stat-cache").join(&digest[..32])
    }

    /// Load the cache; a missing or unreadable cache is an empty one (it is only an accelerator).
    pub fn load(path: &Path) -> StatCache {
        let mut cache = StatCache { path: path.to_path_buf(), ..Default::default() };
        let Ok(text) = fs::read_to_string(path) else { return cache };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return cache;
        }
        for line in lines {
            if let Some((key, entry)) = parse_line(line) {
                cache.entries.insert(key, entry);
            }
        }
        cache
    }

    /// The entry for the file at relative path `key` if its stat data still match.
    pub fn get(&self, key: &str, stat: &Stat) -> Option<CacheEntry> {
        self.entries.get(key).filter(|e| e.stat == *stat).copied()
    }

    /// Every entry: relative path and what was recorded for it (for `verify --repair`, which looks
    /// here for source files whose bytes may rebuild a damaged object).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &CacheEntry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Record a file read at `read_at_ns` (unix nanoseconds, taken before the read started); racy
    /// files are not recorded.
    pub fn insert(&mut self, key: &str, entry: CacheEntry, read_at_ns: i128) {
        let mtime = entry.stat.mtime as i128 * 1_000_000_000 + entry.stat.mtime_ns as i128;
        let margin = if entry.stat.mtime_ns == 0 { RACY_NANOS_COARSE } else { RACY_NANOS };
        if mtime >= read_at_ns - margin {
            self.dirty |= self.entries.remove(key).is_some();
        } else if self.entries.get(key) != Some(&entry) {
            self.entries.insert(key.to_string(), entry);
            self.dirty = true;
        }
    }

    /// Drop the entries of files `keep` does not accept (files gone from the folder).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|k, _| keep(k));
        self.dirty |= self.entries.len() != before;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the cache through a temporary file and a rename (concurrent writers: the last one wins,
    /// which only costs the loser's entries a re-read).
    pub fn save(&self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let mut out = String::with_capacity(self.entries.len() * 160 + 32);
        out.push_str(HEADER);
        out.push('\n');
        for (key, e) in &self.entries {
            out.push_str(&format!(
                "{} {}{} {} {} {} {} {} {}\n",
                e.sha256.to_hex(),
                if e.lfs { 'L' } else { 'G' },
                e.blob,
                e.stat.size,
                e.stat.mtime,
                e.stat.mtime_ns,
                e.stat.ino,
                e.stat.dev,
                key
            ));
        }
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("create a file in", dir, e))?;
        tmp.write_all(out.as_bytes()).map_err(|e| Error::io("write", tmp.path(), e))?;
        tmp.persist(&self.path).map_err(|e| Error::io("write", &self.path, e.error))?;
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(String, CacheEntry)> {
    let mut parts = line.splitn(8, ' ');
    let sha256 = LfsOid::from_hex(parts.next()?)?;
    let kind_blob = parts.next()?;
    let lfs = match kind_blob.as_bytes().first()? {
        b'L' => true,
        b'G' => false,
        _ => return None,
    };
    let blob = git2::Oid::from_str(&kind_blob[1..]).ok()?;
    let mut num = || parts.next()?.parse::<i64>().ok();
    let size = num()? as u64;
    let mtime = num()?;
    let mtime_ns = num()?;
    let ino = num()? as u64;
    let dev = num()? as u64;
    let key = parts.next()?.to_string();
    Some((key, CacheEntry { stat: Stat { size, mtime, mtime_ns, ino, dev }, sha256, lfs, blob }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_racy_and_changed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = StatCache::path_in(dir.path(), Path::new("/d"));
        let mut cache = StatCache::load(&path);
        assert!(cache.is_empty());
        let stat = Stat { size: 5, mtime: 100, mtime_ns: 7, ino: 9, dev: 1 };
        let blob = git2::Oid::from_str("ab").unwrap();
        let entry = CacheEntry { stat, sha256: LfsOid([3; 32]), lfs: true, blob };
        const S: i128 = 1_000_000_000;
        cache.insert("a b.csv", entry, 1000 * S);
        // Written 50 ms before it was read: racy.
        cache.insert(
            "racy",
            CacheEntry { stat: Stat { mtime: 999, mtime_ns: 950_000_000, ..stat }, ..entry },
            1000 * S,
        );
        // No sub-second mtime: a coarse file system, 2 s of margin.
        cache.insert(
            "coarse",
            CacheEntry { stat: Stat { mtime: 999, mtime_ns: 0, ..stat }, ..entry },
            1000 * S,
        );
        cache.save().unwrap();
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded.get("a b.csv", &stat), Some(entry));
        assert_eq!(loaded.get("a b.csv", &Stat { mtime_ns: 8, ..stat }), None);
        assert_eq!(loaded.get("racy", &stat), None);
        assert_eq!(loaded.get("coarse", &stat), None);
    }
}
