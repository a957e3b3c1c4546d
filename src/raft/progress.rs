//! What the leader knows about one follower's log, and when to send it what (Raft §5.3 with
//! the probe/replicate states of etcd-raft's `tracker/progress.go`).
//!
//! - **Probe**: the leader does not know where the follower's log diverges. It sends one
//!   AppendEntries at a time and waits for the answer, moving `next_index` back a term per
//!   rejection (using the follower's [`ConflictHint`]).
//! - **Replicate**: the follower matched; the leader streams appends optimistically, up to the
//!   in-flight window, advancing `next_index` as it sends.
//!
//! Invariant: `match_index < next_index`.

use std::time::Duration;

use crate::raft::inflight::Inflight;
use crate::raft::message::ConflictHint;
use crate::types::{LogIndex, MonoTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    Probe,
    Replicate,
}

/// The batching and flow-control limits of one follower's replication stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationLimits {
    pub entries_per_append_max: usize,
    pub bytes_per_append_max: u64,
    pub inflight_appends_max: usize,
    pub inflight_bytes_max: u64,
    /// An append unanswered for this long is presumed lost: fall back to probing.
    pub append_timeout: Duration,
}

/// The next append to send: entries from `from`, at most this many and (after the first)
/// this many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendPlan {
    pub from: LogIndex,
    pub entry_count_max: usize,
    pub bytes_max: u64,
}

#[derive(Clone, Debug)]
pub struct Progress {
    match_index: LogIndex,
    next_index: LogIndex,
    state: ReplicationState,
    inflight: Inflight,
    /// In Probe: when the outstanding probe was sent; `None` when none is outstanding.
    probe_sent_at: Option<MonoTime>,
    limits: ReplicationLimits,
}

impl Progress {
    /// A fresh follower record for a leader whose log ends at `leader_last_index`: optimistic
    /// about the follower (next = leader's last + 1), probing to find out.
    pub fn new(leader_last_index: LogIndex, limits: ReplicationLimits) -> Self {
        Self {
            match_index: LogIndex(0),
            next_index: leader_last_index.next(),
            state: ReplicationState::Probe,
            inflight: Inflight::new(limits.inflight_appends_max, limits.inflight_bytes_max),
            probe_sent_at: None,
            limits,
        }
    }

    pub fn match_index(&self) -> LogIndex {
        self.match_index
    }

    pub fn next_index(&self) -> LogIndex {
        self.next_index
    }

