//! A raftlog node: the actors that own its state, wired together.
//!
//! | actor | owns |
//! |---|---|
//! | [`election_actor`] | term, vote, role, leader; timers; the leader's commit index |
//! | [`wal_actor`] | the log on disk: appends, truncation, group-commit flushes |
//! | [`replicator_actor`] | one follower's replication progress (leader only, per term) |
//! | [`apply_actor`] | the state machine and the requests waiting on it |
//! | [`router`] | inbound peer messages; the replicators' lifecycle |
//!
//! [`start`] builds a node inside a running actix system. Real nodes run the WAL actor on an
//! arbiter (thread) of its own so that segment rolls and truncations never block the event
//! loop, and their fsyncs on dedicated threads; the simulator runs everything on one thread
//! with a simulated disk.
//!
//! Queues: the inbound peer channel is bounded (the transport drops when it is full, which
//! Raft tolerates); everything else an actor holds is bounded by the leader's cap on
//! uncommitted bytes and by the in-flight windows, which is what bounds the messages between
//! actors too.

pub mod apply_actor;
pub mod batcher;
pub mod clock;
pub mod election_actor;
pub mod events;
pub mod mem_store;
pub mod metrics;
pub mod replicator_actor;
pub mod router;
pub mod state_machine;
pub mod storage;
pub mod wal_actor;
pub mod wal_store;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::node::apply_actor::{
    ApplyActor, GetApplied, GetProgress, ListStreams, ReadStream, Submit, SubmitResult,
    WaitForRecord,
};
use crate::node::batcher::{Append, AppendReply, BatchLimits, ProposalBatcher};
use crate::node::clock::Clock;
pub use crate::node::election_actor::ReadError;
use crate::node::election_actor::{
    ElectionActor, ElectionLinks, ElectionStatus, GetRole, GetStatus, ReadIndex,
};
use crate::node::replicator_actor::ReplicatorActor;
use crate::node::router::{ReplicatorDeps, Router, Shutdown};
use crate::node::state_machine::StateMachine;
use crate::node::storage::{BlockingPool, HardStateStore, LogStore};
use crate::node::wal_actor::{WalActor, WalLinks};
use crate::raft::election::{
    Election, ElectionConfig, Role, RoleState, SafetyOverrides, TransferError,
};
use crate::raft::leader_view::LeaderView;
use crate::raft::message::PeerMessage;
use crate::raft::progress::ReplicationLimits;
use crate::raft::read::ReadLevel;
use crate::streams::{self, AppendCommand, CommandBatch, StreamInfo, Streams};
use crate::transport::PeerNetwork;
use crate::types::{LogId, LogIndex, NodeId, Offset, Term};

pub use crate::node::apply_actor::{Applied, Proposal, StreamRead, SubmitError};

/// A node's progress, for status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Role, term and leader; on a leader, each follower's progress.
    pub election: ElectionStatus,
    /// The commit index this node knows of (the leader's own on a leader).
    pub committed: LogIndex,
    /// The last entry this node has applied.
    pub applied: LogIndex,
    /// The last entry in this node's log.
    pub last_log: LogId,
}

/// Why a linearizable read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadFailure {
    #[error(transparent)]
    NotConfirmed(#[from] ReadError),
    #[error("the node stopped before the read completed")]
    NodeStopped,
    #[error("reading the log failed: {0}")]
    Storage(String),
}

/// Why the WAL refused a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    NotLeader {
        leader: Option<NodeId>,
        term: Term,
    },
    /// Over the cap on uncommitted bytes.
    Busy,
}

/// Called on an unrecoverable failure (a failed fsync, a broken invariant in storage). Real
/// nodes log and exit; the node must not go on as if the write had happened.
pub type FatalHandler = Arc<dyn Fn(&str) + Send + Sync>;

/// Hooks through which the simulator watches a node. Called synchronously; keep them cheap.
pub trait NodeObserver: Send + Sync + 'static {
    fn role_changed(&self, node: NodeId, role: RoleState);
    fn applied(&self, node: NodeId, log_id: LogId);
}

/// The consensus settings of one node. The service's TOML config maps onto this.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub voters: BTreeSet<NodeId>,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    pub heartbeat_interval: Duration,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub lease_reads: bool,
    pub clock_drift_max: f64,
    pub reads_max: usize,
    pub read_timeout: Duration,
    pub replication: ReplicationLimits,
    pub batching: BatchLimits,
    pub uncommitted_bytes_max: u64,
    pub jitter_seed: u64,
    #[doc(hidden)]
    pub overrides: SafetyOverrides,
}

