//! When to tell an embedding program who leads: not as soon as a leader is known, but once
//! this node has applied everything committed before that leader's term began — so that a
//! new controller acts on complete state. A leader's term begins with its no-op entry
//! (Raft §8), so "caught up" is "has applied the no-op of the leader's term".

use crate::raft::election::RoleState;
use crate::types::{NodeId, Term};

/// A leader as the embedding program sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeaderView {
    /// The term this node is in.
    pub term: Term,
    /// `None` while no leader is known (or this node has not caught up with it yet).
    pub leader: Option<NodeId>,
}

/// Decides what to publish as role changes arrive and no-ops are applied.
#[derive(Clone, Debug, Default)]
pub struct LeaderViewTracker {
    role: Option<RoleState>,
    /// The term of the last no-op this node applied.
    noop_applied_term: Term,
    published: LeaderView,
}

impl LeaderViewTracker {
    pub fn published(&self) -> LeaderView {
        self.published
    }

    /// Term, role or leader changed. A lost leader is published at once (a controller must
    /// stop acting); a new one once its term's no-op is applied here.
    pub fn on_role(&mut self, role: RoleState) -> Option<LeaderView> {
        self.role = Some(role);
        self.evaluate()
    }

    /// This node applied the no-op that began `term`.
    pub fn on_noop_applied(&mut self, term: Term) -> Option<LeaderView> {
        self.noop_applied_term = self.noop_applied_term.max(term);
        self.evaluate()
    }

    fn evaluate(&mut self) -> Option<LeaderView> {
        let role = self.role?;
        let view = match role.leader {
            Some(leader) if self.noop_applied_term == role.term => LeaderView {
                term: role.term,
                leader: Some(leader),
            },
            _ => LeaderView {
                term: role.term,
                leader: None,
            },
        };
        if view == self.published {
            return None;
        }
        self.published = view;
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::election::Role;

    fn role(term: u64, leader: Option<u64>) -> RoleState {
        RoleState {
            term: Term(term),
            role: Role::Follower,
            leader: leader.map(NodeId),
        }
    }

    fn view(term: u64, leader: Option<u64>) -> Option<LeaderView> {
        Some(LeaderView {
            term: Term(term),
            leader: leader.map(NodeId),
        })
    }

    #[test]
    fn a_leader_is_announced_only_once_its_no_op_is_applied() {
        let mut t = LeaderViewTracker::default();
        assert_eq!(t.on_role(role(2, Some(1))), view(2, None));
        assert_eq!(t.on_noop_applied(Term(1)), None, "an older term's no-op");
        assert_eq!(t.on_noop_applied(Term(2)), view(2, Some(1)));
        assert_eq!(t.on_noop_applied(Term(2)), None, "announced once");
    }

    #[test]
    fn a_no_op_applied_before_the_leader_is_known_counts() {
        let mut t = LeaderViewTracker::default();
        assert_eq!(t.on_noop_applied(Term(3)), None);
        assert_eq!(t.on_role(role(3, Some(2))), view(3, Some(2)));
    }

    #[test]
    fn losing_the_leader_is_announced_at_once() {
        let mut t = LeaderViewTracker::default();
        t.on_role(role(2, Some(1)));
        t.on_noop_applied(Term(2));
        assert_eq!(t.on_role(role(3, None)), view(3, None));
        assert_eq!(
            t.on_role(role(3, Some(3))),
            None,
            "not caught up with term 3 yet"
        );
        assert_eq!(t.on_noop_applied(Term(3)), view(3, Some(3)));
    }
}
