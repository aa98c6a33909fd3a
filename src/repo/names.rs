//! The names a repository offers for a kind of argument (branches, tags, environments, remotes),
//! for shell completion: read from refs and main's mlgit.yaml, never failing (a repository that
//! cannot be read simply offers nothing).

use std::collections::BTreeSet;

use git2::Repository;

/// What kind of name an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Local branches and tags: anything `git rev-parse` takes by name.
    Revisions,
    Tags,
    Branches,
    /// `environments:` of mlgit.yaml and the env/* branches (local and remote-tracking).
    Environments,
    Remotes,
}

/// The names of `kind` in `git`, each with what it is ("branch", "tag", "environment",
/// "remote"), without duplicates, in a stable order.
pub fn names(git: &Repository, kind: NameKind) -> Vec<(String, &'static str)> {
    let refs = |prefix: &str| -> Vec<String> {
        let Ok(refs) = git.references_glob(&format!("{prefix}*")) else { return Vec::new() };
        refs.filter_map(|r| {
            r.ok().and_then(|r| r.name().and_then(|n| n.strip_prefix(prefix)).map(String::from))
        })
        .collect()
    };
    let mut out: Vec<(String, &'static str)> = Vec::new();
    match kind {
        NameKind::Revisions => {
            out.extend(refs("refs/heads/").into_iter().map(|n| (n, "branch")));
            out.extend(refs("refs/tags/").into_iter().map(|n| (n, "tag")));
        }
        NameKind::Tags => out.extend(refs("refs/tags/").into_iter().map(|n| (n, "tag"))),
        NameKind::Branches => out.extend(refs("refs/heads/").into_iter().map(|n| (n, "branch"))),
        NameKind::Environments => {
            // The config on main names the environments and their branch prefix; a repository
            // without one still has the default prefix's branches to offer.
            let config = super::load_config(git).unwrap_or_default();
            out.extend(config.environments.iter().map(|e| (e.clone(), "environment")));
            let prefix = &config.branches.env_prefix;
            let local = refs(&format!("refs/heads/{prefix}"));
            let remote = refs("refs/remotes/").into_iter().filter_map(|n| {
                let (_remote, branch) = n.split_once('/')?;
                branch.strip_prefix(prefix.as_str()).map(String::from)
            });
            out.extend(local.into_iter().chain(remote).map(|e| (e, "environment")));
        }
        NameKind::Remotes => {
            if let Ok(remotes) = git.remotes() {
                out.extend(remotes.iter().flatten().map(|r| (r.to_string(), "remote")));
            }
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|(name, _)| seen.insert(name.clone()));
    out
}
