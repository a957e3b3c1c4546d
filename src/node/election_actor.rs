//! The election actor: owns term, vote, role and known leader (through the pure
//! [`Election`]), the election and heartbeat timers, and — on a leader — the commit index.
//!
//! It executes the core's actions in order. A [`Action::PersistHardState`] is a barrier:
//! the save runs on the hard-state pool (never behind a log flush), and every later action
//! waits for it. Vote requests and election timeouts ask the WAL actor for the last log id and
//! wait for the answer before deciding, so a vote is never granted on a stale view of the log.
//!
//! Takes: [`Inbound`] peer messages (votes, heartbeats, AppendEntries for the term check),
//! [`HigherTermSeen`], [`MatchAdvanced`], [`DurableUpTo`], [`TermStarted`], [`ReadIndex`],
//! [`GetRole`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::node::clock::Clock;
use crate::node::events::{Committed, DurableUpTo, RoleChanged, TermStarted};
use crate::node::storage::{BlockingPool, HardStateStore};
use crate::node::wal_actor::{FollowerAppend, LastLogId, WalActor};
use crate::node::{metrics, FatalHandler, NodeObserver};
use crate::raft::election::{
    Action, AppendGate, Election, FollowerProgress, HardState, RoleState, TransferError,
};
use crate::raft::message::{MessageBody, PeerMessage};
use crate::raft::read::ReadLevel;
use crate::transport::PeerNetwork;
use crate::types::{LogId, LogIndex, MonoTime, NodeId, Term};

/// A peer message for the election actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub PeerMessage);

/// A replicator saw a response from a term later than the one it replicates for.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HigherTermSeen {
    pub term: Term,
}

/// A follower durably matches the leader's log of `term` through `index`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MatchAdvanced {
    pub term: Term,
    pub peer: NodeId,
    pub index: LogIndex,
}

/// The current role, term and leader.
#[derive(Message)]
#[rtype(result = "RoleState")]
pub struct GetRole;

/// Hand leadership to another voter (thesis §3.10); answered once the hand-over started (or
/// could not).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransferLeadership {
    pub to: NodeId,
    pub reply: oneshot::Sender<Result<(), TransferError>>,
}

/// Step down as leader without naming a successor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resign;

/// Role, leader commit index and follower progress, for status reports.
#[derive(Message)]
#[rtype(result = "ElectionStatus")]
pub struct GetStatus;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionStatus {
    pub role: RoleState,
    pub leader_commit: Option<LogIndex>,
    pub followers: Vec<FollowerProgress>,
}

/// Confirm a read index for a linearizable read (thesis §6.4): answered with the index this
/// node must have applied before serving the read.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadIndex {
    pub level: ReadLevel,
    pub reply: oneshot::Sender<Result<LogIndex, ReadError>>,
}

/// Why a read index could not be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("leadership could not be confirmed; retry, or ask the leader")]
    NotLeader { leader: Option<NodeId> },
}

#[derive(Message)]
#[rtype(result = "()")]
struct HardStateSaved(Result<(), String>);

#[derive(Message)]
#[rtype(result = "()")]
struct Wake;

/// Who hears from the election actor. Role changes go to the router first (see
/// [`RoleChanged`]).
pub struct ElectionLinks {
    pub wal: Addr<WalActor>,
    pub role_subscribers: Vec<Recipient<RoleChanged>>,
    pub commit_subscribers: Vec<Recipient<Committed>>,
}

/// A step waiting behind a hard-state barrier.
enum Step {
    Action(Action),
    Forward(FollowerAppend),
}

pub struct ElectionActor {
    core: Election,
    clock: Clock,
    network: Arc<dyn PeerNetwork>,
    hard_state: Arc<Mutex<Box<dyn HardStateStore>>>,
    pool: BlockingPool,
    links: ElectionLinks,
    observer: Option<Arc<dyn NodeObserver>>,
    on_fatal: FatalHandler,
    /// Steps waiting for the hard-state save in flight (if `saving`).
    deferred: VecDeque<Step>,
    saving: bool,
    timer: Option<(SpawnHandle, MonoTime)>,
    /// Linearizable reads waiting for the core to confirm a read index, by read id.
    /// Reads waiting for a read index, with the level they asked for (for the metrics).
    reads: BTreeMap<u64, (ReadLevel, oneshot::Sender<Result<LogIndex, ReadError>>)>,
    next_read_id: u64,
    /// The last role published, to count leader changes.
    published_role: Option<RoleState>,
    commit_gauge: metrics::IndexGauge,
    read_metrics: metrics::ReadConfirmMetrics,
}

