//! The byte format of a [`Streams`] snapshot, and the checks a restored one must pass.
//!
//! A snapshot is the whole state machine: the applied index, the stream index and the
//! producer table (with its bound, so that a node restored from a leader's snapshot evicts
//! exactly as the leader does). The bytes are bincode 1.3 with [`bincode::DefaultOptions`],
//! like command payloads. The top-level enum's variant is the format version: a new format is
//! a new variant, and old snapshots still decode. Maps are `BTreeMap`s, so the same state
//! always gives the same bytes. (`V1` itself changed once, when index runs gained
//! `Run::commands`: nothing stored or sent snapshots yet, since the log is never compacted.)
//!
//! A snapshot may come from another node, so it is untrusted: restoring checks every invariant
//! that apply later asserts, and refuses a snapshot that breaks one instead of panicking then.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::index::{Index, StreamRuns};
use super::name::validate_stream_name;
use super::producers::{LastWrite, Producers};
use super::Streams;
use crate::types::LogIndex;

/// Why snapshot bytes could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot does not decode: {0}")]
    Malformed(#[from] bincode::Error),
    #[error("the snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// The versions of the format. Serialized from borrowed state, restored as owned.
#[derive(Serialize, Deserialize)]
enum Snapshot<'a> {
    V1 {
        applied_index: LogIndex,
        producers_max: u64,
        streams: Cow<'a, BTreeMap<String, StreamRuns>>,
        producers: Cow<'a, BTreeMap<String, LastWrite>>,
    },
}

pub(super) fn encode(state: &Streams) -> Bytes {
    let snapshot = Snapshot::V1 {
        applied_index: state.applied_index,
        producers_max: state.producers.producers_max() as u64,
        streams: Cow::Borrowed(state.index.streams()),
        producers: Cow::Borrowed(state.producers.by_id()),
    };
    let bytes = bincode::DefaultOptions::new()
        .reject_trailing_bytes()
        .serialize(&snapshot)
        .expect("serde-derived maps of strings and integers always encode");
    Bytes::from(bytes)
}

pub(super) fn decode(bytes: &[u8]) -> Result<Streams, SnapshotError> {
    let snapshot: Snapshot<'static> = bincode::DefaultOptions::new()
        .reject_trailing_bytes()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)?;
    let Snapshot::V1 {
        applied_index,
        producers_max,
        streams,
        producers,
    } = snapshot;
    let streams = streams.into_owned();
    check_streams(&streams, applied_index)?;
    let producers = restore_producers(producers.into_owned(), producers_max, applied_index)?;
    Ok(Streams {
        applied_index,
        index: Index::from_streams(streams),
        producers,
    })
}

fn check_streams(
    streams: &BTreeMap<String, StreamRuns>,
    applied_index: LogIndex,
) -> Result<(), SnapshotError> {
    for (name, runs) in streams {
        // Apply checks only a new stream's name (`append.rs`): a restored one must be valid.
        if let Err(reason) = validate_stream_name(name) {
            return Err(inconsistent(format!("stream {name:?}: {reason}")));
        }
        if !runs.is_consistent() {
            return Err(inconsistent(format!(
                "the runs of stream {name:?} do not line up"
            )));
        }
        // Runs are in log order, so the last is the newest.
        if runs
            .runs
            .last()
            .is_some_and(|r| r.log_index > applied_index)
        {
            return Err(inconsistent(format!(
                "stream {name:?} has records past the applied index {applied_index}"
            )));
        }
    }
    Ok(())
}

fn restore_producers(
    by_id: BTreeMap<String, LastWrite>,
    producers_max: u64,
    applied_index: LogIndex,
) -> Result<Producers, SnapshotError> {
    let producers_max = usize::try_from(producers_max)
        .map_err(|_| inconsistent(format!("producers_max {producers_max} is too large")))?;
    let producers = Producers::from_entries(by_id, producers_max)
        .ok_or_else(|| inconsistent("the producer table breaks its invariants".to_string()))?;
    if producers
        .newest_write()
        .is_some_and(|w| w.log_index > applied_index)
    {
        let reason = format!("a producer wrote past the applied index {applied_index}");
        return Err(inconsistent(reason));
    }
    Ok(producers)
}

fn inconsistent(reason: String) -> SnapshotError {
    SnapshotError::Inconsistent(reason)
}
