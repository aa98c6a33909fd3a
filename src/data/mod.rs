//! The data branches: committing folders (commit-data), materializing trees, and the
//! raw → clean → split flow.

pub mod clean;
pub mod clean_tables;
pub mod commit;
pub mod diff;
pub mod flow;
pub mod lineage;
pub mod materialize;
pub mod profiles;
pub mod split;
pub mod split_settings;
pub mod split_table;
pub mod split_tables;
pub mod table_io;
pub mod transform;
pub mod validate;
pub mod verify;
