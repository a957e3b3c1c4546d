//! The apply actor: owns the state machines — the stream index and the producer dedup table
//! ([`Streams`]), and the embedding program's own [`StateMachine`] if it has one — and the
//! requests waiting on them. It applies committed entries in log order, answers each
//! proposer with its outcome once its entry is applied, serves reads from the applied state,
//! and tells the embedding program who leads once it has caught up with that leader.
//!
//! Takes: [`Submit`], [`Proposed`], [`Committed`], [`RoleChanged`], [`ReadStream`],
//! [`WaitForRecord`], [`ListStreams`], [`GetApplied`], [`GetProgress`],
//! [`WaitApplied`], [`SnapshotApplication`], [`ReleaseWaiters`].

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use tokio::sync::watch;

use crate::node::events::{Committed, RoleChanged};
use crate::node::state_machine::StateMachine;
use crate::node::storage::LogReader;
use crate::node::wal_actor::{Propose, Proposed, WalActor};
use crate::node::{metrics, NodeObserver, ProposeError};
use crate::raft::election::{Role, RoleState};
use crate::raft::leader_view::{LeaderView, LeaderViewTracker};
use crate::raft::message::{Entry, EntryPayload};
use crate::streams::{self, AppendOutcome, CommandBatch, StreamInfo, Streams};
use crate::types::{LogId, LogIndex, NodeId, Offset, Term};

/// How many committed entries one apply step reads and applies before yielding to other
/// messages, so a long catch-up does not starve heartbeats and reads.
const APPLY_BATCH_ENTRIES_MAX: u64 = 1024;
const APPLY_BATCH_BYTES_MAX: u64 = 8 << 20;

/// The most proposals sent to the WAL in one [`Propose`]; see [`ApplyActor::outbox`].
const PROPOSE_COMMANDS_MAX: usize = 1024;

/// Why a submitted batch has no outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("this node is not the leader")]
    NotLeader { leader: Option<NodeId>, term: Term },
    #[error("too many uncommitted writes; retry later")]
    Busy,
    /// The entry was replaced by a later leader's entry: it will never be applied.
    #[error("the write was not committed: leadership changed before it could be")]
    Superseded,
    /// The node stopped before answering: the write may or may not commit.
    #[error("the node stopped before the write completed; it may or may not be committed")]
    NodeStopped,
}

impl From<ProposeError> for SubmitError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::NotLeader { leader, term } => SubmitError::NotLeader { leader, term },
            ProposeError::Busy => SubmitError::Busy,
        }
    }
}

/// What applying a submitted proposal did: the entry that carried it, one outcome per stream
/// command (for a stream batch), and the application state machine's answer (for an
/// application command; empty otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub log_id: LogId,
    pub outcomes: Vec<AppendOutcome>,
    pub output: Bytes,
}

pub type SubmitResult = Result<Applied, SubmitError>;

/// What a log entry proposed through the apply actor carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposal {
    Streams(CommandBatch),
    Application(Bytes),
}

/// Propose one entry; answered once it is applied (or known never to be). With a `fence`,
/// the entry is proposed only by the leader of exactly that term — never one that landed in
/// a later term (KRaft's epoch-fenced append).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    pub proposal: Proposal,
    pub fence: Option<Term>,
    pub reply: oneshot::Sender<SubmitResult>,
}

/// The application state machine's snapshot (`None` without one).
#[derive(Message)]
#[rtype(result = "Option<Bytes>")]
pub struct SnapshotApplication;

/// Records of one stream from this node's applied state, once it has applied at least
/// `after` (a read index, for a linearizable read; zero for a stale read).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadStream {
    pub stream: String,
    pub from: Offset,
    pub limit: usize,
    pub after: LogIndex,
    pub reply: oneshot::Sender<Result<StreamRead, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRead {
    pub records: Vec<(Offset, Bytes)>,
    pub info: StreamInfo,
    pub applied: LogIndex,
}

/// Resolves with the applied index once this node has applied at least `index`: the second
/// half of a linearizable read of the application state machine.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitApplied {
    pub index: LogIndex,
    pub reply: oneshot::Sender<LogIndex>,
}

/// What waits for the applied index: a stream read, or a [`WaitApplied`].
enum AfterApplied {
    Read(ReadStream),
    Wake(oneshot::Sender<LogIndex>),
}

/// The applied index.
#[derive(Message)]
#[rtype(result = "LogIndex")]
pub struct GetApplied;

