//! Listing what to ingest: one walk (stat data only, no file opened) that applies the name,
//! reserved-name, symlink and special-file rules and refuses every offending path in one error.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use git2::FileMode;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Choices of the caller; the rules themselves are the same for every command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Store what symlinks point to, for links that resolve inside the walked folder (else every
    /// symlink is refused).
    pub follow_symlinks: bool,
    /// The command's option that turns `follow_symlinks` on, named in the hint of a refused link
    /// (None: the command has no such option).
    pub follow_option: Option<&'static str>,
}

/// A regular file found by the walk.
#[derive(Debug, Clone)]
pub struct WalkedFile {
    /// '/'-separated path relative to the walked folder.
    pub rel: String,
    /// What to open: the file itself, or for a followed symlink the file it resolves to.
    pub path: PathBuf,
    /// Stat data as the walk saw it (of the link's target for a followed link); the read checks the
    /// opened descriptor against it.
    pub meta: fs::Metadata,
}

impl WalkedFile {
    pub fn mode(&self) -> FileMode {
        super::file_mode(&self.meta)
    }

    pub fn size(&self) -> u64 {
        self.meta.len()
    }
}

/// Why a path is refused: each rule has one wording and one hint, whichever command walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    NotUtf8,
    ControlCharacter,
    GitComponent,
    Reserved,
    Symlink,
    SymlinkOutside,
    Fifo,
    Socket,
    Device,
}

impl Rule {
    fn reason(self) -> &'static str {
        match self {
            Rule::NotUtf8 => "name not UTF-8",
            Rule::ControlCharacter => "a control character (newline, tab, NUL…) in the name",
            Rule::GitComponent => "'.git' component",
            Rule::Reserved => "reserved name: .gitattributes and .gitmodules are managed by mlgit and git",
            Rule::Symlink => "symlink",
            Rule::SymlinkOutside => "symlink pointing outside the folder, or nowhere",
            Rule::Fifo => "FIFO",
            Rule::Socket => "socket",
            Rule::Device => "device",
        }
    }

    fn hint(self, policy: &Policy) -> String {
        let text = match self {
            Rule::NotUtf8 | Rule::ControlCharacter | Rule::GitComponent => {
                "rename paths with non-UTF-8 names, newlines or '.git' components (git trees and .gitattributes cannot hold them)"
            }
            Rule::Reserved => {
                "remove or rename every .gitattributes and .gitmodules (file or folder, any case): in a data tree they would change how git and git-lfs read the files"
            }
            Rule::Symlink => match (policy.follow_symlinks, policy.follow_option) {
                (false, Some(option)) => {
                    return format!(
                        "pass {option} to store the files links point to (only links inside the folder), or remove them"
                    )
                }
                _ => "replace the links with copies of the files they point to, or remove them",
            },
            Rule::SymlinkOutside => {
                "only links that resolve inside the folder are followed: copy the targets in, or remove the links"
            }
            Rule::Fifo | Rule::Socket | Rule::Device => {
                "FIFOs, sockets and devices hold no data to version: move them out of the folder"
            }
        };
        text.to_string()
    }
}

/// What a walk found.
#[derive(Debug, Default)]
struct Found {
    files: Vec<WalkedFile>,
    /// Folders below the first level, walked in parallel.
    dirs: Vec<PathBuf>,
    refused: Vec<(String, Rule)>,
}

impl Found {
    fn merge(&mut self, other: Found) {
        self.files.extend(other.files);
        self.dirs.extend(other.dirs);
        self.refused.extend(other.refused);
    }
}

/// Every regular file under `root` (or under `root/<p>` for each `p` of `subpaths`, when given;
/// missing ones are skipped), sorted by relative path. Offending paths are all refused together,
/// so one run shows everything to fix.
pub fn walk(root: &Path, subpaths: &[&str], policy: &Policy) -> Result<Vec<WalkedFile>> {
    walk_filtered(root, subpaths, policy, &|_, _| false)
}