impl NodeConfig {
    /// The defaults: 150–300 ms election timeout, 50 ms heartbeats, PreVote and CheckQuorum on.
    pub fn new(id: NodeId, voters: BTreeSet<NodeId>) -> Self {
        Self {
            id,
            voters,
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            lease_reads: true,
            clock_drift_max: 0.05,
            reads_max: 10_000,
            read_timeout: Duration::from_secs(1),
            replication: ReplicationLimits {
                entries_per_append_max: 256,
                bytes_per_append_max: 1 << 20,
                inflight_appends_max: 8,
                inflight_bytes_max: 8 << 20,
                append_timeout: Duration::from_millis(100),
            },
            batching: BatchLimits::default(),
            uncommitted_bytes_max: 64 << 20,
            jitter_seed: id.0,
            overrides: SafetyOverrides::default(),
        }
    }

    fn election_config(&self) -> ElectionConfig {
        ElectionConfig {
            id: self.id,
            voters: self.voters.clone(),
            election_timeout_min: self.election_timeout_min,
            election_timeout_max: self.election_timeout_max,
            heartbeat_interval: self.heartbeat_interval,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            lease_reads: self.lease_reads,
            clock_drift_max: self.clock_drift_max,
            reads_max: self.reads_max,
            read_timeout: self.read_timeout,
            jitter_seed: self.jitter_seed,
            overrides: self.overrides,
        }
    }
}

/// Where a node keeps its state and runs its blocking I/O.
pub struct NodeStorage {
    pub log: Box<dyn LogStore>,
    pub hard_state: Box<dyn HardStateStore>,
    pub log_pool: BlockingPool,
    pub hard_state_pool: BlockingPool,
    /// The arbiter the WAL actor runs on; `None` runs it on the current one.
    pub wal_arbiter: Option<ArbiterHandle>,
}

/// What connects a node to the world.
pub struct NodeWiring {
    /// The embedding program's own state machine, applied beside the streams.
    pub application: Option<Box<dyn StateMachine>>,
    pub network: Arc<dyn PeerNetwork>,
    pub inbound: mpsc::Receiver<PeerMessage>,
    pub clock: Clock,
    pub observer: Option<Arc<dyn NodeObserver>>,
    pub on_fatal: FatalHandler,
}

/// A handle on a running node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    pub id: NodeId,
    election: Addr<ElectionActor>,
    wal: Addr<WalActor>,
    apply: Addr<ApplyActor>,
    router: Addr<Router>,
    batcher: Addr<ProposalBatcher>,
    leader_view: watch::Receiver<LeaderView>,
}

/// Starts a node's actors. Must be called from within a running actix system.
pub fn start(config: NodeConfig, storage: NodeStorage, wiring: NodeWiring) -> NodeHandle {
    let hard_state = storage.hard_state.load();
    let now = wiring.clock.now();
    let core = Election::new(config.election_config(), hard_state, now);
    let initial_role = core.role_state();
    let reader = storage.log.reader();

    // Contexts first, so every actor can be given every other's address.
    let election_ctx = Context::<ElectionActor>::new();
    let apply_ctx = Context::<ApplyActor>::new();
    let router_ctx = Context::<Router>::new();
    let (election, apply, router) = (
        election_ctx.address(),
        apply_ctx.address(),
        router_ctx.address(),
    );

    let wal = start_wal(
        &config,
        (storage.log, storage.log_pool, storage.wal_arbiter),
        &wiring,
        initial_role,
        &election,
        &apply,
        &router,
    );

    let peers = config
        .voters
        .iter()
        .copied()
        .filter(|&id| id != config.id)
        .collect();
    let deps = ReplicatorDeps {
        limits: config.replication,
        reader: reader.clone(),
        network: wiring.network.clone(),
        clock: wiring.clock,
    };
    router_ctx.run(Router::new(
        config.id,
        peers,
        election.clone(),
        wiring.inbound,
        deps,
    ));
    // The producer table's bound decides which producers are forgotten, so it is replicated
    // behaviour: one constant for every node, never per-node config.
    let streams = Streams::new(streams::PRODUCERS_MAX_DEFAULT);
    let (leader_tx, leader_view) = watch::channel(LeaderView::default());
    apply_ctx.run(ApplyActor::new(
        config.id,
        streams,
        wiring.application,
        leader_tx,
        reader,
        wal.clone(),
        wiring.observer.clone(),
        initial_role,
    ));
    let batcher = ProposalBatcher::new(config.id, apply.clone(), config.batching).start();
    let links = ElectionLinks {
        wal: wal.clone(),
        role_subscribers: vec![
            router.clone().recipient(),
            apply.clone().recipient(),
            wal.clone().recipient(),
            batcher.clone().recipient(),
        ],
        commit_subscribers: vec![
            router.clone().recipient(),
            apply.clone().recipient(),
            wal.clone().recipient(),
        ],
    };
    election_ctx.run(ElectionActor::new(
        core,
        wiring.clock,
        wiring.network,
        storage.hard_state,
        storage.hard_state_pool,
        links,
        wiring.observer,
        wiring.on_fatal,
    ));
    NodeHandle {
        id: config.id,
        election,
        wal,
        apply,
        router,
        batcher,
        leader_view,
    }
}

