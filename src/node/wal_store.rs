//! The node's storage on disk: the storage seams of [`super::storage`] over the `raftlog-wal`
//! crate. [`WalLogStore`] is the log the WAL actor owns, [`WalLogReader`] the zero-copy
//! reader that replicators and the apply actor share, [`WalHardStateStore`] the term and vote
//! the election actor owns.
//!
//! A node's data directory (see [`open`]):
//!
//! ```text
//! dir/hard_state    term and vote, replaced atomically (raftlog_wal::HardStateFile)
//! dir/log/          the WAL: segment files and the lock that keeps a second node out
//! ```
//!
//! The semantics are [`super::mem_store`]'s, with two differences that only make this store
//! more durable than the model: `truncate_from` syncs the entries it keeps (the WAL seals the
//! segment it cuts, and a sealed name promises synced records), so the durable index may
//! move up to `index - 1`; and a process crash (not a power loss) loses nothing written,
//! since the page cache survives it and recovery syncs what it finds. The shared scenarios
//! at the bottom of this file run against both stores.
//!
//! Every WAL error becomes a [`StorageError`] naming what was being done and the WAL's own
//! message (file, byte offset, errno). The node treats each one as fatal; the WAL is poisoned
//! by any I/O error, so no later call can pretend to succeed either.

use std::path::Path;
use std::sync::Arc;

use raftlog_wal::{HardStateFile, NewEntry, Options, RecoveryReport, StoredEntry, Wal, WalReader};

use crate::node::storage::{
    FlushJob, FlushOutcome, HardStateStore, LogReader, LogStore, StorageError, StorageResult,
};
use crate::raft::election::HardState;
use crate::raft::log_rules::{entries_are_contiguous, LogView};
use crate::raft::message::{Entry, EntryPayload};
use crate::types::{LogId, LogIndex, NodeId, Term};

/// The subdirectory of a node's data directory that holds the WAL.
pub const LOG_DIR_NAME: &str = "log";

/// Opens (or creates) the storage of a node in `dir`: the WAL in `dir/log`, recovered, and the
/// hard state in `dir`. The WAL is opened first, so its directory lock keeps a second process
/// away from the hard state as well. Refuses, with the WAL's reason, a log that recovery
/// cannot trust, and a log that does not start at entry 1 (this node has no snapshots to
/// start from anywhere else).
pub fn open(
    dir: &Path,
    options: Options,
) -> StorageResult<(WalLogStore, WalHardStateStore, RecoveryReport)> {
    let faults = options.faults.clone();
    let log_dir = dir.join(LOG_DIR_NAME);
    let (wal, report) = Wal::open(&log_dir, options)
        .map_err(|e| wal_error(&format!("opening the log in {}", log_dir.display()), e))?;
    if wal.first_index() != 1 {
        return Err(StorageError(format!(
            "the log in {} starts at entry {}, not 1, and this node has no snapshot to start \
             from there",
            log_dir.display(),
            wal.first_index()
        )));
    }
    let (file, _) = HardStateFile::open_with_faults(dir, faults)
        .map_err(|e| wal_error(&format!("opening the hard state in {}", dir.display()), e))?;
    Ok((WalLogStore { wal }, WalHardStateStore { file }, report))
}

/// A WAL error as a storage error: what was being done, then the WAL's message.
fn wal_error(what: &str, error: raftlog_wal::Error) -> StorageError {
    StorageError(format!("{what}: {error}"))
}

/// The log on disk, as its single owner (the WAL actor) uses it.
#[derive(Debug)]
pub struct WalLogStore {
    wal: Wal,
}

impl WalLogStore {
    /// Test hook: the active segment's byte range that a power loss may take (see
    /// `Wal::unflushed_bytes`).
    #[cfg(test)]
    fn unflushed_bytes(&self) -> Option<(std::path::PathBuf, u64, u64)> {
        self.wal.unflushed_bytes()
    }
}

impl LogView for WalLogStore {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.wal.last_index())
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        match index.0 {
            0 => Some(Term(0)),
            index => self.wal.term_at(index).map(Term),
        }
    }

    /// From the WAL's term runs, not entry by entry: if the entry before `from` has `term`,
    /// the answer is where that term's only run starts (terms never decrease); else `from`.
    fn first_index_of_term(&self, term: Term, from: LogIndex) -> LogIndex {
        if from.0 <= 1 || self.term_at(from.prev()) != Some(term) {
            return from;
        }
        let first = self.wal.first_index_of_term(term.0);
        LogIndex(first.expect("the log holds the entry before `from`, of this term"))
    }
}

