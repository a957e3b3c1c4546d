//! Raft's decision logic, free of I/O, clocks and actors.
//!
//! Each submodule owns one concept. Methods take an input (a peer message, a timer firing,
//! "durable up to") together with the current time, and return the actions to carry out; the
//! actors in `node` execute them. Nothing here imports actix, tokio, `std::time`'s clocks or
//! an RNG: randomness and time come in as arguments.

pub mod message;
