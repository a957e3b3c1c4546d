//! No acknowledged append is lost, and acknowledged offsets are unique: every `Appended`
//! operation's values are in the final log exactly at `first_offset..=last_offset`.
//!
//! Two acknowledged appends may share offsets only if they are the same idempotent-producer
//! append (same id and seq, same values) acknowledged twice, as a retry is.

use super::{Property, Violation};
use crate::testing::final_log::{FinalLog, StreamIndex};
use crate::testing::history::{AppendCall, Call, History, Operation, Outcome};
use crate::types::Offset;

/// An acknowledged append with its acknowledged offsets.
struct Acked<'a> {
    op: &'a Operation,
    call: &'a AppendCall,
    first: Offset,
    last: Offset,
}

impl Acked<'_> {
    /// Whether `other` is a retry of the same idempotent-producer append.
    fn is_retry_of(&self, other: &Acked<'_>) -> bool {
        self.call.producer.is_some()
            && self.call.producer == other.call.producer
            && self.call.values == other.call.values
            && (self.first, self.last) == (other.first, other.last)
    }
}

/// Checks that every acknowledged append is in `final_log` exactly where it was acknowledged.
pub fn check_acknowledged_appends(
    history: &History,
    final_log: &FinalLog,
) -> Result<(), Violation> {
    for (stream, ops) in history.by_stream() {
        let mut acked = Vec::new();
        for op in ops {
            if let Some(append) = acknowledged(op)? {
                acked.push(append);
            }
        }
        check_no_overlap(&mut acked)?;
        let index = StreamIndex::of(final_log, stream);
        for append in &acked {
            check_in_place(append, &index)?;
        }
    }
    Ok(())
}

/// The op as an acknowledged append, after checking its acknowledgement is well formed.
fn acknowledged(op: &Operation) -> Result<Option<Acked<'_>>, Violation> {
    let (
        Call::Append(call),
        Outcome::Appended {
            first_offset,
            last_offset,
        },
    ) = (&op.call, &op.outcome)
    else {
        return Ok(None);
    };
    let (first, last) = (*first_offset, *last_offset);
    let count = call.values.len() as u64;
    if last < first || last.0 - first.0 + 1 != count {
        let why = format!("{op} was acknowledged with offsets {first}..={last} for {count} values");
        return Err(violation(why));
    }
    if call
        .expected_offset
        .is_some_and(|expected| expected != first)
    {
        let why = format!(
            "{op} was acknowledged at {first} though it expected another offset: a conditional \
             append lands exactly at its expected offset or is rejected"
        );
        return Err(violation(why));
    }
    Ok(Some(Acked {
        op,
        call,
        first,
        last,
    }))
}

/// Two acknowledged appends never share an offset, unless one is a retry of the other.
fn check_no_overlap(acked: &mut [Acked<'_>]) -> Result<(), Violation> {
    acked.sort_by_key(|a| (a.first, a.last));
    // The append reaching furthest so far: any later-starting append at or below its last
    // offset overlaps it.
    let mut furthest: Option<&Acked<'_>> = None;
    for append in acked.iter() {
        if let Some(earlier) = furthest {
            if append.first <= earlier.last && !append.is_retry_of(earlier) {
                let why = format!(
                    "two acknowledged appends overlap: {} and {}. Offsets are unique, so one of \
                     them was acknowledged at offsets it does not hold",
                    earlier.op, append.op
                );
                return Err(violation(why));
            }
        }
        if furthest.is_none_or(|f| append.last > f.last) {
            furthest = Some(append);
        }
    }
    Ok(())
}

/// The acknowledged values are in the final log at the acknowledged offsets.
fn check_in_place(append: &Acked<'_>, index: &StreamIndex<'_>) -> Result<(), Violation> {
    for (i, value) in append.call.values.iter().enumerate() {
        let offset = Offset(append.first.0 + i as u64);
        let why = match index.get(offset) {
            Some(found) if found == value => continue,
            Some(found) => format!(
                "{} was acknowledged, but the final stream has {:?} at {offset} instead of {:?}",
                append.op,
                String::from_utf8_lossy(found),
                String::from_utf8_lossy(value),
            ),
            None => format!(
                "{} was acknowledged, but is lost: the final stream ends at {}, before {offset}",
                append.op,
                index.end(),
            ),
        };
        return Err(violation(why));
    }
    Ok(())
}

fn violation(explanation: String) -> Violation {
    Violation::new(Property::AcknowledgedAppends, explanation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::*;

    #[test]
    fn acknowledged_appends_in_place_pass() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a", "b"], acked(0, 1))
            .append(2, 5, 20, &["c"], acked(2, 2))
            .append(3, 6, 30, &["d"], Outcome::Unknown);
        let log = final_log(&[("s", &["a", "b", "c", "d"])]);
        assert_eq!(check_acknowledged_appends(&h.build(), &log), Ok(()));
    }

    #[test]
    fn a_lost_ack_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 11, 20, &["b"], acked(1, 1));
        let log = final_log(&[("s", &["a"])]);
        let err = check_acknowledged_appends(&h.build(), &log).unwrap_err();
        assert_eq!(err.property, Property::AcknowledgedAppends);
        assert!(err.explanation.contains("is lost"), "{err}");
        assert!(err.explanation.contains("#1 (c2, 11us..20us)"), "{err}");
    }

    #[test]
    fn a_different_value_at_the_acknowledged_offset_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0));
        let log = final_log(&[("s", &["x", "a"])]);
        let err = check_acknowledged_appends(&h.build(), &log).unwrap_err();
        assert!(
            err.explanation.contains("\"x\" at o0 instead of \"a\""),
            "{err}"
        );
    }

    #[test]
    fn overlapping_offsets_fail() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a", "b"], acked(0, 1))
            .append(2, 0, 10, &["c"], acked(1, 1));
        let log = final_log(&[("s", &["a", "b", "c"])]);
        let err = check_acknowledged_appends(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("overlap"), "{err}");
        assert!(
            err.explanation.contains("#0") && err.explanation.contains("#1"),
            "{err}"
        );
    }

    #[test]
    fn a_producer_retry_acknowledged_at_the_same_offsets_passes() {
        let mut h = Builder::new();
        h.append_as(1, (0, 10), &["a"], ("p1", 1), acked(0, 0))
            .append_as(1, (11, 20), &["a"], ("p1", 1), acked(0, 0));
        let log = final_log(&[("s", &["a"])]);
        assert_eq!(check_acknowledged_appends(&h.build(), &log), Ok(()));
    }

    #[test]
    fn an_ack_with_the_wrong_offset_count_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a", "b"], acked(0, 0));
        let log = final_log(&[("s", &["a", "b"])]);
        let err = check_acknowledged_appends(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("for 2 values"), "{err}");
    }

    #[test]
    fn a_conditional_append_acknowledged_elsewhere_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0)).append_expecting(
            1,
            (11, 20),
            &["b"],
            0,
            acked(1, 1),
        );
        let log = final_log(&[("s", &["a", "b"])]);
        let err = check_acknowledged_appends(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("expected another offset"), "{err}");
    }
}
