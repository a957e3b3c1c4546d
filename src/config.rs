//! One node's configuration: the TOML file that `raftlog serve --config FILE` reads, its
//! defaults, and the checks that name every problem at once; plus the in-memory configs that
//! `raftlog dev` runs.
//!
//! A file holds the node's identity (`id`, `cluster_id`, `data_dir`), its two listen
//! addresses, every voter of the cluster (itself included) and, optionally, tuning sections
//! whose every key has a default. Keys are the names the code uses (STYLE.md: limits carry
//! their unit and then `_max`/`_min`). Unknown keys are refused by serde
//! (`deny_unknown_fields`), so a typo never silently falls back to a default.
//!
//! [`NodeFileConfig::validate`] is separate from parsing so that it can report every problem
//! in one go: an operator fixes a file once, not once per problem.
//!
//! Addresses are kept as the strings the file holds and checked by `validate`, so that a bad
//! address is listed with the other problems instead of stopping the parse; the accessors
//! ([`NodeFileConfig::http_listen`], ...) parse them again and are only for validated configs.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// In `raftlog dev`, node N's peer port is its HTTP port plus this: HTTP 7001-7003 pairs with
/// peers 8001-8003, the same layout as the shipped `config/node-N.toml` files.
pub const DEV_PEER_PORT_OFFSET: u16 = 1000;

/// The longest `cluster_id`, in bytes.
pub const CLUSTER_ID_BYTES_MAX: usize = 64;

/// A node's whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFileConfig {
    /// This node's id: a member id from `[[members]]`, never reused within the cluster.
    pub id: NodeId,
    /// Names the cluster; peers refuse connections from another cluster.
    pub cluster_id: String,
    /// Where this node keeps its WAL and hard state. Created if missing.
    pub data_dir: PathBuf,
    /// How long an HTTP request may wait for the node (commit, read index, leader) before
    /// it gets a 503; a long-poll may wait its `wait_ms` on top.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    pub http: HttpConfig,
    pub peer: PeerConfig,
    /// Every voter of the cluster, this node included.
    pub members: Vec<MemberConfig>,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub replication: ReplicationConfig,
    #[serde(default)]
    pub batching: BatchingConfig,
    #[serde(default)]
    pub wal: WalConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `[http]`: the client-facing server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to bind, `IP:port`.
    pub listen: String,
    /// HTTP worker threads. Each runs its own event loop; the node's actors run elsewhere.
    #[serde(default = "defaults::http_workers")]
    pub workers: usize,
}

/// `[peer]`: the Raft transport between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The address to bind, `IP:port`.
    pub listen: String,
}

/// `[[members]]`: one voter, as every node reaches it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub id: NodeId,
    /// Its peer address, `host:port`.
    pub peer: String,
    /// Its base HTTP URL, `http://host:port`: followers forward requests there.
    pub http: String,
}

/// `[raft]`: elections, heartbeats and leases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Election timeouts are drawn uniformly from `[min, max)` (Raft §5.2).
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// How often a leader heartbeats; at most a third of `election_timeout_ms_min`.
    pub heartbeat_interval_ms: u64,
    /// Ask for votes in a trial round first, so a partitioned node cannot inflate terms.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority for an election timeout steps down.
    pub check_quorum: bool,
    /// The largest relative clock-rate difference between nodes that leases tolerate, as a
    /// fraction in `[0, 0.5)`: a lease lasts `election_timeout_min × (1 − clock_drift_max)`.
    pub clock_drift_max: f64,
    /// Serve `consistency=lease` reads from the leader's lease (else they use ReadIndex).
    pub lease_reads: bool,
}

/// `[replication]`: how the leader feeds each follower.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    pub entries_per_append_max: usize,
    /// After its first entry, an AppendEntries stops before this many bytes.
    pub bytes_per_append_max: u64,
    /// AppendEntries in flight to one follower, by count and by bytes.
    pub inflight_appends_max: usize,
    pub inflight_bytes_max: u64,
    /// An AppendEntries unanswered for this long is presumed lost.
    pub append_timeout_ms: u64,
    /// Proposed but uncommitted bytes the leader holds before refusing new proposals (503).
    pub uncommitted_bytes_max: u64,
}

/// `[batching]`: grouping concurrent appends into one Raft entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchingConfig {
    /// How long a proposal may wait for company before it is written; 0 writes what is
    /// queued at once (group commit still batches whatever arrives during a flush).
    pub proposal_linger_us: u64,
    /// A batch closes before it passes this many bytes (one larger request goes alone).
    pub proposal_batch_bytes_max: u64,
    /// A batch closes at this many requests.
    pub proposal_batch_requests_max: usize,
    /// While this many proposed batches wait for their commit, the next batch gathers until
    /// one is answered (a full batch goes anyway); 0: no limit.
    pub proposals_in_flight_max: usize,
}

