//! The WAL's API contract: appends, reads, flushes, truncation, compaction, reopen, and the
//! usage errors that leave the log untouched.

mod common;

use common::*;
use raftlog_wal::{Error, NewEntry, Options, Wal};

#[test]
fn append_flush_reopen_round_trip_across_many_segments() {
    let dir = scratch_dir();
    let (mut wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!(
        (report.first_index, report.last_index, wal.last_index()),
        (1, 0, 0)
    );
    let mut written = Vec::new();
    for (term, chunk) in [(1, 1..=40), (2, 41..=41), (5, 42..=100)] {
        let batch = entries(*chunk.start(), *chunk.end(), term, 7);
        append(&mut wal, &batch);
        written.extend(batch);
    }
    // Rolls sync the sealed segment, so some prefix is durable already, never more.
    assert!(wal.durable_index() < wal.last_index());
    assert_eq!(wal.flush().unwrap(), 100);
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.last_term()),
        (1, 100, 5)
    );
    assert_eq!(
        (wal.term_at(40), wal.term_at(41), wal.term_at(42)),
        (Some(1), Some(2), Some(5))
    );
    assert_eq!((wal.term_at(0), wal.term_at(101)), (None, None));
    let firsts = [1, 2, 3, 5].map(|term| wal.first_index_of_term(term));
    assert_eq!(firsts, [Some(1), Some(41), None, Some(42)]);
    assert_eq!(wal.reader().first_index_of_term(5).unwrap(), Some(42));
    assert_log(&wal.reader(), &written);
    assert!(segment_files(dir.path()).len() >= 4, "small segments roll");
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!((report.first_index, report.last_index), (1, 100));
    assert_eq!(report.torn_tail, None);
    assert_eq!((wal.durable_index(), wal.last_term()), (100, 5));
    assert_log(&wal.reader(), &written);
}

#[test]
fn usage_errors_write_nothing() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    append(&mut wal, &entries(1, 3, 2, 0));
    let gap = [NewEntry {
        index: 5,
        term: 2,
        kind: 0,
        payload: b"",
    }];
    assert!(matches!(
        wal.append(&gap),
        Err(Error::NotContiguous {
            expected: 4,
            got: 5
        })
    ));
    let back = [NewEntry {
        index: 4,
        term: 1,
        kind: 0,
        payload: b"",
    }];
    assert!(matches!(
        wal.append(&back),
        Err(Error::TermDecreased { .. })
    ));
    let inner_gap = [
        NewEntry {
            index: 4,
            term: 2,
            kind: 0,
            payload: b"",
        },
        NewEntry {
            index: 6,
            term: 2,
            kind: 0,
            payload: b"",
        },
    ];
    assert!(matches!(
        wal.append(&inner_gap),
        Err(Error::NotContiguous { .. })
    ));
    let big = vec![0u8; 1025];
    let too_big = [NewEntry {
        index: 4,
        term: 2,
        kind: 0,
        payload: &big,
    }];
    assert!(matches!(
        wal.append(&too_big),
        Err(Error::PayloadTooLarge { .. })
    ));
    assert_eq!(wal.last_index(), 3);
    wal.append(&[]).unwrap();
    append(&mut wal, &entries(4, 4, 3, 0));
    assert_eq!(wal.last_index(), 4);

    let options = Options {
        payload_bytes_max: 5000,
        ..small_options()
    };
    assert!(matches!(
        Wal::open(dir.path(), options),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn empty_log_starts_anywhere_and_second_writer_is_refused() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small_options()),
        Err(Error::Locked { .. })
    ));
    let zero = [NewEntry {
        index: 0,
        term: 1,
        kind: 0,
        payload: b"",
    }];
    assert!(matches!(wal.append(&zero), Err(Error::InvalidIndex)));
    append(&mut wal, &entries(1000, 1010, 4, 1));
    assert_eq!((wal.first_index(), wal.last_index()), (1000, 1010));
    wal.truncate_from(0).unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.last_term()),
        (1, 0, 0)
    );
    let restart = entries(50, 60, 9, 1);
    append(&mut wal, &restart);
    wal.flush().unwrap();
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!((report.first_index, report.last_index), (50, 60));
    assert_log(&wal.reader(), &restart);
}

#[test]
fn truncate_and_compact_keep_the_right_entries_across_reopen() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    let mut written = entries(1, 80, 1, 3);
    append(&mut wal, &written);
    wal.truncate_from(81).unwrap(); // past the end: nothing to drop
    wal.truncate_from(57).unwrap();
    written.truncate(56);
    assert_eq!((wal.last_index(), wal.durable_index()), (56, 56));
    let replacement = entries(57, 90, 2, 4);
    append(&mut wal, &replacement);
    written.extend(replacement);
    wal.compact_below(30).unwrap();
    let first = wal.first_index();
    assert!(
        first > 1 && first <= 30,
        "compaction drops whole segments below 30: {first}"
    );
    assert_eq!(wal.term_at(first - 1), None);
    assert_eq!(wal.reader().read(first - 1).unwrap(), None);
    wal.flush().unwrap();
    drop(wal);
    let (mut wal, report) = Wal::open(dir.path(), small_options()).unwrap();
    assert_eq!((report.first_index, report.last_index), (first, 90));
    assert_log(&wal.reader(), &written[(first - 1) as usize..]);
    wal.compact_below(u64::MAX).unwrap();
    assert_eq!(wal.last_index(), 90, "compaction never empties the log");
    assert!(wal.first_index() > first);
}

