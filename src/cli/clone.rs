//! `mlgit clone`: a clone with every convention branch and only the LFS objects asked for.

use std::path::PathBuf;

use mlgit::remote::clone::{clone, CloneOptions, CloneOutcome};

use super::status::human_bytes;
use super::Ctx;

/// Clone an mlgit repository: every convention branch, the snapshot tags, and only the LFS objects needed.
///
/// Every convention branch origin has (main, raw, clean, split, dev/*, stable/*, monitoring/*,
/// env/*) becomes a local branch tracking it, and the tags come along. Then only the LFS objects of
/// the REFs given with --ref (default: main) at paths matching --include and not --exclude are
/// downloaded, and main is checked out: files whose object was downloaded have their content, the
/// others hold their LFS pointer (get them later with `mlgit pull --ref …`). `git status` is clean,
/// with or without git-lfs installed. DIR must not exist or be an empty folder; the clone is made
/// beside it and moved there when complete.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository to clone: a URL (https://, ssh://, git@host:path, file://) or a path.
    #[arg(value_name = "URL")]
    pub url: String,
    /// The folder to clone into (default: the URL's last part without .git).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub select: super::fetch::Select,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let opts = CloneOptions {
        url: args.url,
        dir: args.dir,
        cwd: ctx.dir.clone(),
        refs: args.select.refs,
        include: args.select.include,
        exclude: args.select.exclude,
        jobs: args.select.jobs,
        interrupt: ctx.interrupt.clone(),
    };
    let progress = ctx.printer.progress();
    let outcome = clone(&opts, progress.as_ref())?;
    ctx.printer.result("clone", &outcome, render);
    Ok(0)
}

fn render(o: &CloneOutcome) -> String {
    let mut s = format!(
        "Cloned {} into {}: branches {}; {} tag(s)\nLFS objects for {}: {} needed, {} downloaded ({})\n",
        o.url,
        o.path.display(),
        o.branches.join(", "),
        o.tags,
        o.refs.join(", "),
        o.objects,
        o.lfs.transferred,
        human_bytes(o.lfs.bytes)
    );
    s.push_str(&format!("Checked out {} ({} files", o.checked_out, o.files));
    if o.pointer_files > 0 {
        s.push_str(&format!(
            ", {} as LFS pointers: get them with `mlgit pull --ref {}`",
            o.pointer_files, o.checked_out
        ));
    }
    s.push_str(&format!(") in {:.2} s\n", o.seconds));
    if let Some(note) = &o.hook.note {
        s.push_str(&format!("pre-push hook: {note}\n"));
    }
    s
}
