//! The final log: per stream, the authoritative record values in offset order, read from the
//! converged cluster after healing. This module owns that type and the lookups the checkers
//! share, chiefly "where did this append's records land?".
//!
//! Every lookup by value relies on the tests' uniqueness assumption: each value is issued by
//! exactly one logical append (e.g. "p3-17"), and only a retry of that append under the same
//! producer id and seq carries it again. Without it, a value could not tell us which append
//! wrote it.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::history::{Call, Operation, Outcome};
use crate::types::Offset;

/// Per stream, the record values at offsets `0..len`, as the healed cluster serves them.
/// A stream that is absent was never written.
pub type FinalLog = BTreeMap<String, Vec<Bytes>>;

/// One stream of the final log, indexed by value.
#[derive(Debug)]
pub struct StreamIndex<'a> {
    values: &'a [Bytes],
    /// The first offset at which each value appears; duplicates are the phantom checker's
    /// business.
    offset_of: HashMap<&'a Bytes, Offset>,
}

impl<'a> StreamIndex<'a> {
    /// The index of `stream` in `final_log`, empty if the stream was never written.
    pub fn of(final_log: &'a FinalLog, stream: &str) -> Self {
        Self::new(final_log.get(stream).map_or(&[], Vec::as_slice))
    }

    pub fn new(values: &'a [Bytes]) -> Self {
        let mut offset_of = HashMap::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            offset_of.entry(value).or_insert(Offset(i as u64));
        }
        Self { values, offset_of }
    }

    /// The stream's end offset: the offset after its last record.
    pub fn end(&self) -> Offset {
        Offset(self.values.len() as u64)
    }

    pub fn get(&self, offset: Offset) -> Option<&'a Bytes> {
        usize::try_from(offset.0)
            .ok()
            .and_then(|i| self.values.get(i))
    }

    pub fn offset_of(&self, value: &Bytes) -> Option<Offset> {
        self.offset_of.get(value).copied()
    }

    /// Where an append's records sit, `(first, last)`, if it took effect: the acknowledged
    /// offsets for `Appended`, the final log's placement of its first value for `Unknown`,
    /// and `None` for anything that definitely wrote nothing (or an unknown append that
    /// did not happen). Reads have no effect.
    pub fn effect_of(&self, op: &Operation) -> Option<(Offset, Offset)> {
        let Call::Append(call) = &op.call else {
            return None;
        };
        match op.outcome {
            Outcome::Appended {
                first_offset,
                last_offset,
            } => Some((first_offset, last_offset)),
            Outcome::Unknown => {
                let first = self.offset_of(call.values.first()?)?;
                let count = call.values.len() as u64;
                Some((first, Offset(first.0 + count - 1)))
            }
            _ => None,
        }
    }
}