/// `[wal]`: the write-ahead log's files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// The size of each preallocated segment file.
    pub segment_bytes: u64,
    /// The largest payload of one log entry: a proposal batch, or one maximal append with its
    /// encoding overhead, must fit.
    pub entry_bytes_max: u64,
}

/// `[limits]`: what one client request may ask for, and how many may wait at once. Past a
/// size limit a request gets 413 `too_large`; past a concurrency limit, 503 `unavailable`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest record value.
    pub record_bytes_max: u64,
    /// The largest append batch, counting record values only.
    pub batch_bytes_max: u64,
    /// The most records in one append.
    pub batch_records_max: usize,
    /// Reads waiting in a long-poll (`wait_ms` > 0) at once, on this node.
    pub long_polls_max: usize,
    /// The longest `wait_ms` honoured; longer waits are shortened to this.
    pub long_poll_ms_max: u64,
    /// Open SSE tails at once, on this node.
    pub sse_subscribers_max: usize,
    /// Appends and reads in progress at once, on this node (long-polls count separately).
    pub pending_requests_max: usize,
    /// Request body bytes held at once by requests in progress, on this node.
    pub pending_bytes_max: u64,
    /// The most records one read returns; a larger `limit` is shortened to this.
    pub read_records_max: usize,
    /// A read stops before its values pass this many bytes (it always returns one record).
    pub read_bytes_max: u64,
}

pub(crate) mod defaults {
    pub fn request_timeout_ms() -> u64 {
        5_000
    }

    pub fn http_workers() -> usize {
        2
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            election_timeout_ms_min: 150,
            election_timeout_ms_max: 300,
            heartbeat_interval_ms: 50,
            pre_vote: true,
            check_quorum: true,
            clock_drift_max: 0.05,
            lease_reads: true,
        }
    }
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            entries_per_append_max: 256,
            bytes_per_append_max: MIB,
            inflight_appends_max: 8,
            inflight_bytes_max: 8 * MIB,
            append_timeout_ms: 100,
            uncommitted_bytes_max: 64 * MIB,
        }
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            proposal_linger_us: 0,
            proposal_batch_bytes_max: 4 * MIB,
            proposal_batch_requests_max: 1_024,
            proposals_in_flight_max: crate::node::batcher::IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * MIB,
            entry_bytes_max: 16 * MIB,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            record_bytes_max: MIB,
            batch_bytes_max: 8 * MIB,
            batch_records_max: 10_000,
            long_polls_max: 1_024,
            long_poll_ms_max: 30_000,
            sse_subscribers_max: 1_024,
            pending_requests_max: 1_024,
            pending_bytes_max: 256 * MIB,
            read_records_max: 1_000,
            read_bytes_max: 4 * MIB,
        }
    }
}

/// Why a config could not be used. Its `Display` is what `raftlog` prints before exiting 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not a valid config: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin} has {} problem{}:{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, bullets(problems))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

