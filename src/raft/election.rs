//! Terms, votes and roles: leader election with PreVote and CheckQuorum (Raft §5.2, §5.4.1,
//! thesis §9.6 and §6.2), and the leader's per-term state.
//!
//! [`Election`] is the single authority on term, vote, role and known leader. It is driven by
//! the election actor with peer messages, timer wake-ups and progress reports, and answers with
//! [`Action`]s. It never reads a clock or the log: the time and the node's last log id are
//! passed in (the actor asks the WAL for the latter, so that a vote is never granted on a stale
//! view of the log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::raft::commit::CommitRule;
use crate::raft::leader::{LeaderState, Transfer};
use crate::raft::message::{
    Heartbeat, HeartbeatResponse, MessageBody, PeerMessage, ReadIndexRequest, ReadIndexResponse,
    VoteRequest, VoteResponse,
};
use crate::raft::quorum::majority;
use crate::raft::read::{lease_duration, lease_holds, ReadLevel, ReadOrigin};
use crate::raft::timeout::Jitter;
use crate::types::{LogId, LogIndex, MonoTime, NodeId, Term};

#[derive(Clone, Debug)]
pub struct ElectionConfig {
    pub id: NodeId,
    /// Every voter, this node included.
    pub voters: BTreeSet<NodeId>,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat_interval: Duration,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Serve `lease` reads from the leader lease (they fall back to ReadIndex when off).
    pub lease_reads: bool,
    /// The bound on clock drift between nodes that the lease assumes, as a fraction.
    pub clock_drift_max: f64,
    /// Reads a node may have in progress at once; beyond it they fail at once.
    pub reads_max: usize,
    /// How long a follower waits for the leader to answer a forwarded read.
    pub read_timeout: Duration,
    pub jitter_seed: u64,
    pub overrides: SafetyOverrides,
}

/// Switches that break Raft on purpose, so that tests can show the checkers catch the break.
/// Never set outside tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SafetyOverrides {
    /// Grant votes without the up-to-date check (§5.4.1).
    pub skip_up_to_date_check: bool,
    /// Commit old-term entries by counting replicas (breaks §5.4.2).
    pub commit_rule: CommitRule,
    /// Grant votes even while in contact with a live leader (breaks the lease).
    pub skip_vote_withholding: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The durable part of the election state (Raft Figure 2's "persistent state" minus the log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// Who leads, as far as this node knows, and in which term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleState {
    pub term: Term,
    pub role: Role,
    pub leader: Option<NodeId>,
}

/// What the election actor must do. Actions run in order, and
/// [`Action::PersistHardState`] is a barrier: every action after it — in this list or a later
/// one — runs only once that hard state is durable. That is how "term and vote are durable
/// before any reply that depends on them" is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    PersistHardState(HardState),
    Send(PeerMessage),
    RoleChanged(RoleState),
    /// Follower: the leader says entries through this index are committed here.
    LearnedCommit(LogIndex),
    /// Leader: the commit index advanced to this index.
    Committed(LogIndex),
    /// The local read `id` may be served once this node has applied `index`. Confirming it
    /// cost `round_trips` peer round trips on its path: none under the lease, one for a
    /// leader's heartbeat round (shared by the reads that wait for it), one more when a
    /// follower asked the leader.
    ReadReady {
        id: u64,
        index: LogIndex,
        round_trips: u32,
    },
    /// The leader started a heartbeat round to confirm waiting reads.
    ReadRoundStarted,
    /// The local read `id` cannot be confirmed here; `leader` is who might.
    ReadFailed {
        id: u64,
        leader: Option<NodeId>,
    },
}

/// Why leadership could not be handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("this node is not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0} is not a voter of this cluster")]
    NotAVoter(NodeId),
}

/// A leader's view of one follower, for status reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    pub id: NodeId,
    pub match_index: LogIndex,
    pub last_ack: Option<Duration>,
}

/// Whether an AppendEntries may go on to the log (after any barrier before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendGate {
    Accept,
    /// From a stale term: the sender has been told our term; drop the message.
    Reject,
}

