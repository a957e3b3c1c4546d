//! The router: receives every peer message the transport delivers and hands it to the actor
//! that owns its part of the state, and — because it is the one that knows where replicators
//! are — starts and stops them as leadership comes and goes.
//!
//! Takes: the inbound message stream, [`RoleChanged`], [`Appended`], [`Committed`],
//! [`Shutdown`].

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::node::clock::Clock;
use crate::node::election_actor::{ElectionActor, Inbound};
use crate::node::events::{Appended, Committed, RoleChanged};
use crate::node::replicator_actor::{PeerResponse, ReplicatorActor, Stop};
use crate::node::storage::LogReader;
use crate::raft::election::Role;
use crate::raft::message::{MessageBody, PeerMessage};
use crate::raft::progress::ReplicationLimits;
use crate::transport::PeerNetwork;
use crate::types::{LogIndex, NodeId, Term};

/// Stop routing and stop every replicator.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// What a replicator needs, kept by the router to start them.
pub struct ReplicatorDeps {
    pub limits: ReplicationLimits,
    pub reader: Arc<dyn LogReader>,
    pub network: Arc<dyn PeerNetwork>,
    pub clock: Clock,
}

pub struct Router {
    id: NodeId,
    peers: Vec<NodeId>,
    election: Addr<ElectionActor>,
    inbound: Option<mpsc::Receiver<PeerMessage>>,
    deps: ReplicatorDeps,
    /// The replicators of the term this node leads, if it leads.
    replicators: BTreeMap<NodeId, Addr<ReplicatorActor>>,
    replicating_term: Option<Term>,
    committed: LogIndex,
}

impl Router {
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        election: Addr<ElectionActor>,
        inbound: mpsc::Receiver<PeerMessage>,
        deps: ReplicatorDeps,
    ) -> Self {
        Self {
            id,
            peers,
            election,
            inbound: Some(inbound),
            deps,
            replicators: BTreeMap::new(),
            replicating_term: None,
            committed: LogIndex(0),
        }
    }

    fn stop_replicators(&mut self) {
        for replicator in std::mem::take(&mut self.replicators).into_values() {
            replicator.do_send(Stop);
        }
        self.replicating_term = None;
    }

    fn start_replicators(&mut self, term: Term) {
        self.stop_replicators();
        for &peer in &self.peers {
            let replicator = ReplicatorActor::new(
                self.id,
                peer,
                term,
                self.committed,
                self.deps.limits,
                self.deps.reader.clone(),
                self.deps.network.clone(),
                self.election.clone(),
                self.deps.clock,
            );
            self.replicators.insert(peer, replicator.start());
        }
        self.replicating_term = Some(term);
    }

    fn route(&mut self, message: PeerMessage) {
        if message.to != self.id {
            tracing::warn!(to = %message.to, "dropping a message addressed to another node");
            return;
        }
        match message.body {
            MessageBody::AppendEntriesResponse(response) => {
                if let Some(replicator) = self.replicators.get(&message.from) {
                    replicator.do_send(PeerResponse {
                        term: message.term,
                        response,
                    });
                }
                // Otherwise it answers a term this node no longer leads: nothing to do.
            }
            _ => self.election.do_send(Inbound(message)),
        }
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut inbound = self.inbound.take().expect("started once");
        ctx.add_stream(futures::stream::poll_fn(move |cx| inbound.poll_recv(cx)));
    }
}

impl StreamHandler<PeerMessage> for Router {
    fn handle(&mut self, message: PeerMessage, _: &mut Context<Self>) {
        self.route(message);
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        // The transport is gone: nothing more will arrive, but the node may still be shutting
        // down in order; keep running until told to stop.
    }
}

impl Handler<RoleChanged> for Router {
    type Result = ();

    fn handle(&mut self, RoleChanged(role): RoleChanged, _: &mut Context<Self>) {
        match role.role {
            Role::Leader if self.replicating_term != Some(role.term) => {
                self.start_replicators(role.term)
            }
            Role::Leader => {}
            _ => self.stop_replicators(),
        }
    }
}

impl Handler<Appended> for Router {
    type Result = ();

    fn handle(&mut self, msg: Appended, _: &mut Context<Self>) {
        if self.replicating_term == Some(msg.term) {
            for replicator in self.replicators.values() {
                replicator.do_send(msg);
            }
        }
    }
}

impl Handler<Committed> for Router {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        self.committed = self.committed.max(msg.index);
        for replicator in self.replicators.values() {
            replicator.do_send(msg);
        }
    }
}

impl Handler<crate::node::Freeze> for Router {
    type Result = ();

    /// A paused process pauses all of it: the replicators too.
    fn handle(&mut self, msg: crate::node::Freeze, ctx: &mut Context<Self>) {
        for replicator in self.replicators.values() {
            replicator.do_send(crate::node::Freeze {
                duration: msg.duration,
            });
        }
        ctx.wait(actix::fut::wrap_future(tokio::time::sleep(msg.duration)));
    }
}

impl Handler<Shutdown> for Router {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.stop_replicators();
        ctx.stop();
    }
}
