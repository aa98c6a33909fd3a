//! Where output goes: results on stdout (human text, or one JSON document with `--json`), messages
//! and progress bars on stderr. Progress appears only on a terminal and never with `--quiet`.

use mlgit::remote::anonymize;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlgit::progress::Progress;
use mlgit::{Error, ErrorKind};
use serde::Serialize;

/// Decides, from the global flags, how results, messages and progress are shown.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
}

impl Printer {
    /// Print a command's result: its JSON form (with `schema_version` and `command`) or its text.
    /// A failed write never panics: it is kept for [`stdout_failure`], which `cli::run` turns into
    /// a quiet exit (the reader went away) or an error.
    pub fn result<T: Serialize>(&self, command: &str, outcome: &T, human: impl FnOnce(&T) -> String) {
        let mut text = if self.json { json_document(command, outcome) } else { human(outcome) };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        write_stdout(&text);
    }

    /// Text for stdout as it is: generated files (completions, the man page), the demo's steps.
    pub fn text(&self, text: &str) {
        write_stdout(text);
    }

    /// A note for the user on stderr (silenced by `--quiet`).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{}", anonymize(msg));
        }
    }

    /// A warning on stderr (shown even with `--quiet`, never on stdout).
    pub fn warn(&self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "warning: {}", anonymize(msg));
    }

    /// Report an error: `error:` / `caused by:` / `hint:` lines on stderr, and with `--json` also an
    /// error document on stdout so CI can parse every outcome. `command` is None when the command
    /// line names no command (a usage error).
    pub fn error(&self, command: Option<&str>, err: &Error) {
        let mut text = format!("error: {err}\n");
        for cause in err.causes() {
            text.push_str(&format!("caused by: {cause}\n"));
        }
        if let Some(hint) = err.hint() {
            text.push_str(&format!("hint: {hint}\n"));
        }
        let _ = std::io::stderr().lock().write_all(anonymize(&text).as_bytes());
        if self.json {
            print_error_document(command, err);
        }
    }

    /// A progress reporter: an indicatif bar on a terminal, nothing otherwise.
    pub fn progress(&self) -> Box<dyn Progress> {
        if self.quiet || !std::io::stderr().is_terminal() {
            return Box::new(mlgit::progress::NoProgress);
        }
        Box::new(Bar { bar: std::sync::Mutex::new(None) })
    }
}

/// The first failed write to stdout (later writes are skipped: a reader that went away stays away).
static STDOUT_FAILURE: OnceLock<std::io::Error> = OnceLock::new();

fn write_stdout(text: &str) {
    if STDOUT_FAILURE.get().is_some() {
        return;
    }
    // Every result and JSON document passes here: no URL credentials on stdout either.
    let text = anonymize(text);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        let _ = STDOUT_FAILURE.set(e);
    }
}

/// Why writing the result to stdout failed, if it did.
pub fn stdout_failure() -> Option<std::io::Error> {
    let e = STDOUT_FAILURE.get()?;
    Some(match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    })
}

/// Only the JSON error document, on stdout (a usage error, whose text clap has printed).
pub fn print_error_document(command: Option<&str>, err: &Error) {
    write_stdout(&format!("{}\n", error_document(command, err)));
}

/// A result document: `schema_version` and `command` first, then the outcome's own fields in their
/// declared order (a `serde_json::Value` would sort them, putting `command` first).
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema_version: u32,
    command: &'a str,
    #[serde(flatten)]
    outcome: &'a T,
}

/// The document of an outcome that is not a JSON object (a list, say): under `result`.
#[derive(Serialize)]
struct Wrapped<'a, T: Serialize> {
    schema_version: u32,
    command: &'a str,
    result: &'a T,
}

/// The JSON document of a result: the outcome's fields after `schema_version` and `command` (an
/// outcome must not have fields of those names).
pub fn json_document<T: Serialize>(command: &str, outcome: &T) -> String {
    let schema_version = mlgit::JSON_SCHEMA_VERSION;
    serde_json::to_string(&Document { schema_version, command, outcome })
        .or_else(|_| serde_json::to_string(&Wrapped { schema_version, command, result: outcome }))
        .unwrap_or_else(|e| {
            let err = Error::new(ErrorKind::InvalidInput, "cannot render the result as JSON")
                .with_source(e)
                .with_hint("report this as a bug; the command itself succeeded (run it without --json)");
            error_document(Some(command), &err)
        })
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    schema_version: u32,
    command: Option<&'a str>,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: ErrorKind,
    message: String,
    causes: Vec<String>,
    hint: Option<&'a str>,
    exit_code: i32,
}

/// The JSON document of an error (docs/json.md).
pub fn error_document(command: Option<&str>, err: &Error) -> String {
    let doc = ErrorDocument {
        schema_version: mlgit::JSON_SCHEMA_VERSION,
        command,
        error: ErrorBody {
            kind: err.kind(),
            message: err.to_string(),
            causes: err.causes(),
            hint: err.hint(),
            exit_code: err.exit_code(),
        },
    };
    // Strings, numbers and a list of strings: serialising cannot fail.
    serde_json::to_string(&doc).unwrap_or_default()
}

/// An indicatif bar counting bytes when the phase knows its byte total, files otherwise.
struct Bar {
    bar: std::sync::Mutex<Option<(ProgressBar, bool)>>,
}

impl Progress for Bar {
    fn begin(&self, phase: &str, files: u64, bytes: u64) {
        let by_bytes = bytes > 0;
        let (len, template) = if by_bytes {
            (bytes, "{msg:12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
        } else {
            (files, "{msg:12} [{bar:30}] {pos}/{len} files {per_sec} ETA {eta}")
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(phase.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.lock() {
            if let Some((old, _)) = slot.replace((bar, by_bytes)) {
                old.finish_and_clear();
            }
        }
    }

    fn advance(&self, files: u64, bytes: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some((bar, by_bytes)) = slot.as_ref() {
                bar.inc(if *by_bytes { bytes } else { files });
            }
        }
    }

    fn end(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some((bar, _)) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Outcome {
        zebra: u32,
        alpha: &'static str,
    }

    /// The keys of a JSON object, in the order they appear in the text.
    fn keys_in_order(text: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut keys: Vec<(usize, String)> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn a_document_starts_with_schema_version_and_keeps_the_field_order() {
        let text = json_document("status", &Outcome { zebra: 1, alpha: "a" });
        assert_eq!(keys_in_order(&text), ["schema_version", "command", "zebra", "alpha"], "{text}");
        let list = json_document("runs", &vec![1, 2]);
        assert_eq!(keys_in_order(&list), ["schema_version", "command", "result"], "{list}");
    }

    #[test]
    fn an_error_document_names_the_kind_and_always_has_a_hint() {
        let err = Error::new(ErrorKind::ChildFailed(7), "the training command failed");
        let text = error_document(Some("train-tag"), &err);
        assert_eq!(keys_in_order(&text), ["schema_version", "command", "error"], "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["kind"], "child_failed");
        assert_eq!(v["error"]["exit_code"], 7);
        assert!(v["error"]["hint"].as_str().is_some_and(|h| !h.is_empty()), "{v}");
    }
}