#[derive(Debug)]
pub struct Election {
    config: ElectionConfig,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    /// Votes received in the current (pre-)campaign: voter → granted.
    votes: BTreeMap<NodeId, bool>,
    election_deadline: MonoTime,
    /// This node campaigns in its current term on its leader's TimeoutNow (a transfer), not
    /// because its own timer ran out.
    transfer_campaign: bool,
    /// When a live leader was last heard from (or, after a restart, when the node started):
    /// within `election_timeout_min` of it, vote requests are ignored (thesis §4.2.3).
    leader_contact_at: Option<MonoTime>,
    leader_state: Option<LeaderState>,
    /// Follower: reads forwarded to the leader, with when to give up on each.
    forwarded_reads: BTreeMap<u64, MonoTime>,
    jitter: Jitter,
}

impl Election {
    /// Restores the election state from the durable hard state, as a follower that knows no
    /// leader. It behaves as if it had just heard from a leader: a restarted node must not
    /// grant a vote that could end a lease it acknowledged before crashing.
    pub fn new(config: ElectionConfig, hard_state: HardState, now: MonoTime) -> Self {
        assert!(
            config.voters.contains(&config.id),
            "a node is one of its voters"
        );
        assert!(config.heartbeat_interval < config.election_timeout_min);
        assert!(config.election_timeout_min <= config.election_timeout_max);
        let jitter = Jitter::new(config.jitter_seed);
        let mut election = Self {
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            role: Role::Follower,
            leader: None,
            votes: BTreeMap::new(),
            election_deadline: now,
            transfer_campaign: false,
            leader_contact_at: Some(now),
            leader_state: None,
            forwarded_reads: BTreeMap::new(),
            jitter,
            config,
        };
        election.reset_election_deadline(now);
        election
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn role_state(&self) -> RoleState {
        RoleState {
            term: self.term,
            role: self.role,
            leader: self.leader,
        }
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    pub fn leader_state(&self) -> Option<&LeaderState> {
        self.leader_state.as_ref()
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// When the actor must call back: the next heartbeat or quorum check on a leader, the
    /// election deadline otherwise.
    pub fn next_wakeup(&self) -> MonoTime {
        let timer = match &self.leader_state {
            Some(leader) => leader.next_wakeup(),
            None => self.election_deadline,
        };
        let read_deadline = self.forwarded_reads.values().min().copied();
        read_deadline.map_or(timer, |deadline| deadline.min(timer))
    }

    /// Whether an election is due: the actor then fetches the last log id and calls
    /// [`Election::on_election_timeout`].
    pub fn election_due(&self, now: MonoTime) -> bool {
        self.role != Role::Leader && now >= self.election_deadline
    }

    /// On a leader, what it knows of each follower: how far its log matches and how long ago
    /// it last answered. Empty on other roles.
    pub fn follower_progress(&self, now: MonoTime) -> Vec<FollowerProgress> {
        let Some(leader) = &self.leader_state else {
            return Vec::new();
        };
        self.config
            .voters
            .iter()
            .filter(|&&id| id != self.config.id)
            .map(|&id| FollowerProgress {
                id,
                match_index: leader.commit.matched(id),
                last_ack: leader.last_ack_at(id).map(|at| now.saturating_since(at)),
            })
            .collect()
    }

    /// The commit index this node knows as leader (`None` on other roles).
    pub fn leader_commit(&self) -> Option<LogIndex> {
        self.leader_state.as_ref().map(|l| l.commit.committed())
    }

    // ---- timers ------------------------------------------------------------------------

    /// The election timer fired with no word from a leader: campaign (Raft §5.2), first with a
    /// PreVote round if enabled so that a node that was merely cut off does not disturb the
    /// cluster with a higher term.
    pub fn on_election_timeout(&mut self, now: MonoTime, last_log: LogId, out: &mut Vec<Action>) {
        if !self.election_due(now) {
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate(now, last_log, out);
        } else {
            self.become_candidate(now, last_log, false, out);
        }
    }

    /// The term and vote handed out in a [`Action::PersistHardState`] are durable, and the
    /// actions after it have gone out. A candidate's campaign starts only now — its vote
    /// requests were held back until its vote for itself was durable — so its timeout runs
    /// from now: a save slower than the election timeout must not end every campaign before
    /// its voters could answer.
    pub fn on_hard_state_saved(&mut self, now: MonoTime) {
        if self.role == Role::Candidate {
            self.reset_candidate_deadline(now);
        }
    }

    /// The leader's timer: send a heartbeat round when due, and run CheckQuorum.
    pub fn on_leader_tick(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        let (id, interval, check_interval) = (
            self.config.id,
            self.config.heartbeat_interval,
            self.config.election_timeout_min,
        );
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        if let Some(false) = leader.maybe_check_quorum(now, &self.config.voters, id, check_interval)
        {
            if self.config.check_quorum {
                self.leader = None;
                self.become_follower(now, self.term, None, out);
                return;
            }
        }
        if leader.transfer.is_some_and(|t| now >= t.give_up_at) {
            // The target did not take over in time (down, or too far behind): keep leading.
            leader.transfer = None;
        }
        if let Some(round) = leader.maybe_start_round(now, interval) {
            self.send_heartbeats(round, out);
        }
    }

    fn send_heartbeats(&mut self, round: u64, out: &mut Vec<Action>) {
        let leader = self
            .leader_state
            .as_ref()
            .expect("only a leader sends heartbeats");
        let committed = leader.commit.committed();
        for &peer in self
            .config
            .voters
            .iter()
            .filter(|&&id| id != self.config.id)
        {
            // Never tell a follower a commit index beyond what it is known to hold.
            let commit = committed.min(leader.commit.matched(peer));
            let body = MessageBody::Heartbeat(Heartbeat { commit, round });
            out.push(Action::Send(self.message_to(peer, self.term, body)));
        }
    }

    // ---- vote requests and responses ---------------------------------------------------

    /// A (pre-)vote request from `from`, sent in `term` (for a PreVote: the term it would
    /// campaign in). `last_log` is this node's last log id, fresh from the WAL.
    pub fn on_vote_request(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        request: &VoteRequest,
        last_log: LogId,
        out: &mut Vec<Action>,
    ) {
        if term > self.term && !request.transfer && self.in_leader_contact(now) {
            // Thesis §4.2.3: a live leader exists; ignore without adopting the term, so a
            // partitioned node rejoining cannot depose it (and leases stay valid).
            return;
        }
        if term < self.term {
            self.reply_vote(from, request.pre_vote, false, self.term, out);
            return;
        }
        let log_ok = self.config.overrides.skip_up_to_date_check
            || request.last_log.is_at_least_as_up_to_date_as(last_log);
        if request.pre_vote {
            // A PreVote changes nothing here. It is granted if a real vote in that term could be.
            let grant = log_ok && (term > self.term || self.can_vote_for(from));
            let reply_term = if grant { term } else { self.term };
            self.reply_vote(from, true, grant, reply_term, out);
            return;
        }
        if term > self.term {
            self.become_follower(now, term, None, out);
        }
        let grant = log_ok && self.can_vote_for(from);
        if grant && self.voted_for != Some(from) {
            self.voted_for = Some(from);
            out.push(Action::PersistHardState(self.hard_state()));
        }
        if grant {
            self.reset_election_deadline(now);
        }
        self.reply_vote(from, false, grant, self.term, out);
    }

    /// One vote per term (§5.2): to whoever we already voted for, or to anyone if we have not
    /// voted and know no leader.
    fn can_vote_for(&self, candidate: NodeId) -> bool {
        self.voted_for == Some(candidate) || (self.voted_for.is_none() && self.leader.is_none())
    }

    fn reply_vote(
        &self,
        to: NodeId,
        pre_vote: bool,
        granted: bool,
        term: Term,
        out: &mut Vec<Action>,
    ) {
        let body = MessageBody::VoteResponse(VoteResponse { pre_vote, granted });
        out.push(Action::Send(self.message_to(to, term, body)));
    }

    pub fn on_vote_response(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        response: &VoteResponse,
        last_log: LogId,
        out: &mut Vec<Action>,
    ) {
        if term > self.term && !(response.pre_vote && response.granted) {
            self.become_follower(now, term, None, out);
            return;
        }
        // A granted PreVote carries the term the campaign would run in; a refused one the
        // voter's own term, which is ours (a higher one made us a follower above).
        let expected = match (response.pre_vote, self.role) {
            (true, Role::PreCandidate) if response.granted => self.term.next(),
            (true, Role::PreCandidate) | (false, Role::Candidate) => self.term,
            _ => return, // an answer to a campaign that is over
        };
        if term != expected || !self.config.voters.contains(&from) {
            return;
        }
        self.votes.entry(from).or_insert(response.granted);
        match self.tally() {
            Tally::Won if response.pre_vote => self.become_candidate(now, last_log, false, out),
            Tally::Won => self.become_leader(now, out),
            Tally::Lost => self.become_follower(now, self.term, None, out),
            Tally::Pending => {}
        }
    }

    fn tally(&self) -> Tally {
        let quorum = majority(self.config.voters.len());
        let granted = self.votes.values().filter(|&&g| g).count();
        let rejected = self.votes.len() - granted;
        if granted >= quorum {
            Tally::Won
        } else if rejected > self.config.voters.len() - quorum {
            Tally::Lost
        } else {
            Tally::Pending
        }
    }

    // ---- messages from a leader --------------------------------------------------------

    /// The term check for an AppendEntries from `from` in `term`. On `Accept` the actor passes
    /// the entries on to the log, after any barrier this pushed.
    pub fn on_append_entries(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        out: &mut Vec<Action>,
    ) -> AppendGate {
        if self.accept_leader_message(now, from, term, out) {
            AppendGate::Accept
        } else {
            AppendGate::Reject
        }
    }

    pub fn on_heartbeat(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        heartbeat: &Heartbeat,
        out: &mut Vec<Action>,
    ) {
        if !self.accept_leader_message(now, from, term, out) {
            return;
        }
        if heartbeat.commit > LogIndex(0) {
            out.push(Action::LearnedCommit(heartbeat.commit));
        }
        let body = MessageBody::HeartbeatResponse(HeartbeatResponse {
            round: heartbeat.round,
        });
        out.push(Action::Send(self.message_to(from, self.term, body)));
    }

    /// Common handling of a message only a leader sends. Returns whether it is from the
    /// current leader; if from a stale one, tells it our term.
    fn accept_leader_message(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        out: &mut Vec<Action>,
    ) -> bool {
        if term < self.term {
            // Answer so a deposed leader learns the new term and steps down.
            let body = MessageBody::HeartbeatResponse(HeartbeatResponse { round: 0 });
            out.push(Action::Send(self.message_to(from, self.term, body)));
            return false;
        }
        assert!(
            !(term == self.term && self.role == Role::Leader),
            "two leaders in {term}: this node {} and {from} (election safety, Raft §5.2)",
            self.config.id
        );
        if term > self.term || self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(now, term, Some(from), out);
        }
        self.leader_contact_at = Some(now);
        self.reset_election_deadline(now);
        true
    }

    pub fn on_heartbeat_response(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        response: &HeartbeatResponse,
        out: &mut Vec<Action>,
    ) {
        if term > self.term {
            self.become_follower(now, term, None, out);
            return;
        }
        if term < self.term {
            return;
        }
        if let Some(leader) = self.leader_state.as_mut() {
            leader.on_heartbeat_ack(from, response.round, now);
            self.release_confirmed_reads(now, out);
        }
    }

    /// Another actor saw a message from a higher term (a replicator's AppendEntries response).
    pub fn on_higher_term(&mut self, now: MonoTime, term: Term, out: &mut Vec<Action>) {
        if term > self.term {
            self.become_follower(now, term, None, out);
        }
    }

    // ---- the leader's commit -------------------------------------------------------------

    /// The leader's no-op for `term` was appended at `index`.
    pub fn on_term_first_index(
        &mut self,
        now: MonoTime,
        term: Term,
        index: LogIndex,
        out: &mut Vec<Action>,
    ) {
        if let Some(leader) = self.current_leader_state(term) {
            if let Some(committed) = leader.commit.on_term_first_index(index) {
                out.push(Action::Committed(committed));
                self.serve_parked_reads(now, out);
            }
        }
    }

    /// `voter` (a follower, or this leader's own WAL) durably holds the leader's log of `term`
    /// through `index`.
    pub fn on_match(
        &mut self,
        now: MonoTime,
        term: Term,
        voter: NodeId,
        index: LogIndex,
        out: &mut Vec<Action>,
    ) {
        if let Some(leader) = self.current_leader_state(term) {
            if let Some(committed) = leader.commit.on_match(voter, index) {
                out.push(Action::Committed(committed));
                self.serve_parked_reads(now, out);
            }
            self.maybe_send_timeout_now(out);
        }
    }

    fn current_leader_state(&mut self, term: Term) -> Option<&mut LeaderState> {
        if term != self.term {
            return None;
        }
        self.leader_state.as_mut()
    }

    // ---- handing over leadership (Raft thesis §3.10) ------------------------------------------

    /// Hands leadership to `to`: once `to` holds everything up to `last_index` (the leader's
    /// last index now), it is told to campaign at once, and voters grant it their votes even
    /// though they still hear from this leader. Until it takes over, this leader keeps
    /// leading but serves no lease reads. A transfer that does not complete within the
    /// maximum election timeout is abandoned.
    pub fn on_transfer_leadership(
        &mut self,
        now: MonoTime,
        to: NodeId,
        last_index: LogIndex,
        out: &mut Vec<Action>,
    ) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.config.voters.contains(&to) {
            return Err(TransferError::NotAVoter(to));
        }
        if to == self.config.id {
            return Ok(());
        }
        let give_up_at = now + self.config.election_timeout_max;
        let leader = self
            .leader_state
            .as_mut()
            .expect("a leader has leader state");
        leader.transfer = Some(Transfer {
            to,
            caught_up_at: last_index,
            give_up_at,
            sent: false,
        });
        self.maybe_send_timeout_now(out);
        Ok(())
    }

    fn maybe_send_timeout_now(&mut self, out: &mut Vec<Action>) {
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let Some(transfer) = leader.transfer.as_mut() else {
            return;
        };
        if transfer.sent || leader.commit.matched(transfer.to) < transfer.caught_up_at {
            return;
        }
        transfer.sent = true;
        leader.lease_forfeited = true;
        let to = transfer.to;
        out.push(Action::Send(self.message_to(
            to,
            self.term,
            MessageBody::TimeoutNow,
        )));
    }

    /// The leader told this node to take over: campaign now, without a PreVote round.
    pub fn on_timeout_now(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        last_log: LogId,
        out: &mut Vec<Action>,
    ) {
        if term == self.term && self.leader == Some(from) && self.role == Role::Follower {
            self.become_candidate(now, last_log, true, out);
        }
    }

    /// Steps down without naming a successor: the others elect one once their election
    /// timers run out. This node waits a full maximum timeout before campaigning itself.
    pub fn on_resign(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        if self.role != Role::Leader {
            return;
        }
        self.become_follower(now, self.term, None, out);
        self.election_deadline =
            now + self.config.election_timeout_max + self.config.election_timeout_min;
    }

    // ---- reads (Raft thesis §6.4) ---------------------------------------------------------

    /// A linearizable read `id` on this node: the leader confirms it; a follower forwards it.
    pub fn on_read(&mut self, now: MonoTime, id: u64, level: ReadLevel, out: &mut Vec<Action>) {
        if self.role == Role::Leader {
            self.leader_read(now, ReadOrigin::Local(id), level, out);
            return;
        }
        match self.leader {
            Some(leader) if self.forwarded_reads.len() < self.config.reads_max => {
                self.forwarded_reads
                    .insert(id, now + self.config.read_timeout);
                let body = MessageBody::ReadIndexRequest(ReadIndexRequest { id, level });
                out.push(Action::Send(self.message_to(leader, self.term, body)));
            }
            leader => out.push(Action::ReadFailed { id, leader }),
        }
    }

    /// A follower's forwarded read.
    pub fn on_read_index_request(
        &mut self,
        now: MonoTime,
        from: NodeId,
        term: Term,
        request: &ReadIndexRequest,
        out: &mut Vec<Action>,
    ) {
        let origin = ReadOrigin::Peer {
            node: from,
            id: request.id,
        };
        if term == self.term && self.role == Role::Leader {
            self.leader_read(now, origin, request.level, out);
        } else {
            self.answer_read(origin, None, 0, out);
        }
    }

    /// The leader's answer to a read this follower forwarded.
    pub fn on_read_index_response(
        &mut self,
        now: MonoTime,
        term: Term,
        response: &ReadIndexResponse,
        out: &mut Vec<Action>,
    ) {
        if term > self.term {
            self.become_follower(now, term, None, out);
            return;
        }
        if self.forwarded_reads.remove(&response.id).is_none() {
            return; // already given up on
        }
        match response.index {
            Some(index) if term == self.term => out.push(Action::ReadReady {
                id: response.id,
                index,
                round_trips: response.round_trips + 1,
            }),
            _ => out.push(Action::ReadFailed {
                id: response.id,
                leader: self.leader,
            }),
        }
    }

    /// Gives up on forwarded reads the leader has not answered in time.
    pub fn expire_reads(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        let expired: Vec<u64> = self
            .forwarded_reads
            .iter()
            .filter(|(_, &deadline)| deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.forwarded_reads.remove(&id);
            out.push(Action::ReadFailed {
                id,
                leader: self.leader,
            });
        }
    }

    fn leader_read(
        &mut self,
        now: MonoTime,
        origin: ReadOrigin,
        level: ReadLevel,
        out: &mut Vec<Action>,
    ) {
        let lease_holds = self.lease_holds(now);
        let leader = self
            .leader_state
            .as_mut()
            .expect("only a leader confirms reads");
        if leader.reads.is_full() {
            return self.answer_read(origin, None, 0, out);
        }
        if !leader.commit.has_committed_own_term() {
            leader.reads.park(origin, level);
            return;
        }
        let index = leader.commit.committed();
        if level == ReadLevel::Lease && lease_holds {
            return self.answer_read(origin, Some(index), 0, out);
        }
        // Confirmed by a round started after this read arrived: the next one.
        let round = leader.round() + 1;
        leader.reads.wait_for_round(origin, index, round);
        self.maybe_start_read_round(now, out);
    }

    /// Starts a round for the waiting reads, unless one is already out: the next starts when
    /// it is confirmed, so reads arriving meanwhile share it.
    fn maybe_start_read_round(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        let interval = self.config.heartbeat_interval;
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let Some(needed) = leader.reads.next_round_needed() else {
            return;
        };
        if leader.read_round_in_flight.is_some() || leader.round() >= needed {
            return;
        }
        let round = leader.start_round(now, interval);
        leader.read_round_in_flight = Some(round);
        out.push(Action::ReadRoundStarted);
        self.send_heartbeats(round, out);
        self.release_confirmed_reads(now, out); // a single-voter cluster confirms at once
    }

    fn release_confirmed_reads(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        let (voters, id) = (&self.config.voters, self.config.id);
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let Some((confirmed, _)) = leader.quorum_round(voters, id) else {
            return;
        };
        if leader
            .read_round_in_flight
            .is_some_and(|round| round <= confirmed)
        {
            leader.read_round_in_flight = None;
        }
        let ready = leader.reads.confirmed_by(confirmed);
        for (origin, index) in ready {
            self.answer_read(origin, Some(index), 1, out);
        }
        self.maybe_start_read_round(now, out);
    }

    fn serve_parked_reads(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        if !leader.commit.has_committed_own_term() {
            return;
        }
        for (origin, level) in leader.reads.unpark() {
            self.leader_read(now, origin, level, out);
        }
    }

    /// Whether the lease holds: lease reads on, CheckQuorum on (it is what makes followers
    /// withhold votes), and the latest majority-acknowledged round recent enough.
    fn lease_holds(&self, now: MonoTime) -> bool {
        if !self.config.lease_reads || !self.config.check_quorum {
            return false;
        }
        let Some(leader) = &self.leader_state else {
            return false;
        };
        if leader.transfer.is_some() || leader.lease_forfeited {
            // Handing over on purpose, or did: another leader may be moments away.
            return false;
        }
        let duration = lease_duration(
            self.config.election_timeout_min,
            self.config.clock_drift_max,
        );
        leader
            .quorum_round(&self.config.voters, self.config.id)
            .is_some_and(|(_, renewed_at)| lease_holds(now, renewed_at, duration))
    }

    fn answer_read(
        &self,
        origin: ReadOrigin,
        index: Option<LogIndex>,
        round_trips: u32,
        out: &mut Vec<Action>,
    ) {
        match (origin, index) {
            (ReadOrigin::Local(id), Some(index)) => out.push(Action::ReadReady {
                id,
                index,
                round_trips,
            }),
            (ReadOrigin::Local(id), None) => out.push(Action::ReadFailed {
                id,
                leader: self.leader,
            }),
            (ReadOrigin::Peer { node, id }, index) => {
                let body = MessageBody::ReadIndexResponse(ReadIndexResponse {
                    id,
                    index,
                    round_trips,
                });
                out.push(Action::Send(self.message_to(node, self.term, body)));
            }
        }
    }

    /// Leadership or the known leader changed: reads in progress cannot be confirmed by
    /// whoever was going to confirm them.
    fn abandon_reads(&mut self, out: &mut Vec<Action>) {
        if let Some(leader) = self.leader_state.as_mut() {
            let origins = leader.reads.drain();
            for origin in origins {
                self.answer_read(origin, None, 0, out);
            }
        }
        for id in std::mem::take(&mut self.forwarded_reads).into_keys() {
            out.push(Action::ReadFailed { id, leader: None });
        }
    }

    // ---- role transitions ----------------------------------------------------------------

    fn become_follower(
        &mut self,
        now: MonoTime,
        term: Term,
        leader: Option<NodeId>,
        out: &mut Vec<Action>,
    ) {
        assert!(term >= self.term, "terms never decrease");
        self.abandon_reads(out);
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            out.push(Action::PersistHardState(self.hard_state()));
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.leader_state = None;
        self.votes.clear();
        self.reset_election_deadline(now);
        out.push(Action::RoleChanged(self.role_state()));
    }

    fn become_pre_candidate(&mut self, now: MonoTime, last_log: LogId, out: &mut Vec<Action>) {
        self.abandon_reads(out);
        self.role = Role::PreCandidate;
        self.leader = None;
        self.leader_contact_at = None;
        self.votes.clear();
        self.reset_election_deadline(now);
        out.push(Action::RoleChanged(self.role_state()));
        self.request_votes(true, false, self.term.next(), last_log, now, out);
    }

    fn become_candidate(
        &mut self,
        now: MonoTime,
        last_log: LogId,
        transfer: bool,
        out: &mut Vec<Action>,
    ) {
        self.abandon_reads(out);
        self.term = self.term.next();
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.leader_contact_at = None;
        self.votes.clear();
        self.transfer_campaign = transfer;
        self.reset_candidate_deadline(now);
        out.push(Action::PersistHardState(self.hard_state()));
        out.push(Action::RoleChanged(self.role_state()));
        self.request_votes(false, transfer, self.term, last_log, now, out);
    }

    fn request_votes(
        &mut self,
        pre_vote: bool,
        transfer: bool,
        term: Term,
        last_log: LogId,
        now: MonoTime,
        out: &mut Vec<Action>,
    ) {
        self.votes.insert(self.config.id, true);
        for &peer in self
            .config
            .voters
            .iter()
            .filter(|&&id| id != self.config.id)
        {
            let body = MessageBody::VoteRequest(VoteRequest {
                pre_vote,
                last_log,
                transfer,
            });
            out.push(Action::Send(self.message_to(peer, term, body)));
        }
        // A single-voter cluster wins on its own vote.
        if self.tally() == Tally::Won {
            if pre_vote {
                self.become_candidate(now, last_log, false, out);
            } else {
                self.become_leader(now, out);
            }
        }
    }

    fn become_leader(&mut self, now: MonoTime, out: &mut Vec<Action>) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.leader_state = Some(LeaderState::new(
            self.term,
            &self.config.voters,
            self.config.overrides.commit_rule,
            now,
            self.config.election_timeout_min,
            self.config.reads_max,
        ));
        out.push(Action::RoleChanged(self.role_state()));
        // Assert leadership at once rather than a heartbeat interval later.
        self.on_leader_tick(now, out);
    }

