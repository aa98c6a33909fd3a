//! Commit-message trailers (`Key: value` lines closing a message, as `git interpret-trailers`
//! reads them): the provenance of data commits and the lineage links between branches.

/// Keys mlgit writes.
pub mod keys {
    /// `raw <commit>` / `clean <commit>` / `split <commit>` / `dev <commit>`: what a commit derives from.
    pub const DERIVED_FROM: &str = "Derived-From";
    pub const SOURCE: &str = "Mlgit-Source";
    pub const HOST: &str = "Mlgit-Host";
    pub const USER: &str = "Mlgit-User";
    pub const INGESTED_AT: &str = "Mlgit-Ingested-At";
    pub const FILES_ADDED: &str = "Mlgit-Files-Added";
    pub const FILES_CHANGED: &str = "Mlgit-Files-Changed";
    pub const FILES_UNCHANGED: &str = "Mlgit-Files-Unchanged";
    pub const FILES_REMOVED: &str = "Mlgit-Files-Removed";
    pub const BYTES: &str = "Mlgit-Bytes";
    pub const MANIFEST: &str = "Mlgit-Manifest";
    pub const SNAPSHOT: &str = "Mlgit-Snapshot";
    /// `KEY=VALUE`: a param set for the snapshot's run (`train-tag --set`), one trailer each.
    pub const SET: &str = "Mlgit-Set";
}

/// A commit message: a subject, an optional body, and trailers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    pub trailers: Vec<(String, String)>,
}

impl Message {
    pub fn new(subject: impl Into<String>) -> Self {
        Message { subject: subject.into(), ..Default::default() }
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    pub fn trailer(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        // A trailer value is one line.
        let value = value.to_string().replace(['\n', '\r'], " ");
        self.trailers.push((key.to_string(), value));
        self
    }

    /// The full message text.
    pub fn render(&self) -> String {
        let mut s = self.subject.trim().to_string();
        s.push('\n');
        if !self.body.trim().is_empty() {
            s.push('\n');
            s.push_str(self.body.trim_end());
            s.push('\n');
        }
        if !self.trailers.is_empty() {
            s.push('\n');
            for (k, v) in &self.trailers {
                s.push_str(&format!("{k}: {v}\n"));
            }
        }
        s
    }
}

/// The trailers of a message: the `Key: value` lines of its last paragraph (empty when that
/// paragraph has other lines or the message is a single paragraph).
pub fn parse(message: &str) -> Vec<(String, String)> {
    let text = message.trim_end();
    let Some(pos) = text.rfind("\n\n") else { return Vec::new() };
    let block = &text[pos + 2..];
    let mut out = Vec::new();
    for line in block.lines() {
        let Some((k, v)) = line.split_once(": ") else { return Vec::new() };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Vec::new();
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    out
}

/// The first value of `key` in a message's trailers.
pub fn get(message: &str, key: &str) -> Option<String> {
    parse(message).into_iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Message::new("Add batch")
            .body("From vendor X.")
            .trailer(keys::SOURCE, "/mnt/drop")
            .trailer(keys::DERIVED_FROM, "raw 0123");
        let text = m.render();
        assert_eq!(text, "Add batch\n\nFrom vendor X.\n\nMlgit-Source: /mnt/drop\nDerived-From: raw 0123\n");
        assert_eq!(get(&text, "derived-from").as_deref(), Some("raw 0123"));
        assert_eq!(parse("just a subject\n"), vec![]);
        assert_eq!(parse("s\n\nnot: a trailer\nbecause this line is prose\n"), vec![]);
    }

    #[test]
    fn values_stay_on_one_line() {
        let text = Message::new("s").trailer(keys::SOURCE, "/a\nb").render();
        assert_eq!(get(&text, keys::SOURCE).as_deref(), Some("/a b"));
    }
}
