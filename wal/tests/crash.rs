//! Recovery from damaged files: a torn last record (cut at every byte), flipped bits at the
//! tail and in the middle, power loss that keeps any subset of the unflushed pages, damaged
//! sealed segments and headers, and every file layout a crash (or an operator) can leave:
//! mid-roll, stray temp files, gaps, extra segments.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::*;
use raftlog_wal::{encoded_record_bytes, Error, Options, Wal, SEGMENT_HEADER_BYTES};

const ENTRY_COUNT: u64 = 20;

fn one_segment_options() -> Options {
    Options {
        segment_bytes: 64 << 10,
        ..small_options()
    }
}

/// A flushed log of `ENTRY_COUNT` entries in one active segment, the last with a 300-byte
/// payload. Returns the entries, the segment's path, and each record's start offset.
///
/// The last entry is appended after a flush of the others, so its durable watermark proves
/// they were flushed: that is what lets recovery call damage to them corruption. (Damage
/// that no later record vouches for is cut like a torn tail; see
/// `damage_no_later_record_vouches_for_is_cut_like_a_torn_tail`.)
fn write_log(dir: &Path) -> (Vec<Owned>, PathBuf, Vec<u64>) {
    let (mut wal, _) = Wal::open(dir, one_segment_options()).unwrap();
    let mut written = entries(1, ENTRY_COUNT, 1, 99);
    written.last_mut().unwrap().payload = vec![0x5A; 300];
    let (before_last, last) = written.split_at(written.len() - 1);
    append(&mut wal, before_last);
    wal.flush().unwrap();
    append(&mut wal, last);
    wal.flush().unwrap();
    drop(wal);
    let mut offsets = vec![SEGMENT_HEADER_BYTES];
    for entry in &written {
        let next = offsets.last().unwrap() + encoded_record_bytes(entry.payload.len()) as u64;
        offsets.push(next);
    }
    let files = segment_files(dir);
    assert_eq!(files.len(), 1);
    (written, files[0].clone(), offsets)
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

/// Reopens, checks exactly `expected` remains, and checks appending goes on cleanly.
fn assert_recovers_to(dir: &Path, expected: &[Owned]) -> raftlog_wal::RecoveryReport {
    let (mut wal, report) = Wal::open(dir, one_segment_options()).unwrap();
    assert_log(&wal.reader(), expected);
    let next = entries(expected.len() as u64 + 1, expected.len() as u64 + 3, 2, 5);
    append(&mut wal, &next);
    wal.flush().unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir, one_segment_options()).unwrap();
    let mut all = expected.to_vec();
    all.extend(next);
    assert_log(&wal.reader(), &all);
    report
}

#[test]
fn cut_at_every_byte_of_the_last_record_keeps_exactly_the_records_before_it() {
    let original = scratch_dir();
    let (written, path, offsets) = write_log(original.path());
    let last_start = offsets[ENTRY_COUNT as usize - 1];
    let last_end = last_start + 32 + 300;
    let file_name = path.file_name().unwrap();
    for cut in last_start..last_end {
        // The bytes from the cut on never reached the disk: zeros (preallocated file)...
        let dir = copy_segments(original.path());
        edit(&dir.path().join(file_name), |b| b[cut as usize..].fill(0));
        let report = assert_recovers_to(dir.path(), &written[..written.len() - 1]);
        assert_eq!(report.last_index, ENTRY_COUNT - 1, "cut at {cut}");
        // Once the cut spares the header's index, the torn record is reported. (Before that
        // it reads as a clean end or as stale bytes of an older entry: nothing to report.)
        if cut >= last_start + 16 {
            assert_eq!(
                report.torn_tail.as_ref().unwrap().offset,
                last_start,
                "cut at {cut}"
            );
        }
        // ...or a file that ends there.
        let dir = copy_segments(original.path());
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(file_name))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        assert_recovers_to(dir.path(), &written[..written.len() - 1]);
    }
}