/// [`walk`], leaving out (and not descending into) every path for which `skip(rel, is_dir)` is
/// true, such as paths git ignores: a skipped path is never judged by the rules. `skip` is called
/// from several threads (a `git2::Repository` is not `Sync`: share one behind a `Mutex`).
pub fn walk_filtered(
    root: &Path,
    subpaths: &[&str],
    policy: &Policy,
    skip: &(dyn Fn(&str, bool) -> bool + Sync),
) -> Result<Vec<WalkedFile>> {
    // Walked through its canonical path, so a root reached through a symlink is still walked and
    // "inside the folder" means inside its real location.
    let canon_root = fs::canonicalize(root).map_err(|e| {
        Error::io("read the folder", root, e).with_hint("check that the folder exists and is readable")
    })?;
    let shown_root = root;
    let root = canon_root.as_path();
    let mut top = Found::default();
    if subpaths.is_empty() {
        top.merge(walk_from(root, root, &canon_root, policy, skip, 1, 1)?);
    } else {
        for sub in subpaths {
            let start = root.join(sub.trim_end_matches('/'));
            if fs::symlink_metadata(&start).is_ok() {
                top.merge(walk_from(&start, root, &canon_root, policy, skip, 0, 0)?);
            }
        }
    }
    // The folders are walked in parallel: a stat per file is most of an unchanged re-commit.
    let subs = std::mem::take(&mut top.dirs)
        .par_iter()
        .map(|d| walk_from(d, root, &canon_root, policy, skip, 1, usize::MAX))
        .collect::<Result<Vec<Found>>>()?;
    for sub in subs {
        top.merge(sub);
    }
    let Found { mut files, mut refused, .. } = top;
    if !refused.is_empty() {
        refused.sort();
        return Err(refusal(shown_root, &refused, policy));
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    after_walk_hook();
    Ok(files)
}

/// The one error for refused paths: every path with its reason, one hint per rule broken.
fn refusal(root: &Path, refused: &[(String, Rule)], policy: &Policy) -> Error {
    let shown: Vec<String> = refused
        .iter()
        .take(10)
        .map(|(p, r)| match r {
            // Quoted and escaped: a raw newline would break the message itself.
            Rule::ControlCharacter => format!("{p:?} ({})", r.reason()),
            _ => format!("{p} ({})", r.reason()),
        })
        .collect();
    let more = if refused.len() > 10 { format!(" and {} more", refused.len() - 10) } else { String::new() };
    let mut hints: Vec<String> = Vec::new();
    for (_, rule) in refused {
        let h = rule.hint(policy);
        if !hints.contains(&h) {
            hints.push(h);
        }
    }
    let n = refused.len();
    Error::invalid(format!(
        "{n} path{} in {} cannot be stored: {}{more}",
        if n == 1 { "" } else { "s" },
        root.display(),
        shown.join(", ")
    ))
    .with_hint(format!("{}; nothing was committed", hints.join("; ")))
}

/// Walk `start` (at or below `root`) from `min_depth` to `max_depth` levels.
fn walk_from(
    start: &Path,
    root: &Path,
    canon_root: &Path,
    policy: &Policy,
    skip: &(dyn Fn(&str, bool) -> bool + Sync),
    min_depth: usize,
    max_depth: usize,
) -> Result<Found> {
    let mut found = Found::default();
    let mut it = walkdir::WalkDir::new(start)
        .follow_links(policy.follow_symlinks)
        .follow_root_links(policy.follow_symlinks)
        .min_depth(min_depth)
        .max_depth(max_depth)
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| walk_error(start, e, policy))?;
        let is_dir = entry.file_type().is_dir();
        let descend = classify(&entry, root, canon_root, policy, skip, max_depth, &mut found)?;
        if is_dir && !descend && entry.depth() < max_depth {
            it.skip_current_dir();
        }
    }
    Ok(found)
}

fn walk_error(start: &Path, e: walkdir::Error, policy: &Policy) -> Error {
    let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| start.to_path_buf());
    if e.loop_ancestor().is_some() {
        let hint = match policy.follow_option {
            Some(option) if policy.follow_symlinks => format!("remove the link, or run without {option}"),
            _ => "remove the link".to_string(),
        };
        return Error::invalid(format!("symlink loop at {}", path.display())).with_hint(hint);
    }
    match e.into_io_error() {
        Some(io) => Error::io("read", &path, io)
            .with_hint("make the folder readable by this user (or leave it out), then retry"),
        None => Error::invalid(format!("cannot walk {}", path.display())),
    }
}

/// Judge one entry; returns whether to descend into it (a folder that is neither refused nor skipped).
fn classify(
    entry: &walkdir::DirEntry,
    root: &Path,
    canon_root: &Path,
    policy: &Policy,
    skip: &(dyn Fn(&str, bool) -> bool + Sync),
    max_depth: usize,
    found: &mut Found,
) -> Result<bool> {
    let path = entry.path();
    let Ok(rel) = path.strip_prefix(root) else { return Ok(false) };
    let ft = entry.file_type();
    let Some(rel) = rel.to_str() else {
        found.refused.push((format!("{:?}", rel.as_os_str()), Rule::NotUtf8));
        return Ok(false);
    };
    if skip(rel, ft.is_dir()) {
        return Ok(false);
    }
    if let Some(rule) = name_rule(entry.file_name().to_str().unwrap_or_default()) {
        found.refused.push((rel.to_string(), rule));
        return Ok(false);
    }
    let mut open_path = path.to_path_buf();
    if entry.path_is_symlink() {
        if !policy.follow_symlinks {
            found.refused.push((rel.to_string(), Rule::Symlink));
            return Ok(false);
        }
        match fs::canonicalize(path) {
            Ok(target) if target.starts_with(canon_root) => open_path = target,
            _ => {
                found.refused.push((rel.to_string(), Rule::SymlinkOutside));
                return Ok(false);
            }
        }
    }
    if ft.is_dir() {
        if entry.depth() == max_depth {
            found.dirs.push(path.to_path_buf());
        }
        return Ok(true);
    }
    if ft.is_symlink() {
        // A followed link whose target vanished between the two looks.
        found.refused.push((rel.to_string(), Rule::SymlinkOutside));
        return Ok(false);
    }
    if !ft.is_file() {
        let rule = if ft.is_fifo() {
            Rule::Fifo
        } else if ft.is_socket() {
            Rule::Socket
        } else {
            Rule::Device
        };
        found.refused.push((rel.to_string(), rule));
        return Ok(false);
    }
    let meta = entry.metadata().map_err(|e| {
        let io = e.into_io_error().unwrap_or_else(|| std::io::Error::other("metadata"));
        Error::io("stat", path, io)
            .with_hint("make the file readable by this user (or move it out of the folder)")
    })?;
    found.files.push(WalkedFile { rel: rel.to_string(), path: open_path, meta });
    Ok(false)
}

