//! The writer's view of the active segment: where the next record goes and how far the
//! bytes are flushed.
//!
//! Records of a batch are encoded into `pending` and written to the file with one `pwrite`
//! before they are published; readers see them through the (read-only) map of the same page
//! cache. Offsets within the file: `SEGMENT_HEADER_BYTES ≤ durable_offset ≤ written_offset ≤
//! end_offset() ≤ file size`. Bytes before `durable_offset` are known to be on disk, and every
//! record is stamped with `durable_offset` as it stands when the record is encoded (its durable
//! watermark, `record.rs`). `durable_offset` only grows, and only once a sync that covered it
//! has returned, so a stamp never claims more than was on disk when the record was written.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::io::Io;
use crate::record;
use crate::segment::{SegmentMap, SEGMENT_HEADER_BYTES};
use crate::NewEntry;

#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub first_index: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    pub map: Arc<SegmentMap>,
    pub crc_seed: u32,
    pub entry_count: u64,
    /// Bytes before this are in the file (the page cache, at least).
    pub written_offset: u64,
    /// Bytes before this are on disk. Always a record boundary. Only `mark_durable` moves it.
    durable_offset: u64,
    /// Encoded records not yet written to the file; they follow `written_offset`.
    pending: Vec<u8>,
}

impl ActiveSegment {
    /// An active segment whose records end at `written_offset`, all of them durable.
    pub(crate) fn new(
        first_index: u64,
        path: PathBuf,
        file: File,
        map: Arc<SegmentMap>,
        crc_seed: u32,
        entry_count: u64,
        written_offset: u64,
    ) -> ActiveSegment {
        assert!(written_offset >= SEGMENT_HEADER_BYTES && written_offset <= map.len_bytes());
        ActiveSegment {
            first_index,
            path,
            file: Arc::new(file),
            map,
            crc_seed,
            entry_count,
            written_offset,
            durable_offset: written_offset,
            pending: Vec::new(),
        }
    }

    /// The index the next record here must have.
    pub(crate) fn next_index(&self) -> u64 {
        self.first_index + self.entry_count
    }

    /// Where the next record starts: after the written and the pending bytes.
    pub(crate) fn end_offset(&self) -> u64 {
        self.written_offset + self.pending.len() as u64
    }

    /// True if a record of `encoded_bytes` for entry `index` can go here next.
    pub(crate) fn fits(&self, index: u64, encoded_bytes: u64) -> bool {
        index == self.next_index() && self.end_offset() + encoded_bytes <= self.map.len_bytes()
    }

    /// Encodes `entry` after the pending records and returns where it starts in the file.
    pub(crate) fn encode(&mut self, entry: &NewEntry<'_>, encoded_bytes: u64) -> u32 {
        assert!(self.fits(entry.index, encoded_bytes), "record does not fit");
        let start = self.end_offset();
        let buffer_start = self.pending.len();
        self.pending
            .resize(buffer_start + encoded_bytes as usize, 0);
        let watermark = u32::try_from(self.durable_offset).expect("segments are under 4 GiB");
        record::encode(
            &mut self.pending[buffer_start..],
            self.crc_seed,
            entry,
            watermark,
        );
        self.entry_count += 1;
        u32::try_from(start).expect("segments are under 4 GiB")
    }

    /// Bytes before this are known to be on disk.
    pub(crate) fn durable_offset(&self) -> u64 {
        self.durable_offset
    }

    /// Records that a sync which started after `offset` was written has returned: bytes
    /// before `offset` are on disk. Never moves backwards.
    pub(crate) fn mark_durable(&mut self, offset: u64) {
        assert!(
            offset <= self.written_offset,
            "durable offset {offset} past the written offset {}",
            self.written_offset
        );
        self.durable_offset = self.durable_offset.max(offset);
    }

    /// Writes the pending records to the file, so they can be published.
    pub(crate) fn write_pending(&mut self, io: &Io) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        io.write_at(&self.file, &self.path, &self.pending, self.written_offset)?;
        self.written_offset += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}