#[test]
fn flipped_bits_in_the_last_record_are_a_torn_tail() {
    let original = scratch_dir();
    let (written, path, offsets) = write_log(original.path());
    let last_start = offsets[ENTRY_COUNT as usize - 1] as usize;
    let file_name = path.file_name().unwrap();
    for byte in last_start..last_start + 32 + 300 {
        let dir = copy_segments(original.path());
        edit(&dir.path().join(file_name), |b| b[byte] ^= 1 << (byte % 8));
        let report = assert_recovers_to(dir.path(), &written[..written.len() - 1]);
        let torn = report.torn_tail.expect("a torn tail");
        assert_eq!(torn.offset, last_start as u64, "flip at byte {byte}");
    }
}

#[test]
fn flipped_bits_in_the_middle_refuse_naming_file_and_offset() {
    let original = scratch_dir();
    let (written, path, offsets) = write_log(original.path());
    let file_name = path.file_name().unwrap();
    for k in 0..ENTRY_COUNT as usize - 1 {
        let record_start = offsets[k] as usize;
        let payload_end = record_start + 32 + written[k].payload.len();
        // Length, index, term, kind, and the last payload byte: all covered by the CRC.
        for byte in [
            record_start,
            record_start + 9,
            record_start + 17,
            record_start + 24,
            payload_end - 1,
        ] {
            let dir = copy_segments(original.path());
            let damaged = dir.path().join(file_name);
            edit(&damaged, |b| b[byte] ^= 0x10);
            let error = Wal::open(dir.path(), one_segment_options()).unwrap_err();
            match &error {
                Error::CorruptRecord { path, offset, .. } => {
                    assert_eq!((path, *offset), (&damaged, record_start as u64), "{error}");
                }
                other => panic!("flip at {byte}: expected CorruptRecord, got {other}"),
            }
            let message = error.to_string();
            assert!(
                message.contains(&format!("{}", damaged.display())),
                "{message}"
            );
            assert!(
                message.contains(&format!("byte {record_start}")),
                "{message}"
            );
        }
    }
}

/// The limit of the watermark rule, pinned down: damage to records flushed by the last flush,
/// when nothing was written after that flush, cannot be told from a power loss that kept a
/// later page but not theirs. Recovery cuts it as a torn tail (and says what it dropped), as
/// it always did for a damaged last record.
#[test]
fn damage_no_later_record_vouches_for_is_cut_like_a_torn_tail() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), one_segment_options()).unwrap();
    let written = entries(1, 10, 1, 3);
    append(&mut wal, &written);
    wal.flush().unwrap();
    drop(wal);
    let path = segment_files(dir.path())[0].clone();
    let third_start = SEGMENT_HEADER_BYTES
        + written[..2]
            .iter()
            .map(|e| encoded_record_bytes(e.payload.len()) as u64)
            .sum::<u64>();
    edit(&path, |b| b[third_start as usize + 9] ^= 0x10);
    let report = assert_recovers_to(dir.path(), &written[..2]);
    let torn = report.torn_tail.expect("a cut");
    assert_eq!((torn.offset, torn.records_dropped), (third_start, 7));
}

/// A log rolled over several sealed segments plus an active one; returns its files.
fn write_rolled_log(dir: &Path) -> (Vec<Owned>, Vec<PathBuf>) {
    let (mut wal, _) = Wal::open(dir, small_options()).unwrap();
    let written = entries(1, 60, 1, 4);
    append(&mut wal, &written);
    wal.flush().unwrap();
    drop(wal);
    let files = segment_files(dir);
    assert!(files.len() >= 3, "{files:?}");
    (written, files)
}

#[test]
fn damage_anywhere_in_a_sealed_segment_refuses() {
    let dir = scratch_dir();
    let (_, files) = write_rolled_log(dir.path());
    let sealed = &files[1];
    let original = fs::read(sealed).unwrap();
    // The last record of a sealed segment is not a tail: the segment was synced before sealing.
    let name = sealed.file_name().unwrap().to_str().unwrap().to_string();
    let last: u64 = name[21..41].parse().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    let payload_bytes = wal.reader().read(last).unwrap().unwrap().payload.len();
    drop(wal);
    let mut end = SEGMENT_HEADER_BYTES as usize;
    let first: u64 = name[..20].parse().unwrap();
    let reader_dir = dir.path();
    let (wal, _) = Wal::open(reader_dir, small_options()).unwrap();
    for index in first..last {
        end += encoded_record_bytes(wal.reader().read(index).unwrap().unwrap().payload.len());
    }
    drop(wal);
    let mut bytes = original.clone();
    bytes[end + 32 + payload_bytes - 1] ^= 1;
    fs::write(sealed, &bytes).unwrap();
    match Wal::open(dir.path(), small_options()) {
        Err(Error::CorruptRecord { path, offset, .. }) => {
            assert_eq!((&path, offset), (sealed, end as u64))
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
    // A damaged segment header refuses too.
    let mut bytes = original;
    bytes[20] ^= 1;
    fs::write(sealed, &bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small_options()),
        Err(Error::CorruptSegment { .. })
    ));
}

