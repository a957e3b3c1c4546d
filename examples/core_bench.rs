//! The core benchmark: how many writes per second raftlog's consensus core commits and
//! applies when nothing else costs anything. Shaped like openraft's `benchmarks/minimal`, so
//! the two can be compared (BENCHMARKS.md, "Core"):
//!
//! - three real nodes in this one process: the election, WAL, replicator, apply and router
//!   actors and the batcher, with the pure Raft core deciding everything, as in production;
//! - no network: the in-process [`LocalNetwork`] puts each message straight into the
//!   addressee's inbound channel;
//! - the log in memory ([`MemLogStore`]) and durable at once ([`BlockingPool::Inline`]);
//! - the real state machine, fed the smallest write there is: one empty record appended to one
//!   stream, answered with its offset;
//! - `--clients N` tasks, each keeping one write in flight; ops/s = ops ÷ the time until the
//!   last write is applied on the leader and answered. Each write's latency is recorded, for
//!   p50/p99.
//!
//! A write goes through [`NodeHandle::append`] (the proposal batcher, which gathers the
//! writes that arrive together into one log entry, as the HTTP layer does), or, with
//! `--batch B`, through [`NodeHandle::submit`]: one log entry per call carrying B writes, each
//! counted as an op (`--batch 1` is one entry per write, as in openraft's benchmark).
//!
//! ```sh
//! cargo run --release --example core_bench -- --clients 64
//! cargo run --release --example core_bench -- --clients 256 --batch 4 --ops 2000000
//! ```
//!
//! `--threads per-node` runs each node on an arbiter (thread) of its own instead of all of
//! them and the clients on one thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, System};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use tokio::sync::{mpsc, oneshot};

use raftlog::node::clock::Clock;
use raftlog::node::mem_store::{MemDisk, MemHardStateStore, MemLogStore};
use raftlog::node::storage::BlockingPool;
use raftlog::node::{self, NodeConfig, NodeHandle, NodeStorage, NodeWiring};
use raftlog::raft::election::Role;
use raftlog::streams::{AppendCommand, AppendOutcome, CommandBatch, StreamCommand};
use raftlog::transport::local::{LocalNetwork, LocalStats};
use raftlog::types::{NodeId, Term};

/// The allocator the `raftlog` binary uses (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How many peer messages a node's inbound channel holds. The in-flight windows bound what
/// is queued far below this; a drop would show in the printed network counters.
const INBOUND_CAPACITY: usize = 4096;
const NODES: u64 = 3;

#[derive(Parser, Debug)]
#[command(about = "raftlog's core throughput, shaped like openraft's benchmarks/minimal")]
struct Args {
    /// Client tasks, each with one write in flight.
    #[arg(long, default_value_t = 64)]
    clients: u64,
    /// Writes per log entry, each client submitting one entry at a time; without it, every
    /// write is its own append through the proposal batcher.
    #[arg(long)]
    batch: Option<u64>,
    /// Writes in total, shared evenly by the clients (rounded down to a multiple of
    /// clients × batch).
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Where the actors run.
    #[arg(long, value_enum, default_value_t = Threads::One)]
    threads: Threads,
    /// The most appends the proposal batcher puts into one log entry
    /// (`batching.proposal_batch_requests_max`; default as in the config).
    #[arg(long)]
    proposal_batch_max: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Threads {
    /// Every node and every client on one thread.
    One,
    /// Each node on an arbiter of its own; the clients on the main thread.
    PerNode,
}

/// One client's record: each call's latency, and when it finished its last one.
struct ClientRun {
    latencies_us: Vec<u32>,
    finished: Instant,
}

fn main() {
    let args = Args::parse();
    assert!(args.clients > 0, "--clients must be at least 1");
    assert!(args.batch != Some(0), "--batch must be at least 1");
    let system = System::new();
    system.block_on(run(args));
}

async fn run(args: Args) {
    let (network, nodes, arbiters) = start_cluster(args.threads, args.proposal_batch_max).await;
    let leader = wait_for_leader(&nodes).await;
    let term = leader.role().await.expect("the leader runs").term;
    let before = network.stats();

    let per_call = args.batch.unwrap_or(1);
    let calls_per_client = args.ops / (args.clients * per_call);
    assert!(calls_per_client > 0, "--ops is below clients × batch");
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|_| actix::spawn(client(leader.clone(), args.batch, calls_per_client)))
        .collect();
    let mut runs = Vec::with_capacity(clients.len());
    for client in clients {
        runs.push(client.await.expect("a client task panicked"));
    }
    let finished = runs.iter().map(|r| r.finished).max().expect("one client");
    let elapsed = finished - started;

    let after_term = leader.role().await.expect("the leader runs").term;
    let last_log = leader.last_log_id().await.expect("the leader runs");
    report(
        &args,
        calls_per_client * args.clients * per_call,
        elapsed,
        runs,
        subtract(network.stats(), before),
        (term, after_term),
        last_log.index.0,
    );
    for node in &nodes {
        node.stop();
    }
    for arbiter in arbiters {
        arbiter.stop();
    }
    System::current().stop();
}

