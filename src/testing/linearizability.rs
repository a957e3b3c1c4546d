//! An independent, well-known check next to the log-specific ones: the Wing–Gong–Lowe
//! linearizability checker of the `todc-utils` crate, run per stream against a sequential
//! specification of one append-only stream.
//!
//! This module owns that specification and the translation of a stream's operations into
//! the checker's history. What goes in, and why:
//! - acknowledged appends, with their offsets: valid only at the end of the stream (or, for
//!   an idempotent-producer retry, where the same values already are);
//! - appends with unknown outcomes whose values are in the final log: they took effect, at
//!   the offsets the final log shows, at some time after their invocation, so they get a
//!   made-up completion at the end of the history (todc needs every call completed). Those
//!   not in the final log never took effect and are left out, as are appends that failed;
//! - conditional appends rejected with `offset_mismatch`: valid only where the stream's end
//!   differs from the expected offset (and equals the reported next offset, if known);
//! - completed linearizable and lease reads: valid only where the stream ends at their end
//!   offset and holds their records. Stale reads make no real-time promise and stay out.
//!
//! Values are interned to small ids so the checker's state is a cheap vector.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use todc_utils::linearizability::history::{Action, History as WglHistory};
use todc_utils::{Specification, WGLChecker};

use super::final_log::{FinalLog, StreamIndex};
use super::history::{Call, History, Operation, Outcome, RejectReason};
use super::invariants::{Property, Violation};

/// A value of the history, interned.
type ValueId = u32;

/// A stream operation as the sequential specification sees it: the call and its response in
/// one (the checker only applies responses).
#[derive(Clone, Debug, PartialEq, Eq)]
enum StreamOp {
    Append {
        first: u64,
        values: Vec<ValueId>,
        expected: Option<u64>,
        idempotent: bool,
    },
    OffsetMismatch {
        expected: u64,
        next: Option<u64>,
    },
    Read {
        end: u64,
        records: Vec<(u64, ValueId)>,
    },
}

/// The sequential specification of one stream; its state is the stream's values in order.
struct StreamSpec;

impl Specification for StreamSpec {
    type State = Rc<Vec<ValueId>>;
    type Operation = StreamOp;

    fn init() -> Self::State {
        Rc::default()
    }

    fn apply(op: &StreamOp, state: &Self::State) -> (bool, Self::State) {
        let end = state.len() as u64;
        let valid = match op {
            StreamOp::Append {
                first,
                values,
                expected,
                idempotent,
            } => {
                if *first == end && expected.is_none_or(|e| e == end) {
                    return (true, Rc::new([state.as_slice(), values].concat()));
                }
                // Otherwise only a producer retry answered from the dedup table fits: its
                // values are already there.
                *idempotent
                    && state
                        .get(*first as usize..)
                        .is_some_and(|tail| tail.starts_with(values))
            }
            StreamOp::OffsetMismatch { expected, next } => {
                end != *expected && next.is_none_or(|next| next == end)
            }
            StreamOp::Read {
                end: read_end,
                records,
            } => {
                *read_end == end
                    && records
                        .iter()
                        .all(|(offset, value)| state.get(*offset as usize) == Some(value))
            }
        };
        (valid, state.clone())
    }
}

/// How much the WGL check covered, for the run's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinearizabilityStats {
    /// Operations handed to the checker, over all streams.
    pub operations: usize,
    pub elapsed: Duration,
}

/// Runs the WGL checker on each stream of `history`; `final_log` decides which appends with
/// unknown outcomes took effect, and where.
pub fn check_linearizability(
    history: &History,
    final_log: &FinalLog,
) -> Result<LinearizabilityStats, Violation> {
    let started = Instant::now();
    let mut operations = 0;
    for (stream, ops) in history.by_stream() {
        let index = StreamIndex::of(final_log, stream);
        let timed = to_spec_operations(&ops, &index);
        operations += timed.len();
        if timed.is_empty() {
            continue;
        }
        let count = timed.len();
        if !WGLChecker::<StreamSpec>::is_linearizable(wgl_history(timed)) {
            let why = format!(
                "stream {stream:?} is not linearizable: no sequential order of its {count} checked \
                 operations (acknowledged and landed-unknown appends, rejected conditional \
                 appends, linearizable and lease reads) respects their real-time order and gives \
                 every one its recorded response. The log-specific violations, if any, name the \
                 conflicting operations; otherwise print this stream's history"
            );
            return Err(Violation::new(Property::Linearizability, why));
        }
    }
    Ok(LinearizabilityStats {
        operations,
        elapsed: started.elapsed(),
    })
}

/// A specification operation with its interval; `completes_at` is `u64::MAX` for an
/// operation that never definitely completed.
struct Timed {
    op: StreamOp,
    invoked_at: u64,
    completes_at: u64,
}

fn to_spec_operations<'a>(ops: &[&'a Operation], index: &StreamIndex<'_>) -> Vec<Timed> {
    let mut ids: HashMap<&'a Bytes, ValueId> = HashMap::new();
    let mut intern = |value: &'a Bytes| {
        let next = ids.len() as ValueId;
        *ids.entry(value).or_insert(next)
    };
    let mut timed = Vec::with_capacity(ops.len());
    for &op in ops {
        if let Some(spec_op) = to_spec_operation(op, index, &mut intern) {
            timed.push(Timed {
                op: spec_op,
                invoked_at: op.invoked_at.0,
                completes_at: op.definite_completion().map_or(u64::MAX, |at| at.0),
            });
        }
    }
    timed
}

