//! `mlgit status`: the convention branches and the snapshots.

use mlgit::status::{status, StatusOutcome, Upstream};

use super::Ctx;

/// Show each convention branch (tip, date, subject; files and bytes of data) and the snapshot tags.
///
/// Against the remote (as the last fetch left it; status never contacts it): a branch that exists
/// only on the remote is shown with the command that brings it here, and a branch behind or ahead
/// of its remote-tracking branch with the counts.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    let outcome = status(&repo)?;
    ctx.printer.result("status", &outcome, render);
    Ok(0)
}

/// Bytes in a short human form (KiB, MiB, GiB).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// How a local branch stands against its remote-tracking branch (nothing when level).
fn tracking(u: &Upstream) -> String {
    match (u.ahead, u.behind) {
        (0, 0) => String::new(),
        (a, 0) => format!("  [ahead of {} by {a}: `mlgit push`]", u.name),
        (0, b) => format!("  [behind {} by {b}: `mlgit pull`]", u.name),
        (a, b) => format!("  [diverged from {}: {a} ahead, {b} behind: `mlgit pull`]", u.name),
    }
}

fn render(o: &StatusOutcome) -> String {
    let mut s = format!("Repository {}\n\nBranches\n", o.repository);
    for b in &o.branches {
        match &b.tip {
            None => match (&b.upstream, &b.fetch_with) {
                (Some(u), Some(cmd)) => s.push_str(&format!(
                    "  {:<22} only on the remote ({} {}): run `{cmd}`, or `mlgit init` to create it from {}\n",
                    b.name,
                    u.name,
                    &u.commit[..7.min(u.commit.len())],
                    u.name
                )),
                _ => s.push_str(&format!("  {:<22} (missing: run `mlgit init`)\n", b.name)),
            },
            Some(t) => {
                let data = b
                    .data
                    .map(|d| {
                        format!("  [{} files, {}, {} in LFS]", d.files, human_bytes(d.bytes), d.lfs_files)
                    })
                    .unwrap_or_default();
                let upstream = b.upstream.as_ref().map(tracking).unwrap_or_default();
                s.push_str(&format!(
                    "  {:<22} {} {}  {}{}{}\n",
                    b.name,
                    t.short,
                    &t.date[..10.min(t.date.len())],
                    t.subject,
                    data,
                    upstream
                ));
            }
        }
    }
    s.push_str("\nSnapshots\n");
    if o.snapshots.is_empty() {
        s.push_str("  none yet (train on a stable/ branch with `mlgit train-tag -- <command>`)\n");
    }
    for t in &o.snapshots {
        let m = t.metric.map(|v| format!("{} = {v}", o.primary_metric)).unwrap_or_else(|| "-".into());
        s.push_str(&format!("  {:<22} {}  {}\n", t.tag, &t.date[..10.min(t.date.len())], m));
    }
    if o.environments.iter().any(|e| e.exists || e.remote_only.is_some()) {
        s.push_str("\nEnvironments\n");
    }
    for e in o.environments.iter().filter(|e| e.exists || e.remote_only.is_some()) {
        let line = match (&e.tag, &e.remote_only) {
            (Some(tag), _) => format!(
                "{tag} since {}{}",
                e.since.as_deref().unwrap_or("?"),
                e.by.as_ref().map(|b| format!(" by {}", b.name)).unwrap_or_default()
            ),
            (None, Some(r)) => format!("only on the remote as {r} (`mlgit fetch` brings it)"),
            (None, None) => format!("nothing promoted yet (`mlgit promote TAG --env {}`)", e.env),
        };
        s.push_str(&format!("  {:<22} {line}\n", e.env));
    }
    if !o.monitoring.is_empty() {
        s.push_str("\nMonitoring\n");
    }
    for e in &o.monitoring {
        let batch = match &e.last_batch {
            Some(b) => {
                let tags: Vec<String> = b.tags.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
                format!("last batch {} (to {}): {}", b.id, b.end, tags.join(", "))
            }
            None => "no batch yet (`mlgit monitor log`)".into(),
        };
        let report = match &e.last_report {
            Some(r) if r.alert => format!(
                "; last report {}: {} alert(s){}",
                r.generated_at.as_deref().unwrap_or(&r.path),
                r.alerts,
                r.first.as_ref().map(|m| format!(", e.g. {m}")).unwrap_or_default()
            ),
            Some(r) => format!("; last report {}: no alert", r.generated_at.as_deref().unwrap_or(&r.path)),
            None => String::new(),
        };
        s.push_str(&format!("  {:<22} {batch}{report}\n", e.env));
    }
    s
}