/// Starts three nodes on the local network; returns them with the arbiters they run on.
async fn start_cluster(
    threads: Threads,
    proposal_batch_max: Option<usize>,
) -> (LocalNetwork, Vec<NodeHandle>, Vec<Arbiter>) {
    let ids: Vec<NodeId> = (1..=NODES).map(NodeId).collect();
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for &id in &ids {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        senders.insert(id, tx);
        receivers.insert(id, rx);
    }
    let network = LocalNetwork::new(senders);
    let mut nodes = Vec::new();
    let mut arbiters = Vec::new();
    for &id in &ids {
        let disk = MemDisk::new_shared();
        let storage = NodeStorage {
            log: Box::new(MemLogStore::open(disk.clone())),
            hard_state: Box::new(MemHardStateStore::open(disk)),
            log_pool: BlockingPool::Inline,
            hard_state_pool: BlockingPool::Inline,
            wal_arbiter: None,
        };
        let wiring = NodeWiring {
            network: network.handle(id),
            inbound: receivers.remove(&id).expect("one receiver per node"),
            clock: Clock::new(),
            observer: None,
            application: None,
            on_fatal: Arc::new(move |message: &str| panic!("node {id}: fatal: {message}")),
        };
        let config = node_config(id, &ids, proposal_batch_max);
        let handle = match threads {
            Threads::One => node::start(config, storage, wiring),
            Threads::PerNode => {
                let arbiter = Arbiter::new();
                let (reply, handle) = oneshot::channel();
                let started = arbiter.spawn(async move {
                    let _ = reply.send(node::start(config, storage, wiring));
                });
                assert!(started, "the node's arbiter runs");
                arbiters.push(arbiter);
                handle.await.expect("the node started")
            }
        };
        nodes.push(handle);
    }
    (network, nodes, arbiters)
}

/// The defaults, with election timeouts long enough that a loaded machine's scheduling delays
/// never look like a dead leader (openraft's benchmark uses 200–2000 ms).
fn node_config(id: NodeId, ids: &[NodeId], proposal_batch_max: Option<usize>) -> NodeConfig {
    let mut config = NodeConfig::new(id, ids.iter().copied().collect());
    if let Some(requests_max) = proposal_batch_max {
        config.batching.requests_max = requests_max;
    }
    config.election_timeout_min = Duration::from_millis(500);
    config.election_timeout_max = Duration::from_millis(1000);
    config.heartbeat_interval = Duration::from_millis(50);
    config
}

/// The node that leads, once its term's no-op is applied (a write then succeeds).
async fn wait_for_leader(nodes: &[NodeHandle]) -> NodeHandle {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no leader within 30 s");
        for node in nodes {
            if node.role().await.is_some_and(|r| r.role == Role::Leader)
                && node.append(command()).await.is_ok()
            {
                return node.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The smallest write: one empty record appended to one stream.
fn command() -> AppendCommand {
    AppendCommand {
        stream: "bench".to_string(),
        records: vec![Bytes::new()],
        producer: None,
        expected_offset: None,
    }
}

/// One client: `calls` writes (or batches of writes) one after another, each checked.
async fn client(leader: NodeHandle, batch: Option<u64>, calls: u64) -> ClientRun {
    let mut latencies_us = Vec::with_capacity(calls as usize);
    // One clock reading per call: each call is sent the moment the previous one returns.
    let mut sent = Instant::now();
    for _ in 0..calls {
        match batch {
            None => {
                let (_, outcome) = leader.append(command()).await.expect("the write succeeds");
                assert!(
                    matches!(outcome, AppendOutcome::Appended { .. }),
                    "{outcome:?}"
                );
            }
            Some(count) => {
                let commands = (0..count)
                    .map(|_| StreamCommand::Append(command()))
                    .collect();
                let applied = leader
                    .submit(CommandBatch { commands })
                    .await
                    .expect("the write succeeds");
                assert_eq!(applied.outcomes.len() as u64, count);
            }
        }
        let answered = Instant::now();
        let micros = (answered - sent).as_micros();
        latencies_us.push(u32::try_from(micros).unwrap_or(u32::MAX));
        sent = answered;
    }
    ClientRun {
        latencies_us,
        finished: sent,
    }
}

fn subtract(after: LocalStats, before: LocalStats) -> LocalStats {
    LocalStats {
        delivered: after.delivered - before.delivered,
        dropped_inbound_full: after.dropped_inbound_full - before.dropped_inbound_full,
        dropped_unreachable: after.dropped_unreachable - before.dropped_unreachable,
    }
}

fn report(
    args: &Args,
    ops: u64,
    elapsed: Duration,
    runs: Vec<ClientRun>,
    network: LocalStats,
    terms: (Term, Term),
    last_index: u64,
) {
    let mut latencies: Vec<u32> = runs.into_iter().flat_map(|r| r.latencies_us).collect();
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let ops_per_sec = ops as f64 / elapsed.as_secs_f64();
    let batch = args.batch.map_or("-".to_string(), |b| b.to_string());
    println!(
        "clients {} batch {batch} threads {:?}: {ops} ops in {:.3} s = {:.0} ops/s; \
         latency p50 {} µs, p99 {} µs",
        args.clients,
        args.threads,
        elapsed.as_secs_f64(),
        ops_per_sec,
        percentile(0.50),
        percentile(0.99),
    );
    println!(
        "  log entries {last_index} ({:.1} ops/entry), peer messages {} ({:.2}/op), dropped {}, \
         term {} -> {}, load {}",
        ops as f64 / last_index as f64,
        network.delivered,
        network.delivered as f64 / ops as f64,
        network.dropped(),
        terms.0,
        terms.1,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    assert_eq!(terms.0, terms.1, "the leader changed during the run");
}
