//! The data branches: committing folders (commit-data), materializing trees, and the
//! raw → clean → split flow.

pub mod commit;
pub mod materialize;
pub mod verify;