/// The commit index this node knows of, and how far it has applied.
#[derive(Message)]
#[rtype(result = "(LogIndex, LogIndex)")]
pub struct GetProgress;

/// Every stream with its bounds, sorted by name.
#[derive(Message)]
#[rtype(result = "Vec<(String, StreamInfo)>")]
pub struct ListStreams;

/// Resolves once `stream` holds a record at `offset` (a long-poll or a tail waiting for the
/// next record), or when the requester gives up (drops the receiver).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitForRecord {
    pub stream: String,
    pub offset: Offset,
    pub reply: oneshot::Sender<()>,
}

/// The node is shutting down: release every long-poll and tail now (their waits end as if
/// the node had stopped), and make new ones return at once, so the HTTP server can close
/// them instead of waiting out its grace period.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseWaiters;

#[derive(Message)]
#[rtype(result = "()")]
struct ApplyMore;

/// Send the outbox's proposals to the WAL.
#[derive(Message)]
#[rtype(result = "()")]
struct SendProposals;

pub struct ApplyActor {
    id: NodeId,
    streams: Streams,
    application: Option<Box<dyn StateMachine>>,
    leader_view: LeaderViewTracker,
    leader_tx: watch::Sender<LeaderView>,
    reader: Arc<dyn LogReader>,
    wal: Addr<WalActor>,
    observer: Option<Arc<dyn NodeObserver>>,
    role: RoleState,
    committed: LogIndex,
    applied: LogIndex,
    applying: bool,
    next_token: u64,
    /// Proposals accepted in `outbox_term`, not yet sent to the WAL. The submits handled in
    /// one pass over the mailbox go as one [`Propose`]: one append, and one AppendEntries to
    /// each follower, for all of their entries, instead of one each.
    outbox: Vec<(u64, EntryPayload)>,
    outbox_term: Term,
    /// Proposals sent to the WAL (or in the outbox), not yet placed in the log.
    proposing: BTreeMap<u64, oneshot::Sender<SubmitResult>>,
    /// Proposals in the log, by index, with the term they were proposed in.
    in_log: BTreeMap<LogIndex, (Term, oneshot::Sender<SubmitResult>)>,
    /// Reads and [`WaitApplied`] requests waiting for the applied index to reach theirs.
    waiting_for_applied: BTreeMap<LogIndex, Vec<AfterApplied>>,
    /// Long-polls and tails waiting for a stream to reach an offset.
    record_waiters: BTreeMap<String, Vec<(Offset, oneshot::Sender<()>)>>,
    /// Set by [`ReleaseWaiters`]: no new waits.
    releasing_waiters: bool,
    applied_gauge: metrics::IndexGauge,
}

