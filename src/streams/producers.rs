//! The producer dedup table: for each producer id, its last applied sequence number and what
//! that write did. It is replicated state, part of the state machine and of its snapshot, so a
//! retry after a leader change or a restart is answered the same on every node.
//!
//! The contract with a producer (API.md's `producer: {id, seq}`):
//! - a `seq` higher than the last one seen is a new write. Gaps are allowed: a producer may
//!   skip numbers (a request it abandoned), and only the order matters;
//! - the same `seq` is a retry of the last write and gets that write's offsets back, even if it
//!   names another stream: by contract a retry repeats its request;
//! - a lower `seq` is stale and is refused.
//!
//! Only writes are remembered. A command that was refused (stale, offset mismatch, rejected)
//! leaves the table as it was, so its retry is judged afresh.
//!
//! The table is bounded by `producers_max` ids. Past it, the producer whose last write is
//! oldest in the log is forgotten: every node applies the same log, so every node forgets the
//! same one. The consequence: a retry from a forgotten producer is not recognised and is
//! written again, and its lower `seq`s are no longer refused. Only a producer idle for
//! `producers_max` other producers' writes is exposed to this.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, Offset};

/// Where a write sits in the log: its entry and its position in that entry's batch. Unique
/// per write, and ordered as the writes were applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WriteId {
    pub log_index: LogIndex,
    pub command: u32,
}

/// A producer's last applied write: enough to answer its retry exactly as the first time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastWrite {
    pub seq: u64,
    pub stream: String,
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub written_at: WriteId,
}

/// The table's verdict on a producer's `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck<'a> {
    /// Unknown producer, or a `seq` above its last: write it.
    New,
    /// A retry of the last write, which it describes.
    Duplicate(&'a LastWrite),
    /// Below the last `seq`: refuse it.
    Stale { last_seq: u64 },
}

/// Producer id → last write, bounded to `producers_max` ids.
#[derive(Clone, Debug)]
pub struct Producers {
    by_id: BTreeMap<String, LastWrite>,
    /// The eviction order: every id by its last write. Same ids as `by_id`.
    by_age: BTreeMap<WriteId, String>,
    producers_max: usize,
}

impl Producers {
    pub fn new(producers_max: usize) -> Self {
        assert!(
            producers_max > 0,
            "the producer table holds at least one id"
        );
        Self {
            by_id: BTreeMap::new(),
            by_age: BTreeMap::new(),
            producers_max,
        }
    }

    /// Rebuilds a table from a snapshot's entries; `None` if they break its invariants (more
    /// than `producers_max` ids, two ids claiming the same write, or `producers_max` zero).
    pub fn from_entries(
        by_id: BTreeMap<String, LastWrite>,
        producers_max: usize,
    ) -> Option<Producers> {
        if producers_max == 0 || by_id.len() > producers_max {
            return None;
        }
        let mut by_age = BTreeMap::new();
        for (id, write) in &by_id {
            if by_age.insert(write.written_at, id.clone()).is_some() {
                return None;
            }
        }
        Some(Producers {
            by_id,
            by_age,
            producers_max,
        })
    }

    /// Every producer's last write, by id: what a snapshot stores.
    pub fn by_id(&self) -> &BTreeMap<String, LastWrite> {
        &self.by_id
    }

    /// The most recent write in the table, if any.
    pub fn newest_write(&self) -> Option<WriteId> {
        self.by_age.last_key_value().map(|(&at, _)| at)
    }

    pub fn producers_max(&self) -> usize {
        self.producers_max
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&LastWrite> {
        self.by_id.get(id)
    }

    /// Judges `seq` for producer `id`. Changes nothing.
    pub fn check(&self, id: &str, seq: u64) -> SeqCheck<'_> {
        match self.by_id.get(id) {
            None => SeqCheck::New,
            Some(last) if seq > last.seq => SeqCheck::New,
            Some(last) if seq == last.seq => SeqCheck::Duplicate(last),
            Some(last) => SeqCheck::Stale { last_seq: last.seq },
        }
    }

