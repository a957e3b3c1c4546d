//! Raft's decision logic, free of I/O, clocks and actors.
//!
//! Each submodule owns one concept. Methods take an input (a peer message, a timer firing,
//! "durable up to") together with the current time, and return the actions to carry out; the
//! actors in `node` execute them. Nothing here imports actix or tokio, reads a clock, or draws
//! from an RNG: time and the last log id come in as arguments, and timer jitter comes from a
//! seeded generator the core owns.
//!
//! The order of the log pointers, asserted wherever one moves:
//! `first ≤ applied ≤ committed ≤ last` on every node, and `match < next` per follower.

pub mod commit;
pub mod election;
pub mod inflight;
pub mod leader;
pub mod leader_view;
pub mod log_rules;
pub mod message;
pub mod progress;
pub mod quorum;
pub mod read;
pub mod timeout;
pub mod uncommitted;

#[cfg(test)]
mod election_tests;
#[cfg(test)]
mod scenarios;
