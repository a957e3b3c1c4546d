//! The library handle's typed [`Error`]s, as the HTTP layer's [`ServiceError`]s. Every mapping
//! from a node failure to an API error lives here.

use std::time::Duration;

use crate::embed::Error;
use crate::http::service::ServiceError;
use crate::types::NodeId;

/// How long a client should wait before retrying after a leadership hiccup: about one
/// election.
const RETRY_AFTER_ELECTION: Duration = Duration::from_millis(300);

/// `leader_http` gives the HTTP URL of a leader the node knows of (never the node itself).
pub fn service_error(
    error: Error,
    leader_http: impl Fn(Option<NodeId>) -> Option<String>,
) -> ServiceError {
    let not_leader = |leader: Option<NodeId>, no_leader: &str| match leader_http(leader) {
        Some(url) => ServiceError::NotLeader {
            leader_http: Some(url),
        },
        None => ServiceError::unavailable(no_leader, RETRY_AFTER_ELECTION),
    };
    match error {
        Error::NotLeader { leader, .. } => not_leader(leader, "no leader is known right now"),
        Error::ReadNotConfirmed { leader } => {
            not_leader(leader, "no leader could confirm the read")
        }
        Error::Busy => ServiceError::unavailable(
            "too many writes are waiting to commit; slow down",
            Duration::from_millis(50),
        ),
        Error::NotCommitted => ServiceError::unavailable(
            "leadership changed before the write committed; it was not written",
            RETRY_AFTER_ELECTION,
        ),
        Error::Stopped => {
            ServiceError::unavailable("the node is shutting down", Duration::from_secs(1))
        }
        Error::StaleProducerSeq { last_seq } => ServiceError::StaleProducerSeq { last_seq },
        Error::OffsetMismatch { next_offset } => ServiceError::OffsetMismatch { next_offset },
        Error::Invalid(reason) => ServiceError::BadRequest(reason),
        Error::OffsetOutOfRange { start_offset } => ServiceError::OffsetOutOfRange { start_offset },
        Error::NotAVoter(id) => ServiceError::BadRequest(format!("node {id} is not a voter")),
        Error::TransferTimedOut { to } => ServiceError::unavailable(
            format!("node {to} did not take over leadership in time"),
            RETRY_AFTER_ELECTION,
        ),
        Error::Start(message) | Error::Storage(message) => ServiceError::Internal(message),
    }
}
