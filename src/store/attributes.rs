//! `.gitattributes` handling: the mlgit-managed block that marks exactly the paths holding LFS
//! pointers (the invariant every tree mlgit writes keeps), and a matcher that evaluates a whole
//! `.gitattributes` file the way git does, for checks.

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};

pub const FILE: &str = ".gitattributes";
pub const BEGIN: &str = "# >>> mlgit: files stored in Git LFS (managed by mlgit; edits here are replaced)";
pub const END: &str = "# <<< mlgit";
/// The attributes git-lfs itself writes for tracked files.
pub const LFS_ATTRS: &str = "filter=lfs diff=lfs merge=lfs -text";
/// What the managed block writes for a plain file that a user's line would hand to git-lfs.
pub const UNSET_LFS_ATTRS: &str = "!filter !diff !merge";

/// A compiled gitattributes pattern, matched against '/'-separated paths relative to the root.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    /// Compile a gitattributes pattern (the gitignore rules without negation): a pattern without a
    /// '/' matches a file name at any depth; otherwise it is anchored at the root.
    pub fn new(text: &str) -> Result<Pattern> {
        let glob = to_glob(text);
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                Error::invalid(format!("invalid LFS pattern '{text}': {e}"))
                    .with_hint("LFS patterns are gitattributes patterns such as 'data/**' or '*.pkl'")
            })?
            .compile_matcher();
        Ok(Pattern { text: text.to_string(), matcher })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

fn to_glob(pattern: &str) -> String {
    // globset has no POSIX classes; git-lfs writes spaces as [[:space:]].
    let p = pattern.replace("[[:space:]]", "[ \t\n\r\u{b}\u{c}]");
    let trimmed = p.trim_end_matches('/');
    if let Some(anchored) = trimmed.strip_prefix('/') {
        anchored.to_string()
    } else if trimmed.contains('/') {
        trimmed.to_string()
    } else {
        format!("**/{trimmed}")
    }
}

/// Write a path as a gitattributes pattern that matches exactly that path.
pub fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            ' ' | '\t' => out.push_str("[[:space:]]"),
            '*' | '?' | '[' | ']' | '\\' | '"' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if path.contains('/') {
        out
    } else {
        // A bare name would match at any depth; anchor it.
        format!("/{out}")
    }
}

/// The lines of the managed block for a tree whose files are `files` (path, holds a pointer):
/// each configured pattern that matches no plain file (so a pattern that matches nothing yet is kept,
/// ready for files added later), then the exact path of every pointer no emitted pattern covers.
/// The result marks exactly the pointer paths.
pub fn managed_lines<'a>(
    patterns: &[Pattern],
    files: impl IntoIterator<Item = (&'a str, bool)>,
) -> Vec<String> {
    let files: Vec<(&str, bool)> = files.into_iter().filter(|(p, _)| *p != FILE).collect();
    let mut usable = vec![true; patterns.len()];
    for (path, is_pointer) in &files {
        if *is_pointer {
            continue;
        }
        for (i, pattern) in patterns.iter().enumerate() {
            if usable[i] && pattern.is_match(path) {
                usable[i] = false;
            }
        }
    }
    let emitted: Vec<&Pattern> =
        patterns.iter().enumerate().filter(|(i, _)| usable[*i]).map(|(_, p)| p).collect();
    let mut lines: Vec<String> = emitted.iter().map(|p| format!("{} {LFS_ATTRS}", p.text())).collect();
    let mut exact: Vec<String> = files
        .iter()
        .filter(|(path, is_pointer)| *is_pointer && !emitted.iter().any(|p| p.is_match(path)))
        .map(|(path, _)| format!("{} {LFS_ATTRS}", escape_path(path)))
        .collect();
    exact.sort();
    lines.extend(exact);
    lines
}

/// Replace (or append) the managed block in `existing` `.gitattributes` text. The block goes last, so
/// its lines win over the user's (in gitattributes the last matching line wins). With no lines and
/// no other content the result is empty (the file should then be removed).
pub fn splice(existing: &str, lines: &[String]) -> String {
    let mut user = String::new();
    let mut inside = false;
    for line in existing.lines() {
        if line == BEGIN {
            inside = true;
        } else if line == END && inside {
            inside = false;
        } else if !inside {
            user.push_str(line);
            user.push('\n');
        }
    }
    let user = user.trim_end_matches('\n');
    let mut out = String::new();
    if !user.is_empty() {
        out.push_str(user);
        out.push('\n');
    }
    if !lines.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(BEGIN);
        out.push('\n');
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
    }
    out
}

/// The effective `filter=lfs` setting of a whole root `.gitattributes` file, evaluated as git does
/// (last matching line that mentions `filter` wins).
#[derive(Debug, Default)]
pub struct LfsAttributes {
    rules: Vec<(Pattern, bool)>,
}

