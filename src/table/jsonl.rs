//! Jsonl reading and writing (stub: owned by the tables-io helper).

use super::output::Finished;
use super::{Batch, Cell, Column, HashingFile, Input, ReadOptions, TextOutput};
use crate::error::Result;

pub struct JsonlReader {
    columns: Vec<Column>,
}

pub struct JsonlBatch {}

pub struct JsonlWriter {}

impl JsonlReader {
    pub fn open(_input: Input, _opts: &ReadOptions) -> Result<JsonlReader> {
        todo!()
    }
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        todo!()
    }
}

impl JsonlBatch {
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn cell(&self, _row: usize, _col: usize) -> Cell<'_> {
        todo!()
    }
    pub fn line(&self, _row: usize) -> u64 {
        todo!()
    }
}

impl JsonlWriter {
    pub fn new(_reader: &JsonlReader, _text: TextOutput, _out: HashingFile) -> Result<JsonlWriter> {
        todo!()
    }
    pub fn write(&mut self, _batch: &Batch, _keep: &[bool]) -> Result<()> {
        todo!()
    }
    pub fn finish(self) -> Result<(Finished, u64)> {
        todo!()
    }
}
