//! The node's Prometheus metrics: every name in one place, so the exporter's descriptions
//! and the code that records them cannot drift apart. Recording is a no-op until a recorder
//! is installed (the service installs the Prometheus one).

use std::time::Duration;

use crate::raft::election::{Role, RoleState};
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

pub fn replication_lag(node: NodeId, peer: NodeId, entries: u64) {
    let labels = [("node", node.0.to_string()), ("peer", peer.0.to_string())];
    metrics::gauge!(REPLICATION_LAG, &labels).set(entries as f64);
}
