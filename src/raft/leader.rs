//! What a leader keeps for its term beyond the log: the commit tracker, its heartbeat rounds and
//! which followers answered them. The rounds are how a leader knows it still leads: CheckQuorum
//! counts who answered recently, and (with the reads issue) ReadIndex and the lease are confirmed
//! by a round that a majority acknowledged.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::raft::commit::{CommitRule, CommitTracker};
use crate::raft::quorum::majority;
use crate::raft::read::ReadQueue;
use crate::types::{LogIndex, MonoTime, NodeId, Term};

/// How many recent rounds' send times a leader remembers.
const ROUNDS_REMEMBERED_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub to: NodeId,
    /// The leader's last index when the transfer began: the target must hold it.
    pub caught_up_at: LogIndex,
    pub give_up_at: MonoTime,
    /// Whether TimeoutNow has been sent.
    pub sent: bool,
}

#[derive(Clone, Debug)]
pub struct LeaderState {
    pub commit: CommitTracker,
    pub reads: ReadQueue,
    /// The round started to confirm reads that no majority has acknowledged yet: while one
    /// is out, newly arrived reads wait for the next, so reads share rounds under load.
    pub read_round_in_flight: Option<u64>,
    /// A leadership transfer in progress: to whom, the index it must hold first, and when to
    /// give up. While set, the lease is void — this leader is handing over on purpose.
    pub transfer: Option<Transfer>,
    /// Set once this leader has sent a TimeoutNow: its target may campaign at any later
    /// moment (the message can be delayed), and voters grant a transfer's votes even inside
    /// a live lease — so this leader serves no lease read for the rest of its term, given up
    /// transfer or not.
    pub lease_forfeited: bool,
    /// The last heartbeat round sent; rounds start at 1.
    round: u64,
    rounds_sent_at: VecDeque<(u64, MonoTime)>,
    /// The highest round each follower acknowledged, and when it last acknowledged one.
    acked_round: BTreeMap<NodeId, u64>,
    last_ack_at: BTreeMap<NodeId, MonoTime>,
    next_heartbeat_at: MonoTime,
    /// When CheckQuorum next looks at who answered since the last look.
    quorum_check_at: MonoTime,
    heard_since_check: BTreeSet<NodeId>,
}

impl LeaderState {
    pub fn new(
        term: Term,
        voters: &BTreeSet<NodeId>,
        rule: CommitRule,
        now: MonoTime,
        check_interval: Duration,
        reads_max: usize,
    ) -> Self {
        Self {
            commit: CommitTracker::new(term, voters.iter().copied(), LogIndex(0), rule),
            reads: ReadQueue::new(reads_max),
            read_round_in_flight: None,
            transfer: None,
            lease_forfeited: false,
            round: 0,
            rounds_sent_at: VecDeque::with_capacity(ROUNDS_REMEMBERED_MAX),
            acked_round: BTreeMap::new(),
            last_ack_at: BTreeMap::new(),
            next_heartbeat_at: now,
            quorum_check_at: now + check_interval,
            heard_since_check: BTreeSet::new(),
        }
    }

    pub fn next_wakeup(&self) -> MonoTime {
        let wakeup = self.next_heartbeat_at.min(self.quorum_check_at);
        self.transfer.map_or(wakeup, |t| wakeup.min(t.give_up_at))
    }

    /// The last round started.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Starts a new heartbeat round if one is due at `now`; returns its number.
    pub fn maybe_start_round(&mut self, now: MonoTime, interval: Duration) -> Option<u64> {
        if now < self.next_heartbeat_at {
            return None;
        }
        Some(self.start_round(now, interval))
    }

    /// Starts a heartbeat round now (to confirm reads, or because one is due).
    pub fn start_round(&mut self, now: MonoTime, interval: Duration) -> u64 {
        self.round += 1;
        if self.rounds_sent_at.len() == ROUNDS_REMEMBERED_MAX {
            self.rounds_sent_at.pop_front();
        }
        self.rounds_sent_at.push_back((self.round, now));
        self.next_heartbeat_at = now + interval;
        self.round
    }

    pub fn on_heartbeat_ack(&mut self, from: NodeId, round: u64, now: MonoTime) {
        if round == 0 || round > self.round {
            return; // not an answer to one of this term's rounds
        }
        self.last_ack_at.insert(from, now);
        let acked = self.acked_round.entry(from).or_insert(0);
        *acked = (*acked).max(round);
        self.heard_since_check.insert(from);
    }

