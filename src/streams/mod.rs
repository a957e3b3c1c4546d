//! The stream state machine: what a committed log entry does to the streams.
//!
//! This is the pure, deterministic core behind the Apply actor. It owns the stream index
//! (which log entries hold which offsets of which stream), each stream's bounds, the producer
//! dedup table and the applied index; it does no I/O and reads no clock. Every node applies
//! the same committed entries in the same order and reaches the same state, so everything here
//! is a function of the entries alone: maps are `BTreeMap`s, nothing depends on configuration
//! that nodes could disagree on except `producers_max` (see [`Streams::new`]).
//!
//! Record bytes are not held here. They stay in the Raft log, inside the entry that carried
//! them; [`Streams::locate`] says which entries to fetch, and [`records_in`] cuts the records
//! out of a fetched entry's payload.
//!
//! - [`command`]: the payload format (a batch of commands) and reading records out of it;
//! - `append`: what one append command does, and its [`AppendOutcome`];
//! - [`producers`]: the idempotent-producer table and its bounded, deterministic eviction;
//! - [`index`]: per-stream runs, and locating offsets in the log;
//! - [`name`]: the stream name rule, shared with the HTTP layer;
//! - `snapshot`: the state as bytes, and the checks on restoring them.

mod append;
pub mod command;
pub mod index;
pub mod name;
pub mod producers;
mod snapshot;
mod view;
mod writer;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use append::AppendOutcome;
pub use command::{
    decode, encode, record_slices, records_in, records_in_shared, AppendCommand, CommandBatch,
    PayloadError, ProducerSeq, StreamCommand,
};
pub use index::{RecordRange, Run, StreamInfo};
pub use name::validate_stream_name;
pub use producers::{LastWrite, WriteId};
pub use snapshot::SnapshotError;

use command::CommandView;
use index::Index;
use producers::Producers;

use crate::types::{LogIndex, Offset};

/// A default for `producers_max`: the number of producer ids whose last write is remembered.
pub const PRODUCERS_MAX_DEFAULT: usize = 100_000;

/// The replicated state of all streams, advanced one committed entry at a time.
#[derive(Clone, Debug)]
pub struct Streams {
    /// The last entry applied; entries are applied in strictly increasing index order.
    applied_index: LogIndex,
    index: Index,
    producers: Producers,
}

impl Streams {
    /// An empty state machine, before the first entry.
    ///
    /// `producers_max` bounds the producer table and decides which producers are forgotten,
    /// so it is part of the replicated behaviour: every node of a cluster must use the same
    /// value (a snapshot carries it, so a restored node takes the value of the node that
    /// took the snapshot). Panics if it is zero.
    pub fn new(producers_max: usize) -> Self {
        Self {
            applied_index: LogIndex(0),
            index: Index::default(),
            producers: Producers::new(producers_max),
        }
    }

    /// Applies the committed command entry at `index`, whose payload is `payload`, and returns
    /// one outcome per command, in command order.
    ///
    /// Total: any bytes are applied without panicking. A payload that does not decode is
    /// applied as a no-op and gives no outcomes (an error is logged). Every node holds the same
    /// bytes, so every node does the same; the Apply actor must answer any request waiting on
    /// this entry with an error. Panics if `index` is not above the applied index.
    pub fn apply(&mut self, index: LogIndex, payload: &[u8]) -> Vec<AppendOutcome> {
        self.advance_to(index);
        let batch = match command::decode_view(payload) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%index, %error, "committed entry applied as a no-op");
                return Vec::new();
            }
        };
        let mut outcomes = Vec::with_capacity(batch.commands.len());
        for (position, command) in batch.commands.iter().enumerate() {
            let Ok(position) = u32::try_from(position) else {
                let reason = format!("the batch has over {} commands", u32::MAX);
                outcomes.push(AppendOutcome::Rejected { reason });
                continue;
            };
            let written_at = WriteId {
                log_index: index,
                command: position,
            };
            outcomes.push(match command {
                CommandView::Append(append) => {
                    append::apply_append(&mut self.index, &mut self.producers, written_at, append)
                }
            });
        }
        outcomes
    }

    /// Applies an entry that carries no commands (a leader's no-op), which only moves the
    /// applied index. Panics if `index` is not above the applied index.
    pub fn apply_noop(&mut self, index: LogIndex) {
        self.advance_to(index);
    }

    fn advance_to(&mut self, index: LogIndex) {
        assert!(
            index > self.applied_index,
            "entry {index} applied after entry {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    /// The last entry applied, `LogIndex(0)` before the first.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// A stream's bounds, or `None` for a stream never written (which reads as empty).
    pub fn stream(&self, name: &str) -> Option<StreamInfo> {
        self.index.info(name)
    }

    /// Every stream ever written with its bounds, sorted by name.
    pub fn list(&self) -> Vec<(String, StreamInfo)> {
        let streams = self.index.streams().iter();
        streams
            .map(|(name, runs)| (name.clone(), runs.info()))
            .collect()
    }

    /// Which entries hold the records of `stream` at `from..from+limit`, in offset order. See
    /// [`Index::locate`] for the edges (past the end, below `start_offset`).
    pub fn locate(&self, stream: &str, from: Offset, limit: usize) -> Vec<RecordRange> {
        self.index.locate(stream, from, limit)
    }

    /// The last write of producer `id`, if the table still remembers it.
    pub fn producer(&self, id: &str) -> Option<&LastWrite> {
        self.producers.get(id)
    }

    /// The number of producers remembered, at most `producers_max`.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The whole state as bytes; equal states give equal bytes.
    pub fn snapshot(&self) -> Bytes {
        snapshot::encode(self)
    }

    /// The state that [`Streams::snapshot`] saved. Untrusted bytes give an error, never a
    /// panic, and a restored state never trips an assertion later.
    pub fn restore(bytes: &[u8]) -> Result<Streams, SnapshotError> {
        snapshot::decode(bytes)
    }
}
