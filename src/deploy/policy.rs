//! The rules a promotion must pass, from `promotion:` in `mlgit.yaml` (being written by the lead).