fn bullets(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl NodeFileConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = path.display().to_string();
        let config = Self::parse(&text, &origin)?;
        config
            .validate()
            .map_err(|problems| ConfigError::Invalid { origin, problems })?;
        Ok(config)
    }

    /// Parses TOML `text` (named `origin` in errors) without validating it.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::Parse {
            origin: origin.to_string(),
            message: error.to_string().trim_end().to_string(),
        })
    }

    /// Every problem with this config, each a sentence naming its key, or `Ok` if none.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Problems::default();
        self.check_identity(&mut problems);
        self.check_addresses(&mut problems);
        self.check_members(&mut problems);
        self.raft.check(&mut problems);
        self.check_sizes(&mut problems);
        problems.range("request_timeout_ms", self.request_timeout_ms, 1, 600_000);
        problems.range("http.workers", self.http.workers as u64, 1, 64);
        problems.into_result()
    }

    fn check_identity(&self, problems: &mut Problems) {
        if self.id.0 == 0 {
            problems.push("id is 0; member ids start at 1");
        }
        let id = &self.cluster_id;
        if id.is_empty() || id.len() > CLUSTER_ID_BYTES_MAX || !id.chars().all(is_name_char) {
            problems.push(format!(
                "cluster_id {id:?} must be 1 to {CLUSTER_ID_BYTES_MAX} characters of \
                 A-Z, a-z, 0-9, '.', '_' and '-'"
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir is empty; name the directory that holds this node's WAL");
        }
    }

    fn check_addresses(&self, problems: &mut Problems) {
        let http = check_listen(problems, "http.listen", &self.http.listen);
        let peer = check_listen(problems, "peer.listen", &self.peer.listen);
        // Port 0 asks the system for any free port, so two of them never collide.
        if http.is_some_and(|address| address.port() != 0) && http == peer {
            problems.push(format!(
                "http.listen and peer.listen are both {}; they need different ports",
                self.http.listen
            ));
        }
    }

    fn check_members(&self, problems: &mut Problems) {
        if self.members.is_empty() {
            problems.push("members is empty; list every voter, this node included");
            return;
        }
        let mut ids = BTreeMap::new();
        let mut peers = BTreeMap::new();
        let mut urls = BTreeMap::new();
        for member in &self.members {
            let id = member.id;
            if id.0 == 0 {
                problems.push("members: id 0 is not a valid member id (ids start at 1)");
            }
            if ids.insert(id.0, ()).is_some() {
                problems.push(format!("members: id {} is listed more than once", id.0));
            }
            if let Err(why) = parse_host_port(&member.peer) {
                problems.push(format!(
                    "members: member {} has peer {:?}: {why}",
                    id.0, member.peer
                ));
            } else if let Some(other) = peers.insert(member.peer.clone(), id.0) {
                problems.push(format!(
                    "members: members {other} and {} have the same peer address {}",
                    id.0, member.peer
                ));
            }
            if let Err(why) = parse_http_url(&member.http) {
                problems.push(format!(
                    "members: member {} has http {:?}: {why}",
                    id.0, member.http
                ));
            } else if let Some(other) = urls.insert(normalize_url(&member.http), id.0) {
                problems.push(format!(
                    "members: members {other} and {} have the same http URL {}",
                    id.0, member.http
                ));
            }
        }
        if !ids.contains_key(&self.id.0) {
            problems.push(format!(
                "members does not list this node's own id {}; list every voter, this node included",
                self.id.0
            ));
        }
    }

    fn check_sizes(&self, problems: &mut Problems) {
        let (r, b, w, l) = (&self.replication, &self.batching, &self.wal, &self.limits);
        problems.range(
            "replication.entries_per_append_max",
            r.entries_per_append_max as u64,
            1,
            65_536,
        );
        problems.range(
            "replication.bytes_per_append_max",
            r.bytes_per_append_max,
            KIB,
            GIB,
        );
        problems.range(
            "replication.inflight_appends_max",
            r.inflight_appends_max as u64,
            1,
            1_024,
        );
        problems.range(
            "replication.inflight_bytes_max",
            r.inflight_bytes_max,
            KIB,
            16 * GIB,
        );
        problems.range(
            "replication.append_timeout_ms",
            r.append_timeout_ms,
            1,
            60_000,
        );
        problems.range(
            "replication.uncommitted_bytes_max",
            r.uncommitted_bytes_max,
            KIB,
            64 * GIB,
        );
        problems.range(
            "batching.proposal_linger_us",
            b.proposal_linger_us,
            0,
            100_000,
        );
        problems.range(
            "batching.proposal_batch_bytes_max",
            b.proposal_batch_bytes_max,
            1,
            GIB,
        );
        problems.range(
            "batching.proposal_batch_requests_max",
            b.proposal_batch_requests_max as u64,
            1,
            1_000_000,
        );
        problems.range(
            "batching.proposals_in_flight_max",
            b.proposals_in_flight_max as u64,
            0,
            1_024,
        );
        // Segment offsets are u32 in the WAL format, hence the 4 GiB ceiling.
        problems.range("wal.segment_bytes", w.segment_bytes, MIB, 4 * GIB - 1);
        problems.range("wal.entry_bytes_max", w.entry_bytes_max, KIB, 2 * GIB);
        problems.range("limits.record_bytes_max", l.record_bytes_max, 1, GIB);
        problems.range("limits.batch_bytes_max", l.batch_bytes_max, 1, GIB);
        problems.range(
            "limits.batch_records_max",
            l.batch_records_max as u64,
            1,
            1_000_000,
        );
        problems.range(
            "limits.long_polls_max",
            l.long_polls_max as u64,
            1,
            1_000_000,
        );
        problems.range("limits.long_poll_ms_max", l.long_poll_ms_max, 1, 600_000);
        problems.range(
            "limits.sse_subscribers_max",
            l.sse_subscribers_max as u64,
            1,
            1_000_000,
        );
        problems.range(
            "limits.pending_requests_max",
            l.pending_requests_max as u64,
            1,
            1_000_000,
        );
        problems.range(
            "limits.pending_bytes_max",
            l.pending_bytes_max,
            KIB,
            64 * GIB,
        );
        problems.range(
            "limits.read_records_max",
            l.read_records_max as u64,
            1,
            1_000_000,
        );
        problems.range("limits.read_bytes_max", l.read_bytes_max, 1, GIB);
        self.check_size_relations(problems);
    }

    /// The sizes that must fit inside one another, so that a request the limits accept can
    /// always be proposed, stored and replicated.
    fn check_size_relations(&self, problems: &mut Problems) {
        let (r, b, w, l) = (&self.replication, &self.batching, &self.wal, &self.limits);
        problems.at_most(
            ("limits.record_bytes_max", l.record_bytes_max),
            ("limits.batch_bytes_max", l.batch_bytes_max),
            "a record is part of a batch",
        );
        problems.at_most(
            ("limits.batch_bytes_max", l.batch_bytes_max),
            ("limits.pending_bytes_max", l.pending_bytes_max),
            "else a maximal batch could never be accepted",
        );
        problems.at_most(
            ("limits.batch_bytes_max", l.batch_bytes_max),
            ("replication.uncommitted_bytes_max", r.uncommitted_bytes_max),
            "else a maximal batch could never be proposed",
        );
        problems.at_most(
            ("replication.bytes_per_append_max", r.bytes_per_append_max),
            ("replication.inflight_bytes_max", r.inflight_bytes_max),
            "else no full AppendEntries could be in flight",
        );
        problems.at_most(
            (
                "batching.proposal_batch_bytes_max",
                b.proposal_batch_bytes_max,
            ),
            ("wal.entry_bytes_max", w.entry_bytes_max),
            "a proposal batch is one log entry",
        );
        let batch_entry_bytes = max_batch_entry_bytes(l);
        if batch_entry_bytes > w.entry_bytes_max {
            problems.push(format!(
                "wal.entry_bytes_max ({}) must hold one maximal append: limits.batch_bytes_max \
                 ({}) plus up to {ENTRY_BYTES_PER_RECORD_MAX} bytes for each of \
                 limits.batch_records_max ({}) records and {ENTRY_BYTES_PER_COMMAND_MAX} for the \
                 command, {batch_entry_bytes} bytes",
                w.entry_bytes_max, l.batch_bytes_max, l.batch_records_max
            ));
        }
        if w.entry_bytes_max.saturating_add(SEGMENT_OVERHEAD_BYTES) > w.segment_bytes {
            problems.push(format!(
                "wal.segment_bytes ({}) must hold one entry of wal.entry_bytes_max ({}) plus \
                 {SEGMENT_OVERHEAD_BYTES} bytes of segment and record headers",
                w.segment_bytes, w.entry_bytes_max
            ));
        }
    }

    /// This node's `[http] listen` address. Only for a validated config.
    pub fn http_listen(&self) -> SocketAddr {
        self.http
            .listen
            .parse()
            .expect("validate() checked http.listen")
    }

    /// This node's `[peer] listen` address. Only for a validated config.
    pub fn peer_listen(&self) -> SocketAddr {
        self.peer
            .listen
            .parse()
            .expect("validate() checked peer.listen")
    }

    /// This node's own `[[members]]` entry. Only for a validated config.
    pub fn own_member(&self) -> &MemberConfig {
        let own = self.members.iter().find(|m| m.id == self.id);
        own.expect("validate() checked that members lists this node")
    }

    /// The base HTTP URL of member `id`, without a trailing slash, if it is a member.
    pub fn member_http(&self, id: NodeId) -> Option<String> {
        let member = self.members.iter().find(|m| m.id == id)?;
        Some(normalize_url(&member.http))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// This config with `overrides` applied and validated again: each is `KEY=VALUE`, the
    /// key dotted as in the file (`limits.long_poll_ms_max`) and the value in TOML syntax
    /// (`200`, `true`, `0.1`). Only the tuning keys can be changed ([`OVERRIDABLE_KEYS`]),
    /// never a node's identity, addresses or members. `origin` names the overrides in
    /// errors (e.g. `raftlog dev --set`).
    pub fn with_overrides(&self, overrides: &[String], origin: &str) -> Result<Self, ConfigError> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut document = toml::Table::try_from(self).map_err(|error| ConfigError::Parse {
            origin: origin.to_string(),
            message: error.to_string(),
        })?;
        let mut problems = Problems::default();
        for assignment in overrides {
            if let Err(problem) = set_key(&mut document, assignment) {
                problems.push(format!("{assignment:?}: {problem}"));
            }
        }
        let invalid = |problems: Vec<String>| ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        problems.into_result().map_err(invalid)?;
        let config: NodeFileConfig =
            document
                .try_into()
                .map_err(|error: toml::de::Error| ConfigError::Parse {
                    origin: origin.to_string(),
                    message: error.to_string().trim_end().to_string(),
                })?;
        config.validate().map_err(invalid)?;
        Ok(config)
    }
}

/// The keys that [`NodeFileConfig::with_overrides`] may change: these whole sections, and
/// these top-level keys.
pub const OVERRIDABLE_KEYS: [&str; 7] = [
    "request_timeout_ms",
    "http.workers",
    "raft.*",
    "replication.*",
    "batching.*",
    "wal.*",
    "limits.*",
];

/// Sets one `key=value` in a config document, or says why it cannot.
fn set_key(document: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let Some((key, value)) = assignment.split_once('=') else {
        return Err("an override is KEY=VALUE, e.g. limits.long_poll_ms_max=200".to_string());
    };
    let key = key.trim();
    let overridable = OVERRIDABLE_KEYS
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(section) => key
                .strip_prefix(section)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('.')),
            None => key == *allowed,
        });
    if !overridable {
        return Err(format!(
            "{key} cannot be overridden; the keys that can are {}",
            OVERRIDABLE_KEYS.join(", ")
        ));
    }
    let value = value.trim();
    let parsed: toml::Table = toml::from_str(&format!("value = {value}"))
        .map_err(|_| format!("{value} is not a TOML value (a number, true/false, \"text\")"))?;
    let value = parsed["value"].clone();
    let mut table = document;
    let mut path: Vec<&str> = key.split('.').collect();
    let last = path.pop().expect("split gives at least one piece");
    for section in path {
        table = table
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| format!("there is no [{section}] section"))?;
    }
    let Some(old) = table.get(last) else {
        return Err(format!("{key} is not a config key"));
    };
    let value = match (old, value) {
        (toml::Value::Float(_), toml::Value::Integer(whole)) => toml::Value::Float(whole as f64),
        (old, value) if old.type_str() != value.type_str() => {
            let a = |kind: &str| {
                let vowel = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
                format!("{} {kind}", if vowel { "an" } else { "a" })
            };
            return Err(format!(
                "{key} takes {}, not {}",
                a(old.type_str()),
                a(value.type_str())
            ));
        }
        (_, value) => value,
    };
    table.insert(last.to_string(), value);
    Ok(())
}

