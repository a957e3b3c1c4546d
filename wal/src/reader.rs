//! Reading the log concurrently with the writer, as zero-copy slices of the segment maps.
//!
//! A `WalReader` is a cheap handle (`Clone + Send + Sync`) for replicators and the apply
//! loop. It sees every appended entry, flushed or not (Raft ships entries to followers while
//! the leader's own flush runs, thesis §10.2.1). Each payload is a `Bytes` whose owner holds
//! an `Arc` of the segment's map, so it stays valid and unchanged after the entry is
//! truncated or its segment compacted away: those only rename or unlink files, and the map
//! lives until the last slice is dropped.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::log_state::{Location, Shared};
use crate::record::{self, HEADER_BYTES};
use crate::segment::SegmentMap;

/// One entry read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub term: u64,
    pub kind: u8,
    /// A zero-copy slice of the segment map.
    pub payload: Bytes,
}

/// A read handle on the log; see the module doc.
#[derive(Clone, Debug)]
pub struct WalReader {
    shared: Arc<Shared>,
}

/// Keeps a segment map alive for as long as a payload slice of it exists.
struct MapSlice {
    map: Arc<SegmentMap>,
    start: u64,
    end: u64,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        self.map.bytes(self.start, self.end)
    }
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>) -> WalReader {
        WalReader { shared }
    }

    /// Entry `index`, or `None` if the log does not hold it (compacted, or not yet written).
    pub fn read(&self, index: u64) -> Result<Option<StoredEntry>> {
        let location = {
            let state = self.shared.read();
            state.check_poisoned()?;
            state.locate(index)
        };
        location.map(|l| decode_at(l, index)).transpose()
    }

    /// Entries `from..=to_inclusive` that the log holds, in order, stopping before the one
    /// that would take the payload total past `bytes_max` — but always at least one entry if
    /// the log holds `from`, so a large entry cannot stall a replicator. Empty if the log does
    /// not hold `from`.
    pub fn read_range(
        &self,
        from: u64,
        to_inclusive: u64,
        bytes_max: u64,
    ) -> Result<Vec<StoredEntry>> {
        let mut locations = Vec::new();
        {
            let state = self.shared.read();
            state.check_poisoned()?;
            let mut payload_bytes_total = 0u64;
            for index in from..=to_inclusive.min(state.last_index) {
                let Some(location) = state.locate(index) else {
                    break;
                };
                // Only the length field is read here; the full check runs outside the lock.
                let header = location
                    .map
                    .bytes(location.start, location.start + HEADER_BYTES as u64);
                let (payload_bytes, _) = record::peek(header).expect("a published header");
                payload_bytes_total += u64::from(payload_bytes);
                if !locations.is_empty() && payload_bytes_total > bytes_max {
                    break;
                }
                locations.push((index, location));
            }
        }
        locations
            .into_iter()
            .map(|(index, l)| decode_at(l, index))
            .collect()
    }

    /// The term of entry `index`, if the log holds it.
    pub fn term_at(&self, index: u64) -> Result<Option<u64>> {
        let state = self.shared.read();
        state.check_poisoned()?;
        Ok(state.term_at(index))
    }

    /// The first entry the log holds with `term`, if any (see `Wal::first_index_of_term`).
    pub fn first_index_of_term(&self, term: u64) -> Result<Option<u64>> {
        let state = self.shared.read();
        state.check_poisoned()?;
        Ok(state.first_index_of_term(term))
    }

    /// The index of the oldest entry held (for an empty log, `last_index() + 1`).
    pub fn first_index(&self) -> u64 {
        self.shared.read().first_index
    }

    /// The index of the newest entry written, flushed or not (0 for a new, empty log).
    pub fn last_index(&self) -> u64 {
        self.shared.read().last_index
    }
}

/// Verifies the record at `location` and slices its payload out of the map.
fn decode_at(location: Location, index: u64) -> Result<StoredEntry> {
    let bytes = location.map.bytes(location.start, location.end);
    let record = record::decode(bytes, location.crc_seed, index).map_err(|invalid| {
        Error::CorruptRecord {
            path: location.path.clone(),
            offset: location.start,
            reason: invalid.to_string(),
        }
    })?;
    let payload_start = location.start + HEADER_BYTES as u64;
    let payload = Bytes::from_owner(MapSlice {
        map: location.map,
        start: payload_start,
        end: payload_start + record.payload_bytes as u64,
    });
    Ok(StoredEntry {
        index: record.index,
        term: record.term,
        kind: record.kind,
        payload,
    })
}
