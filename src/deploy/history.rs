//! `mlgit envs`, `envs log`, `envs at` (being written by the lead).
