//! The node behind the HTTP API: [`NodeService`] implements the HTTP layer's [`LogService`]
//! over a running node's [`NodeHandle`], translating requests into actor messages and the
//! node's typed outcomes into the API's errors. No Raft state lives here.

mod errors;
mod tail;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::LocalBoxStream;

use crate::http::service::{
    AppendRequest, AppendResult, ClusterStatus, Consistency, LeaderInfo, LogService, MemberStatus,
    ReadRequest, ReadResult, Record, Role, ServiceError, StreamSummary,
};
use crate::node::{NodeHandle, NodeStatus, StreamRead};
use crate::raft::election;
use crate::raft::read::ReadLevel;
use crate::streams::{self, AppendCommand};
use crate::types::{NodeId, Offset};

/// Serves the HTTP API from one node.
#[derive(Clone)]
pub struct NodeService {
    node: NodeHandle,
    /// Every member's base HTTP URL, to tell clients (and the forwarder) where the leader is.
    members_http: BTreeMap<NodeId, String>,
}

impl NodeService {
    pub fn new(node: NodeHandle, members_http: BTreeMap<NodeId, String>) -> Self {
        Self { node, members_http }
    }

    fn leader_http(&self, leader: Option<NodeId>) -> Option<String> {
        leader
            .filter(|&id| id != self.node.id)
            .and_then(|id| self.members_http.get(&id).cloned())
    }

    async fn read_once(
        &self,
        stream: &str,
        request: &ReadRequest,
    ) -> Result<StreamRead, ServiceError> {
        let limit = request.limit.max(1);
        match request.consistency {
            Consistency::Stale => self
                .node
                .read_stale(stream, request.from, limit)
                .await
                .map_err(ServiceError::Internal),
            Consistency::Linearizable | Consistency::Lease => {
                let level = match request.consistency {
                    Consistency::Lease => ReadLevel::Lease,
                    _ => ReadLevel::ReadIndex,
                };
                self.node
                    .read_linearizable(stream, request.from, limit, level)
                    .await
                    .map_err(|failure| errors::read_failure(failure, |l| self.leader_http(l)))
            }
        }
    }
}

/// The records of `read` from `from`, cut at `bytes_max` (but never empty if any exist).
fn read_result(read: StreamRead, from: Offset, bytes_max: usize) -> ReadResult {
    let mut bytes = 0;
    let mut records = Vec::new();
    for (offset, value) in read.records {
        if !records.is_empty() && bytes + value.len() > bytes_max {
            break;
        }
        bytes += value.len();
        records.push(Record { offset, value });
    }
    let next_offset = records.last().map_or(from, |r: &Record| r.offset.next());
    ReadResult {
        records,
        next_offset,
        end_offset: read.info.end_offset,
        start_offset: read.info.start_offset,
    }
}

#[async_trait(?Send)]
impl LogService for NodeService {
    async fn append(
        &self,
        stream: &str,
        request: AppendRequest,
    ) -> Result<AppendResult, ServiceError> {
        let command = AppendCommand {
            stream: stream.to_string(),
            records: request.records,
            producer: request
                .producer
                .map(|(id, seq)| streams::ProducerSeq { id, seq }),
            expected_offset: request.expected_offset,
        };
        match self.node.append(command).await {
            Ok((log_id, outcome)) => errors::append_outcome(log_id, outcome),
            Err(error) => Err(errors::submit_error(error, |l| self.leader_http(l))),
        }
    }

    async fn read(&self, stream: &str, request: ReadRequest) -> Result<ReadResult, ServiceError> {
        let mut read = self.read_once(stream, &request).await?;
        if request.from < read.info.start_offset {
            return Err(ServiceError::OffsetOutOfRange {
                start_offset: read.info.start_offset,
            });
        }
        if read.records.is_empty() && !request.wait.is_zero() {
            // Long-poll: wait for a record at `from` on this node, then read what is there.
            let woke = tokio::time::timeout(
                request.wait,
                self.node.wait_for_record(stream, request.from),
            )
            .await;
            if woke.is_ok_and(|alive| alive) {
                let limit = request.limit.max(1);
                read = self
                    .node
                    .read_stale(stream, request.from, limit)
                    .await
                    .map_err(ServiceError::Internal)?;
            }
        }
        Ok(read_result(read, request.from, request.bytes_max))
    }

    fn subscribe(
        &self,
        stream: &str,
        from: Offset,
    ) -> Result<LocalBoxStream<'static, Result<Record, ServiceError>>, ServiceError> {
        Ok(tail::records_from(
            self.node.clone(),
            stream.to_string(),
            from,
        ))
    }

    async fn streams(&self) -> Result<Vec<StreamSummary>, ServiceError> {
        let streams = self
            .node
            .list_streams()
            .await
            .ok_or_else(errors::stopping)?;
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
        let status = self.node.status().await;
        cluster_status(self.node.id, status, &self.members_http)
    }

    async fn ready(&self) -> bool {
        let Some(status) = self.node.status().await else {
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
