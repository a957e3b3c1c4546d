//! Reads are prefixes: every completed read, at every consistency level, returned records of
//! the final stream, at their true offsets, contiguous from where it asked to start, and an
//! end offset the final stream reaches.
//!
//! Stale reads are held to this too: they may be old, but never wrong.

use bytes::Bytes;

use super::{Property, Violation};
use crate::testing::final_log::{FinalLog, StreamIndex};
use crate::testing::history::{Call, History, Operation, Outcome, ReadCall};
use crate::types::Offset;

/// Checks every read's records and end offset against the final log.
pub fn check_reads_are_prefixes(history: &History, final_log: &FinalLog) -> Result<(), Violation> {
    for (stream, ops) in history.by_stream() {
        let index = StreamIndex::of(final_log, stream);
        for op in ops {
            if let (
                Call::Read(call),
                Outcome::Read {
                    records,
                    end_offset,
                },
            ) = (&op.call, &op.outcome)
            {
                check_read(op, call, records, *end_offset, &index)?;
            }
        }
    }
    Ok(())
}

fn check_read(
    op: &Operation,
    call: &ReadCall,
    records: &[(Offset, Bytes)],
    end_offset: Offset,
    index: &StreamIndex<'_>,
) -> Result<(), Violation> {
    if end_offset > index.end() {
        let why = format!(
            "{op} saw the stream end at {end_offset}, beyond the final stream's end {}: it read \
             records that were later lost",
            index.end()
        );
        return Err(violation(why));
    }
    for (i, (offset, value)) in records.iter().enumerate() {
        let expected = Offset(call.from.0 + i as u64);
        let why = if *offset != expected {
            format!("{op} returned record {i} at {offset}, not {expected}: records are contiguous from `from`")
        } else if *offset >= end_offset {
            format!(
                "{op} returned a record at {offset}, at or past its own end offset {end_offset}"
            )
        } else {
            match index.get(*offset) {
                Some(found) if found == value => continue,
                found => format!(
                    "{op} returned {:?} at {offset}, but the final stream has {:?} there",
                    String::from_utf8_lossy(value),
                    found.map(|f| String::from_utf8_lossy(f)),
                ),
            }
        };
        return Err(violation(why));
    }
    Ok(())
}

fn violation(explanation: String) -> Violation {
    Violation::new(Property::ReadsArePrefixes, explanation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures::*;
    use crate::testing::history::Consistency::{Linearizable, Stale};

    #[test]
    fn reads_of_the_final_stream_pass() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a", "b", "c"], acked(0, 2))
            .read(2, 11, 12, 0, Linearizable, read_ok(0, &["a", "b"], 3))
            .read(2, 13, 14, 1, Stale, read_ok(1, &["b"], 2))
            .read(2, 15, 16, 5, Linearizable, read_ok(5, &[], 3));
        let log = final_log(&[("s", &["a", "b", "c"])]);
        assert_eq!(check_reads_are_prefixes(&h.build(), &log), Ok(()));
    }

    #[test]
    fn a_read_of_a_value_not_in_the_final_stream_fails() {
        let mut h = Builder::new();
        h.read(2, 11, 12, 0, Stale, read_ok(0, &["a", "x"], 2));
        let log = final_log(&[("s", &["a", "b"])]);
        let err = check_reads_are_prefixes(&h.build(), &log).unwrap_err();
        assert_eq!(err.property, Property::ReadsArePrefixes);
        assert!(
            err.explanation
                .contains("returned \"x\" at o1, but the final stream has Some(\"b\")"),
            "{err}"
        );
    }

    #[test]
    fn a_read_with_a_gap_fails() {
        let mut h = Builder::new();
        let records = vec![(Offset(0), b("a")), (Offset(2), b("c"))];
        let outcome = Outcome::Read {
            records,
            end_offset: Offset(3),
        };
        h.read(2, 11, 12, 0, Linearizable, outcome);
        let log = final_log(&[("s", &["a", "b", "c"])]);
        let err = check_reads_are_prefixes(&h.build(), &log).unwrap_err();
        assert!(err.explanation.contains("at o2, not o1"), "{err}");
    }

    #[test]
    fn a_read_past_the_final_end_fails() {
        let mut h = Builder::new();
        h.read(2, 11, 12, 0, Stale, read_ok(0, &["a"], 2));
        let log = final_log(&[("s", &["a"])]);
        let err = check_reads_are_prefixes(&h.build(), &log).unwrap_err();
        assert!(
            err.explanation.contains("beyond the final stream's end o1"),
            "{err}"
        );
    }

    #[test]
    fn a_read_of_records_past_its_own_end_fails() {
        let mut h = Builder::new();
        h.read(2, 11, 12, 0, Linearizable, read_ok(0, &["a", "b"], 1));
        let log = final_log(&[("s", &["a", "b"])]);
        let err = check_reads_are_prefixes(&h.build(), &log).unwrap_err();
        assert!(
            err.explanation.contains("past its own end offset o1"),
            "{err}"
        );
    }
}