impl RaftConfig {
    fn check(&self, problems: &mut Problems) {
        let (min, max) = (self.election_timeout_ms_min, self.election_timeout_ms_max);
        problems.range("raft.election_timeout_ms_min", min, 10, 60_000);
        problems.range("raft.election_timeout_ms_max", max, 10, 120_000);
        if min >= max {
            problems.push(format!(
                "raft.election_timeout_ms_min ({min}) must be below raft.election_timeout_ms_max \
                 ({max}): timeouts are drawn at random between them so that elections rarely tie"
            ));
        }
        let heartbeat = self.heartbeat_interval_ms;
        if heartbeat == 0 {
            problems.push("raft.heartbeat_interval_ms must be at least 1");
        } else if heartbeat.saturating_mul(3) > min {
            problems.push(format!(
                "raft.heartbeat_interval_ms ({heartbeat}) must be at most a third of \
                 raft.election_timeout_ms_min ({min}), so that one late heartbeat does not \
                 start an election"
            ));
        }
        let drift = self.clock_drift_max;
        if !(0.0..0.5).contains(&drift) {
            problems.push(format!(
                "raft.clock_drift_max ({drift}) must be a fraction in [0, 0.5), e.g. 0.05 for 5%"
            ));
        }
    }

    pub fn election_timeout_min(&self) -> Duration {
        Duration::from_millis(self.election_timeout_ms_min)
    }

    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.election_timeout_ms_max)
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
}

