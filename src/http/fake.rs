//! A [`LogService`] in memory, for testing the HTTP layer and the CLI without a cluster.
//!
//! It keeps real offsets, the idempotent-producer rule (same seq: the original offsets; lower
//! seq: stale) and the `expected_offset` condition, in the order `streams::append` applies
//! them (producer first, then the condition). Long-polls and tails wake on appends. Its
//! [`Mode`] makes it play a leader, a follower that names a leader (so the HTTP layer
//! forwards), a node that knows no leader, or a node without quorum. Every read is served
//! locally, at any consistency.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, LocalBoxStream, StreamExt};
use tokio::sync::watch;

use super::service::{
    AppendRequest, AppendResult, ClusterStatus, LeaderInfo, LogService, MemberStatus, ReadRequest,
    ReadResult, Record, Role, ServiceError, StreamSummary,
};
use crate::types::{LogIndex, NodeId, Offset, Term};

/// What the fake node is, for the requests that need a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serves everything itself.
    Leader,
    /// Answers appends (and reads other than `stale`) with `NotLeader` naming this URL.
    Follower { leader_http: String },
    /// Answers them with `NotLeader` and no URL.
    NoLeader,
    /// Answers them with `Unavailable`, as a leader that lost its quorum.
    NoQuorum,
}

/// The fake's term, reported in answers.
pub const FAKE_TERM: Term = Term(3);

#[derive(Default)]
struct Stream {
    /// The first offset still held: records below it were "removed by retention".
    start_offset: Offset,
    /// The records from `start_offset` on.
    records: Vec<Bytes>,
}

impl Stream {
    fn end_offset(&self) -> Offset {
        Offset(self.start_offset.0 + self.records.len() as u64)
    }
}

#[derive(Default)]
struct State {
    streams: BTreeMap<String, Stream>,
    /// Producer id → (last seq, its first and last offset).
    producers: BTreeMap<String, (u64, Offset, Offset)>,
    last_index: LogIndex,
}

/// An in-memory log service.
pub struct FakeLogService {
    mode: Mutex<Mode>,
    state: Arc<Mutex<State>>,
    /// Bumped on every append, to wake long-polls and tails.
    appended: watch::Sender<u64>,
    ready: Mutex<bool>,
    /// Delays every append, to test the request timeout.
    append_delay: Mutex<Duration>,
    /// Whether tails, like appends, need the leader (else any node serves them).
    tails_need_leader: Mutex<bool>,
}

