//! `mlgit completions` and `mlgit manpage`: generated from the clap definitions.

use clap::CommandFactory;

use super::{Cli, Ctx};

/// Print a shell completion script (e.g. `mlgit completions bash > /etc/bash_completion.d/mlgit`).
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Print the man page (roff) of mlgit (e.g. `mlgit manpage > mlgit.1 && man ./mlgit.1`).
#[derive(Debug, clap::Args)]
pub struct ManpageArgs {}

pub fn completions(args: CompletionsArgs, ctx: &Ctx) -> mlgit::Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mlgit", &mut script);
    ctx.printer.text(&String::from_utf8_lossy(&script));
    Ok(0)
}

pub fn manpage(_args: ManpageArgs, ctx: &Ctx) -> mlgit::Result<i32> {
    let man = clap_mangen::Man::new(Cli::command());
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| mlgit::Error::io("render", std::path::Path::new("the man page"), e))?;
    ctx.printer.text(&String::from_utf8_lossy(&page));
    Ok(0)
}
