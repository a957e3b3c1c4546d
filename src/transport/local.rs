//! A direct in-process network: each message goes straight into the addressee's inbound
//! channel with `try_send`, with no serialisation, no timers, no faults and no tasks of its
//! own. It is what the core benchmark (`examples/core_bench.rs`) runs on, so that what it
//! measures is the node's own cost, as openraft's `benchmarks/minimal` measures openraft's.
//!
//! The simulator's network ([`super::sim`]) is the one for testing behaviour under faults: it
//! spawns a timer task per message, which is what makes it replayable and also what makes it
//! too slow to measure throughput on. This one keeps only the transport contract: it never
//! blocks and never fails loudly; a full or closed inbound channel, or an unknown addressee,
//! drops the message and counts it (Raft §5.1 tolerates the loss).
//!
//! The routes are fixed when the network is built, so a send takes no lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::error::TrySendError;

use super::{count_and_should_log, InboundSender, PeerNetwork};
use crate::raft::message::PeerMessage;
use crate::types::NodeId;

/// What happened to the messages sent so far. Every send ends in exactly one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalStats {
    /// Handed to the addressee's inbound channel.
    pub delivered: u64,
    /// Lost because the addressee's inbound channel was full.
    pub dropped_inbound_full: u64,
    /// Lost because the addressee is not part of the network or its receiver is gone.
    pub dropped_unreachable: u64,
}

impl LocalStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_inbound_full + self.dropped_unreachable
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped_inbound_full: AtomicU64,
    dropped_unreachable: AtomicU64,
}

struct Routes {
    inbound: BTreeMap<NodeId, InboundSender>,
    counters: Counters,
}

/// The in-process network of one cluster. Cloning it gives another handle to the same network.
#[derive(Clone)]
pub struct LocalNetwork {
    routes: Arc<Routes>,
}

impl LocalNetwork {
    /// A network delivering to `inbound[node]` whatever is addressed to `node`.
    pub fn new(inbound: BTreeMap<NodeId, InboundSender>) -> Self {
        let routes = Routes {
            inbound,
            counters: Counters::default(),
        };
        Self {
            routes: Arc::new(routes),
        }
    }

    /// The sender `node`'s actors use. Sending in another node's name through it is a bug,
    /// and stops the sender.
    pub fn handle(&self, node: NodeId) -> Arc<dyn PeerNetwork> {
        Arc::new(LocalPeerNetwork {
            routes: self.routes.clone(),
            node,
        })
    }

    pub fn stats(&self) -> LocalStats {
        let counters = &self.routes.counters;
        LocalStats {
            delivered: counters.delivered.load(Ordering::Relaxed),
            dropped_inbound_full: counters.dropped_inbound_full.load(Ordering::Relaxed),
            dropped_unreachable: counters.dropped_unreachable.load(Ordering::Relaxed),
        }
    }
}

/// The per-node sender handed out by [`LocalNetwork::handle`].
struct LocalPeerNetwork {
    routes: Arc<Routes>,
    node: NodeId,
}

impl PeerNetwork for LocalPeerNetwork {
    fn send(&self, message: PeerMessage) {
        assert_eq!(
            message.from, self.node,
            "a node sent a message in another node's name"
        );
        let counters = &self.routes.counters;
        let (from, to) = (message.from, message.to);
        let Some(inbound) = self.routes.inbound.get(&to) else {
            if count_and_should_log(&counters.dropped_unreachable) {
                tracing::warn!(%from, %to, "local network: unknown addressee, dropped");
            }
            return;
        };
        match inbound.try_send(message) {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                if count_and_should_log(&counters.dropped_inbound_full) {
                    tracing::debug!(%from, %to, "local network: inbound channel full, dropped");
                }
            }
            Err(TrySendError::Closed(_)) => {
                if count_and_should_log(&counters.dropped_unreachable) {
                    tracing::debug!(%from, %to, "local network: addressee stopped, dropped");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::raft::message::{HeartbeatResponse, MessageBody};
    use crate::types::Term;

    fn message(from: u64, to: u64, term: u64) -> PeerMessage {
        PeerMessage {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(term),
            body: MessageBody::HeartbeatResponse(HeartbeatResponse { round: term }),
        }
    }

    fn network(capacity: usize) -> (LocalNetwork, BTreeMap<NodeId, mpsc::Receiver<PeerMessage>>) {
        let mut senders = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for id in 1..=3 {
            let (tx, rx) = mpsc::channel(capacity);
            senders.insert(NodeId(id), tx);
            receivers.insert(NodeId(id), rx);
        }
        (LocalNetwork::new(senders), receivers)
    }

    #[test]
    fn delivers_to_the_addressee_only_and_in_order() {
        let (network, mut inbound) = network(8);
        let from_one = network.handle(NodeId(1));
        from_one.send(message(1, 2, 7));
        from_one.send(message(1, 2, 8));
        from_one.send(message(1, 3, 9));
        let two = inbound.get_mut(&NodeId(2)).unwrap();
        assert_eq!(two.try_recv().unwrap(), message(1, 2, 7));
        assert_eq!(two.try_recv().unwrap(), message(1, 2, 8));
        assert!(two.try_recv().is_err());
        let three = inbound.get_mut(&NodeId(3)).unwrap();
        assert_eq!(three.try_recv().unwrap(), message(1, 3, 9));
        assert!(inbound.get_mut(&NodeId(1)).unwrap().try_recv().is_err());
        assert_eq!(
            network.stats(),
            LocalStats {
                delivered: 3,
                ..LocalStats::default()
            }
        );
    }

    #[test]
    fn a_full_channel_drops_and_counts_without_blocking() {
        let (network, mut inbound) = network(2);
        let from_two = network.handle(NodeId(2));
        for term in 0..5 {
            from_two.send(message(2, 1, term));
        }
        let stats = network.stats();
        assert_eq!((stats.delivered, stats.dropped_inbound_full), (2, 3));
        let one = inbound.get_mut(&NodeId(1)).unwrap();
        assert_eq!(one.try_recv().unwrap(), message(2, 1, 0));
        assert_eq!(one.try_recv().unwrap(), message(2, 1, 1));
        // Room again: delivery resumes.
        from_two.send(message(2, 1, 9));
        assert_eq!(one.try_recv().unwrap(), message(2, 1, 9));
    }

    #[test]
    fn unknown_or_stopped_addressees_are_dropped_and_counted() {
        let (network, mut inbound) = network(8);
        let from_one = network.handle(NodeId(1));
        from_one.send(message(1, 4, 1));
        drop(inbound.remove(&NodeId(3)));
        from_one.send(message(1, 3, 1));
        let stats = network.stats();
        assert_eq!(stats.dropped_unreachable, 2);
        assert_eq!(stats.dropped(), 2);
        assert_eq!(stats.delivered, 0);
    }

    #[test]
    #[should_panic(expected = "another node's name")]
    fn sending_in_another_nodes_name_is_a_bug() {
        let (network, _inbound) = network(8);
        network.handle(NodeId(1)).send(message(2, 3, 1));
    }

    #[tokio::test]
    async fn wakes_a_receiver_waiting_on_another_thread() {
        let (network, mut inbound) = network(8);
        let mut two = inbound.remove(&NodeId(2)).unwrap();
        let receiver = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(two.recv())
        });
        std::thread::sleep(std::time::Duration::from_millis(10));
        network.handle(NodeId(1)).send(message(1, 2, 3));
        assert_eq!(receiver.join().unwrap(), Some(message(1, 2, 3)));
    }
}
