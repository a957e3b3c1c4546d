//! raftlog: a replicated, durable, linearizable log service built on Raft and actix.
//!
//! The layers, each in its own module (see `../shared/DESIGN.md`):
//! - [`raft`]: the pure decision logic — no I/O, no clocks, no actors;
//! - [`transport`]: peer messages over TCP, and an in-process network for simulation;
//! - [`embed`]: the library API — run a node in-process and use it through a handle; the
//!   HTTP service ([`service`], [`http`]) is a layer over it;
//! - [`testing`]: history recording and the checkers shared by the simulator and the
//!   integration suite.

pub mod bench;
pub mod chunked;
pub mod cli;
pub mod config;
pub mod embed;
pub mod http;
pub mod node;
pub mod raft;
pub mod runtime;
pub mod service;
pub mod streams;
pub mod testing;
pub mod transport;
pub mod types;
