//! `mlgit envs`: what serves each environment, its deployment log, and what served at a date.

use mlgit::deploy::history::{self, EnvAt, EnvLog, EnvState, LogEntry};
use mlgit::deploy::record::Action;

use super::Ctx;

/// Show which snapshot serves each environment: the tag, since when, promoted by whom and why,
/// the previous tag, and the last drift alert on monitoring/<env>.
///
/// `mlgit envs log ENV` is the deployment log (newest first); `mlgit envs at ENV DATE` says what
/// served the environment at that instant. Everything is read from the env/<env> branches, so
/// `git log env/prod` tells the same story.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<EnvsCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum EnvsCommand {
    /// The deployment log of one environment, newest first.
    Log(LogArgs),
    /// What served an environment at a given instant.
    At(AtArgs),
}

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The environment.
    pub env: String,
    /// Show at most N deployments.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct AtArgs {
    /// The environment.
    pub env: String,
    /// A date (2026-11-30 = midnight UTC), an RFC 3339 time (2026-11-30T14:00:00+01:00) or
    /// @<unix seconds>.
    pub date: String,
}

impl Args {
    pub fn name(&self) -> &'static str {
        match self.command {
            None => "envs",
            Some(EnvsCommand::Log(_)) => "envs log",
            Some(EnvsCommand::At(_)) => "envs at",
        }
    }
}

pub fn run(args: Args, ctx: &Ctx) -> mlgit::Result<i32> {
    let repo = ctx.repo()?;
    match args.command {
        None => {
            let envs = history::environments(&repo)?;
            ctx.printer.result("envs", &Envs { environments: envs }, |o| render_envs(&o.environments));
        }
        Some(EnvsCommand::Log(a)) => {
            let log = history::log(&repo, &a.env, a.limit)?;
            ctx.printer.result("envs log", &log, render_log);
        }
        Some(EnvsCommand::At(a)) => {
            let at = history::at(&repo, &a.env, &a.date)?;
            ctx.printer.result("envs at", &at, render_at);
        }
    }
    Ok(0)
}

#[derive(serde::Serialize)]
struct Envs {
    environments: Vec<EnvState>,
}

fn short(c: &str) -> &str {
    &c[..12.min(c.len())]
}

fn render_envs(envs: &[EnvState]) -> String {
    let mut s = String::new();
    for e in envs {
        match &e.tag {
            Some(tag) => {
                let by = e.by.as_ref().map(|b| format!("{} <{}>", b.name, b.email)).unwrap_or_default();
                s.push_str(&format!(
                    "{:<10} {tag}  since {}  by {by}\n",
                    e.env,
                    e.since.as_deref().unwrap_or("?")
                ));
                if e.action == Some(Action::Rollback) {
                    s.push_str("           (a rollback)\n");
                }
                if let Some(r) = &e.reason {
                    s.push_str(&format!("           reason: {r}\n"));
                }
                s.push_str(&format!("           previous: {}\n", e.previous.as_deref().unwrap_or("(none)")));
                for f in &e.forced {
                    s.push_str(&format!("           forced past `{}`: {}\n", f.rule, f.detail));
                }
            }
            None if !e.exists => match &e.remote_only {
                Some(r) => s.push_str(&format!(
                    "{:<10} (only on the remote as {r}: `mlgit fetch` brings it)\n",
                    e.env
                )),
                None => {
                    s.push_str(&format!("{:<10} (no {} branch: `mlgit init` creates it)\n", e.env, e.branch))
                }
            },
            None => s.push_str(&format!(
                "{:<10} (nothing promoted yet: `mlgit promote TAG --env {}`)\n",
                e.env, e.env
            )),
        }
        if let Some(p) = &e.problem {
            s.push_str(&format!("           PROBLEM: {p}\n"));
        }
        if let Some(a) = &e.last_alert {
            s.push_str(&format!(
                "           last alert: {} ({} alert(s)){}\n",
                a.generated_at.as_deref().unwrap_or(&a.path),
                a.alerts,
                a.first.as_deref().map(|f| format!(": {f}")).unwrap_or_default()
            ));
        }
    }
    s
}

fn render_entry(e: &LogEntry) -> String {
    let what = match e.action {
        Action::Promote => "promote ",
        Action::Rollback => "rollback",
    };
    let mut s =
        format!("{}  {what} {:<16} {}  by {} <{}>", short(&e.commit), e.tag, e.at, e.by.name, e.by.email);
    if let Some(p) = &e.previous {
        s.push_str(&format!("  (was {p})"));
    }
    s.push('\n');
    if let Some(r) = &e.reason {
        s.push_str(&format!("              reason: {r}\n"));
    }
    for f in &e.forced {
        s.push_str(&format!("              forced past `{}`: {}\n", f.rule, f.detail));
    }
    s
}

fn render_log(log: &EnvLog) -> String {
    if log.entries.is_empty() {
        return format!("{}: no deployment yet (`mlgit promote TAG --env {}`)\n", log.branch, log.env);
    }
    let mut s = format!("Deployments of {} ({}), newest first:\n", log.env, log.branch);
    for e in &log.entries {
        s.push_str(&render_entry(e));
    }
    if log.truncated {
        s.push_str("… more: raise --limit\n");
    }
    s
}

fn render_at(a: &EnvAt) -> String {
    match &a.serving {
        Some(e) => {
            let until =
                a.until.as_deref().map(|u| format!("replaced {u}")).unwrap_or_else(|| "still serving".into());
            format!(
                "{} at {}: {}  (deployed {}, {until}; commit {})\n",
                a.env,
                a.at,
                e.tag,
                e.at,
                short(&e.commit)
            )
        }
        None => format!("{} at {}: nothing was deployed yet\n", a.env, a.at),
    }
}