impl LfsAttributes {
    pub fn parse(text: &str) -> LfsAttributes {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = split_attr_line(line);
            if parts.is_empty() {
                continue;
            }
            let pattern = parts.remove(0);
            let mut lfs = None;
            for attr in parts {
                match attr.as_str() {
                    "filter=lfs" => lfs = Some(true),
                    "-filter" | "!filter" => lfs = Some(false),
                    a if a.starts_with("filter=") => lfs = Some(false),
                    _ => {}
                }
            }
            if let (Some(lfs), Ok(p)) = (lfs, Pattern::new(&pattern)) {
                rules.push((p, lfs));
            }
        }
        LfsAttributes { rules }
    }

    /// Whether git would run the LFS filter on `path`.
    pub fn is_lfs(&self, path: &str) -> bool {
        self.rules.iter().rev().find(|(p, _)| p.is_match(path)).map(|(_, lfs)| *lfs).unwrap_or(false)
    }
}

/// Split a line on unescaped whitespace (patterns escape spaces as `\ ` or `[[:space:]]`).
fn split_attr_line(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' | '\t' => {
                if !cur.is_empty() {
                    parts.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<Pattern> {
        p.iter().map(|s| Pattern::new(s).unwrap()).collect()
    }

    #[test]
    fn patterns_follow_gitattributes_rules() {
        let p = Pattern::new("data/**").unwrap();
        assert!(p.is_match("data/a.csv"));
        assert!(p.is_match("data/x/y/z.bin"));
        assert!(!p.is_match("data.csv"));
        assert!(!p.is_match("other/data/a"));
        let ext = Pattern::new("*.pkl").unwrap();
        assert!(ext.is_match("model.pkl"));
        assert!(ext.is_match("model/deep/m.pkl"));
        assert!(!ext.is_match("model/m.pkl.txt"));
        let anchored = Pattern::new("/top.bin").unwrap();
        assert!(anchored.is_match("top.bin"));
        assert!(!anchored.is_match("sub/top.bin"));
    }

    #[test]
    fn exact_paths_are_escaped_and_match_only_themselves() {
        for path in
            ["data/a b.csv", "data/star*.bin", "data/[x].bin", "top level.bin", "data/#1.csv", "data/ünï.bin"]
        {
            let escaped = escape_path(path);
            assert!(!escaped.contains(' '), "{escaped}");
            let p = Pattern::new(&escaped).unwrap();
            assert!(p.is_match(path), "{path} via {escaped}");
        }
        assert_eq!(escape_path("data/a b.csv"), "data/a[[:space:]]b.csv");
        assert!(!Pattern::new(&escape_path("data/star*.bin")).unwrap().is_match("data/starX.bin"));
        assert!(!Pattern::new(&escape_path("top.bin")).unwrap().is_match("sub/top.bin"));
    }

    #[test]
    fn managed_lines_cover_exactly_the_pointers() {
        let patterns = pats(&["data/**", "*.pkl"]);
        let files = [("data/a.csv", true), ("data/b c.csv", true), ("README.md", false), ("big.bin", true)];
        assert_eq!(
            managed_lines(&patterns, files),
            vec![
                format!("data/** {LFS_ATTRS}"),
                format!("*.pkl {LFS_ATTRS}"),
                format!("/big.bin {LFS_ATTRS}")
            ]
        );
        // A plain file under data/ makes the pattern unusable: exact paths instead.
        let files = [("data/a.csv", true), ("data/README.md", false), ("x.pkl", false)];
        assert_eq!(managed_lines(&patterns, files), vec![format!("data/a.csv {LFS_ATTRS}")]);
    }

    #[test]
    fn splice_keeps_user_lines_and_replaces_the_block() {
        let first = splice("*.txt text\n", &["data/** x".to_string()]);
        assert_eq!(first, format!("*.txt text\n\n{BEGIN}\ndata/** x\n{END}\n"));
        let second = splice(&first, &["other y".to_string()]);
        assert_eq!(second, format!("*.txt text\n\n{BEGIN}\nother y\n{END}\n"));
        assert_eq!(splice(&second, &[]), "*.txt text\n");
        assert_eq!(splice("", &[]), "");
    }

    #[test]
    fn effective_attributes_last_line_wins() {
        let a = LfsAttributes::parse(&format!(
            "data/** {LFS_ATTRS}\ndata/README.md -filter\nx\\ y.bin filter=lfs\n"
        ));
        assert!(a.is_lfs("data/x.csv"));
        assert!(!a.is_lfs("data/README.md"));
        assert!(a.is_lfs("x y.bin"));
        assert!(!a.is_lfs("README.md"));
        let spaced = LfsAttributes::parse(&format!("data/a[[:space:]]b.csv {LFS_ATTRS}\n"));
        assert!(spaced.is_lfs("data/a b.csv"));
    }
}