impl LogStore for WalLogStore {
    fn last_log_id(&self) -> LogId {
        LogId::new(Term(self.wal.last_term()), LogIndex(self.wal.last_index()))
    }

    fn append(&mut self, entries: &[Entry]) -> StorageResult<()> {
        let last = self.last_log_id();
        assert!(
            entries_are_contiguous(last, entries),
            "append after {last} is not contiguous"
        );
        let (Some(first), Some(newest)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let batch: Vec<NewEntry<'_>> = entries
            .iter()
            .map(|entry| NewEntry {
                index: entry.log_id.index.0,
                term: entry.log_id.term.0,
                kind: entry.payload.kind(),
                payload: entry.payload.bytes(),
            })
            .collect();
        self.wal.append(&batch).map_err(|e| {
            let (from, to) = (first.log_id, newest.log_id);
            wal_error(&format!("appending entries {from}..={to} to the WAL"), e)
        })
    }

    fn truncate_from(&mut self, index: LogIndex) -> StorageResult<()> {
        assert!(index.0 >= 1, "truncating from index 0");
        self.wal
            .truncate_from(index.0)
            .map_err(|e| wal_error(&format!("truncating the WAL from {index}"), e))
    }

    /// A poisoned WAL is an error here, not `None`: the node must stop, not wait for a flush
    /// that can never come.
    fn start_flush(&mut self) -> StorageResult<Option<FlushJob>> {
        let job = self
            .wal
            .start_flush()
            .map_err(|e| wal_error("starting a WAL flush", e))?;
        Ok(job.map(|job| Box::new(move || Box::new(job.run()) as FlushOutcome) as FlushJob))
    }

    fn finish_flush(&mut self, outcome: FlushOutcome) -> StorageResult<LogIndex> {
        let outcome = outcome
            .downcast::<raftlog_wal::FlushOutcome>()
            .expect("a flush outcome of this store");
        let index = outcome.index();
        self.wal.finish_flush(*outcome).map(LogIndex).map_err(|e| {
            let index = LogIndex(index);
            wal_error(&format!("flushing the WAL through entry {index}"), e)
        })
    }

    fn durable_index(&self) -> LogIndex {
        LogIndex(self.wal.durable_index())
    }

    fn reader(&self) -> Arc<dyn LogReader> {
        Arc::new(WalLogReader {
            reader: self.wal.reader(),
        })
    }
}

/// Reads the log for actors other than its owner: every appended entry, durable or not, with
/// payloads that are zero-copy slices of the segment maps (valid after truncation too).
#[derive(Clone, Debug)]
pub struct WalLogReader {
    reader: WalReader,
}

/// Rebuilds an entry from its record; an unknown kind byte is corruption or a newer format.
fn to_entry(stored: StoredEntry) -> StorageResult<Entry> {
    let StoredEntry {
        index,
        term,
        kind,
        payload,
    } = stored;
    let payload = EntryPayload::from_stored(kind, payload).ok_or_else(|| {
        StorageError(format!(
            "entry {index} in the WAL has kind {kind}, which this version does not know"
        ))
    })?;
    Ok(Entry {
        log_id: LogId::new(Term(term), LogIndex(index)),
        payload,
    })
}

impl LogReader for WalLogReader {
    fn entries(&self, from: LogIndex, to: LogIndex, bytes_max: u64) -> StorageResult<Vec<Entry>> {
        let from = from.0.max(1);
        if from > to.0 {
            return Ok(Vec::new());
        }
        let stored = self
            .reader
            .read_range(from, to.0, bytes_max)
            .map_err(|e| wal_error(&format!("reading entries {from}..={to} of the WAL"), e))?;
        stored.into_iter().map(to_entry).collect()
    }

    /// `None` past the end, and also once the WAL is poisoned: the WAL actor has reported
    /// that error as fatal and the node is stopping, so there is nothing left to ship.
    fn term_at(&self, index: LogIndex) -> Option<Term> {
        match index.0 {
            0 => Some(Term(0)),
            index => self.reader.term_at(index).ok().flatten().map(Term),
        }
    }

