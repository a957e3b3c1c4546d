//! The seams between the actors and the disk: the log store the WAL actor owns, the reader
//! that replicators and the apply actor share, the hard-state store the election actor owns,
//! and the pool that runs their blocking work off the event loop.
//!
//! Real nodes implement these over the `raftlog-wal` crate ([`super::wal_store`]); the
//! simulator and the core benchmark implement them in memory ([`super::mem_store`]), with a
//! crash that loses exactly what was never flushed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{rngs::SmallRng, Rng};

use crate::raft::election::HardState;
use crate::raft::log_rules::LogView;
use crate::raft::message::Entry;
use crate::types::{LogId, LogIndex, Term};

/// A storage failure. The node treats every one as fatal: the store is poisoned and the node
/// stops rather than pretend a write happened.
#[derive(Clone, Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct StorageError(pub String);

pub type StorageResult<T> = Result<T, StorageError>;

/// The result of a flush job, handed back to [`LogStore::finish_flush`].
pub type FlushOutcome = Box<dyn std::any::Any + Send>;

/// A flush that runs on a blocking thread while the store keeps taking appends.
pub type FlushJob = Box<dyn FnOnce() -> FlushOutcome + Send>;

/// The log, as its single owner (the WAL actor) uses it.
pub trait LogStore: LogView + Send + 'static {
    fn last_log_id(&self) -> LogId;
    /// Writes entries after the last one (contiguous, terms non-decreasing). Not durable
    /// until a flush covering them finishes.
    fn append(&mut self, entries: &[Entry]) -> StorageResult<()>;
    /// Removes `index` and everything after it, durably, before returning.
    fn truncate_from(&mut self, index: LogIndex) -> StorageResult<()>;
    /// A job that makes everything appended so far durable; `None` when there is nothing to
    /// flush or a flush is already running. An error (a poisoned store) is fatal.
    fn start_flush(&mut self) -> StorageResult<Option<FlushJob>>;
    /// Completes a flush; returns the index now durable.
    fn finish_flush(&mut self, outcome: FlushOutcome) -> StorageResult<LogIndex>;
    fn durable_index(&self) -> LogIndex;
    fn reader(&self) -> Arc<dyn LogReader>;
}

/// Read access to the log for actors other than its owner. Reads see appended entries,
/// durable or not; callers check terms where that matters.
pub trait LogReader: Send + Sync + 'static {
    /// Entries `from..=to`, at most `bytes_max` of payload (but at least one entry if any).
    fn entries(&self, from: LogIndex, to: LogIndex, bytes_max: u64) -> StorageResult<Vec<Entry>>;
    fn term_at(&self, index: LogIndex) -> Option<Term>;
    fn last_index(&self) -> LogIndex;
}

/// Term and vote, saved atomically and durably. Blocking: call it from the blocking pool.
pub trait HardStateStore: Send + 'static {
    fn load(&self) -> HardState;
    fn save(&mut self, hard_state: HardState) -> StorageResult<()>;
}

/// Runs blocking jobs off the event loop. Callers keep at most one job of a kind in flight
/// (one flush, one hard-state save), so completion order never matters.
#[derive(Clone)]
pub enum BlockingPool {
    /// One dedicated OS thread per pool: real fsyncs.
    Thread(std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>),
    /// For the simulator: the job runs on the event loop after a random delay drawn from the
    /// shared seeded RNG, which is how slow and stalled disks are simulated.
    Simulated(Arc<SimulatedDisk>),
    /// Runs each job at once, on the caller's thread. The job's completion message still goes
    /// through the actor's mailbox, so the actors see the same order of events as with a
    /// thread. For two kinds of caller: the WAL actor on a thread of its own (the node
    /// runtime's WAL arbiter), where a blocking flush holds up only the WAL's own mailbox;
    /// and stores whose jobs do not block, like the in-memory store of the core benchmark,
    /// whose flush is a few assignments and so is "durable at once", as openraft's
    /// `benchmarks/minimal` store reports its I/O complete inside the append call. A job that
    /// blocks must never run this way on the node's thread, which sends the heartbeats.
    Inline,
}

/// The simulated disk's timing, shared by the pools of one simulated node.
pub struct SimulatedDisk {
    pub rng: Arc<Mutex<SmallRng>>,
    pub latency: Mutex<(Duration, Duration)>,
}

impl BlockingPool {
    /// A pool backed by one new OS thread named `name`.
    pub fn thread(name: &str) -> Self {
        let (sender, receiver) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .expect("spawning a blocking I/O thread");
        BlockingPool::Thread(sender)
    }

    pub fn execute(&self, job: Box<dyn FnOnce() + Send>) {
        match self {
            BlockingPool::Thread(sender) => sender
                .send(job)
                .expect("the blocking I/O thread outlives the node"),
            BlockingPool::Simulated(disk) => {
                let (min, max) = *disk.latency.lock().unwrap();
                let delay = if max > min {
                    disk.rng.lock().unwrap().gen_range(min..max)
                } else {
                    min
                };
                actix::spawn(async move {
                    tokio::time::sleep(delay).await;
                    job();
                });
            }
            BlockingPool::Inline => job(),
        }
    }
}
