//! The proposal batcher: gathers append requests that arrive together into one log entry, so
//! that one Raft entry, one WAL record and one AppendEntries slot carry many requests. This is
//! where most of the write throughput comes from.
//!
//! A batch is proposed when it reaches `requests_max` or `bytes_max`, or after `linger` (zero:
//! as soon as the requests already queued in the mailbox have joined it). Each request gets its
//! own outcome back, with the entry that carried it.
//!
//! Takes: [`Append`].

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::node::apply_actor::{ApplyActor, Proposal, Submit, SubmitError};
use crate::node::metrics as node_metrics;
use crate::streams::{AppendCommand, AppendOutcome, CommandBatch, StreamCommand};
use crate::types::{LogId, NodeId};

/// The batching knobs (`[batching]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub linger: Duration,
    pub requests_max: usize,
    pub bytes_max: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            linger: Duration::ZERO,
            requests_max: 1024,
            bytes_max: 4 << 20,
        }
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
        }
    }

    fn propose(&mut self, ctx: &mut Context<Self>) {
        if let Some(Scheduled::Timer(handle)) = self.scheduled.take() {
            ctx.cancel_future(handle);
        }
        if self.commands.is_empty() {
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
        if self.commands.len() >= self.limits.requests_max || self.bytes >= self.limits.bytes_max {
            self.propose(ctx);
        } else if self.scheduled.is_none() {
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
