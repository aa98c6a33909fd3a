//! The `mlgit` binary: parse arguments, run one command, render its outcome, map errors to exit codes.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
