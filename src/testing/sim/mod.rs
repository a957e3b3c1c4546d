//! The deterministic cluster simulator: a whole cluster of real node actors in one process,
//! on tokio's paused clock, with every random choice — network faults, disk latency, clock
//! drift, timer jitter, client behaviour, the nemesis's schedule — drawn from one seed.
//!
//! A run: start the cluster, let clients append and read while the nemesis injects faults,
//! heal everything, wait for the cluster to converge, then check the recorded history
//! (linearizability, no lost acknowledged write, …) and the nodes' behaviour (one leader per
//! term, applied logs prefixes of one another). The same seed replays the same run.
//!
//! - [`cluster`]: the simulated cluster (start, crash, restart);
//! - [`client`]: the workload clients;
//! - [`nemesis`]: the fault schedule;
//! - [`observer`]: what the nodes report while running.

pub mod client;
pub mod cluster;
pub mod nemesis;
pub mod observer;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::time::Instant;

use crate::node::{NodeConfig, NodeHandle};
use crate::raft::election::SafetyOverrides;
use crate::testing::sim::client::{run_client, stream_name, Workload};
use crate::testing::sim::cluster::{leader_among, SimCluster, SimClusterConfig};
use crate::testing::sim::nemesis::{heal_all, run_nemesis, NemesisConfig};
use crate::testing::{check_cluster, check_history, CheckReport, ClientId, FinalLog};
use crate::types::Offset;

/// One simulation run's parameters; all derived from `seed` except what a test pins.
#[derive(Clone, Debug)]
pub struct SimRun {
    pub nodes: u64,
    pub seed: u64,
    /// How long clients and the nemesis run, in simulated time.
    pub duration: Duration,
    pub workload: Workload,
    pub nemesis: Option<NemesisConfig>,
    pub overrides: SafetyOverrides,
    pub clock_drift_ppm_max: i64,
    /// Adjusts every node's consensus settings (batching, timeouts) for this run.
    pub tweak_node: Option<fn(&mut NodeConfig)>,
    /// How long the healed cluster may take to converge before the run fails.
    pub converge_timeout: Duration,
}

impl SimRun {
    pub fn new(nodes: u64, seed: u64) -> Self {
        Self {
            nodes,
            seed,
            duration: Duration::from_secs(6),
            workload: Workload::default(),
            nemesis: Some(NemesisConfig::default()),
            overrides: SafetyOverrides::default(),
            // Within the lease's bound (clock_drift_max 5%: ±2% per clock keeps the
            // relative rate difference under it).
            clock_drift_ppm_max: 20_000,
            tweak_node: None,
            converge_timeout: Duration::from_secs(30),
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!(
            "SIM_NODES={} SIM_SEED={} cargo test --release --test sim replay -- --nocapture",
            self.nodes, self.seed
        )
    }
}

/// What a passing run did.
#[derive(Debug)]
pub struct SimReport {
    pub check: CheckReport,
    /// The recorded history, one operation per line: identical for identical seeds.
    pub history: String,
    pub faults: Vec<String>,
    pub leader_changes: usize,
}

/// A failing run: what broke, with everything needed to understand and replay it.
#[derive(Debug)]
pub struct SimFailure {
    pub replay: String,
    pub problems: Vec<String>,
    pub faults: Vec<String>,
    pub history: String,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation failed; replay with:\n  {}", self.replay)?;
        for problem in &self.problems {
            writeln!(f, "- {problem}")?;
        }
        writeln!(f, "faults injected:")?;
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        Ok(())
    }
}

/// Runs one simulation on a fresh single-threaded actix system with paused time.
pub fn run(config: SimRun) -> Result<SimReport, SimFailure> {
    in_simulation(run_in_system(config))
}

/// Runs `future` to completion on a fresh single-threaded actix system whose tokio clock is
/// paused: time advances only when every task waits, straight to the next timer.
pub fn in_simulation<F: std::future::Future>(future: F) -> F::Output {
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("building the simulation runtime")
    });
    system.block_on(future)
}

/// Polls `condition` every millisecond of simulated time until it holds or `timeout` passes;
/// returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    false
}

