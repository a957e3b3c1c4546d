//! Events that more than one actor receives. Each carries the term it belongs to, so a
//! receiver that has moved on can drop what is stale. Events are past tense; the commands an
//! actor takes live in that actor's file.

use actix::Message;

use crate::raft::election::RoleState;
use crate::types::{LogIndex, Term};

/// Term, role or known leader changed. Sent by the election actor, in this order, to the
/// router (which starts and stops replicators), the apply actor and the WAL actor — the
/// router first, so replicators exist before the WAL announces the new leader's no-op.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct RoleChanged(pub RoleState);

/// Entries through `index` are committed. From the election actor (leader: by counting
/// matches; follower: from a heartbeat) and from the WAL actor (follower: from an
/// AppendEntries).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Committed {
    pub index: LogIndex,
}

/// The WAL appended entries through `last_index` as leader of `term`: replicators may ship
/// them (the leader's own flush runs in parallel).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Appended {
    pub term: Term,
    pub last_index: LogIndex,
}

/// The local log is durable through `index`. `term` is the WAL's view of the current term
/// when the flush finished; the election actor counts it as the leader's own match only when
/// that is the term it leads.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct DurableUpTo {
    pub term: Term,
    pub index: LogIndex,
}

/// The leader's no-op for `term` landed at `index`: counting replicas for commit may begin
/// there (Raft §5.4.2).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct TermStarted {
    pub term: Term,
    pub index: LogIndex,
}
