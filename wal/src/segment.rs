//! One segment file: its header, its shared memory map, and how a new one is made.
//!
//! ```text
//!  byte 0                8         12        16                 24                 32
//!       +----------------+---------+---------+------------------+------------------+
//!       | magic          | version | crc32c  | first_index      | salt             |
//!       | "RLOGWAL\0"    | u32 LE  | u32 LE  | u64 LE           | u64 LE           |
//!       +----------------+---------+---------+------------------+------------------+
//!  byte 32: records (see record.rs), back to back, each 8-byte aligned; then zeros.
//! ```
//!
//! The header CRC covers bytes 0..12 and 16..32. `first_index` must agree with the file
//! name, which catches a file copied or renamed by hand. `salt` is random per segment and
//! seeds every record checksum in it.
//!
//! A segment is made under a temporary name, sized, given its header, synced, and only then
//! renamed to its final name (and the directory fsynced): a segment file with a final name
//! always has a durable header, so a bad header is corruption, never a crash mid-create.
//!
//! The map is read-only and shared (`Arc<SegmentMap>`) by the writer and readers. The writer
//! fills the file with `pwrite` (into the same page cache the map shows), never through the
//! map: a write fault per page on a shared file map costs more than the copy it saves (see
//! BENCHMARKS.md). Bytes are written once, before the offsets that make them readable are
//! published, and never again: truncation renames a segment instead of rewriting it, and
//! deletion only unlinks the file, whose pages stay mapped while anyone holds the `Arc`.
//! Compaction reuses a file as a spare only when it holds the last `Arc` (`spare.rs`).
//! That is what keeps readers' zero-copy slices valid.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::io::Io;
use crate::record;

/// Bytes in a segment header; the first record starts here.
pub const SEGMENT_HEADER_BYTES: u64 = 32;
const MAGIC: &[u8; 8] = b"RLOGWAL\0";
/// 2: records carry a durable watermark (`record.rs`). Version 1 files are refused.
const VERSION: u32 = 2;

/// A segment's memory map. Bytes in it are written at most once (see the module doc).
#[derive(Debug)]
pub(crate) struct SegmentMap {
    map: MmapRaw,
}

impl SegmentMap {
    pub(crate) fn new(map: MmapRaw) -> SegmentMap {
        SegmentMap { map }
    }

    pub(crate) fn len_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// The bytes `start..end`.
    ///
    /// Callers only ask for bytes that are no longer written: published records (written
    /// before their offsets were published under the state lock), or, during recovery,
    /// bytes of a file that nothing writes.
    pub(crate) fn bytes(&self, start: u64, end: u64) -> &[u8] {
        assert!(
            start <= end && end <= self.len_bytes(),
            "map range {start}..{end}"
        );
        // SAFETY: the range is inside the mapping (asserted), the mapping lives as long as
        // `self`, and by the contract above no one writes these bytes while they are borrowed.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(start as usize),
                (end - start) as usize,
            )
        }
    }
}

/// A segment's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_index: u64,
    pub salt: u64,
}

impl SegmentHeader {
    fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES as usize];
        bytes[0..8].copy_from_slice(MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.first_index.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.salt.to_le_bytes());
        let crc = header_crc(&bytes);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Parses and checks a header; the error text says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        if bytes.len() < SEGMENT_HEADER_BYTES as usize {
            return Err(format!("file is only {} bytes long", bytes.len()));
        }
        if &bytes[0..8] != MAGIC {
            return Err("bad magic: not a raftlog WAL segment".to_string());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let stored = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if stored != header_crc(bytes) {
            return Err("header checksum mismatch".to_string());
        }
        Ok(SegmentHeader {
            first_index: u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
            salt: u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")),
        })
    }

    pub(crate) fn crc_seed(&self) -> u32 {
        record::crc_seed(self.salt)
    }
}

fn header_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&bytes[0..12]), &bytes[16..32])
}

/// A random salt from the standard library's OS-seeded hasher keys (no extra dependency).
fn random_salt() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// A freshly made segment: its header durable, under its final name, open for writing.
pub(crate) struct NewSegment {
    pub header: SegmentHeader,
    pub map: SegmentMap,
}

/// Turns a sized, unnamed file (`temp_path`) into the active segment `final_path`:
/// write and sync the header, map it, rename, fsync the directory.
pub(crate) fn install(
    io: &Io,
    file: &File,
    temp_path: &Path,
    final_path: &Path,
    first_index: u64,
) -> Result<NewSegment> {
    let header = SegmentHeader {
        first_index,
        salt: random_salt(),
    };
    io.write_at(file, temp_path, &header.encode(), 0)?;
    io.fdatasync(file, temp_path)?;
    let map = SegmentMap::new(io.map(file, temp_path)?);
    let bytes_total = map.len_bytes();
    assert!(
        bytes_total > SEGMENT_HEADER_BYTES,
        "segment of {bytes_total} bytes"
    );
    io.rename(temp_path, final_path)?;
    io.fsync_dir(parent(final_path))?;
    Ok(NewSegment { header, map })
}

/// Makes a segment file of `segment_bytes` at `temp_path` the quick way: sized and
/// preallocated, not zero-written (see `spare.rs` for the zero-written kind).
pub(crate) fn create_preallocated(io: &Io, temp_path: &Path, segment_bytes: u64) -> Result<File> {
    let file = io.create(temp_path)?;
    io.set_len(&file, temp_path, segment_bytes)?;
    io.fallocate(&file, temp_path, segment_bytes)?;
    Ok(file)
}

/// An existing segment, opened and mapped, its header checked against the file name.
pub(crate) struct OpenSegment {
    pub header: SegmentHeader,
    pub map: SegmentMap,
    pub file: File,
}

/// Opens and maps an existing segment file (writable for the active segment) and checks its
/// header against the name's first index.
pub(crate) fn open_existing(
    io: &Io,
    path: &Path,
    first_index: u64,
    writable: bool,
) -> Result<OpenSegment> {
    let file = io.open(path, writable)?;
    let bytes_total = io.file_bytes(&file, path)?;
    let corrupt = |reason: String| Error::CorruptSegment {
        path: path.to_path_buf(),
        reason,
    };
    if bytes_total <= SEGMENT_HEADER_BYTES {
        return Err(corrupt(format!("file is only {bytes_total} bytes long")));
    }
    let map = SegmentMap::new(io.map(&file, path)?);
    let header = SegmentHeader::decode(map.bytes(0, SEGMENT_HEADER_BYTES)).map_err(corrupt)?;
    if header.first_index != first_index {
        return Err(corrupt(format!(
            "header says the first entry is {}, the file name says {first_index}",
            header.first_index
        )));
    }
    Ok(OpenSegment { header, map, file })
}

/// The directory a segment lives in.
pub(crate) fn parent(path: &Path) -> &Path {
    path.parent().expect("segment paths have a directory")
}
