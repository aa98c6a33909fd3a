//! `mlgit split`: derive the split branch from a clean commit.

use mlgit::data::split::{parse_ratios, split, SplitOutcome, SPLITS};

use super::Ctx;

/// Split the clean data into train, validation and test, the same way for everybody.
///
/// Tables (.csv, .tsv, .jsonl, .ndjson, .parquet) are split record by record: each record goes to
/// data/train/, data/validation/ or data/test/ (same path below) by a hash of the seed and its key:
/// its id column(s) (--key), its group column (--group-column: a customer's records stay
/// together), or else its whole content (duplicates never straddle splits). Each output keeps the
/// input's format (CSV header and dialect, JSONL lines, Parquet schema and compression). Other
/// files (images, audio) are placed whole, by path or by --group-by.
///
/// The same input always gives the same split, and adding data never moves what was placed.
/// split.yaml records the settings; later runs reuse them, and changing one needs --reshuffle
/// (which reports how many records and files move). profile.json holds each split's column
/// profiles.
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
    /// Tables: place each record by this id column (repeat for a composite key; default: split.key,
    /// else the record's whole content).
    #[arg(long, value_name = "COLUMN", conflicts_with = "group_column")]
    pub key: Vec<String>,
    /// Tables: keep all records with the same value of this column in one split (default:
    /// split.group_column).
    #[arg(long, value_name = "COLUMN")]
    pub group_column: Option<String>,
    /// Tables: report each split's distribution of this column, and warn when a class is missing
    /// from a split (default: split.label).
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// Allow settings other than those split.yaml recorded: records and files may change split
    /// (the output says how many). Settings without a flag keep their recorded values.
    #[arg(long)]
    pub reshuffle: bool,
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
        key: if args.key.is_empty() { None } else { Some(args.key) },
        group_column: args.group_column,
        label: args.label,
        reshuffle: args.reshuffle,
        interrupt: ctx.interrupt.clone(),
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
    for w in &outcome.warnings {
        ctx.printer.warn(w);
    }
    ctx.printer.result("split", &outcome, render);
    Ok(0)
}

fn render(o: &SplitOutcome) -> String {
    let short = |s: &str| s[..7.min(s.len())].to_string();
    let mut what = Vec::new();
    if o.tables > 0 {
        what.push(format!("{} table(s)", o.tables));
    }
    if o.files > 0 || o.tables == 0 {
        what.push(format!("{} file(s) placed whole", o.files));
    }
    let mut s = format!(
        "{} {} → {}: {}, ratios {}/{}/{}, seed {}\n",
        o.from,
        short(&o.clean_commit),
        o.to,
        what.join(" and "),
        o.ratios[0],
        o.ratios[1],
        o.ratios[2],
        o.seed
    );
    let total_records: u64 = o.records.values().sum();
    let header = match (o.tables > 0, o.files > 0) {
        (true, true) => format!("  {:<11} {:>10}  {:>6}  {:>8}  {:>6}\n", "", "records", "", "files", ""),
        (true, false) => format!("  {:<11} {:>10}\n", "", "records"),
        _ => String::new(),
    };
    s.push_str(&header);
    for name in SPLITS {
        let pct = |n: u64, total: u64| if total > 0 { 100.0 * n as f64 / total as f64 } else { 0.0 };
        let r = o.records.get(name).copied().unwrap_or(0);
        let f = o.counts.get(name).copied().unwrap_or(0);
        let mut line = format!("  {name:<11}");
        if o.tables > 0 {
            line.push_str(&format!(" {r:>10}  {:5.1}%", pct(r, total_records)));
        }
        if o.files > 0 || o.tables == 0 {
            line.push_str(&format!("  {f:>8}  {:5.1}%", pct(f, o.files)));
        }
        if let Some(by) = o.labels.get(name) {
            let parts: Vec<String> = by.iter().take(6).map(|(k, v)| format!("{k}: {v}")).collect();
            line.push_str(&format!(
                "   {} {}{}",
                o.label.as_deref().unwrap_or(""),
                parts.join(", "),
                if by.len() > 6 { ", …" } else { "" }
            ));
        }
        s.push_str(&line);
        s.push('\n');
    }
    if let Some(k) = &o.key {
        s.push_str(&format!("Records placed by key {}\n", k.join(", ")));
    } else if let Some(g) = &o.group_column {
        s.push_str(&format!("Records grouped by column {g}: {} groups\n", o.groups));
    } else if o.tables > 0 {
        s.push_str("Records placed by their content (no --key): equal records share a split\n");
    }
    if let Some(g) = &o.group_by {
        s.push_str(&format!("Files grouped by {g:?}: {} file(s) without a group\n", o.ungrouped));
    }
    if o.tables > 0 && o.tables_read < o.tables {
        s.push_str(&format!(
            "{} of {} table(s) unchanged since the last split (not read again)\n",
            o.tables - o.tables_read,
            o.tables
        ));
    }
    if o.reshuffled {
        s.push_str(&format!(
            "Reshuffled: {} record(s) and {} file(s) changed split\n",
            o.moved_records, o.moved_files
        ));
    }
    if o.unchanged {
        s.push_str(&format!("{} is already up to date at {} (nothing committed)\n", o.to, short(&o.commit)));
    } else {
        s.push_str(&format!("Committed {} on {}\n", short(&o.commit), o.to));
    }
    s
}
