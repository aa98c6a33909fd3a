//! mlgit: one git repository for an ML project's code, data, models and metrics, organised by
//! branch conventions (main, raw, clean, split, dev/*, stable/*, monitoring/*, env/*).
//!
//! This library does the work; the `mlgit` binary is a thin layer that parses arguments, calls one
//! function per command and renders its outcome. Nothing here prints: long operations report
//! through [`progress::Progress`], and every command returns a serialisable outcome or an
//! [`error::Error`] with a hint.

pub mod config;
pub mod data;
pub mod demo;
pub mod deploy;
pub mod error;
pub mod gc;
pub mod hooks;
pub mod ingest;
pub mod init;
pub mod interrupt;
pub mod lfs;
pub mod monitor;
pub mod process;
pub mod progress;
pub mod remote;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod table;
pub mod templates;
pub mod tracking;

pub use error::{Error, ErrorKind, Result};

/// The version written into provenance and tracking records.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The schema version of every `--json` outcome.
pub const JSON_SCHEMA_VERSION: u32 = 1;
