//! The TCP transport over real loopback sockets: delivery and order, the handshake's
//! refusals, misbehaving connections, and a peer restarting.
//!
//! Every node's port is bound (port 0) before any node starts, so every address is known up
//! front. Tests wait on the inbound channel, or on a counter, with a deadline; none sleeps in
//! the hope that something has happened meanwhile.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use raftlog::raft::message::{
    AppendEntries, Entry, EntryPayload, Heartbeat, MessageBody, PeerMessage,
};
use raftlog::transport::frame::{self, Hello, HelloReply, HANDSHAKE_FRAME_BYTES_MAX};
use raftlog::transport::{PeerNetwork, TcpTransport, TcpTransportConfig, TcpTransportStats};
use raftlog::types::{LogId, LogIndex, NodeId, Term};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

const DEADLINE: Duration = Duration::from_secs(10);
const FRAME_BYTES_MAX: usize = 64 * 1024;

/// A heartbeat whose `round` numbers it, so tests can check order.
fn message(from: u64, to: u64, round: u64) -> PeerMessage {
    PeerMessage {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: MessageBody::Heartbeat(Heartbeat {
            commit: LogIndex(0),
            round,
        }),
    }
}

fn round_of(message: &PeerMessage) -> u64 {
    match &message.body {
        MessageBody::Heartbeat(heartbeat) => heartbeat.round,
        other => panic!("unexpected {other:?}"),
    }
}

fn bind_port_0() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A test cluster's wiring: each node's bound listener and the address book.
struct Cluster {
    listeners: BTreeMap<u64, TcpListener>,
    addrs: BTreeMap<NodeId, SocketAddr>,
}

impl Cluster {
    fn bind(ids: &[u64]) -> Cluster {
        let listeners: BTreeMap<u64, TcpListener> =
            ids.iter().map(|&id| (id, bind_port_0())).collect();
        let addrs = listeners
            .iter()
            .map(|(&id, l)| (NodeId(id), l.local_addr().unwrap()))
            .collect();
        Cluster { listeners, addrs }
    }

    fn config(&self, cluster_id: &str, id: u64) -> TcpTransportConfig {
        let mut config = TcpTransportConfig::new(
            cluster_id,
            NodeId(id),
            self.addrs[&NodeId(id)],
            self.addrs.clone(),
        );
        config.frame_bytes_max = FRAME_BYTES_MAX;
        config.reconnect_backoff_ms_min = 5;
        config.reconnect_backoff_ms_max = 50;
        config
    }

    /// Starts a node on its id's pre-bound listener.
    fn start(&mut self, config: TcpTransportConfig) -> Node {
        self.start_on(config.node_id.0, config)
    }

    /// Starts a node on the pre-bound listener of node `slot`.
    fn start_on(&mut self, slot: u64, config: TcpTransportConfig) -> Node {
        let listener = self.listeners.remove(&slot).expect("started once");
        Node::start_with(|inbound| TcpTransport::start_with_listener(config, listener, inbound))
    }
}

struct Node {
    transport: TcpTransport,
    received: mpsc::Receiver<PeerMessage>,
}

impl Node {
    fn start_with(
        start: impl FnOnce(mpsc::Sender<PeerMessage>) -> std::io::Result<TcpTransport>,
    ) -> Node {
        let (inbound, received) = mpsc::channel(10_000);
        let transport = start(inbound).unwrap();
        Node {
            transport,
            received,
        }
    }

    async fn recv(&mut self) -> PeerMessage {
        tokio::time::timeout(DEADLINE, self.received.recv())
            .await
            .expect("no message before the deadline")
            .expect("inbound channel closed")
    }

    /// Receives `count` messages and returns their (from, round) in arrival order.
    async fn recv_rounds(&mut self, count: usize) -> Vec<(u64, u64)> {
        let mut rounds = Vec::with_capacity(count);
        for _ in 0..count {
            let message = self.recv().await;
            assert_eq!(message.to, self.transport.node_id());
            rounds.push((message.from.0, round_of(&message)));
        }
        rounds
    }

    fn assert_nothing_received(&mut self) {
        if let Ok(message) = self.received.try_recv() {
            panic!("unexpected {message:?}");
        }
    }
}

