//! [`ClusterConfig`]: a cluster's members, from which an embedding program makes each of its
//! nodes' configs in code — the same [`NodeFileConfig`] a `raftlog serve` node reads from
//! TOML, with every setting not named here at its default.

use std::path::Path;

use crate::config::{
    BatchingConfig, HttpConfig, LimitsConfig, MemberConfig, NodeFileConfig, PeerConfig, RaftConfig,
    ReplicationConfig, WalConfig,
};
use crate::embed::Error;
use crate::types::NodeId;

/// The voters of a cluster, as every node reaches them.
///
/// ```
/// use raftlog::embed::ClusterConfig;
///
/// let cluster = ClusterConfig::new("controllers")
///     .member(1, "10.0.0.1:9093", "http://10.0.0.1:9094")
///     .member(2, "10.0.0.2:9093", "http://10.0.0.2:9094")
///     .member(3, "10.0.0.3:9093", "http://10.0.0.3:9094");
/// let node_2 = cluster.node(2, "/var/lib/broker/quorum").unwrap();
/// assert_eq!(node_2.peer.listen, "10.0.0.2:9093");
/// assert!(cluster.node(4, "/tmp/x").is_err()); // not a member
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    cluster_id: String,
    members: Vec<MemberConfig>,
}

impl ClusterConfig {
    /// A cluster named `cluster_id` (peers of other clusters are refused), no members yet.
    pub fn new(cluster_id: impl Into<String>) -> Self {
        ClusterConfig {
            cluster_id: cluster_id.into(),
            members: Vec::new(),
        }
    }

    /// `members` voters (ids from 1) on 127.0.0.1, each with a peer port and an HTTP port
    /// that were free a moment ago — for tests and examples on one machine. Another process
    /// may take a port before the node binds it; real clusters name their addresses.
    pub fn on_free_loopback_ports(cluster_id: impl Into<String>, members: u64) -> Self {
        let listeners: Vec<std::net::TcpListener> = (0..2 * members)
            .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|address| address.port())
            .collect();
        let mut cluster = ClusterConfig::new(cluster_id);
        for (id, pair) in (1..=members).zip(ports.chunks(2)) {
            let (peer, http) = (pair[0], pair.get(1).copied().unwrap_or(0));
            cluster = cluster.member(
                id,
                format!("127.0.0.1:{peer}"),
                format!("http://127.0.0.1:{http}"),
            );
        }
        cluster
    }

    /// Adds voter `id`, whose peers reach it at `peer` (`host:port`) and whose HTTP API, if
    /// it serves one, is at `http` (`http://host:port`).
    pub fn member(mut self, id: u64, peer: impl Into<String>, http: impl Into<String>) -> Self {
        self.members.push(MemberConfig {
            id: NodeId(id),
            peer: peer.into(),
            http: http.into(),
        });
        self
    }

    /// The config of member `id`, keeping its data in `data_dir`: it listens on its member
    /// addresses, everything else at the defaults (change any field before starting).
    /// Fails, naming every problem, if the result is not a valid config.
    pub fn node(&self, id: u64, data_dir: impl AsRef<Path>) -> Result<NodeFileConfig, Error> {
        let member = self
            .members
            .iter()
            .find(|m| m.id == NodeId(id))
            .ok_or_else(|| Error::Start(format!("node {id} is not a member of the cluster")))?;
        let http_listen = member
            .http
            .strip_prefix("http://")
            .unwrap_or(&member.http)
            .trim_end_matches('/');
        let config = NodeFileConfig {
            id: NodeId(id),
            cluster_id: self.cluster_id.clone(),
            data_dir: data_dir.as_ref().to_path_buf(),
            request_timeout_ms: crate::config::defaults::request_timeout_ms(),
            http: HttpConfig {
                listen: http_listen.to_string(),
                workers: 1,
            },
            peer: PeerConfig {
                listen: member.peer.clone(),
            },
            members: self.members.clone(),
            raft: RaftConfig::default(),
            replication: ReplicationConfig::default(),
            batching: BatchingConfig::default(),
            wal: WalConfig::default(),
            limits: LimitsConfig::default(),
        };
        config
            .validate()
            .map_err(|problems| Error::Start(problems.join("; ")))?;
        Ok(config)
    }
}
