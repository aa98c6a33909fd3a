//! The `mlgit` binary: parse arguments, run one command, render its outcome, map errors to exit codes.

mod cli;

fn main() {
    let std_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A backtrace was asked for: std's hook prints it (and guards against recursion).
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            std_hook(info);
        }
        report_bug(info.payload(), info.location());
    }));
    std::process::exit(cli::run());
}

/// The panic hook: say what happened and what to do, on stderr. It must not panic itself, so every
/// write ignores its error (stderr may be closed or a broken pipe), and it captures no backtrace:
/// under memory exhaustion that deadlocks in std's allocation-error hook.
fn report_bug(payload: &(dyn std::any::Any + Send), location: Option<&std::panic::Location<'_>>) {
    use std::io::Write;
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let place = location.map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    let mut text = format!("error: mlgit hit a bug: {what} (thread '{thread}'{place})\n");
    text.push_str(
        "hint: please report it with the command you ran and this message (RUST_BACKTRACE=1 adds where it happened)\n",
    );
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
