//! `mlgit completions` and `mlgit manpage`: generated from the clap definitions.

use clap::CommandFactory;

use super::Cli;

/// Print a shell completion script (e.g. `mlgit completions bash > /etc/bash_completion.d/mlgit`).
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Print the man page (roff) of mlgit (e.g. `mlgit manpage > mlgit.1 && man ./mlgit.1`).
#[derive(Debug, clap::Args)]
pub struct ManpageArgs {}

pub fn completions(args: CompletionsArgs) -> mlgit::Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "mlgit", &mut std::io::stdout());
    Ok(0)
}

pub fn manpage(_args: ManpageArgs) -> mlgit::Result<i32> {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout())
        .map_err(|e| mlgit::Error::io("write", std::path::Path::new("stdout"), e))?;
    Ok(0)
}
