//! Tag names: picked before training (`--name` or `snapshot.tag_pattern`) and reserved under
//! `refs/mlgit/reserved/<tag>` by compare-and-swap creation, so no two runs get the same name.

use git2::{Oid, Repository};

use super::RESERVED_PREFIX;
use crate::config::Config;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::repo::refs::compare_and_swap_ref;

/// A reserved tag name; dropping it deletes the reservation (only if it is still ours).
pub(super) struct Reservation<'r> {
    git: &'r Repository,
    pub(super) tag: String,
    refname: String,
    target: Oid,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.git.find_reference(&self.refname) {
            if r.target() == Some(self.target) {
                let _ = r.delete();
            }
        }
    }
}

fn tag_exists(git: &Repository, tag: &str) -> bool {
    git.find_reference(&format!("refs/tags/{tag}")).is_ok()
}

pub(super) fn validate_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || !git2::Reference::is_valid_name(&format!("refs/tags/{tag}")) || tag.starts_with('-')
    {
        return Err(Error::invalid(format!("'{tag}' is not a valid tag name")).with_hint(
            "use letters, digits, '.', '-', '_' and '/' (see `git check-ref-format`), e.g. churn-v3",
        ));
    }
    Ok(())
}

/// Pick the tag name and reserve it by creating `refs/mlgit/reserved/<tag>` (fails if it exists).
pub(super) fn reserve_tag<'r>(
    git: &'r Repository,
    config: &Config,
    branch: &str,
    name: Option<&str>,
    target: Oid,
) -> Result<Reservation<'r>> {
    let try_reserve = |tag: &str| -> Result<Option<Reservation<'r>>> {
        let refname = format!("{RESERVED_PREFIX}{tag}");
        if !compare_and_swap_ref(git, &refname, target, None, "mlgit train-tag: reserve")? {
            return Ok(None);
        }
        let r = Reservation { git, tag: tag.to_string(), refname, target };
        // A tag made between our check and the reservation: give the name back.
        if tag_exists(git, tag) {
            return Ok(None);
        }
        Ok(Some(r))
    };
    if let Some(tag) = name {
        validate_tag(tag)?;
        if tag_exists(git, tag) {
            return Err(Error::new(ErrorKind::AlreadyExists, format!("the tag '{tag}' already exists"))
                .with_hint(
                    "snapshots are permanent: choose another --name, or leave it out to use the tag pattern",
                ));
        }
        return try_reserve(tag)?.ok_or_else(|| {
            Error::conflict(format!("the tag name '{tag}' is reserved by another train-tag run")).with_hint(
                format!(
                    "choose another --name; if no run is active, the reservation is left over from a crash: \
                     `git update-ref -d {RESERVED_PREFIX}{tag}`"
                ),
            )
        });
    }
    let pattern = config.snapshot.tag_pattern.replace("{model}", config.model_name(branch));
    let Some((prefix, suffix)) = pattern.split_once("{n}") else {
        validate_tag(&pattern)?;
        if tag_exists(git, &pattern) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "the tag pattern '{}' gives '{pattern}', which already exists (a pattern without {{n}} names one snapshot only)",
                    config.snapshot.tag_pattern
                ),
            )
            .with_hint("add {n} to snapshot.tag_pattern in mlgit.yaml (e.g. '{model}-v{n}'), or pass --name"));
        }
        return try_reserve(&pattern)?.ok_or_else(|| {
            Error::conflict(format!("the tag name '{pattern}' is reserved by another train-tag run"))
                .with_hint("pass --name, or add {n} to snapshot.tag_pattern in mlgit.yaml")
        });
    };
    validate_tag(&pattern.replace("{n}", "1"))?;
    let number = |name: &str| -> Option<u64> {
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let mut highest = 0;
    for r in git.references().context("list refs")?.flatten() {
        let Some(name) = r.name() else { continue };
        let short = name.strip_prefix("refs/tags/").or_else(|| name.strip_prefix(RESERVED_PREFIX));
        if let Some(n) = short.and_then(number) {
            highest = highest.max(n);
        }
    }
    for n in highest + 1..highest + 1000 {
        let tag = format!("{prefix}{n}{suffix}");
        if tag_exists(git, &tag) {
            continue;
        }
        if let Some(r) = try_reserve(&tag)? {
            return Ok(r);
        }
    }
    Err(Error::conflict("could not reserve a tag name: too many concurrent runs")
        .with_hint("retry, or pass --name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_checked_as_git_does() {
        for ok in ["model-v1", "churn/v2", "a.b_c"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "a b", "-x", "x.lock", "a~1", "a:b", "@{x}"] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }
}
