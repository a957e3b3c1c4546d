//! No phantom writes: every value in the final log was issued, once, by an append to that
//! stream that may have succeeded, and an append whose outcome is unknown landed whole or
//! not at all.
//!
//! This relies on the tests' uniqueness assumption (see [`crate::testing::final_log`]): each
//! value is issued by one logical append, and only its idempotent-producer retries carry it
//! again. So a value twice in the final log is a duplicated write (e.g. a producer retry
//! that was not deduplicated), and a value no append issued came from nowhere.

use std::collections::HashMap;

use bytes::Bytes;

use super::{Property, Violation};
use crate::testing::final_log::{FinalLog, StreamIndex};
use crate::testing::history::{AppendCall, Call, History, Operation, Outcome};
use crate::types::Offset;

/// Checks that the final log holds only values that appends issued, each once, and that
/// appends with unknown outcomes are all-or-nothing.
pub fn check_no_phantom_writes(history: &History, final_log: &FinalLog) -> Result<(), Violation> {
    let issuers = issuers_by_value(history);
    for (stream, values) in final_log {
        check_stream_values(stream, values, &issuers)?;
    }
    for op in history {
        if let (Call::Append(call), Outcome::Unknown) = (&op.call, &op.outcome) {
            check_all_or_nothing(op, call, &StreamIndex::of(final_log, &call.stream))?;
        }
    }
    Ok(())
}

/// Every append that carried each value, in any stream.
fn issuers_by_value(history: &History) -> HashMap<&Bytes, Vec<&Operation>> {
    let mut issuers: HashMap<&Bytes, Vec<&Operation>> = HashMap::new();
    for op in history {
        if let Call::Append(call) = &op.call {
            for value in &call.values {
                issuers.entry(value).or_default().push(op);
            }
        }
    }
    issuers
}

fn check_stream_values(
    stream: &str,
    values: &[Bytes],
    issuers: &HashMap<&Bytes, Vec<&Operation>>,
) -> Result<(), Violation> {
    let mut seen: HashMap<&Bytes, Offset> = HashMap::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let offset = Offset(i as u64);
        let shown = String::from_utf8_lossy(value);
        let ops: Vec<&Operation> = issuers
            .get(value)
            .map(|ops| {
                ops.iter()
                    .copied()
                    .filter(|op| op.call.stream() == stream)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(earlier) = seen.insert(value, offset) {
            let why = format!(
                "{shown:?} is in the final stream {stream:?} twice, at {earlier} and {offset}; \
                 values are unique, so it was written twice. It was issued by: {}",
                list(&ops)
            );
            return Err(violation(why));
        }
        if ops.is_empty() {
            let elsewhere = issuers.get(value).map_or(0, Vec::len);
            let why = format!(
                "the final stream {stream:?} holds {shown:?} at {offset}, which no append to \
                 {stream:?} issued ({elsewhere} appends to other streams did)"
            );
            return Err(violation(why));
        }
        if ops.iter().all(|op| definitely_failed(op)) {
            let why = format!(
                "the final stream {stream:?} holds {shown:?} at {offset}, though every append \
                 that carried it definitely failed: {}",
                list(&ops)
            );
            return Err(violation(why));
        }
    }
    Ok(())
}

fn definitely_failed(op: &Operation) -> bool {
    matches!(op.outcome, Outcome::Failed | Outcome::AppendRejected { .. })
}

/// An append whose outcome is unknown is in the final log whole, in order and contiguous,
/// or not at all: a batch is one Raft entry.
fn check_all_or_nothing(
    op: &Operation,
    call: &AppendCall,
    index: &StreamIndex<'_>,
) -> Result<(), Violation> {
    let Some((first, _)) = index.effect_of(op) else {
        let present = call.values.iter().find_map(|v| index.offset_of(v));
        return match present {
            None => Ok(()),
            Some(offset) => Err(violation(format!(
                "{op} is in the final log only in part: its first value is missing but another \
                 is at {offset}"
            ))),
        };
    };
    for (i, value) in call.values.iter().enumerate() {
        let expected = Offset(first.0 + i as u64);
        if index.get(expected) != Some(value) {
            let why = format!(
                "{op} is in the final log in part or out of order: its first value is at {first} \
                 but value {i} is not at {expected}"
            );
            return Err(violation(why));
        }
    }
    Ok(())
}

fn list(ops: &[&Operation]) -> String {
    let lines: Vec<String> = ops.iter().map(|op| op.to_string()).collect();
    lines.join("; ")
}

fn violation(explanation: String) -> Violation {
    Violation::new(Property::NoPhantomWrites, explanation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::*;
    use crate::testing::history::Outcome::{Failed, Unknown};

    #[test]
    fn issued_values_once_each_pass() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 0, 10, &["b", "c"], Unknown)
            .append(3, 0, 10, &["d"], Unknown)
            .append(4, 0, 10, &["e"], Failed)
            .append(5, 0, 10, &["f"], mismatch(3));
        let log = final_log(&[("s", &["a", "b", "c"])]);
        assert_eq!(check_no_phantom_writes(&h.build(), &log), Ok(()));
    }

    #[test]
    fn a_value_nobody_issued_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0));
        let log = final_log(&[("s", &["a", "ghost"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert_eq!(err.property, Property::NoPhantomWrites);
        assert!(
            err.explanation.contains("\"ghost\" at o1, which no append"),
            "{err}"
        );
    }

    #[test]
    fn a_value_issued_to_another_stream_fails() {
        let mut h = Builder::new();
        h.op(1, 0, 10, append_call("t", &["a"], None, None), acked(0, 0));
        let log = final_log(&[("s", &["a"]), ("t", &["a"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert!(
            err.explanation.contains("1 appends to other streams"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_append_in_the_final_log_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], Failed);
        let log = final_log(&[("s", &["a"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("definitely failed: #0"), "{err}");
    }

    #[test]
    fn a_rejected_append_in_the_final_log_fails() {
        let mut h = Builder::new();
        h.append_expecting(1, (0, 10), &["a"], 5, mismatch(0));
        let log = final_log(&[("s", &["a"])]);
        assert!(check_no_phantom_writes(&h.build(), &log).is_err());
    }

    #[test]
    fn a_failed_retry_of_an_unknown_append_that_landed_passes() {
        let mut h = Builder::new();
        h.append_as(1, (0, 10), &["a"], ("p1", 1), Unknown)
            .append_as(1, (11, 20), &["a"], ("p1", 1), Failed);
        let log = final_log(&[("s", &["a"])]);
        assert_eq!(check_no_phantom_writes(&h.build(), &log), Ok(()));
    }

    #[test]
    fn a_duplicated_producer_retry_fails() {
        let mut h = Builder::new();
        h.append_as(1, (0, 10), &["a"], ("p1", 1), Unknown)
            .append_as(1, (11, 20), &["a"], ("p1", 1), acked(1, 1));
        let log = final_log(&[("s", &["a", "a"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("twice, at o0 and o1"), "{err}");
        assert!(err.explanation.contains("producer p1/1"), "{err}");
    }

    #[test]
    fn an_unknown_batch_in_part_fails() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a", "b"], Unknown)
            .append(2, 0, 10, &["c"], Unknown);
        let log = final_log(&[("s", &["a", "c"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("in part or out of order"), "{err}");
        let log = final_log(&[("s", &["b"])]);
        let err = check_no_phantom_writes(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("only in part"), "{err}");
    }
}
