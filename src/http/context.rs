//! What every handler of a node shares: the node's id, its limits and request timeout, the
//! gates that bound concurrent work, the metrics registry and the handles on the series the
//! handlers record into. Built once per node and cloned into each HTTP worker; the gates, the
//! registry and the series are shared, not copied.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use super::limits::Gates;
use super::metrics::AppendBatchMetrics;
use crate::config::{LimitsConfig, NodeFileConfig};
use crate::types::NodeId;

/// The per-node settings and shared state of the HTTP layer.
#[derive(Clone)]
pub struct HttpContext {
    /// The node served, for metric labels and the forwarding header.
    pub node_id: NodeId,
    pub limits: LimitsConfig,
    /// How long a call into the node may take before the client gets 503 (`request_timeout_ms`).
    pub request_timeout: Duration,
    pub gates: Arc<Gates>,
    pub metrics: PrometheusHandle,
    pub append_batches: AppendBatchMetrics,
}

impl HttpContext {
    pub fn new(node_id: NodeId, limits: LimitsConfig, request_timeout: Duration) -> Self {
        // The recorder first: the batch-size handles register with it.
        let metrics = super::metrics::handle();
        Self {
            node_id,
            gates: Arc::new(Gates::new(&limits)),
            limits,
            request_timeout,
            metrics,
            append_batches: AppendBatchMetrics::new(node_id),
        }
    }

    /// The context of the node a validated config describes.
    pub fn from_config(config: &NodeFileConfig) -> Self {
        Self::new(config.id, config.limits.clone(), config.request_timeout())
    }

    /// The largest answer a forwarded non-streaming request may relay back: a read of
    /// `read_bytes_max` (or one record of `record_bytes_max`, whichever is larger) as base64
    /// (4/3 the size), with JSON framing for `read_records_max` records, and headroom.
    pub fn relay_bytes_max(&self) -> usize {
        let values = self.limits.read_bytes_max.max(self.limits.record_bytes_max);
        let framing = self.limits.read_records_max as u64 * 64;
        (values.div_ceil(3) * 4 + framing + (1 << 20)) as usize
    }
}
