//! The node's typed outcomes, as the HTTP layer's [`ServiceError`]s. Every mapping from a
//! node failure to an API error lives here.

use std::time::Duration;

use crate::http::service::{AppendResult, ServiceError};
use crate::node::{ReadError, ReadFailure, SubmitError};
use crate::streams::AppendOutcome;
use crate::types::{LogId, NodeId};

/// How long a client should wait before retrying after a leadership hiccup: about one
/// election.
const RETRY_AFTER_ELECTION: Duration = Duration::from_millis(300);

pub fn stopping() -> ServiceError {
    ServiceError::unavailable("the node is shutting down", Duration::from_secs(1))
}

pub fn append_outcome(log_id: LogId, outcome: AppendOutcome) -> Result<AppendResult, ServiceError> {
    match outcome {
        AppendOutcome::Appended {
            first_offset,
            last_offset,
        }
        | AppendOutcome::Duplicate {
            first_offset,
            last_offset,
        } => Ok(AppendResult {
            first_offset,
            last_offset,
            index: log_id.index,
            term: log_id.term,
        }),
        AppendOutcome::StaleProducerSeq { last_seq } => {
            Err(ServiceError::StaleProducerSeq { last_seq })
        }
        AppendOutcome::OffsetMismatch { next_offset } => {
            Err(ServiceError::OffsetMismatch { next_offset })
        }
        AppendOutcome::Rejected { reason } => Err(ServiceError::BadRequest(reason)),
    }
}

pub fn submit_error(
    error: SubmitError,
    leader_http: impl Fn(Option<NodeId>) -> Option<String>,
) -> ServiceError {
    match error {
        SubmitError::NotLeader { leader, .. } => match leader_http(leader) {
            Some(url) => ServiceError::NotLeader {
                leader_http: Some(url),
            },
            None => ServiceError::unavailable("no leader is known right now", RETRY_AFTER_ELECTION),
        },
        SubmitError::Busy => ServiceError::unavailable(
            "too many writes are waiting to commit; slow down",
            Duration::from_millis(50),
        ),
        SubmitError::Superseded => ServiceError::unavailable(
            "leadership changed before the write committed; it was not written",
            RETRY_AFTER_ELECTION,
        ),
        SubmitError::NodeStopped => stopping(),
    }
}

pub fn read_failure(
    failure: ReadFailure,
    leader_http: impl Fn(Option<NodeId>) -> Option<String>,
) -> ServiceError {
    match failure {
        ReadFailure::NotConfirmed(ReadError::NotLeader { leader }) => match leader_http(leader) {
            Some(url) => ServiceError::NotLeader {
                leader_http: Some(url),
            },
            None => {
                ServiceError::unavailable("no leader could confirm the read", RETRY_AFTER_ELECTION)
            }
        },
        ReadFailure::NodeStopped => stopping(),
        ReadFailure::Storage(message) => ServiceError::Internal(message),
    }
}
