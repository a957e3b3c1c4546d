//! [`Error`]: every way a library call can fail, typed so that an embedding program can act
//! on it — follow the leader hint, retry later, or treat the outcome as unknown.

use crate::embed::Appended;
use crate::node::{ReadError, ReadFailure, SubmitError};
use crate::streams::AppendOutcome;
use crate::types::{LogId, NodeId, Offset, Term};

/// Why a call on a [`Raftlog`](crate::embed::Raftlog) handle failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This node is not the leader — or, for a call fenced by a term, not the leader *of that
    /// term*. `term` is the term this node is in; `leader` its leader, if known. Nothing was
    /// written.
    #[error("this node is not the leader of the requested term (term {term}, leader {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any: where to send the call.
        leader: Option<NodeId>,
        /// The term this node is in.
        term: Term,
    },
    /// A linearizable read could not be confirmed by a leader: none is known, or the one
    /// asked lost its leadership meanwhile. Retry, or read from `leader`.
    #[error("no leader could confirm the read (leader {leader:?})")]
    ReadNotConfirmed {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// Too many writes are waiting to commit; retry after a short pause. Nothing was written.
    #[error("too many uncommitted writes; retry shortly")]
    Busy,
    /// Leadership changed before the write committed, and it never will. Nothing was written.
    #[error("leadership changed before the write committed; it was not written")]
    NotCommitted,
    /// The node stopped before answering: the write may or may not have committed. Retry
    /// with the same producer id and sequence number to find out without writing twice.
    #[error("the node stopped before answering; the write may or may not have committed")]
    Stopped,
    /// An idempotent producer's `seq` is below its last applied one. Nothing was written.
    #[error("producer sequence number is stale; its last applied one is {last_seq}")]
    StaleProducerSeq {
        /// The producer's last applied sequence number.
        last_seq: u64,
    },
    /// A conditional append's `expected_offset` was not the stream's next offset. Nothing
    /// was written.
    #[error("the stream's next offset is {next_offset}, not the expected one")]
    OffsetMismatch {
        /// The stream's next offset.
        next_offset: Offset,
    },
    /// The request is invalid (an empty stream name, an empty append, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The offset asked for is below the oldest one the stream still holds.
    #[error("offset out of range; the stream starts at {start_offset}")]
    OffsetOutOfRange {
        /// The first offset the stream still holds.
        start_offset: Offset,
    },
    /// The target of a leadership transfer is not a voter of the cluster.
    #[error("node {0} is not a voter of this cluster")]
    NotAVoter(NodeId),
    /// The target of a leadership transfer did not take over in time (it is down, or too
    /// far behind); the old leader goes on leading.
    #[error("node {to} did not take over leadership in time")]
    TransferTimedOut {
        /// The voter that was to take over.
        to: NodeId,
    },
    /// The node could not start: a bad config, an unreadable data directory, a port in use.
    #[error("the node could not start: {0}")]
    Start(String),
    /// Reading the log failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<SubmitError> for Error {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::NotLeader { leader, term } => Error::NotLeader { leader, term },
            SubmitError::Busy => Error::Busy,
            SubmitError::Superseded => Error::NotCommitted,
            SubmitError::NodeStopped => Error::Stopped,
        }
    }
}

impl From<ReadFailure> for Error {
    fn from(failure: ReadFailure) -> Self {
        match failure {
            ReadFailure::NotConfirmed(ReadError::NotLeader { leader }) => {
                Error::ReadNotConfirmed { leader }
            }
            ReadFailure::NodeStopped => Error::Stopped,
            ReadFailure::Storage(message) => Error::Storage(message),
        }
    }
}

/// What an applied append's outcome means for its caller: where it landed, or why not.
pub(crate) fn appended(log_id: LogId, outcome: AppendOutcome) -> Result<Appended, Error> {
    let (first_offset, last_offset, duplicate) = match outcome {
        AppendOutcome::Appended {
            first_offset,
            last_offset,
        } => (first_offset, last_offset, false),
        AppendOutcome::Duplicate {
            first_offset,
            last_offset,
        } => (first_offset, last_offset, true),
        AppendOutcome::StaleProducerSeq { last_seq } => {
            return Err(Error::StaleProducerSeq { last_seq })
        }
        AppendOutcome::OffsetMismatch { next_offset } => {
            return Err(Error::OffsetMismatch { next_offset })
        }
        AppendOutcome::Rejected { reason } => return Err(Error::Invalid(reason)),
    };
    Ok(Appended {
        first_offset,
        last_offset,
        log_id,
        duplicate,
    })
}
