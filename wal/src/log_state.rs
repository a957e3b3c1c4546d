//! The in-memory index of the log, shared by the writer and every reader.
//!
//! For each segment: its map, and the byte offset of every record in it, so `read(index)` is
//! a binary search over segments plus an array lookup. Terms live as runs (`terms.rs`). The
//! writer changes this under the write lock only after the bytes it describes are in the map,
//! so a reader that finds an offset here finds a complete record there.
//!
//! Positions: `first_index ≤ last_index + 1`; the log is empty exactly when they are equal
//! minus one. Entries `first_index..=last_index` are all present, in the segments in order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::segment::SegmentMap;
use crate::terms::TermRuns;

/// One segment as readers see it.
#[derive(Debug)]
pub(crate) struct SegmentView {
    pub first_index: u64,
    /// The file's current name (it changes when the segment is sealed).
    pub path: PathBuf,
    pub map: Arc<SegmentMap>,
    pub crc_seed: u32,
    /// Where each record starts: entry `first_index + k` at `offsets[k]`.
    pub offsets: Vec<u32>,
    /// Where the last record ends.
    pub end_offset: u64,
}

impl SegmentView {
    /// The index of the newest entry, if the segment holds any.
    pub(crate) fn last_index(&self) -> Option<u64> {
        let entry_count = self.offsets.len() as u64;
        (entry_count > 0).then(|| self.first_index + entry_count - 1)
    }

    /// Forgets entries `index..` of this segment.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        assert!(
            index >= self.first_index,
            "truncating segment {} at {index}",
            self.first_index
        );
        let keep = (index - self.first_index) as usize;
        if keep < self.offsets.len() {
            self.end_offset = self.offsets[keep].into();
            self.offsets.truncate(keep);
        }
    }
}

/// Where one record's bytes are.
pub(crate) struct Location {
    pub map: Arc<SegmentMap>,
    pub path: PathBuf,
    pub crc_seed: u32,
    pub start: u64,
    pub end: u64,
}

/// The whole log's index.
#[derive(Debug)]
pub(crate) struct LogState {
    pub segments: VecDeque<SegmentView>,
    pub terms: TermRuns,
    pub first_index: u64,
    pub last_index: u64,
    /// Set when the writer hits an I/O error; readers stop too.
    pub poisoned: Option<String>,
}

impl LogState {
    pub(crate) fn is_empty(&self) -> bool {
        self.last_index < self.first_index
    }

    /// Fails if the WAL is poisoned.
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(first) => Err(Error::Poisoned {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        if index < self.first_index || index > self.last_index {
            return None;
        }
        self.terms.term_at(index)
    }

    /// The first entry held with `term`, if the log holds any.
    pub(crate) fn first_index_of_term(&self, term: u64) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        self.terms.first_index_of(term)
    }

    /// Where entry `index` is, or `None` if the log does not hold it.
    pub(crate) fn locate(&self, index: u64) -> Option<Location> {
        if index < self.first_index || index > self.last_index {
            return None;
        }
        let after = self.segments.partition_point(|s| s.first_index <= index);
        let segment = &self.segments[after.checked_sub(1)?];
        let k = (index - segment.first_index) as usize;
        let start = u64::from(*segment.offsets.get(k)?);
        let end = segment
            .offsets
            .get(k + 1)
            .map_or(segment.end_offset, |&next| next.into());
        Some(Location {
            map: Arc::clone(&segment.map),
            path: segment.path.clone(),
            crc_seed: segment.crc_seed,
            start,
            end,
        })
    }

    /// Checks the position invariants; cheap enough to run after every change.
    pub(crate) fn assert_consistent(&self) {
        assert!(
            self.first_index <= self.last_index + 1,
            "first {} last {}",
            self.first_index,
            self.last_index
        );
        let held: u64 = self.segments.iter().map(|s| s.offsets.len() as u64).sum();
        assert_eq!(
            held,
            self.last_index + 1 - self.first_index,
            "entries held vs positions"
        );
        if let Some(front) = self.segments.front() {
            assert!(
                self.is_empty() || front.first_index == self.first_index,
                "front segment"
            );
        }
    }
}

/// The lock around the index. Readers hold it only to copy a location out.
#[derive(Debug)]
pub(crate) struct Shared {
    state: RwLock<LogState>,
}

impl Shared {
    pub(crate) fn new(state: LogState) -> Arc<Shared> {
        Arc::new(Shared {
            state: RwLock::new(state),
        })
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, LogState> {
        // A panic while holding the lock already broke an invariant; propagate it.
        self.state
            .read()
            .expect("WAL state lock poisoned by a panic")
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, LogState> {
        self.state
            .write()
            .expect("WAL state lock poisoned by a panic")
    }
}
