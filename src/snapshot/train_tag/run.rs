//! Running the training command: its own process group, its output on stderr, SIGINT/SIGTERM
//! forwarded to it once, its exit status turned into mlgit's error and exit code.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;

/// SIGINT/SIGTERM handlers for the whole run: a signal is recorded (and forwarded to the training
/// command while it runs) instead of killing mlgit, so the run can stop at a safe point with nothing
/// committed and the reservation released. Dropping the guard unregisters the handlers.
pub(super) struct Signals {
    received: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
    /// The command-wide interrupt flag (set by the binary's own handlers): seen as one SIGINT.
    interrupt: Interrupt,
    interrupt_seen: AtomicBool,
}

impl Signals {
    pub(super) fn install(interrupt: &Interrupt) -> Result<Signals> {
        let received = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let id = signal_hook::flag::register_usize(sig, Arc::clone(&received), sig as usize)
                .map_err(|e| Error::io("install a signal handler for", Path::new("train-tag"), e))?;
            ids.push(id);
        }
        Ok(Signals { received, ids, interrupt: interrupt.clone(), interrupt_seen: AtomicBool::new(false) })
    }

    /// The signal received since the last call (None: none).
    fn take(&self) -> Option<i32> {
        match self.received.swap(0, Ordering::SeqCst) {
            // The same signal may have set the interrupt flag too: it is forwarded once.
            0 if self.interrupt.is_set() && !self.interrupt_seen.swap(true, Ordering::SeqCst) => {
                Some(libc::SIGINT)
            }
            0 => None,
            sig => {
                self.interrupt_seen.store(true, Ordering::SeqCst);
                Some(sig as i32)
            }
        }
    }

    /// Fail with `Interrupted` if a signal arrived.
    pub(super) fn check(&self) -> Result<()> {
        match self.take() {
            Some(sig) => Err(interrupted_err(sig)),
            None => Ok(()),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

fn interrupted_err(sig: i32) -> Error {
    Error::new(
        ErrorKind::Interrupted,
        format!("training was interrupted ({}); nothing committed, no tag", signal_name(sig)),
    )
    .with_hint("run `mlgit train-tag` again to train from the start")
}

/// Run the training command, streaming its output, forwarding SIGINT/SIGTERM to it. `started` is
/// set once the command runs: from then on, whatever fails, its outputs are the user's.
pub(super) fn run_command(
    command: &[String],
    workdir: &Path,
    env: &[(String, String)],
    signals: &Signals,
    started: &mut bool,
) -> Result<()> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let (program, args) = command.split_first().ok_or_else(|| Error::invalid("no training command given"))?;
    // Its own process group: a terminal's Ctrl-C reaches only mlgit, which forwards it exactly once.
    let spawned = std::process::Command::new(program)
        .args(args)
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .process_group(0)
        // Its output is progress for the user, not mlgit's result: stdout stays for the result
        // (one JSON document with --json).
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("check the command name; a script in the branch is run as ./{program}")
            } else {
                "check that the command is executable (`chmod +x`)".to_string()
            };
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("cannot run the training command '{program}'"),
            )
            .with_source(e)
            .with_hint(hint));
        }
    };
    *started = true;
    let mut interrupted = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::io("wait for", Path::new(program), e));
            }
        }
        if let Some(sig) = signals.take() {
            interrupted = Some(sig);
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(child.id() as libc::pid_t, sig as libc::c_int);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let name = command.join(" ");
    if let Some(sig) = interrupted {
        return Err(interrupted_err(sig));
    }
    if let Some(code) = status.code() {
        if code != 0 {
            return Err(Error::new(
                ErrorKind::ChildFailed(code),
                format!(
                    "the training command `{name}` failed with exit code {code}; nothing committed, no tag"
                ),
            )
            .with_hint("fix the training (its output is above) and run `mlgit train-tag` again; what it wrote is left in the worktree"));
        }
        return Ok(());
    }
    let sig = status.signal().unwrap_or(0);
    Err(Error::new(
        ErrorKind::ChildFailed(128 + sig),
        format!(
            "the training command `{name}` was killed by {}; nothing committed, no tag",
            signal_name(sig)
        ),
    )
    .with_hint("see why it was killed (out of memory? a timeout?) and run `mlgit train-tag` again"))
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        n => format!("signal {n}"),
    }
}
