//! Helpers shared by the WAL's integration tests: deterministic entries and small options.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use raftlog_wal::{NewEntry, Options, StoredEntry, Wal, WalReader};

/// The payload of entry `index` in term `term` for a given test `salt`: its length (0..=300)
/// and bytes depend on all three, so a wrong or stale entry never compares equal.
pub fn payload_for(index: u64, term: u64, salt: u64) -> Vec<u8> {
    let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ term.rotate_left(17) ^ salt;
    x ^= x >> 29;
    let payload_bytes = (x % 301) as usize;
    (0..payload_bytes)
        .map(|i| (x.wrapping_add(i as u64 * 31) >> 3) as u8)
        .collect()
}

/// An owned entry, for building batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub index: u64,
    pub term: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
}

impl Owned {
    pub fn new(index: u64, term: u64, salt: u64) -> Owned {
        Owned {
            index,
            term,
            kind: (index % 3) as u8,
            payload: payload_for(index, term, salt),
        }
    }

    pub fn borrow(&self) -> NewEntry<'_> {
        NewEntry {
            index: self.index,
            term: self.term,
            kind: self.kind,
            payload: &self.payload,
        }
    }

    pub fn matches(&self, stored: &StoredEntry) -> bool {
        self.index == stored.index
            && self.term == stored.term
            && self.kind == stored.kind
            && self.payload[..] == stored.payload[..]
    }
}

/// Appends `entries` as one batch.
pub fn append(wal: &mut Wal, entries: &[Owned]) {
    let batch: Vec<NewEntry<'_>> = entries.iter().map(Owned::borrow).collect();
    wal.append(&batch).expect("append");
}

/// Entries `from..=to` in `term`.
pub fn entries(from: u64, to: u64, term: u64, salt: u64) -> Vec<Owned> {
    (from..=to).map(|i| Owned::new(i, term, salt)).collect()
}

/// 4 KiB segments (a dozen small records each), no spare thread: deterministic and rolls a lot.
pub fn small_options() -> Options {
    Options {
        segment_bytes: 4096,
        payload_bytes_max: 1024,
        spare_segments: false,
        faults: None,
    }
}

/// Every entry the reader holds, in order.
pub fn read_all(reader: &WalReader) -> Vec<StoredEntry> {
    let (first, last) = (reader.first_index(), reader.last_index());
    reader
        .read_range(first, last, u64::MAX)
        .expect("read_range")
}

/// Asserts the log holds exactly `expected`.
pub fn assert_log(reader: &WalReader, expected: &[Owned]) {
    let stored = read_all(reader);
    assert_eq!(stored.len(), expected.len(), "entry count");
    for (e, s) in expected.iter().zip(&stored) {
        assert!(
            e.matches(s),
            "entry {} differs: {:?} vs {:?}",
            e.index,
            e,
            s
        );
    }
}

/// Segment files in `dir`, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// A scratch directory for tests that sync a lot but do not depend on a real disk: on tmpfs
/// (`/dev/shm`) when there is one, where fsync costs nothing. `WAL_TEST_DIR` overrides it.
pub fn scratch_dir() -> tempfile::TempDir {
    let base = std::env::var_os("WAL_TEST_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()));
    match base {
        Some(base) => tempfile::tempdir_in(base).expect("a scratch dir"),
        None => tempfile::tempdir().expect("a scratch dir"),
    }
}

/// A fresh scratch directory holding copies of `from`'s segment files.
pub fn copy_segments(from: &Path) -> tempfile::TempDir {
    let to = scratch_dir();
    for file in segment_files(from) {
        std::fs::copy(&file, to.path().join(file.file_name().unwrap())).unwrap();
    }
    to
}
