//! The TCP peer transport: owns this node's listening socket, one outbound connection per
//! peer with its bounded queue, and the tasks that dial, write and read them.
//!
//! Each node dials every peer it sends to, twice — one connection per [`Lane`]: AppendEntries
//! on one, everything else (heartbeats, votes, read confirmations, responses) on the other, so
//! a multi-megabyte append never delays a heartbeat — and only writes on those connections;
//! connections it accepts only carry messages in. A peer that dials in has just (re)started
//! or reconnected, so accepting its connection also wakes this node's dialers to it from
//! their backoff: a restarted peer hears from us at once, not up to a maximum backoff later
//! (long enough for its election timer to run out). Each connection is FIFO: messages of one
//! lane from one node to another arrive in the order they were sent, minus any dropped. The byte format and handshake are in
//! [`super::frame`]; dialing and writing in `tcp/dial.rs`; accepting and reading in
//! `tcp/accept.rs`.
//!
//! Every task is spawned with `tokio::spawn` and is `Send`, so the transport runs the same on
//! a plain tokio runtime and inside an actix `System` (a current-thread runtime with a
//! `LocalSet`).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::frame::{Lane, FRAME_BYTES_MAX_DEFAULT, HANDSHAKE_FRAME_BYTES_MAX};
use super::{count_and_should_log, InboundSender, PeerNetwork};
use crate::raft::message::PeerMessage;
use crate::types::NodeId;

mod accept;
mod dial;
mod queue;
mod stats;

use queue::PeerQueue;
use stats::Counters;
pub use stats::TcpTransportStats;

/// The TCP transport's settings. The names are the config file's keys.
#[derive(Clone, Debug)]
pub struct TcpTransportConfig {
    /// Peers must present the same id in their handshake: it keeps a node of one cluster
    /// from joining another that happens to share addresses.
    pub cluster_id: String,
    pub node_id: NodeId,
    /// Where to listen (used by [`TcpTransport::start`]).
    pub listen: SocketAddr,
    /// The other members and where to dial them. An entry for `node_id` itself is ignored.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The largest frame sent or accepted; it bounds one AppendEntries.
    pub frame_bytes_max: usize,
    /// Messages held per peer while its connection is slow or down.
    pub peer_queue_capacity: usize,
    /// The first delay before redialing a peer after a failure; doubles up to the max.
    pub reconnect_backoff_ms_min: u64,
    pub reconnect_backoff_ms_max: u64,
    /// How long connecting plus the handshake may take, on either side.
    pub handshake_timeout_ms: u64,
    /// How long writing one batch may take before the connection is presumed dead (a peer
    /// whose host vanished never sends a reset) and redialed.
    pub write_timeout_ms: u64,
    /// Inbound connections held at once; beyond it new ones are refused. A cluster needs one
    /// per peer, plus a few while peers reconnect.
    pub accepted_connections_max: usize,
}

