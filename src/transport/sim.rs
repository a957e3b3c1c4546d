//! The simulator's in-process network: owns which nodes are up (and which incarnation of
//! each), which links are cut, the fault settings, and the one RNG that decides every drop,
//! duplicate and delay.
//!
//! It is built to replay exactly from a seed on a tokio current-thread runtime with paused
//! time: every random choice comes from one `SmallRng` seeded by the caller and drawn in the
//! order messages are sent; node and link sets are `BTreeMap`/`BTreeSet`, so nothing depends
//! on hash order; a delayed message is a task that sleeps on tokio's clock, so paused time
//! jumps straight to the next delivery. Given the same seed and the same sends, the same
//! messages arrive at the same virtual instants in the same order.
//!
//! The faults are those Raft must survive (Raft §5.1: messages may be lost, delayed,
//! duplicated and reordered), plus partitions and crashed nodes. Unlike the TCP transport,
//! a node sending in another node's name is a bug the simulator stops on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc::error::TrySendError;

use super::{InboundSender, PeerNetwork};
use crate::raft::message::PeerMessage;
use crate::types::NodeId;

/// The probabilistic faults applied to every message. They can be changed while the
/// simulation runs ([`SimNetwork::set_faults`]); messages already in flight keep theirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimFaults {
    /// Each message (and each duplicate) is delayed by a uniformly random whole number of
    /// milliseconds in `delay_ms_min..=delay_ms_max`; different delays reorder messages.
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    /// Chance in 1000 that a message is lost.
    pub drop_per_mille: u32,
    /// Chance in 1000 that a message that was not lost arrives twice.
    pub duplicate_per_mille: u32,
}

impl SimFaults {
    /// Immediate, reliable delivery.
    pub const NONE: SimFaults = SimFaults {
        delay_ms_min: 0,
        delay_ms_max: 0,
        drop_per_mille: 0,
        duplicate_per_mille: 0,
    };

    fn assert_valid(&self) {
        assert!(
            self.delay_ms_min <= self.delay_ms_max,
            "delay_ms_min > delay_ms_max in {self:?}"
        );
        assert!(
            self.drop_per_mille <= 1000 && self.duplicate_per_mille <= 1000,
            "a per-mille chance above 1000 in {self:?}"
        );
    }
}

/// Which life of a node a registration is. A restarted node is a new incarnation, and a
/// message addressed while an earlier one was registered is never delivered to it: a real
/// restarted process cannot receive packets sent to the connections of its predecessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation(pub u64);

/// What happened to the messages sent so far. Each sent message and each duplicate ends in
/// exactly one of `delivered` or a `dropped_*` count, or is still in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls to `send`.
    pub sent: u64,
    /// Extra copies made by the duplicate fault.
    pub duplicated: u64,
    /// Copies handed to the addressee's inbound channel.
    pub delivered: u64,
    /// Lost to the drop fault.
    pub dropped_by_fault: u64,
    /// Lost to a cut link, at send time or (if the cut came while in flight) at delivery.
    pub dropped_by_cut: u64,
    /// Lost because the sender or the addressee was not registered, or the addressee
    /// restarted while the message was in flight.
    pub dropped_unreachable: u64,
    /// Lost because the addressee's inbound channel was full.
    pub dropped_inbound_full: u64,
}

impl SimStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_by_fault
            + self.dropped_by_cut
            + self.dropped_unreachable
            + self.dropped_inbound_full
    }

    /// Copies sent but neither delivered nor dropped yet.
    pub fn in_flight(&self) -> u64 {
        let settled = self.delivered + self.dropped();
        let made = self.sent + self.duplicated;
        assert!(settled <= made, "more messages settled than made: {self:?}");
        made - settled
    }
}

/// The in-process network. Cloning it gives another handle to the same network.
#[derive(Clone)]
pub struct SimNetwork {
    state: Arc<Mutex<SimState>>,
}

