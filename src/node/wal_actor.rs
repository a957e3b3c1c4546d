//! The WAL actor: the single owner and writer of the local log.
//!
//! It appends the leader's proposals (assigning their indexes in the current term) and the
//! entries a leader sends this follower, truncates conflicts, and flushes with group commit:
//! one flush runs at a time on the blocking pool, and covers everything appended before it
//! started. It publishes how far the log is durable and answers a follower's AppendEntries
//! only once the entries it acknowledges are durable.
//!
//! Each handler starts a flush only as its last step, after it has told the other actors
//! what it appended: the pool may run the flush on this actor's own thread (the node
//! runtime does, see `runtime.rs`), and the leader's replicators must not wait for its
//! flush before they send the entries on.
//!
//! Takes: [`Propose`], [`FollowerAppend`], [`LastLogId`], [`RoleChanged`], [`Committed`],
//! [`Drain`].

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;

use crate::node::events::{Appended, Committed, DurableUpTo, RoleChanged, TermStarted};
use crate::node::storage::{BlockingPool, FlushOutcome, LogStore};
use crate::node::{metrics, FatalHandler, ProposeError};
use crate::raft::election::{Role, RoleState};
use crate::raft::log_rules::{decide_append, follower_commit, AppendDecision};
use crate::raft::message::{
    AppendEntries, AppendEntriesResponse, Entry, EntryPayload, MessageBody, PeerMessage,
};
use crate::raft::uncommitted::UncommittedBytes;
use crate::transport::PeerNetwork;
use crate::types::{LogId, LogIndex, NodeId, Term};

/// Leader: append these payloads in `term`, one entry each, each with the proposer's token.
/// Answered with [`Proposed`] to `reply_to`, in the same order, before the entries can
/// possibly commit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub term: Term,
    pub commands: Vec<(u64, EntryPayload)>,
    pub reply_to: Recipient<Proposed>,
}

/// Where each proposed command landed, by the token it was proposed with.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Proposed {
    pub results: Vec<(u64, Result<LogId, ProposeError>)>,
}

/// Follower: an AppendEntries from `leader` of `term` that passed the election actor's term
/// check.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FollowerAppend {
    pub term: Term,
    pub leader: NodeId,
    pub request: AppendEntries,
}

/// The id of the last entry in the log, for vote decisions: asked by the election actor,
/// which waits for the answer, so no AppendEntries it forwarded earlier is left out.
#[derive(Message)]
#[rtype(result = "LogId")]
pub struct LastLogId;

/// Make everything appended durable, then answer: the last step of a graceful shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub reply: tokio::sync::oneshot::Sender<LogIndex>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct FlushDone(FlushOutcome);

/// Who hears from the WAL actor.
pub struct WalLinks {
    pub election_durable: Recipient<DurableUpTo>,
    pub election_term_started: Recipient<TermStarted>,
    pub router_appended: Recipient<Appended>,
    pub apply_committed: Recipient<Committed>,
}

/// A follower's acknowledgement, sent once the log is durable through `match_index`.
struct PendingAck {
    term: Term,
    leader: NodeId,
    match_index: LogIndex,
}

pub struct WalActor {
    id: NodeId,
    store: Box<dyn LogStore>,
    pool: BlockingPool,
    network: Arc<dyn PeerNetwork>,
    links: WalLinks,
    on_fatal: FatalHandler,
    role: RoleState,
    committed: LogIndex,
    flushing: bool,
    pending_acks: VecDeque<PendingAck>,
    uncommitted: UncommittedBytes,
    /// Answered once everything appended is durable (a graceful shutdown).
    drains: Vec<tokio::sync::oneshot::Sender<LogIndex>>,
    metrics: metrics::WalMetrics,
}

