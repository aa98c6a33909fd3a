//! The data branches: committing folders (commit-data), materializing trees, and the
//! raw → clean → split flow.

pub mod clean;
pub mod commit;
pub mod diff;
pub mod flow;
pub mod lineage;
pub mod materialize;
pub mod split;
pub mod transform;
pub mod validate;
pub mod verify;
