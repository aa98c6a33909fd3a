//! `mlgit split`: derive the split branch from a clean commit.

use mlgit::data::split::{parse_ratios, split, SplitOutcome, SPLITS};

use super::Ctx;

/// Split the clean data into train, validation and test, the same way for everybody.
///
/// Each file under data/ goes to data/train/, data/validation/ or data/test/ by a hash of the seed
/// and its key (its path below data/, or the first capture group of --group-by), so the same input
/// always gives the same split, and files already assigned never move when data is added. Nothing
/// is copied: the split commit reuses clean's objects. split.yaml records ratios, seed, group regex
/// and counts; the commit names its clean commit (trailer Derived-From, second parent).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The clean branch to read (default: branches.clean).
    #[arg(long, value_name = "BRANCH")]
    pub from: Option<String>,
    /// The split branch to write (default: branches.split).
    #[arg(long, value_name = "BRANCH")]
    pub to: Option<String>,
    /// The clean commit to split (default: the tip of --from); must be on --from.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Train, validation and test percentages (default: split.ratios, 80,10,10).
    #[arg(long, value_name = "T,V,T", allow_hyphen_values = true)]
    pub ratios: Option<String>,
    /// The seed of the hash (default: split.seed, 42).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Keep files with the same group together: a regex on the path below data/ whose first capture
    /// group is the group key (e.g. '^patient-(\d+)/'). Files it does not match are placed by path.
    #[arg(long, value_name = "REGEX")]
    pub group_by: Option<String>,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let ratios = args.ratios.as_deref().map(parse_ratios).transpose()?;
    let opts = mlgit::data::split::SplitOptions {
        from: args.from,
        to: args.to,
        rev: args.rev,
        ratios,
        seed: args.seed,
        group_by: args.group_by,
    };
    let progress = ctx.printer.progress();
    let outcome = split(&repo, &opts, progress.as_ref())?;
    if outcome.ungrouped > 0 {
        ctx.printer.warn(&format!(
            "{} of {} file(s) matched no group of --group-by and were placed by their path (e.g. {})",
            outcome.ungrouped,
            outcome.files,
            outcome.ungrouped_examples.first().map(String::as_str).unwrap_or("")
        ));
    }
    ctx.printer.result("split", &outcome, render);
    Ok(0)
}

fn render(o: &SplitOutcome) -> String {
    let short = |s: &str| s[..7.min(s.len())].to_string();
    let mut s = format!(
        "{} {} → {}: {} files, ratios {}/{}/{}, seed {}\n",
        o.from,
        short(&o.clean_commit),
        o.to,
        o.files,
        o.ratios[0],
        o.ratios[1],
        o.ratios[2],
        o.seed
    );
    for name in SPLITS {
        let n = o.counts.get(name).copied().unwrap_or(0);
        let pct = if o.files > 0 { 100.0 * n as f64 / o.files as f64 } else { 0.0 };
        s.push_str(&format!("  {name:<11} {n:>8}  {pct:5.1}%\n"));
    }
    if let Some(g) = &o.group_by {
        s.push_str(&format!(
            "Grouped by {g:?}: {} groups, {} file(s) without a group\n",
            o.groups, o.ungrouped
        ));
    }
    if o.unchanged {
        s.push_str(&format!("{} is already up to date at {} (nothing committed)\n", o.to, short(&o.commit)));
    } else {
        s.push_str(&format!("Committed {} on {}\n", short(&o.commit), o.to));
    }
    s
}
