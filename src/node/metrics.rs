//! The node's Prometheus metrics: every name in one place, so the exporter's descriptions
//! and the code that records them cannot drift apart. Recording is a no-op until a recorder
//! is installed (the service installs the Prometheus one).
//!
//! Series recorded for every entry, batch, acknowledgement or read are recorded through
//! handles that each actor (or library handle) takes once when it starts: a handle costs an
//! atomic operation per record, where the macros format the node id and look the series up
//! on every call. A handle belongs to the recorder installed when it was taken, so a process
//! installs its recorder before it starts nodes (the service does; an embedding program that
//! wants these series must too).

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

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

/// A log index as a gauge of node `node`: [`COMMIT_INDEX`] or [`APPLIED_INDEX`].
#[derive(Clone)]
pub struct IndexGauge(Gauge);

impl IndexGauge {
    pub fn committed(node: NodeId) -> Self {
        Self(metrics::gauge!(COMMIT_INDEX, "node" => node.0.to_string()))
    }

    pub fn applied(node: NodeId) -> Self {
        Self(metrics::gauge!(APPLIED_INDEX, "node" => node.0.to_string()))
    }

    pub fn set(&self, index: LogIndex) {
        self.0.set(index.0 as f64);
    }
}

/// The WAL actor's series.
#[derive(Clone)]
pub struct WalMetrics {
    appended_entries: Counter,
    appended_bytes: Counter,
    flush_seconds: Histogram,
}

impl WalMetrics {
    pub fn new(node: NodeId) -> Self {
        let node = node.0.to_string();
        Self {
            appended_entries: metrics::counter!(WAL_APPENDED_ENTRIES, "node" => node.clone()),
            appended_bytes: metrics::counter!(WAL_APPENDED_BYTES, "node" => node.clone()),
            flush_seconds: metrics::histogram!(WAL_FLUSH_SECONDS, "node" => node),
        }
    }

    pub fn appended(&self, entries: usize, bytes: u64) {
        self.appended_entries.increment(entries as u64);
        self.appended_bytes.increment(bytes);
    }

    pub fn flushed(&self, took: Duration) {
        self.flush_seconds.record(took.as_secs_f64());
    }
}

/// [`PROPOSAL_BATCH_REQUESTS`] of node `node`.
pub fn proposal_batch_histogram(node: NodeId) -> Histogram {
    metrics::histogram!(PROPOSAL_BATCH_REQUESTS, "node" => node.0.to_string())
}

/// [`READS`] of node `node` at `level` (`linearizable`, `lease` or `stale`).
pub fn reads_served_counter(node: NodeId, level: &'static str) -> Counter {
    node_level_counter(READS, node, level)
}

/// Counter `name` of node `node` at read level `level`.
fn node_level_counter(name: &'static str, node: NodeId, level: &'static str) -> Counter {
    let labels = [("node", node.0.to_string()), ("level", level.to_string())];
    metrics::counter!(name, &labels)
}

/// The election actor's read series: round trips per level, and heartbeat rounds.
pub struct ReadConfirmMetrics {
    linearizable_round_trips: Counter,
    lease_round_trips: Counter,
    rounds: Counter,
}

impl ReadConfirmMetrics {
    pub fn new(node: NodeId) -> Self {
        let round_trips = |level| node_level_counter(READ_ROUND_TRIPS, node, level);
        Self {
            linearizable_round_trips: round_trips("linearizable"),
            lease_round_trips: round_trips("lease"),
            rounds: metrics::counter!(READ_ROUNDS, "node" => node.0.to_string()),
        }
    }

    /// A linearizable or lease read got its read index after `round_trips`.
    pub fn confirmed(&self, level: ReadLevel, round_trips: u32) {
        let counter = match level {
            ReadLevel::ReadIndex => &self.linearizable_round_trips,
            ReadLevel::Lease => &self.lease_round_trips,
        };
        counter.increment(u64::from(round_trips));
    }

    pub fn round_started(&self) {
        self.rounds.increment(1);
    }
}

/// [`REPLICATION_LAG`] of follower `peer`, as leader `node` sees it.
pub fn replication_lag_gauge(node: NodeId, peer: NodeId) -> Gauge {
    let labels = [("node", node.0.to_string()), ("peer", peer.0.to_string())];
    metrics::gauge!(REPLICATION_LAG, &labels)
}
