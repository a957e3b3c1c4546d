//! Test support shared by the in-process simulator and the multi-process integration suite:
//! the recorded history of client operations against streams, and the checkers every run
//! applies to it.
//!
//! Plain data and pure functions, no runtime: the simulator records under tokio's paused
//! clock, the integration suite under real time, and both hand the same checkers a
//! [`History`] and the healed cluster's [`FinalLog`].
//!
//! - [`history`]: operations, outcomes, and the [`HistoryRecorder`] clients share;
//! - [`final_log`]: the converged streams and where each append landed in them;
//! - [`invariants`]: the log-specific checkers, one file per property, and [`Violation`];
//! - [`linearizability`]: the independent WGL check (the `todc-utils` crate).
//!
//! The checkers assume every appended value is unique across the run (e.g. "p3-17"), except
//! that a retry under the same producer id and seq carries the same values.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub mod final_log;
pub mod history;
pub mod invariants;
pub mod linearizability;
#[cfg(feature = "simulation")]
pub mod sim;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod random_history;

pub use final_log::{FinalLog, StreamIndex};
pub use history::{
    AppendCall, Call, ClientId, Consistency, History, HistoryRecorder, OpHandle, OpId, Operation,
    Outcome, ProducerSeq, ReadCall, RejectReason,
};
pub use invariants::{ObservedRole, Property, RoleObservation, Violation};

use crate::types::{LogId, NodeId};

/// What a passing check covered, to print next to the seed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub operations: usize,
    pub streams: usize,
    pub appends_acknowledged: usize,
    /// Appends with unknown outcomes that the final log shows took effect.
    pub appends_unknown_landed: usize,
    /// Appends with unknown outcomes that never took effect.
    pub appends_unknown_lost: usize,
    /// Appends that definitely failed or were rejected.
    pub appends_failed: usize,
    /// Reads that completed with records, at any consistency.
    pub reads_completed: usize,
    pub wgl_operations: usize,
    pub wgl_elapsed: Duration,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations on {} streams: {} appends acknowledged, {} unknown landed, {} unknown \
             lost, {} failed; {} reads; WGL checked {} operations in {:?}",
            self.operations,
            self.streams,
            self.appends_acknowledged,
            self.appends_unknown_landed,
            self.appends_unknown_lost,
            self.appends_failed,
            self.reads_completed,
            self.wgl_operations,
            self.wgl_elapsed,
        )
    }
}

