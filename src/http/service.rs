//! The interface between the HTTP layer and the node behind it: what a handler may ask of the
//! log, and the typed errors it may get back.
//!
//! The HTTP layer owns no Raft state (DESIGN.md, layer 4). Everything it knows about streams,
//! leaders and commits comes through [`LogService`], which the node implements and the tests
//! fake (`fake.rs`). The types here speak the service's vocabulary (`Offset`, `LogIndex`,
//! `Term`, `Bytes`); turning them into API.md's JSON is `wire.rs`'s job, and turning
//! [`ServiceError`] into a status and an error body is `errors.rs`'s, in one place.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::LocalBoxStream;

use crate::types::{LogIndex, NodeId, Offset, Term};

/// What the HTTP layer needs from a node. One value serves every request of a node; each
/// HTTP worker thread holds a clone of the `Arc` it is given.
///
/// The futures are not `Send` (`?Send`): actix-web runs every request of a worker on that
/// worker's thread, so an implementation may hold `Rc`s and actor addresses freely.
///
/// Leadership: a method that needs the leader and runs on a follower answers
/// [`ServiceError::NotLeader`]; the HTTP layer then forwards the request itself (`forward.rs`),
/// so an implementation never proxies.
///
/// Time: the HTTP layer bounds every call by `request_timeout_ms` (plus `wait` for a
/// long-poll) and answers 503 when that runs out, so an implementation may wait as long as it
/// likes, but must stop waiting when its future is dropped.
#[async_trait::async_trait(?Send)]
pub trait LogService: 'static {
    /// Appends a batch to `stream`. Resolves once the batch is committed (fsync'd on a
    /// majority of voters) and applied, with its offsets, or with why it was not written.
    ///
    /// The HTTP layer has already checked the stream name, that the batch is not empty, and
    /// the size limits; the implementation owns producer dedup and `expected_offset`
    /// (which are replicated state: see `streams::producers`).
    async fn append(
        &self,
        stream: &str,
        request: AppendRequest,
    ) -> Result<AppendResult, ServiceError>;

    /// Reads committed records of `stream` at the requested consistency.
    ///
    /// A stream never written reads as empty with every offset 0. With `wait` > 0 and no
    /// record at `from` yet, waits up to `wait` for one to commit, then answers (possibly
    /// with no records). `from` below the stream's start: [`ServiceError::OffsetOutOfRange`].
    async fn read(&self, stream: &str, request: ReadRequest) -> Result<ReadResult, ServiceError>;

    /// The committed records of `stream` from `from` on, in offset order, as they commit:
    /// the source of the SSE tail.
    ///
    /// Bounded: a consumer that falls too far behind is not buffered for ever; its stream
    /// yields one `Err` (typically [`ServiceError::Unavailable`]) and ends. The stream also
    /// ends when the node stops. `from` below the start: [`ServiceError::OffsetOutOfRange`],
    /// either at once or as the stream's first item.
    fn subscribe(
        &self,
        stream: &str,
        from: Offset,
    ) -> Result<LocalBoxStream<'static, Result<Record, ServiceError>>, ServiceError>;

    /// Every stream ever written, with its bounds, sorted by name.
    async fn streams(&self) -> Result<Vec<StreamSummary>, ServiceError>;

    /// This node's view of the cluster, for `/v1/cluster`, `raftlog status` and the gauges of
    /// `/metrics`. Never fails: a node always knows something about itself.
    async fn cluster(&self) -> ClusterStatus;

    /// Whether this node can serve: it knows a leader and has applied up to the commit index
    /// it knows of (`/readyz`).
    async fn ready(&self) -> bool;

    /// Hands leadership to voter `to` and resolves once this node sees it lead; this node
    /// must lead ([`ServiceError::NotLeader`] otherwise, which the HTTP layer forwards).
    async fn transfer_leadership(&self, to: NodeId) -> Result<(), ServiceError>;
}

/// One append: a non-empty batch of records for one stream, written all or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// The record values, in the order they get offsets.
    pub records: Vec<Bytes>,
    /// `(producer id, seq)` for an idempotent append: a retry with the same pair gets the
    /// original offsets and writes nothing; a lower `seq` is refused as stale.
    pub producer: Option<(String, u64)>,
    /// For a conditional append: write only if the stream's next offset is this one.
    pub expected_offset: Option<Offset>,
}

