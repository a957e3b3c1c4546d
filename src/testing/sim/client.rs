//! Simulated clients: each appends unique values to a few streams as an idempotent producer
//! (retrying on another node after a timeout or a "not leader"), reads now and then, and
//! records every attempt in the shared history.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::time::Instant;

use crate::node::{NodeHandle, ReadError, ReadFailure, SubmitError};
use crate::raft::read::ReadLevel;
use crate::streams::{self, AppendCommand, AppendOutcome, CommandBatch, StreamCommand};
use crate::testing::sim::cluster::SimCluster;
use crate::testing::{
    AppendCall, Call, ClientId, Consistency, HistoryRecorder, Outcome, ProducerSeq, ReadCall,
    RejectReason,
};
use crate::types::{MonoTime, NodeId, Offset};

#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: u64,
    pub streams: u64,
    /// Pause between a client's operations, drawn uniformly.
    pub think_time: (Duration, Duration),
    pub read_per_mille: u32,
    pub request_timeout: Duration,
    /// Attempts per logical append before the client gives up on it.
    pub attempts_max: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            clients: 4,
            streams: 2,
            think_time: (Duration::from_millis(1), Duration::from_millis(30)),
            read_per_mille: 200,
            request_timeout: Duration::from_millis(800),
            attempts_max: 3,
        }
    }
}

/// Reads ask for this many records: every stream of a run is shorter.
const READ_LIMIT: usize = 1_000_000;

pub fn stream_name(index: u64) -> String {
    format!("s{index}")
}

/// Microseconds since the run's origin on the simulation's (undrifted) clock.
pub fn history_time(origin: Instant) -> MonoTime {
    MonoTime(origin.elapsed().as_micros() as u64)
}

/// One client's loop until `until`.
pub async fn run_client(
    id: ClientId,
    seed: u64,
    workload: Workload,
    cluster: Rc<RefCell<SimCluster>>,
    recorder: HistoryRecorder,
    origin: Instant,
    until: Instant,
) {
    let mut client = Client {
        id,
        rng: SmallRng::seed_from_u64(seed),
        workload,
        cluster,
        recorder,
        origin,
        leader_hint: None,
        next_seq: 0,
    };
    while Instant::now() < until {
        let (min, max) = client.workload.think_time;
        let pause = client.rng.gen_range(min..=max);
        tokio::time::sleep(pause).await;
        if client.rng.gen_range(0..1000) < client.workload.read_per_mille {
            client.read().await;
        } else {
            client.append().await;
        }
    }
}

struct Client {
    id: ClientId,
    rng: SmallRng,
    workload: Workload,
    cluster: Rc<RefCell<SimCluster>>,
    recorder: HistoryRecorder,
    origin: Instant,
    leader_hint: Option<NodeId>,
    next_seq: u64,
}

impl Client {
    fn now(&self) -> MonoTime {
        history_time(self.origin)
    }

    /// The node to ask: the last known leader if it is running, else a random running node.
    fn target(&mut self) -> Option<NodeHandle> {
        let cluster = self.cluster.borrow();
        if let Some(handle) = self.leader_hint.and_then(|id| cluster.handle(id)) {
            return Some(handle);
        }
        let running = cluster.running();
        if running.is_empty() {
            return None;
        }
        Some(running[self.rng.gen_range(0..running.len())].clone())
    }

    async fn append(&mut self) {
        let stream = stream_name(self.rng.gen_range(0..self.workload.streams));
        let seq = self.next_seq;
        self.next_seq += 1;
        let values: Vec<Bytes> = (0..self.rng.gen_range(1..=3))
            .map(|k| Bytes::from(format!("{}-{seq}-{k}", self.id)))
            .collect();
        let producer = ProducerSeq {
            id: self.id.to_string(),
            seq,
        };
        for _ in 0..self.workload.attempts_max {
            let Some(node) = self.target() else {
                tokio::time::sleep(self.workload.request_timeout).await;
                continue;
            };
            let call = AppendCall {
                stream: stream.clone(),
                values: values.clone(),
                producer: Some(producer.clone()),
                expected_offset: None,
            };
            if self.append_once(node, call).await {
                return;
            }
            // Back off a little, as a real client would, before trying elsewhere.
            let backoff = Duration::from_millis(self.rng.gen_range(5..=30));
            tokio::time::sleep(backoff).await;
        }
    }

