//! Election safety (Raft §5.2): at most one leader per term.
//!
//! The simulator samples each node's term and role; a follower's belief counts as evidence
//! too, since in Raft a follower learns of a term's leader only from that leader's own
//! AppendEntries. So two nodes claiming leadership of one term, or a follower following
//! someone other than the term's self-declared leader, is a violation.

use std::collections::BTreeMap;

use super::{Property, Violation};
use crate::types::{NodeId, Term};

/// A node's role as observed at some moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservedRole {
    Leader,
    Follower { leader: Option<NodeId> },
    Candidate,
}

/// One sample of a node's term and role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleObservation {
    pub node: NodeId,
    pub term: Term,
    pub role: ObservedRole,
}

impl RoleObservation {
    /// The leader of `term` this observation vouches for, if any.
    fn leader(&self) -> Option<NodeId> {
        match self.role {
            ObservedRole::Leader => Some(self.node),
            ObservedRole::Follower { leader } => leader,
            ObservedRole::Candidate => None,
        }
    }

    fn describe(&self) -> String {
        match (self.role, self.leader()) {
            (ObservedRole::Leader, _) => format!("{} said it led {}", self.node, self.term),
            (_, Some(leader)) => format!("{} followed {leader} in {}", self.node, self.term),
            (_, None) => format!("{} knew no leader in {}", self.node, self.term),
        }
    }
}

/// Checks that no two observations name different leaders for the same term.
pub fn check_election_safety(observations: &[RoleObservation]) -> Result<(), Violation> {
    let mut leaders: BTreeMap<Term, (NodeId, &RoleObservation)> = BTreeMap::new();
    for observation in observations {
        let Some(leader) = observation.leader() else {
            continue;
        };
        let (known, witness) = *leaders
            .entry(observation.term)
            .or_insert((leader, observation));
        if known != leader {
            let why = format!(
                "{} has two leaders, {known} and {leader}: {}, and {}",
                observation.term,
                witness.describe(),
                observation.describe()
            );
            return Err(Violation::new(Property::ElectionSafety, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(node: u64, term: u64, role: ObservedRole) -> RoleObservation {
        RoleObservation {
            node: NodeId(node),
            term: Term(term),
            role,
        }
    }

    fn following(leader: u64) -> ObservedRole {
        ObservedRole::Follower {
            leader: Some(NodeId(leader)),
        }
    }

    #[test]
    fn one_leader_per_term_passes() {
        let observations = [
            seen(1, 1, ObservedRole::Candidate),
            seen(2, 1, ObservedRole::Candidate),
            seen(1, 2, ObservedRole::Leader),
            seen(2, 2, following(1)),
            seen(3, 2, ObservedRole::Follower { leader: None }),
            seen(2, 3, ObservedRole::Leader),
            seen(1, 3, following(2)),
        ];
        assert_eq!(check_election_safety(&observations), Ok(()));
    }

    #[test]
    fn two_leaders_in_one_term_fail() {
        let observations = [
            seen(1, 2, ObservedRole::Leader),
            seen(2, 2, ObservedRole::Leader),
        ];
        let err = check_election_safety(&observations).unwrap_err();
        assert_eq!(err.property, Property::ElectionSafety);
        assert_eq!(
            err.explanation,
            "t2 has two leaders, n1 and n2: n1 said it led t2, and n2 said it led t2"
        );
    }

    #[test]
    fn a_follower_of_another_leader_in_the_same_term_fails() {
        let observations = [seen(1, 4, ObservedRole::Leader), seen(3, 4, following(2))];
        let err = check_election_safety(&observations).unwrap_err();
        assert!(
            err.explanation
                .contains("n1 said it led t4, and n3 followed n2 in t4"),
            "{err}"
        );
    }
}
