//! Opening a WAL directory: find the segments, verify every record, and cut a torn tail.
//!
//! The rules, in order:
//! 1. Leftover `*.wal.tmp` files (a segment being made, the spare) are deleted.
//! 2. The segment names must form one contiguous log (`segments.rs`), else refuse.
//! 3. Every record of a sealed segment, up to the last index in its name, must be valid and
//!    terms must never decrease; else refuse, naming the file and byte offset. A sealed
//!    segment was synced before it was renamed, so damage there is corruption, not a crash.
//! 4. In the active segment, records are read until the first one that is not valid. If any
//!    valid record with a higher index follows it (probed at every 8-byte-aligned offset),
//!    the bad record is corruption in the middle of the log: refuse. Otherwise the log ends
//!    there: at zeros (a clean end), at stale bytes of a recycled segment file (records of
//!    older entries under another salt), or at a record torn by a crash, which is reported
//!    and zeroed. Bytes after that need no cleaning: the probe just showed none of them is a
//!    valid record under this segment's salt, and only new appends write there.
//! 5. What was recovered is synced, so everything reported is durable (after a kill -9 it may
//!    have been only in the page cache).
//!
//! A caveat of rule 4: after a power loss (not a process crash) the kernel may have written
//! back a later unflushed page but not an earlier one. That looks exactly like corruption
//! followed by good data, and recovery refuses it: telling the two apart would need to know
//! which records had been flushed, and refusing never drops a committed entry.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::active::ActiveSegment;
use crate::error::{Error, Result};
use crate::io::Io;
use crate::log_state::{LogState, SegmentView};
use crate::record::{self, encoded_record_bytes, Invalid, ALIGN_BYTES, HEADER_BYTES};
use crate::segment::{self, SegmentMap, SEGMENT_HEADER_BYTES};
use crate::segments::{self, SegmentFile};
use crate::terms::TermRuns;

/// What `Wal::open` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log.
    pub segment_count: usize,
    pub first_index: u64,
    pub last_index: u64,
    /// The torn tail that was cut off the active segment, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Leftover temporary files that were deleted.
    pub removed_temp_files: Vec<PathBuf>,
}

/// A cut made at the end of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the first invalid record started: the new end of the log.
    pub offset: u64,
    /// Why the record there is not valid.
    pub reason: String,
    /// Bytes of garbage from `offset` on that were overwritten with zeros.
    pub bytes_zeroed: u64,
}

/// The recovered log, ready for `Wal` to own.
pub(crate) struct Recovered {
    pub state: LogState,
    pub active: Option<ActiveSegment>,
    pub report: RecoveryReport,
}

/// Records read from the start of a segment until the first invalid one (or a limit).
struct Scan {
    offsets: Vec<u32>,
    end_offset: u64,
    /// The first invalid record, unless the scan stopped at its limit.
    stopped_by: Option<Invalid>,
}

pub(crate) fn recover(io: &Io, dir: &Path) -> Result<Recovered> {
    let listing = segments::list(io, dir)?;
    for path in &listing.temp_files {
        io.remove(path)?;
    }
    if !listing.temp_files.is_empty() {
        io.fsync_dir(dir)?;
    }
    let mut state = LogState {
        segments: VecDeque::new(),
        terms: TermRuns::default(),
        first_index: listing.segments.first().map_or(1, |s| s.first_index),
        last_index: 0,
        poisoned: None,
    };
    state.last_index = state.first_index - 1;
    let mut active = None;
    let mut torn_tail = None;
    for file in &listing.segments {
        match file.last_index {
            Some(last_index) => {
                state
                    .segments
                    .push_back(open_sealed(io, file, last_index, &mut state.terms)?)
            }
            None => {
                let (view, segment, tail) = open_active(io, file, &mut state.terms)?;
                state.segments.push_back(view);
                active = Some(segment);
                torn_tail = tail;
            }
        }
        state.last_index = state
            .segments
            .back()
            .and_then(SegmentView::last_index)
            .unwrap_or(state.last_index);
    }
    state.assert_consistent();
    let report = RecoveryReport {
        segment_count: state.segments.len(),
        first_index: state.first_index,
        last_index: state.last_index,
        torn_tail,
        removed_temp_files: listing.temp_files,
    };
    Ok(Recovered {
        state,
        active,
        report,
    })
}

/// Maps a sealed segment and requires every record `first..=last_index` to be valid.
fn open_sealed(
    io: &Io,
    file: &SegmentFile,
    last_index: u64,
    terms: &mut TermRuns,
) -> Result<SegmentView> {
    let segment::OpenSegment { header, map, .. } =
        segment::open_existing(io, &file.path, file.first_index, false)?;
    let seed = header.crc_seed();
    let scan = scan(
        &map,
        &file.path,
        seed,
        file.first_index,
        Some(last_index),
        terms,
    )?;
    if let Some(invalid) = scan.stopped_by {
        let index = file.first_index + scan.offsets.len() as u64;
        return Err(Error::CorruptRecord {
            path: file.path.clone(),
            offset: scan.end_offset,
            reason: format!("entry {index} of a sealed segment: {invalid}"),
        });
    }
    Ok(SegmentView {
        first_index: file.first_index,
        path: file.path.clone(),
        map: Arc::new(map),
        crc_seed: seed,
        offsets: scan.offsets,
        end_offset: scan.end_offset,
    })
}