struct SimState {
    rng: SmallRng,
    faults: SimFaults,
    nodes: BTreeMap<NodeId, Registration>,
    /// The latest incarnation issued per node, kept across unregistering.
    incarnations: BTreeMap<NodeId, Incarnation>,
    /// Directed links `(from, to)` that lose everything.
    cut_links: BTreeSet<(NodeId, NodeId)>,
    /// Nodes cut from everyone, including nodes registered after the cut.
    isolated: BTreeSet<NodeId>,
    stats: SimStats,
}

struct Registration {
    incarnation: Incarnation,
    inbound: InboundSender,
}

/// One copy of a message on its way.
struct Delivery {
    delay: Duration,
    incarnation: Incarnation,
    message: PeerMessage,
}

impl SimNetwork {
    pub fn new(seed: u64, faults: SimFaults) -> SimNetwork {
        faults.assert_valid();
        let state = SimState {
            rng: SmallRng::seed_from_u64(seed),
            faults,
            nodes: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            cut_links: BTreeSet::new(),
            isolated: BTreeSet::new(),
            stats: SimStats::default(),
        };
        SimNetwork {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub fn set_faults(&self, faults: SimFaults) {
        faults.assert_valid();
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> SimFaults {
        self.lock().faults
    }

    /// Connects a (re)started node: from now on messages to `node` go to `inbound`. Each call
    /// starts a new incarnation, replacing any current registration.
    pub fn register(&self, node: NodeId, inbound: InboundSender) -> Incarnation {
        let mut state = self.lock();
        let incarnation = match state.incarnations.get(&node) {
            Some(previous) => Incarnation(previous.0 + 1),
            None => Incarnation(1),
        };
        state.incarnations.insert(node, incarnation);
        let registration = Registration {
            incarnation,
            inbound,
        };
        state.nodes.insert(node, registration);
        incarnation
    }

    /// Disconnects a crashed node: messages to or from it vanish, including those already in
    /// flight to it. Does nothing if it is not registered.
    pub fn unregister(&self, node: NodeId) {
        self.lock().nodes.remove(&node);
    }

    /// The sender a node's actors use. It may be created before the node registers; a node
    /// that is not registered when it sends (crashed) has its messages dropped.
    pub fn handle(&self, node: NodeId) -> Arc<dyn PeerNetwork> {
        Arc::new(SimPeerNetwork {
            network: self.clone(),
            node,
            incarnation: None,
        })
    }

    /// The sender of one incarnation of `node`: once the node restarts as a newer
    /// incarnation, whatever the old one still sends is dropped, as a crashed process sends
    /// nothing — even if some of its tasks have not noticed yet.
    pub fn handle_for(&self, node: NodeId, incarnation: Incarnation) -> Arc<dyn PeerNetwork> {
        Arc::new(SimPeerNetwork {
            network: self.clone(),
            node,
            incarnation: Some(incarnation),
        })
    }

    /// Cuts every link between nodes of different groups, both ways. Links within a group,
    /// and of nodes in no group, are untouched; earlier cuts stay until [`SimNetwork::heal`].
    pub fn partition(&self, groups: &[Vec<NodeId>]) {
        let mut seen = BTreeSet::new();
        for node in groups.iter().flatten() {
            assert!(seen.insert(*node), "{node} is in two partition groups");
        }
        let mut state = self.lock();
        for (i, group) in groups.iter().enumerate() {
            for (_, other) in groups.iter().enumerate().filter(|&(j, _)| j != i) {
                for &from in group {
                    state.cut_links.extend(other.iter().map(|&to| (from, to)));
                }
            }
        }
    }

    /// Cuts the link from `from` to `to` only: `to` stops hearing `from`, not the reverse.
    pub fn cut_one_way(&self, from: NodeId, to: NodeId) {
        self.lock().cut_links.insert((from, to));
    }

    /// Cuts `node` off from every other node, both ways.
    pub fn isolate(&self, node: NodeId) {
        self.lock().isolated.insert(node);
    }

    /// Restores every link; the probabilistic faults stay as they are.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut_links.clear();
        state.isolated.clear();
    }

    /// Whether a message from `from` to `to` would pass the cuts right now.
    pub fn is_link_up(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().is_link_up(from, to)
    }

    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("sim network lock poisoned")
    }

    fn send_from(&self, sender: NodeId, incarnation: Option<Incarnation>, message: PeerMessage) {
        assert_eq!(
            message.from, sender,
            "a node sent a message in another node's name"
        );
        let mut state = self.lock();
        let current = state.nodes.get(&sender).map(|r| r.incarnation);
        if incarnation.is_some_and(|mine| current != Some(mine)) {
            state.stats.sent += 1;
            state.stats.dropped_unreachable += 1;
            return; // from an incarnation that has crashed
        }
        let deliveries = state.route(message);
        drop(state);
        for delivery in deliveries {
            let network = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delivery.delay).await;
                network.lock().deliver(delivery);
            });
        }
    }
}