/// Polls a counter until `done` holds: the counters are the transport's observable record
/// of refusals and disconnects, which happen on its own tasks.
async fn wait_for_stats(
    node: &Node,
    done: impl Fn(&TcpTransportStats) -> bool,
) -> TcpTransportStats {
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            let stats = node.transport.stats();
            if done(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    waited
        .await
        .unwrap_or_else(|_| panic!("stats never matched: {:?}", node.transport.stats()))
}

#[tokio::test]
async fn two_nodes_exchange_messages_both_ways_in_order() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    let mut n2 = cluster.start(cluster.config("alpha", 2));
    for round in 0..500 {
        n1.transport.send(message(1, 2, round));
        n2.transport.send(message(2, 1, round));
    }
    let from_1: Vec<(u64, u64)> = (0..500).map(|round| (1, round)).collect();
    let from_2: Vec<(u64, u64)> = (0..500).map(|round| (2, round)).collect();
    assert_eq!(n2.recv_rounds(500).await, from_1);
    assert_eq!(n1.recv_rounds(500).await, from_2);
    let stats = n1.transport.stats();
    assert_eq!((stats.messages_sent, stats.messages_received), (500, 500));
    // Two connections each way: one per lane (replication, and everything else).
    assert_eq!((stats.dials_accepted, stats.handshakes_accepted), (2, 2));
    n1.transport.shutdown().await;
    n2.transport.shutdown().await;
}

#[tokio::test]
async fn three_nodes_exchange_messages_in_per_sender_order() {
    let ids = [1, 2, 3];
    let mut cluster = Cluster::bind(&ids);
    let mut nodes: Vec<Node> = ids
        .iter()
        .map(|&id| cluster.start(cluster.config("alpha", id)))
        .collect();
    for round in 0..200 {
        for &from in &ids {
            for &to in ids.iter().filter(|&&to| to != from) {
                nodes[from as usize - 1]
                    .transport
                    .send(message(from, to, round));
            }
        }
    }
    for (index, node) in nodes.iter_mut().enumerate() {
        let mut by_sender: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (from, round) in node.recv_rounds(400).await {
            by_sender.entry(from).or_default().push(round);
        }
        let expected_senders: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| id != index as u64 + 1)
            .collect();
        assert_eq!(
            by_sender.keys().copied().collect::<Vec<_>>(),
            expected_senders
        );
        for rounds in by_sender.values() {
            assert_eq!(rounds, &(0..200).collect::<Vec<_>>());
        }
    }
}

#[actix_rt::test]
async fn runs_inside_an_actix_system() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    let mut n2 = cluster.start(cluster.config("alpha", 2));
    n1.transport.send(message(1, 2, 7));
    assert_eq!(n2.recv_rounds(1).await, vec![(1, 7)]);
    n2.transport.send(message(2, 1, 8));
    assert_eq!(n1.recv_rounds(1).await, vec![(2, 8)]);
}

#[tokio::test]
async fn a_node_of_another_cluster_is_refused_on_both_sides() {
    let mut cluster = Cluster::bind(&[1, 2, 3]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    let stranger = cluster.start(cluster.config("beta", 2));
    stranger.transport.send(message(2, 1, 1));
    wait_for_stats(&n1, |s| s.handshakes_refused >= 1).await;
    wait_for_stats(&stranger, |s| s.dials_rejected_by_peer >= 1).await;

    // The refused node's message never arrives; a proper peer's does, and comes first.
    let n3 = cluster.start(cluster.config("alpha", 3));
    n3.transport.send(message(3, 1, 2));
    assert_eq!(n1.recv_rounds(1).await, vec![(3, 2)]);
    n1.assert_nothing_received();
    assert_eq!(stranger.transport.stats().dials_accepted, 0);
}

#[tokio::test]
async fn a_node_id_missing_from_the_config_is_refused() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    // Node 9 knows node 1, but node 1's config does not know node 9.
    let mut config = cluster.config("alpha", 2);
    config.node_id = NodeId(9);
    let mut unknown = cluster.start_on(2, config);
    unknown.transport.send(message(9, 1, 1));
    wait_for_stats(&unknown, |s| s.dials_rejected_by_peer >= 1).await;
    assert!(n1.transport.stats().handshakes_refused >= 1);
    n1.assert_nothing_received();
    unknown.assert_nothing_received();
}

/// A raw client that speaks the handshake by hand, to misbehave after it.
async fn raw_handshake(
    addr: SocketAddr,
    hello: Hello,
) -> (
    Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
    HelloReply,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(stream, frame::codec(HANDSHAKE_FRAME_BYTES_MAX));
    framed
        .send(frame::encode(&hello, HANDSHAKE_FRAME_BYTES_MAX).unwrap())
        .await
        .unwrap();
    let reply = tokio::time::timeout(DEADLINE, framed.next())
        .await
        .unwrap()
        .expect("a reply")
        .unwrap();
    (framed, frame::decode(&reply).unwrap())
}

