//! The follower's side of AppendEntries (Raft §5.3): the consistency check, where the leader's
//! entries conflict with the local log, and what to truncate and append.
//!
//! The decision is made against a [`LogView`] and returned as data; the WAL actor carries it
//! out. Entries the follower already holds are skipped, never rewritten, so a duplicated or
//! reordered AppendEntries can never truncate entries a newer message already appended.

use crate::raft::message::{ConflictHint, Entry};
use crate::types::{LogId, LogIndex, Term};

/// What the consistency check needs to know about the local log.
pub trait LogView {
    /// The index of the last entry (0 when the log is empty).
    fn last_index(&self) -> LogIndex;
    /// The term of the entry at `index`; `Some(Term(0))` for index 0; `None` past the end.
    fn term_at(&self, index: LogIndex) -> Option<Term>;
    /// The first index holding `term`, searching back from `from` (which holds `term`).
    fn first_index_of_term(&self, term: Term, from: LogIndex) -> LogIndex;
}

/// The outcome of the consistency check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendDecision {
    /// The log does not hold `prev`: answer with this hint, change nothing.
    Reject(ConflictHint),
    /// The log holds `prev`. Truncate from `truncate_from` (if set), then append
    /// `entries[append_from..]`. After that the log matches the leader's through `match_index`.
    Accept {
        truncate_from: Option<LogIndex>,
        append_from: usize,
        match_index: LogIndex,
    },
}

/// Decides what to do with an AppendEntries carrying `entries` after `prev`.
///
/// `committed` is the follower's commit index: a conflict at or below it would mean two
/// different entries were committed at one index, which Raft rules out; that panics rather than
/// corrupt the log.
pub fn decide_append(
    log: &(impl LogView + ?Sized),
    prev: LogId,
    entries: &[Entry],
    committed: LogIndex,
) -> AppendDecision {
    debug_assert!(entries_are_contiguous(prev, entries));
    match log.term_at(prev.index) {
        None => {
            return AppendDecision::Reject(ConflictHint::LogTooShort {
                last_index: log.last_index(),
            })
        }
        Some(term) if term != prev.term => {
            assert!(
                prev.index > committed,
                "leader's prev {prev} conflicts with committed entry at or below {committed}"
            );
            return AppendDecision::Reject(ConflictHint::TermMismatch {
                term,
                first_index: log.first_index_of_term(term, prev.index),
            });
        }
        Some(_) => {}
    }
    let match_index = prev.index + entries.len() as u64;
    for (position, entry) in entries.iter().enumerate() {
        match log.term_at(entry.log_id.index) {
            Some(term) if term == entry.log_id.term => continue,
            Some(_) => {
                assert!(
                    entry.log_id.index > committed,
                    "conflict at {} would overwrite a committed entry (commit {committed})",
                    entry.log_id
                );
                return AppendDecision::Accept {
                    truncate_from: Some(entry.log_id.index),
                    append_from: position,
                    match_index,
                };
            }
            None => {
                return AppendDecision::Accept {
                    truncate_from: None,
                    append_from: position,
                    match_index,
                }
            }
        }
    }
    AppendDecision::Accept {
        truncate_from: None,
        append_from: entries.len(),
        match_index,
    }
}

/// The follower's commit index after accepting an AppendEntries: the leader's commit, but
/// never past what this message proved to match (Raft §5.3, "min(leaderCommit, index of last
/// new entry)"), and never backwards.
pub fn follower_commit(
    current: LogIndex,
    leader_commit: LogIndex,
    match_index: LogIndex,
) -> LogIndex {
    current.max(leader_commit.min(match_index))
}

