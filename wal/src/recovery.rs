//! Opening a WAL directory: find the segments, verify every record, and cut a torn tail.
//!
//! The rules, in order:
//! 1. Leftover `*.wal.tmp` files (a segment being made, the spare) are deleted.
//! 2. The segment names must form one contiguous log (`segments.rs`), else refuse.
//! 3. Every record of a sealed segment, up to the last index in its name, must be valid and
//!    terms must never decrease; else refuse, naming the file and byte offset. A sealed
//!    segment was synced before it was renamed, so damage there is corruption, not a crash.
//! 4. In the active segment, records are read until the first one that is not valid, at
//!    offset `p`. Then every 8-byte-aligned offset from `p` to the end of the segment is
//!    probed for records valid under the segment's salt (any index from the segment's first
//!    on), and the largest durable watermark among them is taken (`record.rs`):
//!    - If a watermark is greater than `p`, the writer had seen a flush through past `p`
//!      complete before it wrote that record: the bad record was durable, so this is
//!      corruption of flushed data. Refuse, naming the file and `p`.
//!    - Otherwise `p` lies in the part of the segment that was never known durable, and
//!      whatever is wrong there is a crash's doing: a process crash leaves a record torn at
//!      the end, and a power loss may also leave holes, because the kernel writes dirty pages
//!      back in any order (a later page may reach the disk, an earlier one not). The log is
//!      cut at `p`: the torn record and every valid record found after `p` are overwritten
//!      with zeros and synced, and the cut is reported (`TornTail`). Zeroing those records
//!      matters: they are valid under this segment's salt, so once new appends at `p` line
//!      up with them again, a later recovery would read them as part of the log. Other bytes
//!      after `p` need no cleaning: they are not valid records here (zeros, or a recycled
//!      file's old records under another salt), and only new appends write there.
//! 5. What was recovered is synced, so everything reported is durable (after a kill -9 it may
//!    have been only in the page cache).
//!
//! Why rule 4 never drops a flushed record and never refuses a power loss: damage from a
//! crash lies at or after the segment's durable offset `d` at the time (a record boundary:
//! flushes cover whole batches), so `p ≥ d`, and no record carries a watermark above `d`,
//! which is at most `p`. What it cannot do: damage to records flushed by the last flush that
//! completed before the crash, when no record was written after that flush, leaves no
//! watermark behind it and is cut like a torn tail, just as a damaged last record always
//! was. Proving those durable would take a write after each flush, which the write path
//! does not pay for.
//!
//! Stale records never count as evidence. A recycled spare's old records are under another
//! salt. Records this segment held past an earlier cut were zeroed by that recovery.
//! Truncation never appends to the segment it cut (the next append starts a new segment
//! with a new salt), and bytes after a sealed segment's last index are never read.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::active::ActiveSegment;
use crate::error::{Error, Result};
use crate::io::Io;
use crate::log_state::{LogState, SegmentView};
use crate::record::{self, encoded_record_bytes, Decoded, Invalid, ALIGN_BYTES, HEADER_BYTES};
use crate::segment::{self, SegmentMap, SEGMENT_HEADER_BYTES};
use crate::segments::{self, SegmentFile};
use crate::terms::TermRuns;

