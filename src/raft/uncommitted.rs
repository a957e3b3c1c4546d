//! The leader's cap on uncommitted bytes: proposals beyond it are refused (the client sees a
//! 503 and retries) instead of piling up in memory while a quorum is slow or gone.

use std::collections::VecDeque;

use crate::types::LogIndex;

#[derive(Clone, Debug)]
pub struct UncommittedBytes {
    bytes_max: u64,
    bytes: u64,
    /// Proposals not yet committed: (last index, bytes), in index order.
    pending: VecDeque<(LogIndex, u64)>,
}

impl UncommittedBytes {
    pub fn new(bytes_max: u64) -> Self {
        Self {
            bytes_max,
            bytes: 0,
            pending: VecDeque::new(),
        }
    }

    /// Whether `bytes` more may be proposed. An empty budget admits one proposal of any
    /// size, so an oversized (but otherwise valid) proposal is not refused forever.
    pub fn admits(&self, bytes: u64) -> bool {
        self.bytes == 0 || self.bytes + bytes <= self.bytes_max
    }

    pub fn on_proposed(&mut self, last_index: LogIndex, bytes: u64) {
        if let Some(&(back, _)) = self.pending.back() {
            assert!(back < last_index, "proposals are appended in index order");
        }
        self.pending.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    pub fn on_committed(&mut self, committed: LogIndex) {
        while let Some(&(last, bytes)) = self.pending.front() {
            if last > committed {
                break;
            }
            self.bytes -= bytes;
            self.pending.pop_front();
        }
    }

    /// Leadership ended: nothing is pending on this node's account any more.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.bytes = 0;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_until_the_cap_and_frees_on_commit() {
        let mut b = UncommittedBytes::new(100);
        assert!(
            b.admits(500),
            "an empty budget takes one oversized proposal"
        );
        b.on_proposed(LogIndex(1), 60);
        assert!(b.admits(40));
        assert!(!b.admits(41));
        b.on_proposed(LogIndex(3), 40);
        b.on_committed(LogIndex(2));
        assert_eq!(b.bytes(), 40);
        b.on_committed(LogIndex(3));
        assert_eq!(b.bytes(), 0);
    }
}
