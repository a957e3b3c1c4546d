//! The leader's commit rule: an index is committed once a majority of voters hold it durably
//! *and* the entry there belongs to the leader's current term (Raft §5.4.2).
//!
//! Entries of earlier terms are never committed by counting replicas; they commit indirectly,
//! when an entry of the current term after them does. The leader appends a no-op at the start
//! of its term (§8), so `term_first_index` — the no-op's index — is where counting may begin:
//! every entry at or after it is of the current term.

use std::collections::BTreeMap;

use crate::raft::quorum::majority_index;
use crate::types::{LogIndex, NodeId, Term};

/// Which commit rule to apply. Only [`CommitRule::CurrentTermOnly`] is Raft; the other exists
/// so that tests can show what goes wrong without it (the Figure 8 scenario).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitRule {
    #[default]
    CurrentTermOnly,
    /// UNSAFE, for tests only: commit whatever a majority holds, whatever its term.
    UnsafeAnyTerm,
}

/// Tracks how far each voter's log is durably known to match the leader's, and the commit
/// index that follows. Owned by the leader for one term; a new term starts a new tracker.
#[derive(Clone, Debug)]
pub struct CommitTracker {
    term: Term,
    rule: CommitRule,
    /// Durable match per voter, the leader included (its own WAL's durable index).
    matched: BTreeMap<NodeId, LogIndex>,
    /// The index of this term's no-op; `None` until the leader's WAL has appended it.
    term_first_index: Option<LogIndex>,
    committed: LogIndex,
    /// Scratch space for sorting the matches.
    sorted: Vec<LogIndex>,
}

