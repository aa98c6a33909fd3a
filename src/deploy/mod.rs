//! Environments and promotion: `env/<env>` branches as the deployment log. A promotion is one
//! commit on `env/<env>` whose tree is the snapshot's tree plus [`DEPLOYMENT_FILE`] (who, when, why,
//! which model bytes, which data) and [`TAG_FILE`] (the tag, for deployment scripts), and whose
//! parents are the previous deployment and the snapshot commit. `git log env/prod` is the
//! deployment log; `git checkout env/prod` is what serves prod.
//!
//! - [`record`]: the `DEPLOYMENT.yaml` format;
//! - [`policy`]: the rules a promotion must pass (`promotion:` in `mlgit.yaml`);
//! - [`promote`]: promote and rollback, written through the branch transaction;
//! - [`history`]: `envs`, `envs log`, `envs at`;
//! - [`gto`]: GTO-compatible tags (`--gto`).

pub mod gto;
pub mod history;
pub mod policy;
pub mod promote;
pub mod record;

use crate::config::Config;
use crate::error::{Error, Result};

/// The deployment record at the root of every promotion commit.
pub const DEPLOYMENT_FILE: &str = "DEPLOYMENT.yaml";
/// One line, the deployed tag: `git show env/prod:DEPLOYED_TAG` for deployment scripts.
pub const TAG_FILE: &str = "DEPLOYED_TAG";

/// The `env/<env>` branch of an environment.
pub fn env_branch(config: &Config, env: &str) -> String {
    format!("{}{}", config.branches.env_prefix, env)
}

/// An environment named in `mlgit.yaml`, or an error that lists them.
pub fn check_env(config: &Config, env: &str) -> Result<()> {
    if config.environments.iter().any(|e| e == env) {
        return Ok(());
    }
    let known = if config.environments.is_empty() {
        "none are configured".to_string()
    } else {
        format!("the environments are {}", config.environments.join(", "))
    };
    Err(Error::not_found(format!("unknown environment '{env}': {known}"))
        .with_hint("name one of them, or add it to `environments:` in mlgit.yaml on main"))
}
