//! What a `Wal` can be tuned with, and the checks that the settings fit together.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::FaultInjector;
use crate::record::encoded_record_bytes;
use crate::segment::SEGMENT_HEADER_BYTES;

/// Settings for `Wal::open`. `Options::default()` is what production uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// Size of each segment file, preallocated when it is made. Default 64 MiB. At most
    /// 4 GiB (record offsets are stored as `u32`). Existing segments keep their own size.
    pub segment_bytes: u64,
    /// The largest payload one entry may carry. Default 8 MiB. A record must fit in a segment.
    pub payload_bytes_max: u32,
    /// Keep spare segment files whose blocks are already written, so a segment roll costs a
    /// rename and the new segment's flushes have no extent conversion to record (on ext4
    /// that about halves fdatasync latency): compacted segments are recycled, and when none
    /// is at hand a background thread writes zeros over a new file. Default true. When false,
    /// or when no spare could be made, a segment is made inline and only fallocate'd.
    pub spare_segments: bool,
    /// Test seam: fail a chosen system call (see `FaultInjector`). `None` in production.
    pub faults: Option<Arc<FaultInjector>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_bytes: 64 << 20,
            payload_bytes_max: 8 << 20,
            spare_segments: true,
            faults: None,
        }
    }
}

impl Options {
    /// Refuses settings that cannot work: a record that does not fit in a segment, or a
    /// segment too large for `u32` offsets.
    pub(crate) fn validate(&self) -> Result<()> {
        let record_bytes_max = encoded_record_bytes(self.payload_bytes_max as usize) as u64;
        if SEGMENT_HEADER_BYTES + record_bytes_max > self.segment_bytes {
            return Err(Error::InvalidOptions(format!(
                "a {}-byte payload needs {record_bytes_max} bytes, which does not fit in a \
                 {}-byte segment after its {SEGMENT_HEADER_BYTES}-byte header",
                self.payload_bytes_max, self.segment_bytes
            )));
        }
        if self.segment_bytes > u64::from(u32::MAX) {
            return Err(Error::InvalidOptions(format!(
                "segment_bytes {} is over the 4 GiB limit",
                self.segment_bytes
            )));
        }
        Ok(())
    }
}
