//! Which request batches a drift report covers: the last N, or every batch since a date.

use super::branch::{BatchKind, BatchManifest};
use super::cells::parse_time;
use crate::error::{Error, Result};

/// The batches of a report.
pub enum Selection {
    Last(usize),
    /// Batches whose records end at or after this instant (microseconds since the epoch).
    Since(i64),
}

impl Selection {
    /// From `--since` / `--last` (default: the last batch).
    pub fn parse(since: Option<&str>, last: Option<usize>) -> Result<Selection> {
        match (since, last) {
            (Some(_), Some(_)) => {
                Err(Error::invalid("--since and --last choose the batches in two ways; give one"))
            }
            (Some(s), None) => parse_time(s.trim()).map(Selection::Since).ok_or_else(|| {
                Error::invalid(format!("--since {s:?} is not a date"))
                    .with_hint("give a date (2026-11-30) or an RFC 3339 time (2026-11-30T12:00:00Z)")
            }),
            (None, Some(0)) => {
                Err(Error::invalid("--last 0 selects no batch").with_hint("give --last 1 or more"))
            }
            (None, n) => Ok(Selection::Last(n.unwrap_or(1))),
        }
    }

    /// The request batches selected among `all` (oldest first).
    pub fn select<'a>(&self, all: &'a [BatchManifest], branch: &str) -> Result<Vec<&'a BatchManifest>> {
        let requests: Vec<&BatchManifest> = all.iter().filter(|m| m.kind == BatchKind::Requests).collect();
        if requests.is_empty() {
            return Err(Error::not_found(format!("'{branch}' holds no request batch yet"))
                .with_hint("log one first: `mlgit monitor log --env ENV --source FILE`"));
        }
        let out: Vec<&BatchManifest> = match self {
            Selection::Last(n) => requests[requests.len().saturating_sub(*n)..].to_vec(),
            Selection::Since(t) => requests
                .into_iter()
                .filter(|m| parse_time(&m.window.end).is_some_and(|end| end >= *t))
                .collect(),
        };
        if out.is_empty() {
            return Err(Error::not_found(format!(
                "no request batch on '{branch}' ends at or after that date"
            ))
            .with_hint("choose an earlier --since, or --last N"));
        }
        Ok(out)
    }
}
