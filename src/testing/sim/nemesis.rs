//! The nemesis: faults injected on a schedule drawn from the run's seed — crashes and
//! restarts (of the leader or any node, up to all of them), partitions (random splits, an
//! isolated leader, one-way cuts), lossy/duplicating/slow networks, and stalled disks. Each
//! fault is undone after a while, and everything is healed at the end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{rngs::SmallRng, seq::SliceRandom, Rng, SeedableRng};
use tokio::time::Instant;

use crate::testing::sim::cluster::{leader_among, SimCluster};
use crate::testing::sim::observer::NodeEvent;
use crate::transport::SimFaults;
use crate::types::NodeId;

#[derive(Clone, Debug)]
pub struct NemesisConfig {
    /// Pause between faults, drawn uniformly.
    pub interval: (Duration, Duration),
    /// How long a fault lasts before it is undone.
    pub duration: (Duration, Duration),
    pub disk_latency: (Duration, Duration),
    /// How often (per mille) a node that just won an election is cut off from everyone
    /// before it sends anything as leader — its no-op never leaves it.
    pub isolate_new_leader_per_mille: u32,
}

impl Default for NemesisConfig {
    fn default() -> Self {
        Self {
            interval: (Duration::from_millis(100), Duration::from_millis(1200)),
            duration: (Duration::from_millis(50), Duration::from_millis(1500)),
            disk_latency: (Duration::from_micros(100), Duration::from_millis(2)),
            isolate_new_leader_per_mille: 0,
        }
    }
}

impl NemesisConfig {
    /// Short, frequent faults: many elections in quick succession, which is where the
    /// subtle interleavings of terms (Raft's Figure 8) come from.
    pub fn aggressive() -> Self {
        Self {
            interval: (Duration::from_millis(20), Duration::from_millis(400)),
            duration: (Duration::from_millis(20), Duration::from_millis(600)),
            isolate_new_leader_per_mille: 300,
            ..Self::default()
        }
    }
}

/// The faults a run may inject, chosen per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    CrashLeader,
    CrashAny,
    PartitionRandom,
    IsolateLeader,
    CutOneWay,
    LossyNetwork,
    StallDisks,
    PauseLeader,
}

const FAULTS: [Fault; 8] = [
    Fault::CrashLeader,
    Fault::CrashAny,
    Fault::PartitionRandom,
    Fault::IsolateLeader,
    Fault::CutOneWay,
    Fault::LossyNetwork,
    Fault::StallDisks,
    Fault::PauseLeader,
];

/// Injects faults until `until`, then heals everything.
pub async fn run_nemesis(
    seed: u64,
    config: NemesisConfig,
    cluster: Rc<RefCell<SimCluster>>,
    until: Instant,
    log: Rc<RefCell<Vec<String>>>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut undo: Vec<(Instant, Undo)> = Vec::new();
    let origin = Instant::now();
    let isolated_leaders = install_leader_isolation(&config, rng.gen(), &cluster);
    while Instant::now() < until {
        let pause = rng.gen_range(config.interval.0..=config.interval.1);
        tokio::time::sleep(pause).await;
        let now = Instant::now();
        // Undo what is due first, so faults overlap only as much as their durations say.
        let (due, later): (Vec<_>, Vec<_>) = undo.into_iter().partition(|(at, _)| *at <= now);
        undo = later;
        for (_, action) in due {
            action.apply(&cluster, &config);
        }
        for leader in std::mem::take(&mut *isolated_leaders.lock().expect("lock")) {
            let at = now.duration_since(origin).as_millis();
            let lasting = rng.gen_range(config.duration.0..=config.duration.1);
            log.borrow_mut().push(format!(
                "{at}ms: new leader {leader} isolated for {}ms",
                lasting.as_millis()
            ));
            undo.push((now + lasting, Undo::Heal));
        }
        let fault = *FAULTS.choose(&mut rng).expect("faults");
        let lasting = rng.gen_range(config.duration.0..=config.duration.1);
        if let Some(action) = inject(fault, &mut rng, &cluster).await {
            let at = now.duration_since(origin).as_millis();
            log.borrow_mut().push(format!(
                "{at}ms: {fault:?} ({action:?}) for {}ms",
                lasting.as_millis()
            ));
            undo.push((now + lasting, action));
        }
    }
    cluster.borrow().observer().set_hook(None);
    for (_, action) in undo {
        action.apply(&cluster, &config);
    }
    heal_all(&cluster, &config);
}