    /// One attempt; returns whether the logical append is settled (no retry needed).
    async fn append_once(&mut self, node: NodeHandle, call: AppendCall) -> bool {
        let producer = call.producer.clone().map(|p| streams::ProducerSeq {
            id: p.id,
            seq: p.seq,
        });
        let command = AppendCommand {
            stream: call.stream.clone(),
            records: call.values.clone(),
            producer,
            expected_offset: call.expected_offset,
        };
        let batch = CommandBatch {
            commands: vec![StreamCommand::Append(command)],
        };
        let op = self
            .recorder
            .invoke(self.id, Call::Append(call), self.now());
        let result = tokio::time::timeout(self.workload.request_timeout, node.submit(batch)).await;
        let (outcome, settled) = match result {
            Ok(Ok(applied)) => {
                self.leader_hint = Some(node.id);
                (append_outcome(applied.outcomes), true)
            }
            Ok(Err(SubmitError::NotLeader { leader, .. })) => {
                self.leader_hint = leader;
                (Outcome::Failed, false)
            }
            Ok(Err(SubmitError::Busy | SubmitError::Superseded)) => (Outcome::Failed, false),
            Ok(Err(SubmitError::NodeStopped)) | Err(_) => {
                self.leader_hint = None;
                (Outcome::Unknown, false)
            }
        };
        self.recorder.complete(op, outcome, self.now());
        settled
    }

    async fn read(&mut self) {
        let Some(node) = self.target() else {
            return;
        };
        let stream = stream_name(self.rng.gen_range(0..self.workload.streams));
        let consistency = match self.rng.gen_range(0..10) {
            0..=3 => Consistency::Linearizable,
            4..=6 => Consistency::Lease,
            _ => Consistency::Stale,
        };
        let call = ReadCall {
            stream: stream.clone(),
            from: Offset(0),
            consistency,
        };
        let op = self.recorder.invoke(self.id, Call::Read(call), self.now());
        let read = async {
            match consistency {
                Consistency::Stale => node.read_stale(&stream, Offset(0), READ_LIMIT).await.ok(),
                Consistency::Linearizable | Consistency::Lease => {
                    let level = if consistency == Consistency::Lease {
                        ReadLevel::Lease
                    } else {
                        ReadLevel::ReadIndex
                    };
                    match node
                        .read_linearizable(&stream, Offset(0), READ_LIMIT, level)
                        .await
                    {
                        Ok(read) => Some(read),
                        Err(ReadFailure::NotConfirmed(ReadError::NotLeader { leader })) => {
                            self.leader_hint = leader;
                            None
                        }
                        Err(_) => None,
                    }
                }
            }
        };
        let outcome = match tokio::time::timeout(self.workload.request_timeout, read).await {
            Ok(Some(read)) => Outcome::Read {
                records: read.records,
                end_offset: read.info.end_offset,
            },
            _ => Outcome::Failed,
        };
        self.recorder.complete(op, outcome, self.now());
    }
}

fn append_outcome(outcomes: Vec<AppendOutcome>) -> Outcome {
    let outcome = outcomes
        .into_iter()
        .next()
        .expect("one outcome per command");
    match outcome {
        AppendOutcome::Appended {
            first_offset,
            last_offset,
        }
        | AppendOutcome::Duplicate {
            first_offset,
            last_offset,
        } => Outcome::Appended {
            first_offset,
            last_offset,
        },
        AppendOutcome::StaleProducerSeq { .. } => Outcome::AppendRejected {
            reason: RejectReason::StaleProducerSeq,
        },
        AppendOutcome::OffsetMismatch { next_offset } => Outcome::AppendRejected {
            reason: RejectReason::OffsetMismatch {
                next_offset: Some(next_offset),
            },
        },
        AppendOutcome::Rejected { .. } => Outcome::AppendRejected {
            reason: RejectReason::BadRequest,
        },
    }
}
