//! The inbound side: accept connections, check each one's handshake, then read its messages
//! into the inbound channel. A connection that misbehaves is closed and logged on its own;
//! the listener and every other connection carry on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio_util::codec::{Framed, LengthDelimitedCodec, LengthDelimitedCodecError};

use super::stats::Counters;
use super::TcpTransportConfig;
use crate::raft::message::PeerMessage;
use crate::transport::frame::{
    self, Hello, HelloReply, Lane, HANDSHAKE_FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use crate::transport::{count_and_should_log, InboundSender};
use crate::types::NodeId;

/// How long the listener pauses after `accept` fails (say, out of file descriptors), so that
/// a persistent error does not become a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

type Connection = Framed<TcpStream, LengthDelimitedCodec>;

/// What every inbound connection task shares.
pub(super) struct AcceptContext {
    config: Arc<TcpTransportConfig>,
    inbound: InboundSender,
    counters: Arc<Counters>,
    /// Per peer and lane, a counter bumped by each newly accepted connection from it. A
    /// connection that sees the counter move on has been superseded and closes: the peer
    /// redialed, so the old connection is dead or half-open, and keeping one reader per
    /// peer and lane keeps that lane's messages in one order.
    generations: BTreeMap<(NodeId, Lane), watch::Sender<u64>>,
    /// Per dialer of ours (peer and lane), notified when that peer dials in: the dialer
    /// stops backing off.
    peer_dialed_in: BTreeMap<(NodeId, Lane), Arc<Notify>>,
}

impl AcceptContext {
    pub(super) fn new(
        config: Arc<TcpTransportConfig>,
        inbound: InboundSender,
        counters: Arc<Counters>,
        peer_dialed_in: BTreeMap<(NodeId, Lane), Arc<Notify>>,
    ) -> Arc<AcceptContext> {
        let generations = config
            .peers
            .keys()
            .filter(|&&peer| peer != config.node_id)
            .flat_map(|&peer| Lane::ALL.map(|lane| ((peer, lane), watch::Sender::new(0))))
            .collect();
        Arc::new(AcceptContext {
            config,
            inbound,
            counters,
            generations,
            peer_dialed_in,
        })
    }
}

/// Accepts connections until the task is aborted; aborting it also ends every connection
/// task (they live in its `JoinSet`).
pub(super) async fn run_listener(listener: TcpListener, context: Arc<AcceptContext>) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(node = %context.config.node_id, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= context.config.accepted_connections_max {
            if count_and_should_log(&context.counters.handshakes_refused) {
                tracing::warn!(
                    node = %context.config.node_id, %remote,
                    max = context.config.accepted_connections_max,
                    "refusing a connection: too many inbound connections"
                );
            }
            continue;
        }
        connections.spawn(serve_connection(stream, remote, context.clone()));
    }
}

async fn serve_connection(stream: TcpStream, remote: SocketAddr, context: Arc<AcceptContext>) {
    let node = context.config.node_id;
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%node, %remote, %error, "cannot set TCP_NODELAY");
    }
    let mut connection = Framed::new(stream, frame::codec(HANDSHAKE_FRAME_BYTES_MAX));
    let handshake = tokio::time::timeout(
        context.config.handshake_timeout(),
        answer_hello(&mut connection, &context.config),
    );
    let (peer, lane) = match handshake.await {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(reason)) => return refused(&context, remote, &reason),
        Err(_) => return refused(&context, remote, "no hello within the handshake timeout"),
    };
    context
        .counters
        .handshakes_accepted
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%node, %peer, ?lane, %remote, "accepted a connection");
    // `notify_one` keeps a permit for a dialer not waiting yet (one whose dial is failing
    // right now, just before the peer came up), so it still skips its next backoff.
    for lane in Lane::ALL {
        if let Some(dialed_in) = context.peer_dialed_in.get(&(peer, lane)) {
            dialed_in.notify_one();
        }
    }
    connection
        .codec_mut()
        .set_max_frame_length(context.config.frame_bytes_max);
    let why = read_messages(connection, peer, lane, &context).await;
    tracing::debug!(%node, %peer, %remote, why, "inbound connection closed");
}

fn refused(context: &AcceptContext, remote: SocketAddr, reason: &str) {
    context
        .counters
        .handshakes_refused
        .fetch_add(1, Ordering::Relaxed);
    let node = context.config.node_id;
    tracing::warn!(%node, %remote, reason, "refused a connection");
}

/// Reads the dialer's hello and answers it; returns the peer's id if accepted, otherwise the
/// reason, which has been sent to the dialer when the connection still allowed it.
async fn answer_hello(
    connection: &mut Connection,
    config: &TcpTransportConfig,
) -> Result<(NodeId, Lane), String> {
    let hello = match connection.next().await {
        None => return Err("closed before sending a hello".into()),
        Some(Err(error)) => return Err(format!("unreadable hello: {error}")),
        Some(Ok(bytes)) => frame::decode::<Hello>(&bytes),
    };
    let verdict = match hello {
        Ok(hello) => check_hello(&hello, config).map(|()| (hello.from, hello.lane)),
        Err(error) => Err(format!("malformed hello: {error}")),
    };
    let reply = match &verdict {
        Ok(_) => HelloReply::Accepted,
        Err(reason) => HelloReply::Rejected {
            reason: reason.clone(),
        },
    };
    let reply = frame::encode(&reply, HANDSHAKE_FRAME_BYTES_MAX)
        .map_err(|error| format!("cannot encode the hello reply: {error}"))?;
    if let Err(error) = connection.send(reply).await {
        return Err(match verdict {
            Ok((peer, _)) => format!("cannot reply to {peer}'s hello: {error}"),
            Err(reason) => reason,
        });
    }
    verdict
}