/// Where a committed append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The offset of the batch's first record.
    pub first_offset: Offset,
    /// The offset of the batch's last record (`first_offset` for a single record).
    pub last_offset: Offset,
    /// The Raft log entry that carried the batch.
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
}

pub use crate::embed::Consistency;

/// One read of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The first offset wanted.
    pub from: Offset,
    /// At most this many records (at least 1; the HTTP layer clamps it to `read_records_max`).
    pub limit: usize,
    /// Stop before the values add up to more than this many bytes, except that the first
    /// record is always returned, whatever its size, so a reader can always make progress.
    pub bytes_max: usize,
    /// How fresh the answer must be.
    pub consistency: Consistency,
    /// How long to wait for a record at `from` when there is none yet; zero answers at once.
    pub wait: Duration,
}

/// One committed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its offset in its stream.
    pub offset: Offset,
    /// Its value, exactly as appended.
    pub value: Bytes,
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Contiguous records from the requested `from`, possibly none.
    pub records: Vec<Record>,
    /// Where the next read should start: after the last record returned, or `from` if none.
    pub next_offset: Offset,
    /// The offset after the stream's last committed record (0 for a stream never written).
    pub end_offset: Offset,
    /// The stream's first offset still held (retention may have removed earlier ones).
    pub start_offset: Offset,
}

/// A stream's name and bounds, for `/v1/streams`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub name: String,
    /// The first offset still held.
    pub start_offset: Offset,
    /// The offset after the last committed record.
    pub end_offset: Offset,
}

/// A node's role, as `/v1/cluster` reports it. A pre-candidate reports as a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
}

/// The leader this node knows of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub id: NodeId,
    /// Its base HTTP URL (`[[members]] http` in its config), e.g. `http://127.0.0.1:7001`.
    pub http: String,
}

/// One member of the cluster. The progress fields are known only on the leader (`None`
/// elsewhere); the leader's own row has its own last index as `match_index` and lag 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub voter: bool,
    /// The highest log index known to be on that member.
    pub match_index: Option<LogIndex>,
    /// How many entries the member is behind the leader's last index.
    pub lag: Option<u64>,
    /// How long ago the member last answered the leader.
    pub last_ack: Option<Duration>,
}

/// A node's view of the cluster (API.md's `/v1/cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<LeaderInfo>,
    pub commit_index: LogIndex,
    pub applied_index: LogIndex,
    pub members: Vec<MemberStatus>,
}

/// Why a request was not served. Each variant has one API error code, status and set of
/// fields, chosen in `errors.rs` and nowhere else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// This node is not the leader. With the leader's URL the HTTP layer forwards the request
    /// there (once); without one it answers 503 `unavailable`.
    #[error("this node is not the leader")]
    NotLeader { leader_http: Option<String> },
    /// No leader, no quorum, a node shutting down, a full queue: try again after
    /// `retry_after`. 503 with `Retry-After`.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    /// `expected_offset` was not the stream's next offset, `next_offset`. Nothing written.
    #[error("expected_offset does not match the stream's next offset {}", next_offset.0)]
    OffsetMismatch { next_offset: Offset },
    /// The producer's `seq` is below its last applied one, `last_seq`. Nothing written.
    #[error("the producer's seq is below its last seq {last_seq}")]
    StaleProducerSeq { last_seq: u64 },
    /// A read below the stream's first held offset, `start_offset`.
    #[error("the offset is below the stream's start offset {}", start_offset.0)]
    OffsetOutOfRange { start_offset: Offset },
    /// Over a configured size limit: `limit` is the config key (e.g. `record_bytes_max`),
    /// `message` the sentence saying by how much.
    #[error("{message}")]
    TooLarge { limit: String, message: String },
    /// The request itself is wrong, for the reason given (one sentence).
    #[error("{0}")]
    BadRequest(String),
    /// A bug or a broken invariant on the server; never the client's fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// A 503 for `reason`, to retry after `retry_after`.
    pub fn unavailable(reason: impl Into<String>, retry_after: Duration) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            retry_after,
        }
    }
}
