//! `mlgit completions` and `mlgit manpage`: generated from the clap definitions.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{complete, Cli, Ctx};

/// Print the shell script that completes mlgit, with branch, tag and environment names.
///
/// The script calls mlgit back on every TAB (`COMPLETE=<shell> mlgit -- <words>`), so commands,
/// options and the names in the repository are always those of the installed mlgit. Source it
/// from the shell's startup file, e.g. `source <(mlgit completions bash)` in ~/.bashrc; see
/// docs/completions.md for zsh and fish.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
    /// The older, fixed script: commands and options only, without names from the repository.
    #[arg(long = "static")]
    pub fixed: bool,
}

/// Print the man page (roff) of mlgit, or write one page per command into a folder.
///
/// `mlgit manpage > mlgit.1 && man ./mlgit.1` shows the main page; `mlgit manpage --dir DIR`
/// writes mlgit.1 and mlgit-<command>.1 for every command and subcommand (mlgit-monitor-drift.1),
/// the pages the main page refers to.
#[derive(Debug, clap::Args)]
pub struct ManpageArgs {
    /// Write every page into this folder (created if missing) instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs, ctx: &Ctx) -> mlgit::Result<i32> {
    let script = if args.fixed {
        let mut script = Vec::new();
        clap_complete::generate(args.shell, &mut Cli::command(), "mlgit", &mut script);
        script
    } else {
        complete::registration(args.shell, &completer())
            .map_err(|e| mlgit::Error::io("write", std::path::Path::new("the completion script"), e))?
    };
    ctx.printer.text(&String::from_utf8_lossy(&script));
    Ok(0)
}

/// How the script calls mlgit back: as it was started (`mlgit` from PATH, or a path made absolute
/// so that the script works from any folder).
fn completer() -> String {
    let arg0 = std::env::args_os().next().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("mlgit"));
    if arg0.components().count() > 1 {
        mlgit::repo::absolute(&arg0).to_string_lossy().into_owned()
    } else {
        arg0.to_string_lossy().into_owned()
    }
}

pub fn manpage(args: ManpageArgs, ctx: &Ctx) -> mlgit::Result<i32> {
    let pages = pages();
    let Some(dir) = args.dir else {
        // The main page is the last one: each command's page comes after its subcommands'.
        let main =
            pages.last().map(|(_, page)| String::from_utf8_lossy(page).into_owned()).unwrap_or_default();
        ctx.printer.text(&main);
        return Ok(0);
    };
    let dir = if dir.is_absolute() { dir } else { ctx.dir.join(dir) };
    std::fs::create_dir_all(&dir).map_err(|e| mlgit::Error::io("create", &dir, e))?;
    for (name, page) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, page).map_err(|e| mlgit::Error::io("write", &path, e))?;
    }
    ctx.printer.note(&format!(
        "wrote {} man pages into {} (`man -l {}`)",
        pages.len(),
        dir.display(),
        dir.join("mlgit.1").display()
    ));
    Ok(0)
}

/// Every man page: (file name, roff) for each command and subcommand, then mlgit.1. The main page
/// names each command's page as mlgit-<command>(1), a command with subcommands names theirs as
/// mlgit-<command>-<sub>(1): these are the file names, so every reference resolves.
fn pages() -> Vec<(String, Vec<u8>)> {
    // `help` is no page of its own (and no reference to one).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect_pages(&cmd, &mut pages);
    pages
}

fn collect_pages(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect_pages(sub, pages);
    }
    // The footer says which program and version, not the subcommand's name ("drift 0.1.0").
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("mlgit {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    // Rendering into memory cannot fail.
    let _ = man.render(&mut page);
    pages.push((man.get_filename(), page));
}
