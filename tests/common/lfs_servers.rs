//! Git LFS servers on loopback for tests: rudolfs and giftless, started on free ports with their
//! storage in a temporary folder, killed when dropped.
#![allow(dead_code)]
