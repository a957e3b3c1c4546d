//! The bounded window of AppendEntries a leader has sent to one follower and not yet seen
//! acknowledged. Bounding it by count and by bytes is the flow control that keeps a slow
//! follower from making the leader buffer without limit.

use std::collections::VecDeque;

use crate::types::{LogIndex, MonoTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InflightAppend {
    last_index: LogIndex,
    bytes: u64,
    sent_at: MonoTime,
}

#[derive(Clone, Debug)]
pub struct Inflight {
    count_max: usize,
    bytes_max: u64,
    appends: VecDeque<InflightAppend>,
    bytes: u64,
}

impl Inflight {
    pub fn new(count_max: usize, bytes_max: u64) -> Self {
        assert!(
            count_max > 0 && bytes_max > 0,
            "an empty window could never send"
        );
        Self {
            count_max,
            bytes_max,
            appends: VecDeque::with_capacity(count_max),
            bytes: 0,
        }
    }

    /// Whether another append may be sent. A window holding bytes over the limit is full, but
    /// an empty window always admits one append, however large, so progress never stalls.
    pub fn is_full(&self) -> bool {
        self.appends.len() >= self.count_max || self.bytes >= self.bytes_max
    }

    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
    }

    pub fn len(&self) -> usize {
        self.appends.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records a sent append covering entries through `last_index`.
    pub fn push(&mut self, last_index: LogIndex, bytes: u64, sent_at: MonoTime) {
        assert!(!self.is_full(), "sent into a full window");
        if let Some(back) = self.appends.back() {
            assert!(
                back.last_index < last_index,
                "appends are sent in index order"
            );
        }
        self.appends.push_back(InflightAppend {
            last_index,
            bytes,
            sent_at,
        });
        self.bytes += bytes;
    }

    /// Frees every append acknowledged by a match through `index`.
    pub fn free_through(&mut self, index: LogIndex) {
        while let Some(front) = self.appends.front() {
            if front.last_index > index {
                break;
            }
            self.bytes -= front.bytes;
            self.appends.pop_front();
        }
    }

    /// When the oldest unacknowledged append was sent.
    pub fn oldest_sent_at(&self) -> Option<MonoTime> {
        self.appends.front().map(|a| a.sent_at)
    }

    pub fn clear(&mut self) {
        self.appends.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_by_count_and_by_bytes() {
        let mut w = Inflight::new(2, 100);
        w.push(LogIndex(1), 10, MonoTime(0));
        assert!(!w.is_full());
        w.push(LogIndex(2), 10, MonoTime(0));
        assert!(w.is_full(), "count");
        let mut w = Inflight::new(10, 100);
        w.push(LogIndex(1), 150, MonoTime(0));
        assert!(w.is_full(), "bytes: one oversized append fills it");
    }

    #[test]
    fn frees_in_order() {
        let mut w = Inflight::new(4, 1000);
        for i in 1..=4 {
            w.push(LogIndex(i * 10), 10, MonoTime(i));
        }
        w.free_through(LogIndex(25));
        assert_eq!((w.len(), w.bytes()), (2, 20));
        assert_eq!(w.oldest_sent_at(), Some(MonoTime(3)));
        w.free_through(LogIndex(40));
        assert!(w.is_empty());
        assert_eq!(w.bytes(), 0);
    }
}
