//! Running nodes for real: each node's log and hard state on disk (the `raftlog-wal` crate),
//! its peers over TCP, and its clients over HTTP. `raftlog serve` runs one node this way and
//! `raftlog dev` several in one process.
//!
//! Threads: the node's actors and the peer transport share the actix system's event loop;
//! the WAL actor has an arbiter (thread) of its own, so segment rolls and truncations never
//! stall heartbeats; fsyncs and hard-state saves run on two dedicated threads; HTTP runs on
//! actix-web's workers.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use actix_web::dev::ServerHandle;
use tokio::sync::mpsc;

use crate::config::NodeFileConfig;
use crate::embed::Raftlog;
use crate::http::{self, HttpContext, LogService};
use crate::node::batcher::BatchLimits;
use crate::node::clock::Clock;
use crate::node::state_machine::StateMachine;
use crate::node::storage::BlockingPool;
use crate::node::wal_store;
use crate::node::{self, NodeConfig, NodeHandle, NodeStorage, NodeWiring};
use crate::raft::progress::ReplicationLimits;
use crate::service::NodeService;
use crate::transport::{TcpTransport, TcpTransportConfig};
use crate::types::NodeId;

/// How many peer messages a node buffers before the transport drops (Raft retries).
const INBOUND_CAPACITY: usize = 16 * 1024;

/// What a node runs besides what its config file says.
pub struct StartOptions {
    /// The embedding program's own replicated state machine, if any.
    pub application: Option<Box<dyn StateMachine>>,
    /// Serve the HTTP API on the config's `[http] listen` address.
    pub http: bool,
}

impl Default for StartOptions {
    /// What `raftlog serve` runs: the streams and the HTTP API.
    fn default() -> Self {
        StartOptions {
            application: None,
            http: true,
        }
    }
}

/// A node serving clients and peers.
pub struct RunningNode {
    pub id: NodeId,
    pub node: NodeHandle,
    http: Option<ServerHandle>,
    transport: Arc<TcpTransport>,
    wal_arbiter: Arbiter,
}

/// The consensus settings of a node's config file.
pub fn node_config(file: &NodeFileConfig) -> NodeConfig {
    let voters = file.members.iter().map(|m| m.id).collect();
    let mut config = NodeConfig::new(file.id, voters);
    config.election_timeout_min = file.raft.election_timeout_min();
    config.election_timeout_max = file.raft.election_timeout_max();
    config.heartbeat_interval = file.raft.heartbeat_interval();
    config.pre_vote = file.raft.pre_vote;
    config.check_quorum = file.raft.check_quorum;
    config.lease_reads = file.raft.lease_reads;
    config.clock_drift_max = file.raft.clock_drift_max;
    let replication = &file.replication;
    config.replication = ReplicationLimits {
        entries_per_append_max: replication.entries_per_append_max,
        bytes_per_append_max: replication.bytes_per_append_max,
        inflight_appends_max: replication.inflight_appends_max,
        inflight_bytes_max: replication.inflight_bytes_max,
        append_timeout: Duration::from_millis(replication.append_timeout_ms),
    };
    config.uncommitted_bytes_max = replication.uncommitted_bytes_max;
    config.batching = BatchLimits {
        linger: Duration::from_micros(file.batching.proposal_linger_us),
        requests_max: file.batching.proposal_batch_requests_max,
        bytes_max: file.batching.proposal_batch_bytes_max as usize,
        in_flight_max: file.batching.proposals_in_flight_max,
    };
    config.jitter_seed = jitter_seed(file.id);
    config
}

/// Timer jitter needs no cryptographic randomness, only seeds that differ between nodes and
/// restarts: the clock, the process id and the node id.
fn jitter_seed(id: NodeId) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))
}

