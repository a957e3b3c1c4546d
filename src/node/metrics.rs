//! The node's Prometheus metrics: every name in one place, so the exporter's descriptions
//! and the code that records them cannot drift apart. Recording is a no-op until a recorder
//! is installed (the service installs the Prometheus one).

use std::time::Duration;

use crate::raft::election::{Role, RoleState};
use crate::raft::read::ReadLevel;
use crate::types::{LogIndex, NodeId};

pub const TERM: &str = "raftlog_term";
pub const IS_LEADER: &str = "raftlog_is_leader";
pub const LEADER_CHANGES: &str = "raftlog_leader_changes_total";
pub const COMMIT_INDEX: &str = "raftlog_commit_index";
pub const APPLIED_INDEX: &str = "raftlog_applied_index";
pub const WAL_FLUSH_SECONDS: &str = "raftlog_wal_flush_seconds";
pub const WAL_APPENDED_BYTES: &str = "raftlog_wal_appended_bytes_total";
pub const WAL_APPENDED_ENTRIES: &str = "raftlog_wal_appended_entries_total";
pub const PROPOSAL_BATCH_REQUESTS: &str = "raftlog_proposal_batch_requests";
pub const REPLICATION_LAG: &str = "raftlog_replication_lag_entries";
pub const READS: &str = "raftlog_reads_total";
pub const READ_ROUND_TRIPS: &str = "raftlog_read_round_trips_total";
pub const READ_ROUNDS: &str = "raftlog_read_rounds_total";

/// `(name, help)` for every metric above, for the exporter to describe.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (TERM, "The current Raft term of this node."),
    (IS_LEADER, "1 while this node is the leader, else 0."),
    (
        LEADER_CHANGES,
        "How many times this node saw the known leader change.",
    ),
    (
        COMMIT_INDEX,
        "The highest log index this node knows to be committed.",
    ),
    (
        APPLIED_INDEX,
        "The highest log index this node has applied.",
    ),
    (
        WAL_FLUSH_SECONDS,
        "How long each WAL flush (fdatasync) took.",
    ),
    (WAL_APPENDED_BYTES, "Payload bytes appended to the WAL."),
    (WAL_APPENDED_ENTRIES, "Entries appended to the WAL."),
    (
        PROPOSAL_BATCH_REQUESTS,
        "Append requests carried by each proposed log entry.",
    ),
    (
        REPLICATION_LAG,
        "On the leader: entries each follower is behind the leader's log.",
    ),
    (
        READS,
        "Reads served by this node, by consistency level (linearizable, lease, stale).",
    ),
    (
        READ_ROUND_TRIPS,
        "Peer round trips on the paths of this node's confirmed reads, by level: 0 for a \
         lease read under the lease, 1 for a leader's heartbeat round, 1 more when a follower \
         asks the leader. Concurrent reads share rounds; raftlog_read_rounds_total counts them.",
    ),
    (
        READ_ROUNDS,
        "Heartbeat rounds this leader started to confirm waiting reads.",
    ),
];

// Every series carries the node's id as `node`: `raftlog dev` runs several nodes in one
// process, sharing one recorder.

pub fn role_changed(node: NodeId, previous: Option<RoleState>, role: RoleState) {
    let node = node.0.to_string();
    metrics::gauge!(TERM, "node" => node.clone()).set(role.term.0 as f64);
    let leading = if role.role == Role::Leader { 1.0 } else { 0.0 };
    metrics::gauge!(IS_LEADER, "node" => node.clone()).set(leading);
    if previous.is_some_and(|p| p.leader != role.leader) && role.leader.is_some() {
        metrics::counter!(LEADER_CHANGES, "node" => node).increment(1);
    }
}

pub fn committed(node: NodeId, index: LogIndex) {
    metrics::gauge!(COMMIT_INDEX, "node" => node.0.to_string()).set(index.0 as f64);
}

pub fn applied(node: NodeId, index: LogIndex) {
    metrics::gauge!(APPLIED_INDEX, "node" => node.0.to_string()).set(index.0 as f64);
}

pub fn flushed(node: NodeId, took: Duration) {
    metrics::histogram!(WAL_FLUSH_SECONDS, "node" => node.0.to_string()).record(took.as_secs_f64());
}

pub fn appended(node: NodeId, entries: usize, bytes: u64) {
    let node = node.0.to_string();
    metrics::counter!(WAL_APPENDED_ENTRIES, "node" => node.clone()).increment(entries as u64);
    metrics::counter!(WAL_APPENDED_BYTES, "node" => node).increment(bytes);
}

pub fn proposal_batch(node: NodeId, requests: usize) {
    metrics::histogram!(PROPOSAL_BATCH_REQUESTS, "node" => node.0.to_string())
        .record(requests as f64);
}

/// A read of this node at `level` was served.
pub fn read_served(node: NodeId, level: &'static str) {
    let labels = [("node", node.0.to_string()), ("level", level.to_string())];
    metrics::counter!(READS, &labels).increment(1);
}

/// A linearizable or lease read of this node got its read index after `round_trips`.
pub fn read_confirmed(node: NodeId, level: ReadLevel, round_trips: u32) {
    let level = match level {
        ReadLevel::ReadIndex => "linearizable",
        ReadLevel::Lease => "lease",
    };
    let labels = [("node", node.0.to_string()), ("level", level.to_string())];
    metrics::counter!(READ_ROUND_TRIPS, &labels).increment(u64::from(round_trips));
}

pub fn read_round(node: NodeId) {
    metrics::counter!(READ_ROUNDS, "node" => node.0.to_string()).increment(1);
}

pub fn replication_lag(node: NodeId, peer: NodeId, entries: u64) {
    let labels = [("node", node.0.to_string()), ("peer", peer.0.to_string())];
    metrics::gauge!(REPLICATION_LAG, &labels).set(entries as f64);
}