impl ElectionActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: Election,
        clock: Clock,
        network: Arc<dyn PeerNetwork>,
        hard_state: Box<dyn HardStateStore>,
        pool: BlockingPool,
        links: ElectionLinks,
        observer: Option<Arc<dyn NodeObserver>>,
        on_fatal: FatalHandler,
    ) -> Self {
        Self {
            commit_gauge: metrics::IndexGauge::committed(core.config().id),
            read_metrics: metrics::ReadConfirmMetrics::new(core.config().id),
            core,
            clock,
            network,
            hard_state: Arc::new(Mutex::new(hard_state)),
            pool,
            links,
            observer,
            on_fatal,
            deferred: VecDeque::new(),
            saving: false,
            timer: None,
            reads: BTreeMap::new(),
            next_read_id: 0,
            published_role: None,
        }
    }

    fn id(&self) -> NodeId {
        self.core.config().id
    }

    /// Runs `steps` in order, deferring everything from the first barrier on.
    fn run(&mut self, steps: impl IntoIterator<Item = Step>, ctx: &mut Context<Self>) {
        for step in steps {
            if self.saving {
                self.deferred.push_back(step);
            } else {
                self.execute(step, ctx);
            }
        }
        self.arm_timer(ctx);
    }

    fn run_actions(&mut self, actions: Vec<Action>, ctx: &mut Context<Self>) {
        self.run(actions.into_iter().map(Step::Action), ctx);
    }

    fn execute(&mut self, step: Step, ctx: &mut Context<Self>) {
        let action = match step {
            Step::Forward(append) => return self.links.wal.do_send(append),
            Step::Action(action) => action,
        };
        match action {
            Action::PersistHardState(hard_state) => self.start_save(hard_state, ctx),
            Action::Send(message) => self.network.send(message),
            Action::RoleChanged(role) => self.publish_role(role),
            Action::LearnedCommit(index) | Action::Committed(index) => {
                self.commit_gauge.set(index);
                for subscriber in &self.links.commit_subscribers {
                    subscriber.do_send(Committed { index });
                }
            }
            Action::ReadReady {
                id,
                index,
                round_trips,
            } => {
                if let Some((level, _)) = self.reads.get(&id) {
                    self.read_metrics.confirmed(*level, round_trips);
                }
                self.answer_read(id, Ok(index))
            }
            Action::ReadRoundStarted => self.read_metrics.round_started(),
            Action::ReadFailed { id, leader } => {
                self.answer_read(id, Err(ReadError::NotLeader { leader }))
            }
        }
    }

    fn answer_read(&mut self, id: u64, result: Result<LogIndex, ReadError>) {
        if let Some((_, reply)) = self.reads.remove(&id) {
            let _ = reply.send(result); // the reader may have timed out; that is fine
        }
    }

    fn start_save(&mut self, hard_state: HardState, ctx: &mut Context<Self>) {
        self.saving = true;
        let store = self.hard_state.clone();
        let me = ctx.address();
        self.pool.execute(Box::new(move || {
            let result = store
                .lock()
                .expect("only the save job locks the hard-state store")
                .save(hard_state)
                .map_err(|e| e.to_string());
            me.do_send(HardStateSaved(result));
        }));
    }

    fn publish_role(&mut self, role: RoleState) {
        metrics::role_changed(self.id(), self.published_role.replace(role), role);
        if let Some(observer) = &self.observer {
            observer.role_changed(self.id(), role);
        }
        for subscriber in &self.links.role_subscribers {
            subscriber.do_send(RoleChanged(role));
        }
    }

    /// Keeps one timer armed for the core's next wake-up. A timer armed for a later time is
    /// replaced; one armed for an earlier time is kept and re-armed when it fires.
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let wakeup = self.core.next_wakeup();
        if let Some((handle, at)) = self.timer {
            if at <= wakeup {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = self.clock.delay_until(wakeup);
        let handle = ctx.run_later(delay, |_, ctx| ctx.notify(Wake));
        self.timer = Some((handle, wakeup));
    }

    /// Asks the WAL for the last log id and runs `decide` with it, holding every other message
    /// back until then.
    fn with_last_log_id(
        &mut self,
        ctx: &mut Context<Self>,
        decide: impl FnOnce(&mut Self, LogId, &mut Vec<Action>) + 'static,
    ) {
        let query = self.links.wal.send(LastLogId).into_actor(self);
        ctx.wait(query.map(move |result, act, ctx| match result {
            Ok(last_log) => {
                let mut out = Vec::new();
                decide(act, last_log, &mut out);
                act.run_actions(out, ctx);
            }
            Err(error) => {
                (act.on_fatal)(&format!("the WAL actor is gone: {error}"));
                ctx.stop();
            }
        }));
    }

    fn on_peer_message(&mut self, message: PeerMessage, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let (from, term) = (message.from, message.term);
        let mut out = Vec::new();
        match message.body {
            MessageBody::VoteRequest(request) => {
                self.with_last_log_id(ctx, move |act, last_log, out| {
                    let now = act.clock.now();
                    act.core
                        .on_vote_request(now, from, term, &request, last_log, out);
                });
                return;
            }
            MessageBody::VoteResponse(response) => {
                // Winning a PreVote starts the real election, which needs the last log id.
                self.with_last_log_id(ctx, move |act, last_log, out| {
                    let now = act.clock.now();
                    act.core
                        .on_vote_response(now, from, term, &response, last_log, out);
                });
                return;
            }
            MessageBody::Heartbeat(heartbeat) => self
                .core
                .on_heartbeat(now, from, term, &heartbeat, &mut out),
            MessageBody::HeartbeatResponse(response) => self
                .core
                .on_heartbeat_response(now, from, term, &response, &mut out),
            MessageBody::AppendEntries(request) => {
                let gate = self.core.on_append_entries(now, from, term, &mut out);
                let mut steps: Vec<Step> = out.into_iter().map(Step::Action).collect();
                if gate == AppendGate::Accept {
                    let leader = from;
                    steps.push(Step::Forward(FollowerAppend {
                        term,
                        leader,
                        request,
                    }));
                }
                self.run(steps, ctx);
                return;
            }
            MessageBody::ReadIndexRequest(request) => self
                .core
                .on_read_index_request(now, from, term, &request, &mut out),
            MessageBody::ReadIndexResponse(response) => self
                .core
                .on_read_index_response(now, term, &response, &mut out),
            MessageBody::TimeoutNow => {
                self.with_last_log_id(ctx, move |act, last_log, out| {
                    let now = act.clock.now();
                    act.core.on_timeout_now(now, from, term, last_log, out);
                });
                return;
            }
            MessageBody::AppendEntriesResponse(_) => {
                unreachable!("the router sends AppendEntries responses to replicators")
            }
        }
        self.run_actions(out, ctx);
    }
}

