//! raftlog's Jepsen-style integration suite: clusters of the real release binary, each node
//! in its own network namespace, hit by real faults — kill -9, SIGSTOP/SIGCONT, power loss
//! from unsynced disk images, nft partitions and one-way cuts, packet loss, downed links,
//! rolling restarts, peer latency through a fault proxy — while clients append and read over
//! HTTP, every operation recorded and the history checked with the same checkers as the
//! simulator (`raftlog::testing`).
//!
//! - [`cluster`]: start, kill, pause, restart and heal a cluster;
//! - [`view`]: talking to a running cluster: status, leader, reads, convergence;
//! - [`cleanup`]: removing what a run that died left behind;
//! - [`netns`]: the namespaces, the bridge and the test subnet;
//! - [`faults`]: nft rules (or proxy blocks) for partitions, cuts and loss;
//! - [`proxy`]: the TCP fault proxy (latency, resets; cuts in the loopback fallback);
//! - [`powerloss`]: loop-mounted ext4 images and pulling the plug;
//! - [`http`], [`client`]: the HTTP client and the recording workload clients;
//! - [`nemesis`]: the seeded fault schedule; [`observer`]: role sampling;
//! - [`run`]: one checked run; [`failover`]: the failover measurement.
//!
//! The tests in `tests/` need the release binary and (for namespaces, nft, loop devices)
//! root; they are `#[ignore]`d in a plain `cargo test` and run by `scripts/test-integration`.
//! Without root they fall back to 127.0.0.1 and the proxy, and say so.

pub mod cleanup;
pub mod client;
pub mod cluster;
pub mod failover;
pub mod faults;
pub mod http;
pub mod nemesis;
pub mod netns;
pub mod observer;
pub mod powerloss;
pub mod proxy;
pub mod run;
pub mod sys;
pub mod view;