impl WalActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NodeId,
        store: Box<dyn LogStore>,
        pool: BlockingPool,
        network: Arc<dyn PeerNetwork>,
        links: WalLinks,
        on_fatal: FatalHandler,
        role: RoleState,
        uncommitted_bytes_max: u64,
    ) -> Self {
        Self {
            id,
            store,
            pool,
            network,
            links,
            on_fatal,
            role,
            committed: LogIndex(0),
            flushing: false,
            pending_acks: VecDeque::new(),
            uncommitted: UncommittedBytes::new(uncommitted_bytes_max),
            drains: Vec::new(),
            metrics: metrics::WalMetrics::new(id),
        }
    }

    fn is_leader_of(&self, term: Term) -> bool {
        self.role.role == Role::Leader && self.role.term == term
    }

    /// Writes `entries` to the store, unflushed; the caller starts the flush once it has
    /// sent its notices.
    fn append(&mut self, entries: &[Entry], ctx: &mut Context<Self>) -> bool {
        self.metrics.appended(
            entries.len(),
            entries.iter().map(Entry::payload_bytes).sum(),
        );
        if let Err(error) = self.store.append(entries) {
            (self.on_fatal)(&format!("WAL append failed: {error}"));
            ctx.stop();
            return false;
        }
        true
    }

    fn maybe_start_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing {
            return;
        }
        let job = match self.store.start_flush() {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(error) => {
                (self.on_fatal)(&format!("WAL flush failed: {error}"));
                ctx.stop();
                return;
            }
        };
        self.flushing = true;
        let (me, metrics) = (ctx.address(), self.metrics.clone());
        self.pool.execute(Box::new(move || {
            let started = std::time::Instant::now();
            let outcome = job();
            metrics.flushed(started.elapsed());
            me.do_send(FlushDone(outcome));
        }));
    }

    fn on_durable(&mut self, durable: LogIndex) {
        self.links.election_durable.do_send(DurableUpTo {
            term: self.role.term,
            index: durable,
        });
        while let Some(ack) = self.pending_acks.front() {
            if ack.match_index > durable {
                break;
            }
            let ack = self.pending_acks.pop_front().expect("just looked at it");
            let body = AppendEntriesResponse::Success {
                match_index: ack.match_index,
            };
            self.send(
                ack.leader,
                ack.term,
                MessageBody::AppendEntriesResponse(body),
            );
        }
    }

    fn maybe_finish_drains(&mut self) {
        let durable = self.store.durable_index();
        if !self.flushing && durable >= self.store.last_index() {
            for reply in self.drains.drain(..) {
                let _ = reply.send(durable);
            }
        }
    }

    fn send(&self, to: NodeId, term: Term, body: MessageBody) {
        self.network.send(PeerMessage {
            from: self.id,
            to,
            term,
            body,
        });
    }

    fn append_leader_noop(&mut self, ctx: &mut Context<Self>) {
        let term = self.role.term;
        let index = self.store.last_index().next();
        let noop = Entry {
            log_id: LogId::new(term, index),
            payload: EntryPayload::Noop,
        };
        if self.append(&[noop], ctx) {
            self.links
                .election_term_started
                .do_send(TermStarted { term, index });
            self.links.router_appended.do_send(Appended {
                term,
                last_index: index,
            });
            self.maybe_start_flush(ctx);
        }
    }
}

impl Actor for WalActor {
    type Context = Context<Self>;
}

impl Handler<Propose> for WalActor {
    type Result = ();

    fn handle(&mut self, msg: Propose, ctx: &mut Context<Self>) {
        let bytes: u64 = msg
            .commands
            .iter()
            .map(|(_, c)| c.bytes().len() as u64)
            .sum();
        let refusal = if !self.is_leader_of(msg.term) {
            Some(ProposeError::NotLeader {
                leader: self.role.leader,
                term: self.role.term,
            })
        } else if !self.uncommitted.admits(bytes) {
            Some(ProposeError::Busy)
        } else {
            None
        };
        if let Some(error) = refusal {
            let results = msg.commands.iter().map(|(t, _)| (*t, Err(error))).collect();
            msg.reply_to.do_send(Proposed { results });
            return;
        }
        let first = self.store.last_index().next();
        let entries: Vec<Entry> = (0..)
            .zip(&msg.commands)
            .map(|(offset, (_, payload))| Entry {
                log_id: LogId::new(msg.term, first + offset),
                payload: payload.clone(),
            })
            .collect();
        let last = entries
            .last()
            .map(|e| e.log_id.index)
            .unwrap_or(first.prev());
        // Tell the proposer where its commands landed before anything can commit them.
        let results = entries
            .iter()
            .zip(&msg.commands)
            .map(|(e, (token, _))| (*token, Ok(e.log_id)))
            .collect();
        msg.reply_to.do_send(Proposed { results });
        if entries.is_empty() || !self.append(&entries, ctx) {
            return;
        }
        self.uncommitted.on_proposed(last, bytes);
        self.links.router_appended.do_send(Appended {
            term: msg.term,
            last_index: last,
        });
        self.maybe_start_flush(ctx);
    }
}

