//! [`Raftlog`]: the handle through which a program — an embedding broker, or raftlog's own
//! HTTP service — appends, proposes, reads, subscribes and watches leadership. Every call
//! turns into messages to the node's actors; no Raft state lives here.

use std::time::Duration;

use ::metrics::Counter;
use bytes::Bytes;
use tokio::sync::watch;

use crate::embed::subscription::{self, Record, Subscription};
use crate::embed::{error, Error};
use crate::node::{metrics, NodeHandle, NodeStatus, Proposal};
use crate::raft::leader_view::LeaderView;
use crate::raft::read::ReadLevel;
use crate::streams::StreamInfo;
use crate::streams::{AppendCommand, CommandBatch, ProducerSeq, StreamCommand};
use crate::types::{LogId, LogIndex, NodeId, Offset, Term};

/// How fresh a read must be (API.md, "Read").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// ReadIndex through the leader: sees every write acknowledged before the read began.
    #[default]
    Linearizable,
    /// The leader answers locally while its lease holds, else falls back to ReadIndex.
    Lease,
    /// This node's applied state, without coordination: may lag behind the leader.
    Stale,
}

/// One append: records for a stream, and optionally the conditions it must meet.
///
/// Without conditions, concurrent appends through one node are batched into one log entry.
/// With [`in_term`](Append::in_term) the append is fenced: it is written only by the leader
/// of exactly that term, or fails with [`Error::NotLeader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    command: AppendCommand,
    term: Option<Term>,
}

impl Append {
    /// Records for `stream`, appended in order at consecutive offsets.
    pub fn new<R: Into<Bytes>>(
        stream: impl Into<String>,
        records: impl IntoIterator<Item = R>,
    ) -> Self {
        Append {
            command: AppendCommand {
                stream: stream.into(),
                records: records.into_iter().map(Into::into).collect(),
                producer: None,
                expected_offset: None,
            },
            term: None,
        }
    }

    /// An idempotent producer write: a retry with the same `id` and `seq` returns the
    /// original offsets and writes nothing twice — also after a leader change or a restart.
    pub fn producer(mut self, id: impl Into<String>, seq: u64) -> Self {
        self.command.producer = Some(ProducerSeq { id: id.into(), seq });
        self
    }

    /// Writes only if the stream's next offset is `offset`; otherwise
    /// [`Error::OffsetMismatch`].
    pub fn expected_offset(mut self, offset: Offset) -> Self {
        self.command.expected_offset = Some(offset);
        self
    }

    /// Writes only as the leader of `term` (KRaft's epoch-fenced append): if this node is
    /// not the leader of exactly that term, [`Error::NotLeader`] and nothing is written.
    pub fn in_term(mut self, term: Term) -> Self {
        self.term = Some(term);
        self
    }
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The offset of the first record.
    pub first_offset: Offset,
    /// The offset of the last record.
    pub last_offset: Offset,
    /// The log entry that carries the records (for a duplicate, the retry's entry).
    pub log_id: LogId,
    /// A retry of an idempotent producer's write that was already applied: these are the
    /// original offsets, and nothing was written this time.
    pub duplicate: bool,
}

/// An application command, applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// The log entry that carries the command.
    pub log_id: LogId,
    /// What the application's [`StateMachine::apply`](crate::embed::StateMachine::apply)
    /// returned for it.
    pub output: Bytes,
}

/// Records read from a stream, and the stream's bounds when they were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Records {
    /// The records, in offset order, from the offset asked for.
    pub records: Vec<Record>,
    /// The first offset the stream still holds.
    pub start_offset: Offset,
    /// The offset the stream's next record will get.
    pub end_offset: Offset,
}

/// A handle on a running node: cheap to clone, usable from any thread and any async
/// runtime. Writes must go through the leader; reads and subscriptions work on any node.
/// See the [module example](crate::embed) for a tour.
#[derive(Clone)]
pub struct Raftlog {
    node: NodeHandle,
    /// How long [`transfer_leadership`](Raftlog::transfer_leadership) waits for the target
    /// to take over.
    transfer_timeout: Duration,
    reads_served: ReadsServed,
}

