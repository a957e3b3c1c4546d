//! The proposal batcher: gathers append requests that arrive together into one log entry, so
//! that one Raft entry, one WAL record and one AppendEntries slot carry many requests. This is
//! where most of the write throughput comes from.
//!
//! A batch is proposed when it reaches `requests_max` or `bytes_max`, or after `linger` (zero:
//! as soon as the requests already queued in the mailbox have joined it). Each request gets its
//! own outcome back, with the entry that carried it.
//!
//! While this node leads and `in_flight_max` proposed batches are still waiting to be
//! applied, a batch that is not full waits too, gathering, and goes as soon as one of them is
//! answered. A lone write finds nothing in flight and goes at once; under load the batches
//! grow with the commit latency, so the entries, AppendEntries and apply calls per write fall
//! — on a CPU-bound machine that buys back more latency than the wait costs. Only a leader
//! holds batches back: a proposal made before this node lost its leadership may stay
//! unanswered until a new leader's entries reach that index, and the writes behind it must
//! not wait for that — proposed, they are refused at once with the leader to ask.
//!
//! Takes: [`Append`], and [`RoleChanged`] from the election actor.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::node::apply_actor::{ApplyActor, Proposal, Submit, SubmitError};
use crate::node::events::RoleChanged;
use crate::node::metrics as node_metrics;
use crate::raft::election::Role;
use crate::streams::{AppendCommand, AppendOutcome, CommandBatch, StreamCommand};
use crate::types::{LogId, NodeId};

/// The batching knobs (`[batching]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub linger: Duration,
    pub requests_max: usize,
    pub bytes_max: usize,
    /// Proposed batches waiting to be applied before a batch that is not full waits for one
    /// of them; 0: no limit.
    pub in_flight_max: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            linger: Duration::ZERO,
            requests_max: 1024,
            bytes_max: 4 << 20,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

/// The default of [`BatchLimits::in_flight_max`] (`batching.proposals_in_flight_max`).
pub const IN_FLIGHT_MAX_DEFAULT: usize = 1;

impl BatchLimits {
    /// Whether a batch of `requests` appends and `bytes` record bytes must go now.
    fn is_full(&self, requests: usize, bytes: usize) -> bool {
        requests >= self.requests_max || bytes >= self.bytes_max
    }

    /// Whether, with `in_flight` batches awaiting their answers, a batch that is not full
    /// waits for one of them. Only a leader's does (the module doc says why).
    fn must_wait(&self, leading: bool, in_flight: usize) -> bool {
        leading && self.in_flight_max > 0 && in_flight >= self.in_flight_max
    }
}

pub type AppendReply = Result<(LogId, AppendOutcome), SubmitError>;

/// One append request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Append {
    pub command: AppendCommand,
    pub reply: oneshot::Sender<AppendReply>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct ProposeBatch;

/// One proposed batch was answered (applied, or failed).
#[derive(Message)]
#[rtype(result = "()")]
struct BatchAnswered;

pub struct ProposalBatcher {
    apply: Addr<ApplyActor>,
    limits: BatchLimits,
    commands: Vec<AppendCommand>,
    replies: Vec<oneshot::Sender<AppendReply>>,
    bytes: usize,
    /// A pending [`ProposeBatch`]: a timer when lingering, else a notification queued behind
    /// the mailbox. (With no linger, a zero-length timer would still wait for the timer
    /// wheel's next millisecond tick — a millisecond added to every lone write.)
    scheduled: Option<Scheduled>,
    /// Proposed batches not yet answered.
    in_flight: usize,
    /// Whether this node leads, as the election actor last said.
    leading: bool,
    /// Appends per proposed entry.
    batch_requests: metrics::Histogram,
}

enum Scheduled {
    Timer(SpawnHandle),
    Notified,
}

impl ProposalBatcher {
    pub fn new(node: NodeId, apply: Addr<ApplyActor>, limits: BatchLimits) -> Self {
        Self {
            batch_requests: node_metrics::proposal_batch_histogram(node),
            apply,
            limits,
            commands: Vec::new(),
            replies: Vec::new(),
            bytes: 0,
            scheduled: None,
            in_flight: 0,
            leading: false,
        }
    }

    fn is_full(&self) -> bool {
        self.limits.is_full(self.commands.len(), self.bytes)
    }

    fn must_wait(&self) -> bool {
        self.limits.must_wait(self.leading, self.in_flight)
    }