impl CommitTracker {
    /// A tracker for a leader of `term` whose commit index is `committed` so far.
    pub fn new(
        term: Term,
        voters: impl IntoIterator<Item = NodeId>,
        committed: LogIndex,
        rule: CommitRule,
    ) -> Self {
        let matched: BTreeMap<NodeId, LogIndex> =
            voters.into_iter().map(|id| (id, LogIndex(0))).collect();
        assert!(!matched.is_empty(), "a leader has at least itself as voter");
        Self {
            term,
            rule,
            sorted: Vec::with_capacity(matched.len()),
            matched,
            term_first_index: None,
            committed,
        }
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    /// Whether an entry of this leader's own term has committed: only then is its commit
    /// index known to include everything earlier leaders committed (Raft thesis §6.4).
    pub fn has_committed_own_term(&self) -> bool {
        self.term_first_index
            .is_some_and(|first| self.committed >= first)
    }

    /// How far `voter` is known to match; zero for a non-voter.
    pub fn matched(&self, voter: NodeId) -> LogIndex {
        self.matched.get(&voter).copied().unwrap_or_default()
    }

    /// Records where this term's no-op landed. Returns the new commit index if that allows
    /// the commit to advance.
    pub fn on_term_first_index(&mut self, index: LogIndex) -> Option<LogIndex> {
        assert!(
            self.term_first_index.is_none(),
            "a term has exactly one first index"
        );
        assert!(
            index > self.committed,
            "the no-op comes after the commit index"
        );
        self.term_first_index = Some(index);
        self.maybe_advance()
    }

    /// Records that `voter` durably holds the leader's log through `index`. Matches only move
    /// forward: a reordered, older acknowledgement changes nothing. Returns the new commit index
    /// if it advanced.
    pub fn on_match(&mut self, voter: NodeId, index: LogIndex) -> Option<LogIndex> {
        let Some(matched) = self.matched.get_mut(&voter) else {
            return None; // not a voter: its log does not count toward the quorum
        };
        if index <= *matched {
            return None;
        }
        *matched = index;
        self.maybe_advance()
    }

    fn maybe_advance(&mut self) -> Option<LogIndex> {
        // Runs on every acknowledgement: sort a copy in a vector kept for it, not a new one.
        self.sorted.clear();
        self.sorted.extend(self.matched.values());
        let candidate = majority_index(&mut self.sorted);
        if candidate <= self.committed {
            return None;
        }
        let allowed = match self.rule {
            // Raft §5.4.2: only entries of the current term commit by counting replicas.
            CommitRule::CurrentTermOnly => self
                .term_first_index
                .is_some_and(|first| candidate >= first),
            CommitRule::UnsafeAnyTerm => true,
        };
        if !allowed {
            return None;
        }
        self.committed = candidate;
        Some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    #[test]
    fn commits_what_a_majority_holds_in_the_current_term() {
        let mut t = CommitTracker::new(Term(2), ids(3), LogIndex(0), CommitRule::default());
        assert_eq!(t.on_term_first_index(LogIndex(1)), None);
        assert_eq!(
            t.on_match(NodeId(1), LogIndex(3)),
            None,
            "one of three is no majority"
        );
        assert_eq!(t.on_match(NodeId(2), LogIndex(2)), Some(LogIndex(2)));
        assert_eq!(t.on_match(NodeId(3), LogIndex(5)), Some(LogIndex(3)));
        assert_eq!(t.committed(), LogIndex(3));
    }

    #[test]
    fn stale_acknowledgements_do_not_move_matches_back() {
        let mut t = CommitTracker::new(Term(1), ids(3), LogIndex(0), CommitRule::default());
        t.on_term_first_index(LogIndex(1));
        t.on_match(NodeId(1), LogIndex(4));
        t.on_match(NodeId(2), LogIndex(4));
        assert_eq!(t.on_match(NodeId(2), LogIndex(2)), None);
        assert_eq!(t.matched(NodeId(2)), LogIndex(4));
        assert_eq!(t.committed(), LogIndex(4));
    }

    #[test]
    fn non_voters_do_not_count() {
        let mut t = CommitTracker::new(Term(1), ids(3), LogIndex(0), CommitRule::default());
        t.on_term_first_index(LogIndex(1));
        t.on_match(NodeId(1), LogIndex(4));
        assert_eq!(t.on_match(NodeId(9), LogIndex(4)), None);
        assert_eq!(t.committed(), LogIndex(0));
    }

    /// Raft §5.4.2, Figure 8: a leader of term 4 finds an entry of term 2 at index 2 on a
    /// majority. It must not count that entry as committed, because a server whose last entry
    /// is of term 3 can still win an election and overwrite it. Only once an entry of term 4
    /// reaches a majority does index 2 commit, indirectly.
    #[test]
    fn figure_8_old_term_entry_on_a_majority_is_not_committed() {
        let mut t = CommitTracker::new(Term(4), ids(5), LogIndex(1), CommitRule::default());
        // The leader's no-op for term 4 lands at index 3, after the term-2 entry at index 2.
        t.on_term_first_index(LogIndex(3));
        t.on_match(NodeId(1), LogIndex(2)); // the leader itself, no-op not yet durable
        t.on_match(NodeId(2), LogIndex(2));
        assert_eq!(
            t.on_match(NodeId(3), LogIndex(2)),
            None,
            "index 2 is of term 2"
        );
        assert_eq!(t.committed(), LogIndex(1));
        // The term-4 no-op reaches a majority: now index 3, and with it index 2, commit.
        t.on_match(NodeId(1), LogIndex(3));
        t.on_match(NodeId(2), LogIndex(3));
        assert_eq!(t.committed(), LogIndex(1));
        assert_eq!(t.on_match(NodeId(3), LogIndex(3)), Some(LogIndex(3)));
    }

    /// The same situation with the unsafe rule commits index 2 at once. The election test
    /// `figure_8_unsafe_commit_is_overwritten` plays the rest: a term-3 candidate wins and
    /// overwrites that "committed" entry.
    #[test]
    fn figure_8_unsafe_rule_commits_the_old_entry() {
        let mut t = CommitTracker::new(Term(4), ids(5), LogIndex(1), CommitRule::UnsafeAnyTerm);
        t.on_term_first_index(LogIndex(3));
        t.on_match(NodeId(1), LogIndex(2));
        t.on_match(NodeId(2), LogIndex(2));
        assert_eq!(t.on_match(NodeId(3), LogIndex(2)), Some(LogIndex(2)));
    }

    #[test]
    fn nothing_commits_before_the_term_first_index_is_known() {
        let mut t = CommitTracker::new(Term(3), ids(3), LogIndex(0), CommitRule::default());
        t.on_match(NodeId(1), LogIndex(7));
        assert_eq!(t.on_match(NodeId(2), LogIndex(7)), None);
        assert_eq!(t.on_term_first_index(LogIndex(6)), Some(LogIndex(7)));
    }
}
