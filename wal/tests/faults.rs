//! Fault injection: for each scenario (append, segment roll, flush, background flush,
//! truncation, compaction, recovery, hard-state save), fail each system call of the
//! operation in turn, with EIO and ENOSPC alternately. Every time, the operation must
//! return an error, the WAL must be poisoned (every later call fails), and a reopen must
//! recover a prefix of what was written that holds everything reported durable.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use raftlog_wal::{Error, Fault, FaultInjector, HardState, HardStateFile, Options, Result, Wal};

/// What a scenario's operation may leave behind.
struct Expect {
    /// The longest log recovery may find (entries in order).
    allowed: Vec<Owned>,
    /// Recovery must keep every entry up to this index.
    keep_through: u64,
    /// Compaction may have dropped a prefix.
    may_drop_prefix: bool,
}

struct Scenario {
    name: &'static str,
    /// Builds the log the operation starts from, without faults.
    setup: fn(&mut Wal),
    /// The operation under test, and what it may leave.
    op: fn(&mut Wal) -> (Result<()>, Expect),
    /// Spare segments on (compaction then recycles). The setup lets the zero-fill thread
    /// finish first, so the counted calls are the operation's alone.
    spare: bool,
}

fn options(faults: &Arc<FaultInjector>, spare: bool) -> Options {
    Options {
        faults: Some(Arc::clone(faults)),
        spare_segments: spare,
        ..small_options()
    }
}

fn flushed(wal: &mut Wal, from: u64, to: u64, term: u64) -> Vec<Owned> {
    let batch = entries(from, to, term, 1);
    append(wal, &batch);
    wal.flush().unwrap();
    batch
}

fn log_of(ranges: &[(u64, u64, u64)]) -> Vec<Owned> {
    ranges
        .iter()
        .flat_map(|&(from, to, term)| entries(from, to, term, 1))
        .collect()
}

fn try_append(wal: &mut Wal, batch: &[Owned]) -> Result<()> {
    let borrowed: Vec<_> = batch.iter().map(Owned::borrow).collect();
    wal.append(&borrowed)
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            // Appending within a segment makes no system call; its flush does.
            name: "append and flush within the active segment",
            setup: |wal| drop(flushed(wal, 1, 5, 1)),
            op: |wal| {
                let result =
                    try_append(wal, &entries(6, 7, 1, 1)).and_then(|()| wal.flush().map(drop));
                let expect = Expect {
                    allowed: log_of(&[(1, 7, 1)]),
                    keep_through: 5,
                    may_drop_prefix: false,
                };
                (result, expect)
            },
            spare: false,
        },
        Scenario {
            name: "append that rolls segments",
            setup: |wal| drop(flushed(wal, 1, 10, 1)),
            op: |wal| {
                let result = try_append(wal, &entries(11, 50, 1, 1));
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 50, 1)]),
                        keep_through: 10,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "flush",
            setup: |wal| {
                flushed(wal, 1, 10, 1);
                append(wal, &entries(11, 20, 1, 1));
            },
            op: |wal| {
                let result = wal.flush().map(|durable| assert_eq!(durable, 20));
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 20, 1)]),
                        keep_through: 10,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "background flush job",
            setup: |wal| {
                flushed(wal, 1, 10, 1);
                append(wal, &entries(11, 14, 1, 1));
            },
            op: |wal| {
                let job = wal.start_flush().unwrap().unwrap();
                let outcome = std::thread::spawn(move || job.run()).join().unwrap();
                let result = wal
                    .finish_flush(outcome)
                    .map(|durable| assert_eq!(durable, 14));
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 14, 1)]),
                        keep_through: 10,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "truncate inside the active segment",
            setup: |wal| {
                flushed(wal, 1, 10, 1);
                append(wal, &entries(11, 15, 1, 1));
            },
            op: |wal| {
                let result = wal.truncate_from(12);
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 15, 1)]),
                        keep_through: 10,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "truncate across segments",
            setup: |wal| drop(flushed(wal, 1, 60, 1)),
            op: |wal| {
                let result = wal.truncate_from(15);
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 60, 1)]),
                        keep_through: 14,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "append after a truncation makes a new segment",
            setup: |wal| {
                flushed(wal, 1, 60, 1);
                wal.truncate_from(30).unwrap();
            },
            op: |wal| {
                let result =
                    try_append(wal, &entries(30, 34, 2, 1)).and_then(|()| wal.flush().map(drop));
                let allowed = log_of(&[(1, 29, 1), (30, 34, 2)]);
                (
                    result,
                    Expect {
                        allowed,
                        keep_through: 29,
                        may_drop_prefix: false,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "compaction",
            setup: |wal| drop(flushed(wal, 1, 60, 1)),
            op: |wal| {
                let result = wal.compact_below(45);
                (
                    result,
                    Expect {
                        allowed: log_of(&[(1, 60, 1)]),
                        keep_through: 60,
                        may_drop_prefix: true,
                    },
                )
            },
            spare: false,
        },
        Scenario {
            name: "compaction that recycles segments",
            setup: |wal| {
                flushed(wal, 1, 60, 1);
                std::thread::sleep(std::time::Duration::from_millis(100));
            },
            op: |wal| {
                let result = wal.compact_below(45);
                let expect = Expect {
                    allowed: log_of(&[(1, 60, 1)]),
                    keep_through: 60,
                    may_drop_prefix: true,
                };
                (result, expect)
            },
            spare: true,
        },
    ]
}