/// Bytes one record can add to a command entry beyond its value: a bincode varint length.
pub const ENTRY_BYTES_PER_RECORD_MAX: u64 = 9;
/// Bytes one append command can add beyond its records: the stream name (255 bytes), the
/// producer id (255 characters, up to 1020 bytes) and seq, the expected offset, lengths and
/// tags.
pub const ENTRY_BYTES_PER_COMMAND_MAX: u64 = 2_048;
/// What a segment needs beyond one entry's payload: its header and the record header.
const SEGMENT_OVERHEAD_BYTES: u64 = 64 * KIB;

/// The largest log entry payload that one append within `limits` can need.
fn max_batch_entry_bytes(limits: &LimitsConfig) -> u64 {
    let per_record = ENTRY_BYTES_PER_RECORD_MAX.saturating_mul(limits.batch_records_max as u64);
    limits
        .batch_bytes_max
        .saturating_add(per_record)
        .saturating_add(ENTRY_BYTES_PER_COMMAND_MAX)
}

/// The problems found so far, in the order found.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            self.push(format!(
                "{key} is {value}; it must be between {min} and {max}"
            ));
        }
    }

    /// `small.1 <= large.1`, or a problem naming both keys and `why`.
    fn at_most(&mut self, small: (&str, u64), large: (&str, u64), why: &str) {
        if small.1 > large.1 {
            self.push(format!(
                "{} ({}) must be at most {} ({}): {why}",
                small.0, small.1, large.0, large.1
            ));
        }
    }

    fn into_result(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn check_listen(problems: &mut Problems, key: &str, value: &str) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "{key} {value:?} is not an IP:port address to listen on, e.g. \"127.0.0.1:7001\""
            ));
            None
        }
    }
}