impl ApplyActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NodeId,
        streams: Streams,
        application: Option<Box<dyn StateMachine>>,
        leader_tx: watch::Sender<LeaderView>,
        reader: Arc<dyn LogReader>,
        wal: Addr<WalActor>,
        observer: Option<Arc<dyn NodeObserver>>,
        role: RoleState,
    ) -> Self {
        Self {
            applied_gauge: metrics::IndexGauge::applied(id),
            id,
            streams,
            application,
            leader_view: LeaderViewTracker::default(),
            leader_tx,
            reader,
            wal,
            observer,
            role,
            committed: LogIndex(0),
            applied: LogIndex(0),
            applying: false,
            next_token: 0,
            outbox: Vec::new(),
            outbox_term: Term(0),
            proposing: BTreeMap::new(),
            in_log: BTreeMap::new(),
            waiting_for_applied: BTreeMap::new(),
            record_waiters: BTreeMap::new(),
            releasing_waiters: false,
        }
    }

    /// Sends the outbox to the WAL, which refuses it if `outbox_term` is over.
    fn send_proposals(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.is_empty() {
            return;
        }
        self.wal.do_send(Propose {
            term: self.outbox_term,
            commands: std::mem::take(&mut self.outbox),
            reply_to: ctx.address().recipient(),
        });
    }

    /// Applies up to one batch of committed entries; schedules itself again if more remain.
    fn apply_some(&mut self, ctx: &mut Context<Self>) {
        if self.applied >= self.committed {
            return;
        }
        let from = self.applied.next();
        let to = self.committed.min(self.applied + APPLY_BATCH_ENTRIES_MAX);
        let entries = match self.reader.entries(from, to, APPLY_BATCH_BYTES_MAX) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, %from, "reading committed entries failed");
                return;
            }
        };
        for entry in entries {
            assert_eq!(
                entry.log_id.index,
                self.applied.next(),
                "entries apply in order"
            );
            let (outcomes, output) = self.apply_entry(&entry);
            self.applied = entry.log_id.index;
            self.resolve(entry.log_id, outcomes, output);
            if let Some(observer) = &self.observer {
                observer.applied(self.id, entry.log_id);
            }
        }
        self.applied_gauge.set(self.applied);
        self.serve_waiting_reads();
        self.wake_record_waiters();
        if self.applied < self.committed && !self.applying {
            self.applying = true;
            ctx.notify(ApplyMore);
        }
    }

    /// Wakes waiters whose record now exists, and forgets those that gave up.
    fn wake_record_waiters(&mut self) {
        let streams = &self.streams;
        self.record_waiters.retain(|stream, waiters| {
            let end = streams
                .stream(stream)
                .map(|info| info.end_offset)
                .unwrap_or_default();
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(waiters)
                .into_iter()
                .partition(|(offset, _)| *offset < end);
            for (_, reply) in ready {
                let _ = reply.send(());
            }
            *waiters = waiting
                .into_iter()
                .filter(|(_, reply)| !reply.is_closed())
                .collect();
            !waiters.is_empty()
        });
    }

    /// Answers what waited for the applied index to reach its own.
    fn serve_waiting_reads(&mut self) {
        while let Some(entry) = self.waiting_for_applied.first_entry() {
            if *entry.key() > self.applied {
                break;
            }
            for waiter in entry.remove() {
                match waiter {
                    AfterApplied::Read(read) => {
                        let result = self.read(&read.stream, read.from, read.limit);
                        let _ = read.reply.send(result);
                    }
                    AfterApplied::Wake(reply) => {
                        let _ = reply.send(self.applied);
                    }
                }
            }
        }
    }

    fn read(&self, stream: &str, from: Offset, limit: usize) -> Result<StreamRead, String> {
        let info = self.streams.stream(stream).unwrap_or_default();
        let mut records = Vec::new();
        for range in self.streams.locate(stream, from, limit) {
            let entry = self
                .reader
                .entries(range.log_index, range.log_index, u64::MAX)
                .map_err(|e| e.to_string())?
                .pop()
                .ok_or_else(|| format!("entry {} is missing from the log", range.log_index))?;
            let EntryPayload::Command(payload) = entry.payload else {
                return Err(format!("entry {} holds no records", range.log_index));
            };
            let values =
                streams::records_in_shared(&payload, range.commands.clone(), range.records.clone())
                    .map_err(|e| e.to_string())?;
            let first = range.first_offset;
            records.extend((0..).zip(values).map(|(i, v)| (Offset(first.0 + i), v)));
        }
        Ok(StreamRead {
            records,
            info,
            applied: self.applied,
        })
    }

    /// Applies one committed entry to the state machine it is for.
    fn apply_entry(&mut self, entry: &Entry) -> (Vec<AppendOutcome>, Bytes) {
        let index = entry.log_id.index;
        match &entry.payload {
            EntryPayload::Noop => {
                self.streams.apply_noop(index);
                if let Some(view) = self.leader_view.on_noop_applied(entry.log_id.term) {
                    self.leader_tx.send_replace(view);
                }
                (Vec::new(), Bytes::new())
            }
            EntryPayload::Command(payload) => (self.streams.apply(index, payload), Bytes::new()),
            EntryPayload::Application(command) => {
                self.streams.apply_noop(index);
                let output = match self.application.as_mut() {
                    Some(machine) => machine.apply(index, command),
                    None => {
                        // A node without the cluster's application state machine (a plain
                        // `raftlog serve` next to embedded ones) keeps the streams only.
                        tracing::debug!(%index, "no application state machine: command skipped");
                        Bytes::new()
                    }
                };
                (Vec::new(), output)
            }
        }
    }

    fn resolve(&mut self, log_id: LogId, outcomes: Vec<AppendOutcome>, output: Bytes) {
        let Some((term, reply)) = self.in_log.remove(&log_id.index) else {
            return;
        };
        let result = if term == log_id.term {
            Ok(Applied {
                log_id,
                outcomes,
                output,
            })
        } else {
            Err(SubmitError::Superseded)
        };
        let _ = reply.send(result); // the requester may have given up; that is fine
    }
}

impl Actor for ApplyActor {
    type Context = Context<Self>;
}

