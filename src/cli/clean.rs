//! `mlgit clean`: derive the clean branch from a raw commit.

use mlgit::data::clean::{clean, CleanOptions, CleanOutcome};

use super::Ctx;

/// Derive the clean branch from raw: drop invalid records and files, optionally transform the rest.
///
/// Tables (.csv, .tsv, .jsonl, .ndjson, .parquet) are cleaned record by record: a record with the
/// wrong field count, bytes that do not decode (clean.encoding), a JSONL line that is not an
/// object, a value its table's schema refuses, or (with --drop-duplicates) a repeat of an earlier
/// record is dropped, not the file. The first clean infers each table's schema and commits it as
/// schema/<table>.json; edit it to add constraints (not_null, min, max, allowed, unique). Other
/// files are checked whole (empty files; broken PNG, JPEG, GIF; text that is not UTF-8; JSON that
/// does not parse). Everything dropped is listed with file, line, column and reason in
/// .mlgit/clean-report.json, and profile.json profiles every table. Unchanged files keep raw's
/// objects. Running clean again on the same raw commit commits nothing.
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
    /// Also drop duplicates: records equal to an earlier record of the same table (across all its
    /// batches), and other files whose content equals an earlier file's (by path order).
    #[arg(long)]
    pub drop_duplicates: bool,
    /// Clean tables as whole files (any bad record drops the file), as clean.records: file does.
    #[arg(long)]
    pub file_level: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let opts = CleanOptions {
        from: args.from,
        to: args.to,
        rev: args.rev,
        run: args.run,
        drop_duplicates: args.drop_duplicates,
        file_level: args.file_level,
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
    if !o.tables.is_empty() {
        s.push_str(&format!(
            "{} table file(s): {} of {} records kept, {} dropped\n",
            o.tables.len(),
            o.records_kept,
            o.records_in,
            o.records_dropped
        ));
        for t in o.tables.iter().filter(|t| t.dropped > 0) {
            let by: Vec<String> = t.by_check.iter().map(|(k, n)| format!("{n} {k}")).collect();
            s.push_str(&format!(
                "  data/{}: {} of {} dropped ({})\n",
                t.path,
                t.dropped,
                t.rows_in,
                by.join(", ")
            ));
            for b in t.bad_records.iter().take(3) {
                let col = b.column.as_deref().map(|c| format!(", column {c}")).unwrap_or_default();
                s.push_str(&format!("    line {}{col}: {}\n", b.line, b.reason));
            }
            if t.dropped > 3 {
                s.push_str("    … every one in .mlgit/clean-report.json\n");
            }
        }
        for c in &o.schema_changes {
            let mut parts = Vec::new();
            if !c.changes.added.is_empty() {
                parts.push(format!("added {}", c.changes.added.join(", ")));
            }
            if !c.changes.missing.is_empty() {
                parts.push(format!("missing {}", c.changes.missing.join(", ")));
            }
            for (col, was, now) in &c.changes.retyped {
                parts.push(format!("{col} {was} → {now}"));
            }
            s.push_str(&format!("  {} differs from schema/{}.json: {}\n", c.path, c.table, parts.join("; ")));
        }
        for p in &o.schemas_inferred {
            s.push_str(&format!("  inferred {p} (edit it on the clean branch to add constraints)\n"));
        }
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