impl SimState {
    fn is_link_up(&self, from: NodeId, to: NodeId) -> bool {
        from == to
            || !(self.cut_links.contains(&(from, to))
                || self.isolated.contains(&from)
                || self.isolated.contains(&to))
    }

    /// Decides the fate of a sent message: no copy, or one or two copies with their delays.
    fn route(&mut self, message: PeerMessage) -> Vec<Delivery> {
        self.stats.sent += 1;
        let (from, to) = (message.from, message.to);
        let addressee = self.nodes.get(&to).map(|r| r.incarnation);
        let Some(incarnation) = addressee.filter(|_| self.nodes.contains_key(&from)) else {
            self.stats.dropped_unreachable += 1;
            tracing::trace!(%from, %to, "sim: sender or addressee down, dropped");
            return Vec::new();
        };
        if !self.is_link_up(from, to) {
            self.stats.dropped_by_cut += 1;
            tracing::trace!(%from, %to, "sim: link cut, dropped");
            return Vec::new();
        }
        if self.roll(self.faults.drop_per_mille) {
            self.stats.dropped_by_fault += 1;
            tracing::trace!(%from, %to, "sim: dropped by fault");
            return Vec::new();
        }
        let duplicate = self.roll(self.faults.duplicate_per_mille);
        let mut deliveries = Vec::with_capacity(2);
        if duplicate {
            self.stats.duplicated += 1;
            deliveries.push(Delivery {
                delay: self.pick_delay(),
                incarnation,
                message: message.clone(),
            });
        }
        deliveries.push(Delivery {
            delay: self.pick_delay(),
            incarnation,
            message,
        });
        deliveries
    }

    fn deliver(&mut self, delivery: Delivery) {
        let (from, to) = (delivery.message.from, delivery.message.to);
        if !self.is_link_up(from, to) {
            self.stats.dropped_by_cut += 1;
            tracing::trace!(%from, %to, "sim: link cut while in flight, dropped");
            return;
        }
        let registration = self.nodes.get(&to);
        let current = registration.filter(|r| r.incarnation == delivery.incarnation);
        let Some(registration) = current else {
            self.stats.dropped_unreachable += 1;
            tracing::trace!(%from, %to, "sim: addressee crashed or restarted, dropped");
            return;
        };
        match registration.inbound.try_send(delivery.message) {
            Ok(()) => self.stats.delivered += 1,
            Err(TrySendError::Full(_)) => self.stats.dropped_inbound_full += 1,
            Err(TrySendError::Closed(_)) => self.stats.dropped_unreachable += 1,
        }
    }

    /// True with probability `per_mille` / 1000. Always draws, so that the random stream
    /// does not depend on the fault settings' values.
    fn roll(&mut self, per_mille: u32) -> bool {
        self.rng.gen_range(0..1000) < per_mille
    }

    fn pick_delay(&mut self) -> Duration {
        let (min, max) = (self.faults.delay_ms_min, self.faults.delay_ms_max);
        Duration::from_millis(self.rng.gen_range(min..=max))
    }
}

/// The per-node sender handed out by [`SimNetwork::handle`].
struct SimPeerNetwork {
    network: SimNetwork,
    node: NodeId,
    /// When set, only this incarnation of the node may send through this handle.
    incarnation: Option<Incarnation>,
}

impl PeerNetwork for SimPeerNetwork {
    fn send(&self, message: PeerMessage) {
        self.network.send_from(self.node, self.incarnation, message);
    }
}

#[cfg(test)]
mod tests;
