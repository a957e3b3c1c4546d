//! The controller's replicated metadata — brokers and partition assignments — as a raftlog
//! [`StateMachine`], and the controller's decisions as a pure function of it ([`plan`]).
//!
//! Shared by the example (`main.rs`) and its test (`tests/embedded_controller.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raftlog::embed::StateMachine;
use raftlog::types::LogIndex;
use serde::{Deserialize, Serialize};

pub type BrokerId = u64;

/// A change to the metadata. Brokers propose `Register` and `Heartbeat`; the controller
/// proposes `Fence` and `Assign`. Every time in a command was read by its proposer: applying
/// must not read a clock, or the nodes would disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Register {
        broker: BrokerId,
        at_ms: u64,
    },
    Heartbeat {
        broker: BrokerId,
        at_ms: u64,
    },
    /// The broker missed its session: it leads nothing until it registers again.
    Fence {
        broker: BrokerId,
    },
    Assign {
        partition: String,
        leader: BrokerId,
        replicas: Vec<BrokerId>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    pub last_heartbeat_ms: u64,
    pub fenced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub leader: BrokerId,
    pub replicas: Vec<BrokerId>,
    /// Bumped on every reassignment, as Kafka's leader epoch.
    pub epoch: u64,
}

/// The whole replicated metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub brokers: BTreeMap<BrokerId, BrokerRecord>,
    pub partitions: BTreeMap<String, Assignment>,
    /// The log index of the last command applied.
    pub applied: u64,
}

impl Metadata {
    fn apply(&mut self, command: Command) -> Result<(), String> {
        match command {
            Command::Register { broker, at_ms } => {
                self.brokers.insert(
                    broker,
                    BrokerRecord {
                        last_heartbeat_ms: at_ms,
                        fenced: false,
                    },
                );
            }
            Command::Heartbeat { broker, at_ms } => {
                let record = self
                    .brokers
                    .get_mut(&broker)
                    .filter(|r| !r.fenced)
                    .ok_or_else(|| format!("broker {broker} is not registered"))?;
                record.last_heartbeat_ms = record.last_heartbeat_ms.max(at_ms);
            }
            Command::Fence { broker } => {
                let record = self.brokers.get_mut(&broker).ok_or("no such broker")?;
                record.fenced = true;
            }
            Command::Assign {
                partition,
                leader,
                replicas,
            } => {
                let epoch = self.partitions.get(&partition).map_or(0, |a| a.epoch + 1);
                self.partitions.insert(
                    partition,
                    Assignment {
                        leader,
                        replicas,
                        epoch,
                    },
                );
            }
        }
        Ok(())
    }

    pub fn live_brokers(&self) -> Vec<BrokerId> {
        let live = self.brokers.iter().filter(|(_, r)| !r.fenced);
        live.map(|(&id, _)| id).collect()
    }
}

/// The metadata as a raftlog state machine. The program keeps a clone of the `Arc` to read
/// the state (after [`Raftlog::linearize`](raftlog::embed::Raftlog::linearize) for a
/// linearizable read).
#[derive(Clone, Default)]
pub struct MetadataMachine(pub Arc<Mutex<Metadata>>);

impl StateMachine for MetadataMachine {
    /// Answers `ok` or the reason the command was refused (refused commands change
    /// nothing, on every node alike).
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Bytes {
        let mut metadata = self.0.lock().unwrap();
        let result = serde_json::from_slice(command)
            .map_err(|e| format!("not a command: {e}"))
            .and_then(|command| metadata.apply(command));
        metadata.applied = index.0;
        match result {
            Ok(()) => Bytes::from_static(b"ok"),
            Err(reason) => Bytes::from(reason),
        }
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&*self.0.lock().unwrap()).expect("metadata serializes"))
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let metadata = serde_json::from_slice(snapshot).map_err(|e| e.to_string())?;
        *self.0.lock().unwrap() = metadata;
        Ok(())
    }
}

pub fn encode(command: &Command) -> Bytes {
    Bytes::from(serde_json::to_vec(command).expect("commands serialize"))
}

/// What the controller should propose now, given the metadata, the time, how long a broker
/// may go without a heartbeat, and the partitions that must exist: fence brokers whose
/// session expired, then give every partition without a live leader one, spreading
/// leadership over the live brokers (fewest led first, then lowest id), with up to
/// `replication` replicas.
pub fn plan(
    metadata: &Metadata,
    now_ms: u64,
    session_timeout_ms: u64,
    partitions: &[String],
    replication: usize,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut live: Vec<BrokerId> = Vec::new();
    for (&broker, record) in &metadata.brokers {
        if record.fenced {
            continue;
        }
        if now_ms.saturating_sub(record.last_heartbeat_ms) > session_timeout_ms {
            commands.push(Command::Fence { broker });
        } else {
            live.push(broker);
        }
    }
    if live.is_empty() {
        return commands;
    }
    let mut led: BTreeMap<BrokerId, usize> = live.iter().map(|&b| (b, 0)).collect();
    for assignment in metadata.partitions.values() {
        if let Some(count) = led.get_mut(&assignment.leader) {
            *count += 1;
        }
    }
    for partition in partitions {
        let current = metadata.partitions.get(partition);
        if current.is_some_and(|a| led.contains_key(&a.leader)) {
            continue;
        }
        let (&leader, _) = led
            .iter()
            .min_by_key(|(&broker, &count)| (count, broker))
            .expect("some broker is live");
        *led.get_mut(&leader).unwrap() += 1;
        let position = live.iter().position(|&b| b == leader).unwrap();
        let replicas = (0..replication.min(live.len()))
            .map(|i| live[(position + i) % live.len()])
            .collect();
        commands.push(Command::Assign {
            partition: partition.clone(),
            leader,
            replicas,
        });
    }
    commands
}
