//! A small TCP fault proxy for the peer links, for what nftables cannot do here (the kernel
//! has no netem): latency with jitter, connection resets that make an old connection's
//! late bytes arrive after a new connection's (reordering across connections, as real
//! half-open connections do), and — in the loopback fallback, without root — blocked links
//! standing in for nft cuts.
//!
//! One proxy listener per directed link `from → to`: node `from` is configured to reach
//! `to` at the listener's address, and the proxy dials `to`'s real peer address. In the
//! namespace mode the listener lives in `to`'s namespace on `to`'s address, so packets on
//! the wire still go from `from`'s address to `to`'s and the nft rules keep working.
//!
//! Within one connection bytes stay in order (TCP's promise; the Raft transport relies on
//! it): each chunk read is held until `read time + delay`, and never released before the
//! chunk ahead of it. A blocked link stops reading and stops writing, as a network that
//! drops every packet would (TCP retransmits once it heals); new connections wait before
//! dialing. All proxies of a cluster run on one thread with its own runtime.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::netns::NetNs;

/// How often a stalled direction looks again whether its link healed.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Bytes read at once; one chunk is delayed as a unit.
const CHUNK_BYTES_MAX: usize = 16 * 1024;
/// Chunks held per direction before the reader waits (backpressure, as a full window).
const CHUNKS_IN_FLIGHT_MAX: usize = 1024;

/// The faults of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Nothing passes, in either direction of its connections.
    pub blocked: bool,
    /// Each chunk is delayed by a uniform draw from this range, in milliseconds.
    pub delay_ms: (u64, u64),
}

#[derive(Debug, Default)]
struct LinkState {
    faults: LinkFaults,
    /// Bumped to reset every connection of the link.
    epoch: u64,
}

/// The shared control of one link, read by its connections' tasks.
#[derive(Clone, Debug, Default)]
pub struct LinkControl(Arc<Mutex<LinkState>>);

