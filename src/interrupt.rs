//! The one interrupt flag: created by the binary's `main`, set by SIGINT/SIGTERM, handed down through
//! each command's options and checked by every long loop, so a command stops at a safe point with
//! nothing half-applied and its temporary files removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// A shared "stop as soon as you safely can" flag. Cloning shares the flag. The default is a flag
/// nobody sets (library callers and tests that never interrupt).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Ask every loop holding this flag to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Fail with [`ErrorKind::Interrupted`] when the flag is set; `what` names the work that stops
    /// ("commit-data", "materialize"…) for the message.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.is_set() {
            return Err(interrupted(what));
        }
        Ok(())
    }

    /// The underlying flag, for code that registers signal handlers on it.
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.0
    }
}

/// The error of an interrupted operation.
pub fn interrupted(what: &str) -> Error {
    Error::new(ErrorKind::Interrupted, format!("{what} was interrupted; nothing was changed"))
        .with_hint("run the command again when you are ready; an interrupted run leaves no partial state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triggered_flag_is_seen_by_every_clone() {
        let a = Interrupt::new();
        let b = a.clone();
        assert!(b.check("x").is_ok());
        a.trigger();
        let err = b.check("materialize").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Interrupted);
        assert!(err.message().contains("materialize"), "{}", err.message());
    }
}