/// Checks `host:port` (a name or an IP, `[v6]` in brackets, and a non-zero port).
fn parse_host_port(value: &str) -> Result<(), String> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err("it is not host:port".to_string());
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !host_ok {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("{port:?} is not a port between 1 and 65535")),
    }
}

/// Checks `http://host:port` (an optional trailing slash, nothing else after the port).
fn parse_http_url(value: &str) -> Result<(), String> {
    if value.starts_with("https://") {
        return Err("https is not supported between nodes yet; use http://host:port".to_string());
    }
    let Some(rest) = value.strip_prefix("http://") else {
        return Err("it must start with http://".to_string());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("it must be a base URL, http://host:port, with no path".to_string());
    }
    parse_host_port(rest)
}

fn normalize_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// The configs of a `raftlog dev` cluster: `nodes` voters on loopback, node N (from 1) with
/// HTTP on `base_port + N - 1`, peers on that plus [`DEV_PEER_PORT_OFFSET`], and its data in
/// `data/node-N`, so a second run with the same arguments finds its data again. Everything
/// else is the defaults. Errors if a port would pass 65535.
pub fn dev_configs(
    nodes: usize,
    data: &Path,
    base_port: u16,
) -> Result<Vec<NodeFileConfig>, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        origin: "raftlog dev".to_string(),
        problems: vec![problem],
    };
    if nodes == 0 {
        return Err(invalid("--nodes must be at least 1".to_string()));
    }
    let last_port = u64::from(base_port) + nodes as u64 - 1 + u64::from(DEV_PEER_PORT_OFFSET);
    if base_port == 0 || last_port > u64::from(u16::MAX) {
        return Err(invalid(format!(
            "--base-port {base_port} with {nodes} nodes needs ports up to {last_port} (peers \
             are {DEV_PEER_PORT_OFFSET} above HTTP); choose a base port between 1 and {}",
            u64::from(u16::MAX) + 1 - nodes as u64 - u64::from(DEV_PEER_PORT_OFFSET)
        )));
    }
    let http_port = |n: usize| base_port + (n as u16 - 1);
    let peer_port = |n: usize| http_port(n) + DEV_PEER_PORT_OFFSET;
    let members: Vec<MemberConfig> = (1..=nodes)
        .map(|n| MemberConfig {
            id: NodeId(n as u64),
            peer: format!("127.0.0.1:{}", peer_port(n)),
            http: format!("http://127.0.0.1:{}", http_port(n)),
        })
        .collect();
    let configs = (1..=nodes).map(|n| NodeFileConfig {
        id: NodeId(n as u64),
        cluster_id: "dev".to_string(),
        data_dir: data.join(format!("node-{n}")),
        request_timeout_ms: defaults::request_timeout_ms(),
        http: HttpConfig {
            listen: format!("127.0.0.1:{}", http_port(n)),
            // Several nodes share the machine's cores in dev: one HTTP thread each.
            workers: 1,
        },
        peer: PeerConfig {
            listen: format!("127.0.0.1:{}", peer_port(n)),
        },
        members: members.clone(),
        raft: RaftConfig::default(),
        replication: ReplicationConfig::default(),
        batching: BatchingConfig::default(),
        wal: WalConfig::default(),
        limits: LimitsConfig::default(),
    });
    let configs: Vec<NodeFileConfig> = configs.collect();
    for config in &configs {
        config.validate().map_err(|problems| ConfigError::Invalid {
            origin: format!("raftlog dev node {}", config.id.0),
            problems,
        })?;
    }
    Ok(configs)
}