    fn reset_election_deadline(&mut self, now: MonoTime) {
        let timeout = self.jitter.between(
            self.config.election_timeout_min,
            self.config.election_timeout_max,
        );
        self.election_deadline = now + timeout;
    }

    /// A candidate's timer. A transfer's campaign waits three maximum timeouts instead of one:
    /// its leader has stepped aside and no voter is racing it, so only a slow or lost answer
    /// can hold it up — and each voter must make its new term and vote durable before it
    /// answers, which on a slow disk takes longer than an election timeout. Falling back to
    /// an ordinary election then would hand leadership to whichever node's timer fires first,
    /// not to the node the transfer named. Should the target be gone, the others' own timers
    /// still start an ordinary election after one timeout, so the wait costs no liveness.
    fn reset_candidate_deadline(&mut self, now: MonoTime) {
        if self.transfer_campaign {
            self.election_deadline = now + self.config.election_timeout_max * 3;
        } else {
            self.reset_election_deadline(now);
        }
    }

    /// Within the minimum election timeout of hearing from a live leader (or of being one).
    fn in_leader_contact(&self, now: MonoTime) -> bool {
        if !self.config.check_quorum || self.config.overrides.skip_vote_withholding {
            return false;
        }
        if self.role == Role::Leader {
            return true;
        }
        self.leader_contact_at
            .is_some_and(|at| now.saturating_since(at) < self.config.election_timeout_min)
    }

    fn message_to(&self, to: NodeId, term: Term, body: MessageBody) -> PeerMessage {
        PeerMessage {
            from: self.config.id,
            to,
            term,
            body,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tally {
    Won,
    Lost,
    Pending,
}
