//! The two classic scenarios of Raft §5.4, played with the pure rules on hand-built logs:
//! the consistency check ([`decide_append`]), the up-to-date check, and the commit rule.

use super::commit::{CommitRule, CommitTracker};
use super::log_rules::tests::{entries, Terms};
use super::log_rules::{decide_append, AppendDecision, LogView};
use crate::types::{LogId, LogIndex, NodeId, Term};

/// Replicates `leader`'s entries from `from` onward into `follower` as one AppendEntries.
fn replicate(leader: &Terms, follower: &mut Terms, from: u64, committed: LogIndex) {
    let prev_index = LogIndex(from - 1);
    let prev = LogId::new(leader.term_at(prev_index).unwrap(), prev_index);
    let sent = entries(from, &leader.0[from as usize - 1..]);
    match decide_append(follower, prev, &sent, committed) {
        AppendDecision::Accept {
            truncate_from,
            append_from,
            ..
        } => {
            if let Some(cut) = truncate_from {
                follower.0.truncate(cut.0 as usize - 1);
            }
            follower
                .0
                .extend(sent[append_from..].iter().map(|e| e.log_id.term.0));
        }
        AppendDecision::Reject(hint) => panic!("unexpected rejection {hint:?}"),
    }
}

fn last(log: &Terms) -> LogId {
    let index = log.last_index();
    LogId::new(log.term_at(index).unwrap(), index)
}

fn may_win(candidate: &Terms, voters: &[&Terms]) -> bool {
    let granted = voters
        .iter()
        .filter(|v| last(candidate).is_at_least_as_up_to_date_as(last(v)))
        .count();
    granted + 1 >= 3 // its own vote plus two of the other four make a majority of five
}

/// (a) A leader's entry that only reached a minority is overwritten by the next leader, and
/// that is safe: it was never committed.
#[test]
fn an_uncommitted_entry_on_a_minority_is_overwritten_safely() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    // Term 1: index 1 is everywhere and committed; S1 appends index 2 and crashes before
    // replicating it.
    let mut s1 = Terms(vec![1, 1]);
    let mut s2 = Terms(vec![1]);
    let mut s3 = Terms(vec![1]);
    let mut t1 = CommitTracker::new(Term(1), ids, LogIndex(0), CommitRule::default());
    t1.on_term_first_index(LogIndex(1));
    t1.on_match(ids[0], LogIndex(2));
    t1.on_match(ids[1], LogIndex(1));
    t1.on_match(ids[2], LogIndex(1));
    assert_eq!(
        t1.committed(),
        LogIndex(1),
        "index 2 is on a minority: not committed"
    );

    // S2 is as up to date as S3 and wins term 2; its no-op lands at index 2 on S2 and S3.
    assert!(last(&s2).is_at_least_as_up_to_date_as(last(&s3)));
    s2.0.push(2);
    replicate(&s2, &mut s3, 2, LogIndex(1));
    let mut t2 = CommitTracker::new(Term(2), ids, LogIndex(1), CommitRule::default());
    t2.on_term_first_index(LogIndex(2));
    t2.on_match(ids[1], LogIndex(2));
    assert_eq!(t2.on_match(ids[2], LogIndex(2)), Some(LogIndex(2)));

    // S1 returns: its index 2 of term 1 conflicts and is replaced; index 1 is untouched.
    replicate(&s2, &mut s1, 2, LogIndex(1));
    assert_eq!(s1.0, vec![1, 2]);
    assert_eq!(s1.0, s2.0);
    assert_eq!(s2.0, s3.0);
}

/// (b) Figure 8. The rule "only current-term entries commit by counting" is what keeps an
/// entry that was reported committed from being overwritten.
fn figure_8(rule: CommitRule) -> (bool, Vec<Terms>) {
    let ids: Vec<NodeId> = (1..=5).map(NodeId).collect();
    // (a) S1 leads term 2 and gets index 2 onto S2 only.
    let mut s = [vec![1, 2], vec![1, 2], vec![1], vec![1], vec![1]].map(Terms);
    // (b) S1 crashes; S5 wins term 3 with votes from S3 and S4, appends index 2 of term 3.
    assert!(may_win(&s[4], &[&s[2], &s[3]]));
    s[4].0.push(3);
    // (c) S5 crashes; S1 wins term 4 and replicates its index 2 (term 2) to S3.
    let s1 = Terms(s[0].0.clone());
    replicate(&s1, &mut s[2], 2, LogIndex(1));
    let mut t4 = CommitTracker::new(Term(4), ids.clone(), LogIndex(1), rule);
    t4.on_term_first_index(LogIndex(3)); // its term-4 no-op is appended but not yet durable
    for (i, id) in ids.iter().enumerate().take(3) {
        t4.on_match(*id, LogIndex(s[i].0.len() as u64));
    }
    let index_2_reported_committed = t4.committed() >= LogIndex(2);
    // (d) S1 crashes before its no-op spreads; S5 (last log 2@3) is more up to date than
    // S2, S3 and S4 (last log 2@2 or 1@1) and wins term 5, overwriting index 2 everywhere.
    assert!(may_win(&s[4], &[&s[1], &s[2], &s[3]]));
    let s5 = Terms(s[4].0.clone());
    for follower in s.iter_mut().take(4) {
        replicate(&s5, follower, 2, LogIndex(1));
    }
    (index_2_reported_committed, s.into())
}

#[test]
fn figure_8_the_current_term_rule_never_reports_the_overwritten_entry_committed() {
    let (reported_committed, logs) = figure_8(CommitRule::CurrentTermOnly);
    assert!(!reported_committed);
    assert!(
        logs.iter().all(|log| log.0 == vec![1, 3]),
        "index 2 is term 3 everywhere"
    );
}

/// What would go wrong otherwise: counting replicas of the old-term entry reports index 2
/// (term 2) committed, and then it is overwritten by term 3 — a committed entry lost.
#[test]
fn figure_8_counting_old_term_replicas_loses_a_committed_entry() {
    let (reported_committed, logs) = figure_8(CommitRule::UnsafeAnyTerm);
    assert!(
        reported_committed,
        "the unsafe rule commits index 2 of term 2"
    );
    assert!(
        logs.iter()
            .all(|log| log.term_at(LogIndex(2)) == Some(Term(3))),
        "and it is gone"
    );
}