/// Maps the active segment, keeps its valid records, and cuts a torn tail (see module doc).
fn open_active(
    io: &Io,
    file: &SegmentFile,
    terms: &mut TermRuns,
) -> Result<(SegmentView, ActiveSegment, Option<TornTail>)> {
    let segment::OpenSegment {
        header,
        map,
        file: handle,
    } = segment::open_existing(io, &file.path, file.first_index, true)?;
    let seed = header.crc_seed();
    let scan = scan(&map, &file.path, seed, file.first_index, None, terms)?;
    let next_index = file.first_index + scan.offsets.len() as u64;
    if let Some((offset, index)) = probe_for_records(&map, seed, scan.end_offset, next_index) {
        let reason = scan
            .stopped_by
            .map_or("no record".to_string(), |i| i.to_string());
        return Err(Error::CorruptRecord {
            path: file.path.clone(),
            offset: scan.end_offset,
            reason: format!(
                "{reason}, yet a valid record of entry {index} follows at byte {offset}, \
                 so this is not a torn tail; refusing to drop it"
            ),
        });
    }
    let torn_span = torn_record_span(&map, scan.end_offset, file.first_index);
    let torn_tail = match torn_span {
        0 => None,
        span => Some(TornTail {
            path: file.path.clone(),
            offset: scan.end_offset,
            reason: scan.stopped_by.map_or(String::new(), |i| i.to_string()),
            bytes_zeroed: zero(io, &handle, &file.path, scan.end_offset, span)?,
        }),
    };
    // Whatever survived a process crash may still be only in the page cache: make it durable.
    io.fdatasync(&handle, &file.path)?;
    io.fsync_dir(segment::parent(&file.path))?;
    let map = Arc::new(map);
    let active = ActiveSegment::new(
        file.first_index,
        file.path.clone(),
        handle,
        Arc::clone(&map),
        seed,
        scan.offsets.len() as u64,
        scan.end_offset,
    );
    let view = SegmentView {
        first_index: file.first_index,
        path: file.path.clone(),
        map,
        crc_seed: seed,
        offsets: scan.offsets,
        end_offset: scan.end_offset,
    };
    Ok((view, active, torn_tail))
}

/// Reads records from the first one on, until `last_index` or the first invalid record.
fn scan(
    map: &SegmentMap,
    path: &Path,
    seed: u32,
    first_index: u64,
    last_index: Option<u64>,
    terms: &mut TermRuns,
) -> Result<Scan> {
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut offsets = Vec::new();
    let mut index = first_index;
    let mut stopped_by = None;
    while last_index.is_none_or(|last| index <= last) {
        let record = match record::decode(map.bytes(offset, map.len_bytes()), seed, index) {
            Ok(record) => record,
            Err(invalid) => {
                stopped_by = Some(invalid);
                break;
            }
        };
        if record.term < terms.last_term() {
            return Err(Error::CorruptRecord {
                path: path.to_path_buf(),
                offset,
                reason: format!(
                    "entry {index} has term {}, lower than the term {} before it",
                    record.term,
                    terms.last_term()
                ),
            });
        }
        terms.push(index, record.term);
        offsets.push(u32::try_from(offset).expect("segments are under 4 GiB"));
        offset += record.encoded_bytes as u64;
        index += 1;
    }
    Ok(Scan {
        offsets,
        end_offset: offset,
        stopped_by,
    })
}

/// The first valid record at an aligned offset from `start` on whose index is at least
/// `index_min`: evidence that the log goes on past a bad record.
fn probe_for_records(
    map: &SegmentMap,
    seed: u32,
    start: u64,
    index_min: u64,
) -> Option<(u64, u64)> {
    let end = map.len_bytes();
    let mut offset = start;
    while offset + HEADER_BYTES as u64 <= end {
        if let Some(index) = record::looks_valid(map.bytes(offset, end), seed, index_min) {
            return Some((offset, index));
        }
        offset += ALIGN_BYTES as u64;
    }
    None
}

/// The bytes of the torn record at `start`, or 0 if there is none: the segment ends cleanly
/// there (zeros), or what follows is stale data of a recycled segment file (records of entries
/// before the segment's first, under another salt; never valid here, so harmless).
fn torn_record_span(map: &SegmentMap, start: u64, first_index: u64) -> u64 {
    let rest = map.bytes(start, map.len_bytes());
    let header = &rest[..rest.len().min(HEADER_BYTES)];
    if header.iter().all(|&b| b == 0) {
        return 0;
    }
    match record::peek(rest) {
        Some((_, index)) if index < first_index => 0,
        Some((payload_bytes, _)) => {
            (encoded_record_bytes(payload_bytes as usize) as u64).min(rest.len() as u64)
        }
        None => rest.len() as u64,
    }
}

/// Overwrites `bytes` bytes at `start` with zeros and syncs them, so the next append starts
/// on clean bytes and the torn record is not reported again. Returns `bytes`.
fn zero(io: &Io, file: &File, path: &Path, start: u64, bytes: u64) -> Result<u64> {
    // No reader exists yet, and these bytes were never published.
    io.write_at(file, path, &vec![0u8; bytes as usize], start)?;
    io.fdatasync(file, path)?;
    Ok(bytes)
}
