//! The one interrupt flag: created by the binary's `main`, set by SIGINT/SIGTERM, handed down through
//! each command's options and checked by every long loop, so a command stops at a safe point with
//! nothing half-applied and its temporary files removed.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How long a command may take to reach a safe point after the first SIGINT/SIGTERM before mlgit
/// stops anyway. Longer than [`crate::process::CHILD_GRACE`], so a child asked to stop has its
/// full grace first. Stopping here is safe: a crash at any point leaves the repository as it was.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A shared "stop as soon as you safely can" flag. Cloning shares the flag. The default is a flag
/// nobody sets (library callers and tests that never interrupt).
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    /// The signal that set the flag (0: set by [`Interrupt::trigger`]), forwarded to a running child.
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Ask every loop holding this flag to stop.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Ask every loop to stop because `signal` arrived (a running child receives the same signal).
    pub fn trigger_by_signal(&self, signal: i32) {
        self.signal.store(signal, Ordering::SeqCst);
        self.trigger();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The signal that set the flag, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
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
        &self.flag
    }

    /// Turn SIGINT and SIGTERM into this flag for the rest of the process. The first signal sets
    /// the flag; a second one, or a command still running [`STOP_DEADLINE`] after the first, ends
    /// the process at once: a command that never checks the flag (blocked in a system call, say)
    /// can always be stopped. `stop` renders the reason (the library never prints) and returns the
    /// exit code. A child started by [`crate::process::run`] dies with the process all the same.
    pub fn stop_on_signals(&self, stop: impl Fn(Error) -> i32 + Send + 'static) -> Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| {
            Error::new(ErrorKind::Io, "cannot install the SIGINT/SIGTERM handlers").with_source(e).with_hint(
                "run mlgit again; if this persists, report it with your operating system's version",
            )
        })?;
        let interrupt = self.clone();
        let spawned = std::thread::Builder::new().name("mlgit-signals".into()).spawn(move || {
            let first = signals.forever().next().unwrap_or(SIGTERM);
            interrupt.trigger_by_signal(first);
            let since = Instant::now();
            loop {
                if let Some(second) = signals.pending().next() {
                    let err = Error::new(
                        ErrorKind::Interrupted,
                        format!("{} received while stopping; mlgit stopped at once", signal_name(second)),
                    )
                    .with_hint(STOPPED_HINT);
                    exit_now(&stop, err);
                }
                if since.elapsed() >= STOP_DEADLINE {
                    let err = Error::new(
                        ErrorKind::Interrupted,
                        format!(
                            "the command did not stop within {} s of {}; mlgit stopped it",
                            STOP_DEADLINE.as_secs(),
                            signal_name(first)
                        ),
                    )
                    .with_hint(STOPPED_HINT);
                    exit_now(&stop, err);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        spawned.map(drop).map_err(|e| {
            Error::new(ErrorKind::Io, "cannot start the signal-handling thread")
                .with_source(e)
                .with_hint("raise the process or memory limits (`ulimit -u`, `ulimit -v`), then retry")
        })
    }
}

const STOPPED_HINT: &str =
    "run the command again: a stopped command changes no ref, and the next mlgit command finishes an interrupted worktree update";

/// Render `err` with `stop`, then end the process without unwinding or running exit handlers,
/// which other threads may be using. Rendering waits for the stdout and stderr locks, which the
/// stuck command may hold (blocked writing to a full pipe): after a second, exit regardless.
fn exit_now(stop: &impl Fn(Error) -> i32, err: Error) -> ! {
    let code = err.exit_code();
    let _ = std::thread::Builder::new().spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: _exit(2) only ends the process.
        unsafe { libc::_exit(code) }
    });
    let code = stop(err);
    // SAFETY: _exit(2) only ends the process.
    unsafe { libc::_exit(code) }
}

/// The error of an interrupted operation.
pub fn interrupted(what: &str) -> Error {
    Error::new(ErrorKind::Interrupted, format!("{what} was interrupted; nothing was changed"))
        .with_hint("run the command again when you are ready; an interrupted run leaves no partial state")
}

/// The error of an interrupted transfer of LFS objects: what arrived is kept (each object was
/// checked before it was stored), so "nothing was changed" would not be true.
pub fn interrupted_transfer(what: &str) -> Error {
    Error::new(
        ErrorKind::Interrupted,
        format!("{what} was interrupted; the objects already transferred are kept (each one checked) and no ref moved"),
    )
    .with_hint("run the same command again: it goes on with what is still missing")
}

/// The usual name of a signal, for messages.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
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
        assert_eq!(b.signal(), None);
    }

    #[test]
    fn the_signal_that_set_the_flag_is_kept() {
        let a = Interrupt::new();
        a.clone().trigger_by_signal(libc::SIGINT);
        assert!(a.is_set());
        assert_eq!(a.signal(), Some(libc::SIGINT));
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
        assert_eq!(signal_name(64), "signal 64");
    }
}
