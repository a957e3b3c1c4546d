//! Tests of the simulated network, all under tokio's paused clock: "waiting" below advances
//! virtual time to the next timer at once, so these run in milliseconds and never race.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::raft::message::{Heartbeat, MessageBody};
use crate::types::{LogIndex, Term};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

/// A heartbeat whose `round` numbers it, so tests can tell messages apart.
fn message(from: NodeId, to: NodeId, round: u64) -> PeerMessage {
    PeerMessage {
        from,
        to,
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

fn faults(delay_ms_min: u64, delay_ms_max: u64, drop: u32, duplicate: u32) -> SimFaults {
    SimFaults {
        delay_ms_min,
        delay_ms_max,
        drop_per_mille: drop,
        duplicate_per_mille: duplicate,
    }
}

/// A network whose nodes all deliver into one channel (`to` says whose inbound it was).
fn network(
    seed: u64,
    faults: SimFaults,
    nodes: &[NodeId],
) -> (SimNetwork, mpsc::Receiver<PeerMessage>) {
    let network = SimNetwork::new(seed, faults);
    let (inbound, received) = mpsc::channel(10_000);
    for &node in nodes {
        network.register(node, inbound.clone());
    }
    (network, received)
}

/// Lets every message in flight land: longer than any delay these tests configure.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn drain(received: &mut mpsc::Receiver<PeerMessage>) -> Vec<PeerMessage> {
    std::iter::from_fn(|| received.try_recv().ok()).collect()
}

/// Every sent copy is accounted for once nothing is in flight.
fn assert_settled(network: &SimNetwork) {
    let stats = network.stats();
    assert_eq!(stats.in_flight(), 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn messages_arrive_after_a_delay_within_bounds_and_reordered() {
    let (network, mut received) = network(1, faults(10, 30, 0, 0), &[N1, N2]);
    let start = Instant::now();
    let n1 = network.handle(N1);
    for round in 0..50 {
        n1.send(message(N1, N2, round));
    }
    let mut rounds = Vec::new();
    for _ in 0..50 {
        let message = received.recv().await.unwrap();
        let elapsed = start.elapsed();
        assert!(
            Duration::from_millis(10) <= elapsed && elapsed <= Duration::from_millis(30),
            "{elapsed:?}"
        );
        assert_eq!((message.from, message.to), (N1, N2));
        rounds.push(round_of(&message));
    }
    settle().await;
    assert!(drain(&mut received).is_empty());
    let mut sorted = rounds.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "each exactly once");
    assert_ne!(rounds, sorted, "random delays reorder");
    let stats = network.stats();
    assert_eq!((stats.sent, stats.delivered, stats.dropped()), (50, 50, 0));
}

#[tokio::test(start_paused = true)]
async fn without_faults_delivery_is_immediate_and_in_order() {
    let (network, mut received) = network(1, SimFaults::NONE, &[N1, N2]);
    for round in 0..20 {
        network.handle(N1).send(message(N1, N2, round));
    }
    let start = Instant::now();
    let mut rounds = Vec::new();
    for _ in 0..20 {
        rounds.push(round_of(&received.recv().await.unwrap()));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(rounds, (0..20).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_drop_chance_of_1000_per_mille_loses_everything() {
    let (network, mut received) = network(2, faults(0, 5, 1000, 0), &[N1, N2]);
    for round in 0..100 {
        network.handle(N1).send(message(N1, N2, round));
    }
    settle().await;
    assert!(drain(&mut received).is_empty());
    let stats = network.stats();
    assert_eq!((stats.sent, stats.dropped_by_fault), (100, 100));
    assert_settled(&network);

    // The faults change at run time; healing would not have cleared them.
    network.heal();
    network.handle(N1).send(message(N1, N2, 100));
    settle().await;
    assert!(drain(&mut received).is_empty());
    network.set_faults(SimFaults::NONE);
    network.handle(N1).send(message(N1, N2, 101));
    settle().await;
    let rounds: Vec<u64> = drain(&mut received).iter().map(round_of).collect();
    assert_eq!(rounds, vec![101]);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_chance_of_1000_per_mille_delivers_each_message_twice() {
    let (network, mut received) = network(3, faults(0, 20, 0, 1000), &[N1, N2]);
    for round in 0..30 {
        network.handle(N1).send(message(N1, N2, round));
    }
    settle().await;
    let mut rounds: Vec<u64> = drain(&mut received).iter().map(round_of).collect();
    rounds.sort();
    let twice: Vec<u64> = (0..30).flat_map(|round| [round, round]).collect();
    assert_eq!(rounds, twice);
    let stats = network.stats();
    assert_eq!((stats.duplicated, stats.delivered), (30, 60));
    assert_settled(&network);
}

/// Sends one message along every directed link among `nodes` and returns the links that
/// delivered, as `(from, to)` pairs.
async fn links_that_deliver(
    network: &SimNetwork,
    received: &mut mpsc::Receiver<PeerMessage>,
    nodes: &[NodeId],
) -> Vec<(u64, u64)> {
    for &from in nodes {
        for &to in nodes.iter().filter(|&&to| to != from) {
            network.handle(from).send(message(from, to, 0));
        }
    }
    settle().await;
    let mut links: Vec<(u64, u64)> = drain(received).iter().map(|m| (m.from.0, m.to.0)).collect();
    links.sort();
    links
}

#[tokio::test(start_paused = true)]
async fn partitions_cut_between_groups_and_heal_restores() {
    let nodes = [N1, N2, N3];
    let (network, mut received) = network(4, faults(1, 10, 0, 0), &nodes);
    let all = vec![(1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)];
    assert_eq!(
        links_that_deliver(&network, &mut received, &nodes).await,
        all
    );

    network.partition(&[vec![N1, N2], vec![N3]]);
    assert!(!network.is_link_up(N1, N3) && !network.is_link_up(N3, N2));
    let within = vec![(1, 2), (2, 1)];
    assert_eq!(
        links_that_deliver(&network, &mut received, &nodes).await,
        within
    );
    assert_eq!(network.stats().dropped_by_cut, 4);

    network.heal();
    assert_eq!(
        links_that_deliver(&network, &mut received, &nodes).await,
        all
    );
    assert_settled(&network);
}

#[tokio::test(start_paused = true)]
async fn a_one_way_cut_loses_one_direction_only() {
    let nodes = [N1, N2];
    let (network, mut received) = network(5, faults(1, 10, 0, 0), &nodes);
    network.cut_one_way(N1, N2);
    assert_eq!(
        links_that_deliver(&network, &mut received, &nodes).await,
        vec![(2, 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn an_isolated_node_neither_hears_nor_is_heard() {
    let nodes = [N1, N2, N3];
    let (network, mut received) = network(6, faults(1, 10, 0, 0), &nodes);
    network.isolate(N3);
    assert_eq!(
        links_that_deliver(&network, &mut received, &nodes).await,
        vec![(1, 2), (2, 1)]
    );
    // Isolation also holds for an incarnation registered after it.
    network.unregister(N3);
    let (inbound, _keep) = mpsc::channel(10);
    network.register(N3, inbound);
    assert!(!network.is_link_up(N1, N3));
}

#[tokio::test(start_paused = true)]
async fn a_cut_made_while_a_message_is_in_flight_loses_it() {
    let (network, mut received) = network(7, faults(20, 20, 0, 0), &[N1, N2]);
    network.handle(N1).send(message(N1, N2, 1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    network.cut_one_way(N1, N2);
    settle().await;
    assert!(drain(&mut received).is_empty());
    assert_eq!(network.stats().dropped_by_cut, 1);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_never_gets_its_previous_incarnations_mail() {
    let network = SimNetwork::new(8, faults(20, 20, 0, 0));
    let (inbound_1, _received_1) = mpsc::channel(10);
    let (inbound_2, mut received_2) = mpsc::channel(10);
    assert_eq!(network.register(N1, inbound_1), Incarnation(1));
    assert_eq!(network.register(N2, inbound_2), Incarnation(1));
    network.handle(N1).send(message(N1, N2, 1));

    // N2 crashes with the message in flight: sends to it vanish while it is down.
    tokio::time::sleep(Duration::from_millis(10)).await;
    network.unregister(N2);
    network.handle(N1).send(message(N1, N2, 2));
    // A crashed node's own sends vanish too.
    network.handle(N2).send(message(N2, N1, 3));

    // It restarts before the first message's delivery time.
    let (inbound_2, mut received_2_again) = mpsc::channel(10);
    assert_eq!(network.register(N2, inbound_2), Incarnation(2));
    settle().await;
    assert!(drain(&mut received_2).is_empty());
    assert!(drain(&mut received_2_again).is_empty());
    assert_eq!(network.stats().dropped_unreachable, 3);

    network.handle(N1).send(message(N1, N2, 4));
    settle().await;
    let rounds: Vec<u64> = drain(&mut received_2_again).iter().map(round_of).collect();
    assert_eq!(rounds, vec![4]);
    assert_settled(&network);
}

#[tokio::test(start_paused = true)]
async fn a_full_inbound_channel_drops_and_counts() {
    let network = SimNetwork::new(9, SimFaults::NONE);
    let (inbound_1, _received_1) = mpsc::channel(1);
    let (inbound_2, mut received_2) = mpsc::channel(2);
    network.register(N1, inbound_1);
    network.register(N2, inbound_2);
    for round in 0..5 {
        network.handle(N1).send(message(N1, N2, round));
    }
    settle().await;
    assert_eq!(drain(&mut received_2).len(), 2);
    let stats = network.stats();
    assert_eq!((stats.delivered, stats.dropped_inbound_full), (2, 3));
}

#[test]
#[should_panic(expected = "another node's name")]
fn sending_in_another_nodes_name_is_a_bug() {
    let network = SimNetwork::new(10, SimFaults::NONE);
    network.handle(N1).send(message(N2, N3, 0));
}

/// Runs a busy three-node exchange with every fault on, in a fresh paused runtime, and
/// returns what arrived: (virtual microseconds since start, from, to, round).
fn delivery_trace(seed: u64) -> Vec<(u128, u64, u64, u64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let nodes = [N1, N2, N3];
        let (network, mut received) = network(seed, faults(1, 50, 100, 100), &nodes);
        let start = Instant::now();
        let recorder = tokio::spawn(async move {
            let mut trace = Vec::new();
            while let Some(m) = received.recv().await {
                let at = start.elapsed().as_micros();
                trace.push((at, m.from.0, m.to.0, round_of(&m)));
            }
            trace
        });
        for round in 0..40 {
            for &from in &nodes {
                for &to in nodes.iter().filter(|&&to| to != from) {
                    network.handle(from).send(message(from, to, round));
                }
            }
            if round == 20 {
                network.partition(&[vec![N1], vec![N2, N3]]);
            }
            if round == 30 {
                network.heal();
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        settle().await;
        assert_settled(&network);
        drop(network); // closes the channel, ending the recorder
        recorder.await.unwrap()
    })
}

#[test]
fn the_same_seed_replays_the_same_deliveries() {
    let first = delivery_trace(42);
    assert!(first.len() > 100, "only {} deliveries", first.len());
    assert_eq!(first, delivery_trace(42));
    assert_ne!(first, delivery_trace(43));
}
