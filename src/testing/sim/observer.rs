//! Watches every node of a simulated cluster: each role change (for election safety), each
//! applied entry (for state machine safety, per node incarnation), and fatal errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::node::NodeObserver;
use crate::raft::election::{Role, RoleState};
use crate::testing::{ObservedRole, RoleObservation};
use crate::types::{LogId, NodeId, Term};

#[derive(Default)]
struct Observed {
    roles: Vec<RoleObservation>,
    /// Applied log ids per node incarnation: a restarted node re-applies from the start, and
    /// each incarnation's sequence must be a prefix of the others.
    applied: BTreeMap<(NodeId, u64), Vec<LogId>>,
    incarnation: BTreeMap<NodeId, u64>,
    fatal: Vec<(NodeId, String)>,
}

/// What a hook hears about, synchronously, at the moment it happens inside the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// Before the new leader has sent anything as leader.
    BecameLeader {
        node: NodeId,
        term: Term,
    },
    Applied {
        node: NodeId,
        log_id: LogId,
    },
}

/// Called synchronously on every [`NodeEvent`]: the nemesis and the scenario tests use it to
/// cut a node off at exactly the worst moment.
pub type Hook = Arc<dyn Fn(NodeEvent) + Send + Sync>;

#[derive(Clone, Default)]
pub struct ClusterObserver {
    inner: Arc<Mutex<Observed>>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl ClusterObserver {
    pub fn set_hook(&self, hook: Option<Hook>) {
        *self.hook.lock().expect("hook lock") = hook;
    }

    fn call_hook(&self, event: NodeEvent) {
        let hook = self.hook.lock().expect("hook lock").clone();
        if let Some(hook) = hook {
            hook(event);
        }
    }

    /// A node restarted: its applies from now on are a new sequence.
    pub fn restarted(&self, node: NodeId) {
        *self.lock().incarnation.entry(node).or_default() += 1;
    }

    /// The observer to hand the current incarnation of `node`: it files what that
    /// incarnation reports under it, even if the node has restarted since (a crashed
    /// incarnation's actors may still be finishing their last messages).
    pub fn for_incarnation(&self, node: NodeId) -> IncarnationObserver {
        let incarnation = self.lock().incarnation.get(&node).copied().unwrap_or(0);
        IncarnationObserver {
            cluster: self.clone(),
            incarnation,
        }
    }

    /// A fatal error the harness caused by crashing `node` is expected; record the rest.
    pub fn fatal(&self, node: NodeId, message: &str) {
        self.lock().fatal.push((node, message.to_string()));
    }

    pub fn fatal_errors(&self) -> Vec<(NodeId, String)> {
        self.lock().fatal.clone()
    }

    pub fn roles(&self) -> Vec<RoleObservation> {
        self.lock().roles.clone()
    }

    /// Applied sequences keyed by a per-incarnation id (`node * 1000 + incarnation`), as
    /// [`crate::testing::check_cluster`] takes them.
    pub fn applied_by_incarnation(&self) -> BTreeMap<NodeId, Vec<LogId>> {
        self.lock()
            .applied
            .iter()
            .map(|(&(node, incarnation), ids)| (NodeId(node.0 * 1000 + incarnation), ids.clone()))
            .collect()
    }

    /// The last index each node's current incarnation applied.
    pub fn last_applied(&self, node: NodeId) -> Option<LogId> {
        let observed = self.lock();
        let incarnation = observed.incarnation.get(&node).copied().unwrap_or(0);
        observed
            .applied
            .get(&(node, incarnation))
            .and_then(|ids| ids.last().copied())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.inner.lock().expect("observer lock")
    }
}

/// What one incarnation of a node reports through.
pub struct IncarnationObserver {
    cluster: ClusterObserver,
    incarnation: u64,
}

impl NodeObserver for IncarnationObserver {
    fn role_changed(&self, node: NodeId, role: RoleState) {
        self.cluster.role_changed(node, role);
    }

    fn applied(&self, node: NodeId, log_id: LogId) {
        self.cluster.applied_in(node, self.incarnation, log_id);
    }
}

impl ClusterObserver {
    fn applied_in(&self, node: NodeId, incarnation: u64, log_id: LogId) {
        let mut observed = self.lock();
        observed
            .applied
            .entry((node, incarnation))
            .or_default()
            .push(log_id);
        drop(observed);
        self.call_hook(NodeEvent::Applied { node, log_id });
    }

    fn role_changed(&self, node: NodeId, role: RoleState) {
        let observed = match role.role {
            Role::Leader => ObservedRole::Leader,
            Role::Follower => ObservedRole::Follower {
                leader: role.leader,
            },
            Role::Candidate | Role::PreCandidate => ObservedRole::Candidate,
        };
        self.lock().roles.push(RoleObservation {
            node,
            term: role.term,
            role: observed,
        });
        if role.role == Role::Leader {
            self.call_hook(NodeEvent::BecameLeader {
                node,
                term: role.term,
            });
        }
    }
}
