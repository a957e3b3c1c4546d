//! Real-time order: an operation that completed before another was invoked is linearized
//! before it, so in an append-only log —
//!
//! 1. an append that completed before another append was invoked has lower offsets;
//! 2. a linearizable (or lease) read invoked after an append completed sees it:
//!    `end_offset > last_offset`;
//! 3. such reads never go back: one invoked after another completed has an end offset at
//!    least as high;
//! 4. an append invoked after such a read completed lands at or after the read's end offset
//!    (otherwise the read saw a record before anyone wrote it).
//!
//! Appends with unknown outcomes take part as successors only, at the offsets where the
//! final log has them: they may take effect at any time after their invocation, so they
//! precede nothing. Stale reads are exempt (they are checked as prefixes only). Equal
//! timestamps count as concurrent.
//!
//! An idempotent-producer append and its retries (same stream, id and seq) write once, and
//! the write may be any attempt's: a retry answered from the dedup table reports offsets
//! written before it was invoked. So each attempt counts as invoked when the first attempt
//! of its group was.
//!
//! One sweep over invocations and completions in time order, keeping the furthest append
//! and read completed so far, checks all pairs in O(n log n).

use std::collections::HashMap;

use super::{Property, Violation};
use crate::testing::final_log::{FinalLog, StreamIndex};
use crate::testing::history::{Call, History, Operation, Outcome};
use crate::types::{MonoTime, Offset};

/// What an operation tells about the log, for ordering purposes.
#[derive(Clone, Copy)]
enum Fact {
    Append { first: Offset, last: Offset },
    Read { end: Offset },
}

struct Event<'a> {
    at: MonoTime,
    /// Invocations sort before completions at the same time: equal times are concurrent.
    completes: bool,
    op: &'a Operation,
    fact: Fact,
}

/// The furthest-reaching appends and reads that completed before the sweep's current time.
#[derive(Default)]
struct Frontier<'a> {
    append: Option<(Offset, &'a Operation)>,
    read: Option<(Offset, &'a Operation)>,
}

/// Checks real-time order in every stream; see the module doc for the rules.
pub fn check_real_time_order(history: &History, final_log: &FinalLog) -> Result<(), Violation> {
    for (stream, ops) in history.by_stream() {
        let index = StreamIndex::of(final_log, stream);
        let mut frontier = Frontier::default();
        for event in events(&ops, &index) {
            if event.completes {
                frontier.complete(event.op, event.fact);
            } else {
                frontier.check_invocation(event.op, event.fact)?;
            }
        }
    }
    Ok(())
}

fn events<'a>(ops: &[&'a Operation], index: &StreamIndex<'_>) -> Vec<Event<'a>> {
    let first_attempts = first_attempts(ops);
    let mut events = Vec::with_capacity(ops.len() * 2);
    for &op in ops {
        let Some(fact) = fact_of(op, index) else {
            continue;
        };
        let invoked_at = producer_key(op)
            .and_then(|key| first_attempts.get(&key))
            .map_or(op.invoked_at, |&first| first.min(op.invoked_at));
        events.push(Event {
            at: invoked_at,
            completes: false,
            op,
            fact,
        });
        if let Some(at) = op.definite_completion() {
            events.push(Event {
                at,
                completes: true,
                op,
                fact,
            });
        }
    }
    events.sort_by_key(|e| (e.at, e.completes));
    events
}

/// An append's idempotent-producer identity within its stream.
fn producer_key(op: &Operation) -> Option<(&str, u64)> {
    match &op.call {
        Call::Append(call) => call.producer.as_ref().map(|p| (p.id.as_str(), p.seq)),
        Call::Read(_) => None,
    }
}

