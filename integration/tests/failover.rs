//! The failover measurement (BENCHMARKS.md, "Failover"): kill -9 the leader of a 3-node
//! cluster under sequential writes with a 200 ms client deadline, `FAILOVER_KILLS` times
//! (default 5; 20 for the benchmark, and under `SOAK=1`), default timeouts. Prints the
//! distribution; fails only if a failover never completes or the history is not
//! linearizable — the goal (median ≤ 300 ms, max ≤ 600 ms) is reported, not asserted, since
//! CI machines are shared.

use std::time::Duration;

use raftlog::testing::check_history;
use raftlog_integration::cluster::{Cluster, ClusterSpec};
use raftlog_integration::failover::{measure, quantile, table, STREAM};
use raftlog_integration::run::soak;
use raftlog_integration::view::block_on;

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn failover_kill_leader_under_sequential_writes() {
    let kills: usize = std::env::var("FAILOVER_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if soak() { 20 } else { 5 });
    let nodes: u64 = std::env::var("FAILOVER_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut cluster = Cluster::start(ClusterSpec::new("failover", nodes)).expect("cluster");
    let mode = cluster.mode;
    let (samples, recording) =
        measure(&mut cluster, kills, Duration::from_millis(200)).expect("every failover completes");
    let view = cluster.view();
    let final_log = block_on(view.converge(&[STREAM.to_string()], Duration::from_secs(30)))
        .expect("convergence");
    let history = recording.recorder.finish();
    let report = check_history(&history, &final_log);
    if let Err(violations) = &report {
        let path = cluster.dir.join("history.txt");
        let _ = std::fs::write(&path, history.to_string());
        panic!(
            "the failover history is not linearizable:\n{}\nhistory: {}",
            violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            path.display()
        );
    }
    let gaps: Vec<Duration> = samples.iter().map(|s| s.gap).collect();
    let (median, max) = (quantile(&gaps, 0.5), quantile(&gaps, 1.0));
    eprintln!(
        "failover, {nodes} nodes ({mode:?}), 200 ms client deadline, default timeouts \
         (election 150-300 ms, heartbeat 50 ms):\n{}\ngoal median <= 300 ms: {}; max <= 600 ms: \
         {}\nhistory: {}",
        table(&samples),
        if median <= Duration::from_millis(300) {
            "met"
        } else {
            "NOT met"
        },
        if max <= Duration::from_millis(600) {
            "met"
        } else {
            "NOT met"
        },
        report.expect("checked")
    );
    cluster.mark_passed();
}
