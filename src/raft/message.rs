//! The messages Raft peers exchange, and the log entries they carry.
//!
//! These are the wire types: serde-derived, bincode-encoded by the transport. Every message
//! carries the term it was issued in (in the envelope), so a receiver can drop what belongs to
//! a term it has moved past before looking at the body.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::raft::read::ReadLevel;
use crate::types::{LogId, LogIndex, NodeId, Term};

/// One log entry. `log_id` is assigned by the leader that created it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log_id: LogId,
    pub payload: EntryPayload,
}

/// What an entry holds. The numbering of [`EntryPayload::kind`] is stored in the WAL; never
/// renumber a variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// Appended by every new leader at the start of its term (Raft §8): committing it commits
    /// everything before it, and it lets the leader learn its commit index promptly.
    Noop,
    /// A batch of stream commands, for the stream state machine.
    Command(Bytes),
    /// An opaque command for the embedding program's own state machine.
    Application(Bytes),
}

impl EntryPayload {
    pub const KIND_NOOP: u8 = 0;
    pub const KIND_COMMAND: u8 = 1;
    pub const KIND_APPLICATION: u8 = 2;

    /// The kind byte stored next to the payload in the WAL.
    pub fn kind(&self) -> u8 {
        match self {
            EntryPayload::Noop => Self::KIND_NOOP,
            EntryPayload::Command(_) => Self::KIND_COMMAND,
            EntryPayload::Application(_) => Self::KIND_APPLICATION,
        }
    }

    /// The payload bytes as stored in the WAL (empty for a no-op).
    pub fn bytes(&self) -> &[u8] {
        match self {
            EntryPayload::Noop => &[],
            EntryPayload::Command(bytes) | EntryPayload::Application(bytes) => bytes,
        }
    }

    /// Rebuilds a payload from its stored kind and bytes; `None` for an unknown kind.
    pub fn from_stored(kind: u8, bytes: Bytes) -> Option<EntryPayload> {
        match kind {
            Self::KIND_NOOP => Some(EntryPayload::Noop),
            Self::KIND_COMMAND => Some(EntryPayload::Command(bytes)),
            Self::KIND_APPLICATION => Some(EntryPayload::Application(bytes)),
            _ => None,
        }
    }
}

impl Entry {
    /// The payload size, which is what in-flight and uncommitted byte limits count.
    pub fn payload_bytes(&self) -> u64 {
        self.payload.bytes().len() as u64
    }
}

/// A message between two peers. `term` is the sender's term when it sent it, except for a
/// PreVote request, which carries the term the sender *would* campaign in (as in etcd-raft):
/// a PreVote never changes anyone's term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMessage {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    VoteRequest(VoteRequest),
    VoteResponse(VoteResponse),
    AppendEntries(AppendEntries),
    AppendEntriesResponse(AppendEntriesResponse),
    Heartbeat(Heartbeat),
    HeartbeatResponse(HeartbeatResponse),
    ReadIndexRequest(ReadIndexRequest),
    ReadIndexResponse(ReadIndexResponse),
    /// The leader hands leadership to the receiver: campaign now (thesis §3.10).
    TimeoutNow,
}

impl MessageBody {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            MessageBody::VoteRequest(r) if r.pre_vote => "pre_vote_request",
            MessageBody::VoteRequest(_) => "vote_request",
            MessageBody::VoteResponse(r) if r.pre_vote => "pre_vote_response",
            MessageBody::VoteResponse(_) => "vote_response",
            MessageBody::AppendEntries(_) => "append_entries",
            MessageBody::AppendEntriesResponse(_) => "append_entries_response",
            MessageBody::Heartbeat(_) => "heartbeat",
            MessageBody::HeartbeatResponse(_) => "heartbeat_response",
            MessageBody::ReadIndexRequest(_) => "read_index_request",
            MessageBody::ReadIndexResponse(_) => "read_index_response",
            MessageBody::TimeoutNow => "timeout_now",
        }
    }
}

/// RequestVote (Raft §5.2), or a PreVote probe (thesis §9.6) when `pre_vote` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    pub pre_vote: bool,
    /// The candidate's last log entry, for the up-to-date check (§5.4.1).
    pub last_log: LogId,
    /// The candidate campaigns because the leader handed leadership to it (thesis §3.10):
    /// voters grant even though they still hear from that leader.
    pub transfer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    pub pre_vote: bool,
    pub granted: bool,
}

/// AppendEntries (Raft §5.3). Heartbeats are a separate message so that they never wait behind
/// log writes; an AppendEntries always carries the consistency check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    /// The entry just before `entries`; the follower must hold it to accept them.
    pub prev: LogId,
    /// Contiguous entries starting at `prev.index + 1`, with non-decreasing terms.
    pub entries: Vec<Entry>,
    /// The leader's commit index when it sent this.
    pub leader_commit: LogIndex,
}

impl AppendEntries {
    /// The last index this message covers: what a success response acknowledges.
    pub fn last_index(&self) -> LogIndex {
        self.prev.index + self.entries.len() as u64
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendEntriesResponse {
    /// The follower's log matches the leader's through `match_index`, durably.
    Success { match_index: LogIndex },
    /// The consistency check failed for the request whose `prev.index` was `rejected_prev`.
    Reject {
        rejected_prev: LogIndex,
        hint: ConflictHint,
    },
}

/// Where the leader should look next after a rejected AppendEntries, so that it skips back a
/// whole term per round trip rather than one entry (Raft §5.3, the optimization at its end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictHint {
    /// The follower's log ends before `prev`: it is `last_index` long.
    LogTooShort { last_index: LogIndex },
    /// The follower holds `term` at `prev.index`, and its first entry of that term is at
    /// `first_index`.
    TermMismatch { term: Term, first_index: LogIndex },
}

/// The leader's heartbeat. `commit` is `min(leader commit, follower match)`, so a follower
/// never learns a commit index beyond what it is known to hold. `round` numbers the leader's
/// heartbeat rounds; responses echo it, which is how the leader confirms leadership for
/// CheckQuorum, ReadIndex and the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub commit: LogIndex,
    pub round: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub round: u64,
}

/// A follower asks the leader for a read index (Raft thesis §6.4), to serve a linearizable
/// read from its own state once it has applied that far. `id` is the follower's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexRequest {
    pub id: u64,
    pub level: ReadLevel,
}

/// The leader's answer: the read index, or `None` if it cannot confirm it leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexResponse {
    pub id: u64,
    pub index: Option<LogIndex>,
    /// Peer round trips the leader spent confirming it: 0 under its lease, else 1.
    pub round_trips: u32,
}