#[test]
fn read_range_respects_the_byte_budget_but_returns_at_least_one() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    let written = entries(1, 30, 1, 5);
    append(&mut wal, &written);
    let reader = wal.reader();
    assert_eq!(reader.read_range(3, 2, 100).unwrap().len(), 0);
    let one = reader.read_range(10, 30, 0).unwrap();
    assert_eq!(one.len(), 1);
    assert!(written[9].matches(&one[0]));
    let budget: usize = written[9..14].iter().map(|e| e.payload.len()).sum();
    let some = reader.read_range(10, 30, budget as u64).unwrap();
    assert_eq!(some.len(), 5);
    assert_eq!(reader.read_range(25, 99, u64::MAX).unwrap().len(), 6);
    assert_eq!(reader.read_range(31, 40, u64::MAX).unwrap().len(), 0);
    assert_eq!(reader.read(31).unwrap(), None);
}

#[test]
fn readers_slices_survive_truncation_reappend_and_compaction() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    let written = entries(1, 60, 1, 11);
    append(&mut wal, &written);
    let reader = wal.reader();
    let held = common::read_all(&reader);
    let copies: Vec<Vec<u8>> = held.iter().map(|e| e.payload.to_vec()).collect();
    let reader_thread = {
        let reader = reader.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                for entry in reader.read_range(1, u64::MAX, u64::MAX).unwrap() {
                    assert!(entry.index >= 1);
                }
            }
        })
    };
    wal.truncate_from(20).unwrap();
    append(&mut wal, &entries(20, 70, 2, 12));
    wal.flush().unwrap();
    wal.compact_below(65).unwrap();
    wal.truncate_from(66).unwrap();
    append(&mut wal, &entries(66, 90, 3, 13));
    reader_thread.join().unwrap();
    drop(wal);
    for ((entry, copy), original) in held.iter().zip(&copies).zip(&written) {
        assert_eq!(
            &entry.payload[..],
            &copy[..],
            "entry {} changed",
            entry.index
        );
        assert!(original.matches(entry));
    }
}

#[test]
fn group_commit_job_runs_on_another_thread_while_appending() {
    let dir = scratch_dir();
    let options = Options {
        segment_bytes: 1 << 20,
        payload_bytes_max: 4096,
        ..Options::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
    append(&mut wal, &entries(1, 10, 1, 0));
    let job = wal.start_flush().unwrap().expect("something to flush");
    assert_eq!(job.index(), 10);
    assert!(
        wal.start_flush().unwrap().is_none(),
        "one job in flight at a time"
    );
    let handle = std::thread::spawn(move || job.run());
    append(&mut wal, &entries(11, 20, 1, 0));
    assert_eq!(wal.durable_index(), 0);
    assert_eq!(wal.finish_flush(handle.join().unwrap()).unwrap(), 10);
    let job = wal.start_flush().unwrap().unwrap();
    assert_eq!(wal.finish_flush(job.run()).unwrap(), 20);
    assert!(
        wal.start_flush().unwrap().is_none(),
        "nothing left to flush"
    );
}

#[test]
fn a_flush_that_straddles_a_truncation_does_not_vouch_for_new_entries() {
    let dir = scratch_dir();
    let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
    append(&mut wal, &entries(1, 10, 1, 0));
    let job = wal.start_flush().unwrap().unwrap();
    wal.truncate_from(6).unwrap();
    assert_eq!(wal.durable_index(), 5);
    append(&mut wal, &entries(6, 12, 2, 0));
    assert_eq!(
        wal.finish_flush(job.run()).unwrap(),
        5,
        "the old job covered the old 6..10"
    );
    // flush() with a job in flight syncs directly.
    let job = wal.start_flush().unwrap().unwrap();
    append(&mut wal, &entries(13, 14, 2, 0));
    assert_eq!(wal.flush().unwrap(), 14);
    assert_eq!(wal.finish_flush(job.run()).unwrap(), 14);
}

#[test]
fn compaction_recycles_segments_no_reader_holds() {
    use std::os::unix::fs::MetadataExt;
    let dir = scratch_dir();
    let options = Options {
        spare_segments: true,
        ..small_options()
    };
    let (mut wal, _) = Wal::open(dir.path(), options.clone()).unwrap();
    let mut written = entries(1, 200, 1, 21);
    append(&mut wal, &written);
    wal.flush().unwrap();
    let files = segment_files(dir.path());
    let inode = |path: &std::path::PathBuf| std::fs::metadata(path).unwrap().ino();
    let (held_inode, free_inode) = (inode(&files[0]), inode(&files[1]));
    let held = wal.reader().read(1).unwrap().unwrap();
    let held_copy = held.payload.to_vec();
    wal.compact_below(100).unwrap();
    // The segment a reader holds was unlinked, not reused; a free one became a spare.
    let inodes: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().ino())
        .collect();
    assert!(!inodes.contains(&held_inode));
    assert!(
        inodes.contains(&free_inode),
        "a compacted segment was recycled"
    );
    let more = entries(201, 400, 2, 22);
    append(&mut wal, &more);
    wal.flush().unwrap();
    written.extend(more);
    assert_eq!(&held.payload[..], &held_copy[..]);
    let first = wal.first_index();
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), options).unwrap();
    assert_eq!(
        report.torn_tail, None,
        "stale bytes of a recycled file are not a torn tail"
    );
    assert_log(&wal.reader(), &written[(first - 1) as usize..]);
}

#[test]
fn handles_cross_threads_as_the_actors_need() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync + Clone>() {}
    send::<Wal>();
    send::<raftlog_wal::FlushJob>();
    send::<raftlog_wal::FlushOutcome>();
    shared::<raftlog_wal::WalReader>();
    shared::<raftlog_wal::StoredEntry>();
}