/// Opens the node's storage, starts its transport, actors and HTTP server. Must run inside
/// the actix system.
pub fn start_node(file: &NodeFileConfig, start: StartOptions) -> Result<RunningNode, String> {
    std::fs::create_dir_all(&file.data_dir).map_err(|e| {
        format!(
            "cannot create data directory {}: {e}",
            file.data_dir.display()
        )
    })?;
    let options = raftlog_wal::Options {
        segment_bytes: file.wal.segment_bytes,
        payload_bytes_max: u32::try_from(file.wal.entry_bytes_max)
            .map_err(|_| "wal.entry_bytes_max is over 4 GiB")?,
        ..Default::default()
    };
    let (log, hard_state, report) =
        wal_store::open(&file.data_dir, options).map_err(|e| e.to_string())?;
    tracing::info!(node = file.id.0, ?report, "recovered the log");

    let peers = file
        .members
        .iter()
        .filter(|m| m.id != file.id)
        .map(|m| Ok((m.id, resolve(&m.peer)?)))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    let transport_config =
        TcpTransportConfig::new(file.cluster_id.clone(), file.id, file.peer_listen(), peers);
    let transport = Arc::new(
        TcpTransport::start(transport_config, inbound_tx)
            .map_err(|e| format!("cannot listen for peers on {}: {e}", file.peer_listen()))?,
    );

    let wal_arbiter = Arbiter::new();
    let name = |what: &str| format!("n{}-{what}", file.id.0);
    let storage = NodeStorage {
        log: Box::new(log),
        hard_state: Box::new(hard_state),
        // The WAL's flush runs on the WAL actor's own thread (the arbiter above): blocking
        // it in fdatasync holds up nothing but the WAL's mailbox, whose appends then go into
        // the next flush together. A flush thread of its own cost two thread hand-offs per
        // flush and smaller groups: 9-16% of the write throughput at 64-256 connections
        // (BENCHMARKS.md, "Writes on `ae31cc2`").
        log_pool: BlockingPool::Inline,
        hard_state_pool: BlockingPool::thread(&name("hard-state")),
        wal_arbiter: Some(wal_arbiter.handle()),
    };
    let id = file.id;
    let wiring = NodeWiring {
        application: start.application,
        network: transport.clone(),
        inbound: inbound_rx,
        clock: Clock::new(),
        observer: None,
        on_fatal: Arc::new(move |message: &str| {
            // The node cannot go on without pretending a write happened: stop the process.
            tracing::error!(node = id.0, "fatal: {message}; stopping");
            std::process::exit(70);
        }),
    };
    // The HTTP context installs the Prometheus recorder: before the node starts, whose actors
    // take their metric handles from the recorder installed when they start.
    let http_context = start.http.then(|| HttpContext::from_config(file));
    let node = node::start(node_config(file), storage, wiring);
    let http = match http_context {
        Some(context) => Some(start_http(file, &node, context)?),
        None => None,
    };
    Ok(RunningNode {
        id,
        node,
        http,
        transport,
        wal_arbiter,
    })
}

/// Serves the HTTP API: a layer over the node's library handle.
fn start_http(
    file: &NodeFileConfig,
    node: &NodeHandle,
    context: HttpContext,
) -> Result<ServerHandle, String> {
    let members_http = file
        .members
        .iter()
        .map(|m| (m.id, m.http.clone()))
        .collect();
    let log = Raftlog::new(node.clone(), 3 * file.raft.election_timeout_max());
    let service = NodeService::new(log, members_http);
    let listener = http::server::bind(file.http_listen()).map_err(|e| e.to_string())?;
    let server = http::server::start(listener, file.http.workers, context, move || {
        Arc::new(service.clone()) as Arc<dyn LogService>
    })
    .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}

/// Stops a node cleanly: no new HTTP requests, those in progress finish (or are closed after
/// the grace period), everything appended is flushed, then the actors and the transport stop.
pub async fn stop_node(running: RunningNode) {
    running.node.release_waiters();
    if let Some(http) = &running.http {
        http.stop(true).await;
    }
    match running.node.drain().await {
        Some(durable) => tracing::info!(node = running.id.0, %durable, "log flushed"),
        None => tracing::warn!(
            node = running.id.0,
            "the log could not be flushed on shutdown"
        ),
    }
    running.node.stop();
    running.transport.shutdown().await;
    // Wait for the WAL's thread to end: only then is the WAL closed and its directory lock
    // released, so the same data directory can be opened again at once.
    running.wal_arbiter.stop();
    let joined = tokio::task::spawn_blocking(move || running.wal_arbiter.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::warn!(node = running.id.0, "the WAL thread did not end cleanly");
    }
}

/// Makes any panic stop the process: a node whose invariant broke must not keep serving.
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        tracing::error!("a broken invariant stopped the node: {info}");
        std::process::abort();
    }));
}