#[test]
fn a_missing_or_extra_segment_refuses_naming_the_files() {
    let dir = scratch_dir();
    let (_, files) = write_rolled_log(dir.path());
    let moved = dir.path().join("moved-away");
    fs::rename(&files[1], &moved).unwrap();
    let error = Wal::open(dir.path(), small_options()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::SegmentLayout { .. }), "{message}");
    assert!(message.contains("missing"), "{message}");
    assert!(
        message.contains(&files[0].display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&files[2].display().to_string()),
        "{message}"
    );
    fs::rename(&moved, &files[1]).unwrap();

    let extra = dir.path().join(format!("{:020}.wal", 1000));
    fs::write(&extra, vec![0u8; 4096]).unwrap();
    let error = Wal::open(dir.path(), small_options()).unwrap_err();
    assert!(matches!(error, Error::SegmentLayout { .. }), "{error}");
    fs::remove_file(&extra).unwrap();

    fs::write(dir.path().join("junk.wal"), b"x").unwrap();
    let error = Wal::open(dir.path(), small_options()).unwrap_err();
    assert!(error.to_string().contains("junk.wal"), "{error}");
}

#[test]
fn crash_mid_roll_and_stray_temp_files_recover() {
    let dir = scratch_dir();
    let (written, files) = write_rolled_log(dir.path());
    // A crash after sealing, before the next segment exists: drop the active segment.
    let active = files.last().unwrap();
    let sealed_last: u64 = {
        let name = files[files.len() - 2]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        name[21..41].parse().unwrap()
    };
    fs::remove_file(active).unwrap();
    // Leftovers of a segment being made and of the spare.
    fs::write(
        dir.path().join(format!("{:020}.wal.tmp", sealed_last + 1)),
        b"partial",
    )
    .unwrap();
    fs::write(dir.path().join("spare.wal.tmp"), vec![0u8; 100]).unwrap();
    let (mut wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!(report.removed_temp_files.len(), 2);
    assert_eq!(report.last_index, sealed_last);
    assert_log(&wal.reader(), &written[..sealed_last as usize]);
    // Appending continues in a new active segment.
    let more = entries(sealed_last + 1, sealed_last + 5, 1, 4);
    append(&mut wal, &more);
    wal.flush().unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!(wal.last_index(), sealed_last + 5);
}

#[test]
fn an_empty_new_active_segment_is_accepted_and_reused() {
    let dir = scratch_dir();
    let (written, files) = write_rolled_log(dir.path());
    let (wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    let last = wal.last_index();
    drop(wal);
    // Make the active segment sealed and put an empty active segment after it, as a crash
    // right after a roll's create leaves them: copy an existing header, fix its first index.
    let active = files.last().unwrap();
    let name = active.file_name().unwrap().to_str().unwrap();
    let first: u64 = name[..20].parse().unwrap();
    let sealed = dir.path().join(format!("{first:020}-{last:020}.wal"));
    fs::rename(active, &sealed).unwrap();
    let mut header = fs::read(&sealed).unwrap()[..32].to_vec();
    header[16..24].copy_from_slice(&(last + 1).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[0..12]), &header[16..32]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header.resize(4096, 0);
    fs::write(dir.path().join(format!("{:020}.wal", last + 1)), &header).unwrap();
    let (mut wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!((report.last_index, report.torn_tail), (last, None));
    assert_log(&wal.reader(), &written);
    append(&mut wal, &entries(last + 1, last + 2, 1, 4));
    assert_eq!(wal.last_index(), last + 2);
}