impl Raftlog {
    pub(crate) fn new(node: NodeHandle, transfer_timeout: Duration) -> Self {
        Raftlog {
            reads_served: ReadsServed::new(node.id),
            node,
            transfer_timeout,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.node.id
    }

    /// Appends `records` to `stream` through this node, which must lead; resolves once they
    /// are committed and applied here. Shorthand for [`append_with`](Raftlog::append_with).
    pub async fn append<R: Into<Bytes>>(
        &self,
        stream: &str,
        records: impl IntoIterator<Item = R>,
    ) -> Result<Appended, Error> {
        self.append_with(Append::new(stream, records)).await
    }

    /// Appends as `append` says; resolves once the records are committed and applied on this
    /// node, with their offsets.
    pub async fn append_with(&self, append: Append) -> Result<Appended, Error> {
        let (log_id, outcome) = match append.term {
            None => self.node.append(append.command).await?,
            Some(term) => {
                let batch = CommandBatch {
                    commands: vec![StreamCommand::Append(append.command)],
                };
                let mut applied = self
                    .node
                    .propose(Proposal::Streams(batch), Some(term))
                    .await?;
                let outcome = applied.outcomes.pop().ok_or_else(|| {
                    Error::Storage("an applied append had no outcome".to_string())
                })?;
                (applied.log_id, outcome)
            }
        };
        error::appended(log_id, outcome)
    }

    /// Proposes a command for the application's state machine through this node, which must
    /// lead; resolves once it is applied here, with what the state machine returned.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use bytes::Bytes;
    /// use raftlog::embed::{ClusterConfig, Consistency, RaftlogNode, StateMachine};
    /// use raftlog::types::LogIndex;
    ///
    /// /// Adds up the numbers proposed; the program reads the total through the shared `Arc`.
    /// #[derive(Clone, Default)]
    /// struct Sum(Arc<Mutex<u64>>);
    ///
    /// impl StateMachine for Sum {
    ///     fn apply(&mut self, _: LogIndex, command: &[u8]) -> Bytes {
    ///         let mut total = self.0.lock().unwrap();
    ///         *total += std::str::from_utf8(command).unwrap().parse::<u64>().unwrap();
    ///         Bytes::from(total.to_string())
    ///     }
    ///     fn snapshot(&self) -> Bytes { Bytes::from(self.0.lock().unwrap().to_string()) }
    ///     fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
    ///         let text = std::str::from_utf8(snapshot).map_err(|e| e.to_string())?;
    ///         *self.0.lock().unwrap() = text.parse().map_err(|_| "not a sum".to_string())?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), raftlog::embed::Error> {
    /// # let dir = std::env::temp_dir().join(format!("raftlog-doc-propose-{}", std::process::id()));
    /// let config = ClusterConfig::new("doc").member(1, "127.0.0.1:0", "http://127.0.0.1:0").node(1, &dir)?;
    /// let sum = Sum::default();
    /// let node = RaftlogNode::builder(config).state_machine(sum.clone()).start().await?;
    /// let log = node.handle();
    /// log.leader_changes().wait_for(|view| view.leader.is_some()).await.unwrap();
    ///
    /// assert_eq!(log.propose("40").await?.output, "40");
    /// assert_eq!(log.propose("2").await?.output, "42");
    /// // After a linearizable barrier, the state holds every acknowledged command.
    /// log.linearize(Consistency::Linearizable).await?;
    /// assert_eq!(*sum.0.lock().unwrap(), 42);
    /// assert_eq!(log.application_snapshot().await.unwrap(), "42");
    /// node.shutdown().await;
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn propose(&self, command: impl Into<Bytes>) -> Result<Proposed, Error> {
        self.propose_fenced(command.into(), None).await
    }

    /// [`propose`](Raftlog::propose), written only by the leader of exactly `term`: a
    /// controller that acts on what it saw as the leader of `term` can never have its
    /// decision land in a later term.
    pub async fn propose_in_term(
        &self,
        command: impl Into<Bytes>,
        term: Term,
    ) -> Result<Proposed, Error> {
        self.propose_fenced(command.into(), Some(term)).await
    }

    async fn propose_fenced(&self, command: Bytes, term: Option<Term>) -> Result<Proposed, Error> {
        let applied = self
            .node
            .propose(Proposal::Application(command), term)
            .await?;
        Ok(Proposed {
            log_id: applied.log_id,
            output: applied.output,
        })
    }

    /// Up to `limit` records of `stream` from offset `from`, as fresh as `consistency` asks.
    /// An empty result at the stream's end is not an error; an offset below its start is.
    pub async fn read(
        &self,
        stream: &str,
        from: Offset,
        limit: usize,
        consistency: Consistency,
    ) -> Result<Records, Error> {
        let limit = limit.max(1);
        let read = match read_level(consistency) {
            None => self
                .node
                .read_stale(stream, from, limit)
                .await
                .map_err(Error::Storage)?,
            Some(level) => {
                self.node
                    .read_linearizable(stream, from, limit, level)
                    .await?
            }
        };
        if from < read.info.start_offset {
            return Err(Error::OffsetOutOfRange {
                start_offset: read.info.start_offset,
            });
        }
        self.reads_served.at(consistency).increment(1);
        let records = read.records.into_iter();
        Ok(Records {
            records: records
                .map(|(offset, value)| Record { offset, value })
                .collect(),
            start_offset: read.info.start_offset,
            end_offset: read.info.end_offset,
        })
    }

    /// Waits until this node's state is as fresh as `consistency` asks — for a linearizable
    /// level, until it has applied every write acknowledged before this call — and returns
    /// its applied index. Read the application state machine's state after this to read it
    /// linearizably.
    pub async fn linearize(&self, consistency: Consistency) -> Result<LogIndex, Error> {
        match read_level(consistency) {
            Some(level) => Ok(self.node.linearize(level).await?),
            None => self.node.applied_index().await.ok_or(Error::Stopped),
        }
    }

    /// The committed records of `stream` from offset `from` on, as an endless stream (see
    /// [`Subscription`]). Works on any node; a slow consumer slows its reads, nothing else.
    pub fn subscribe(&self, stream: &str, from: Offset) -> Subscription {
        subscription::subscribe(self.node.clone(), stream.to_string(), from)
    }

    /// Resolves once this node has applied a record at `offset` of `stream`; `false` if the
    /// node stopped first. The building block of long-polls.
    pub async fn wait_for_record(&self, stream: &str, offset: Offset) -> bool {
        self.node.wait_for_record(stream, offset).await
    }

    /// Who leads, as a watch. A new leader is published only once this node has applied
    /// everything committed before that leader's term began, so a controller that sees
    /// itself lead acts on complete state; a lost leader is published at once (`leader:
    /// None`), so it stops acting.
    pub fn leader_changes(&self) -> watch::Receiver<LeaderView> {
        self.node.leader_view()
    }

    /// Hands leadership to node `to` and waits until this node sees `to` lead. Fails with
    /// [`Error::NotLeader`] if this node does not lead, and [`Error::TransferTimedOut`] if
    /// `to` does not take over within a few election timeouts (this node then goes on
    /// leading).
    ///
    /// ```
    /// use raftlog::embed::{ClusterConfig, Error, RaftlogNode};
    /// use raftlog::types::NodeId;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Error> {
    /// # let dir = std::env::temp_dir().join(format!("raftlog-doc-transfer-{}", std::process::id()));
    /// let cluster = ClusterConfig::on_free_loopback_ports("doc", 3);
    /// let mut nodes = Vec::new();
    /// for id in 1..=3 {
    ///     let config = cluster.node(id, dir.join(format!("n{id}")))?;
    ///     nodes.push(RaftlogNode::builder(config).start().await?);
    /// }
    /// let logs: Vec<_> = nodes.iter().map(|node| node.handle()).collect();
    /// let leader = *logs[0].leader_changes().wait_for(|v| v.leader.is_some()).await.unwrap();
    /// let leader = leader.leader.unwrap();
    /// let next = NodeId(leader.0 % 3 + 1);
    ///
    /// let current = &logs[leader.0 as usize - 1];
    /// current.transfer_leadership(next).await?;
    /// assert_eq!(current.leader_changes().borrow().leader, Some(next));
    /// // Only a leader hands over.
    /// let refused = current.transfer_leadership(leader).await;
    /// assert!(matches!(refused, Err(Error::NotLeader { leader: Some(l), .. }) if l == next));
    ///
    /// for node in nodes {
    ///     node.shutdown().await;
    /// }
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<(), Error> {
        let mut leader = self.node.leader_view();
        if let Err(refused) = self.node.transfer_leadership(to).await {
            return Err(match refused {
                crate::raft::election::TransferError::NotAVoter(id) => Error::NotAVoter(id),
                crate::raft::election::TransferError::NotLeader { leader } => {
                    let term = self.node.role().await.map_or(Term(0), |role| role.term);
                    Error::NotLeader { leader, term }
                }
            });
        }
        let took_over = async {
            leader
                .wait_for(|view| view.leader == Some(to))
                .await
                .is_ok()
        };
        match tokio::time::timeout(self.transfer_timeout, took_over).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Stopped),
            Err(_) => Err(Error::TransferTimedOut { to }),
        }
    }

    /// Steps down as leader without naming a successor; the others elect one. Does nothing
    /// on a follower.
    pub fn resign(&self) {
        self.node.resign();
    }

    /// Every stream this node has applied, with its bounds, sorted by name.
    pub async fn streams(&self) -> Result<Vec<(String, StreamInfo)>, Error> {
        self.node.list_streams().await.ok_or(Error::Stopped)
    }

    /// Role, term, commit and apply progress, and (on the leader) each follower's progress;
    /// `None` once the node has stopped.
    pub async fn status(&self) -> Option<NodeStatus> {
        self.node.status().await
    }

    /// The application state machine's [`snapshot`](crate::embed::StateMachine::snapshot)
    /// as of this node's applied index; `None` without one.
    pub async fn application_snapshot(&self) -> Option<Bytes> {
        self.node.snapshot_application().await
    }
}

/// Reads served by one node, a counter per consistency level.
#[derive(Clone)]
struct ReadsServed {
    linearizable: Counter,
    lease: Counter,
    stale: Counter,
}

impl ReadsServed {
    fn new(node: NodeId) -> Self {
        ReadsServed {
            linearizable: metrics::reads_served_counter(node, "linearizable"),
            lease: metrics::reads_served_counter(node, "lease"),
            stale: metrics::reads_served_counter(node, "stale"),
        }
    }

    fn at(&self, consistency: Consistency) -> &Counter {
        match consistency {
            Consistency::Linearizable => &self.linearizable,
            Consistency::Lease => &self.lease,
            Consistency::Stale => &self.stale,
        }
    }
}

fn read_level(consistency: Consistency) -> Option<ReadLevel> {
    match consistency {
        Consistency::Linearizable => Some(ReadLevel::ReadIndex),
        Consistency::Lease => Some(ReadLevel::Lease),
        Consistency::Stale => None,
    }
}
