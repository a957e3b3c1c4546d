//! kill -9: a child process appends and flushes in a loop (flushing on another thread while
//! it keeps appending, as the WAL actor does), printing each durable index. The parent
//! SIGKILLs it at random moments, reopens the log, and checks every entry reported durable
//! is present and intact, and that the log is a contiguous prefix of what was written.
//!
//! The child is this test binary itself, re-run with `WAL_KILL_CHILD_DIR` set.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use raftlog_wal::{Options, Wal};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ROUND_COUNT: usize = 30;
const CHILD_ENV: &str = "WAL_KILL_CHILD_DIR";
const PAYLOAD_SALT: u64 = 0xC0FFEE;

fn options() -> Options {
    Options {
        segment_bytes: 256 << 10,
        payload_bytes_max: 1024,
        spare_segments: true,
        faults: None,
    }
}

/// Every entry's term follows from its index, so the parent can rebuild it.
fn expected(index: u64) -> Owned {
    Owned::new(index, index / 50 + 1, PAYLOAD_SALT)
}

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (mut wal, _) = Wal::open(Path::new(&dir), options()).unwrap();
    let mut rng = SmallRng::seed_from_u64(wal.last_index());
    let mut stdout = std::io::stdout();
    loop {
        let next = wal.last_index() + 1;
        append(
            &mut wal,
            &(next..next + rng.gen_range(1..32))
                .map(expected)
                .collect::<Vec<_>>(),
        );
        let job = wal.start_flush().unwrap().expect("new entries to flush");
        let flusher = std::thread::spawn(move || job.run());
        // Group commit: keep appending while the flush runs.
        let next = wal.last_index() + 1;
        append(
            &mut wal,
            &(next..next + rng.gen_range(1..8))
                .map(expected)
                .collect::<Vec<_>>(),
        );
        let durable = wal.finish_flush(flusher.join().unwrap()).unwrap();
        writeln!(stdout, "durable {durable}").unwrap();
        stdout.flush().unwrap();
    }
}

/// Runs the child until a random moment, SIGKILLs it, and returns the highest durable index
/// it reported.
fn run_child_and_kill(dir: &Path, rng: &mut SmallRng) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reported = Arc::new(AtomicU64::new(0));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let reported = Arc::clone(&reported);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(index) = line.strip_prefix("durable ") {
                    reported.fetch_max(index.parse().unwrap(), Ordering::SeqCst);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(rng.gen_range(20..150)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    reported.load(Ordering::SeqCst)
}

#[test]
fn kill_9_never_loses_a_reported_durable_entry() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill -9 test seed {seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap(); // a real disk, not tmpfs
    let mut durable_max = 0;
    let mut torn_tails = 0;
    for round in 0..ROUND_COUNT {
        durable_max = durable_max.max(run_child_and_kill(dir.path(), &mut rng));
        let (wal, report) = Wal::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): reopen failed: {e}"));
        torn_tails += usize::from(report.torn_tail.is_some());
        let stored = read_all(&wal.reader());
        assert_eq!(wal.first_index(), 1, "round {round}");
        assert!(
            wal.last_index() >= durable_max,
            "round {round} (seed {seed}): durable {durable_max} reported, log ends at {}",
            wal.last_index()
        );
        for entry in &stored {
            assert!(
                expected(entry.index).matches(entry),
                "round {round}: entry {} damaged",
                entry.index
            );
        }
    }
    eprintln!(
        "{ROUND_COUNT} kills, durable index reached {durable_max}, {torn_tails} torn tails cut"
    );
    assert!(durable_max > 0, "the child never reported a flush");
}