fn hello(from: u64, to: u64) -> Hello {
    Hello {
        protocol_version: frame::PROTOCOL_VERSION,
        cluster_id: "alpha".into(),
        from: NodeId(from),
        to: NodeId(to),
        lane: frame::Lane::Control,
    }
}

/// Waits until the other side closes `stream`: a clean EOF or a reset both count.
async fn assert_closed_by_peer(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a handshake reply; keep reading until the close
            }
        }
    });
    read.await
        .expect("the transport did not close the connection");
}

#[tokio::test]
async fn a_hello_addressed_to_another_node_is_refused_with_its_reason() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let n1 = cluster.start(cluster.config("alpha", 1));
    let (framed, reply) = raw_handshake(n1.transport.local_addr(), hello(2, 5)).await;
    match reply {
        HelloReply::Rejected { reason } => assert!(reason.contains("addressed to n5"), "{reason}"),
        HelloReply::Accepted => panic!("accepted a hello for another node"),
    }
    assert_closed_by_peer(&mut framed.into_inner()).await;
    wait_for_stats(&n1, |s| s.handshakes_refused == 1).await;
}

#[tokio::test]
async fn a_peer_redialing_supersedes_its_older_connection() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    let addr = n1.transport.local_addr();
    let (old, reply) = raw_handshake(addr, hello(2, 1)).await;
    assert_eq!(reply, HelloReply::Accepted);
    let (mut new, reply) = raw_handshake(addr, hello(2, 1)).await;
    assert_eq!(reply, HelloReply::Accepted);

    // One reader per peer: the older connection is closed, the newer one carries messages.
    assert_closed_by_peer(&mut old.into_inner()).await;
    let encoded = frame::encode(&message(2, 1, 5), FRAME_BYTES_MAX).unwrap();
    new.send(encoded).await.unwrap();
    assert_eq!(n1.recv_rounds(1).await, vec![(2, 5)]);
    assert_eq!(n1.transport.stats().handshakes_accepted, 2);
}

#[tokio::test]
async fn garbage_and_oversized_frames_disconnect_only_their_connection() {
    let mut cluster = Cluster::bind(&[1, 2, 3]);
    let mut n1 = cluster.start(cluster.config("alpha", 1));
    let addr = n1.transport.local_addr();

    // Not our protocol at all: "GET " read as a frame length is far over the hello limit.
    let mut http = TcpStream::connect(addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_closed_by_peer(&mut http).await;

    // A well-framed hello that does not decode.
    let mut junk_hello = TcpStream::connect(addr).await.unwrap();
    junk_hello
        .write_all(&[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef])
        .await
        .unwrap();
    assert_closed_by_peer(&mut junk_hello).await;
    wait_for_stats(&n1, |s| s.handshakes_refused == 2).await;

    // A proper handshake, then a frame that does not decode.
    let (mut framed, reply) = raw_handshake(addr, hello(2, 1)).await;
    assert_eq!(reply, HelloReply::Accepted);
    framed.send(Bytes::from_static(&[0xff; 16])).await.unwrap();
    assert_closed_by_peer(&mut framed.into_inner()).await;
    wait_for_stats(&n1, |s| s.connections_closed_bad_frame == 1).await;

    // A proper handshake, then a valid message in another node's name.
    let (mut framed, _) = raw_handshake(addr, hello(2, 1)).await;
    let forged = frame::encode(&message(3, 1, 0), FRAME_BYTES_MAX).unwrap();
    framed.send(forged).await.unwrap();
    assert_closed_by_peer(&mut framed.into_inner()).await;
    wait_for_stats(&n1, |s| s.connections_closed_bad_frame == 2).await;

    // A proper handshake, then a frame header announcing one byte over the limit.
    let (framed, _) = raw_handshake(addr, hello(2, 1)).await;
    let mut stream = framed.into_inner();
    let mut header = BytesMut::new();
    header.put_u32(FRAME_BYTES_MAX as u32 + 1);
    stream.write_all(&header).await.unwrap();
    assert_closed_by_peer(&mut stream).await;
    wait_for_stats(&n1, |s| s.connections_closed_oversized_frame == 1).await;

    // None of it was delivered, and a proper peer still gets through.
    n1.assert_nothing_received();
    let n3 = cluster.start(cluster.config("alpha", 3));
    n3.transport.send(message(3, 1, 9));
    assert_eq!(n1.recv_rounds(1).await, vec![(3, 9)]);
}

#[tokio::test]
async fn a_message_too_large_to_send_is_dropped_and_the_rest_flow() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let n1 = cluster.start(cluster.config("alpha", 1));
    let mut n2 = cluster.start(cluster.config("alpha", 2));
    let huge = PeerMessage {
        body: MessageBody::AppendEntries(AppendEntries {
            prev: LogId::default(),
            entries: vec![Entry {
                log_id: LogId::new(Term(1), LogIndex(1)),
                payload: EntryPayload::Command(Bytes::from(vec![0; FRAME_BYTES_MAX])),
            }],
            leader_commit: LogIndex(0),
        }),
        ..message(1, 2, 0)
    };
    n1.transport.send(message(1, 2, 1));
    n1.transport.send(huge);
    n1.transport.send(message(1, 2, 2));
    assert_eq!(n2.recv_rounds(2).await, vec![(1, 1), (1, 2)]);
    assert_eq!(n1.transport.stats().messages_dropped_oversized, 1);
}

