//! The nemesis: real faults on a schedule drawn from the run's seed, one at a time — a fault,
//! its duration, its undoing, a quiet interval — until the run's end, then everything is
//! healed. It runs on its own thread because every fault is a blocking operation (a signal
//! and a wait, an nft transaction, copying a disk image).
//!
//! The seed fixes the schedule (which fault, which node, how long); real processes still
//! decide who leads when, so a "leader" fault picks whoever leads at that moment and the
//! log says who it was.

use std::time::{Duration, Instant};

use rand::{rngs::SmallRng, seq::SliceRandom, Rng, SeedableRng};

use crate::cluster::{Cluster, NetMode};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 the leader; restart it after the fault's duration.
    KillLeader,
    /// kill -9 a random node; restart it after the fault's duration.
    KillRandom,
    /// Cut the leader off from every other node (clients still reach it).
    IsolateLeader,
    /// Split the nodes in two at random: a minority and a majority.
    PartitionRandom,
    /// The leader and fewer than half of the others on one side.
    PartitionLeaderMinority,
    /// Cut one direction of one link (half of the time, out of the leader).
    CutOneWay,
    /// Every node drops a share of the packets it receives (nft numgen).
    PacketLoss,
    /// `ip link set veth0 down` on a random node: it vanishes, for clients too.
    LinkDown,
    /// SIGSTOP the leader past its lease and a new election; SIGCONT it.
    PauseLeader,
    /// Pull the plug on one node (unsynced disk image copy) and restart it.
    PowerLossOne,
    /// Pull the plug on a majority at once and restart them.
    PowerLossMajority,
    /// SIGTERM and restart every node in turn, each once it is back.
    RollingRestart,
    /// Latency and jitter on every peer link through the fault proxy, with connection
    /// resets that let fresh connections overtake old ones.
    PeerLatency,
    /// kill -9 every node, delete every data directory, restart: total amnesia. Loses
    /// acknowledged writes by construction — only for showing that the checks catch that,
    /// never part of a real schedule (not in [`Fault::ALL`]).
    WipeAll,
}

impl Fault {
    pub const ALL: [Fault; 13] = [
        Fault::KillLeader,
        Fault::KillRandom,
        Fault::IsolateLeader,
        Fault::PartitionRandom,
        Fault::PartitionLeaderMinority,
        Fault::CutOneWay,
        Fault::PacketLoss,
        Fault::LinkDown,
        Fault::PauseLeader,
        Fault::PowerLossOne,
        Fault::PowerLossMajority,
        Fault::RollingRestart,
        Fault::PeerLatency,
    ];

    /// Why `cluster` cannot inject this fault, if it cannot.
    pub fn unsupported_by(self, cluster: &Cluster) -> Option<&'static str> {
        match self {
            Fault::PacketLoss | Fault::LinkDown if cluster.mode != NetMode::Namespaces => {
                Some("needs network namespaces and nft (root)")
            }
            Fault::PowerLossOne | Fault::PowerLossMajority if !cluster.has_disks() => {
                Some("needs loop-mounted disks (ClusterSpec::disks, root)")
            }
            Fault::PeerLatency if cluster.proxy().is_none() => {
                Some("needs the fault proxy on the peer links (ClusterSpec::peer_proxy)")
            }
            _ => None,
        }
    }
}

/// The schedule's shape.
#[derive(Clone, Debug)]
pub struct NemesisConfig {
    pub faults: Vec<Fault>,
    /// Quiet time between faults, drawn uniformly, in ms.
    pub interval_ms: (u64, u64),
    /// How long a fault lasts before it is undone, in ms.
    pub duration_ms: (u64, u64),
    /// Inject the faults in the listed order (cycling) instead of drawing them at random.
    pub in_order: bool,
}

impl NemesisConfig {
    pub fn new(faults: &[Fault]) -> NemesisConfig {
        NemesisConfig {
            faults: faults.to_vec(),
            interval_ms: (300, 1_500),
            duration_ms: (500, 3_000),
            in_order: false,
        }
    }
}

