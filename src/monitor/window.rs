//! Which request batches a drift report covers: the last N, or every batch since a date.

use super::branch::{BatchKind, BatchManifest};
use super::cells::parse_time;
use crate::error::{Error, Result};

/// The batches of a report.
pub enum Selection {
    Last(usize),
    /// Batches whose records end at or after this instant (microseconds since the epoch).
    Since(i64),
    /// Every batch no committed report covers yet (what CI runs: batches pushed together, or
    /// logged between two runs, are all checked).
    Unreported,
}

impl Selection {
    /// From `--since` / `--last` / `--unreported` (default: the last batch).
    pub fn parse(since: Option<&str>, last: Option<usize>, unreported: bool) -> Result<Selection> {
        if unreported {
            if since.is_some() || last.is_some() {
                return Err(Error::invalid(
                    "--unreported, --since and --last choose the batches in different ways; give one",
                ));
            }
            return Ok(Selection::Unreported);
        }
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

    /// The request batches selected among `all` (oldest first); `reported` are the ids of the
    /// batches committed reports cover. Empty when there is nothing to compare (no batch yet, or
    /// none selected): the report says so.
    pub fn select<'a>(&self, all: &'a [BatchManifest], reported: &[String]) -> Vec<&'a BatchManifest> {
        let requests: Vec<&BatchManifest> = all.iter().filter(|m| m.kind == BatchKind::Requests).collect();
        match self {
            Selection::Last(n) => requests[requests.len().saturating_sub(*n)..].to_vec(),
            Selection::Since(t) => requests
                .into_iter()
                .filter(|m| parse_time(&m.window.end).is_some_and(|end| end >= *t))
                .collect(),
            Selection::Unreported => requests.into_iter().filter(|m| !reported.contains(&m.id)).collect(),
        }
    }
}