    fn last_index(&self) -> LogIndex {
        LogIndex(self.reader.last_index())
    }
}

/// Term and vote in `dir/hard_state`, replaced atomically and durably by every save.
#[derive(Debug)]
pub struct WalHardStateStore {
    file: HardStateFile,
}

impl HardStateStore for WalHardStateStore {
    fn load(&self) -> HardState {
        let saved = self.file.saved().unwrap_or_default();
        HardState {
            term: Term(saved.term),
            voted_for: saved.voted_for.map(NodeId),
        }
    }

    /// Panics (in `HardStateFile::save`) if the term goes back or the vote changes within a
    /// term. The election core never asks for either: within a term it only ever goes from
    /// no vote to a vote (Raft §5.2), and it saves in order, one save at a time.
    fn save(&mut self, hard_state: HardState) -> StorageResult<()> {
        let state = raftlog_wal::HardState {
            term: hard_state.term.0,
            voted_for: hard_state.voted_for.map(|node| node.0),
        };
        self.file
            .save(&state)
            .map_err(|e| wal_error(&format!("saving term {} and vote", hard_state.term), e))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use raftlog_wal::{Fault, FaultInjector};

    use super::*;
    use crate::node::mem_store::{MemDisk, MemLogStore, SharedDisk};

    /// A scratch directory, on tmpfs when there is one (fsync is free there), removed on drop.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new() -> ScratchDir {
            static COUNT: AtomicU64 = AtomicU64::new(0);
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            };
            let name = format!(
                "raftlog-wal-store-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            );
            let path = base.join(name);
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("a scratch dir");
            ScratchDir(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Small segments, so a few hundred entries roll several times; no spare thread.
    fn options() -> Options {
        Options {
            segment_bytes: 16 << 10,
            payload_bytes_max: 4 << 10,
            spare_segments: false,
            faults: None,
        }
    }

    fn noop(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(Term(term), LogIndex(index)),
            payload: EntryPayload::Noop,
        }
    }

    fn command(term: u64, index: u64, payload: &[u8]) -> Entry {
        Entry {
            log_id: LogId::new(Term(term), LogIndex(index)),
            payload: EntryPayload::Command(Bytes::copy_from_slice(payload)),
        }
    }

    /// Entries `from..=to` in `term`: commands whose payloads depend on index and term.
    fn commands(term: u64, from: u64, to: u64) -> Vec<Entry> {
        (from..=to)
            .map(|i| {
                command(
                    term,
                    i,
                    format!("t{term}-i{i}-{}", "x".repeat(i as usize % 40)).as_bytes(),
                )
            })
            .collect()
    }

    fn flush(store: &mut impl LogStore) -> LogIndex {
        let job = store.start_flush().unwrap().expect("something to flush");
        store.finish_flush(job()).unwrap()
    }

    fn all_entries(store: &impl LogStore) -> Vec<Entry> {
        store
            .reader()
            .entries(LogIndex(1), store.last_index(), u64::MAX)
            .unwrap()
    }

    // ---- the scenarios both stores must pass -----------------------------------------------

    /// What lies under a log store: it opens incarnations, restarts them, and loses power.
    trait Disk {
        type Store: LogStore;
        fn open(&mut self) -> Self::Store;
        /// The process restarts: nothing written is lost (the page cache survives).
        fn restart(&mut self, store: Self::Store) -> Self::Store {
            drop(store);
            self.open()
        }
        /// The power fails: exactly what was never flushed is lost. Then a restart.
        fn power_loss(&mut self, store: Self::Store) -> Self::Store;
    }

    struct MemTestDisk(SharedDisk);

    impl Disk for MemTestDisk {
        type Store = MemLogStore;
        fn open(&mut self) -> MemLogStore {
            MemLogStore::open(self.0.clone())
        }
        fn power_loss(&mut self, store: MemLogStore) -> MemLogStore {
            drop(store);
            self.0.lock().unwrap().crash();
            self.open()
        }
    }

    struct WalTestDisk(ScratchDir);

    impl Disk for WalTestDisk {
        type Store = WalLogStore;
        fn open(&mut self) -> WalLogStore {
            open(self.0.path(), options()).unwrap().0
        }
        /// Zeroes what the WAL wrote after its last flush, as a preallocated file reads where
        /// the pages never reached the disk.
        fn power_loss(&mut self, store: WalLogStore) -> WalLogStore {
            let unflushed = store.unflushed_bytes();
            drop(store);
            if let Some((path, from, to)) = unflushed {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.write_all_at(&vec![0; (to - from) as usize], from)
                    .unwrap();
            }
            self.open()
        }
    }

    /// A named scenario, run on a fresh disk.
    type Scenario<D> = (&'static str, fn(&mut D));

    fn scenarios<D: Disk>() -> Vec<Scenario<D>> {
        vec![
            ("an empty log", an_empty_log::<D>),
            (
                "round trip across restarts",
                entries_round_trip_across_restarts::<D>,
            ),
            (
                "power loss",
                a_power_loss_keeps_exactly_what_was_flushed::<D>,
            ),
            (
                "flush vs truncation",
                a_flush_started_before_a_truncation_does_not_cover_what_follows_it::<D>,
            ),
            ("truncate and re-append", truncate_then_reappend::<D>),
            ("one flush at a time", one_flush_at_a_time::<D>),
            (
                "byte limit",
                reader_respects_the_byte_limit_but_returns_at_least_one::<D>,
            ),
            (
                "first index of term",
                first_index_of_term_matches_a_walk_back::<D>,
            ),
        ]
    }

    fn run_scenarios<D: Disk>(mut new_disk: impl FnMut() -> D) {
        for (name, scenario) in scenarios::<D>() {
            eprintln!("scenario: {name}");
            scenario(&mut new_disk());
        }
    }

    #[test]
    fn shared_scenarios_pass_on_the_memory_store() {
        run_scenarios(|| MemTestDisk(MemDisk::new_shared()));
    }

    #[test]
    fn shared_scenarios_pass_on_the_wal_store() {
        run_scenarios(|| WalTestDisk(ScratchDir::new()));
    }

    fn an_empty_log<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        assert_eq!(store.last_log_id(), LogId::default());
        assert_eq!(
            (store.last_index(), store.durable_index()),
            (LogIndex(0), LogIndex(0))
        );
        assert_eq!(
            (store.term_at(LogIndex(0)), store.term_at(LogIndex(1))),
            (Some(Term(0)), None)
        );
        assert!(store.start_flush().unwrap().is_none(), "nothing to flush");
        let reader = store.reader();
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(5), 100).unwrap(),
            vec![]
        );
        assert_eq!(
            (reader.last_index(), reader.term_at(LogIndex(0))),
            (LogIndex(0), Some(Term(0)))
        );
        store.append(&[]).unwrap();
        assert_eq!(store.last_index(), LogIndex(0));
    }

