//! Samples every node's term and role from `/v1/cluster` while a run goes on, for the
//! election-safety check (at most one leader per term; a follower's leader is that term's
//! leader). Each answer is one atomic snapshot of the node's election state.

use std::time::Duration;

use raftlog::http::wire::RoleJson;
use raftlog::testing::{ObservedRole, RoleObservation};
use raftlog::types::{NodeId, Term};
use tokio::time::Instant;

use crate::view::{ClusterView, Status};

/// One status as a role observation.
pub fn observation(status: &Status) -> RoleObservation {
    let role = match status.role {
        RoleJson::Leader => ObservedRole::Leader,
        RoleJson::Candidate => ObservedRole::Candidate,
        RoleJson::Follower | RoleJson::Learner => ObservedRole::Follower {
            leader: status.leader.as_ref().map(|l| NodeId(l.id)),
        },
    };
    RoleObservation {
        node: NodeId(status.node_id),
        term: Term(status.term),
        role,
    }
}

/// Polls every node every `interval` until `until`; returns the distinct observations.
pub async fn observe_roles(
    view: ClusterView,
    until: Instant,
    interval: Duration,
) -> Vec<RoleObservation> {
    let mut seen: Vec<RoleObservation> = Vec::new();
    while Instant::now() < until {
        for status in view.statuses().await.into_values().flatten() {
            let observed = observation(&status);
            if !seen.contains(&observed) {
                seen.push(observed);
            }
        }
        tokio::time::sleep(interval).await;
    }
    seen
}
