//! Forwarding to the leader: a follower that is asked for something only the leader can do
//! sends the same request to the leader's HTTP URL and relays the answer, so a client never
//! has to find the leader.
//!
//! One hop only. A forwarded request carries [`FORWARDED_HEADER`] (the forwarding node's id);
//! a node that receives one and is not the leader either (leadership moved meanwhile, or two
//! nodes disagree on who leads) answers 503 `unavailable` instead of forwarding again, so two
//! confused nodes can never bounce a request between them. A leader that cannot be reached or
//! does not answer in time is also a 503: for an append, the client cannot know whether it
//! was committed, and retries with its producer id and seq to be safe.
//!
//! Answers are relayed as they are (status, `Content-Type`, `Retry-After`, body). A plain
//! answer is read whole (bounded by [`HttpContext::relay_bytes_max`]) so that a leader
//! failing mid-answer gives the client a clean 503; an SSE answer is streamed through for as
//! long as both ends stay connected.

use std::time::Duration;

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use super::context::HttpContext;
use super::errors::ApiError;
use super::metrics::record_forward;
use super::service::ServiceError;

/// Marks a request that a follower forwarded; its value is the follower's node id.
pub const FORWARDED_HEADER: &str = "x-raftlog-forwarded-by";

/// Request headers passed on to the leader; everything else (hop-by-hop headers, `Host`,
/// `Content-Length`) is the client library's to set.
const REQUEST_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("last-event-id"),
];

/// Response headers relayed back to the client.
const RESPONSE_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
];

/// How a forwarded request's answer comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relay {
    /// A plain answer: its head within this deadline, then its whole body within another.
    Whole { deadline: Duration },
    /// A stream (SSE): its head within this deadline, then its body for as long as it lasts.
    Stream { head_deadline: Duration },
}

/// One HTTP worker's client for forwarding. `awc::Client` is single-threaded, so each worker
/// builds its own (in `super::app`) and keeps its connection pool.
pub struct Forwarder {
    client: awc::Client,
}

impl Default for Forwarder {
    fn default() -> Self {
        // Deadlines are set per request (see `Relay`): a long-poll or a tail may rightly take
        // far longer than the client's default.
        let client = awc::Client::builder().disable_timeout().finish();
        Self { client }
    }
}

/// Whether `request` was already forwarded by a follower.
pub fn is_forwarded(request: &HttpRequest) -> bool {
    request.headers().contains_key(FORWARDED_HEADER)
}

impl Forwarder {
    /// Answers `error` for `request`: a `NotLeader` that names the leader is forwarded there
    /// (unless the request was itself forwarded); anything else is the client's error answer.
    pub async fn forward_or_fail(
        &self,
        error: ServiceError,
        request: &HttpRequest,
        body: Bytes,
        context: &HttpContext,
        relay: Relay,
    ) -> Result<HttpResponse, ApiError> {
        match error {
            ServiceError::NotLeader {
                leader_http: Some(leader),
            } if !is_forwarded(request) => {
                // Boxed: the forwarding future (awc's request and response) is about 900
                // bytes, and held inline it would make every handler's future that large —
                // an append parked until its commit among them — for a path taken only on a
                // follower.
                Box::pin(self.forward(request, body, &leader, context, relay)).await
            }
            ServiceError::NotLeader {
                leader_http: Some(leader),
            } => Err(ApiError::unavailable(
                format!(
                    "this node was forwarded the request as the leader but is not the leader \
                     (it believes the leader is {leader}); leadership is moving, retry shortly"
                ),
                super::errors::NO_LEADER_RETRY_AFTER,
            )),
            other => Err(other.into()),
        }
    }

    /// Sends `request` (with `body`) to the same path and query at `leader` and relays the
    /// answer.
    async fn forward(
        &self,
        request: &HttpRequest,
        body: Bytes,
        leader: &str,
        context: &HttpContext,
        relay: Relay,
    ) -> Result<HttpResponse, ApiError> {
        let node = context.node_id.0.to_string();
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", leader.trim_end_matches('/'));
        let mut outbound = self.client.request(request.method().clone(), &url);
        for name in &REQUEST_HEADERS {
            if let Some(value) = request.headers().get(name) {
                outbound = outbound.insert_header((name.clone(), value.clone()));
            }
        }
        outbound = outbound.insert_header((FORWARDED_HEADER, node.as_str()));
        tracing::debug!(%url, "forwarding to the leader");

        let head_deadline = match relay {
            Relay::Whole { deadline } => deadline,
            Relay::Stream { head_deadline } => head_deadline,
        };
        let unreachable = |why: String| {
            record_forward(&node, "unreachable");
            ApiError::unavailable(
                format!(
                    "this node is not the leader, and the leader at {leader} {why}; an append \
                     may or may not have been committed: retry it with the same producer id and \
                     seq to be safe"
                ),
                super::errors::NO_LEADER_RETRY_AFTER,
            )
        };
        let sent = tokio::time::timeout(head_deadline, outbound.send_body(body)).await;
        let mut answer = match sent {
            Err(_) => {
                return Err(unreachable(format!(
                    "did not answer within {} ms",
                    head_deadline.as_millis()
                )))
            }
            Ok(Err(error)) => return Err(unreachable(format!("could not be reached ({error})"))),
            Ok(Ok(answer)) => answer,
        };

        let mut response = HttpResponse::build(answer.status());
        for name in &RESPONSE_HEADERS {
            if let Some(value) = answer.headers().get(name) {
                response.insert_header((name.clone(), value.clone()));
            }
        }
        match relay {
            Relay::Stream { .. } => {
                record_forward(&node, "relayed");
                Ok(response.streaming(answer))
            }
            Relay::Whole { deadline } => {
                let body = answer.body().limit(context.relay_bytes_max());
                let body = match tokio::time::timeout(deadline, body).await {
                    Err(_) => {
                        return Err(unreachable(format!(
                            "did not finish answering within {} ms",
                            deadline.as_millis()
                        )))
                    }
                    Ok(Err(error)) => {
                        return Err(unreachable(format!("failed while answering ({error})")))
                    }
                    Ok(Ok(body)) => body,
                };
                record_forward(&node, "relayed");
                Ok(response.body(body))
            }
        }
    }
}
