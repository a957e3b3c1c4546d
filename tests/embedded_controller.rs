//! Runs `examples/controller`'s story — brokers embedding a controller quorum, the
//! controller killed, the next one continuing from the same state — with every step's
//! check, on free loopback ports.

#[path = "../examples/controller/broker.rs"]
mod broker;
#[path = "../examples/controller/metadata.rs"]
mod metadata;
#[path = "../examples/controller/scenario.rs"]
mod scenario;

use raftlog::embed::ClusterConfig;

use crate::broker::BrokerSettings;
use crate::metadata::{plan, Command, Metadata};

#[tokio::test]
async fn the_next_controller_continues_from_the_same_state() {
    let cluster = ClusterConfig::on_free_loopback_ports("controller-test", 3);
    let data = std::env::temp_dir().join(format!("raftlog-controller-test-{}", std::process::id()));
    let settings = BrokerSettings::example(cluster, data.clone());
    let result = scenario::run(&settings, &[1, 2, 3], &|line| println!("{line}")).await;
    let _ = std::fs::remove_dir_all(&data);
    result.unwrap();
}

#[test]
fn the_plan_fences_expired_brokers_and_spreads_leadership_over_live_ones() {
    let mut metadata = Metadata::default();
    for (broker, at_ms) in [(1, 1_000), (2, 1_000), (3, 100)] {
        metadata.brokers.insert(
            broker,
            metadata::BrokerRecord {
                last_heartbeat_ms: at_ms,
                fenced: false,
            },
        );
    }
    let partitions: Vec<String> = (0..4).map(|p| format!("p{p}")).collect();
    let commands = plan(&metadata, 1_200, 500, &partitions, 2);
    assert_eq!(commands[0], Command::Fence { broker: 3 });
    let leaders: Vec<u64> = commands[1..]
        .iter()
        .map(|c| match c {
            Command::Assign {
                leader, replicas, ..
            } => {
                assert_eq!(replicas.len(), 2);
                assert_eq!(replicas[0], *leader);
                *leader
            }
            other => panic!("expected an assignment, got {other:?}"),
        })
        .collect();
    assert_eq!(leaders, vec![1, 2, 1, 2]);
}
