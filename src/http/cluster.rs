//! `GET /v1/cluster` (this node's view: role, term, leader, commit and applied index, and
//! on the leader each member's progress), `GET /healthz` (the process is up) and
//! `GET /readyz` (the node knows a leader and has applied up to its commit index).
//!
//! These are answered by the node asked, never forwarded: they describe that node. And
//! `POST /v1/cluster/leader` (leadership transfer), which a follower forwards to the leader.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::context::HttpContext;
use super::errors::{ApiError, NO_LEADER_RETRY_AFTER};
use super::forward::{Forwarder, Relay};
use super::service::{ClusterStatus, LogService, Role};
use super::wire::{
    ClusterResponse, ErrorBody, LeaderJson, MemberJson, RoleJson, StatusResponse, TransferBody,
};
use crate::types::NodeId;

/// The largest transfer body read: `{"to": N}` is a few bytes.
const TRANSFER_BODY_BYTES_MAX: usize = 1024;

/// Hands leadership to another voter; answers once this node sees it lead.
#[utoipa::path(
    post,
    path = "/v1/cluster/leader",
    tag = "cluster",
    summary = "Leadership transfer: the named voter takes over",
    request_body(content = TransferBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The voter leads; this node's view of the cluster", body = ClusterResponse),
        (status = 400, description = "bad_request: not JSON, not `{\"to\": id}`, or not a voter", body = ErrorBody),
        (status = 503, description = "unavailable: no leader, or the voter did not take over in time (the old leader goes on leading)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn transfer(
    request: HttpRequest,
    body: Bytes,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    if body.len() > TRANSFER_BODY_BYTES_MAX {
        return Err(ApiError::bad_request("the body is not {\"to\": voter id}"));
    }
    let transfer: TransferBody = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!("the body is not {{\"to\": voter id}}: {error}"))
    })?;
    let deadline = context.request_timeout;
    let answer = tokio::time::timeout(deadline, service.transfer_leadership(NodeId(transfer.to)));
    match answer.await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(cluster_json(service.cluster().await))),
        Ok(Err(error)) => {
            forwarder
                .forward_or_fail(error, &request, body, &context, Relay::Whole { deadline })
                .await
        }
        Err(_) => Err(ApiError::unavailable(
            format!(
                "node {} did not take over within request_timeout_ms ({} ms)",
                transfer.to,
                deadline.as_millis()
            ),
            NO_LEADER_RETRY_AFTER,
        )),
    }
}

/// This node's view of the cluster.
#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "cluster",
    summary = "This node's view of the cluster",
    responses((status = 200, description = "Role, term, leader, indexes and members", body = ClusterResponse))
)]
pub async fn cluster(service: web::Data<dyn LogService>) -> HttpResponse {
    HttpResponse::Ok().json(cluster_json(service.cluster().await))
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "cluster",
    summary = "Liveness: the process is up",
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`", body = StatusResponse))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(StatusResponse {
        status: "ok".to_string(),
    })
}

/// The node can serve requests.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "cluster",
    summary = "Readiness: a leader is known and the node has applied up to its commit index",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = StatusResponse),
        (status = 503, description = "unavailable: not ready yet", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))),
    )
)]
pub async fn readyz(service: web::Data<dyn LogService>) -> Result<HttpResponse, ApiError> {
    if service.ready().await {
        Ok(HttpResponse::Ok().json(StatusResponse {
            status: "ready".to_string(),
        }))
    } else {
        Err(ApiError::unavailable(
            "this node is not ready: it knows of no leader, or has not yet applied up to the \
             commit index",
            NO_LEADER_RETRY_AFTER,
        ))
    }
}

/// The JSON of a [`ClusterStatus`].
pub fn cluster_json(status: ClusterStatus) -> ClusterResponse {
    ClusterResponse {
        node_id: status.node_id.0,
        role: match status.role {
            Role::Leader => RoleJson::Leader,
            Role::Follower => RoleJson::Follower,
            Role::Candidate => RoleJson::Candidate,
            Role::Learner => RoleJson::Learner,
        },
        term: status.term.0,
        leader: status.leader.map(|leader| LeaderJson {
            id: leader.id.0,
            http: leader.http,
        }),
        commit_index: status.commit_index.0,
        applied_index: status.applied_index.0,
        members: status
            .members
            .into_iter()
            .map(|member| MemberJson {
                id: member.id.0,
                voter: member.voter,
                match_index: member.match_index.map(|index| index.0),
                lag: member.lag,
                last_ack_ms: member
                    .last_ack
                    .map(|ack| ack.as_millis().try_into().unwrap_or(u64::MAX)),
            })
            .collect(),
    }
}