    /// When `follower` last answered a heartbeat round of this term.
    pub fn last_ack_at(&self, follower: NodeId) -> Option<MonoTime> {
        self.last_ack_at.get(&follower).copied()
    }

    /// CheckQuorum (Raft thesis §6.2): if a check is due and fewer than a majority (counting
    /// the leader) answered since the last one, the leader must step down. Returns `Some(ok)`
    /// when a check ran.
    pub fn maybe_check_quorum(
        &mut self,
        now: MonoTime,
        voters: &BTreeSet<NodeId>,
        self_id: NodeId,
        interval: Duration,
    ) -> Option<bool> {
        if now < self.quorum_check_at {
            return None;
        }
        let heard = voters
            .iter()
            .filter(|&&id| id == self_id || self.heard_since_check.contains(&id))
            .count();
        self.heard_since_check.clear();
        self.quorum_check_at = now + interval;
        Some(heard >= majority(voters.len()))
    }

    /// The latest round a majority of voters (the leader counts for every round) acknowledged,
    /// with the time it was sent: the base of leadership confirmation for reads.
    pub fn quorum_round(
        &self,
        voters: &BTreeSet<NodeId>,
        self_id: NodeId,
    ) -> Option<(u64, MonoTime)> {
        let mut rounds: Vec<u64> = voters
            .iter()
            .map(|&id| {
                if id == self_id {
                    self.round
                } else {
                    self.acked_round.get(&id).copied().unwrap_or(0)
                }
            })
            .collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let round = rounds[majority(voters.len()) - 1];
        self.rounds_sent_at
            .iter()
            .find(|(r, _)| *r == round)
            .map(|&(r, at)| (r, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters() -> BTreeSet<NodeId> {
        (1..=3).map(NodeId).collect()
    }

    fn ms(v: u64) -> MonoTime {
        MonoTime(v * 1000)
    }

    const HB: Duration = Duration::from_millis(50);
    const CHECK: Duration = Duration::from_millis(150);

    #[test]
    fn rounds_are_paced_by_the_interval() {
        let mut l = LeaderState::new(Term(1), &voters(), CommitRule::default(), ms(0), CHECK, 16);
        assert_eq!(l.maybe_start_round(ms(0), HB), Some(1));
        assert_eq!(l.maybe_start_round(ms(10), HB), None);
        assert_eq!(l.maybe_start_round(ms(50), HB), Some(2));
        assert_eq!(l.next_wakeup(), ms(100));
    }

    #[test]
    fn check_quorum_needs_a_majority_to_have_answered() {
        let v = voters();
        let mut l = LeaderState::new(Term(1), &v, CommitRule::default(), ms(0), CHECK, 16);
        l.maybe_start_round(ms(0), HB);
        assert_eq!(
            l.maybe_check_quorum(ms(100), &v, NodeId(1), CHECK),
            None,
            "not due"
        );
        assert_eq!(
            l.maybe_check_quorum(ms(150), &v, NodeId(1), CHECK),
            Some(false)
        );
        l.on_heartbeat_ack(NodeId(2), 1, ms(1));
        assert_eq!(
            l.maybe_check_quorum(ms(300), &v, NodeId(1), CHECK),
            Some(true)
        );
        assert_eq!(
            l.maybe_check_quorum(ms(450), &v, NodeId(1), CHECK),
            Some(false),
            "acks are per period"
        );
    }

    #[test]
    fn quorum_round_is_what_a_majority_acknowledged() {
        let v = voters();
        let mut l = LeaderState::new(Term(1), &v, CommitRule::default(), ms(0), CHECK, 16);
        l.maybe_start_round(ms(0), HB);
        l.maybe_start_round(ms(50), HB);
        assert_eq!(l.quorum_round(&v, NodeId(1)), None, "no follower answered");
        l.on_heartbeat_ack(NodeId(3), 2, ms(51));
        assert_eq!(l.quorum_round(&v, NodeId(1)), Some((2, ms(50))));
        l.on_heartbeat_ack(NodeId(2), 7, ms(51)); // from the future: ignored
        assert_eq!(l.quorum_round(&v, NodeId(1)), Some((2, ms(50))));
    }
}