/// When each producer group's first attempt that may have been sent was invoked.
fn first_attempts<'a>(ops: &[&'a Operation]) -> HashMap<(&'a str, u64), MonoTime> {
    let mut first: HashMap<(&str, u64), MonoTime> = HashMap::new();
    for &op in ops {
        let sent = !matches!(op.outcome, Outcome::Failed | Outcome::AppendRejected { .. });
        if let Some(key) = producer_key(op).filter(|_| sent) {
            let at = first.entry(key).or_insert(op.invoked_at);
            *at = (*at).min(op.invoked_at);
        }
    }
    first
}

fn fact_of(op: &Operation, index: &StreamIndex<'_>) -> Option<Fact> {
    match (&op.call, &op.outcome) {
        (Call::Append(_), _) => index
            .effect_of(op)
            .map(|(first, last)| Fact::Append { first, last }),
        (Call::Read(call), Outcome::Read { end_offset, .. })
            if call.consistency.is_linearizable() =>
        {
            Some(Fact::Read { end: *end_offset })
        }
        _ => None,
    }
}

impl<'a> Frontier<'a> {
    fn complete(&mut self, op: &'a Operation, fact: Fact) {
        let (slot, reach) = match fact {
            Fact::Append { last, .. } => (&mut self.append, last),
            Fact::Read { end } => (&mut self.read, end),
        };
        if slot.is_none_or(|(furthest, _)| reach > furthest) {
            *slot = Some((reach, op));
        }
    }

    fn check_invocation(&self, op: &Operation, fact: Fact) -> Result<(), Violation> {
        let why = match fact {
            Fact::Append { first, .. } => self.check_append(op, first),
            Fact::Read { end } => self.check_read(op, end),
        };
        why.map_or(Ok(()), |why| {
            Err(Violation::new(Property::RealTimeOrder, why))
        })
    }

    fn check_append(&self, op: &Operation, first: Offset) -> Option<String> {
        let placed = placement(op, first);
        if let Some((last, earlier)) = self.append.filter(|(last, _)| first <= *last) {
            return Some(format!(
                "{earlier} completed before {op} was invoked, yet the later append {placed}, \
                 not after {last}"
            ));
        }
        let (end, read) = self.read.filter(|(end, _)| first < *end)?;
        Some(format!(
            "{read} completed before {op} was invoked and already saw the stream end at {end}, \
             yet the append {placed}: the read saw a record before it was written"
        ))
    }

    fn check_read(&self, op: &Operation, end: Offset) -> Option<String> {
        if let Some((last, append)) = self.append.filter(|(last, _)| end <= *last) {
            return Some(format!(
                "stale read: {append} completed before {op} was invoked, yet the read saw the \
                 stream end at {end}, not past {last}"
            ));
        }
        let (earlier_end, earlier) = self.read.filter(|(earlier_end, _)| end < *earlier_end)?;
        Some(format!(
            "reads went backwards: {earlier} completed before {op} was invoked and saw the \
             stream end at {earlier_end}, yet the later read saw it end at {end}"
        ))
    }
}

