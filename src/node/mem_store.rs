//! An in-memory log and hard-state store, for the simulator and the core benchmark.
//!
//! The [`MemDisk`] outlives a node's incarnation, as a disk outlives a process: a crash keeps
//! what was flushed and loses what was not. Every store handle is tied to the incarnation
//! that opened it, so a flush that finishes after its node crashed changes nothing.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::chunked::Chunked;
use crate::node::storage::{
    FlushJob, FlushOutcome, HardStateStore, LogReader, LogStore, StorageError, StorageResult,
};
use crate::raft::election::HardState;
use crate::raft::log_rules::LogView;
use crate::raft::message::Entry;
use crate::types::{LogId, LogIndex, Term};

/// The simulated disk of one node.
#[derive(Debug, Default)]
pub struct MemDisk {
    entries: Chunked<Entry>,
    /// How many of `entries` survive a crash.
    durable_len: usize,
    hard_state: HardState,
    /// Bumped by every crash; store handles of older incarnations stop touching the disk.
    incarnation: u64,
    /// Bumped by every truncation, so a flush that started before it cannot mark entries
    /// written after it durable.
    generation: u64,
}

pub type SharedDisk = Arc<Mutex<MemDisk>>;

impl MemDisk {
    pub fn new_shared() -> SharedDisk {
        Arc::new(Mutex::new(MemDisk::default()))
    }

    /// Power loss: unflushed entries are gone, and handles of the old incarnation go inert.
    pub fn crash(&mut self) {
        self.entries.truncate(self.durable_len);
        self.incarnation += 1;
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index.0 == 0 {
            return Some(Term(0));
        }
        self.entries
            .get(index.0 as usize - 1)
            .map(|e| e.log_id.term)
    }
}

fn lock(disk: &SharedDisk) -> MutexGuard<'_, MemDisk> {
    disk.lock()
        .expect("the simulated disk lock is never poisoned")
}

/// The log store of one incarnation.
pub struct MemLogStore {
    disk: SharedDisk,
    incarnation: u64,
    flushing: bool,
}

impl MemLogStore {
    pub fn open(disk: SharedDisk) -> Self {
        let incarnation = lock(&disk).incarnation;
        Self {
            disk,
            incarnation,
            flushing: false,
        }
    }

    fn disk(&self) -> StorageResult<MutexGuard<'_, MemDisk>> {
        let disk = lock(&self.disk);
        if disk.incarnation != self.incarnation {
            return Err(StorageError("the node crashed: this store is gone".into()));
        }
        Ok(disk)
    }
}

struct MemFlush {
    generation: u64,
    len: usize,
}

impl LogView for MemLogStore {
    fn last_index(&self) -> LogIndex {
        LogIndex(lock(&self.disk).entries.len() as u64)
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        lock(&self.disk).term_at(index)
    }

    fn first_index_of_term(&self, term: Term, from: LogIndex) -> LogIndex {
        let disk = lock(&self.disk);
        let mut index = from;
        while index.0 > 1 && disk.term_at(index.prev()) == Some(term) {
            index = index.prev();
        }
        index
    }
}

impl LogStore for MemLogStore {
    fn last_log_id(&self) -> LogId {
        let disk = lock(&self.disk);
        disk.entries.last().map(|e| e.log_id).unwrap_or_default()
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        let mut disk = self.disk()?;
        let last = disk.entries.last().map(|e| e.log_id).unwrap_or_default();
        assert!(
            crate::raft::log_rules::entries_are_contiguous(last, entries),
            "append after {last} is not contiguous"
        );
        disk.entries.extend_from_slice(entries);
        Ok(())
    }

    fn truncate_from(&mut self, index: LogIndex) -> StorageResult<()> {
        let mut disk = self.disk()?;
        assert!(index.0 >= 1);
        let keep = index.0 as usize - 1;
        disk.entries.truncate(keep);
        disk.durable_len = disk.durable_len.min(keep);
        disk.generation += 1;
        Ok(())
    }

    fn start_flush(&mut self) -> StorageResult<Option<FlushJob>> {
        let disk = self.disk()?;
        if self.flushing || disk.durable_len == disk.entries.len() {
            return Ok(None);
        }
        let flush = MemFlush {
            generation: disk.generation,
            len: disk.entries.len(),
        };
        drop(disk);
        self.flushing = true;
        Ok(Some(Box::new(move || Box::new(flush) as FlushOutcome)))
    }