impl LinkControl {
    fn with<T>(&self, f: impl FnOnce(&mut LinkState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set_blocked(&self, blocked: bool) {
        self.with(|s| s.faults.blocked = blocked);
    }

    pub fn set_delay_ms(&self, min: u64, max: u64) {
        assert!(min <= max);
        self.with(|s| s.faults.delay_ms = (min, max));
    }

    /// Closes every connection of the link; bytes already read still arrive, late.
    pub fn reset_connections(&self) {
        self.with(|s| s.epoch += 1);
    }

    pub fn faults(&self) -> LinkFaults {
        self.with(|s| s.faults)
    }

    fn blocked(&self) -> bool {
        self.with(|s| s.faults.blocked)
    }

    fn epoch(&self) -> u64 {
        self.with(|s| s.epoch)
    }
}

/// One directed link to proxy.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    pub from: u64,
    pub to: u64,
    /// Where `from` dials, in `listen_ns`.
    pub listen: SocketAddr,
    pub listen_ns: Arc<NetNs>,
    /// `to`'s real peer address, dialed in `upstream_ns`.
    pub upstream: SocketAddr,
    pub upstream_ns: Arc<NetNs>,
}

/// Every proxied link of a cluster, served on one thread until [`ProxyMesh::stop`] or drop.
#[derive(Debug)]
pub struct ProxyMesh {
    links: BTreeMap<(u64, u64), (LinkSpec, LinkControl)>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ProxyMesh {
    /// Binds every link's listener and starts serving; fails if any cannot bind.
    pub fn start(specs: Vec<LinkSpec>, seed: u64) -> io::Result<Arc<ProxyMesh>> {
        let links: BTreeMap<(u64, u64), (LinkSpec, LinkControl)> = specs
            .into_iter()
            .map(|spec| ((spec.from, spec.to), (spec, LinkControl::default())))
            .collect();
        let served: Vec<(LinkSpec, LinkControl)> = links.values().cloned().collect();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || serve_all(served, seed, ready_tx, shutdown_rx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => return Err(io::Error::other("the proxy thread died while binding")),
        }
        Ok(Arc::new(ProxyMesh {
            links,
            shutdown: Mutex::new(Some(shutdown_tx)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The address node `from` dials to reach node `to`.
    pub fn address(&self, from: u64, to: u64) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(|(spec, _)| spec.listen)
    }

    pub fn link(&self, from: u64, to: u64) -> Option<&LinkControl> {
        self.links.get(&(from, to)).map(|(_, control)| control)
    }

    pub fn set_blocked(&self, from: u64, to: u64, blocked: bool) {
        if let Some(link) = self.link(from, to) {
            link.set_blocked(blocked);
        }
    }

    /// Delays every link's chunks by `min..=max` ms.
    pub fn set_delay_all(&self, min: u64, max: u64) {
        for (_, control) in self.links.values() {
            control.set_delay_ms(min, max);
        }
    }

    /// Resets every connection of every link.
    pub fn reset_all(&self) {
        for (_, control) in self.links.values() {
            control.reset_connections();
        }
    }

    /// Removes every fault: no delay, nothing blocked.
    pub fn calm(&self) {
        for (_, control) in self.links.values() {
            control.set_blocked(false);
            control.set_delay_ms(0, 0);
        }
    }

    /// Stops serving and closes every connection.
    pub fn stop(&self) {
        if let Some(tx) = self
            .shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(());
        }
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for ProxyMesh {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_all(
    links: Vec<(LinkSpec, LinkControl)>,
    seed: u64,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
    shutdown: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for (spec, control) in links {
            match bind(&spec) {
                Ok(listener) => listeners.push((listener, spec, control)),
                Err(error) => {
                    let message = format!(
                        "proxy {} -> {} on {}: {error}",
                        spec.from, spec.to, spec.listen
                    );
                    let _ = ready.send(Err(io::Error::new(error.kind(), message)));
                    return;
                }
            }
        }
        let _ = ready.send(Ok(()));
        for (i, (listener, spec, control)) in listeners.into_iter().enumerate() {
            let link_seed = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tokio::spawn(accept_loop(listener, spec, control, link_seed));
        }
        let _ = shutdown.await;
    });
    // Dropping the runtime aborts every task and closes every socket.
}

fn bind(spec: &LinkSpec) -> io::Result<TcpListener> {
    let socket = spec.listen_ns.tcp_socket()?;
    socket.set_reuseaddr(true)?;
    socket.bind(spec.listen)?;
    socket.listen(128)
}

async fn accept_loop(listener: TcpListener, spec: LinkSpec, control: LinkControl, seed: u64) {
    let mut connection = 0u64;
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        };
        connection += 1;
        let spec = spec.clone();
        let control = control.clone();
        let seed = seed.wrapping_add(connection);
        tokio::spawn(async move {
            // A link blocked when the connection arrives is one where the SYN got through
            // but nothing else does: hold it without dialing until the link heals.
            while control.blocked() {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            let epoch = control.epoch();
            let Ok(socket) = spec.upstream_ns.tcp_socket() else {
                return;
            };
            let Ok(upstream) = socket.connect(spec.upstream).await else {
                return; // dropping `inbound` closes it: the dialer sees a reset
            };
            let _ = inbound.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            splice(inbound, upstream, control, epoch, seed).await;
        });
    }
}

/// Pumps both directions until either side closes or the link is reset.
async fn splice(a: TcpStream, b: TcpStream, control: LinkControl, epoch: u64, seed: u64) {
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    tokio::join!(
        pump(a_read, b_write, control.clone(), epoch, seed),
        pump(b_read, a_write, control, epoch, seed ^ 1),
    );
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    control: LinkControl,
    epoch: u64,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(CHUNKS_IN_FLIGHT_MAX);
    let writer_control = control.clone();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            while writer_control.blocked() {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut buf = vec![0u8; CHUNK_BYTES_MAX];
        let mut last_due = Instant::now();
        loop {
            while control.blocked() && control.epoch() == epoch {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            let read = tokio::select! {
                read = from.read(&mut buf) => read,
                () = reset(&control, epoch) => break,
            };
            let count = match read {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            let (min, max) = control.faults().delay_ms;
            let delay = Duration::from_millis(if max > min {
                rng.gen_range(min..=max)
            } else {
                min
            });
            let due = (Instant::now() + delay).max(last_due);
            last_due = due;
            if tx
                .send((due, Bytes::copy_from_slice(&buf[..count])))
                .await
                .is_err()
            {
                break;
            }
        }
        // Dropping `tx` lets the writer deliver what it holds, then close.
    };
    tokio::join!(reader, writer);
}

/// Resolves once the link's epoch moves past `epoch`.
async fn reset(control: &LinkControl, epoch: u64) {
    while control.epoch() == epoch {
        tokio::time::sleep(POLL_INTERVAL * 4).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback; returns its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    fn free_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    fn mesh(upstream: SocketAddr) -> Arc<ProxyMesh> {
        let host = Arc::new(NetNs::host());
        let spec = LinkSpec {
            from: 1,
            to: 2,
            listen: free_port(),
            listen_ns: host.clone(),
            upstream,
            upstream_ns: host,
        };
        ProxyMesh::start(vec![spec], 7).unwrap()
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
        stream.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        back
    }

    #[tokio::test]
    async fn relays_in_order_and_delays_as_configured() {
        let mesh = mesh(echo_server().await);
        let addr = mesh.address(1, 2).unwrap();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");

        mesh.set_delay_all(40, 60);
        let started = std::time::Instant::now();
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut stream, &message).await, message);
        // Each direction delays by at least 40 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(80),
            "{:?}",
            started.elapsed()
        );
        mesh.stop();
    }

    #[tokio::test]
    async fn a_blocked_link_stalls_and_resumes_when_healed() {
        let mesh = mesh(echo_server().await);
        let mut stream = TcpStream::connect(mesh.address(1, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(round_trip(&mut stream, b"a").await, b"a");
        mesh.set_blocked(1, 2, true);
        stream.write_all(b"b").await.unwrap();
        let mut byte = [0u8; 1];
        let stalled =
            tokio::time::timeout(Duration::from_millis(150), stream.read_exact(&mut byte)).await;
        assert!(stalled.is_err(), "nothing passes a blocked link");
        mesh.set_blocked(1, 2, false);
        stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"b");
        mesh.stop();
    }

    #[tokio::test]
    async fn a_reset_closes_the_connection() {
        let mesh = mesh(echo_server().await);
        let mut stream = TcpStream::connect(mesh.address(1, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(round_trip(&mut stream, b"x").await, b"x");
        mesh.reset_all();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the proxy closes a reset connection");
        // New connections work.
        let mut again = TcpStream::connect(mesh.address(1, 2).unwrap())
            .await
            .unwrap();
        assert_eq!(round_trip(&mut again, b"y").await, b"y");
        mesh.stop();
    }
}