/// The rule a single path component breaks, if any.
fn name_rule(name: &str) -> Option<Rule> {
    // A tab cannot be told from a space in .gitattributes ([[:space:]] matches both).
    if name.contains(|c: char| c.is_ascii_control()) {
        return Some(Rule::ControlCharacter);
    }
    let name = as_git_reads(name);
    if name == ".git" || name == "git~1" {
        return Some(Rule::GitComponent);
    }
    let short = |stem: &str| (1..=4).any(|n| name == format!("{stem}~{n}"));
    if name == ".gitattributes" || name == ".gitmodules" || short("gitatt") || short("gitmod") {
        return Some(Rule::Reserved);
    }
    None
}

/// A name as git's checks see it on any file system (what `git fsck --strict` and checkouts on
/// macOS and Windows compare): lower case, without the code points HFS+ ignores, and without the
/// trailing dots and spaces (or `:stream` suffix) NTFS drops. So `.GIT.`, `.Gitmodules ` and
/// `.git\u{200c}attributes` are caught, as are NTFS short names such as `GIT~1`.
fn as_git_reads(name: &str) -> String {
    let hfs_ignored =
        |c: &char| matches!(*c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff);
    let kept: String = name.chars().filter(|c| !hfs_ignored(c)).collect::<String>().to_ascii_lowercase();
    let kept = kept.split(':').next().unwrap_or_default();
    kept.trim_end_matches(['.', ' ']).to_string()
}

/// Tests make the walk-then-read race deterministic: in debug builds only, the shell command in
/// `MLGIT_TEST_AFTER_WALK` runs once the walk is done and before any file is read.
fn after_walk_hook() {
    if cfg!(debug_assertions) {
        if let Some(cmd) = std::env::var_os("MLGIT_TEST_AFTER_WALK") {
            let _ = std::process::Command::new("sh").arg("-c").arg(cmd).status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_git_names_are_refused_in_any_case() {
        assert_eq!(name_rule(".GitAttributes"), Some(Rule::Reserved));
        assert_eq!(name_rule(".gitmodules"), Some(Rule::Reserved));
        assert_eq!(name_rule(".GIT"), Some(Rule::GitComponent));
        assert_eq!(name_rule("a\nb"), Some(Rule::ControlCharacter));
        assert_eq!(name_rule("a\tb"), Some(Rule::ControlCharacter));
        assert_eq!(name_rule(".gitignore"), None);
        assert_eq!(name_rule(".git. "), Some(Rule::GitComponent));
        assert_eq!(name_rule("GIT~1"), Some(Rule::GitComponent));
        assert_eq!(name_rule(".git\u{200c}modules"), Some(Rule::Reserved));
        assert_eq!(name_rule("GITMOD~1"), Some(Rule::Reserved));
        assert_eq!(name_rule(".gitattributes:stream"), Some(Rule::Reserved));
        assert_eq!(name_rule("..."), None);
        assert_eq!(name_rule("data.csv"), None);
    }

    #[test]
    fn one_error_lists_every_refused_path_and_the_walk_lists_subpaths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("model/.gitmodules")).unwrap();
        fs::write(root.join("model/.gitmodules/x"), b"x").unwrap();
        fs::write(root.join("model/w.bin"), b"w").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("model/leak")).unwrap();
        fs::write(root.join("other.txt"), b"o").unwrap();
        let err = walk(root, &["model/"], &Policy::default()).unwrap_err();
        assert!(err.message().contains("2 paths"), "{}", err.message());
        assert!(err.message().contains("model/.gitmodules (reserved name"), "{}", err.message());
        assert!(err.message().contains("model/leak (symlink)"), "{}", err.message());
        fs::remove_file(root.join("model/leak")).unwrap();
        let skip_reserved = |rel: &str, _: bool| rel.ends_with(".gitmodules");
        let files = walk_filtered(root, &["model", "missing"], &Policy::default(), &skip_reserved).unwrap();
        let rels: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, vec!["model/w.bin"]);
    }
}
