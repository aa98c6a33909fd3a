//! Progress reporting from the library without printing: long operations report phases and
//! advances to a [`Progress`] the caller supplies (the CLI backs it with indicatif; tests with nothing).

/// Receives progress of a long operation. Implementations must be cheap and thread-safe:
/// `advance` is called from worker threads.
pub trait Progress: Sync {
    /// A new phase begins, with its expected totals (0 when unknown).
    fn begin(&self, phase: &str, files: u64, bytes: u64);
    /// `files` more files and `bytes` more bytes of the current phase are done.
    fn advance(&self, files: u64, bytes: u64);
    /// The current phase is over.
    fn end(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _phase: &str, _files: u64, _bytes: u64) {}
    fn advance(&self, _files: u64, _bytes: u64) {}
    fn end(&self) {}
}
