//! The HTTP layer's limits: how big a request may be, and how many may wait at once.
//!
//! Sizes (`[limits]` in the config) are checked before anything reaches the node: a body is
//! read only up to the most that a batch within the limits can take, and then each record,
//! the batch's bytes and its record count are checked. Past a size limit: 413 `too_large`,
//! naming the limit. Concurrency is bounded by [`Gate`]s shared by all worker threads of a
//! node: appends and reads in progress, the body bytes they hold, long-polls and SSE
//! subscribers. Past a gate: 503 `unavailable` with `Retry-After`, so a flood costs the node
//! a refusal each, never unbounded memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::errors::ApiError;
use crate::config::LimitsConfig;

/// How long a client refused by a full gate is told to wait.
pub const GATE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The bytes a JSON append body may have: a batch of `batch_bytes_max` given entirely as
/// base64 (4/3 the size) in `batch_records_max` record objects of up to
/// [`JSON_BYTES_PER_RECORD_MAX`] bytes of framing each, plus room for the producer and the
/// rest. A text batch with much escaping may exceed this while within the limits; it is
/// refused as too large, which the message explains.
pub fn json_body_bytes_max(limits: &LimitsConfig) -> u64 {
    let base64_bytes = limits.batch_bytes_max.div_ceil(3).saturating_mul(4);
    let framing = (limits.batch_records_max as u64).saturating_mul(JSON_BYTES_PER_RECORD_MAX);
    base64_bytes
        .saturating_add(framing)
        .saturating_add(64 << 10)
}

/// JSON framing per record in an append body: `{"value_b64": ""},` and some whitespace.
pub const JSON_BYTES_PER_RECORD_MAX: u64 = 32;

/// A counter with a ceiling, shared by a node's HTTP workers: requests enter with an amount
/// (1 for a request, a length for bytes) and leave when their [`GatePass`] drops.
#[derive(Debug)]
pub struct Gate {
    /// The config key of the ceiling, for the 503's message.
    name: &'static str,
    in_use: AtomicU64,
    max: u64,
}

/// A share of a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct GatePass {
    gate: Arc<Gate>,
    amount: u64,
}

impl Gate {
    pub fn new(name: &'static str, max: u64) -> Arc<Gate> {
        Arc::new(Gate {
            name,
            in_use: AtomicU64::new(0),
            max,
        })
    }

    /// Takes `amount` if the gate has room for it, else a 503 naming the limit.
    pub fn enter(self: &Arc<Self>, amount: u64) -> Result<GatePass, ApiError> {
        let mut pass = GatePass {
            gate: self.clone(),
            amount: 0,
        };
        pass.grow(amount)?;
        Ok(pass)
    }

    /// How much is in use now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    fn full(&self) -> ApiError {
        ApiError::unavailable(
            format!(
                "this node is at its limit of {} ({}); retry shortly or use another node",
                self.max, self.name
            ),
            GATE_RETRY_AFTER,
        )
    }
}

impl GatePass {
    /// Takes `amount` more, or leaves the pass as it was and answers 503.
    pub fn grow(&mut self, amount: u64) -> Result<(), ApiError> {
        let gate = &self.gate;
        let taken = gate
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                in_use
                    .checked_add(amount)
                    .filter(|&total| total <= gate.max)
            });
        match taken {
            Ok(_) => {
                self.amount += amount;
                Ok(())
            }
            Err(_) => Err(gate.full()),
        }
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        let before = self.gate.in_use.fetch_sub(self.amount, Ordering::AcqRel);
        assert!(
            before >= self.amount,
            "gate {} released more than it held",
            self.gate.name
        );
    }
}

/// The gates of one node, shared by its HTTP workers.
#[derive(Debug)]
pub struct Gates {
    /// Appends and plain reads in progress (`pending_requests_max`).
    pub pending_requests: Arc<Gate>,
    /// Request body bytes held by requests in progress (`pending_bytes_max`).
    pub pending_bytes: Arc<Gate>,
    /// Reads waiting in a long-poll (`long_polls_max`).
    pub long_polls: Arc<Gate>,
    /// Open SSE tails (`sse_subscribers_max`).
    pub sse_subscribers: Arc<Gate>,
}

impl Gates {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            pending_requests: Gate::new("pending_requests_max", limits.pending_requests_max as u64),
            pending_bytes: Gate::new("pending_bytes_max", limits.pending_bytes_max),
            long_polls: Gate::new("long_polls_max", limits.long_polls_max as u64),
            sse_subscribers: Gate::new("sse_subscribers_max", limits.sse_subscribers_max as u64),
        }
    }
}

