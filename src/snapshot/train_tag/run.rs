//! Running the training command through the one child runner ([`crate::process`]): its own process
//! group, killed with mlgit; here only train-tag's words for what happened, and whether the command
//! started at all (before that, the outputs moved aside go back).

use crate::error::{Error, ErrorKind};
use crate::interrupt::{signal_name, Interrupt};
use crate::process::{self, ChildCommand};

/// How a training run ended, when it did not succeed.
pub(super) struct Failed {
    pub error: Error,
    /// The command ran (and may have written outputs); false when it could not be started.
    pub started: bool,
}

/// Run the training command in `workdir` with `env` added.
pub(super) fn run_command(
    command: &[String],
    workdir: &std::path::Path,
    env: &[(String, String)],
    interrupt: &Interrupt,
) -> std::result::Result<(), Failed> {
    let Some((program, args)) = command.split_first() else {
        return Err(Failed { error: Error::invalid("no training command given"), started: false });
    };
    let mut child = ChildCommand::new(program, workdir).args(args);
    for (k, v) in env {
        child = child.env(k, v);
    }
    let name = command.join(" ");
    let error = match process::run(&child, interrupt, &format!("the training command `{name}`")) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    Err(match error.kind() {
        ErrorKind::ChildFailed(_) => Failed {
            error: Error::new(error.kind(), format!("{}; nothing committed, no tag", error.message()))
                .with_hint(format!(
                    "{}; what it wrote is left in the worktree",
                    error
                        .hint()
                        .unwrap_or("fix the training (its output is above) and run `mlgit train-tag` again")
                )),
            started: true,
        },
        // Also an interrupt that came just before the start: the outputs then stay aside, which
        // loses nothing, rather than being moved back over something the command wrote.
        ErrorKind::Interrupted => Failed { error: interrupted_err(interrupt), started: true },
        kind => Failed {
            error: Error::new(kind, format!("cannot run the training command '{program}'"))
                .with_hint(error.hint().unwrap_or("check the command name").to_string())
                .with_source(error),
            started: false,
        },
    })
}

/// The error of a run stopped by SIGINT/SIGTERM.
pub(super) fn interrupted_err(interrupt: &Interrupt) -> Error {
    let sig = interrupt.signal().map(signal_name).unwrap_or_else(|| "an interrupt".into());
    Error::new(ErrorKind::Interrupted, format!("training was interrupted ({sig}); nothing committed, no tag"))
        .with_hint("run `mlgit train-tag` again to train from the start")
}