#[tokio::test]
async fn a_restarted_peer_is_redialed_and_messages_flow_again() {
    let mut cluster = Cluster::bind(&[1, 2]);
    let n1 = cluster.start(cluster.config("alpha", 1));
    let mut n2 = cluster.start(cluster.config("alpha", 2));
    n1.transport.send(message(1, 2, 0));
    assert_eq!(n2.recv_rounds(1).await, vec![(1, 0)]);

    // Node 2 stops, and starts again on the same port (as a restarted process would).
    let n2_config = cluster.config("alpha", 2);
    n2.transport.shutdown().await;
    drop(n2);
    let mut n2 = Node::start_with(|inbound| TcpTransport::start(n2_config, inbound));

    // Messages written before node 1 notices the old connection is gone may be lost, as
    // Raft allows; so send until one arrives, as a Raft leader's heartbeats would.
    let first = tokio::time::timeout(DEADLINE, async {
        for round in 1.. {
            n1.transport.send(message(1, 2, round));
            let wait = tokio::time::timeout(Duration::from_millis(20), n2.received.recv());
            if let Ok(Some(message)) = wait.await {
                return round_of(&message);
            }
        }
        unreachable!()
    });
    let first = first.await.expect("never reconnected");

    // From then on the connection is up, and everything arrives in send order.
    let mut rounds = vec![first];
    for round in 1_000..1_100 {
        n1.transport.send(message(1, 2, round));
    }
    loop {
        let round = round_of(&n2.recv().await);
        rounds.push(round);
        if round == 1_099 {
            break;
        }
    }
    let fresh: Vec<u64> = rounds.iter().copied().filter(|&r| r >= 1_000).collect();
    assert_eq!(fresh, (1_000..1_100).collect::<Vec<_>>());
    let mut sorted = rounds.clone();
    sorted.sort();
    assert_eq!(
        rounds, sorted,
        "one connection: arrival order is send order"
    );
    assert!(n1.transport.stats().dials_accepted >= 2);
}

#[tokio::test]
async fn a_peer_dialing_in_cuts_the_backoff_to_it_short() {
    let mut cluster = Cluster::bind(&[1, 2]);
    // Node 2 is down: nothing listens on its port.
    drop(cluster.listeners.remove(&2));
    let mut n1_config = cluster.config("alpha", 1);
    // A backoff far beyond the test's deadline: only node 2 dialing in can end it in time.
    n1_config.reconnect_backoff_ms_min = 600_000;
    n1_config.reconnect_backoff_ms_max = 600_000;
    let n1 = cluster.start(n1_config);
    wait_for_stats(&n1, |stats| stats.dials_failed >= 2).await; // both lanes back off
    n1.transport.send(message(1, 2, 7));

    // Node 2 starts and dials node 1, which redials it at once and delivers what waited.
    let n2_config = cluster.config("alpha", 2);
    let mut n2 = Node::start_with(|inbound| TcpTransport::start(n2_config, inbound));
    assert_eq!(n2.recv_rounds(1).await, vec![(1, 7)]);
}

#[tokio::test]
async fn invalid_configs_are_refused_at_start() {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = TcpTransportConfig::new("alpha", NodeId(1), listen, BTreeMap::new());
    config.peer_queue_capacity = 0;
    let (inbound, _received) = mpsc::channel(1);
    let error = TcpTransport::start(config, inbound).err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
