//! The newtypes every layer shares: Raft's terms, log indexes and node ids, the stream
//! offsets of the API, and the monotonic time the pure core is handed.
//!
//! An offset is never called an index: `LogIndex` is a position in the Raft log, `Offset` a
//! position in one named stream. Keeping them apart in the type system is the point.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

macro_rules! counter_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The value after this one.
            pub fn next(self) -> Self {
                Self(self.0 + 1)
            }

            /// The value before this one, saturating at zero.
            pub fn prev(self) -> Self {
                Self(self.0.saturating_sub(1))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

counter_newtype!(
    /// A Raft term. Never decreases on a node (Raft §5.1).
    Term,
    "t"
);
counter_newtype!(
    /// A position in the Raft log. Index 0 is the empty position before the first entry.
    LogIndex,
    "i"
);
counter_newtype!(
    /// A position in one stream: dense, starting at 0.
    Offset,
    "o"
);

impl Add<u64> for LogIndex {
    type Output = LogIndex;
    fn add(self, count: u64) -> LogIndex {
        LogIndex(self.0 + count)
    }
}

impl Sub<LogIndex> for LogIndex {
    type Output = u64;
    /// The number of entries in `rhs+1 ..= self`; panics if `rhs > self`.
    fn sub(self, rhs: LogIndex) -> u64 {
        self.0
            .checked_sub(rhs.0)
            .expect("log index subtraction underflow")
    }
}

/// A cluster member's id, unique within a cluster and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// One entry's identity: in Raft two entries with the same index and term are the same entry
/// and are preceded by the same log (the Log Matching Property, §5.3).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogId {
    pub term: Term,
    pub index: LogIndex,
}

impl LogId {
    pub fn new(term: Term, index: LogIndex) -> Self {
        Self { term, index }
    }

    /// Raft §5.4.1's up-to-date order: the later last term wins, then the longer log.
    /// The derived `Ord` compares `term` first and then `index`, which is exactly that.
    pub fn is_at_least_as_up_to_date_as(self, other: LogId) -> bool {
        self >= other
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.index, self.term)
    }
}

/// A point on a node's monotonic clock, in microseconds since the node's clock started.
///
/// The pure core never reads a clock: the actors read theirs and pass the time in, which is
/// what lets the simulator pause, advance and skew time per node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonoTime(pub u64);

impl MonoTime {
    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: MonoTime) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    fn add(self, d: Duration) -> MonoTime {
        MonoTime(self.0 + d.as_micros() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_date_compares_term_before_index() {
        let long_old = LogId::new(Term(2), LogIndex(100));
        let short_new = LogId::new(Term(3), LogIndex(1));
        assert!(short_new.is_at_least_as_up_to_date_as(long_old));
        assert!(!long_old.is_at_least_as_up_to_date_as(short_new));
        let shorter_same_term = LogId::new(Term(2), LogIndex(99));
        assert!(long_old.is_at_least_as_up_to_date_as(shorter_same_term));
        assert!(!shorter_same_term.is_at_least_as_up_to_date_as(long_old));
        assert!(long_old.is_at_least_as_up_to_date_as(long_old));
    }

    #[test]
    fn log_index_arithmetic() {
        assert_eq!(LogIndex(5) + 3, LogIndex(8));
        assert_eq!(LogIndex(8) - LogIndex(5), 3);
        assert_eq!(LogIndex(0).prev(), LogIndex(0));
    }
}