    fn finish_flush(&mut self, outcome: FlushOutcome) -> StorageResult<LogIndex> {
        self.flushing = false;
        let flush = (outcome as Box<dyn Any>)
            .downcast::<MemFlush>()
            .expect("a flush outcome of this store");
        let mut disk = self.disk()?;
        if flush.generation == disk.generation {
            disk.durable_len = disk.durable_len.max(flush.len);
        }
        Ok(LogIndex(disk.durable_len as u64))
    }

    fn durable_index(&self) -> LogIndex {
        LogIndex(lock(&self.disk).durable_len as u64)
    }

    fn reader(&self) -> Arc<dyn LogReader> {
        Arc::new(MemLogReader {
            disk: self.disk.clone(),
            incarnation: self.incarnation,
        })
    }
}

/// Reads from the simulated disk (what a process would see in its page cache). Like the
/// store, it goes inert when its incarnation crashes.
pub struct MemLogReader {
    disk: SharedDisk,
    incarnation: u64,
}

impl LogReader for MemLogReader {
    fn entries(&self, from: LogIndex, to: LogIndex, bytes_max: u64) -> StorageResult<Vec<Entry>> {
        let disk = lock(&self.disk);
        if disk.incarnation != self.incarnation {
            return Err(StorageError("the node crashed: this reader is gone".into()));
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        let from = from.0.saturating_sub(1) as usize;
        for entry in disk.entries.range(from, to.0 as usize) {
            if !out.is_empty() && bytes + entry.payload_bytes() > bytes_max {
                break;
            }
            bytes += entry.payload_bytes();
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        lock(&self.disk).term_at(index)
    }

    fn last_index(&self) -> LogIndex {
        LogIndex(lock(&self.disk).entries.len() as u64)
    }
}

/// The hard state of one incarnation, on the simulated disk.
pub struct MemHardStateStore {
    disk: SharedDisk,
    incarnation: u64,
}

impl MemHardStateStore {
    pub fn open(disk: SharedDisk) -> Self {
        let incarnation = lock(&disk).incarnation;
        Self { disk, incarnation }
    }
}

impl HardStateStore for MemHardStateStore {
    fn load(&self) -> HardState {
        lock(&self.disk).hard_state
    }

    fn save(&mut self, hard_state: HardState) -> StorageResult<()> {
        let mut disk = lock(&self.disk);
        if disk.incarnation != self.incarnation {
            return Err(StorageError("the node crashed: this store is gone".into()));
        }
        disk.hard_state = hard_state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::EntryPayload;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(Term(term), LogIndex(index)),
            payload: EntryPayload::Noop,
        }
    }

    fn flush(store: &mut MemLogStore) -> LogIndex {
        let job = store.start_flush().unwrap().expect("something to flush");
        store.finish_flush(job()).unwrap()
    }

    #[test]
    fn a_crash_keeps_exactly_what_was_flushed() {
        let disk = MemDisk::new_shared();
        let mut store = MemLogStore::open(disk.clone());
        store.append(&[entry(1, 1), entry(1, 2)]).unwrap();
        assert_eq!(flush(&mut store), LogIndex(2));
        store.append(&[entry(1, 3)]).unwrap();
        disk.lock().unwrap().crash();
        assert!(
            store.append(&[entry(1, 4)]).is_err(),
            "the old incarnation is inert"
        );
        let store = MemLogStore::open(disk);
        assert_eq!(store.last_log_id(), LogId::new(Term(1), LogIndex(2)));
    }

    #[test]
    fn a_flush_started_before_a_truncation_does_not_cover_what_follows_it() {
        let disk = MemDisk::new_shared();
        let mut store = MemLogStore::open(disk);
        store.append(&[entry(1, 1), entry(1, 2)]).unwrap();
        let job = store.start_flush().unwrap().unwrap();
        store.truncate_from(LogIndex(2)).unwrap();
        store.append(&[entry(2, 2)]).unwrap();
        assert_eq!(store.finish_flush(job()).unwrap(), LogIndex(0));
        assert_eq!(flush(&mut store), LogIndex(2));
    }

    #[test]
    fn reader_respects_the_byte_limit_but_returns_at_least_one() {
        let disk = MemDisk::new_shared();
        let mut store = MemLogStore::open(disk);
        let big = |i| Entry {
            log_id: LogId::new(Term(1), LogIndex(i)),
            payload: EntryPayload::Command(vec![0u8; 100].into()),
        };
        store.append(&[big(1), big(2), big(3)]).unwrap();
        let reader = store.reader();
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(3), 10).unwrap().len(),
            1
        );
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(3), 200).unwrap().len(),
            2
        );
        assert_eq!(
            reader
                .entries(LogIndex(2), LogIndex(9), 1000)
                .unwrap()
                .len(),
            2
        );
    }
}
