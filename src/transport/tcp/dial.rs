//! The outbound side for one peer: dial, handshake, then drain the peer's queue onto the
//! connection in batches; on any failure, back off and dial again, for as long as the
//! transport runs. The backoff ends early when the peer dials us: it is up again.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::queue::PeerQueue;
use super::stats::Counters;
use super::TcpTransportConfig;
use crate::raft::message::PeerMessage;
use crate::transport::count_and_should_log;
use crate::transport::frame::{
    self, Hello, HelloReply, Lane, HANDSHAKE_FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use crate::types::NodeId;

/// Messages written before one flush. Large enough that a burst of AppendEntries costs one
/// syscall per batch rather than per message; small enough that the batch in hand, lost if
/// the connection fails, stays a small part of the queue.
const WRITE_BATCH_MESSAGES_MAX: usize = 256;

/// Messages are framed straight into the connection's write buffer (`frame::encode_into`);
/// past this many buffered bytes it is written out before the next, so a batch of large
/// AppendEntries streams instead of piling up in memory.
const WRITE_BUFFER_FLUSH_BYTES: usize = 256 * 1024;

type Connection = Framed<TcpStream, LengthDelimitedCodec>;

pub(super) struct Dialer {
    config: Arc<TcpTransportConfig>,
    peer: NodeId,
    lane: Lane,
    peer_addr: SocketAddr,
    queue: Arc<PeerQueue>,
    counters: Arc<Counters>,
    backoff: Backoff,
    /// Consecutive failed dials, for rate-limited logging: a peer down for an hour is worth
    /// a warning at the 1st, 2nd, 4th, ... attempt, not at every one.
    failures_in_a_row: u64,
    /// Notified when the peer dials us (it restarted, or its network healed). A permit
    /// left while connected only makes one later redial immediate.
    peer_dialed_in: Arc<Notify>,
}

impl Dialer {
    pub(super) fn new(
        config: Arc<TcpTransportConfig>,
        peer: NodeId,
        lane: Lane,
        peer_addr: SocketAddr,
        queue: Arc<PeerQueue>,
        counters: Arc<Counters>,
        peer_dialed_in: Arc<Notify>,
    ) -> Dialer {
        let backoff = Backoff::new(
            Duration::from_millis(config.reconnect_backoff_ms_min),
            Duration::from_millis(config.reconnect_backoff_ms_max),
        );
        Dialer {
            config,
            lane,
            peer,
            peer_addr,
            queue,
            counters,
            backoff,
            failures_in_a_row: 0,
            peer_dialed_in,
        }
    }

    /// Runs until the task is aborted.
    pub(super) async fn run(mut self) {
        loop {
            match self.connect().await {
                Ok(connection) => {
                    self.counters.dials_accepted.fetch_add(1, Ordering::Relaxed);
                    self.backoff.reset();
                    self.failures_in_a_row = 0;
                    tracing::debug!(node = %self.config.node_id, peer = %self.peer, "connected");
                    let why = self.write_until_closed(connection).await;
                    tracing::debug!(
                        node = %self.config.node_id, peer = %self.peer, why, "connection closed"
                    );
                }
                Err(failure) => self.on_dial_failed(failure),
            }
            self.back_off().await;
        }
    }

    /// Waits out the backoff, or less if the peer dials in meanwhile: it is reachable now,
    /// and a leader's heartbeats held back for a whole backoff would cost an election.
    async fn back_off(&mut self) {
        let delay = self.backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.peer_dialed_in.notified() => self.backoff.reset(),
        }
    }

    fn on_dial_failed(&mut self, failure: DialFailure) {
        let counter = match failure {
            DialFailure::Rejected(_) => &self.counters.dials_rejected_by_peer,
            DialFailure::Failed(_) => &self.counters.dials_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.failures_in_a_row += 1;
        let (node, peer, addr) = (self.config.node_id, self.peer, self.peer_addr);
        let attempts = self.failures_in_a_row;
        if !attempts.is_power_of_two() {
            tracing::debug!(%node, %peer, %addr, attempts, %failure, "dial failed");
        } else if let DialFailure::Rejected(reason) = &failure {
            tracing::warn!(%node, %peer, %addr, attempts, reason, "peer refused our handshake");
        } else {
            tracing::warn!(%node, %peer, %addr, attempts, %failure, "cannot reach peer");
        }
    }

    /// Connects and completes the handshake within the handshake timeout.
    async fn connect(&self) -> Result<Connection, DialFailure> {
        match tokio::time::timeout(self.config.handshake_timeout(), self.connect_untimed()).await {
            Ok(result) => result,
            Err(_) => Err(DialFailure::Failed("connect or handshake timed out".into())),
        }
    }

    async fn connect_untimed(&self) -> Result<Connection, DialFailure> {
        let failed = |what: &str, error: &dyn std::fmt::Display| {
            DialFailure::Failed(format!("{what}: {error}"))
        };
        let stream = TcpStream::connect(self.peer_addr)
            .await
            .map_err(|e| failed("connect", &e))?;
        // Raft's messages are small and latency-bound; batching is done above, per flush.
        stream
            .set_nodelay(true)
            .map_err(|e| failed("set TCP_NODELAY", &e))?;
        let mut connection = Framed::new(stream, frame::codec(HANDSHAKE_FRAME_BYTES_MAX));
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: self.config.cluster_id.clone(),
            from: self.config.node_id,
            to: self.peer,
            lane: self.lane,
        };
        let hello = frame::encode(&hello, HANDSHAKE_FRAME_BYTES_MAX)
            .map_err(|e| failed("encode hello (cluster id too long?)", &e))?;
        connection
            .send(hello)
            .await
            .map_err(|e| failed("send hello", &e))?;
        let reply = match connection.next().await {
            None => {
                return Err(DialFailure::Failed(
                    "closed before replying to hello".into(),
                ))
            }
            Some(Err(e)) => return Err(failed("read hello reply", &e)),
            Some(Ok(bytes)) => {
                frame::decode::<HelloReply>(&bytes).map_err(|e| failed("hello reply", &e))?
            }
        };
        match reply {
            HelloReply::Accepted => {
                let frame_bytes_max = self.config.frame_bytes_max;
                connection.codec_mut().set_max_frame_length(frame_bytes_max);
                Ok(connection)
            }
            HelloReply::Rejected { reason } => Err(DialFailure::Rejected(reason)),
        }
    }

    /// Drains the queue onto `connection` until the connection fails; returns why it ended.
    ///
    /// While idle it also watches the read side: the acceptor never sends after its reply,
    /// so anything readable is the peer closing (or misbehaving), and noticing it there means
    /// the next message is not written into a dead socket.
    async fn write_until_closed(&self, mut connection: Connection) -> String {
        let mut batch = Vec::with_capacity(WRITE_BATCH_MESSAGES_MAX);
        let write_timeout = Duration::from_millis(self.config.write_timeout_ms);
        loop {
            self.queue.take_batch(&mut batch, WRITE_BATCH_MESSAGES_MAX);
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    read = connection.next() => return match read {
                        None => "closed by peer".into(),
                        Some(Ok(_)) => "peer sent a frame on a one-way connection".into(),
                        Some(Err(e)) => format!("read failed: {e}"),
                    },
                    () = self.queue.wait_for_push() => continue,
                }
            }
            let written =
                tokio::time::timeout(write_timeout, self.write_batch(&mut connection, &mut batch));
            match written.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return format!("write failed: {e}"),
                Err(_) => return format!("a batch write took over {write_timeout:?}"),
            }
        }
    }

    /// Writes every message of `batch` (emptying it) and flushes once.
    async fn write_batch(
        &self,
        connection: &mut Connection,
        batch: &mut Vec<PeerMessage>,
    ) -> std::io::Result<()> {
        let mut written_count = 0;
        for message in batch.drain(..) {
            if connection.write_buffer().len() >= WRITE_BUFFER_FLUSH_BYTES {
                SinkExt::<Bytes>::flush(connection).await?;
            }
            match frame::encode_into(
                &message,
                self.config.frame_bytes_max,
                connection.write_buffer_mut(),
            ) {
                Ok(()) => written_count += 1,
                Err(error) => {
                    if count_and_should_log(&self.counters.messages_dropped_oversized) {
                        tracing::warn!(
                            node = %self.config.node_id, peer = %self.peer,
                            kind = message.body.name(), %error, "dropping a message"
                        );
                    }
                }
            }
        }
        SinkExt::<Bytes>::flush(connection).await?;
        self.counters
            .messages_sent
            .fetch_add(written_count, Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum DialFailure {
    #[error("refused: {0}")]
    Rejected(String),
    #[error("{0}")]
    Failed(String),
}

/// Exponential backoff with jitter. The jitter keeps the nodes of a cluster that lost a peer
/// at the same moment from redialing it in lockstep.
struct Backoff {
    delay_min: Duration,
    delay_max: Duration,
    /// The upper end of the next delay; doubles after each use, up to `delay_max`.
    ceiling: Duration,
    rng: SmallRng,
}

impl Backoff {
    fn new(delay_min: Duration, delay_max: Duration) -> Backoff {
        assert!(delay_min > Duration::ZERO && delay_min <= delay_max);
        Backoff {
            delay_min,
            delay_max,
            ceiling: delay_min,
            rng: SmallRng::from_entropy(),
        }
    }

    fn reset(&mut self) {
        self.ceiling = self.delay_min;
    }

    /// A delay in `[max(ceiling / 2, min), ceiling]`, then doubles the ceiling.
    fn next_delay(&mut self) -> Duration {
        let low = (self.ceiling / 2).max(self.delay_min);
        let delay = self.rng.gen_range(low..=self.ceiling);
        self.ceiling = (self.ceiling * 2).min(self.delay_max);
        assert!(self.delay_min <= delay && delay <= self.delay_max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_max_with_jitter_and_resets() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(10), ms(100));
        assert_eq!(backoff.next_delay(), ms(10));
        let ceilings = [20, 40, 80, 100, 100, 100];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            assert!(
                ms(ceiling / 2) <= delay && delay <= ms(ceiling),
                "{delay:?}"
            );
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(10));
    }
}
