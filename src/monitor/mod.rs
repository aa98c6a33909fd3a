//! Monitoring branches (`monitoring/<env>`): production batches logged as tables with the snapshot
//! tag that served each record, labels joined in later by request id, and drift reports that
//! compare each tag's records with the training split of that tag's own snapshot.
//!
//! - [`settings`]: `monitor.yaml` on the branch (columns, thresholds, checks), versioned with it;
//! - [`log`]: `monitor log` / `monitor label`, append-only commits through the branch transaction;
//! - [`reference`]: tag → snapshot → split commit → the training table (exact) or its profile;
//! - [`sample`]: bounded-memory column summaries (numeric distributions, category counts);
//! - [`stats`]: the statistics (KS, PSI, Wasserstein, Jensen-Shannon, BH, ECE, Brier, …);
//! - [`decide`]: one feature's verdict from its statistics and thresholds;
//! - [`calibrate`]: thresholds from pseudo-batches drawn from the reference;
//! - [`drift`]: the report over a window of batches, per tag side by side;
//! - [`history`]: one feature's statistic batch by batch, with the tag switches.

pub mod branch;
pub mod calibrate;
pub mod cells;
pub mod decide;
pub mod drift;
pub mod history;
pub mod labels;
pub mod log;
pub mod reference;
pub mod sample;
pub mod settings;
pub mod stats;
pub mod stored;
pub mod summary;
pub mod tune;
pub mod window;
