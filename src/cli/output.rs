//! Where output goes: results on stdout (human text, or one JSON document with `--json`), messages
//! and progress bars on stderr. Progress appears only on a terminal and never with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlgit::progress::Progress;
use mlgit::Error;
use serde::Serialize;

/// Decides, from the global flags, how results, messages and progress are shown.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
}

impl Printer {
    /// Print a command's result: its JSON form (with `schema_version` and `command`) or its text.
    pub fn result<T: Serialize>(&self, command: &str, outcome: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            println!("{}", json_document(command, outcome));
        } else {
            let text = human(outcome);
            if !text.is_empty() {
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }

    /// A note for the user on stderr (silenced by `--quiet`).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A warning on stderr (shown even with `--quiet`, never on stdout).
    pub fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }

    /// Report an error: `error:` / `caused by:` / `hint:` lines on stderr, and with `--json` also an
    /// error document on stdout so CI can parse every outcome.
    pub fn error(&self, command: &str, err: &Error) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "error: {err}");
        for cause in err.causes() {
            let _ = writeln!(stderr, "caused by: {cause}");
        }
        if let Some(hint) = err.hint() {
            let _ = writeln!(stderr, "hint: {hint}");
        }
        if self.json {
            let doc = serde_json::json!({
                "schema_version": mlgit::JSON_SCHEMA_VERSION,
                "command": command,
                "error": {
                    "kind": format!("{:?}", err.kind()),
                    "message": err.to_string(),
                    "causes": err.causes(),
                    "hint": err.hint(),
                    "exit_code": err.exit_code(),
                }
            });
            println!("{doc}");
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

/// The JSON document of a result: the outcome's fields after `schema_version` and `command`.
pub fn json_document<T: Serialize>(command: &str, outcome: &T) -> String {
    let mut doc = serde_json::Map::new();
    doc.insert("schema_version".into(), mlgit::JSON_SCHEMA_VERSION.into());
    doc.insert("command".into(), command.into());
    match serde_json::to_value(outcome) {
        Ok(serde_json::Value::Object(fields)) => doc.extend(fields),
        Ok(other) => {
            doc.insert("result".into(), other);
        }
        Err(e) => {
            doc.insert("error".into(), e.to_string().into());
        }
    }
    serde_json::Value::Object(doc).to_string()
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
