//! A broker that embeds a raftlog node as its share of the controller quorum. It registers
//! and heartbeats through the quorum, and while its node leads it is the controller: it
//! fences brokers whose session expired and assigns partitions, every decision proposed
//! fenced by its term so that none can land after it lost leadership.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use raftlog::embed::{ClusterConfig, Error, Proposed, Raftlog, RaftlogNode};
use raftlog::types::{NodeId, Term};
use tokio::task::JoinHandle;

use crate::metadata::{self, BrokerId, Command, Metadata, MetadataMachine};

/// How brokers reach each other's nodes. In a real deployment a broker sends its request to
/// the active controller over the network; in this one-process example the "network" is
/// this map of handles.
pub type Directory = Arc<Mutex<BTreeMap<BrokerId, Raftlog>>>;

#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub cluster: ClusterConfig,
    pub data_dir: PathBuf,
    /// The partitions the controller must keep assigned.
    pub partitions: Vec<String>,
    pub replication: usize,
    pub heartbeat_interval: Duration,
    /// A broker that has not heartbeated for this long is fenced.
    pub session_timeout: Duration,
}

impl BrokerSettings {
    /// The example's settings: six partitions with two replicas each, heartbeats every
    /// 100 ms, a one-second session.
    pub fn example(cluster: ClusterConfig, data_dir: PathBuf) -> BrokerSettings {
        BrokerSettings {
            cluster,
            data_dir,
            partitions: (0..6).map(|p| format!("orders-{p}")).collect(),
            replication: 2,
            heartbeat_interval: Duration::from_millis(100),
            session_timeout: Duration::from_millis(1000),
        }
    }
}

/// What the metadata looked like when a controller took over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    pub controller: BrokerId,
    pub term: Term,
    pub metadata: Metadata,
}

pub struct Broker {
    pub id: BrokerId,
    pub log: Raftlog,
    /// The metadata as this broker's node has applied it.
    pub metadata: Arc<Mutex<Metadata>>,
    node: RaftlogNode,
    directory: Directory,
    tasks: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Starts broker `id`: its node (recovering whatever its data directory holds), then its
    /// registration and heartbeats, and its controller duty. Every takeover it performs is
    /// recorded in `takeovers`.
    pub async fn start(
        id: BrokerId,
        settings: &BrokerSettings,
        directory: Directory,
        takeovers: Arc<Mutex<Vec<Takeover>>>,
    ) -> Result<Broker, Error> {
        let data_dir = settings.data_dir.join(format!("broker-{id}"));
        let config = settings.cluster.node(id, data_dir)?;
        let machine = MetadataMachine::default();
        let metadata = machine.0.clone();
        let node = RaftlogNode::builder(config)
            .state_machine(machine)
            .start()
            .await?;
        let log = node.handle();
        directory.lock().unwrap().insert(id, log.clone());
        let heartbeats = tokio::spawn(heartbeat(id, settings.clone(), directory.clone()));
        let control = tokio::spawn(control(
            id,
            log.clone(),
            metadata.clone(),
            settings.clone(),
            takeovers,
        ));
        Ok(Broker {
            id,
            log,
            metadata,
            node,
            directory,
            tasks: vec![heartbeats, control],
        })
    }

    /// Stops heartbeating and controlling; the node runs on.
    pub fn quiesce(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Stops the broker and its node, as when its process is killed: it heartbeats no more.
    pub async fn stop(self) {
        self.quiesce();
        self.directory.lock().unwrap().remove(&self.id);
        self.node.shutdown().await;
    }
}

pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_millis() as u64)
}

/// Sends `command` to whichever node leads, as a broker sends a request to the active
/// controller: follows the leader as it changes, retries while there is none, and gives up
/// after `patience`.
pub async fn submit(
    directory: &Directory,
    command: &Command,
    patience: Duration,
) -> Result<Proposed, Error> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut last_error = Error::NotLeader {
        leader: None,
        term: Term(0),
    };
    while tokio::time::Instant::now() < deadline {
        for log in leaders(directory) {
            match log.propose(metadata::encode(command)).await {
                Ok(proposed) => return Ok(proposed),
                Err(error @ (Error::NotLeader { .. } | Error::Busy | Error::NotCommitted)) => {
                    last_error = error
                }
                Err(error) => return Err(error),
            }
        }
        // Between leaders: an election takes a few hundred milliseconds.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last_error)
}

/// The handles of the nodes some node names as leader.
fn leaders(directory: &Directory) -> Vec<Raftlog> {
    let directory = directory.lock().unwrap();
    let named: Vec<NodeId> = directory
        .values()
        .filter_map(|log| log.leader_changes().borrow().leader)
        .collect();
    named
        .into_iter()
        .filter_map(|id| directory.get(&id.0).cloned())
        .collect()
}

async fn heartbeat(id: BrokerId, settings: BrokerSettings, directory: Directory) {
    let mut ticks = tokio::time::interval(settings.heartbeat_interval);
    let mut registered = false;
    loop {
        ticks.tick().await;
        let command = if registered {
            Command::Heartbeat {
                broker: id,
                at_ms: now_ms(),
            }
        } else {
            Command::Register {
                broker: id,
                at_ms: now_ms(),
            }
        };
        // A missed heartbeat is retried at the next tick; the session timeout allows several.
        // A heartbeat refused (this broker was fenced meanwhile) registers it again.
        if let Ok(proposed) = submit(&directory, &command, settings.heartbeat_interval).await {
            registered = proposed.output == "ok";
        }
    }
}

/// The controller duty: whenever this node leads (and so has applied everything committed
/// before its term), plan from the metadata and propose the plan, fenced by the term.
async fn control(
    id: BrokerId,
    log: Raftlog,
    metadata: Arc<Mutex<Metadata>>,
    settings: BrokerSettings,
    takeovers: Arc<Mutex<Vec<Takeover>>>,
) {
    let mut leader = log.leader_changes();
    loop {
        let view = *leader.borrow_and_update();
        if view.leader == Some(NodeId(id)) {
            let snapshot = metadata.lock().unwrap().clone();
            takeovers.lock().unwrap().push(Takeover {
                controller: id,
                term: view.term,
                metadata: snapshot,
            });
            lead(&log, &metadata, &settings, view.term, &mut leader).await;
        }
        if leader.changed().await.is_err() {
            return; // the node stopped
        }
    }
}

/// Acts as controller of `term` until the leader changes.
async fn lead(
    log: &Raftlog,
    metadata: &Mutex<Metadata>,
    settings: &BrokerSettings,
    term: Term,
    leader: &mut tokio::sync::watch::Receiver<raftlog::embed::LeaderView>,
) {
    let mut ticks = tokio::time::interval(settings.heartbeat_interval);
    loop {
        tokio::select! {
            _ = leader.changed() => return,
            _ = ticks.tick() => {}
        }
        let commands = metadata::plan(
            &metadata.lock().unwrap(),
            now_ms(),
            settings.session_timeout.as_millis() as u64,
            &settings.partitions,
            settings.replication,
        );
        for command in commands {
            match log.propose_in_term(metadata::encode(&command), term).await {
                Ok(_) => {}
                // No longer the leader of `term`: the next controller takes it from here.
                Err(Error::NotLeader { .. }) => return,
                // Not committed or busy: the next tick plans again from what did commit.
                Err(_) => break,
            }
        }
    }
}
