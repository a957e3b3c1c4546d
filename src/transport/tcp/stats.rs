//! The TCP transport's counters: what it sent, received, dropped and refused, and why.
//!
//! Every drop and every refusal is counted here whether or not it was logged (logging is rate
//! limited), so the totals are what a metrics endpoint or a test should read.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! transport_counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of the transport's counters since it started.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct TcpTransportStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live counters, shared by the transport's tasks.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> TcpTransportStats {
                TcpTransportStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

transport_counters! {
    /// Messages written to a peer's connection and flushed.
    messages_sent,
    /// Messages dropped from a full per-peer queue (the oldest queued one goes).
    messages_dropped_queue_full,
    /// Messages dropped because they encode to more than `frame_bytes_max`.
    messages_dropped_oversized,
    /// Messages dropped at `send` because `to` is not a configured peer or `from` is not this
    /// node, or because the transport was shut down.
    messages_dropped_unroutable,
    /// Messages received and handed to the inbound channel.
    messages_received,
    /// Messages received but dropped because the inbound channel was full or closed.
    messages_dropped_inbound_full,
    /// Outbound connections that completed the handshake.
    dials_accepted,
    /// Outbound attempts that failed: connect error, timeout, or a broken handshake.
    dials_failed,
    /// Outbound handshakes the peer refused (a `HelloReply::Rejected`).
    dials_rejected_by_peer,
    /// Inbound connections whose handshake this node accepted.
    handshakes_accepted,
    /// Inbound connections refused at the handshake: wrong cluster, unknown or own node id,
    /// wrong addressee, other protocol version, malformed or late hello, or too many
    /// connections.
    handshakes_refused,
    /// Inbound connections closed for a frame that did not decode or whose `from`/`to` did
    /// not match the handshake.
    connections_closed_bad_frame,
    /// Inbound connections closed for a frame longer than `frame_bytes_max`.
    connections_closed_oversized_frame,
}
