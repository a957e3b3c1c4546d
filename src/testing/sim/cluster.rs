//! A whole raftlog cluster in one process: real node actors over the simulated network, each
//! on a simulated disk that outlives crashes, with per-node clock drift. Everything random is
//! drawn from the run's seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::node::clock::Clock;
use crate::node::mem_store::{MemDisk, MemHardStateStore, MemLogStore, SharedDisk};
use crate::node::storage::{BlockingPool, SimulatedDisk};
use crate::node::{self, NodeConfig, NodeHandle, NodeStorage, NodeWiring};
use crate::raft::election::Role;
use crate::testing::sim::observer::ClusterObserver;
use crate::transport::{SimFaults, SimNetwork};
use crate::types::NodeId;

/// How many inbound messages a simulated node buffers before the network drops.
const INBOUND_CAPACITY: usize = 4096;

#[derive(Clone, Debug)]
pub struct SimClusterConfig {
    pub nodes: u64,
    pub seed: u64,
    /// The consensus settings every node starts with (id and voters are filled in).
    pub node: NodeConfig,
    pub faults: SimFaults,
    pub disk_latency: (Duration, Duration),
    /// Each node's clock runs fast or slow by up to this much, drawn per incarnation.
    pub clock_drift_ppm_max: i64,
    /// Exact drifts for some nodes, instead of drawing them (scripted scenarios).
    pub clock_drift_ppm: BTreeMap<NodeId, i64>,
}

impl SimClusterConfig {
    pub fn new(nodes: u64, seed: u64) -> Self {
        let voters: BTreeSet<NodeId> = (1..=nodes).map(NodeId).collect();
        Self {
            nodes,
            seed,
            node: NodeConfig::new(NodeId(1), voters),
            faults: SimFaults::NONE,
            disk_latency: (Duration::from_micros(100), Duration::from_millis(2)),
            clock_drift_ppm_max: 0,
            clock_drift_ppm: BTreeMap::new(),
        }
    }
}

pub struct SimCluster {
    config: SimClusterConfig,
    network: SimNetwork,
    disks: BTreeMap<NodeId, SharedDisk>,
    running: BTreeMap<NodeId, NodeHandle>,
    observer: ClusterObserver,
    sim_disk: Arc<SimulatedDisk>,
    rng: SmallRng,
    incarnations: u64,
}

impl SimCluster {
    /// Starts every node. Must run inside an actix system.
    pub fn start(config: SimClusterConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let network = SimNetwork::new(rng.gen(), config.faults);
        let sim_disk = Arc::new(SimulatedDisk {
            rng: Arc::new(Mutex::new(SmallRng::seed_from_u64(rng.gen()))),
            latency: Mutex::new(config.disk_latency),
        });
        let ids: Vec<NodeId> = (1..=config.nodes).map(NodeId).collect();
        let mut cluster = Self {
            disks: ids.iter().map(|&id| (id, MemDisk::new_shared())).collect(),
            config,
            network,
            running: BTreeMap::new(),
            observer: ClusterObserver::default(),
            sim_disk,
            rng,
            incarnations: 0,
        };
        for id in ids {
            cluster.start_node(id);
        }
        cluster
    }

    fn start_node(&mut self, id: NodeId) {
        let disk = self.disks[&id].clone();
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let network_incarnation = self.network.register(id, inbound_tx);
        let mut config = self.config.node.clone();
        config.id = id;
        config.voters = self.ids().into_iter().collect();
        self.incarnations += 1;
        config.jitter_seed = self.rng.gen();
        let drift = self.config.clock_drift_ppm_max;
        let drawn = if drift > 0 {
            self.rng.gen_range(-drift..=drift)
        } else {
            0
        };
        let drift_ppm = self
            .config
            .clock_drift_ppm
            .get(&id)
            .copied()
            .unwrap_or(drawn);
        let storage = NodeStorage {
            log: Box::new(MemLogStore::open(disk.clone())),
            hard_state: Box::new(MemHardStateStore::open(disk.clone())),
            log_pool: BlockingPool::Simulated(self.sim_disk.clone()),
            hard_state_pool: BlockingPool::Simulated(self.sim_disk.clone()),
            wal_arbiter: None,
        };
        let observer = self.observer.clone();
        let incarnation = disk.lock().expect("disk lock").incarnation();
        let on_fatal = Arc::new(move |message: &str| {
            // After a simulated crash the old incarnation's stores refuse everything, which
            // its actors report as fatal: expected. Anything else is a real failure.
            if disk.lock().expect("disk lock").incarnation() == incarnation {
                observer.fatal(id, message);
            }
        });
        let wiring = NodeWiring {
            application: None,
            network: self.network.handle_for(id, network_incarnation),
            inbound: inbound_rx,
            clock: Clock::with_drift(drift_ppm),
            observer: Some(Arc::new(self.observer.for_incarnation(id))),
            on_fatal,
        };
        let handle = node::start(config, storage, wiring);
        self.running.insert(id, handle);
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.disks.keys().copied().collect()
    }

    pub fn running(&self) -> Vec<NodeHandle> {
        self.running.values().cloned().collect()
    }

    pub fn handle(&self, id: NodeId) -> Option<NodeHandle> {
        self.running.get(&id).cloned()
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.running.contains_key(&id)
    }

    pub fn network(&self) -> &SimNetwork {
        &self.network
    }

    pub fn observer(&self) -> &ClusterObserver {
        &self.observer
    }

    pub fn disk(&self, id: NodeId) -> SharedDisk {
        self.disks[&id].clone()
    }

    /// Sets the simulated disks' flush and hard-state-save latency range.
    pub fn set_disk_latency(&self, min: Duration, max: Duration) {
        *self.sim_disk.latency.lock().expect("latency lock") = (min, max);
    }

    /// Power loss: the node loses whatever it had not flushed, and its actors stop.
    pub fn crash(&mut self, id: NodeId) {
        let Some(handle) = self.running.remove(&id) else {
            return;
        };
        self.disks[&id].lock().expect("disk lock").crash();
        self.network.unregister(id);
        handle.stop();
    }

    pub fn restart(&mut self, id: NodeId) {
        if self.running.contains_key(&id) {
            return;
        }
        self.observer.restarted(id);
        self.start_node(id);
    }

    /// Stops every node (the end of a run).
    pub fn stop_all(&mut self) {
        for (_, handle) in std::mem::take(&mut self.running) {
            handle.stop();
        }
    }
}

/// Among `nodes`, the one that says it leads the highest term, if any. A free function, so
/// callers snapshot the running nodes and release the cluster before awaiting.
pub async fn leader_among(nodes: Vec<NodeHandle>) -> Option<NodeHandle> {
    let mut best: Option<(crate::types::Term, NodeHandle)> = None;
    for handle in nodes {
        if let Some(role) = handle.role().await {
            if role.role == Role::Leader && best.as_ref().is_none_or(|(t, _)| role.term > *t) {
                best = Some((role.term, handle));
            }
        }
    }
    best.map(|(_, handle)| handle)
}