impl Handler<FollowerAppend> for WalActor {
    type Result = ();

    fn handle(&mut self, msg: FollowerAppend, ctx: &mut Context<Self>) {
        if msg.term < self.role.term {
            return; // from a leader this node has since moved past
        }
        let request = msg.request;
        let decision = decide_append(&*self.store, request.prev, &request.entries, self.committed);
        let (truncate_from, append_from, match_index) = match decision {
            AppendDecision::Reject(hint) => {
                let body = AppendEntriesResponse::Reject {
                    rejected_prev: request.prev.index,
                    hint,
                };
                self.send(
                    msg.leader,
                    msg.term,
                    MessageBody::AppendEntriesResponse(body),
                );
                return;
            }
            AppendDecision::Accept {
                truncate_from,
                append_from,
                match_index,
            } => (truncate_from, append_from, match_index),
        };
        if let Some(index) = truncate_from {
            if let Err(error) = self.store.truncate_from(index) {
                (self.on_fatal)(&format!("WAL truncation failed: {error}"));
                ctx.stop();
                return;
            }
        }
        let new_entries = &request.entries[append_from..];
        if !new_entries.is_empty() && !self.append(new_entries, ctx) {
            return;
        }
        self.pending_acks.push_back(PendingAck {
            term: msg.term,
            leader: msg.leader,
            match_index,
        });
        if self.store.durable_index() >= match_index && !self.flushing {
            self.on_durable(self.store.durable_index());
        }
        let commit = follower_commit(self.committed, request.leader_commit, match_index);
        if commit > self.committed {
            self.committed = commit;
            self.links
                .apply_committed
                .do_send(Committed { index: commit });
        }
        self.maybe_start_flush(ctx);
    }
}

impl Handler<FlushDone> for WalActor {
    type Result = ();

    fn handle(&mut self, msg: FlushDone, ctx: &mut Context<Self>) {
        self.flushing = false;
        match self.store.finish_flush(msg.0) {
            Ok(durable) => {
                self.on_durable(durable);
                self.maybe_start_flush(ctx);
                self.maybe_finish_drains();
            }
            Err(error) => {
                (self.on_fatal)(&format!("WAL flush failed: {error}"));
                ctx.stop();
            }
        }
    }
}

impl Handler<Drain> for WalActor {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        self.drains.push(msg.reply);
        self.maybe_start_flush(ctx);
        self.maybe_finish_drains();
    }
}

impl Handler<LastLogId> for WalActor {
    type Result = MessageResult<LastLogId>;

    fn handle(&mut self, _: LastLogId, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.store.last_log_id())
    }
}

impl Handler<RoleChanged> for WalActor {
    type Result = ();

    fn handle(&mut self, RoleChanged(role): RoleChanged, ctx: &mut Context<Self>) {
        let became_leader = role.role == Role::Leader && !self.is_leader_of(role.term);
        if role.term > self.role.term || role.role != Role::Leader {
            self.uncommitted.clear();
        }
        // Acknowledgements owed to the leader of an earlier term are void.
        self.pending_acks.retain(|ack| ack.term >= role.term);
        self.role = role;
        if became_leader {
            self.append_leader_noop(ctx);
        }
    }
}

impl Handler<Committed> for WalActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        self.committed = self.committed.max(msg.index);
        self.uncommitted.on_committed(msg.index);
    }
}