async fn run_in_system(run: SimRun) -> Result<SimReport, SimFailure> {
    let mut rng = SmallRng::seed_from_u64(run.seed);
    let mut cluster_config = SimClusterConfig::new(run.nodes, rng.gen());
    cluster_config.node.overrides = run.overrides;
    cluster_config.clock_drift_ppm_max = run.clock_drift_ppm_max;
    if let Some(tweak) = run.tweak_node {
        tweak(&mut cluster_config.node);
    }
    let cluster = Rc::new(RefCell::new(SimCluster::start(cluster_config)));
    let recorder = crate::testing::HistoryRecorder::new();
    let fault_log = Rc::new(RefCell::new(Vec::new()));
    let origin = Instant::now();
    let until = origin + run.duration;

    let mut tasks = Vec::new();
    for client in 0..run.workload.clients {
        tasks.push(actix_rt::spawn(run_client(
            ClientId(client),
            rng.gen(),
            run.workload.clone(),
            cluster.clone(),
            recorder.clone(),
            origin,
            until,
        )));
    }
    if let Some(nemesis) = run.nemesis.clone() {
        tasks.push(actix_rt::spawn(run_nemesis(
            rng.gen(),
            nemesis,
            cluster.clone(),
            until,
            fault_log.clone(),
        )));
    }
    for task in tasks {
        task.await.expect("simulation tasks do not panic");
    }
    heal_all(&cluster, &run.nemesis.clone().unwrap_or_default());

    let mut problems = Vec::new();
    let converged = converge(&cluster, run.converge_timeout).await;
    let final_log = match &converged {
        Ok(leader) => final_log(leader, run.workload.streams).await,
        Err(problem) => {
            problems.push(problem.clone());
            FinalLog::new()
        }
    };
    let history = recorder.finish();
    let observer = cluster.borrow().observer().clone();
    let mut check = None;
    if converged.is_ok() {
        match check_history(&history, &final_log) {
            Ok(report) => check = Some(report),
            Err(violations) => problems.extend(violations.iter().map(|v| v.to_string())),
        }
    }
    if let Err(violations) = check_cluster(&observer.roles(), &observer.applied_by_incarnation()) {
        problems.extend(violations.iter().map(|v| v.to_string()));
    }
    for (node, message) in observer.fatal_errors() {
        problems.push(format!("{node} hit a fatal error: {message}"));
    }
    cluster.borrow_mut().stop_all();
    let faults = fault_log.borrow().clone();
    match check {
        Some(check) if problems.is_empty() => Ok(SimReport {
            check,
            history: history.to_string(),
            faults,
            leader_changes: observer
                .roles()
                .iter()
                .filter(|r| r.role == crate::testing::ObservedRole::Leader)
                .count(),
        }),
        _ => Err(SimFailure {
            replay: run.replay_command(),
            problems,
            faults,
            history: history.to_string(),
        }),
    }
}

/// Waits until one leader's log is fully applied and every node holds and applied exactly
/// that log.
pub async fn converge(
    cluster: &Rc<RefCell<SimCluster>>,
    timeout: Duration,
) -> Result<NodeHandle, String> {
    let deadline = Instant::now() + timeout;
    let mut last_state = String::from("no leader");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let running = cluster.borrow().running();
        let Some(leader) = leader_among(running).await else {
            continue;
        };
        let (Some(last), Some(applied)) =
            (leader.last_log_id().await, leader.applied_index().await)
        else {
            continue;
        };
        let mut converged = applied == last.index;
        let nodes = cluster.borrow().running();
        for node in nodes {
            let (node_last, node_applied) = (node.last_log_id().await, node.applied_index().await);
            converged &= node_last == Some(last) && node_applied == Some(applied);
            last_state = format!("leader {} last {last} applied {applied}; {} last {node_last:?} applied {node_applied:?}", leader.id, node.id);
        }
        if converged {
            return Ok(leader);
        }
    }
    Err(format!(
        "the healed cluster did not converge within {timeout:?} ({last_state})"
    ))
}

async fn final_log(leader: &NodeHandle, streams: u64) -> FinalLog {
    let mut log: FinalLog = BTreeMap::new();
    for stream in (0..streams).map(stream_name) {
        let read = leader
            .read_stale(&stream, Offset(0), 1_000_000)
            .await
            .expect("reading the final log");
        let values: Vec<Bytes> = read.records.into_iter().map(|(_, value)| value).collect();
        log.insert(stream, values);
    }
    log
}
