//! Power loss: after a power cut, any subset of the pages written since the last flush may be
//! on disk, since the kernel writes dirty pages back in any order. (The integration suite does
//! this for real, by copying a loop-mounted ext4 image without syncing.) Recovery must open,
//! keep every flushed record, and return a clean prefix of what was written, with nothing cut
//! ever coming back. Damage below a record's durable watermark is corruption and is refused.
//!
//! Trials derive from one seed, printed on failure; `WAL_POWER_LOSS_SEED=<seed>` replays it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use raftlog_wal::{encoded_record_bytes, Error, Options, Wal, SEGMENT_HEADER_BYTES};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const PAGE_BYTES: u64 = 4096;
const FLUSHED_BYTES_MIN: u64 = 6 * PAGE_BYTES;
const UNFLUSHED_BYTES_MIN: u64 = 8 * PAGE_BYTES;
const TRIAL_COUNT: u64 = 300;

fn options() -> Options {
    Options {
        segment_bytes: 128 << 10,
        ..small_options()
    }
}

/// A log in one active segment: flushed batches, then batches written after the last flush.
struct Written {
    entries: Vec<Owned>,
    /// Where each entry's record starts, and where the last one ends.
    offsets: Vec<u64>,
    durable_index: u64,
    path: PathBuf,
    /// The byte range of the segment that was written but not flushed.
    unflushed: (u64, u64),
}

/// Appends batches of 1..=8 entries, flushing after each, until `FLUSHED_BYTES_MIN` are
/// durable; then more batches, unflushed, until `UNFLUSHED_BYTES_MIN` are not.
fn write_log(dir: &Path, rng: &mut SmallRng) -> Written {
    let (mut wal, _) = Wal::open(dir, options()).unwrap();
    let mut written: Vec<Owned> = Vec::new();
    let mut flushing = true;
    loop {
        let first = written.len() as u64 + 1;
        let batch = entries(first, first + rng.gen_range(0..8), 1, rng.gen());
        append(&mut wal, &batch);
        written.extend(batch);
        if flushing {
            wal.flush().unwrap();
        }
        let (path, durable_offset, written_offset) = wal.unflushed_bytes().unwrap();
        if flushing && durable_offset >= FLUSHED_BYTES_MIN {
            flushing = false;
        } else if written_offset - durable_offset >= UNFLUSHED_BYTES_MIN {
            let mut offsets = vec![SEGMENT_HEADER_BYTES];
            for entry in &written {
                let end =
                    offsets.last().unwrap() + encoded_record_bytes(entry.payload.len()) as u64;
                offsets.push(end);
            }
            assert_eq!(offsets.last(), Some(&written_offset), "one segment");
            assert_eq!(segment_files(dir).len(), 1, "one segment");
            return Written {
                entries: written,
                offsets,
                durable_index: wal.durable_index(),
                path,
                unflushed: (durable_offset, written_offset),
            };
        }
    }
}

/// What a page that never reached the disk reads as.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// A fresh or zero-filled file.
    Zeros,
    /// Arbitrary bytes.
    Garbage,
    /// A recycled file's old records: valid records, under another segment's salt.
    Stale,
}

/// Overwrites, in the file at `path`, the unflushed part of each page in `pages` with what a
/// lost page reads as.
fn lose_pages(
    path: &Path,
    unflushed: (u64, u64),
    pages: &[(u64, Lost)],
    stale: &[u8],
    rng: &mut SmallRng,
) {
    let mut bytes = fs::read(path).unwrap();
    for &(page, lost) in pages {
        let start = (page * PAGE_BYTES).max(unflushed.0) as usize;
        let end = ((page + 1) * PAGE_BYTES).min(unflushed.1) as usize;
        match lost {
            Lost::Zeros => bytes[start..end].fill(0),
            Lost::Garbage => rng.fill(&mut bytes[start..end]),
            Lost::Stale => bytes[start..end].copy_from_slice(&stale[start..end]),
        }
    }
    fs::write(path, bytes).unwrap();
}

/// Reopens after a power loss and checks the log: a prefix of `written`, holding every
/// flushed entry and at least every entry whose record lies wholly before the first changed
/// byte. Then appends entries that line up with the ones cut (same payload sizes, so a
/// surviving record that was cut would sit exactly where the scan looks next), and checks
/// that a reopen sees exactly the prefix plus those: nothing cut comes back.
fn check_recovery(dir: &Path, written: &Written, first_changed: u64, context: &str) {
    let (mut wal, report) =
        Wal::open(dir, options()).unwrap_or_else(|e| panic!("{context}: refused to open: {e}"));
    let kept = wal.last_index();
    let intact = written.offsets[1..]
        .iter()
        .take_while(|&&end| end <= first_changed)
        .count() as u64;
    assert!(
        kept >= written.durable_index,
        "{context}: lost flushed entries ({kept})"
    );
    assert!(
        kept >= intact,
        "{context}: kept {kept}, {intact} were intact"
    );
    assert_log(&wal.reader(), &written.entries[..kept as usize]);
    if kept < written.entries.len() as u64 {
        let cut = report.torn_tail.as_ref().map(|t| t.offset);
        assert!(
            cut.is_none_or(|c| c == written.offsets[kept as usize]),
            "{context}: {cut:?}"
        );
    }
    // Redo through the end of the page holding the cut: the next old record then starts in a
    // later page, which may well have survived the power loss.
    let cut_page_end = (written.offsets[kept as usize] / PAGE_BYTES + 1) * PAGE_BYTES;
    let redo: Vec<Owned> = written.entries[kept as usize..]
        .iter()
        .zip(&written.offsets[kept as usize..])
        .take_while(|&(_, &offset)| offset < cut_page_end)
        .map(|(e, _)| Owned {
            term: 2,
            payload: vec![0xC3; e.payload.len()],
            ..e.clone()
        })
        .collect();
    append(&mut wal, &redo);
    wal.flush().unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir, options()).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let mut expected = written.entries[..kept as usize].to_vec();
    expected.extend(redo);
    assert_log(&wal.reader(), &expected);
}