fn placement(op: &Operation, first: Offset) -> String {
    match op.outcome {
        Outcome::Unknown => format!("(outcome unknown) is in the final log at {first}"),
        _ => format!("landed at {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::*;
    use crate::testing::history::Consistency::{Lease, Linearizable, Stale};
    use crate::testing::history::Outcome::Unknown;

    fn check(h: &Builder, log: &[&str]) -> Result<(), Violation> {
        check_real_time_order(&h.build(), &final_log(&[("s", log)]))
    }

    #[test]
    fn ordered_and_concurrent_operations_pass() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 5, 15, &["b"], acked(1, 1))
            // Invoked exactly when "b" completed: concurrent, so it may not see "b".
            .read(3, 15, 30, 0, Linearizable, read_ok(0, &["a"], 1))
            .read(3, 31, 40, 0, Lease, read_ok(0, &["a", "b"], 2))
            .read(4, 41, 50, 0, Stale, read_ok(0, &[], 0))
            .append(5, 41, 50, &["c"], acked(2, 2));
        assert_eq!(check(&h, &["a", "b", "c"]), Ok(()));
    }

    #[test]
    fn an_append_ordered_before_another_with_a_higher_offset_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(1, 1))
            .append(2, 11, 20, &["b"], acked(0, 0));
        let err = check(&h, &["b", "a"]).unwrap_err();
        assert_eq!(err.property, Property::RealTimeOrder);
        assert!(err.explanation.contains("#0 (c1, 0us..10us)"), "{err}");
        assert!(
            err.explanation
                .contains("later append landed at o0, not after o1"),
            "{err}"
        );
    }

    #[test]
    fn a_stale_linearizable_read_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0)).read(
            2,
            11,
            20,
            0,
            Linearizable,
            read_ok(0, &[], 0),
        );
        let err = check(&h, &["a"]).unwrap_err();
        assert!(err.explanation.contains("stale read: #0"), "{err}");
        assert!(err.explanation.contains("end at o0, not past o0"), "{err}");
    }

    #[test]
    fn a_stale_read_at_stale_consistency_passes() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .read(2, 11, 20, 0, Stale, read_ok(0, &[], 0));
        assert_eq!(check(&h, &["a"]), Ok(()));
    }

    #[test]
    fn reads_going_backwards_fail() {
        let mut h = Builder::new();
        h.append(1, 0, 100, &["a"], acked(0, 0))
            .read(2, 10, 20, 0, Linearizable, read_ok(0, &["a"], 1))
            .read(3, 21, 30, 0, Lease, read_ok(0, &[], 0));
        let err = check(&h, &["a"]).unwrap_err();
        assert!(
            err.explanation.contains("reads went backwards: #1"),
            "{err}"
        );
    }

    #[test]
    fn a_read_that_saw_the_future_fails() {
        let mut h = Builder::new();
        h.read(2, 0, 10, 0, Linearizable, read_ok(0, &["a"], 1))
            .append(1, 11, 20, &["a"], acked(0, 0));
        let err = check(&h, &["a"]).unwrap_err();
        assert!(
            err.explanation
                .contains("saw a record before it was written"),
            "{err}"
        );
    }

    #[test]
    fn unknown_appends_are_checked_where_the_final_log_puts_them() {
        // The unknown append took effect late (after "b"): fine, it precedes nothing.
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], Unknown)
            .append(2, 11, 20, &["b"], acked(0, 0))
            .read(3, 21, 30, 0, Linearizable, read_ok(0, &["b"], 1));
        assert_eq!(check(&h, &["b", "a"]), Ok(()));
        // One invoked after "b" completed cannot land before it.
        let mut h = Builder::new();
        h.append(2, 0, 10, &["b"], acked(1, 1))
            .append(1, 11, 20, &["a"], Unknown);
        let err = check(&h, &["a", "b"]).unwrap_err();
        assert!(
            err.explanation
                .contains("(outcome unknown) is in the final log at o0"),
            "{err}"
        );
    }

    #[test]
    fn producer_retries_count_from_their_first_attempt() {
        // "a" was written by the first attempt, before "b"; the retries after "b" completed
        // were answered from the dedup table.
        let mut h = Builder::new();
        h.append_as(1, (0, 10), &["a"], ("p1", 1), Unknown)
            .append(2, 5, 20, &["b"], acked(1, 1))
            .append_as(1, (21, 30), &["a"], ("p1", 1), Unknown)
            .append_as(1, (31, 40), &["a"], ("p1", 1), acked(0, 0));
        assert_eq!(check(&h, &["a", "b"]), Ok(()));
        // A failed first attempt was never sent: the retry itself wrote, after "b".
        let mut h = Builder::new();
        h.append_as(
            1,
            (0, 10),
            &["a"],
            ("p1", 1),
            crate::testing::history::Outcome::Failed,
        )
        .append(2, 5, 20, &["b"], acked(1, 1))
        .append_as(1, (31, 40), &["a"], ("p1", 1), acked(0, 0));
        assert!(check(&h, &["a", "b"]).is_err());
    }
}
