//! What one append command does to the state machine, and the outcome it is answered with.
//!
//! The checks run in this order, and the first that decides ends the command:
//! 1. validity (stream name, at least one record) → `Rejected`. The HTTP layer refuses these
//!    before proposing, so this only guards apply's totality against a bug or a foreign
//!    proposer;
//! 2. the producer table (see `producers.rs`) → `Duplicate` or `StaleProducerSeq`. It comes
//!    before the offset condition so that a retried conditional append gets its original
//!    offsets back rather than a mismatch caused by its own first write;
//! 3. `expected_offset` → `OffsetMismatch`;
//! 4. the write → `Appended`, recorded in the index and, with a producer, in its table.
//!
//! Every outcome but `Appended` writes nothing and leaves the producer table unchanged.

use super::command::AppendView;
use super::index::Index;
use super::name::validate_stream_name;
use super::producers::{LastWrite, Producers, SeqCheck, WriteId};
use crate::types::Offset;

/// What applying one append command did. Every node computes the same outcome for the same
/// command at the same log position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The records were written at `first_offset..=last_offset`.
    Appended {
        first_offset: Offset,
        last_offset: Offset,
    },
    /// A retry of the producer's last write: its original offsets; nothing written.
    Duplicate {
        first_offset: Offset,
        last_offset: Offset,
    },
    /// The producer's `seq` is below `last_seq`, its last applied one; nothing written.
    StaleProducerSeq { last_seq: u64 },
    /// `expected_offset` was not the stream's next offset, `next_offset`; nothing written.
    OffsetMismatch { next_offset: Offset },
    /// The command is invalid, for the one-sentence `reason`; nothing written.
    Rejected { reason: String },
}

/// Applies `command`, the write at `written_at`, to the index and the producer table.
pub(super) fn apply_append(
    index: &mut Index,
    producers: &mut Producers,
    written_at: WriteId,
    command: &AppendView<'_>,
) -> AppendOutcome {
    // The checks run inside the index's one lookup of the stream. Only a stream never
    // written needs its name checked: every name in the index passed the check when its
    // stream was created (and a restored snapshot's names are checked too), so every name
    // that can fail the check is still checked first, as the module doc orders.
    let decided = index.append_if(command.stream, written_at, |next_offset| {
        let rejected = |reason| AppendOutcome::Rejected { reason };
        if next_offset.is_none() {
            validate_stream_name(command.stream).map_err(rejected)?;
        }
        let record_count = record_count(command).map_err(rejected)?;
        if let Some(producer) = command.producer {
            check_producer(producers, producer.id, producer.seq)?;
        }
        let next_offset = next_offset.unwrap_or(Offset(0));
        if command.expected_offset.is_some_and(|e| e != next_offset) {
            return Err(AppendOutcome::OffsetMismatch { next_offset });
        }
        if next_offset.0.checked_add(u64::from(record_count)).is_none() {
            let reason = format!("the stream has no room for {record_count} more records");
            return Err(AppendOutcome::Rejected { reason });
        }
        Ok(record_count)
    });
    let (first_offset, last_offset) = match decided {
        Ok(offsets) => offsets,
        Err(refused) => return refused,
    };
    if let Some(producer) = command.producer {
        let write = LastWrite {
            seq: producer.seq,
            stream: command.stream.to_string(),
            first_offset,
            last_offset,
            written_at,
        };
        producers.record(producer.id, write);
    }
    AppendOutcome::Appended {
        first_offset,
        last_offset,
    }
}

/// The command's record count, or why it has none to write.
fn record_count(command: &AppendView<'_>) -> Result<u32, String> {
    if command.records.is_empty() {
        return Err("the append has no records".to_string());
    }
    u32::try_from(command.records.len())
        .map_err(|_| format!("the append has over {} records", u32::MAX))
}

/// Refuses a retried or stale write of the producer: a retry gets its original offsets.
fn check_producer(producers: &Producers, id: &str, seq: u64) -> Result<(), AppendOutcome> {
    match producers.check(id, seq) {
        SeqCheck::New => Ok(()),
        SeqCheck::Duplicate(last) => Err(AppendOutcome::Duplicate {
            first_offset: last.first_offset,
            last_offset: last.last_offset,
        }),
        SeqCheck::Stale { last_seq } => Err(AppendOutcome::StaleProducerSeq { last_seq }),
    }
}