    fn entries_round_trip_across_restarts<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        let mut written = vec![noop(1, 1)];
        written.extend(commands(1, 2, 150));
        written.push(noop(3, 151));
        written.extend(commands(3, 152, 300));
        for batch in written.chunks(7) {
            store.append(batch).unwrap();
        }
        assert_eq!(store.last_log_id(), LogId::new(Term(3), LogIndex(300)));
        assert_eq!(all_entries(&store), written);
        assert_eq!(flush(&mut store), LogIndex(300));
        let store = disk.restart(store);
        assert_eq!(
            (store.last_index(), store.durable_index()),
            (LogIndex(300), LogIndex(300))
        );
        assert_eq!(all_entries(&store), written);
        let reader = store.reader();
        assert_eq!(
            reader.entries(LogIndex(0), LogIndex(2), u64::MAX).unwrap(),
            written[..2]
        );
        assert_eq!(
            reader
                .entries(LogIndex(150), LogIndex(152), u64::MAX)
                .unwrap(),
            written[149..152]
        );
        assert_eq!(
            reader
                .entries(LogIndex(300), LogIndex(400), u64::MAX)
                .unwrap(),
            written[299..]
        );
        assert_eq!(
            reader
                .entries(LogIndex(301), LogIndex(400), u64::MAX)
                .unwrap(),
            vec![]
        );
        assert_eq!(
            reader.entries(LogIndex(9), LogIndex(8), u64::MAX).unwrap(),
            vec![]
        );
        assert_eq!(
            (reader.term_at(LogIndex(151)), reader.term_at(LogIndex(301))),
            (Some(Term(3)), None)
        );
        assert_eq!(reader.last_index(), LogIndex(300));
    }

    fn a_power_loss_keeps_exactly_what_was_flushed<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        store.append(&[noop(1, 1), noop(1, 2)]).unwrap();
        assert_eq!(flush(&mut store), LogIndex(2));
        store.append(&commands(1, 3, 40)).unwrap();
        let mut store = disk.power_loss(store);
        assert_eq!(store.last_log_id(), LogId::new(Term(1), LogIndex(2)));
        assert_eq!(store.durable_index(), LogIndex(2));
        store.append(&commands(2, 3, 5)).unwrap();
        assert_eq!(flush(&mut store), LogIndex(5));
        let store = disk.power_loss(store);
        let mut expected = vec![noop(1, 1), noop(1, 2)];
        expected.extend(commands(2, 3, 5));
        assert_eq!(all_entries(&store), expected);
    }

    fn a_flush_started_before_a_truncation_does_not_cover_what_follows_it<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        store.append(&[noop(1, 1), noop(1, 2)]).unwrap();
        let job = store.start_flush().unwrap().unwrap();
        store.truncate_from(LogIndex(2)).unwrap();
        store.append(&[noop(2, 2)]).unwrap();
        // The memory store says 0; the WAL 1, since its truncation syncs what it keeps.
        let durable = store.finish_flush(job()).unwrap();
        assert!(durable < LogIndex(2), "the old flush vouched for {durable}");
        assert_eq!(flush(&mut store), LogIndex(2));
        let store = disk.power_loss(store);
        assert_eq!(all_entries(&store), vec![noop(1, 1), noop(2, 2)]);
    }

    fn truncate_then_reappend<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        store.append(&commands(1, 1, 60)).unwrap();
        assert_eq!(flush(&mut store), LogIndex(60));
        store.append(&commands(1, 61, 80)).unwrap();
        store.truncate_from(LogIndex(70)).unwrap();
        let durable = store.durable_index();
        assert!(
            durable >= LogIndex(60) && durable <= LogIndex(69),
            "durable {durable}"
        );
        store.truncate_from(LogIndex(100)).unwrap(); // past the end: nothing happens
        assert_eq!(store.last_index(), LogIndex(69));
        store.truncate_from(LogIndex(30)).unwrap();
        assert_eq!(
            (store.last_log_id(), store.durable_index()),
            (LogId::new(Term(1), LogIndex(29)), LogIndex(29))
        );
        assert_eq!(store.term_at(LogIndex(30)), None);
        let mut expected = commands(1, 1, 29);
        expected.extend(commands(4, 30, 45));
        store.append(&expected[29..]).unwrap();
        assert_eq!(flush(&mut store), LogIndex(45));
        assert_eq!(all_entries(&store), expected);
        let mut store = disk.restart(store);
        assert_eq!(all_entries(&store), expected);
        store.truncate_from(LogIndex(1)).unwrap();
        assert_eq!(
            (store.last_log_id(), store.durable_index()),
            (LogId::default(), LogIndex(0))
        );
        store.append(&[noop(5, 1)]).unwrap();
        flush(&mut store);
        let store = disk.power_loss(store);
        assert_eq!(all_entries(&store), vec![noop(5, 1)]);
    }

    fn one_flush_at_a_time<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        store.append(&commands(1, 1, 3)).unwrap();
        let job = store.start_flush().unwrap().expect("a flush");
        store.append(&commands(1, 4, 6)).unwrap();
        assert!(
            store.start_flush().unwrap().is_none(),
            "a flush is in flight"
        );
        assert_eq!(store.finish_flush(job()).unwrap(), LogIndex(3));
        assert_eq!(flush(&mut store), LogIndex(6));
        assert!(store.start_flush().unwrap().is_none(), "all durable");
    }

    fn reader_respects_the_byte_limit_but_returns_at_least_one<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        let big = |i| command(1, i, &[7u8; 100]);
        store.append(&[big(1), big(2), big(3)]).unwrap();
        let reader = store.reader();
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(3), 10).unwrap().len(),
            1
        );
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(3), 200).unwrap().len(),
            2
        );
        assert_eq!(
            reader
                .entries(LogIndex(2), LogIndex(9), 1000)
                .unwrap()
                .len(),
            2
        );
        store.append(&[noop(1, 4), noop(1, 5)]).unwrap();
        // No-ops weigh nothing.
        assert_eq!(
            reader.entries(LogIndex(3), LogIndex(5), 100).unwrap().len(),
            3
        );
    }

    /// `first_index_of_term` as the memory store and the Raft tests define it: walk back.
    fn walk_back(log: &impl LogView, term: Term, from: LogIndex) -> LogIndex {
        let mut index = from;
        while index.0 > 1 && log.term_at(index.prev()) == Some(term) {
            index = index.prev();
        }
        index
    }

    fn first_index_of_term_matches_a_walk_back<D: Disk>(disk: &mut D) {
        let mut store = disk.open();
        let terms = [1, 1, 2, 2, 2, 5, 7, 7, 7, 7];
        let entries: Vec<Entry> = (1..).zip(terms).map(|(i, t)| noop(t, i)).collect();
        store.append(&entries).unwrap();
        for term in 0..9 {
            for from in 0..=12 {
                let (term, from) = (Term(term), LogIndex(from));
                assert_eq!(
                    store.first_index_of_term(term, from),
                    walk_back(&store, term, from),
                    "first_index_of_term({term}, {from})"
                );
            }
        }
        assert_eq!(store.first_index_of_term(Term(2), LogIndex(5)), LogIndex(3));
    }

    // ---- the WAL store's own -----------------------------------------------------------------

    #[test]
    fn a_process_crash_loses_nothing_and_recovery_makes_it_durable() {
        let dir = ScratchDir::new();
        let (mut store, _, report) = open(dir.path(), options()).unwrap();
        assert_eq!((report.first_index, report.last_index), (1, 0));
        store.append(&commands(1, 1, 30)).unwrap();
        flush(&mut store);
        store.append(&commands(1, 31, 40)).unwrap();
        drop(store);
        let (store, _, report) = open(dir.path(), options()).unwrap();
        assert_eq!(report.last_index, 40);
        assert_eq!(
            store.durable_index(),
            LogIndex(40),
            "recovery syncs what it keeps"
        );
        assert_eq!(all_entries(&store), commands(1, 1, 40));
        assert!(dir.path().join(LOG_DIR_NAME).is_dir());
    }

    #[test]
    fn a_flush_job_runs_on_another_thread_while_appending() {
        let dir = ScratchDir::new();
        let (mut store, _, _) = open(dir.path(), options()).unwrap();
        store.append(&commands(1, 1, 100)).unwrap();
        let job = store.start_flush().unwrap().unwrap();
        let flusher = std::thread::spawn(job);
        for first in (101..=300).step_by(10) {
            store.append(&commands(1, first, first + 9)).unwrap();
        }
        let outcome = flusher.join().unwrap();
        // At least what the job covered; more if a segment roll synced in the meantime.
        let durable = store.finish_flush(outcome).unwrap();
        assert!(
            durable >= LogIndex(100) && durable <= LogIndex(300),
            "durable {durable}"
        );
        assert_eq!(flush(&mut store), LogIndex(300));
        assert_eq!(all_entries(&store), commands(1, 1, 300));
    }

    #[test]
    fn reader_payloads_are_zero_copy_and_survive_truncation() {
        let dir = ScratchDir::new();
        let (mut store, _, _) = open(dir.path(), options()).unwrap();
        let written = commands(1, 1, 50);
        store.append(&written).unwrap();
        let reader = store.reader();
        let first = reader.entries(LogIndex(1), LogIndex(50), u64::MAX).unwrap();
        let again = reader.entries(LogIndex(1), LogIndex(50), u64::MAX).unwrap();
        assert_eq!(first, written);
        for ((a, b), w) in first.iter().zip(&again).zip(&written) {
            let (a, b, w) = (a.payload.bytes(), b.payload.bytes(), w.payload.bytes());
            assert_eq!(
                a.as_ptr(),
                b.as_ptr(),
                "two reads share the segment map's bytes"
            );
            assert_ne!(a.as_ptr(), w.as_ptr(), "not the appended buffer");
        }
        store.truncate_from(LogIndex(1)).unwrap();
        store.append(&commands(2, 1, 50)).unwrap();
        assert_eq!(first, written, "held slices do not change");
        assert_eq!(all_entries(&store), commands(2, 1, 50));
    }

    #[test]
    fn an_unknown_kind_is_a_storage_error() {
        let dir = ScratchDir::new();
        let (mut wal, _) = Wal::open(&dir.path().join(LOG_DIR_NAME), options()).unwrap();
        let entry = |index, kind| NewEntry {
            index,
            term: 1,
            kind,
            payload: b"x",
        };
        wal.append(&[entry(1, EntryPayload::KIND_COMMAND), entry(2, 9)])
            .unwrap();
        wal.flush().unwrap();
        drop(wal);
        let (store, _, _) = open(dir.path(), options()).unwrap();
        let reader = store.reader();
        assert_eq!(
            reader.entries(LogIndex(1), LogIndex(1), 100).unwrap(),
            vec![command(1, 1, b"x")]
        );
        let error = reader.entries(LogIndex(1), LogIndex(2), 100).unwrap_err();
        assert!(
            error.to_string().contains("entry 2 in the WAL has kind 9"),
            "{error}"
        );
    }

    #[test]
    fn a_poisoned_wal_fails_every_call_including_start_flush() {
        let dir = ScratchDir::new();
        let faults = FaultInjector::new();
        let options = Options {
            faults: Some(faults.clone()),
            ..options()
        };
        let (mut store, _, _) = open(dir.path(), options).unwrap();
        store.append(&commands(1, 1, 5)).unwrap();
        let job = store.start_flush().unwrap().unwrap();
        faults.fail_after(1, Fault::Eio);
        let error = store.finish_flush(job()).unwrap_err().to_string();
        assert!(
            error.contains("flushing the WAL through entry i5") && error.contains("fdatasync"),
            "{error}"
        );
        let error = store
            .start_flush()
            .err()
            .expect("start_flush on a poisoned WAL fails");
        assert!(error.to_string().contains("poisoned"), "{error}");
        assert!(store.append(&commands(1, 6, 6)).is_err());
        assert!(store.truncate_from(LogIndex(2)).is_err());
        assert!(store
            .reader()
            .entries(LogIndex(1), LogIndex(5), 100)
            .is_err());
        assert_eq!(
            store.reader().term_at(LogIndex(3)),
            None,
            "the node is stopping"
        );
    }

    #[test]
    fn open_refuses_a_locked_directory_and_a_log_not_starting_at_1() {
        let dir = ScratchDir::new();
        let first = open(dir.path(), options()).unwrap();
        let error = open(dir.path(), options()).unwrap_err();
        assert!(error.to_string().contains("locked"), "{error}");
        drop(first);
        let other = ScratchDir::new();
        let (mut wal, _) = Wal::open(&other.path().join(LOG_DIR_NAME), options()).unwrap();
        wal.append(&[NewEntry {
            index: 7,
            term: 1,
            kind: 0,
            payload: b"",
        }])
        .unwrap();
        drop(wal);
        let error = open(other.path(), options()).unwrap_err();
        assert!(error.to_string().contains("starts at entry 7"), "{error}");
    }

    #[test]
    fn hard_state_round_trips_across_reopen() {
        let dir = ScratchDir::new();
        let (_, mut hard_state, _) = open(dir.path(), options()).unwrap();
        assert_eq!(hard_state.load(), HardState::default());
        let voted = HardState {
            term: Term(3),
            voted_for: Some(NodeId(2)),
        };
        hard_state
            .save(HardState {
                term: Term(3),
                voted_for: None,
            })
            .unwrap();
        hard_state.save(voted).unwrap();
        assert_eq!(hard_state.load(), voted);
        drop(hard_state);
        let (_, mut hard_state, _) = open(dir.path(), options()).unwrap();
        assert_eq!(hard_state.load(), voted);
        let next = HardState {
            term: Term(4),
            voted_for: None,
        };
        hard_state.save(next).unwrap();
        drop(hard_state);
        assert_eq!(open(dir.path(), options()).unwrap().1.load(), next);
        assert!(dir.path().join("hard_state").is_file());
    }

    /// Raft §5.2: one vote per term. The election core never asks for a second one; if it
    /// ever did, the store stops the node rather than write it.
    #[test]
    #[should_panic(expected = "vote changed within term 3")]
    fn a_second_vote_in_a_term_is_an_invariant_violation() {
        let dir = ScratchDir::new();
        let (_, mut hard_state, _) = open(dir.path(), options()).unwrap();
        hard_state
            .save(HardState {
                term: Term(3),
                voted_for: Some(NodeId(2)),
            })
            .unwrap();
        let _ = hard_state.save(HardState {
            term: Term(3),
            voted_for: Some(NodeId(1)),
        });
    }
}
