//! State Machine Safety (Raft §5.4.3): no two nodes apply different entries at the same
//! index, so every node's applied log is a prefix of the longest one.
//!
//! A node's applied log may start after index 1 once it has installed a snapshot, so logs
//! are compared wherever they overlap. Each log must also be well formed: consecutive
//! indexes, and terms that never decrease along it (Raft's logs are built that way).

use std::collections::{BTreeMap, HashMap};

use super::{Property, Violation};
use crate::types::{LogId, LogIndex, NodeId};

/// Checks that the applied logs of all nodes agree at every index they share.
pub fn check_log_prefix(applied: &BTreeMap<NodeId, Vec<LogId>>) -> Result<(), Violation> {
    for (node, log) in applied {
        check_well_formed(*node, log)?;
    }
    // The first node seen applying each index, and what it applied there.
    let mut first_seen: HashMap<LogIndex, (LogId, NodeId)> = HashMap::new();
    for (node, log) in applied {
        for entry in log {
            let (other, other_node) = *first_seen.entry(entry.index).or_insert((*entry, *node));
            if other != *entry {
                let why = format!(
                    "{other_node} applied {other} but {node} applied {entry} at the same index: \
                     the applied logs diverge, so one state machine applied an entry that was \
                     never committed"
                );
                return Err(violation(why));
            }
        }
    }
    Ok(())
}

fn check_well_formed(node: NodeId, log: &[LogId]) -> Result<(), Violation> {
    for pair in log.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if after.index != before.index.next() {
            let why =
                format!("{node} applied {after} right after {before}: indexes must be consecutive");
            return Err(violation(why));
        }
        if after.term < before.term {
            let why =
                format!("{node} applied {after} after {before}: terms never decrease along a log");
            return Err(violation(why));
        }
    }
    Ok(())
}

fn violation(explanation: String) -> Violation {
    Violation::new(Property::StateMachineSafety, explanation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Term;

    /// A log of `(index, term)` pairs.
    fn log(entries: &[(u64, u64)]) -> Vec<LogId> {
        entries
            .iter()
            .map(|&(index, term)| LogId::new(Term(term), LogIndex(index)))
            .collect()
    }

    #[test]
    fn prefixes_of_the_longest_log_pass() {
        let applied = BTreeMap::from([
            (NodeId(1), log(&[(1, 1), (2, 1), (3, 2), (4, 3)])),
            (NodeId(2), log(&[(1, 1), (2, 1)])),
            (NodeId(3), log(&[])),
            // Installed a snapshot up to index 2.
            (NodeId(4), log(&[(3, 2), (4, 3), (5, 3)])),
        ]);
        assert_eq!(check_log_prefix(&applied), Ok(()));
    }

    #[test]
    fn divergent_applied_logs_fail() {
        let applied = BTreeMap::from([
            (NodeId(1), log(&[(1, 1), (2, 1), (3, 2)])),
            (NodeId(2), log(&[(1, 1), (2, 1), (3, 3)])),
        ]);
        let err = check_log_prefix(&applied).unwrap_err();
        assert_eq!(err.property, Property::StateMachineSafety);
        assert!(
            err.explanation
                .starts_with("n1 applied i3@t2 but n2 applied i3@t3"),
            "{err}"
        );
    }

    #[test]
    fn malformed_logs_fail() {
        let gap = BTreeMap::from([(NodeId(1), log(&[(1, 1), (3, 1)]))]);
        let err = check_log_prefix(&gap).unwrap_err();
        assert!(err.explanation.contains("consecutive"), "{err}");
        let backwards = BTreeMap::from([(NodeId(1), log(&[(1, 2), (2, 1)]))]);
        let err = check_log_prefix(&backwards).unwrap_err();
        assert!(err.explanation.contains("terms never decrease"), "{err}");
    }
}
