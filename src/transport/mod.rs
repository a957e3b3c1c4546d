//! Peer transport: how a node's Raft messages reach the other members of its cluster.
//!
//! This module owns the [`PeerNetwork`] contract that the node layer codes against, and three
//! implementations of it:
//! - [`tcp`]: real TCP between processes, bincode-encoded messages in length-delimited frames
//!   ([`frame`] is the byte format), a cluster-id/node-id handshake, reconnect with backoff;
//! - [`sim`]: an in-process network for the deterministic simulator, with seeded drops,
//!   delays (and so reordering), duplicates, partitions and crashed nodes;
//! - [`local`]: a direct in-process network without faults or timers, for the core benchmark.
//!
//! Delivery is deliberately best effort. Raft is built for a network that loses, delays,
//! duplicates and reorders messages (Raft §5.1), so a transport never blocks the sender and
//! never reports failure to it: a full queue or an unreachable peer drops the message, counts
//! it, and logs it at a rate that cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::raft::message::PeerMessage;

pub mod frame;
pub mod local;
pub mod sim;
pub mod tcp;

pub use sim::{Incarnation, SimFaults, SimNetwork, SimStats};
pub use tcp::{TcpTransport, TcpTransportConfig, TcpTransportStats};

/// Sends peer messages. Never blocks, never fails loudly: Raft tolerates loss, so a full queue
/// or a down peer drops the message (counted, and logged at a rate-limited debug/warn level).
pub trait PeerNetwork: Send + Sync + 'static {
    fn send(&self, message: PeerMessage);
}

/// Where a transport delivers received messages (bounded; `try_send`, drop + count when full).
pub type InboundSender = tokio::sync::mpsc::Sender<PeerMessage>;

/// Adds one to `counter` and says whether this occurrence should be logged.
///
/// Drops come in storms (a peer down for a minute drops every message to it), so logging each
/// one would bury everything else. Logging the 1st, 2nd, 4th, 8th, ... occurrence keeps the
/// first report prompt and the volume logarithmic, needs no clock (so it behaves the same under
/// the simulator's paused time), and the exact totals stay available in the counters.
pub(crate) fn count_and_should_log(counter: &AtomicU64) -> bool {
    let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
    count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_logging_is_logarithmic() {
        let counter = AtomicU64::new(0);
        let logged: Vec<u64> = (1..=100)
            .filter(|_| count_and_should_log(&counter))
            .collect();
        assert_eq!(logged, vec![1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(counter.load(Ordering::Relaxed), 100);
    }
}