impl Actor for ElectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Announce the restored term so every actor starts fenced to it.
        let role = self.core.role_state();
        self.run_actions(vec![Action::RoleChanged(role)], ctx);
    }
}

impl Handler<Inbound> for ElectionActor {
    type Result = ();

    fn handle(&mut self, Inbound(message): Inbound, ctx: &mut Context<Self>) {
        self.on_peer_message(message, ctx);
    }
}

impl Handler<Wake> for ElectionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.timer = None;
        let now = self.clock.now();
        let mut expired = Vec::new();
        self.core.expire_reads(now, &mut expired);
        self.run_actions(expired, ctx);
        if self.core.election_due(now) {
            self.with_last_log_id(ctx, |act, last_log, out| {
                let now = act.clock.now();
                act.core.on_election_timeout(now, last_log, out);
            });
            return;
        }
        let mut out = Vec::new();
        self.core.on_leader_tick(now, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<HardStateSaved> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: HardStateSaved, ctx: &mut Context<Self>) {
        if let Err(error) = msg.0 {
            (self.on_fatal)(&format!("saving term and vote failed: {error}"));
            ctx.stop();
            return;
        }
        self.saving = false;
        self.core.on_hard_state_saved(self.clock.now());
        while !self.saving {
            let Some(step) = self.deferred.pop_front() else {
                break;
            };
            self.execute(step, ctx);
        }
        self.arm_timer(ctx);
    }
}

impl Handler<HigherTermSeen> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: HigherTermSeen, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        self.core
            .on_higher_term(self.clock.now(), msg.term, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<MatchAdvanced> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: MatchAdvanced, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        self.core
            .on_match(self.clock.now(), msg.term, msg.peer, msg.index, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<DurableUpTo> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: DurableUpTo, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        let id = self.id();
        self.core
            .on_match(self.clock.now(), msg.term, id, msg.index, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<TermStarted> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: TermStarted, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        self.core
            .on_term_first_index(self.clock.now(), msg.term, msg.index, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<ReadIndex> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: ReadIndex, ctx: &mut Context<Self>) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.reads.insert(id, (msg.level, msg.reply));
        let mut out = Vec::new();
        self.core.on_read(self.clock.now(), id, msg.level, &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<TransferLeadership> for ElectionActor {
    type Result = ();

    fn handle(&mut self, msg: TransferLeadership, ctx: &mut Context<Self>) {
        let TransferLeadership { to, reply } = msg;
        self.with_last_log_id(ctx, move |act, last_log, out| {
            let now = act.clock.now();
            let result = act
                .core
                .on_transfer_leadership(now, to, last_log.index, out);
            let _ = reply.send(result);
        });
    }
}

impl Handler<Resign> for ElectionActor {
    type Result = ();

    fn handle(&mut self, _: Resign, ctx: &mut Context<Self>) {
        let mut out = Vec::new();
        self.core.on_resign(self.clock.now(), &mut out);
        self.run_actions(out, ctx);
    }
}

impl Handler<GetStatus> for ElectionActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        MessageResult(ElectionStatus {
            role: self.core.role_state(),
            leader_commit: self.core.leader_commit(),
            followers: self.core.follower_progress(now),
        })
    }
}

impl Handler<GetRole> for ElectionActor {
    type Result = MessageResult<GetRole>;

    fn handle(&mut self, _: GetRole, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.role_state())
    }
}