    /// Proposes a batch that was held back, unless a [`ProposeBatch`] is already on its way.
    fn propose_held(&mut self, ctx: &mut Context<Self>) {
        if self.scheduled.is_none() {
            self.propose(ctx);
        }
    }

    /// Proposes the gathered batch, unless it is not full and too many are in flight: then
    /// it waits for [`BatchAnswered`].
    fn propose(&mut self, ctx: &mut Context<Self>) {
        if let Some(Scheduled::Timer(handle)) = self.scheduled.take() {
            ctx.cancel_future(handle);
        }
        if self.commands.is_empty() || (self.must_wait() && !self.is_full()) {
            return;
        }
        let commands: Vec<StreamCommand> =
            self.commands.drain(..).map(StreamCommand::Append).collect();
        let replies = std::mem::take(&mut self.replies);
        self.batch_requests.record(replies.len() as f64);
        self.bytes = 0;
        let (reply, result) = oneshot::channel();
        let proposal = Proposal::Streams(CommandBatch { commands });
        self.apply.do_send(Submit {
            proposal,
            fence: None,
            reply,
        });
        self.in_flight += 1;
        let batcher = ctx.address();
        actix::spawn(async move {
            match result.await.unwrap_or(Err(SubmitError::NodeStopped)) {
                Ok(applied) => {
                    assert_eq!(
                        applied.outcomes.len(),
                        replies.len(),
                        "one outcome per command"
                    );
                    for (reply, outcome) in replies.into_iter().zip(applied.outcomes) {
                        let _ = reply.send(Ok((applied.log_id, outcome)));
                    }
                }
                Err(error) => {
                    for reply in replies {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            batcher.do_send(BatchAnswered);
        });
    }
}

impl Actor for ProposalBatcher {
    type Context = Context<Self>;
}

impl Handler<Append> for ProposalBatcher {
    type Result = ();

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) {
        self.bytes += msg.command.records.iter().map(|r| r.len()).sum::<usize>();
        self.commands.push(msg.command);
        self.replies.push(msg.reply);
        if self.is_full() {
            self.propose(ctx);
        } else if self.scheduled.is_none() && !self.must_wait() {
            self.scheduled = Some(if self.limits.linger.is_zero() {
                // Runs once the messages already in the mailbox have been handled.
                ctx.notify(ProposeBatch);
                Scheduled::Notified
            } else {
                Scheduled::Timer(ctx.notify_later(ProposeBatch, self.limits.linger))
            });
        }
    }
}

impl Handler<ProposeBatch> for ProposalBatcher {
    type Result = ();

    fn handle(&mut self, _: ProposeBatch, ctx: &mut Context<Self>) {
        if matches!(self.scheduled, Some(Scheduled::Notified)) {
            self.scheduled = None;
        }
        self.propose(ctx);
    }
}

impl Handler<BatchAnswered> for ProposalBatcher {
    type Result = ();

    fn handle(&mut self, _: BatchAnswered, ctx: &mut Context<Self>) {
        self.in_flight -= 1;
        // What gathered while waiting has waited long enough: no linger.
        self.propose_held(ctx);
    }
}

impl Handler<RoleChanged> for ProposalBatcher {
    type Result = ();

    fn handle(&mut self, RoleChanged(role): RoleChanged, ctx: &mut Context<Self>) {
        self.leading = role.role == Role::Leader;
        // A batch held back behind proposals of a lost leadership goes now.
        if !self.leading {
            self.propose_held(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(in_flight_max: usize) -> BatchLimits {
        BatchLimits {
            linger: Duration::ZERO,
            requests_max: 4,
            bytes_max: 100,
            in_flight_max,
        }
    }

    #[test]
    fn a_batch_is_full_at_either_limit() {
        let limits = limits(2);
        assert!(!limits.is_full(3, 99));
        assert!(limits.is_full(4, 0));
        assert!(limits.is_full(1, 100));
    }

    #[test]
    fn a_leaders_batch_waits_only_while_the_most_batches_allowed_are_in_flight() {
        let limits = limits(2);
        assert!(!limits.must_wait(true, 0));
        assert!(!limits.must_wait(true, 1));
        assert!(limits.must_wait(true, 2));
        assert!(limits.must_wait(true, 3));
        // 0: no limit.
        assert!(!self::limits(0).must_wait(true, 1_000));
        // Not leading: never.
        assert!(!limits.must_wait(false, 3));
    }
}
