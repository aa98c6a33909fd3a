//! `mlgit promote` and `mlgit rollback` (being written by the lead).