fn start_wal(
    config: &NodeConfig,
    storage: (Box<dyn LogStore>, BlockingPool, Option<ArbiterHandle>),
    wiring: &NodeWiring,
    role: RoleState,
    election: &Addr<ElectionActor>,
    apply: &Addr<ApplyActor>,
    router: &Addr<Router>,
) -> Addr<WalActor> {
    let (log, pool, arbiter) = storage;
    let links = WalLinks {
        election_durable: election.clone().recipient(),
        election_term_started: election.clone().recipient(),
        router_appended: router.clone().recipient(),
        apply_committed: apply.clone().recipient(),
    };
    let (id, network, on_fatal) = (config.id, wiring.network.clone(), wiring.on_fatal.clone());
    let uncommitted_bytes_max = config.uncommitted_bytes_max;
    let make = move |_: &mut Context<WalActor>| {
        WalActor::new(
            id,
            log,
            pool,
            network,
            links,
            on_fatal,
            role,
            uncommitted_bytes_max,
        )
    };
    match arbiter {
        Some(arbiter) => WalActor::start_in_arbiter(&arbiter, make),
        None => WalActor::create(make),
    }
}

/// Freezes an actor for `duration`: it handles nothing — no message, no timer — until then,
/// and afterwards works through what queued up, late. This is what a process pause
/// (SIGSTOP, a long GC, a VM migration) looks like from inside; the simulator uses it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Freeze {
    pub duration: Duration,
}

macro_rules! freezable {
    ($($actor:ty),*) => {$(
        impl Handler<Freeze> for $actor {
            type Result = ();
            fn handle(&mut self, msg: Freeze, ctx: &mut Context<Self>) {
                ctx.wait(actix::fut::wrap_future(tokio::time::sleep(msg.duration)));
            }
        }
    )*};
}
freezable!(
    ElectionActor,
    WalActor,
    ApplyActor,
    ProposalBatcher,
    ReplicatorActor
);

/// Stops an actor (a node's shutdown or simulated crash).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopActor;

macro_rules! stoppable {
    ($($actor:ty),*) => {$(
        impl Handler<StopActor> for $actor {
            type Result = ();
            fn handle(&mut self, _: StopActor, ctx: &mut Context<Self>) {
                ctx.stop();
            }
        }
    )*};
}
stoppable!(ElectionActor, WalActor, ApplyActor, ProposalBatcher);

impl NodeHandle {
    /// Proposes a batch of stream commands through this node, which must be the leader, and
    /// waits until it is applied.
    pub async fn submit(&self, batch: CommandBatch) -> SubmitResult {
        self.propose(Proposal::Streams(batch), None).await
    }

    /// Proposes one entry through this node, which must be the leader — of `fence`, if
    /// given — and waits until it is applied.
    pub async fn propose(&self, proposal: Proposal, fence: Option<Term>) -> SubmitResult {
        let (reply, result) = oneshot::channel();
        self.apply.do_send(Submit {
            proposal,
            fence,
            reply,
        });
        result.await.unwrap_or(Err(SubmitError::NodeStopped))
    }

    /// Who leads, published once this node has applied everything committed before that
    /// leader's term began.
    pub fn leader_view(&self) -> watch::Receiver<LeaderView> {
        self.leader_view.clone()
    }

    /// Hands leadership to `to` (this node must lead).
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<(), TransferError> {
        let (reply, result) = oneshot::channel();
        self.election
            .do_send(election_actor::TransferLeadership { to, reply });
        result
            .await
            .unwrap_or(Err(TransferError::NotLeader { leader: None }))
    }

    /// Steps down as leader without naming a successor.
    pub fn resign(&self) {
        self.election.do_send(election_actor::Resign);
    }

    /// The application state machine's snapshot (`None` without one, or once stopped).
    pub async fn snapshot_application(&self) -> Option<Bytes> {
        self.apply
            .send(apply_actor::SnapshotApplication)
            .await
            .ok()
            .flatten()
    }

    /// Appends through the proposal batcher, which gathers concurrent appends into one entry;
    /// resolves once the entry is applied, with the entry's id and this command's outcome.
    pub async fn append(&self, command: AppendCommand) -> AppendReply {
        let (reply, result) = oneshot::channel();
        self.batcher.do_send(Append { command, reply });
        result.await.unwrap_or(Err(SubmitError::NodeStopped))
    }

    /// Every stream this node has applied, with its bounds, sorted by name.
    pub async fn list_streams(&self) -> Option<Vec<(String, StreamInfo)>> {
        self.apply.send(ListStreams).await.ok()
    }