/// Every call on a poisoned WAL fails, naming the first error.
fn assert_poisoned(wal: &mut Wal, fired: &str) {
    let op = fired.split_whitespace().nth(2).unwrap().to_string();
    let check = |result: Result<()>, what: &str| match result {
        Err(Error::Poisoned { first }) => {
            assert!(first.contains(&op), "{what}: {first} vs {fired}")
        }
        other => panic!("{what} on a poisoned WAL returned {other:?}"),
    };
    let next = entries(wal.last_index() + 1, wal.last_index() + 1, 9, 1);
    check(try_append(wal, &next), "append");
    check(wal.flush().map(drop), "flush");
    check(wal.start_flush().map(drop), "start_flush");
    check(wal.truncate_from(1), "truncate_from");
    check(wal.compact_below(u64::MAX), "compact_below");
    check(wal.reader().read(wal.last_index()).map(drop), "read");
}

/// The reopened log is a contiguous run of `expect.allowed` holding every kept entry.
fn assert_recovered(dir: &Path, expect: &Expect, context: &str) {
    let (wal, _) =
        Wal::open(dir, small_options()).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    let stored = read_all(&wal.reader());
    let first = stored.first().map_or(wal.first_index(), |s| s.index);
    let allowed_first = expect.allowed[0].index;
    assert!(
        first == allowed_first || expect.may_drop_prefix,
        "{context}: log starts at {first}"
    );
    let skip = (first - allowed_first) as usize;
    assert!(
        stored.len() <= expect.allowed.len() - skip,
        "{context}: more than was written"
    );
    for (s, a) in stored.iter().zip(&expect.allowed[skip..]) {
        assert!(a.matches(s), "{context}: entry {} differs", s.index);
    }
    assert!(
        wal.last_index() >= expect.keep_through,
        "{context}: lost durable entries"
    );
}

#[test]
fn every_failed_syscall_poisons_and_recovery_is_correct() {
    for scenario in scenarios() {
        let mut failed_calls = 0;
        for nth in 1.. {
            let dir = scratch_dir();
            let faults = FaultInjector::new();
            let (mut wal, _) = Wal::open(dir.path(), options(&faults, scenario.spare)).unwrap();
            (scenario.setup)(&mut wal);
            let fault = if nth % 2 == 0 {
                Fault::Enospc
            } else {
                Fault::Eio
            };
            faults.fail_after(nth, fault);
            let (result, expect) = (scenario.op)(&mut wal);
            let Some(fired) = faults.fired() else {
                result.unwrap_or_else(|e| panic!("{}: failed with no fault: {e}", scenario.name));
                break;
            };
            let context = format!("{} with {fired} failing", scenario.name);
            assert!(result.is_err(), "{context}: the operation reported success");
            assert_poisoned(&mut wal, &fired);
            faults.disarm();
            drop(wal);
            assert_recovered(dir.path(), &expect, &context);
            failed_calls += 1;
        }
        assert!(
            failed_calls > 0,
            "{}: the operation made no system call",
            scenario.name
        );
        eprintln!(
            "{}: failed each of {failed_calls} system calls in turn",
            scenario.name
        );
    }
}

#[test]
fn every_failed_syscall_during_recovery_fails_open_and_a_retry_succeeds() {
    let mut failed_calls = 0;
    for nth in 1.. {
        let dir = scratch_dir();
        let (mut wal, _) = Wal::open(dir.path(), small_options()).unwrap();
        flushed(&mut wal, 1, 60, 1);
        append(&mut wal, &entries(61, 62, 1, 1));
        let (path, _, write_offset) = wal.unflushed_bytes().unwrap();
        drop(wal);
        // A torn tail to cut and a leftover temp file, so recovery writes and deletes too.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0xEE; 16], write_offset - 8).unwrap();
        std::fs::write(dir.path().join("spare.wal.tmp"), b"x").unwrap();
        let faults = FaultInjector::new();
        faults.fail_after(nth, Fault::Eio);
        let result = Wal::open(dir.path(), options(&faults, false));
        let Some(fired) = faults.fired() else {
            result.unwrap();
            break;
        };
        assert!(result.is_err(), "open succeeded although {fired} failed");
        let expect = Expect {
            allowed: log_of(&[(1, 62, 1)]),
            keep_through: 60,
            may_drop_prefix: false,
        };
        assert_recovered(dir.path(), &expect, &format!("open with {fired} failing"));
        failed_calls += 1;
    }
    eprintln!("recovery: failed each of {failed_calls} system calls in turn");
    assert!(failed_calls > 5);
}

#[test]
fn every_failed_syscall_of_a_hard_state_save_keeps_old_or_new_state() {
    let old = HardState {
        term: 3,
        voted_for: Some(1),
    };
    let new = HardState {
        term: 4,
        voted_for: None,
    };
    let mut failed_calls = 0;
    for nth in 1.. {
        let dir = scratch_dir();
        let faults = FaultInjector::new();
        let (mut file, _) =
            HardStateFile::open_with_faults(dir.path(), Some(Arc::clone(&faults))).unwrap();
        file.save(&old).unwrap();
        faults.fail_after(nth, Fault::Enospc);
        let result = file.save(&new);
        let Some(fired) = faults.fired() else {
            result.unwrap();
            break;
        };
        assert!(result.is_err(), "save succeeded although {fired} failed");
        assert!(
            matches!(file.save(&new), Err(Error::Poisoned { .. })),
            "{fired}"
        );
        let (_, state) = HardStateFile::open(dir.path()).unwrap();
        assert!(
            state == Some(old) || state == Some(new),
            "{fired}: {state:?}"
        );
        failed_calls += 1;
    }
    assert!(failed_calls >= 5, "{failed_calls}");
}