impl TcpTransportConfig {
    /// A config with the default limits and timeouts.
    pub fn new(
        cluster_id: impl Into<String>,
        node_id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> TcpTransportConfig {
        TcpTransportConfig {
            cluster_id: cluster_id.into(),
            node_id,
            listen,
            peers,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            peer_queue_capacity: 4096,
            reconnect_backoff_ms_min: 10,
            reconnect_backoff_ms_max: 1000,
            handshake_timeout_ms: 2000,
            write_timeout_ms: 5000,
            accepted_connections_max: 64,
        }
    }

    fn validate(&self) -> io::Result<()> {
        let problem = if self.frame_bytes_max < HANDSHAKE_FRAME_BYTES_MAX {
            Some("frame_bytes_max is below the handshake frame size")
        } else if self.frame_bytes_max > u32::MAX as usize {
            Some("frame_bytes_max exceeds what a 4-byte frame length can say")
        } else if self.peer_queue_capacity == 0 {
            Some("peer_queue_capacity must be at least 1")
        } else if self.reconnect_backoff_ms_min == 0
            || self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max
        {
            Some("need 0 < reconnect_backoff_ms_min <= reconnect_backoff_ms_max")
        } else if self.handshake_timeout_ms == 0 || self.write_timeout_ms == 0 {
            Some("timeouts must be positive")
        } else if self.accepted_connections_max == 0 {
            Some("accepted_connections_max must be at least 1")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(io::Error::new(io::ErrorKind::InvalidInput, problem)),
            None => Ok(()),
        }
    }

    fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    fn is_peer(&self, node: NodeId) -> bool {
        node != self.node_id && self.peers.contains_key(&node)
    }
}

/// A running TCP transport. Dropping it (or [`TcpTransport::shutdown`]) stops its tasks and
/// closes its sockets.
pub struct TcpTransport {
    node_id: NodeId,
    local_addr: SocketAddr,
    queues: BTreeMap<(NodeId, Lane), Arc<PeerQueue>>,
    counters: Arc<Counters>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
}

impl TcpTransport {
    /// Binds `config.listen` (with `SO_REUSEADDR`, so a restarted node gets its port back
    /// while old connections linger in TIME_WAIT), then starts listening and dialing.
    /// Received messages go to `inbound`. Must be called from within a tokio runtime.
    pub fn start(config: TcpTransportConfig, inbound: InboundSender) -> io::Result<TcpTransport> {
        config.validate()?;
        let socket = match config.listen {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        let listener = socket.listen(1024)?;
        Self::start_listening(config, listener, inbound)
    }

    /// Like [`TcpTransport::start`], on a listener the caller bound already (`config.listen`
    /// is ignored). Tests bind every node's port first, so they know all the addresses before
    /// any node starts, without a window in which another process could take a port.
    pub fn start_with_listener(
        config: TcpTransportConfig,
        listener: std::net::TcpListener,
        inbound: InboundSender,
    ) -> io::Result<TcpTransport> {
        config.validate()?;
        listener.set_nonblocking(true)?;
        Self::start_listening(config, TcpListener::from_std(listener)?, inbound)
    }

    fn start_listening(
        config: TcpTransportConfig,
        listener: TcpListener,
        inbound: InboundSender,
    ) -> io::Result<TcpTransport> {
        let local_addr = listener.local_addr()?;
        let config = Arc::new(config);
        let counters = Arc::new(Counters::default());
        // Per dialer: notified when its peer dials in, to cut the dialer's backoff short.
        let peer_dialed_in: BTreeMap<(NodeId, Lane), Arc<Notify>> = config
            .peers
            .keys()
            .filter(|&&peer| peer != config.node_id)
            .flat_map(|&peer| Lane::ALL.map(|lane| ((peer, lane), Arc::new(Notify::new()))))
            .collect();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(accept::run_listener(
            listener,
            accept::AcceptContext::new(
                config.clone(),
                inbound,
                counters.clone(),
                peer_dialed_in.clone(),
            ),
        )));
        let mut queues = BTreeMap::new();
        for (&peer, &peer_addr) in config.peers.iter().filter(|(&p, _)| p != config.node_id) {
            for lane in Lane::ALL {
                let queue = Arc::new(PeerQueue::new(config.peer_queue_capacity));
                queues.insert((peer, lane), queue.clone());
                let dialer = dial::Dialer::new(
                    config.clone(),
                    peer,
                    lane,
                    peer_addr,
                    queue,
                    counters.clone(),
                    peer_dialed_in[&(peer, lane)].clone(),
                );
                tasks.push(tokio::spawn(dialer.run()));
            }
        }
        let peer_count = queues.len() / Lane::ALL.len();
        tracing::info!(node = %config.node_id, %local_addr, peer_count, "tcp transport started");
        Ok(TcpTransport {
            node_id: config.node_id,
            local_addr,
            queues,
            counters,
            tasks: Mutex::new(tasks),
            shut_down: AtomicBool::new(false),
        })
    }

    /// The address actually listened on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn stats(&self) -> TcpTransportStats {
        self.counters.snapshot()
    }

    /// Stops every task and waits until they are gone, so that when this returns the
    /// listening socket and the outbound connections are closed (and the port can be bound
    /// again). Later sends are dropped. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Relaxed);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("task list lock poisoned"));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // A cancelled task's error says only that it was cancelled, which is the point.
            let _ = task.await;
        }
    }
}

impl PeerNetwork for TcpTransport {
    fn send(&self, message: PeerMessage) {
        let queue = self.queues.get(&(message.to, Lane::of(&message)));
        let routable = message.from == self.node_id && !self.shut_down.load(Ordering::Relaxed);
        let Some(queue) = queue.filter(|_| routable) else {
            if count_and_should_log(&self.counters.messages_dropped_unroutable) {
                tracing::warn!(
                    node = %self.node_id, from = %message.from, to = %message.to,
                    kind = message.body.name(),
                    "dropping a message this transport cannot route (unknown peer, \
                     wrong sender, or shut down)"
                );
            }
            return;
        };
        if queue.push(message) && count_and_should_log(&self.counters.messages_dropped_queue_full) {
            tracing::debug!(
                node = %self.node_id,
                dropped = self.counters.messages_dropped_queue_full.load(Ordering::Relaxed),
                "peer queue full: dropped its oldest message"
            );
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        // The tasks end at their next poll; call `shutdown` to wait for that.
        for task in self
            .tasks
            .get_mut()
            .expect("task list lock poisoned")
            .iter()
        {
            task.abort();
        }
    }
}
