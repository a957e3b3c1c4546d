//! One peer's outbound queue: bounded, and when full it drops the *oldest* message.
//!
//! Why the oldest: Raft messages go stale. A queue fills while its peer is unreachable, and
//! what it then holds are heartbeats and AppendEntries from moments (or terms) ago, which the
//! peer will mostly ignore. Keeping the newest means that on reconnect the peer first hears
//! the leader's current term and commit index instead of a backlog of outdated ones; the
//! leader's replicator re-sends whatever log entries were lost, as it does for any loss.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::raft::message::PeerMessage;

pub(crate) struct PeerQueue {
    messages: Mutex<VecDeque<PeerMessage>>,
    message_count_max: usize,
    /// Wakes the writer. `notify_one` stores a permit when the writer is not waiting, so a
    /// push between the writer's "queue is empty" and its wait is not lost.
    pushed: Notify,
}

impl PeerQueue {
    pub(crate) fn new(message_count_max: usize) -> PeerQueue {
        assert!(
            message_count_max > 0,
            "a peer queue must hold at least one message"
        );
        PeerQueue {
            messages: Mutex::new(VecDeque::new()),
            message_count_max,
            pushed: Notify::new(),
        }
    }

    /// Queues `message`; returns whether the oldest queued message was dropped for room.
    pub(crate) fn push(&self, message: PeerMessage) -> bool {
        let dropped_oldest = {
            let mut messages = self.messages.lock().expect("peer queue lock poisoned");
            let full = messages.len() >= self.message_count_max;
            if full {
                messages.pop_front();
            }
            messages.push_back(message);
            assert!(messages.len() <= self.message_count_max);
            full
        };
        self.pushed.notify_one();
        dropped_oldest
    }

    /// Moves up to `count_max` of the oldest messages into `batch`, in queue order.
    pub(crate) fn take_batch(&self, batch: &mut Vec<PeerMessage>, count_max: usize) {
        let mut messages = self.messages.lock().expect("peer queue lock poisoned");
        let count = messages.len().min(count_max);
        batch.extend(messages.drain(..count));
    }

    /// Completes after the next push (or at once if one happened since the last wait).
    pub(crate) async fn wait_for_push(&self) {
        self.pushed.notified().await;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::{Heartbeat, MessageBody};
    use crate::types::{LogIndex, NodeId, Term};

    fn heartbeat(round: u64) -> PeerMessage {
        PeerMessage {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: MessageBody::Heartbeat(Heartbeat {
                commit: LogIndex(0),
                round,
            }),
        }
    }

    fn rounds(batch: &[PeerMessage]) -> Vec<u64> {
        batch
            .iter()
            .map(|m| match &m.body {
                MessageBody::Heartbeat(h) => h.round,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_keeps_order() {
        let queue = PeerQueue::new(3);
        for round in 1..=3 {
            assert!(!queue.push(heartbeat(round)));
        }
        assert!(queue.push(heartbeat(4)));
        assert!(queue.push(heartbeat(5)));
        assert_eq!(queue.len(), 3);

        let mut batch = Vec::new();
        queue.take_batch(&mut batch, 2);
        assert_eq!(rounds(&batch), vec![3, 4]);
        queue.take_batch(&mut batch, 10);
        assert_eq!(rounds(&batch), vec![3, 4, 5]);
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_lost() {
        let queue = PeerQueue::new(3);
        queue.push(heartbeat(1));
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.wait_for_push())
            .await
            .expect("the stored permit wakes the waiter");
    }
}