/// Reads a request body of at most `body_bytes_max` bytes (413 naming `limit` past it),
/// holding its bytes in the `pending_bytes` gate as they arrive (503 when the gate is full).
/// A `Content-Length` over the limit is refused before a byte is read.
pub async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    body_bytes_max: u64,
    limit: &str,
    pending_bytes: &Arc<Gate>,
) -> Result<(Bytes, GatePass), ApiError> {
    let too_large = |length: u64| {
        ApiError::too_large(
            limit,
            format!(
                "the request body is {length} bytes or more, over the {body_bytes_max} bytes \
                 allowed by {limit}"
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > body_bytes_max) {
        return Err(too_large(length));
    }
    let mut pass = pending_bytes.enter(declared.unwrap_or(0))?;
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::bad_request(format!("the request body could not be read: {error}"))
        })?;
        let length = (body.len() + chunk.len()) as u64;
        if length > body_bytes_max {
            return Err(too_large(length));
        }
        if length > pass.amount {
            pass.grow(length - pass.amount)?;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), pass))
}

/// Checks a decoded batch against the size limits: 400 if empty, else 413 naming the first
/// limit exceeded.
pub fn check_batch(records: &[Bytes], limits: &LimitsConfig) -> Result<(), ApiError> {
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "the batch is empty; an append needs at least one record",
        ));
    }
    if records.len() > limits.batch_records_max {
        return Err(ApiError::too_large(
            "batch_records_max",
            format!(
                "the batch has {} records, over the limit of {} (batch_records_max)",
                records.len(),
                limits.batch_records_max
            ),
        ));
    }
    let mut batch_bytes = 0u64;
    for (position, record) in records.iter().enumerate() {
        let record_bytes = record.len() as u64;
        if record_bytes > limits.record_bytes_max {
            return Err(ApiError::too_large(
                "record_bytes_max",
                format!(
                    "record {position} is {record_bytes} bytes, over the limit of {} \
                     (record_bytes_max)",
                    limits.record_bytes_max
                ),
            ));
        }
        batch_bytes += record_bytes;
    }
    if batch_bytes > limits.batch_bytes_max {
        return Err(ApiError::too_large(
            "batch_bytes_max",
            format!(
                "the batch is {batch_bytes} bytes, over the limit of {} (batch_bytes_max)",
                limits.batch_bytes_max
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_refuses_past_its_ceiling_and_frees_on_drop() {
        let gate = Gate::new("things_max", 2);
        let first = gate.enter(1).unwrap();
        let mut second = gate.enter(1).unwrap();
        let refused = gate.enter(1).unwrap_err().to_string();
        assert!(refused.contains("things_max"), "{refused}");
        assert!(second.grow(1).is_err());
        assert_eq!(gate.in_use(), 2);
        drop(first);
        second.grow(1).unwrap();
        drop(second);
        assert_eq!(gate.in_use(), 0);
    }

    #[test]
    fn batches_are_checked_against_each_limit() {
        let limits = LimitsConfig {
            record_bytes_max: 4,
            batch_bytes_max: 6,
            batch_records_max: 3,
            ..LimitsConfig::default()
        };
        let batch = |sizes: &[usize]| -> Vec<Bytes> {
            sizes.iter().map(|&n| Bytes::from(vec![b'x'; n])).collect()
        };
        let limit_of = |sizes: &[usize]| match check_batch(&batch(sizes), &limits) {
            Err(ApiError::Service(crate::http::service::ServiceError::TooLarge {
                limit, ..
            })) => limit,
            other => panic!("{other:?}"),
        };
        assert!(check_batch(&batch(&[4, 2]), &limits).is_ok());
        assert!(check_batch(&batch(&[]), &limits).is_err());
        assert_eq!(limit_of(&[1, 1, 1, 1]), "batch_records_max");
        assert_eq!(limit_of(&[5]), "record_bytes_max");
        assert_eq!(limit_of(&[4, 3]), "batch_bytes_max");
    }

    #[test]
    fn a_maximal_base64_batch_fits_the_json_body_limit() {
        let limits = LimitsConfig::default();
        let base64 = limits.batch_bytes_max.div_ceil(3) * 4;
        assert!(json_body_bytes_max(&limits) > base64 + limits.batch_records_max as u64 * 20);
    }
}
