//! The log-specific checkers, one file per property, and the [`Violation`] they all report.
//!
//! History checkers take the recorded [`History`](super::history::History) and the healed
//! cluster's [`FinalLog`](super::final_log::FinalLog); node checkers take what the simulator
//! observed of each node. Each returns the first violation it finds, explained in one
//! paragraph that names the conflicting operations with their client, times and offsets, so
//! a failing seed can be understood from its output alone.

use std::fmt;

mod acknowledged;
mod election_safety;
mod log_prefix;
mod phantom;
mod read_prefix;
mod real_time;

pub use acknowledged::check_acknowledged_appends;
pub use election_safety::{check_election_safety, ObservedRole, RoleObservation};
pub use log_prefix::check_log_prefix;
pub use phantom::check_no_phantom_writes;
pub use read_prefix::check_reads_are_prefixes;
pub use real_time::check_real_time_order;

/// The property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Property {
    /// Every acknowledged append is in the final log exactly at its acknowledged offsets.
    AcknowledgedAppends,
    /// Every value in the final log was issued by an append that may have succeeded, once.
    NoPhantomWrites,
    /// Every read returned records of the final log, contiguous from where it asked.
    ReadsArePrefixes,
    /// Operations ordered in real time are ordered in the log.
    RealTimeOrder,
    /// The WGL checker found no sequential order of a stream's operations.
    Linearizability,
    /// At most one leader per term (Raft §5.2).
    ElectionSafety,
    /// Applied logs agree wherever they overlap (Raft §5.4.3, State Machine Safety).
    StateMachineSafety,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Property::AcknowledgedAppends => "acknowledged appends",
            Property::NoPhantomWrites => "no phantom writes",
            Property::ReadsArePrefixes => "reads are prefixes",
            Property::RealTimeOrder => "real-time order",
            Property::Linearizability => "linearizability (WGL)",
            Property::ElectionSafety => "election safety",
            Property::StateMachineSafety => "state machine safety",
        };
        f.write_str(name)
    }
}

/// A broken property and a one-paragraph explanation naming what conflicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: Property,
    pub explanation: String,
}

impl Violation {
    pub fn new(property: Property, explanation: impl Into<String>) -> Self {
        Self {
            property,
            explanation: explanation.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.explanation)
    }
}

impl std::error::Error for Violation {}
