//! One test per nemesis, and mixed schedules of every nemesis on 3 and 5 nodes: real
//! processes, real faults, every history checked (see `raftlog_integration::run`).
//!
//! Short profile (CI): one fixed seed per test, 12–25 s of faults. `SOAK=1`: `SOAK_RUNS`
//! (default 10) fresh seeds per test, 2 minutes each. `SEED=N` replays one schedule;
//! `DURATION_S=N` sets the length.

use std::time::Duration;

use raftlog_integration::nemesis::{Fault, NemesisConfig};
use raftlog_integration::run::{duration_or, run_seeds, RunConfig};

fn config(name: &str, nodes: u64, faults: &[Fault], seed: u64) -> RunConfig {
    let mut config = RunConfig::new(name, nodes, seed, NemesisConfig::new(faults));
    config.duration = duration_or(Duration::from_secs(12), Duration::from_secs(120));
    config
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn kill_leader_3() {
    run_seeds(&[11], |seed| {
        config("kill_leader_3", 3, &[Fault::KillLeader], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn kill_random_5() {
    run_seeds(&[12], |seed| {
        config(
            "kill_random_5",
            5,
            &[Fault::KillRandom, Fault::KillLeader],
            seed,
        )
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn isolate_leader_3() {
    run_seeds(&[13], |seed| {
        config("isolate_leader_3", 3, &[Fault::IsolateLeader], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn partitions_5() {
    run_seeds(&[14], |seed| {
        config(
            "partitions_5",
            5,
            &[Fault::PartitionRandom, Fault::PartitionLeaderMinority],
            seed,
        )
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn one_way_cuts_3() {
    run_seeds(&[15], |seed| {
        config("one_way_cuts_3", 3, &[Fault::CutOneWay], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn packet_loss_3() {
    run_seeds(&[16], |seed| {
        config("packet_loss_3", 3, &[Fault::PacketLoss], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn link_down_3() {
    run_seeds(&[17], |seed| {
        config("link_down_3", 3, &[Fault::LinkDown], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn pause_leader_3() {
    run_seeds(&[18], |seed| {
        config("pause_leader_3", 3, &[Fault::PauseLeader], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn rolling_restart_3() {
    run_seeds(&[19], |seed| {
        config("rolling_restart_3", 3, &[Fault::RollingRestart], seed)
    });
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn peer_latency_3() {
    run_seeds(&[20], |seed| {
        let mut config = config("peer_latency_3", 3, &[Fault::PeerLatency], seed);
        config.peer_proxy = true;
        config
    });
}

/// Every nemesis, drawn at random, on loop disks and through the proxy.
fn mixed(name: &str, nodes: u64, seed: u64) -> RunConfig {
    let mut config = RunConfig::new(name, nodes, seed, NemesisConfig::new(&Fault::ALL));
    config.duration = duration_or(Duration::from_secs(25), Duration::from_secs(300));
    config.disks = raftlog_integration::cluster::disks_supported();
    config.peer_proxy = true;
    config
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn mixed_3() {
    run_seeds(&[21], |seed| mixed("mixed_3", 3, seed));
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn mixed_5() {
    run_seeds(&[22], |seed| mixed("mixed_5", 5, seed));
}