/// The first byte where `a` and `b` differ (`a.len()` if none).
fn first_difference(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len()) as u64
}

fn run_trials(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let original = scratch_dir();
    let written = write_log(original.path(), &mut rng);
    let stale_dir = scratch_dir();
    let stale = fs::read(&write_log(stale_dir.path(), &mut rng).path).unwrap();
    let original_bytes = fs::read(&written.path).unwrap();
    let file_name = written.path.file_name().unwrap();
    let (first_page, last_page) = (
        written.unflushed.0 / PAGE_BYTES,
        (written.unflushed.1 - 1) / PAGE_BYTES,
    );
    for trial in 0..TRIAL_COUNT {
        // Trial 0 loses nothing, trial 1 everything; the rest a random subset.
        let keep_probability = match trial {
            0 => 1.0,
            1 => 0.0,
            _ => rng.gen_range(0.1..0.9),
        };
        let mut pages: Vec<(u64, Lost)> = Vec::new();
        for page in first_page..=last_page {
            if !rng.gen_bool(keep_probability) {
                let lost = [Lost::Zeros, Lost::Garbage, Lost::Stale][rng.gen_range(0..3)];
                pages.push((page, lost));
            }
        }
        let context = format!("seed {seed} trial {trial}, lost pages {pages:?}");
        let dir = copy_segments(original.path());
        let path = dir.path().join(file_name);
        lose_pages(&path, written.unflushed, &pages, &stale, &mut rng);
        let first_changed = first_difference(&original_bytes, &fs::read(&path).unwrap());
        check_recovery(dir.path(), &written, first_changed, &context);
    }
}

#[test]
fn any_subset_of_unflushed_pages_lost_keeps_every_flushed_record() {
    if let Ok(seed) = std::env::var("WAL_POWER_LOSS_SEED") {
        run_trials(seed.parse().expect("WAL_POWER_LOSS_SEED is a number"));
        return;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("power loss: seed {seed}");
    run_trials(seed);
}

/// A power loss kept the records after a hole but not the one at the hole: recovery cuts at
/// the hole and zeroes the survivors, reporting them. An append of the same size then lines up
/// with the old records exactly, and a reopen must still not read them back.
#[test]
fn records_after_a_hole_are_cut_zeroed_and_never_come_back() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), options()).unwrap();
    let flushed = entries(1, 5, 1, 8);
    append(&mut wal, &flushed);
    wal.flush().unwrap();
    let unflushed = entries(6, 12, 1, 8);
    append(&mut wal, &unflushed);
    let (path, hole_start, _) = wal.unflushed_bytes().unwrap();
    drop(wal);
    let hole_end = hole_start + encoded_record_bytes(unflushed[0].payload.len()) as u64;
    let mut bytes = fs::read(&path).unwrap();
    bytes[hole_start as usize..hole_end as usize].fill(0);
    fs::write(&path, &bytes).unwrap();

    let (mut wal, report) = Wal::open(dir.path(), options()).unwrap();
    assert_log(&wal.reader(), &flushed);
    let torn = report.torn_tail.expect("a cut");
    assert_eq!((torn.offset, torn.records_dropped), (hole_start, 6));
    let redo = Owned {
        term: 2,
        payload: vec![7; unflushed[0].payload.len()],
        ..unflushed[0].clone()
    };
    append(&mut wal, std::slice::from_ref(&redo));
    wal.flush().unwrap();
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(report.torn_tail, None);
    let mut expected = flushed;
    expected.push(redo);
    assert_log(&wal.reader(), &expected);
}

/// A hole that looks exactly like a lost page, but below the durable watermark of a later
/// record: those bytes had been flushed, so it is corruption, and recovery refuses, naming
/// the file, the byte offset, and the record that proves it.
#[test]
fn a_lost_page_below_a_later_records_watermark_is_refused() {
    let dir = scratch_dir();
    let mut rng = SmallRng::seed_from_u64(11);
    let written = write_log(dir.path(), &mut rng);
    let original = fs::read(&written.path).unwrap();
    let mut bytes = original.clone();
    // The second page is wholly flushed, and the unflushed records cite flushes after it.
    assert!(written.unflushed.0 > 2 * PAGE_BYTES);
    bytes[PAGE_BYTES as usize..2 * PAGE_BYTES as usize].fill(0);
    fs::write(&written.path, &bytes).unwrap();
    // Zeros change only header and payload bytes (padding is zeros already), so the record
    // holding the first changed byte is the first bad one.
    let first_changed = first_difference(&original, &bytes);
    let first_damaged = *written
        .offsets
        .iter()
        .rfind(|&&o| o <= first_changed)
        .unwrap();
    match Wal::open(dir.path(), options()) {
        Err(error @ Error::CorruptRecord { .. }) => {
            let Error::CorruptRecord { path, offset, .. } = &error else {
                unreachable!()
            };
            assert_eq!((path, *offset), (&written.path, first_damaged), "{error}");
            let message = error.to_string();
            assert!(message.contains("flush"), "{message}");
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
}
