//! Linearizable reads that write nothing to the log: ReadIndex and the leader lease (Raft
//! thesis §6.4 and §6.4.1).
//!
//! - **ReadIndex**: the leader notes its commit index, then confirms it still leads with a
//!   heartbeat round *started after the read arrived* that a majority acknowledges; the read
//!   is served once the state machine has applied that index. Reads queue behind one round in
//!   flight at a time, so many concurrent reads share one confirmation.
//! - **Lease**: while `now < lease_start + election_timeout_min × (1 − clock_drift_max)`, where
//!   `lease_start` is the send time of the latest round a majority acknowledged, no other
//!   leader can exist (followers withhold votes for the minimum election timeout after hearing
//!   from a leader), so the leader answers with its commit index at once.
//!
//! Both need the leader to have committed an entry of its own term first: before that its
//! commit index may lag what an earlier leader committed. This file holds the queue and the
//! lease arithmetic; [`super::election::Election`] drives them.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, MonoTime, NodeId};

/// How a linearizable read is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadLevel {
    /// A heartbeat round confirms leadership.
    ReadIndex,
    /// The lease confirms leadership if it holds; otherwise a heartbeat round does.
    Lease,
}

/// Who asked: this node (the actor's request id), or a follower that forwarded its read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOrigin {
    Local(u64),
    Peer { node: NodeId, id: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WaitingRead {
    origin: ReadOrigin,
    index: LogIndex,
    /// The first heartbeat round that can confirm it: one started after it arrived.
    round: u64,
}

/// The leader's reads in progress.
#[derive(Clone, Debug)]
pub struct ReadQueue {
    /// Reads that arrived before this leader committed an entry of its own term.
    before_own_commit: Vec<(ReadOrigin, ReadLevel)>,
    /// Reads waiting for a confirming round, in arrival (and so round) order.
    waiting: VecDeque<WaitingRead>,
    reads_max: usize,
}

impl ReadQueue {
    pub fn new(reads_max: usize) -> Self {
        Self {
            before_own_commit: Vec::new(),
            waiting: VecDeque::new(),
            reads_max,
        }
    }

    pub fn len(&self) -> usize {
        self.before_own_commit.len() + self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.reads_max
    }

    /// Parks a read until the leader's own-term commit.
    pub fn park(&mut self, origin: ReadOrigin, level: ReadLevel) {
        self.before_own_commit.push((origin, level));
    }

    /// The parked reads, now that the leader has committed in its term.
    pub fn unpark(&mut self) -> Vec<(ReadOrigin, ReadLevel)> {
        std::mem::take(&mut self.before_own_commit)
    }

    /// Queues a read of `index`, to be confirmed by round `round` or a later one.
    pub fn wait_for_round(&mut self, origin: ReadOrigin, index: LogIndex, round: u64) {
        if let Some(last) = self.waiting.back() {
            assert!(last.round <= round, "reads queue in round order");
        }
        self.waiting.push_back(WaitingRead {
            origin,
            index,
            round,
        });
    }

    /// The reads that round `confirmed` (acknowledged by a majority) confirms, with their
    /// read indexes.
    pub fn confirmed_by(&mut self, confirmed: u64) -> Vec<(ReadOrigin, LogIndex)> {
        let mut ready = Vec::new();
        while let Some(read) = self.waiting.front() {
            if read.round > confirmed {
                break;
            }
            ready.push((read.origin, read.index));
            self.waiting.pop_front();
        }
        ready
    }

    /// The round the oldest waiting read needs, if any read waits.
    pub fn next_round_needed(&self) -> Option<u64> {
        self.waiting.front().map(|read| read.round)
    }

    /// Everything queued, for failing it when leadership ends.
    pub fn drain(&mut self) -> Vec<ReadOrigin> {
        let parked = self.before_own_commit.drain(..).map(|(origin, _)| origin);
        let waiting = self.waiting.drain(..).map(|read| read.origin);
        parked.chain(waiting).collect()
    }
}

/// How long a lease lasts from the send time of the round that renewed it:
/// `election_timeout_min × (1 − clock_drift_max)`. The drift bound covers a follower clock
/// that runs slow relative to the leader's, which would let it vote sooner than the leader
/// expects.
pub fn lease_duration(election_timeout_min: Duration, clock_drift_max: f64) -> Duration {
    assert!(
        (0.0..0.5).contains(&clock_drift_max),
        "clock drift bound out of range"
    );
    election_timeout_min.mul_f64(1.0 - clock_drift_max)
}

/// Whether a lease renewed by a round sent at `renewed_at` still holds at `now`.
pub fn lease_holds(now: MonoTime, renewed_at: MonoTime, duration: Duration) -> bool {
    now < renewed_at + duration
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(id: u64) -> ReadOrigin {
        ReadOrigin::Local(id)
    }

    #[test]
    fn a_round_confirms_the_reads_that_arrived_before_it_started() {
        let mut q = ReadQueue::new(10);
        q.wait_for_round(local(1), LogIndex(5), 3);
        q.wait_for_round(local(2), LogIndex(6), 3);
        q.wait_for_round(local(3), LogIndex(7), 4);
        assert_eq!(q.confirmed_by(2), vec![]);
        assert_eq!(
            q.confirmed_by(3),
            vec![(local(1), LogIndex(5)), (local(2), LogIndex(6))]
        );
        assert_eq!(q.next_round_needed(), Some(4));
        assert_eq!(q.confirmed_by(9), vec![(local(3), LogIndex(7))]);
        assert!(q.is_empty());
    }

    #[test]
    fn parked_reads_wait_for_the_own_term_commit_and_everything_drains() {
        let mut q = ReadQueue::new(2);
        q.park(local(1), ReadLevel::Lease);
        q.wait_for_round(local(2), LogIndex(1), 1);
        assert!(q.is_full());
        assert_eq!(q.drain(), vec![local(1), local(2)]);
        assert!(q.is_empty());
    }

    #[test]
    fn lease_arithmetic() {
        let d = lease_duration(Duration::from_millis(150), 0.1);
        assert_eq!(d, Duration::from_millis(135));
        assert!(lease_holds(MonoTime(134_999), MonoTime(0), d));
        assert!(!lease_holds(MonoTime(135_000), MonoTime(0), d));
    }
}