/// Injects faults into `cluster` until `until`, then heals it. Returns the log of what it
/// did; an error means a step failed (a node that would not restart, a command that
/// failed) — the run fails with it.
pub fn run_nemesis(
    cluster: &mut Cluster,
    config: &NemesisConfig,
    seed: u64,
    origin: Instant,
    until: Instant,
) -> (Vec<String>, Result<(), String>) {
    let mut nemesis = Nemesis {
        rng: SmallRng::seed_from_u64(seed),
        log: Vec::new(),
        origin,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
    };
    let faults: Vec<Fault> = config
        .faults
        .iter()
        .copied()
        .filter(|f| match f.unsupported_by(cluster) {
            Some(why) => {
                nemesis.note(&format!("{f:?} skipped: {why}"));
                false
            }
            None => true,
        })
        .collect();
    let mut result = Ok(());
    let mut injected = 0usize;
    while !faults.is_empty() && Instant::now() < until {
        let quiet = nemesis
            .rng
            .gen_range(config.interval_ms.0..=config.interval_ms.1);
        std::thread::sleep(Duration::from_millis(quiet));
        if Instant::now() >= until {
            break;
        }
        let fault = if config.in_order {
            faults[injected % faults.len()]
        } else {
            *faults.choose(&mut nemesis.rng).expect("faults")
        };
        injected += 1;
        let lasting = Duration::from_millis(
            nemesis
                .rng
                .gen_range(config.duration_ms.0..=config.duration_ms.1),
        );
        if let Err(error) = nemesis.inject(cluster, fault, lasting) {
            nemesis.note(&format!("{fault:?} FAILED: {error}"));
            result = Err(format!("{fault:?}: {error}"));
            break;
        }
    }
    nemesis.note("healing");
    if let Err(error) = cluster.heal() {
        nemesis.note(&format!("healing FAILED: {error}"));
        if result.is_ok() {
            result = Err(format!("healing: {error}"));
        }
    }
    (nemesis.log, result)
}

struct Nemesis {
    rng: SmallRng,
    log: Vec<String>,
    origin: Instant,
    runtime: tokio::runtime::Runtime,
}

impl Nemesis {
    fn note(&mut self, what: &str) {
        let at = self.origin.elapsed().as_millis();
        self.log.push(format!("{at:>7}ms {what}"));
    }

    fn leader(&self, cluster: &Cluster) -> Option<u64> {
        self.runtime
            .block_on(cluster.view().leader())
            .map(|(id, _)| id)
    }

    fn random_running(&mut self, cluster: &Cluster) -> Option<u64> {
        let running: Vec<u64> = cluster
            .ids()
            .into_iter()
            .filter(|&id| cluster.is_running(id))
            .collect();
        running.choose(&mut self.rng).copied()
    }

