//! Reading a table one batch ahead: a reader thread parses the next batch while the caller
//! processes the current one (parsing is most of a CSV's cost, so this overlaps it with hashing,
//! profiling and writing). At most two batches wait, so memory stays bounded.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use super::{Batch, Column, TableReader};
use crate::error::{Error, ErrorKind, Result};

enum Message {
    Batch(Batch, Vec<Column>),
    Failed(Error),
    End,
}

/// Batches of a table with the reader's columns as they were when each batch was read.
pub struct Prefetch {
    rx: Option<Receiver<Message>>,
    thread: Option<JoinHandle<()>>,
    done: bool,
}

impl Prefetch {
    pub fn new(mut reader: TableReader) -> Result<Prefetch> {
        let (tx, rx) = sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("mlgit-table-reader".into())
            .spawn(move || loop {
                let (message, last) = match reader.next_batch() {
                    Ok(Some(b)) => (Message::Batch(b, reader.columns().to_vec()), false),
                    Ok(None) => (Message::End, true),
                    Err(e) => (Message::Failed(e), true),
                };
                // A send fails when the caller stopped listening (an error, an interrupt).
                if tx.send(message).is_err() || last {
                    break;
                }
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a reader thread: {e}")))?;
        Ok(Prefetch { rx: Some(rx), thread: Some(thread), done: false })
    }
}

impl Iterator for Prefetch {
    type Item = Result<(Batch, Vec<Column>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let message = self.rx.as_ref().and_then(|rx| rx.recv().ok());
        match message {
            Some(Message::Batch(b, c)) => Some(Ok((b, c))),
            Some(Message::End) => {
                self.done = true;
                None
            }
            Some(Message::Failed(e)) => {
                self.done = true;
                Some(Err(e))
            }
            // The reader ended without saying so: it panicked. Never a silently short table.
            None => {
                self.done = true;
                Some(Err(Error::new(ErrorKind::Io, "the table reader stopped unexpectedly")))
            }
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Unblock a reader waiting to send, then wait for it.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
