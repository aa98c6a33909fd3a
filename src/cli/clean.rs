//! `mlgit clean`: derive the clean branch from a raw commit.

use mlgit::data::clean::{clean, CleanOptions, CleanOutcome};

use super::Ctx;

/// Derive the clean branch from raw: drop invalid files, optionally transform the rest.
///
/// Every file under data/ of the raw commit (default: the tip of raw) is checked by the built-in
/// validators (empty or whitespace-only files; PNG, JPEG and GIF that are structurally broken; text
/// that is not UTF-8; JSON that does not parse; JSON Lines, CSV and TSV with malformed records —
/// each can be turned off under clean.validators in mlgit.yaml). Files that fail are left out and
/// listed with the reason in .mlgit/clean-report.json. Without --run nothing is copied: the clean
/// commit reuses raw's objects. The commit names its raw commit (trailer Derived-From, second
/// parent); running clean again on the same raw commit commits nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The raw branch to read (default: branches.raw).
    #[arg(long, value_name = "BRANCH")]
    pub from: Option<String>,
    /// The clean branch to write (default: branches.clean).
    #[arg(long, value_name = "BRANCH")]
    pub to: Option<String>,
    /// The raw commit to clean (default: the tip of --from); must be on --from.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Transform the validated data with CMD (run by `sh -c` in a folder holding transform/, with
    /// MLGIT_INPUT read-only, MLGIT_OUTPUT to fill, MLGIT_SOURCE_COMMIT); MLGIT_OUTPUT becomes the
    /// clean data. A failing CMD commits nothing.
    #[arg(long, value_name = "CMD")]
    pub run: Option<String>,
    /// Also drop files whose content equals an earlier file's (by path order).
    #[arg(long)]
    pub drop_duplicates: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = CleanOptions {
        from: args.from,
        to: args.to,
        rev: args.rev,
        run: args.run,
        drop_duplicates: args.drop_duplicates,
        interrupt: ctx.interrupt.clone(),
    };
    let progress = ctx.printer.progress();
    let outcome = clean(&repo, &opts, progress.as_ref())?;
    ctx.printer.result("clean", &outcome, render);
    Ok(0)
}

fn render(o: &CleanOutcome) -> String {
    let short = |s: &str| s[..7.min(s.len())].to_string();
    let mut s = format!(
        "{} {} → {}: {} of {} files kept, {} dropped\n",
        o.from,
        short(&o.raw_commit),
        o.to,
        o.kept,
        o.files_in,
        o.dropped.len()
    );
    for d in &o.dropped {
        s.push_str(&format!("  dropped {}: {}\n", d.path, d.reason));
    }
    if let Some(t) = &o.transform {
        s.push_str(&format!("Transformed by `{}` into {} files\n", t.command, t.output_files));
    }
    if o.unchanged {
        s.push_str(&format!("{} is already up to date at {} (nothing committed)\n", o.to, short(&o.commit)));
    } else {
        s.push_str(&format!("Committed {} on {}\n", short(&o.commit), o.to));
    }
    s
}