impl FakeLogService {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode: Mutex::new(mode),
            state: Arc::default(),
            appended: watch::channel(0).0,
            ready: Mutex::new(true),
            append_delay: Mutex::new(Duration::ZERO),
            tails_need_leader: Mutex::new(false),
        }
    }

    pub fn leader() -> Self {
        Self::new(Mode::Leader)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn set_ready(&self, ready: bool) {
        *self.ready.lock().unwrap() = ready;
    }

    pub fn set_append_delay(&self, delay: Duration) {
        *self.append_delay.lock().unwrap() = delay;
    }

    /// Makes tails need the leader, as appends do, so that a follower's are forwarded.
    pub fn set_tail_forwarding(&self, forward: bool) {
        *self.tails_need_leader.lock().unwrap() = forward;
    }

    /// Simulates retention: forgets the records of `stream` below `start_offset`.
    pub fn remove_before(&self, stream: &str, start_offset: Offset) {
        let mut state = self.state.lock().unwrap();
        let stream = state.streams.entry(stream.to_string()).or_default();
        let removed = (start_offset.0.saturating_sub(stream.start_offset.0) as usize)
            .min(stream.records.len());
        stream.records.drain(..removed);
        stream.start_offset = Offset(stream.start_offset.0 + removed as u64);
    }

    /// The records of `stream` as held, for assertions.
    pub fn records(&self, stream: &str) -> Vec<Bytes> {
        let state = self.state.lock().unwrap();
        state
            .streams
            .get(stream)
            .map(|s| s.records.clone())
            .unwrap_or_default()
    }

    /// The record of `stream` at an offset, if there is one yet: what a tail polls. It
    /// shares the state, so it outlives the borrow of `self` that `subscribe` has.
    fn view(&self, stream: &str) -> impl Fn(Offset) -> Option<Bytes> + 'static {
        let (state, stream) = (self.state.clone(), stream.to_string());
        move |offset| {
            let state = state.lock().unwrap();
            let held = state.streams.get(&stream)?;
            let position = offset.0.checked_sub(held.start_offset.0)?;
            held.records.get(usize::try_from(position).ok()?).cloned()
        }
    }

    /// `Err` if this node may not serve what needs a leader.
    fn check_leader(&self) -> Result<(), ServiceError> {
        match self.mode.lock().unwrap().clone() {
            Mode::Leader => Ok(()),
            Mode::Follower { leader_http } => Err(ServiceError::NotLeader {
                leader_http: Some(leader_http),
            }),
            Mode::NoLeader => Err(ServiceError::NotLeader { leader_http: None }),
            Mode::NoQuorum => Err(ServiceError::unavailable(
                "the leader cannot reach a quorum",
                Duration::from_millis(1_500),
            )),
        }
    }

    fn append_now(
        &self,
        stream: &str,
        request: AppendRequest,
    ) -> Result<AppendResult, ServiceError> {
        let mut state = self.state.lock().unwrap();
        let index = state.last_index.next();
        if let Some((id, seq)) = &request.producer {
            if let Some(&(last_seq, first_offset, last_offset)) = state.producers.get(id) {
                if *seq == last_seq {
                    return Ok(AppendResult {
                        first_offset,
                        last_offset,
                        index,
                        term: FAKE_TERM,
                    });
                }
                if *seq < last_seq {
                    return Err(ServiceError::StaleProducerSeq { last_seq });
                }
            }
        }
        let next_offset = state
            .streams
            .get(stream)
            .map_or(Offset(0), Stream::end_offset);
        if request
            .expected_offset
            .is_some_and(|expected| expected != next_offset)
        {
            return Err(ServiceError::OffsetMismatch { next_offset });
        }
        let count = request.records.len() as u64;
        assert!(count > 0, "the HTTP layer passed an empty batch");
        let entry = state.streams.entry(stream.to_string()).or_default();
        entry.records.extend(request.records);
        let (first_offset, last_offset) = (next_offset, Offset(next_offset.0 + count - 1));
        if let Some((id, seq)) = request.producer {
            state.producers.insert(id, (seq, first_offset, last_offset));
        }
        state.last_index = index;
        drop(state);
        self.appended.send_modify(|version| *version += 1);
        Ok(AppendResult {
            first_offset,
            last_offset,
            index,
            term: FAKE_TERM,
        })
    }

    fn read_now(&self, stream: &str, request: &ReadRequest) -> Result<ReadResult, ServiceError> {
        let state = self.state.lock().unwrap();
        let empty = Stream::default();
        let held = state.streams.get(stream).unwrap_or(&empty);
        if request.from < held.start_offset {
            return Err(ServiceError::OffsetOutOfRange {
                start_offset: held.start_offset,
            });
        }
        let skip = (request.from.0 - held.start_offset.0) as usize;
        let mut records = Vec::new();
        let mut bytes = 0;
        for (position, value) in held
            .records
            .iter()
            .enumerate()
            .skip(skip)
            .take(request.limit)
        {
            bytes += value.len();
            if !records.is_empty() && bytes > request.bytes_max {
                break;
            }
            let offset = Offset(held.start_offset.0 + position as u64);
            records.push(Record {
                offset,
                value: value.clone(),
            });
        }
        Ok(ReadResult {
            next_offset: Offset(request.from.0 + records.len() as u64),
            records,
            end_offset: held.end_offset(),
            start_offset: held.start_offset,
        })
    }
}

#[async_trait::async_trait(?Send)]
impl LogService for FakeLogService {
    async fn append(
        &self,
        stream: &str,
        request: AppendRequest,
    ) -> Result<AppendResult, ServiceError> {
        self.check_leader()?;
        let delay = *self.append_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.append_now(stream, request)
    }

