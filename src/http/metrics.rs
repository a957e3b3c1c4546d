//! `GET /metrics`: the process's metrics in the Prometheus text format, and the HTTP layer's
//! own measurements.
//!
//! Every layer records through the `metrics` crate's macros into one process-wide recorder,
//! installed once by [`handle`] (a process may run several nodes, as `raftlog dev` does, so
//! every series carries a `node` label). The HTTP layer records each request (count by route
//! and status, latency by route), append batch sizes, and how full its gates are. At each
//! scrape it also copies the node's [`ClusterStatus`](super::service::ClusterStatus) into
//! gauges (term, commit and applied index, leadership, per-follower lag), so those are as
//! fresh as the scrape. The node records the rest itself (flush latency, proposal batches,
//! leader changes, WAL bytes).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::context::HttpContext;
use super::limits::Gate;
use super::service::{LogService, Role};
use crate::types::NodeId;

/// Latency buckets, in seconds: 100 µs to 30 s, covering an fsync'd commit on one end and a
/// long-poll on the other.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Count buckets (records per batch, requests per proposal): powers of four up to 64 Ki.
const COUNT_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
];
/// Size buckets: powers of four from 64 B to 64 MiB.
const BYTES_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first
/// call. Histograms are named by unit suffix (`_seconds`, `_records`, `_requests`, `_bytes`),
/// which picks their buckets.
///
/// If another recorder was installed first (an embedding program's), ours is kept private
/// and `/metrics` shows only what it records: a warning says so.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = builder();
            match builder.install_recorder() {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "another metrics recorder is installed; /metrics will be empty");
                    self::builder().build_recorder().handle()
                }
            }
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    let buckets = [
        ("_seconds", SECONDS_BUCKETS),
        ("_records", COUNT_BUCKETS),
        ("_requests", COUNT_BUCKETS),
        ("_bytes", BYTES_BUCKETS),
    ];
    let mut builder = PrometheusBuilder::new();
    for (suffix, values) in buckets {
        builder = builder
            .set_buckets_for_metric(Matcher::Suffix(suffix.to_string()), values)
            .expect("the bucket lists are not empty");
    }
    builder
}

/// The route pattern that served a request: resource data of each route in the route table.
#[derive(Clone, Copy, Debug)]
pub struct Route(pub &'static str);

/// One HTTP worker's handles on its request series, registered on first use. Looking a
/// series up in the recorder allocates its labels and takes a lock, on every request; a
/// handle does neither.
pub struct RequestMetrics {
    node: String,
    latency: RefCell<HashMap<&'static str, Histogram>>,
    count: RefCell<HashMap<(&'static str, u16), Counter>>,
}

impl RequestMetrics {
    pub fn new(node: NodeId) -> Self {
        RequestMetrics {
            node: node.0.to_string(),
            latency: RefCell::default(),
            count: RefCell::default(),
        }
    }

    /// Records one finished request. `route` is the matched pattern, not the path, so that
    /// stream names do not multiply the series.
    pub fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        let node = &self.node;
        self.latency
            .borrow_mut()
            .entry(route)
            .or_insert_with(|| {
                let labels = [("node", node.clone()), ("route", route.to_string())];
                metrics::histogram!("raftlog_http_request_seconds", &labels)
            })
            .record(elapsed.as_secs_f64());
        self.count
            .borrow_mut()
            .entry((route, status))
            .or_insert_with(|| {
                let labels = [
                    ("node", node.clone()),
                    ("route", route.to_string()),
                    ("status", status.to_string()),
                ];
                metrics::counter!("raftlog_http_requests_total", &labels)
            })
            .increment(1);
    }
}

/// A node's handles on its append batch-size series, registered once: looked up in the
/// recorder per request, each cost an allocation of its labels and a locked map lookup.
#[derive(Clone)]
pub struct AppendBatchMetrics {
    records: Histogram,
    bytes: Histogram,
}

impl AppendBatchMetrics {
    pub fn new(node: NodeId) -> Self {
        let labels = [("node", node.0.to_string())];
        AppendBatchMetrics {
            records: metrics::histogram!("raftlog_append_batch_records", &labels),
            bytes: metrics::histogram!("raftlog_append_batch_bytes", &labels),
        }
    }

    /// Records the size of one append batch accepted for proposal.
    pub fn record(&self, records: usize, bytes: usize) {
        self.records.record(records as f64);
        self.bytes.record(bytes as f64);
    }
}

/// Records a request that was forwarded to the leader, and whether the leader answered.
pub fn record_forward(node: &str, outcome: &'static str) {
    let labels = [("node", node.to_string()), ("outcome", outcome.to_string())];
    metrics::counter!("raftlog_http_forwarded_total", &labels).increment(1);
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "cluster",
    summary = "Metrics in the Prometheus text format",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
) -> HttpResponse {
    refresh_gauges(service.get_ref(), &context).await;
    context.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(context.metrics.render())
}

/// Copies the node's status and the gates' levels into gauges.
async fn refresh_gauges(service: &dyn LogService, context: &HttpContext) {
    let node = context.node_id.0.to_string();
    let status = service.cluster().await;
    let labels = [("node", node.clone())];
    metrics::gauge!("raftlog_term", &labels).set(status.term.0 as f64);
    metrics::gauge!("raftlog_commit_index", &labels).set(status.commit_index.0 as f64);
    metrics::gauge!("raftlog_applied_index", &labels).set(status.applied_index.0 as f64);
    let leader = if status.role == Role::Leader {
        1.0
    } else {
        0.0
    };
    metrics::gauge!("raftlog_is_leader", &labels).set(leader);
    for member in &status.members {
        let labels = [("node", node.clone()), ("member", member.id.0.to_string())];
        if let Some(lag) = member.lag {
            metrics::gauge!("raftlog_member_lag_entries", &labels).set(lag as f64);
        }
        if let Some(match_index) = member.match_index {
            metrics::gauge!("raftlog_member_match_index", &labels).set(match_index.0 as f64);
        }
        if let Some(last_ack) = member.last_ack {
            metrics::gauge!("raftlog_member_last_ack_seconds", &labels).set(last_ack.as_secs_f64());
        }
    }
    let gates = &context.gates;
    for (name, gate) in [
        ("pending_requests", &gates.pending_requests),
        ("pending_bytes", &gates.pending_bytes),
        ("long_polls", &gates.long_polls),
        ("sse_subscribers", &gates.sse_subscribers),
    ] {
        gate_gauge(&node, name, gate);
    }
}

fn gate_gauge(node: &str, name: &'static str, gate: &Gate) {
    let labels = [("node", node.to_string()), ("gate", name.to_string())];
    metrics::gauge!("raftlog_http_in_use", &labels).set(gate.in_use() as f64);
}