/// The acceptor's rules: same protocol, same cluster, addressed to this node, from a peer in
/// this node's config that is not this node.
fn check_hello(hello: &Hello, config: &TcpTransportConfig) -> Result<(), String> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} but this node speaks {PROTOCOL_VERSION}",
            hello.protocol_version
        ));
    }
    if hello.cluster_id != config.cluster_id {
        return Err(format!(
            "cluster id {:?} but this node is in cluster {:?}",
            hello.cluster_id, config.cluster_id
        ));
    }
    if hello.to != config.node_id {
        return Err(format!(
            "hello addressed to {} but this node is {}",
            hello.to, config.node_id
        ));
    }
    if hello.from == config.node_id {
        return Err(format!(
            "hello from {}, which is this node's own id",
            hello.from
        ));
    }
    if !config.is_peer(hello.from) {
        return Err(format!(
            "{} is not a peer in this node's config",
            hello.from
        ));
    }
    Ok(())
}

/// Reads messages from an accepted connection until it ends or misbehaves; returns why.
async fn read_messages(
    mut connection: Connection,
    peer: NodeId,
    lane: Lane,
    context: &AcceptContext,
) -> String {
    let generation = &context.generations[&(peer, lane)];
    generation.send_modify(|count| *count += 1);
    let mut superseded = generation.subscribe();
    loop {
        let frame = tokio::select! {
            biased;
            _ = superseded.changed() => return "superseded by the peer's newer connection".into(),
            frame = connection.next() => frame,
        };
        let bytes = match frame {
            None => return "closed by peer".into(),
            Some(Ok(bytes)) => bytes,
            Some(Err(error)) => return on_read_error(context, peer, error),
        };
        match frame::decode::<PeerMessage>(&bytes) {
            Ok(message) if message.from == peer && message.to == context.config.node_id => {
                deliver(context, message)
            }
            Ok(message) => {
                let why = format!(
                    "a message from {} to {} on {peer}'s connection",
                    message.from, message.to
                );
                return bad_frame(context, peer, why);
            }
            Err(error) => return bad_frame(context, peer, format!("undecodable frame: {error}")),
        }
    }
}

fn deliver(context: &AcceptContext, message: PeerMessage) {
    match context.inbound.try_send(message) {
        Ok(()) => {
            context
                .counters
                .messages_received
                .fetch_add(1, Ordering::Relaxed);
        }
        Err(
            mpsc::error::TrySendError::Full(message) | mpsc::error::TrySendError::Closed(message),
        ) => {
            if count_and_should_log(&context.counters.messages_dropped_inbound_full) {
                tracing::debug!(
                    node = %context.config.node_id, from = %message.from,
                    kind = message.body.name(), "inbound channel full or closed: dropped a message"
                );
            }
        }
    }
}

fn bad_frame(context: &AcceptContext, peer: NodeId, why: String) -> String {
    context
        .counters
        .connections_closed_bad_frame
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(node = %context.config.node_id, %peer, why, "disconnecting a peer");
    why
}

fn on_read_error(context: &AcceptContext, peer: NodeId, error: std::io::Error) -> String {
    let oversized = error
        .get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>());
    if !oversized {
        return format!("read failed: {error}");
    }
    context
        .counters
        .connections_closed_oversized_frame
        .fetch_add(1, Ordering::Relaxed);
    let why = format!(
        "a frame over the limit of {} bytes",
        context.config.frame_bytes_max
    );
    tracing::warn!(node = %context.config.node_id, %peer, why, "disconnecting a peer");
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TcpTransportConfig {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let peers = [(NodeId(1), addr), (NodeId(2), addr), (NodeId(3), addr)];
        TcpTransportConfig::new("alpha", NodeId(1), addr, peers.into_iter().collect())
    }

    fn hello() -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: "alpha".into(),
            from: NodeId(2),
            to: NodeId(1),
            lane: Lane::Control,
        }
    }

    #[test]
    fn a_hello_from_a_known_peer_of_this_cluster_is_accepted() {
        assert_eq!(check_hello(&hello(), &config()), Ok(()));
    }

    #[test]
    fn each_hello_rule_refuses_with_its_reason() {
        type BreakHello = fn(&mut Hello);
        let cases: [(BreakHello, &str); 5] = [
            (|h| h.protocol_version += 1, "protocol version"),
            (|h| h.cluster_id = "beta".into(), "cluster id"),
            (|h| h.to = NodeId(3), "addressed to n3"),
            (|h| h.from = NodeId(1), "own id"),
            (|h| h.from = NodeId(9), "n9 is not a peer"),
        ];
        for (break_it, expected) in cases {
            let mut hello = hello();
            break_it(&mut hello);
            let reason = check_hello(&hello, &config()).unwrap_err();
            assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        }
    }
}