/// The operation as the specification sees it, or `None` if it constrains nothing.
fn to_spec_operation<'a>(
    op: &'a Operation,
    index: &StreamIndex<'_>,
    intern: &mut impl FnMut(&'a Bytes) -> ValueId,
) -> Option<StreamOp> {
    match (&op.call, &op.outcome) {
        (Call::Append(call), Outcome::Appended { .. } | Outcome::Unknown) => {
            let (first, _) = index.effect_of(op)?;
            Some(StreamOp::Append {
                first: first.0,
                values: call.values.iter().map(&mut *intern).collect(),
                expected: call.expected_offset.map(|e| e.0),
                idempotent: call.producer.is_some(),
            })
        }
        (Call::Append(call), Outcome::AppendRejected { reason }) => {
            let RejectReason::OffsetMismatch { next_offset } = reason else {
                return None;
            };
            Some(StreamOp::OffsetMismatch {
                expected: call.expected_offset?.0,
                next: next_offset.map(|n| n.0),
            })
        }
        (
            Call::Read(call),
            Outcome::Read {
                records,
                end_offset,
            },
        ) if call.consistency.is_linearizable() => Some(StreamOp::Read {
            end: end_offset.0,
            records: records.iter().map(|(o, v)| (o.0, intern(v))).collect(),
        }),
        _ => None,
    }
}

/// The checker's history: each operation is its own process (so an operation left open by
/// a client that then went on is never paired with that client's next response), calls and
/// responses in time order, calls first at equal times (equal times are concurrent).
fn wgl_history(timed: Vec<Timed>) -> WglHistory<StreamOp> {
    let mut events = Vec::with_capacity(timed.len() * 2);
    for (process, t) in timed.into_iter().enumerate() {
        events.push((t.invoked_at, false, process, Action::Call(t.op.clone())));
        events.push((t.completes_at, true, process, Action::Response(t.op)));
    }
    events.sort_by_key(|&(at, responds, process, _)| (at, responds, process));
    WglHistory::from_actions(
        events
            .into_iter()
            .map(|(_, _, process, action)| (process, action))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::*;
    use crate::testing::history::Consistency::{Lease, Linearizable, Stale};
    use crate::testing::history::Outcome::{Failed, Unknown};

    fn check(h: &Builder, log: &[&str]) -> Result<LinearizabilityStats, Violation> {
        check_linearizability(&h.build(), &final_log(&[("s", log)]))
    }

    #[test]
    fn concurrent_appends_and_reads_in_some_order_pass() {
        let mut h = Builder::new();
        // "b" completes first but was concurrent with "a", so it may take the lower offset.
        h.append(1, 0, 30, &["a"], acked(1, 1))
            .append(2, 5, 20, &["b"], acked(0, 0))
            .read(3, 6, 25, 0, Linearizable, read_ok(0, &["b"], 1))
            .read(3, 31, 40, 0, Lease, read_ok(0, &["b", "a"], 2))
            .read(4, 31, 40, 0, Stale, read_ok(0, &[], 0));
        let stats = check(&h, &["b", "a"]).unwrap();
        assert_eq!(stats.operations, 4, "stale reads stay out");
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
        assert_eq!(err.property, Property::Linearizability);
        assert!(
            err.explanation.contains("stream \"s\" is not linearizable"),
            "{err}"
        );
    }

    #[test]
    fn reads_going_backwards_fail() {
        let mut h = Builder::new();
        h.append(1, 0, 100, &["a"], acked(0, 0))
            .read(2, 10, 20, 0, Linearizable, read_ok(0, &["a"], 1))
            .read(3, 21, 30, 0, Lease, read_ok(0, &[], 0));
        assert!(check(&h, &["a"]).is_err());
    }

    #[test]
    fn overlapping_offsets_fail() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 0, 10, &["b"], acked(0, 0));
        assert!(check(&h, &["a"]).is_err());
    }

    #[test]
    fn unknown_appends_that_landed_or_not_pass() {
        let mut h = Builder::new();
        h.append(1, 0, 5, &["a"], Unknown)
            .append(2, 1, 5, &["b"], Unknown)
            .append(3, 2, 3, &["c"], Failed)
            .append(4, 10, 20, &["d"], acked(1, 1))
            // The unknown "a" landed after this read.
            .read(5, 21, 30, 0, Linearizable, read_ok(0, &["b", "d"], 2))
            .read(5, 31, 40, 0, Linearizable, read_ok(0, &["b", "d", "a"], 3));
        check(&h, &["b", "d", "a"]).unwrap();
    }

    #[test]
    fn a_read_of_an_unknown_append_that_did_not_land_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 5, &["a"], Unknown)
            .read(5, 21, 30, 0, Linearizable, read_ok(0, &["a"], 1));
        assert!(check(&h, &[]).is_err());
    }

    #[test]
    fn a_producer_retry_returning_the_original_offsets_passes() {
        let mut h = Builder::new();
        h.append_as(1, (0, 10), &["a"], ("p1", 1), Unknown)
            .append(2, 11, 20, &["b"], acked(1, 1))
            .append_as(1, (21, 30), &["a"], ("p1", 1), acked(0, 0));
        check(&h, &["a", "b"]).unwrap();
        // Without a producer, the same answer is a duplicate write at a taken offset.
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 11, 20, &["b"], acked(1, 1))
            .append(1, 21, 30, &["a"], acked(0, 0));
        assert!(check(&h, &["a", "b"]).is_err());
    }

    #[test]
    fn offset_mismatch_must_be_true_when_it_was_answered() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0)).append_expecting(
            2,
            (11, 20),
            &["b"],
            0,
            mismatch(1),
        );
        check(&h, &["a"]).unwrap();
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0)).append_expecting(
            2,
            (11, 20),
            &["b"],
            1,
            mismatch(1),
        );
        assert!(check(&h, &["a"]).is_err());
    }
}