    /// Remembers `write` as producer `id`'s last, then forgets the producer with the oldest
    /// last write if the table is over its bound. `write` must be newer than every write in
    /// the table, as it is when writes are recorded in apply order.
    pub fn record(&mut self, id: &str, write: LastWrite) {
        if let Some(newest) = self.newest_write() {
            assert!(
                write.written_at > newest,
                "producer writes are recorded in log order"
            );
        }
        if let Some(previous) = self.by_id.get(id) {
            assert!(write.seq > previous.seq, "only a new seq is recorded");
            self.by_age.remove(&previous.written_at);
        }
        self.by_age.insert(write.written_at, id.to_string());
        self.by_id.insert(id.to_string(), write);
        if self.by_id.len() > self.producers_max {
            self.evict_oldest();
        }
        assert_eq!(self.by_id.len(), self.by_age.len());
        assert!(self.by_id.len() <= self.producers_max);
    }

    fn evict_oldest(&mut self) {
        let (_, id) = self
            .by_age
            .pop_first()
            .expect("an over-full table is not empty");
        self.by_id
            .remove(&id)
            .expect("by_age and by_id hold the same ids");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(seq: u64, log_index: u64, command: u32) -> LastWrite {
        LastWrite {
            seq,
            stream: "s".to_string(),
            first_offset: Offset(seq * 10),
            last_offset: Offset(seq * 10 + 1),
            written_at: WriteId {
                log_index: LogIndex(log_index),
                command,
            },
        }
    }

    #[test]
    fn higher_seq_is_new_same_is_duplicate_lower_is_stale() {
        let mut table = Producers::new(10);
        assert_eq!(table.check("p", 5), SeqCheck::New);
        table.record("p", write(5, 1, 0));
        assert_eq!(table.check("p", 5), SeqCheck::Duplicate(&write(5, 1, 0)));
        assert_eq!(table.check("p", 4), SeqCheck::Stale { last_seq: 5 });
        // Gaps are allowed.
        assert_eq!(table.check("p", 9), SeqCheck::New);
        table.record("p", write(9, 2, 0));
        assert_eq!(table.check("p", 5), SeqCheck::Stale { last_seq: 9 });
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn evicts_the_producer_whose_last_write_is_oldest() {
        let mut table = Producers::new(2);
        table.record("a", write(1, 1, 0));
        table.record("b", write(1, 1, 1));
        table.record("a", write(2, 2, 0)); // "a" is now the most recent.
        table.record("c", write(1, 3, 0)); // Over the bound: "b" goes.
        assert!(table.get("b").is_none());
        assert!(table.get("a").is_some() && table.get("c").is_some());
        // Forgotten, so its retry looks new.
        assert_eq!(table.check("b", 1), SeqCheck::New);
    }

    #[test]
    fn within_one_entry_the_earlier_command_is_older() {
        let mut table = Producers::new(2);
        table.record("z", write(1, 7, 0));
        table.record("a", write(1, 7, 1));
        table.record("m", write(1, 7, 2));
        assert!(table.get("z").is_none(), "z wrote first, so it goes first");
    }

    #[test]
    fn from_entries_refuses_broken_tables() {
        let entries = |writes: &[(&str, LastWrite)]| -> BTreeMap<String, LastWrite> {
            writes
                .iter()
                .map(|(id, w)| (id.to_string(), w.clone()))
                .collect()
        };
        let same_write = entries(&[("a", write(1, 1, 0)), ("b", write(1, 1, 0))]);
        assert!(Producers::from_entries(same_write, 5).is_none());
        let two = entries(&[("a", write(1, 1, 0)), ("b", write(1, 2, 0))]);
        assert!(Producers::from_entries(two.clone(), 1).is_none());
        assert!(Producers::from_entries(two.clone(), 0).is_none());
        let table = Producers::from_entries(two, 2).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.newest_write().unwrap().log_index, LogIndex(2));
    }
}
