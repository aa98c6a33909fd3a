//! A fixed set of worker threads taking items from a shared list: the first error (or an
//! interrupt) stops every worker at its next item, and is what the caller gets.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;

/// Shared by the workers of one transfer: whether to stop, and why.
#[derive(Default)]
pub struct Stop {
    flag: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl Stop {
    /// Record `err` (the first real error wins over an interrupt) and tell everyone to stop.
    pub fn fail(&self, err: Error) {
        if let Ok(mut slot) = self.error.lock() {
            let replace = match slot.as_ref() {
                None => true,
                Some(old) => old.kind() == ErrorKind::Interrupted && err.kind() != ErrorKind::Interrupted,
            };
            if replace {
                *slot = Some(err);
            }
        }
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    fn into_result(self) -> Result<()> {
        match self.error.into_inner() {
            Ok(Some(err)) => Err(err),
            _ => Ok(()),
        }
    }
}

/// Run `work` on every item with `jobs` threads. `what` names the work for an interrupt message.
pub fn for_each<T: Sync>(
    jobs: usize,
    items: &[T],
    interrupt: &Interrupt,
    what: &str,
    work: impl Fn(&T, &Stop) -> Result<()> + Sync,
) -> Result<()> {
    let stop = Stop::default();
    let next = AtomicUsize::new(0);
    let worker = || loop {
        if stop.is_set() {
            break;
        }
        if interrupt.check(what).is_err() {
            stop.fail(crate::interrupt::interrupted_transfer(what));
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        if let Err(err) = work(item, &stop) {
            stop.fail(err);
            break;
        }
    };
    let threads = jobs.clamp(1, items.len().max(1));
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }
    stop.into_result()
}
