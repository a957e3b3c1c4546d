//! A replicator: on the leader, one per follower and per term. It owns that follower's
//! [`Progress`] and streams AppendEntries to it — probing for the point where the logs
//! agree, then pipelining batches within the in-flight window — and reports how far the
//! follower durably matches to the election actor, which counts the commit.
//!
//! Takes: [`Appended`] (new entries to ship), [`Committed`] (a commit index to pass on),
//! [`PeerResponse`] (the follower's answers), [`Stop`].

use std::sync::Arc;

use ::metrics::Gauge;
use actix::prelude::*;

use crate::node::clock::Clock;
use crate::node::election_actor::{ElectionActor, HigherTermSeen, MatchAdvanced};
use crate::node::events::{Appended, Committed};
use crate::node::metrics;
use crate::node::storage::LogReader;
use crate::raft::message::{AppendEntries, AppendEntriesResponse, MessageBody, PeerMessage};
use crate::raft::progress::{AppendPlan, Progress, ReplicationLimits};
use crate::transport::PeerNetwork;
use crate::types::{LogId, LogIndex, NodeId, Term};

/// An AppendEntries response from this replicator's follower.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerResponse {
    pub term: Term,
    pub response: AppendEntriesResponse,
}

/// The term is over (or the node is stopping): stop replicating.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

pub struct ReplicatorActor {
    leader: NodeId,
    peer: NodeId,
    term: Term,
    /// `None` until the WAL announces this term's no-op: only then is the leader's last index
    /// known, which is where probing starts.
    progress: Option<Progress>,
    leader_last: LogIndex,
    committed: LogIndex,
    /// The commit index last sent to the follower.
    commit_sent: LogIndex,
    limits: ReplicationLimits,
    reader: Arc<dyn LogReader>,
    network: Arc<dyn PeerNetwork>,
    election: Addr<ElectionActor>,
    clock: Clock,
    lag_gauge: Gauge,
}

impl ReplicatorActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        leader: NodeId,
        peer: NodeId,
        term: Term,
        committed: LogIndex,
        limits: ReplicationLimits,
        reader: Arc<dyn LogReader>,
        network: Arc<dyn PeerNetwork>,
        election: Addr<ElectionActor>,
        clock: Clock,
    ) -> Self {
        Self {
            lag_gauge: metrics::replication_lag_gauge(leader, peer),
            leader,
            peer,
            term,
            progress: None,
            leader_last: LogIndex(0),
            committed,
            commit_sent: LogIndex(0),
            limits,
            reader,
            network,
            election,
            clock,
        }
    }

    /// Sends whatever the window allows, then, if the follower has not yet been told the
    /// current commit index and nothing is on its way that would tell it, an empty append.
    fn maybe_send(&mut self) {
        while let Some(plan) = self
            .progress
            .as_ref()
            .and_then(|p| p.next_append(self.leader_last))
        {
            let Some(sent_last) = self.send_append(plan) else {
                return;
            };
            if sent_last < plan.from {
                break; // an empty probe: one is enough until it is answered
            }
        }
        let Some(progress) = &self.progress else {
            return;
        };
        if self.commit_sent < self.committed
            && progress.is_idle()
            && progress.match_index() > LogIndex(0)
        {
            let plan = AppendPlan {
                from: progress.next_index(),
                entry_count_max: 0,
                bytes_max: 0,
            };
            self.send_append(plan);
        }
    }

    /// Sends one AppendEntries per `plan`; returns the last index it covers, or `None` if it
    /// could not be built.
    fn send_append(&mut self, plan: AppendPlan) -> Option<LogIndex> {
        let prev_index = plan.from.prev();
        let Some(prev_term) = self.reader.term_at(prev_index) else {
            tracing::error!(peer = %self.peer, %prev_index, "entry needed by the follower is not in the log (snapshots are not supported yet)");
            return None;
        };
        let last_wanted = self
            .leader_last
            .min(plan.from + (plan.entry_count_max as u64).saturating_sub(1));
        let entries = if plan.entry_count_max == 0 || plan.from > last_wanted {
            Vec::new()
        } else {
            match self.reader.entries(plan.from, last_wanted, plan.bytes_max) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!(peer = %self.peer, %error, "reading entries to replicate failed");
                    return None;
                }
            }
        };
        // A leader ships only entries of its own term or earlier; anything later means this
        // node has stepped down and the log moved on under a newer leader.
        if entries.iter().any(|e| e.log_id.term > self.term) {
            return None;
        }
        let request = AppendEntries {
            prev: LogId::new(prev_term, prev_index),
            entries,
            leader_commit: self.committed,
        };
        let last = request.last_index();
        let bytes = request.entries.iter().map(|e| e.payload_bytes()).sum();
        let now = self.clock.now();
        self.progress.as_mut()?.on_sent(last, bytes, now);
        self.commit_sent = self.committed;
        self.network.send(PeerMessage {
            from: self.leader,
            to: self.peer,
            term: self.term,
            body: MessageBody::AppendEntries(request),
        });
        Some(last)
    }
}

impl Actor for ReplicatorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Lost appends are noticed by timeout, checked a few times per timeout period.
        let period = self.limits.append_timeout / 4;
        ctx.run_interval(period, |act, _| {
            let now = act.clock.now();
            if act.progress.as_mut().is_some_and(|p| p.on_tick(now)) {
                act.maybe_send();
            }
        });
    }
}

impl Handler<Appended> for ReplicatorActor {
    type Result = ();

    fn handle(&mut self, msg: Appended, _: &mut Context<Self>) {
        if msg.term != self.term {
            return;
        }
        self.leader_last = self.leader_last.max(msg.last_index);
        if self.progress.is_none() {
            self.progress = Some(Progress::new(self.leader_last, self.limits));
        }
        self.maybe_send();
    }
}

impl Handler<Committed> for ReplicatorActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        self.committed = self.committed.max(msg.index);
        self.maybe_send();
    }
}

impl Handler<PeerResponse> for ReplicatorActor {
    type Result = ();

    fn handle(&mut self, msg: PeerResponse, _: &mut Context<Self>) {
        if msg.term > self.term {
            self.election.do_send(HigherTermSeen { term: msg.term });
            return;
        }
        let Some(progress) = self.progress.as_mut() else {
            return;
        };
        if msg.term < self.term {
            return;
        }
        match msg.response {
            AppendEntriesResponse::Success { match_index } => {
                if progress.on_success(match_index) {
                    let lag = self.leader_last.0.saturating_sub(match_index.0);
                    self.lag_gauge.set(lag as f64);
                    self.election.do_send(MatchAdvanced {
                        term: self.term,
                        peer: self.peer,
                        index: match_index,
                    });
                }
            }
            AppendEntriesResponse::Reject {
                rejected_prev,
                hint,
            } => {
                progress.on_reject(rejected_prev, hint);
            }
        }
        self.maybe_send();
    }
}

impl Handler<Stop> for ReplicatorActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