/// Entries follow `prev` without gaps and with non-decreasing terms no lower than `prev`'s.
pub fn entries_are_contiguous(prev: LogId, entries: &[Entry]) -> bool {
    let mut last = prev;
    for entry in entries {
        if entry.log_id.index != last.index.next() || entry.log_id.term < last.term {
            return false;
        }
        last = entry.log_id;
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::raft::message::EntryPayload;

    /// A log as the list of its entries' terms, index 1 first.
    pub(crate) struct Terms(pub Vec<u64>);

    impl LogView for Terms {
        fn last_index(&self) -> LogIndex {
            LogIndex(self.0.len() as u64)
        }
        fn term_at(&self, index: LogIndex) -> Option<Term> {
            if index.0 == 0 {
                return Some(Term(0));
            }
            self.0.get(index.0 as usize - 1).map(|&t| Term(t))
        }
        fn first_index_of_term(&self, term: Term, from: LogIndex) -> LogIndex {
            let mut index = from;
            while index.0 > 1 && self.term_at(index.prev()) == Some(term) {
                index = index.prev();
            }
            index
        }
    }

    pub(crate) fn entries(first_index: u64, terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                log_id: LogId::new(Term(t), LogIndex(first_index + i as u64)),
                payload: EntryPayload::Noop,
            })
            .collect()
    }

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(Term(term), LogIndex(index))
    }

    #[test]
    fn appends_to_an_empty_log() {
        let d = decide_append(&Terms(vec![]), id(0, 0), &entries(1, &[1, 1]), LogIndex(0));
        assert_eq!(
            d,
            AppendDecision::Accept {
                truncate_from: None,
                append_from: 0,
                match_index: LogIndex(2)
            }
        );
    }

    #[test]
    fn rejects_when_prev_is_past_the_end() {
        let d = decide_append(&Terms(vec![1, 1]), id(1, 5), &entries(6, &[1]), LogIndex(0));
        assert_eq!(
            d,
            AppendDecision::Reject(ConflictHint::LogTooShort {
                last_index: LogIndex(2)
            })
        );
    }

    #[test]
    fn rejects_with_the_first_index_of_the_conflicting_term() {
        let log = Terms(vec![1, 2, 2, 2, 3]);
        let d = decide_append(&log, id(4, 4), &entries(5, &[4]), LogIndex(1));
        assert_eq!(
            d,
            AppendDecision::Reject(ConflictHint::TermMismatch {
                term: Term(2),
                first_index: LogIndex(2)
            })
        );
    }

    #[test]
    fn skips_entries_already_held() {
        let log = Terms(vec![1, 1, 2]);
        let d = decide_append(&log, id(1, 1), &entries(2, &[1, 2, 2]), LogIndex(0));
        assert_eq!(
            d,
            AppendDecision::Accept {
                truncate_from: None,
                append_from: 2,
                match_index: LogIndex(4)
            }
        );
    }

    #[test]
    fn a_stale_shorter_message_never_truncates() {
        // The follower already appended 2..=4 from a later message of the same leader; an
        // older, shorter message arriving late must leave them alone.
        let log = Terms(vec![1, 2, 2, 2]);
        let d = decide_append(&log, id(1, 1), &entries(2, &[2]), LogIndex(0));
        assert_eq!(
            d,
            AppendDecision::Accept {
                truncate_from: None,
                append_from: 1,
                match_index: LogIndex(2)
            }
        );
    }

    #[test]
    fn truncates_from_the_first_conflict() {
        let log = Terms(vec![1, 1, 2, 2]);
        let d = decide_append(&log, id(1, 2), &entries(3, &[3, 3, 3]), LogIndex(2));
        assert_eq!(
            d,
            AppendDecision::Accept {
                truncate_from: Some(LogIndex(3)),
                append_from: 0,
                match_index: LogIndex(5)
            }
        );
    }

    #[test]
    #[should_panic(expected = "committed")]
    fn a_conflict_below_the_commit_index_is_fatal() {
        let log = Terms(vec![1, 1, 2, 2]);
        decide_append(&log, id(1, 2), &entries(3, &[3]), LogIndex(3));
    }

    #[test]
    fn follower_commit_is_bounded_by_what_the_message_proved() {
        assert_eq!(
            follower_commit(LogIndex(2), LogIndex(10), LogIndex(5)),
            LogIndex(5)
        );
        assert_eq!(
            follower_commit(LogIndex(2), LogIndex(4), LogIndex(5)),
            LogIndex(4)
        );
        assert_eq!(
            follower_commit(LogIndex(6), LogIndex(4), LogIndex(5)),
            LogIndex(6)
        );
    }

    #[test]
    fn contiguity() {
        assert!(entries_are_contiguous(id(1, 3), &entries(4, &[1, 2, 2])));
        assert!(!entries_are_contiguous(id(1, 3), &entries(5, &[1])));
        assert!(!entries_are_contiguous(id(2, 3), &entries(4, &[1])));
        assert!(!entries_are_contiguous(id(1, 0), &entries(1, &[2, 1])));
    }
}