impl Handler<Submit> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        let fenced_out = msg.fence.is_some_and(|term| term != self.role.term);
        if self.role.role != Role::Leader || fenced_out {
            let error = SubmitError::NotLeader {
                leader: self.role.leader,
                term: self.role.term,
            };
            let _ = msg.reply.send(Err(error));
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        self.proposing.insert(token, msg.reply);
        let payload = match msg.proposal {
            Proposal::Streams(batch) => EntryPayload::Command(streams::encode(&batch)),
            Proposal::Application(command) => EntryPayload::Application(command),
        };
        if self.outbox_term != self.role.term {
            self.send_proposals(ctx); // accepted in an earlier term: never mixed with these
            self.outbox_term = self.role.term;
        }
        if self.outbox.is_empty() {
            // Runs once the messages already in the mailbox have been handled.
            ctx.notify(SendProposals);
        }
        self.outbox.push((token, payload));
        if self.outbox.len() >= PROPOSE_COMMANDS_MAX {
            self.send_proposals(ctx);
        }
    }
}

impl Handler<SendProposals> for ApplyActor {
    type Result = ();

    fn handle(&mut self, _: SendProposals, ctx: &mut Context<Self>) {
        self.send_proposals(ctx);
    }
}

impl Handler<Proposed> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: Proposed, _: &mut Context<Self>) {
        for (token, result) in msg.results {
            let Some(reply) = self.proposing.remove(&token) else {
                continue;
            };
            match result {
                Ok(log_id) => {
                    self.in_log.insert(log_id.index, (log_id.term, reply));
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            }
        }
    }
}

impl Handler<Committed> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        if msg.index > self.committed {
            self.committed = msg.index;
            self.apply_some(ctx);
        }
    }
}

impl Handler<ApplyMore> for ApplyActor {
    type Result = ();

    fn handle(&mut self, _: ApplyMore, ctx: &mut Context<Self>) {
        self.applying = false;
        self.apply_some(ctx);
    }
}

impl Handler<RoleChanged> for ApplyActor {
    type Result = ();

    fn handle(&mut self, RoleChanged(role): RoleChanged, _: &mut Context<Self>) {
        self.role = role;
        if let Some(view) = self.leader_view.on_role(role) {
            self.leader_tx.send_replace(view);
        }
    }
}

impl Handler<ReadStream> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: ReadStream, _: &mut Context<Self>) {
        if msg.after <= self.applied {
            let result = self.read(&msg.stream, msg.from, msg.limit);
            let _ = msg.reply.send(result);
        } else {
            let after = msg.after;
            let waiters = self.waiting_for_applied.entry(after).or_default();
            waiters.push(AfterApplied::Read(msg));
        }
    }
}

impl Handler<WaitApplied> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: WaitApplied, _: &mut Context<Self>) {
        if msg.index <= self.applied {
            let _ = msg.reply.send(self.applied);
        } else {
            let waiters = self.waiting_for_applied.entry(msg.index).or_default();
            waiters.push(AfterApplied::Wake(msg.reply));
        }
    }
}

impl Handler<ReleaseWaiters> for ApplyActor {
    type Result = ();

    fn handle(&mut self, _: ReleaseWaiters, _: &mut Context<Self>) {
        self.releasing_waiters = true;
        self.record_waiters.clear();
    }
}

impl Handler<SnapshotApplication> for ApplyActor {
    type Result = Option<Bytes>;

    fn handle(&mut self, _: SnapshotApplication, _: &mut Context<Self>) -> Option<Bytes> {
        self.application.as_ref().map(|machine| machine.snapshot())
    }
}

impl Handler<ListStreams> for ApplyActor {
    type Result = MessageResult<ListStreams>;

    fn handle(&mut self, _: ListStreams, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.streams.list())
    }
}

impl Handler<WaitForRecord> for ApplyActor {
    type Result = ();

    fn handle(&mut self, msg: WaitForRecord, _: &mut Context<Self>) {
        let end = self
            .streams
            .stream(&msg.stream)
            .map(|i| i.end_offset)
            .unwrap_or_default();
        if msg.offset < end {
            let _ = msg.reply.send(());
        } else {
            self.record_waiters
                .entry(msg.stream)
                .or_default()
                .push((msg.offset, msg.reply));
        }
    }
}

impl Handler<GetProgress> for ApplyActor {
    type Result = MessageResult<GetProgress>;

    fn handle(&mut self, _: GetProgress, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.committed, self.applied))
    }
}

impl Handler<GetApplied> for ApplyActor {
    type Result = MessageResult<GetApplied>;

    fn handle(&mut self, _: GetApplied, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.applied)
    }
}