    pub fn state(&self) -> ReplicationState {
        self.state
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Whether nothing is outstanding: no probe waiting and no append unacknowledged.
    pub fn is_idle(&self) -> bool {
        self.probe_sent_at.is_none() && self.inflight.is_empty()
    }

    /// What to send next given the leader's last index, or `None` when the follower is up to
    /// date or the window is closed (a probe outstanding, or the in-flight window full).
    pub fn next_append(&self, leader_last_index: LogIndex) -> Option<AppendPlan> {
        let paused = match self.state {
            ReplicationState::Probe => self.probe_sent_at.is_some(),
            ReplicationState::Replicate => self.inflight.is_full(),
        };
        if paused {
            return None;
        }
        let wants_entries = self.next_index <= leader_last_index;
        // A probe is sent even with no entries: it is how the leader learns whether the
        // follower holds `next_index - 1`.
        let wants_probe =
            self.state == ReplicationState::Probe && self.match_index < leader_last_index;
        if !wants_entries && !wants_probe {
            return None;
        }
        Some(AppendPlan {
            from: self.next_index,
            entry_count_max: self.limits.entries_per_append_max,
            bytes_max: self.limits.bytes_per_append_max,
        })
    }

    /// Records that an append of the entries `from..=last_index` (possibly none) was sent.
    pub fn on_sent(&mut self, last_index: LogIndex, bytes: u64, now: MonoTime) {
        match self.state {
            ReplicationState::Probe => self.probe_sent_at = Some(now),
            ReplicationState::Replicate => {
                if last_index >= self.next_index {
                    self.inflight.push(last_index, bytes, now);
                    self.next_index = last_index.next();
                }
            }
        }
        self.assert_ordered();
    }

    /// The follower durably matches through `match_index`. Returns whether the match advanced.
    pub fn on_success(&mut self, match_index: LogIndex) -> bool {
        if self.state == ReplicationState::Probe {
            // Any answer reopens the probe window; a stale one only re-sends.
            self.probe_sent_at = None;
        }
        if match_index <= self.match_index {
            return false;
        }
        self.match_index = match_index;
        self.inflight.free_through(match_index);
        if self.state == ReplicationState::Probe {
            self.state = ReplicationState::Replicate;
            self.inflight.clear();
        }
        self.next_index = self.next_index.max(match_index.next());
        self.assert_ordered();
        true
    }

    /// The follower rejected the append whose prev was `rejected_prev`. Returns whether this
    /// changed anything (a stale rejection, for an append already superseded, does not).
    pub fn on_reject(&mut self, rejected_prev: LogIndex, hint: ConflictHint) -> bool {
        let current = match self.state {
            ReplicationState::Probe => rejected_prev.next() == self.next_index,
            // In Replicate any rejection above the match means the stream broke somewhere.
            ReplicationState::Replicate => rejected_prev >= self.match_index,
        };
        if !current {
            return false;
        }
        let retry_from = match hint {
            ConflictHint::LogTooShort { last_index } => last_index.next().min(rejected_prev),
            // Skip the follower's whole conflicting term at once (Raft §5.3's optimization).
            ConflictHint::TermMismatch { first_index, .. } => first_index.min(rejected_prev),
        };
        self.become_probe(retry_from.max(self.match_index.next()));
        true
    }

    /// Called on the leader's timer. Returns true if an append was presumed lost, in which
    /// case the progress went back to probing from just after the match.
    pub fn on_tick(&mut self, now: MonoTime) -> bool {
        let oldest = match self.state {
            ReplicationState::Probe => self.probe_sent_at,
            ReplicationState::Replicate => self.inflight.oldest_sent_at(),
        };
        match oldest {
            Some(sent_at) if now.saturating_since(sent_at) >= self.limits.append_timeout => {
                self.become_probe(self.match_index.next());
                true
            }
            _ => false,
        }
    }

    fn become_probe(&mut self, next_index: LogIndex) {
        self.state = ReplicationState::Probe;
        self.next_index = next_index;
        self.probe_sent_at = None;
        self.inflight.clear();
        self.assert_ordered();
    }

    fn assert_ordered(&self) {
        assert!(
            self.match_index < self.next_index,
            "progress out of order: match {} next {}",
            self.match_index,
            self.next_index
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Term;

    fn limits() -> ReplicationLimits {
        ReplicationLimits {
            entries_per_append_max: 10,
            bytes_per_append_max: 1 << 20,
            inflight_appends_max: 2,
            inflight_bytes_max: 1 << 20,
            append_timeout: Duration::from_millis(100),
        }
    }

    fn ms(v: u64) -> MonoTime {
        MonoTime(v * 1000)
    }

    #[test]
    fn probes_one_at_a_time_then_replicates_pipelined() {
        let mut p = Progress::new(LogIndex(10), limits());
        let plan = p.next_append(LogIndex(10)).expect("probe");
        assert_eq!(plan.from, LogIndex(11));
        p.on_sent(LogIndex(10), 0, ms(0));
        assert_eq!(p.next_append(LogIndex(12)), None, "one probe at a time");
        assert!(p.on_success(LogIndex(10)));
        assert_eq!(p.state(), ReplicationState::Replicate);
        p.on_sent(LogIndex(12), 10, ms(1));
        assert_eq!(p.next_index(), LogIndex(13));
        p.on_sent(LogIndex(14), 10, ms(1));
        assert_eq!(p.next_append(LogIndex(20)), None, "window of two is full");
        p.on_success(LogIndex(12));
        assert_eq!(p.next_append(LogIndex(20)).unwrap().from, LogIndex(15));
    }

    #[test]
    fn an_up_to_date_follower_gets_nothing() {
        let mut p = Progress::new(LogIndex(5), limits());
        p.on_sent(LogIndex(5), 0, ms(0));
        p.on_success(LogIndex(5));
        assert_eq!(p.next_append(LogIndex(5)), None);
        assert!(p.is_idle());
    }

    #[test]
    fn rejection_skips_back_a_whole_term() {
        let mut p = Progress::new(LogIndex(100), limits());
        p.on_sent(LogIndex(100), 0, ms(0));
        let hint = ConflictHint::TermMismatch {
            term: Term(3),
            first_index: LogIndex(40),
        };
        assert!(p.on_reject(LogIndex(100), hint));
        assert_eq!(p.next_index(), LogIndex(40));
        assert_eq!(p.next_append(LogIndex(100)).unwrap().from, LogIndex(40));
    }

    #[test]
    fn rejection_of_a_short_log_jumps_to_its_end() {
        let mut p = Progress::new(LogIndex(100), limits());
        p.on_sent(LogIndex(100), 0, ms(0));
        assert!(p.on_reject(
            LogIndex(100),
            ConflictHint::LogTooShort {
                last_index: LogIndex(7)
            }
        ));
        assert_eq!(p.next_index(), LogIndex(8));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(LogIndex(100), limits());
        p.on_sent(LogIndex(100), 0, ms(0));
        p.on_reject(
            LogIndex(100),
            ConflictHint::LogTooShort {
                last_index: LogIndex(50),
            },
        );
        // A duplicate of the first rejection arrives after the leader moved on.
        assert!(!p.on_reject(
            LogIndex(100),
            ConflictHint::LogTooShort {
                last_index: LogIndex(50)
            }
        ));
        assert_eq!(p.next_index(), LogIndex(51));
    }

    #[test]
    fn never_moves_next_below_the_match() {
        let mut p = Progress::new(LogIndex(10), limits());
        p.on_sent(LogIndex(10), 0, ms(0));
        p.on_success(LogIndex(8));
        p.on_sent(LogIndex(10), 0, ms(1));
        let hint = ConflictHint::TermMismatch {
            term: Term(1),
            first_index: LogIndex(1),
        };
        assert!(p.on_reject(LogIndex(9), hint));
        assert_eq!(p.next_index(), LogIndex(9));
    }

    #[test]
    fn a_lost_append_is_retried_after_the_timeout() {
        let mut p = Progress::new(LogIndex(0), limits());
        p.on_sent(LogIndex(0), 0, ms(0));
        p.on_success(LogIndex(0));
        p.on_sent(LogIndex(5), 50, ms(10));
        assert!(!p.on_tick(ms(50)));
        assert!(p.on_tick(ms(110)));
        assert_eq!(p.state(), ReplicationState::Probe);
        assert_eq!(p.next_append(LogIndex(5)).unwrap().from, LogIndex(1));
    }

    #[test]
    fn a_stale_success_reopens_a_probe_but_moves_nothing() {
        let mut p = Progress::new(LogIndex(10), limits());
        p.on_sent(LogIndex(10), 0, ms(0));
        assert!(!p.on_success(LogIndex(0)));
        assert_eq!(p.state(), ReplicationState::Probe);
        assert!(p.next_append(LogIndex(10)).is_some());
    }
}