/// Zeros for a cut are written in chunks of this size.
const ZERO_CHUNK_BYTES: u64 = 1 << 20;

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
    /// Bytes from `offset` on that were overwritten with zeros: the torn record, and every
    /// record after it that a power loss had left intact but that followed the hole.
    pub bytes_zeroed: u64,
    /// Valid records found after `offset` (written after the last flush, so never reported
    /// durable) that were dropped with the cut.
    pub records_dropped: u64,
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
    let cut = scan.end_offset;
    let beyond = probe_for_records(&map, seed, cut, file.first_index);
    let reason = describe_bad(&map, cut, scan.stopped_by.as_ref());
    refuse_if_flushed(&file.path, cut, &beyond, &reason)?;
    let zero_end = (cut + torn_record_span(&map, cut, file.first_index)).max(beyond.valid_end);
    let torn_tail = match zero_end - cut {
        0 => None,
        span => Some(TornTail {
            path: file.path.clone(),
            offset: cut,
            reason,
            bytes_zeroed: zero(io, &handle, &file.path, cut, span)?,
            records_dropped: beyond.record_count,
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
        cut,
    );
    let view = SegmentView {
        first_index: file.first_index,
        path: file.path.clone(),
        map,
        crc_seed: seed,
        offsets: scan.offsets,
        end_offset: cut,
    };
    Ok((view, active, torn_tail))
}

/// Why the record at `cut` is not valid, in words.
fn describe_bad(map: &SegmentMap, cut: u64, invalid: Option<&Invalid>) -> String {
    let header = map.bytes(cut, (cut + HEADER_BYTES as u64).min(map.len_bytes()));
    match invalid {
        _ if header.iter().all(|&b| b == 0) => "zeros where the next record would start".into(),
        Some(invalid) => invalid.to_string(),
        None => "no record".into(),
    }
}

/// Rule 4's test: refuses if a record past the bad one at `cut` proves, by its durable
/// watermark, that `cut` had been flushed.
fn refuse_if_flushed(path: &Path, cut: u64, beyond: &Beyond, reason: &str) -> Result<()> {
    let Some(evidence) = beyond.evidence.filter(|e| u64::from(e.watermark) > cut) else {
        return Ok(());
    };
    Err(Error::CorruptRecord {
        path: path.to_path_buf(),
        offset: cut,
        reason: format!(
            "{reason}, yet entry {} at byte {} was written after a flush had made the segment \
             durable through byte {}, so this record was flushed; refusing to drop it",
            evidence.index, evidence.offset, evidence.watermark
        ),
    })
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
    let mut previous_watermark = SEGMENT_HEADER_BYTES as u32;
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
        check_watermark(path, offset, &record, previous_watermark)?;
        previous_watermark = record.durable_watermark;
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

/// A valid record's watermark must lie between the previous record's and its own offset:
/// watermarks only grow, and a record is written after the flush it cites. A checksum-valid
/// record that breaks this is not a torn write; refuse.
fn check_watermark(path: &Path, offset: u64, record: &Decoded, previous: u32) -> Result<()> {
    let watermark = record.durable_watermark;
    if watermark >= previous && u64::from(watermark) <= offset {
        return Ok(());
    }
    Err(Error::CorruptRecord {
        path: path.to_path_buf(),
        offset,
        reason: format!(
            "entry {} claims the segment was durable through byte {watermark}, outside \
             {previous}..={offset} (the previous record's claim .. its own offset)",
            record.index
        ),
    })
}

/// A valid record found past the first bad one.
#[derive(Clone, Copy, Debug)]
struct Found {
    offset: u64,
    index: u64,
    watermark: u32,
}

/// What lies past the first bad record of the active segment.
#[derive(Debug)]
struct Beyond {
    /// The valid record with the largest watermark, if any.
    evidence: Option<Found>,
    /// Valid records found.
    record_count: u64,
    /// Where the last valid record found ends (`start` if none).
    valid_end: u64,
}

/// Probes every aligned offset from `start` on for records valid under `seed` with an index
/// of at least `index_min` (the segment's first: no record of this segment has a lower one),
/// skipping over each one found.
fn probe_for_records(map: &SegmentMap, seed: u32, start: u64, index_min: u64) -> Beyond {
    let end = map.len_bytes();
    let mut beyond = Beyond {
        evidence: None,
        record_count: 0,
        valid_end: start,
    };
    let mut offset = start;
    while offset + HEADER_BYTES as u64 <= end {
        let Some(record) = record::looks_valid(map.bytes(offset, end), seed, index_min) else {
            offset += ALIGN_BYTES as u64;
            continue;
        };
        let found = Found {
            offset,
            index: record.index,
            watermark: record.durable_watermark,
        };
        if beyond
            .evidence
            .is_none_or(|e| found.watermark > e.watermark)
        {
            beyond.evidence = Some(found);
        }
        beyond.record_count += 1;
        offset += record.encoded_bytes as u64;
        beyond.valid_end = offset;
    }
    beyond
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
/// on clean bytes and nothing cut is read again. Returns `bytes`.
fn zero(io: &Io, file: &File, path: &Path, start: u64, bytes: u64) -> Result<u64> {
    // No reader exists yet, and these bytes were never published.
    let zeros = vec![0u8; bytes.min(ZERO_CHUNK_BYTES) as usize];
    let mut offset = start;
    while offset < start + bytes {
        let chunk_bytes = (start + bytes - offset).min(ZERO_CHUNK_BYTES);
        io.write_at(file, path, &zeros[..chunk_bytes as usize], offset)?;
        offset += chunk_bytes;
    }
    io.fdatasync(file, path)?;
    Ok(bytes)
}
