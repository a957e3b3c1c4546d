//! Dropping entries: the suffix (Raft conflict resolution) and whole old segments
//! (compaction after a snapshot).
//!
//! Both only delete or rename files, never rewrite bytes, so readers' slices survive. Each
//! delete or rename is followed by a directory fsync before the next one, and the order is
//! chosen so a crash at any point leaves one contiguous log that recovery accepts:
//! truncation deletes newest-first (leaving a prefix), compaction oldest-first (a suffix).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::segments;
use crate::spare::SpareFile;
use crate::Wal;

impl Wal {
    /// Drops every entry with an index ≥ `index` (none if `index > last_index()`; all of
    /// them if `index ≤ first_index()`). Durable before it returns: entries before `index`
    /// are flushed, and the dropped ones cannot come back after a crash. The next append
    /// continues at `index` (or anywhere, if the log is now empty).
    pub fn truncate_from(&mut self, index: u64) -> Result<()> {
        self.check_poisoned()?;
        if index > self.last_index() {
            return Ok(());
        }
        self.run(|wal| wal.truncate_segments(index))
    }

    /// Deletes every segment whose entries are all below `index`, except the one holding
    /// the newest entry: compaction never empties the log (`truncate_from` does). Entries of
    /// a segment that also holds `index` or later stay, so `first_index()` may stay below
    /// `index`.
    pub fn compact_below(&mut self, index: u64) -> Result<()> {
        self.check_poisoned()?;
        self.run(|wal| wal.delete_oldest_segments(index))
    }

    fn truncate_segments(&mut self, index: u64) -> Result<()> {
        // The segment that keeps entries below `index` gets a sealed name, which promises
        // its records are on disk; and the caller was promised the kept prefix is durable.
        self.sync_active()?;
        // From here an in-flight flush job must not advance `durable_index` (flush.rs).
        self.generation += 1;
        self.active = None;
        while let Some(path) = self.newest_segment_from(index) {
            self.io.remove(&path)?;
            self.io.fsync_dir(&self.dir)?;
            self.shared.write().segments.pop_back();
        }
        let holding = {
            let state = self.shared.read();
            let newest = state.segments.back();
            newest.and_then(|s| Some((s.first_index, s.last_index()?, s.path.clone())))
        };
        if let Some((first_index, last_index, path)) = holding.filter(|h| h.1 >= index) {
            let sealed_path = self.dir.join(segments::sealed_name(first_index, index - 1));
            self.io.rename(&path, &sealed_path)?;
            self.io.fsync_dir(&self.dir)?;
            let mut state = self.shared.write();
            let view = state
                .segments
                .back_mut()
                .expect("the segment holding index");
            view.truncate_from(index);
            view.path = sealed_path;
            assert!(last_index >= index);
        }
        let mut state = self.shared.write();
        state.terms.truncate_from(index);
        state.last_index = index.max(1) - 1;
        if state.is_empty() {
            state.first_index = state.last_index + 1;
        }
        state.assert_consistent();
        self.durable_index = state.last_index;
        Ok(())
    }

    /// The path of the newest segment if all of it is at or after `index`.
    fn newest_segment_from(&self, index: u64) -> Option<std::path::PathBuf> {
        let state = self.shared.read();
        let newest = state.segments.back()?;
        (newest.first_index >= index).then(|| newest.path.clone())
    }

    fn delete_oldest_segments(&mut self, index: u64) -> Result<()> {
        loop {
            let mut state = self.shared.write();
            let last_index = state.last_index;
            let deletable = state.segments.front().is_some_and(|oldest| {
                oldest
                    .last_index()
                    .is_some_and(|last| last < index && last < last_index)
            });
            if !deletable {
                return Ok(());
            }
            // Out of the index first, so no reader can take a new slice of it.
            let oldest = state.segments.pop_front().expect("a deletable segment");
            let first_index = state
                .segments
                .front()
                .expect("the newest segment stays")
                .first_index;
            state.first_index = first_index;
            state.terms.compact_below(first_index);
            state.assert_consistent();
            drop(state);
            let path = oldest.path.clone();
            // No reader holds a slice of it: its written blocks can be the next segment.
            let recyclable = Arc::try_unwrap(oldest.map)
                .is_ok_and(|map| map.len_bytes() == self.spare.segment_bytes());
            match self.spare.recycle_path().filter(|_| recyclable) {
                Some(spare_path) => self.recycle(&path, spare_path)?,
                None => {
                    self.io.remove(&path)?;
                    self.io.fsync_dir(&self.dir)?;
                }
            }
        }
    }

    /// Renames a compacted segment to be a spare (a delete, as far as the log goes).
    fn recycle(&mut self, path: &Path, spare_path: PathBuf) -> Result<()> {
        self.io.rename(path, &spare_path)?;
        self.io.fsync_dir(&self.dir)?;
        let file = self.io.open(&spare_path, true)?;
        self.spare.put_recycled(SpareFile {
            path: spare_path,
            file,
        });
        Ok(())
    }
}