    async fn read(&self, stream: &str, request: ReadRequest) -> Result<ReadResult, ServiceError> {
        if request.consistency != super::service::Consistency::Stale {
            self.check_leader()?;
        }
        let mut appended = self.appended.subscribe();
        let deadline = tokio::time::Instant::now() + request.wait;
        loop {
            let found = self.read_now(stream, &request)?;
            if !found.records.is_empty() || request.wait.is_zero() {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, appended.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.read_now(stream, &request),
            }
        }
    }

    fn subscribe(
        &self,
        stream: &str,
        from: Offset,
    ) -> Result<LocalBoxStream<'static, Result<Record, ServiceError>>, ServiceError> {
        if *self.tails_need_leader.lock().unwrap() {
            self.check_leader()?;
        }
        let state = self.state.lock().unwrap();
        let start_offset = state
            .streams
            .get(stream)
            .map_or(Offset(0), |s| s.start_offset);
        if from < start_offset {
            return Err(ServiceError::OffsetOutOfRange { start_offset });
        }
        drop(state);
        let view = self.view(stream);
        let appended = self.appended.subscribe();
        let records = stream::unfold(
            (from, appended, view),
            |(next, mut appended, view)| async move {
                loop {
                    if let Some(value) = view(next) {
                        let record = Record {
                            offset: next,
                            value,
                        };
                        return Some((Ok(record), (next.next(), appended, view)));
                    }
                    appended.changed().await.ok()?;
                }
            },
        );
        Ok(records.boxed_local())
    }

    async fn streams(&self) -> Result<Vec<StreamSummary>, ServiceError> {
        let state = self.state.lock().unwrap();
        let summary = |(name, stream): (&String, &Stream)| StreamSummary {
            name: name.clone(),
            start_offset: stream.start_offset,
            end_offset: stream.end_offset(),
        };
        Ok(state.streams.iter().map(summary).collect())
    }

    async fn cluster(&self) -> ClusterStatus {
        let mode = self.mode.lock().unwrap().clone();
        let last_index = self.state.lock().unwrap().last_index;
        let leader = match &mode {
            Mode::Leader | Mode::NoQuorum => Some(LeaderInfo {
                id: NodeId(1),
                http: "http://127.0.0.1:7001".into(),
            }),
            Mode::Follower { leader_http } => Some(LeaderInfo {
                id: NodeId(1),
                http: leader_http.clone(),
            }),
            Mode::NoLeader => None,
        };
        let is_leader = matches!(mode, Mode::Leader | Mode::NoQuorum);
        let member = |id: u64, lag: u64| MemberStatus {
            id: NodeId(id),
            voter: true,
            match_index: is_leader.then_some(LogIndex(last_index.0.saturating_sub(lag))),
            lag: is_leader.then_some(lag),
            last_ack: is_leader.then_some(Duration::from_millis(12 * lag)),
        };
        ClusterStatus {
            node_id: if is_leader { NodeId(1) } else { NodeId(2) },
            role: if is_leader {
                Role::Leader
            } else {
                Role::Follower
            },
            term: FAKE_TERM,
            leader,
            commit_index: last_index,
            applied_index: last_index,
            members: vec![member(1, 0), member(2, 0), member(3, 2)],
        }
    }

    async fn ready(&self) -> bool {
        *self.ready.lock().unwrap()
    }

    /// A fake leads alone: leadership can only stay where it is.
    async fn transfer_leadership(&self, to: NodeId) -> Result<(), ServiceError> {
        match to {
            NodeId(1) => Ok(()),
            other => Err(ServiceError::BadRequest(format!(
                "node {other} is not a voter"
            ))),
        }
    }
}

/// A fake node's HTTP API served on a loopback port, for tests that need real sockets
/// (forwarding, the CLI). Stops when dropped. Must be made inside an actix system.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub service: Arc<FakeLogService>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeServer {
    pub fn start(service: FakeLogService, context: super::HttpContext) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let service = Arc::new(service);
        let shared = service.clone();
        let make_service = move || shared.clone() as Arc<dyn LogService>;
        let server =
            super::server::start(listener, 1, context, make_service).expect("the server starts");
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            url,
            service,
            handle,
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Stopping is asynchronous; the test's system ends it in any case.
        let stop = self.handle.stop(false);
        actix_rt::spawn(stop);
    }
}
