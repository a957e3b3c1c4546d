//! The node behind the HTTP API: [`NodeService`] implements the HTTP layer's [`LogService`]
//! over the node's library handle ([`Raftlog`], the same API an embedding program uses),
//! translating requests into handle calls and the handle's typed errors into the API's. No
//! Raft state lives here, and there is no second path into the node.

mod errors;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{LocalBoxStream, StreamExt};

use crate::embed::{self, Append, Raftlog, Records};
use crate::http::service::{
    AppendRequest, AppendResult, ClusterStatus, LeaderInfo, LogService, MemberStatus, ReadRequest,
    ReadResult, Record, Role, ServiceError, StreamSummary,
};
use crate::node::NodeStatus;
use crate::raft::election;
use crate::types::{NodeId, Offset};

/// Serves the HTTP API from one node.
#[derive(Clone)]
pub struct NodeService {
    log: Raftlog,
    /// Every member's base HTTP URL, to tell clients (and the forwarder) where the leader is.
    members_http: BTreeMap<NodeId, String>,
}

impl NodeService {
    pub fn new(log: Raftlog, members_http: BTreeMap<NodeId, String>) -> Self {
        Self { log, members_http }
    }

    fn leader_http(&self, leader: Option<NodeId>) -> Option<String> {
        leader
            .filter(|&id| id != self.log.id())
            .and_then(|id| self.members_http.get(&id).cloned())
    }

    fn error(&self, error: embed::Error) -> ServiceError {
        errors::service_error(error, |leader| self.leader_http(leader))
    }
}

/// The records of `read` from `from`, cut at `bytes_max` (but never empty if any exist).
fn read_result(read: Records, from: Offset, bytes_max: usize) -> ReadResult {
    let mut bytes = 0;
    let mut records = Vec::new();
    for record in read.records {
        if !records.is_empty() && bytes + record.value.len() > bytes_max {
            break;
        }
        bytes += record.value.len();
        records.push(Record {
            offset: record.offset,
            value: record.value,
        });
    }
    let next_offset = records.last().map_or(from, |r: &Record| r.offset.next());
    ReadResult {
        records,
        next_offset,
        end_offset: read.end_offset,
        start_offset: read.start_offset,
    }
}

#[async_trait(?Send)]
impl LogService for NodeService {
    async fn append(
        &self,
        stream: &str,
        request: AppendRequest,
    ) -> Result<AppendResult, ServiceError> {
        let mut append = Append::new(stream, request.records);
        if let Some((id, seq)) = request.producer {
            append = append.producer(id, seq);
        }
        if let Some(offset) = request.expected_offset {
            append = append.expected_offset(offset);
        }
        let appended = self
            .log
            .append_with(append)
            .await
            .map_err(|e| self.error(e))?;
        Ok(AppendResult {
            first_offset: appended.first_offset,
            last_offset: appended.last_offset,
            index: appended.log_id.index,
            term: appended.log_id.term,
        })
    }

    async fn read(&self, stream: &str, request: ReadRequest) -> Result<ReadResult, ServiceError> {
        let (from, limit) = (request.from, request.limit);
        let read_now = |consistency| self.log.read(stream, from, limit, consistency);
        let mut read = read_now(request.consistency)
            .await
            .map_err(|e| self.error(e))?;
        if read.records.is_empty() && !request.wait.is_zero() {
            // Long-poll: wait for a record at `from` on this node, then read what is there.
            let woke =
                tokio::time::timeout(request.wait, self.log.wait_for_record(stream, from)).await;
            if woke.is_ok_and(|alive| alive) {
                read = read_now(embed::Consistency::Stale)
                    .await
                    .map_err(|e| self.error(e))?;
            }
        }
        Ok(read_result(read, from, request.bytes_max))
    }

    fn subscribe(
        &self,
        stream: &str,
        from: Offset,
    ) -> Result<LocalBoxStream<'static, Result<Record, ServiceError>>, ServiceError> {
        let this = self.clone();
        let records = self.log.subscribe(stream, from).map(move |record| {
            record
                .map(|r| Record {
                    offset: r.offset,
                    value: r.value,
                })
                .map_err(|e| this.error(e))
        });
        Ok(records.boxed_local())
    }

    async fn streams(&self) -> Result<Vec<StreamSummary>, ServiceError> {
        let streams = self.log.streams().await.map_err(|e| self.error(e))?;
        Ok(streams
            .into_iter()
            .map(|(name, info)| StreamSummary {
                name,
                start_offset: info.start_offset,
                end_offset: info.end_offset,
            })
            .collect())
    }

    async fn cluster(&self) -> ClusterStatus {
        let status = self.log.status().await;
        cluster_status(self.log.id(), status, &self.members_http)
    }

    async fn transfer_leadership(&self, to: NodeId) -> Result<(), ServiceError> {
        self.log
            .transfer_leadership(to)
            .await
            .map_err(|e| self.error(e))
    }

    async fn ready(&self) -> bool {
        let Some(status) = self.log.status().await else {
            return false;
        };
        status.election.role.leader.is_some() && status.applied >= status.committed
    }
}

fn cluster_status(
    id: NodeId,
    status: Option<NodeStatus>,
    members_http: &BTreeMap<NodeId, String>,
) -> ClusterStatus {
    let Some(status) = status else {
        return ClusterStatus {
            node_id: id,
            role: Role::Follower,
            term: Default::default(),
            leader: None,
            commit_index: Default::default(),
            applied_index: Default::default(),
            members: Vec::new(),
        };
    };
    let role = status.election.role;
    let last = status.last_log.index;
    let members = members_http
        .keys()
        .map(|&member| {
            let progress = status.election.followers.iter().find(|p| p.id == member);
            let is_leader_self = member == id && role.role == election::Role::Leader;
            let match_index = if is_leader_self {
                Some(last)
            } else {
                progress.map(|p| p.match_index)
            };
            MemberStatus {
                id: member,
                voter: true,
                match_index,
                lag: match_index.map(|m| last.0.saturating_sub(m.0)),
                last_ack: if is_leader_self {
                    Some(Duration::ZERO)
                } else {
                    progress.and_then(|p| p.last_ack)
                },
            }
        })
        .collect();
    ClusterStatus {
        node_id: id,
        role: match role.role {
            election::Role::Leader => Role::Leader,
            election::Role::Follower => Role::Follower,
            election::Role::Candidate | election::Role::PreCandidate => Role::Candidate,
        },
        term: role.term,
        leader: role.leader.map(|leader| LeaderInfo {
            id: leader,
            http: members_http.get(&leader).cloned().unwrap_or_default(),
        }),
        commit_index: status
            .election
            .leader_commit
            .unwrap_or(status.committed)
            .max(status.committed),
        applied_index: status.applied,
        members,
    }
}