    /// Resolves once this node has applied a record at `offset` of `stream`; `false` if the
    /// node stopped first.
    pub async fn wait_for_record(&self, stream: &str, offset: Offset) -> bool {
        let (reply, woken) = oneshot::channel();
        self.apply.do_send(WaitForRecord {
            stream: stream.to_string(),
            offset,
            reply,
        });
        woken.await.is_ok()
    }

    /// Role, commit and apply progress, and (on a leader) each follower's progress.
    pub async fn status(&self) -> Option<NodeStatus> {
        let election = self.election.send(GetStatus).await.ok()?;
        let (committed, applied) = self.apply.send(GetProgress).await.ok()?;
        let last_log = self.wal.send(wal_actor::LastLogId).await.ok()?;
        Some(NodeStatus {
            election,
            committed,
            applied,
            last_log,
        })
    }

    /// This node's role, term and known leader.
    pub async fn role(&self) -> Option<RoleState> {
        self.election.send(GetRole).await.ok()
    }

    pub async fn is_leader(&self) -> bool {
        self.role().await.is_some_and(|r| r.role == Role::Leader)
    }

    /// The id of the last entry in this node's log.
    pub async fn last_log_id(&self) -> Option<LogId> {
        self.wal.send(wal_actor::LastLogId).await.ok()
    }

    pub async fn applied_index(&self) -> Option<LogIndex> {
        self.apply.send(GetApplied).await.ok()
    }

    /// Confirms a read index at `level` (through the leader if this node follows) and waits
    /// until this node has applied it; returns the applied index. State read afterwards —
    /// the streams, or the application state machine's — is linearizable.
    pub async fn linearize(&self, level: ReadLevel) -> Result<LogIndex, ReadFailure> {
        let (reply, index) = oneshot::channel();
        self.election.do_send(ReadIndex { level, reply });
        let index = index.await.map_err(|_| ReadFailure::NodeStopped)??;
        let (reply, applied) = oneshot::channel();
        self.apply
            .do_send(apply_actor::WaitApplied { index, reply });
        applied.await.map_err(|_| ReadFailure::NodeStopped)
    }

    /// Records of `stream` from this node's applied state, without coordination.
    pub async fn read_stale(
        &self,
        stream: &str,
        from: Offset,
        limit: usize,
    ) -> Result<StreamRead, String> {
        self.read_after(stream, from, limit, LogIndex(0)).await
    }

    /// A linearizable read of `stream`: confirms a read index at `level` (through the leader
    /// if this node follows), waits until this node has applied it, then reads.
    pub async fn read_linearizable(
        &self,
        stream: &str,
        from: Offset,
        limit: usize,
        level: ReadLevel,
    ) -> Result<StreamRead, ReadFailure> {
        let (reply, index) = oneshot::channel();
        self.election.do_send(ReadIndex { level, reply });
        let index = index.await.map_err(|_| ReadFailure::NodeStopped)??;
        self.read_after(stream, from, limit, index)
            .await
            .map_err(ReadFailure::Storage)
    }

    async fn read_after(
        &self,
        stream: &str,
        from: Offset,
        limit: usize,
        after: LogIndex,
    ) -> Result<StreamRead, String> {
        let (reply, result) = oneshot::channel();
        let request = ReadStream {
            stream: stream.to_string(),
            from,
            limit,
            after,
            reply,
        };
        self.apply.do_send(request);
        result.await.map_err(|_| "the node stopped".to_string())?
    }

    /// Ends every long-poll and tail waiting on this node, now and from now on: the first step
    /// of a graceful shutdown, so that open tails do not hold it up.
    pub fn release_waiters(&self) {
        self.apply.do_send(apply_actor::ReleaseWaiters);
    }

    /// Makes everything this node has appended durable; returns the durable index, or `None`
    /// if the WAL actor is gone (after a fatal error).
    pub async fn drain(&self) -> Option<LogIndex> {
        let (reply, durable) = oneshot::channel();
        self.wal.do_send(wal_actor::Drain { reply });
        durable.await.ok()
    }

    /// Freezes the whole node for `duration`, as a process pause would (see [`Freeze`]).
    pub fn freeze(&self, duration: Duration) {
        self.election.do_send(Freeze { duration });
        self.wal.do_send(Freeze { duration });
        self.apply.do_send(Freeze { duration });
        self.batcher.do_send(Freeze { duration });
        self.router.do_send(Freeze { duration });
    }

    /// Stops the node's actors. Whatever was not flushed may be lost, as in a crash; a
    /// graceful shutdown [`drain`](Self::drain)s first.
    pub fn stop(&self) {
        self.router.do_send(Shutdown);
        self.election.do_send(StopActor);
        self.apply.do_send(StopActor);
        self.batcher.do_send(StopActor);
        self.wal.do_send(StopActor);
    }
}