/// Installs the hook that cuts off some new leaders the moment they win; returns the list
/// of leaders it cut off, for the nemesis to heal later.
fn install_leader_isolation(
    config: &NemesisConfig,
    seed: u64,
    cluster: &Rc<RefCell<SimCluster>>,
) -> Arc<Mutex<Vec<NodeId>>> {
    let isolated = Arc::new(Mutex::new(Vec::new()));
    if config.isolate_new_leader_per_mille == 0 {
        return isolated;
    }
    let per_mille = config.isolate_new_leader_per_mille;
    let rng = Mutex::new(SmallRng::seed_from_u64(seed));
    let network = cluster.borrow().network().clone();
    let record = isolated.clone();
    cluster
        .borrow()
        .observer()
        .set_hook(Some(Arc::new(move |event| {
            let NodeEvent::BecameLeader { node: leader, .. } = event else {
                return;
            };
            if rng.lock().expect("rng lock").gen_range(0..1000) < per_mille {
                network.isolate(leader);
                record.lock().expect("lock").push(leader);
            }
        })));
    isolated
}

/// What undoes an injected fault.
#[derive(Clone, Debug)]
enum Undo {
    Restart(NodeId),
    Heal,
    CalmNetwork,
    CalmDisks,
    /// The fault undoes itself (a pause ends on its own).
    Nothing,
}

impl Undo {
    fn apply(&self, cluster: &Rc<RefCell<SimCluster>>, config: &NemesisConfig) {
        let mut cluster = cluster.borrow_mut();
        match self {
            Undo::Restart(id) => cluster.restart(*id),
            Undo::Heal => cluster.network().heal(),
            Undo::CalmNetwork => cluster.network().set_faults(SimFaults::NONE),
            Undo::CalmDisks => {
                cluster.set_disk_latency(config.disk_latency.0, config.disk_latency.1)
            }
            Undo::Nothing => {}
        }
    }
}

async fn inject(
    fault: Fault,
    rng: &mut SmallRng,
    cluster: &Rc<RefCell<SimCluster>>,
) -> Option<Undo> {
    let running = cluster.borrow().running();
    let leader = leader_among(running).await.map(|handle| handle.id);
    let mut cluster = cluster.borrow_mut();
    let ids = cluster.ids();
    let random = *ids.choose(rng).expect("nodes");
    match fault {
        Fault::CrashLeader | Fault::CrashAny => {
            let victim = if fault == Fault::CrashLeader {
                leader?
            } else {
                random
            };
            if !cluster.is_running(victim) {
                return None;
            }
            cluster.crash(victim);
            Some(Undo::Restart(victim))
        }
        Fault::PartitionRandom => {
            let mut shuffled = ids.clone();
            shuffled.shuffle(rng);
            let split = rng.gen_range(1..shuffled.len());
            let (a, b) = shuffled.split_at(split);
            cluster.network().partition(&[a.to_vec(), b.to_vec()]);
            Some(Undo::Heal)
        }
        Fault::IsolateLeader => {
            cluster.network().isolate(leader?);
            Some(Undo::Heal)
        }
        Fault::CutOneWay => {
            let to = *ids
                .iter()
                .filter(|&&id| id != random)
                .collect::<Vec<_>>()
                .choose(rng)?;
            cluster.network().cut_one_way(random, *to);
            Some(Undo::Heal)
        }
        Fault::LossyNetwork => {
            cluster.network().set_faults(SimFaults {
                delay_ms_min: 0,
                delay_ms_max: rng.gen_range(1..=30),
                drop_per_mille: rng.gen_range(0..=300),
                duplicate_per_mille: rng.gen_range(0..=100),
            });
            Some(Undo::CalmNetwork)
        }
        Fault::PauseLeader => {
            // Past its lease and long enough for the others to elect a new leader.
            let leader = cluster.handle(leader?)?;
            leader.freeze(Duration::from_millis(rng.gen_range(200..=1200)));
            Some(Undo::Nothing)
        }
        Fault::StallDisks => {
            let stall = Duration::from_millis(rng.gen_range(5..=200));
            cluster.set_disk_latency(stall / 2, stall);
            Some(Undo::CalmDisks)
        }
    }
}

/// Restarts every node and removes every network and disk fault.
pub fn heal_all(cluster: &Rc<RefCell<SimCluster>>, config: &NemesisConfig) {
    let mut cluster = cluster.borrow_mut();
    for id in cluster.ids() {
        cluster.restart(id);
    }
    cluster.network().heal();
    cluster.network().set_faults(SimFaults::NONE);
    cluster.set_disk_latency(config.disk_latency.0, config.disk_latency.1);
}