impl fmt::Display for MemberConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} (peer {}, {})", self.id.0, self.peer, self.http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        id = 1
        cluster_id = "test"
        data_dir = "./data/node-1"

        [http]
        listen = "127.0.0.1:7001"

        [peer]
        listen = "127.0.0.1:8001"

        [[members]]
        id = 1
        peer = "127.0.0.1:8001"
        http = "http://127.0.0.1:7001"

        [[members]]
        id = 2
        peer = "node-2.example:8002"
        http = "http://node-2.example:7002/"
    "#;

    fn minimal() -> NodeFileConfig {
        NodeFileConfig::parse(MINIMAL, "minimal").unwrap()
    }

    fn problems(config: &NodeFileConfig) -> Vec<String> {
        config.validate().err().unwrap_or_default()
    }

    /// Asserts that exactly one problem was found and that it mentions every one of `words`.
    fn assert_one_problem(config: &NodeFileConfig, words: &[&str]) {
        let found = problems(config);
        assert_eq!(found.len(), 1, "{found:#?}");
        for word in words {
            assert!(found[0].contains(word), "{:?} lacks {word:?}", found[0]);
        }
    }

    #[test]
    fn a_minimal_file_takes_every_default_and_validates() {
        let config = minimal();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.raft, RaftConfig::default());
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.limits.record_bytes_max, MIB);
        assert_eq!(config.wal.segment_bytes, 64 * MIB);
        assert_eq!(config.request_timeout(), Duration::from_millis(5_000));
        assert_eq!(config.http_listen(), "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.own_member().peer, "127.0.0.1:8001");
        assert_eq!(
            config.member_http(NodeId(2)).as_deref(),
            Some("http://node-2.example:7002")
        );
        assert_eq!(config.member_http(NodeId(3)), None);
    }

    #[test]
    fn the_shipped_config_files_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut http = Vec::new();
        for n in 1..=3 {
            let config = NodeFileConfig::load(&dir.join(format!("node-{n}.toml")))
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(config.id, NodeId(n));
            assert_eq!(config.members.len(), 3);
            assert_eq!(config.data_dir, PathBuf::from(format!("./data/node-{n}")));
            http.push(config.http_listen().port());
            assert_eq!(config.peer_listen().port(), 8000 + n as u16);
            assert_eq!(
                config.own_member().http,
                format!("http://127.0.0.1:{}", 7000 + n)
            );
        }
        assert_eq!(http, [7001, 7002, 7003]);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let text = MINIMAL.replace("[http]", "[http]\nlisten_port = 7001");
        let error = NodeFileConfig::parse(&text, "typo.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("typo.toml") && error.contains("listen_port"),
            "{error}"
        );

        let text = MINIMAL.replace("[peer]", "[raft]\nheartbeat_ms = 10\n\n[peer]");
        let error = NodeFileConfig::parse(&text, "typo.toml")
            .unwrap_err()
            .to_string();
        assert!(error.contains("heartbeat_ms"), "{error}");
    }

    #[test]
    fn a_missing_identity_key_is_a_parse_error() {
        let text = MINIMAL.replace("cluster_id = \"test\"", "");
        let error = NodeFileConfig::parse(&text, "x").unwrap_err().to_string();
        assert!(error.contains("cluster_id"), "{error}");
    }

    #[test]
    fn duplicate_member_ids_are_reported() {
        let mut config = minimal();
        config.members[1].id = NodeId(1);
        assert_one_problem(&config, &["id 1", "more than once"]);
    }

    #[test]
    fn duplicate_addresses_are_reported() {
        let mut config = minimal();
        config.members[1].peer = "127.0.0.1:8001".to_string();
        config.members[1].http = "http://127.0.0.1:7001/".to_string();
        let found = problems(&config);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("same peer address 127.0.0.1:8001"),
            "{}",
            found[0]
        );
        assert!(found[1].contains("same http URL"), "{}", found[1]);

        let mut config = minimal();
        config.peer.listen = config.http.listen.clone();
        assert_one_problem(&config, &["http.listen and peer.listen"]);
    }

    #[test]
    fn own_id_missing_from_members_is_reported() {
        let mut config = minimal();
        config.id = NodeId(3);
        assert_one_problem(&config, &["own id 3"]);
    }

    #[test]
    fn unparseable_addresses_are_reported() {
        for (listen, peer, http) in [
            ("localhost:7001", "127.0.0.1:8001", "http://127.0.0.1:7001"),
            ("127.0.0.1:7001", "127.0.0.1", "http://127.0.0.1:7001"),
            ("127.0.0.1:7001", "127.0.0.1:99999", "http://127.0.0.1:7001"),
            ("127.0.0.1:7001", "127.0.0.1:8001", "127.0.0.1:7001"),
            ("127.0.0.1:7001", "127.0.0.1:8001", "https://127.0.0.1:7001"),
            (
                "127.0.0.1:7001",
                "127.0.0.1:8001",
                "http://127.0.0.1:7001/api",
            ),
            ("127.0.0.1:7001", "bad host:8001", "http://127.0.0.1:7001"),
        ] {
            let mut config = minimal();
            config.http.listen = listen.to_string();
            config.members[0].peer = peer.to_string();
            config.members[0].http = http.to_string();
            let found = problems(&config);
            assert_eq!(found.len(), 1, "{listen} {peer} {http}: {found:#?}");
        }
    }

    #[test]
    fn zero_and_absurd_sizes_are_reported() {
        let mut config = minimal();
        config.limits.batch_records_max = 0;
        assert_one_problem(&config, &["limits.batch_records_max is 0"]);

        let mut config = minimal();
        config.wal.segment_bytes = 8 * GIB;
        assert_one_problem(&config, &["wal.segment_bytes", "between"]);

        let mut config = minimal();
        config.request_timeout_ms = 0;
        assert_one_problem(&config, &["request_timeout_ms is 0"]);
    }

    #[test]
    fn sizes_that_do_not_fit_inside_each_other_are_reported() {
        let mut config = minimal();
        config.limits.record_bytes_max = 16 * MIB;
        assert_one_problem(
            &config,
            &["limits.record_bytes_max", "limits.batch_bytes_max"],
        );

        let mut config = minimal();
        config.wal.entry_bytes_max = 8 * MIB;
        assert_one_problem(&config, &["wal.entry_bytes_max", "maximal append"]);

        let mut config = minimal();
        config.wal.segment_bytes = 16 * MIB;
        assert_one_problem(&config, &["wal.segment_bytes", "wal.entry_bytes_max"]);
    }

    #[test]
    fn impossible_timings_are_reported() {
        let mut config = minimal();
        config.raft.heartbeat_interval_ms = 60;
        assert_one_problem(&config, &["heartbeat_interval_ms (60)", "a third", "(150)"]);

        let mut config = minimal();
        config.raft.election_timeout_ms_min = 300;
        config.raft.election_timeout_ms_max = 300;
        assert_one_problem(&config, &["must be below raft.election_timeout_ms_max"]);

        for drift in [-0.1, 0.5, f64::NAN] {
            let mut config = minimal();
            config.raft.clock_drift_max = drift;
            assert_one_problem(&config, &["raft.clock_drift_max"]);
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = minimal();
        config.id = NodeId(9);
        config.cluster_id = "has space".to_string();
        config.members[1].id = NodeId(1);
        config.peer.listen = "nowhere".to_string();
        config.raft.election_timeout_ms_min = 400;
        config.raft.heartbeat_interval_ms = 200;
        config.limits.pending_requests_max = 0;
        let found = problems(&config);
        assert_eq!(found.len(), 7, "{found:#?}");

        let error = ConfigError::Invalid {
            origin: "node.toml".to_string(),
            problems: found,
        };
        let text = error.to_string();
        assert!(
            text.starts_with("node.toml has 7 problems:\n  - "),
            "{text}"
        );
    }

    #[test]
    fn overrides_change_tuning_keys_and_are_validated() {
        let config = minimal();
        let overrides = [
            "limits.long_poll_ms_max=200",
            " raft.lease_reads = false ",
            "request_timeout_ms=900",
        ]
        .map(str::to_string);
        let changed = config.with_overrides(&overrides, "--set").unwrap();
        assert_eq!(changed.limits.long_poll_ms_max, 200);
        assert!(!changed.raft.lease_reads);
        assert_eq!(changed.request_timeout_ms, 900);
        assert_eq!(
            (&changed.members, &changed.id),
            (&config.members, &config.id)
        );

        for (bad, words) in [
            ("id=2", "id cannot be overridden"),
            ("data_dir=\"elsewhere\"", "data_dir cannot be overridden"),
            (
                "http.listen=\"127.0.0.1:1\"",
                "http.listen cannot be overridden",
            ),
            ("limits.long_poll_ms_max", "KEY=VALUE"),
            ("limits.long_poll_ms_max=soon", "not a TOML value"),
            ("limits.long_poll_ms_max=0", "limits.long_poll_ms_max is 0"),
            (
                "limits.long_poll_ms_maxx=1",
                "limits.long_poll_ms_maxx is not a config key",
            ),
            (
                "limits.long_poll_ms_max=\"1\"",
                "takes an integer, not a string",
            ),
            ("raft.clock_drift_max=1", "raft.clock_drift_max (1)"),
        ] {
            let error = config
                .with_overrides(&[bad.to_string()], "--set")
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("--set"), "{bad}: {error}");
            assert!(error.contains(words), "{bad}: {error}");
        }
        let two = ["id=2", "limits.nonsense=1"].map(str::to_string);
        let error = config
            .with_overrides(&two, "--set")
            .unwrap_err()
            .to_string();
        assert!(error.contains("has 2 problems"), "{error}");
    }

    #[test]
    fn dev_configs_form_a_valid_loopback_cluster() {
        let configs = dev_configs(3, Path::new("./data/dev"), 7001).unwrap();
        assert_eq!(configs.len(), 3);
        for (n, config) in configs.iter().enumerate() {
            let n = n as u16 + 1;
            assert_eq!(config.id, NodeId(u64::from(n)));
            assert_eq!(config.http_listen().port(), 7000 + n);
            assert_eq!(config.peer_listen().port(), 8000 + n);
            assert_eq!(
                config.data_dir,
                Path::new("./data/dev").join(format!("node-{n}"))
            );
            assert_eq!(config.members, configs[0].members);
        }
        // They survive a round trip through TOML, so a user can save one as a file.
        let text = toml::to_string(&configs[1]).unwrap();
        assert_eq!(NodeFileConfig::parse(&text, "dev").unwrap(), configs[1]);
    }

    #[test]
    fn dev_configs_refuse_ports_past_the_end() {
        assert!(dev_configs(0, Path::new("d"), 7001).is_err());
        let error = dev_configs(3, Path::new("d"), 64_600)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--base-port 64600"), "{error}");
        assert!(dev_configs(3, Path::new("d"), 64_533).is_ok());
    }
}