    fn inject(
        &mut self,
        cluster: &mut Cluster,
        fault: Fault,
        lasting: Duration,
    ) -> Result<(), String> {
        let ids = cluster.ids();
        let majority = ids.len() / 2 + 1;
        let ms = lasting.as_millis();
        match fault {
            Fault::KillLeader | Fault::KillRandom => {
                let victim = if fault == Fault::KillLeader {
                    self.leader(cluster)
                } else {
                    self.random_running(cluster)
                };
                let Some(victim) = victim else {
                    self.note(&format!("{fault:?}: no target, skipped"));
                    return Ok(());
                };
                self.note(&format!("{fault:?}: kill -9 n{victim}, restart in {ms}ms"));
                cluster.kill9(victim);
                std::thread::sleep(lasting);
                cluster.restart(victim)?;
                self.note(&format!("restarted n{victim}"));
            }
            Fault::IsolateLeader => {
                let Some(leader) = self.leader(cluster) else {
                    self.note("IsolateLeader: no leader, skipped");
                    return Ok(());
                };
                self.note(&format!("IsolateLeader: n{leader} cut off for {ms}ms"));
                cluster.faults().isolate(leader)?;
                std::thread::sleep(lasting);
                cluster.faults().heal()?;
                self.note("healed");
            }
            Fault::PartitionRandom | Fault::PartitionLeaderMinority => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(&mut self.rng);
                let small = self.rng.gen_range(1..majority);
                if fault == Fault::PartitionLeaderMinority {
                    if let Some(leader) = self.leader(cluster) {
                        let at = shuffled.iter().position(|&n| n == leader).expect("member");
                        shuffled.swap(0, at);
                    }
                }
                let (minority, rest) = shuffled.split_at(small);
                let groups = [minority.to_vec(), rest.to_vec()];
                self.note(&format!("{fault:?}: {groups:?} for {ms}ms"));
                cluster.faults().partition(&groups)?;
                std::thread::sleep(lasting);
                cluster.faults().heal()?;
                self.note("healed");
            }
            Fault::CutOneWay => {
                let leader = self.leader(cluster);
                let from = match leader {
                    Some(leader) if self.rng.gen_bool(0.5) => leader,
                    _ => *ids.choose(&mut self.rng).expect("ids"),
                };
                let others: Vec<u64> = ids.iter().copied().filter(|&n| n != from).collect();
                let to = *others.choose(&mut self.rng).expect("others");
                self.note(&format!(
                    "CutOneWay: n{from} -> n{to} for {ms}ms (leader {leader:?})"
                ));
                cluster.faults().cut_one_way(from, to)?;
                std::thread::sleep(lasting);
                cluster.faults().heal()?;
                self.note("healed");
            }
            Fault::PacketLoss => {
                let percent = self.rng.gen_range(5..=40);
                self.note(&format!("PacketLoss: {percent}% on every node for {ms}ms"));
                cluster.faults().lose(&ids, percent)?;
                std::thread::sleep(lasting);
                cluster.faults().heal()?;
                self.note("healed");
            }
            Fault::LinkDown => {
                let victim = *ids.choose(&mut self.rng).expect("ids");
                self.note(&format!("LinkDown: n{victim} for {ms}ms"));
                cluster.set_link(victim, false)?;
                std::thread::sleep(lasting);
                cluster.set_link(victim, true)?;
                self.note("link up");
            }
            Fault::PauseLeader => {
                let Some(leader) = self.leader(cluster) else {
                    self.note("PauseLeader: no leader, skipped");
                    return Ok(());
                };
                // Past the lease and long enough for the others to elect and commit.
                let election_max = cluster.spec.election_timeout_ms.1;
                let pause = lasting.max(Duration::from_millis(4 * election_max));
                self.note(&format!(
                    "PauseLeader: SIGSTOP n{leader} for {}ms",
                    pause.as_millis()
                ));
                cluster.pause(leader);
                std::thread::sleep(pause);
                cluster.resume(leader);
                self.note(&format!("SIGCONT n{leader}"));
            }
            Fault::PowerLossOne | Fault::PowerLossMajority => {
                let mut victims = ids.clone();
                victims.shuffle(&mut self.rng);
                victims.truncate(if fault == Fault::PowerLossOne {
                    1
                } else {
                    majority
                });
                victims.sort_unstable();
                self.note(&format!("{fault:?}: pulling the plug on {victims:?}"));
                cluster.power_loss(&victims)?;
                std::thread::sleep(lasting.min(Duration::from_millis(500)));
                for &id in &victims {
                    cluster
                        .restart(id)
                        .map_err(|e| format!("n{id} did not come back after power loss: {e}"))?;
                }
                self.note(&format!("restarted {victims:?} from their cut images"));
            }
            Fault::RollingRestart => {
                self.note("RollingRestart: SIGTERM and restart each node in turn");
                for &id in &ids {
                    if !cluster.is_running(id) {
                        continue;
                    }
                    if let Err(error) = cluster.stop(id) {
                        return Err(format!("graceful stop: {error}"));
                    }
                    cluster.restart(id)?;
                    self.wait_ready(cluster, id, Duration::from_secs(10));
                }
                self.note("rolling restart done");
            }
            Fault::WipeAll => {
                self.note("WipeAll: kill -9 every node, delete its data, restart");
                for &id in &ids {
                    cluster.kill9(id);
                }
                for &id in &ids {
                    cluster.wipe(id)?;
                    cluster.restart(id)?;
                }
            }
            Fault::PeerLatency => {
                let proxy = cluster.proxy().expect("checked by unsupported_by").clone();
                let min = self.rng.gen_range(0..=20);
                let max = min + self.rng.gen_range(5..=80);
                self.note(&format!("PeerLatency: {min}..{max}ms per chunk on every peer link for {ms}ms, with resets"));
                proxy.set_delay_all(min, max);
                std::thread::sleep(lasting / 2);
                proxy.reset_all();
                std::thread::sleep(lasting / 2);
                proxy.calm();
                self.note("latency removed");
            }
        }
        Ok(())
    }

    /// Waits (up to `timeout`) until node `id` answers `/readyz`.
    fn wait_ready(&mut self, cluster: &Cluster, id: u64, timeout: Duration) {
        let endpoint = cluster.endpoint(id);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ready = self.runtime.block_on(crate::http::request(
                &endpoint,
                "GET",
                "/readyz",
                None,
                Duration::from_millis(300),
            ));
            if matches!(ready, Ok(ref r) if r.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.note(&format!("n{id} was not ready within {timeout:?}"));
    }
}
