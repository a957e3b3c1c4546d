//! `raftlog bench`: load generation and measurement for a raftlog cluster (issue 7).
//!
//! The command line is in `cli/bench.rs`; everything it runs is here, one job per file:
//!
//! | file | owns |
//! |---|---|
//! | [`run`] | one measured run against a URL or a fresh local cluster; the sweep end to end |
//! | [`cluster`] | starting a throwaway local cluster (`raftlog dev` as a child) and removing it |
//! | [`load`] | the closed-loop HTTP load generator, and filling streams before reads |
//! | [`workload`] | the request bodies and paths a run sends |
//! | [`stats`] | latencies recorded, percentiles, throughput |
//! | [`report`] | the progress line and the results table |
//! | [`sweep`] | the knobs a sweep varies, and the rule that recommends a value |
//! | [`csv`], [`plot`] | the sweep's CSV and its hand-written SVG plot |
//!
//! Measurements are what a client sees: latency from sending a request to reading its whole
//! answer, over keep-alive connections, each sending its next request when its last one is
//! answered. Like `wrk`'s, that loop under-reports latency when the server stalls (a stalled
//! connection sends nothing), so p99.9 is a lower bound under stalls.

pub mod cluster;
pub mod csv;
pub mod load;
pub mod plot;
pub mod report;
pub mod run;
pub mod stats;
pub mod sweep;
pub mod workload;