/// Runs every history checker: acknowledged appends, no phantom writes, reads are prefixes,
/// real-time order, and the WGL linearizability check. Each checker reports its first
/// violation; all checkers run, so one broken run shows every property it broke.
pub fn check_history(
    history: &History,
    final_log: &FinalLog,
) -> Result<CheckReport, Vec<Violation>> {
    let mut violations: Vec<Violation> = [
        invariants::check_acknowledged_appends(history, final_log),
        invariants::check_no_phantom_writes(history, final_log),
        invariants::check_reads_are_prefixes(history, final_log),
        invariants::check_real_time_order(history, final_log),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    let wgl = linearizability::check_linearizability(history, final_log);
    match wgl {
        Err(violation) => violations.push(violation),
        Ok(_) if !violations.is_empty() => {}
        Ok(stats) => {
            let mut report = count(history, final_log);
            report.wgl_operations = stats.operations;
            report.wgl_elapsed = stats.elapsed;
            return Ok(report);
        }
    }
    Err(violations)
}

/// Runs the node-level checkers: election safety over role samples, and State Machine
/// Safety over each node's applied log.
pub fn check_cluster(
    observations: &[RoleObservation],
    applied: &BTreeMap<NodeId, Vec<LogId>>,
) -> Result<(), Vec<Violation>> {
    let violations: Vec<Violation> = [
        invariants::check_election_safety(observations),
        invariants::check_log_prefix(applied),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn count(history: &History, final_log: &FinalLog) -> CheckReport {
    let mut report = CheckReport {
        operations: history.len(),
        streams: history.by_stream().len(),
        ..CheckReport::default()
    };
    for (stream, ops) in history.by_stream() {
        let index = StreamIndex::of(final_log, stream);
        for op in ops {
            match (&op.call, &op.outcome) {
                (Call::Append(_), Outcome::Appended { .. }) => report.appends_acknowledged += 1,
                (Call::Append(_), Outcome::Unknown) if index.effect_of(op).is_some() => {
                    report.appends_unknown_landed += 1
                }
                (Call::Append(_), Outcome::Unknown) => report.appends_unknown_lost += 1,
                (Call::Append(_), _) => report.appends_failed += 1,
                (Call::Read(_), Outcome::Read { .. }) => report.reads_completed += 1,
                (Call::Read(_), _) => {}
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::history::Consistency::{Lease, Linearizable, Stale};
    use super::history::Outcome::{Failed, Unknown};
    use super::*;
    use crate::types::{LogIndex, Term};

    #[test]
    fn a_valid_history_with_unknowns_both_ways_passes_and_is_counted() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0))
            .append(2, 2, 12, &["b"], Unknown) // landed, after "c"
            .append(3, 3, 9, &["x"], Unknown) // never landed
            .append(4, 11, 20, &["c"], acked(1, 1))
            .append(5, 21, 22, &["y"], Failed)
            .read(1, 21, 30, 0, Linearizable, read_ok(0, &["a", "c"], 2))
            .read(4, 31, 40, 1, Lease, read_ok(1, &["c", "b"], 3))
            .read(5, 31, 40, 0, Stale, read_ok(0, &["a"], 1));
        let log = final_log(&[("s", &["a", "c", "b"])]);
        let report = check_history(&h.build(), &log).unwrap();
        assert_eq!(
            (
                report.operations,
                report.streams,
                report.appends_acknowledged
            ),
            (8, 1, 2)
        );
        assert_eq!(
            (
                report.appends_unknown_landed,
                report.appends_unknown_lost,
                report.appends_failed
            ),
            (1, 1, 1)
        );
        assert_eq!((report.reads_completed, report.wgl_operations), (3, 5));
    }

    #[test]
    fn a_broken_history_reports_every_property_it_breaks() {
        let mut h = Builder::new();
        h.append(1, 0, 10, &["a"], acked(0, 0)).read(
            2,
            11,
            20,
            0,
            Linearizable,
            read_ok(0, &[], 0),
        );
        let log = final_log(&[("s", &["a", "ghost"])]);
        let violations = check_history(&h.build(), &log).unwrap_err();
        let found: Vec<Property> = violations.iter().map(|v| v.property).collect();
        assert_eq!(
            found,
            [
                Property::NoPhantomWrites,
                Property::RealTimeOrder,
                Property::Linearizability
            ]
        );
        let shown = violations[1].to_string();
        assert!(
            shown.starts_with("real-time order violated: stale read: #0 (c1, 0us..10us)"),
            "{shown}"
        );
    }

    #[test]
    fn check_cluster_runs_both_node_checkers() {
        let observations = [
            RoleObservation {
                node: NodeId(1),
                term: Term(1),
                role: ObservedRole::Leader,
            },
            RoleObservation {
                node: NodeId(2),
                term: Term(1),
                role: ObservedRole::Leader,
            },
        ];
        let applied = BTreeMap::from([
            (NodeId(1), vec![LogId::new(Term(1), LogIndex(1))]),
            (NodeId(2), vec![LogId::new(Term(2), LogIndex(1))]),
        ]);
        let found: Vec<Property> = check_cluster(&observations, &applied)
            .unwrap_err()
            .iter()
            .map(|v| v.property)
            .collect();
        assert_eq!(
            found,
            [Property::ElectionSafety, Property::StateMachineSafety]
        );
        assert_eq!(check_cluster(&observations[..1], &BTreeMap::new()), Ok(()));
    }
}
