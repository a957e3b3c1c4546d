//! `GET /v1/streams` (every stream and its bounds) and `GET /v1/streams/{stream}` (one
//! stream's bounds, which `raftlog tail` uses to start at the end).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::context::HttpContext;
use super::errors::{ApiError, NO_LEADER_RETRY_AFTER};
use super::forward::{Forwarder, Relay};
use super::service::{LogService, ServiceError, StreamSummary};
use super::wire::{ErrorBody, StreamJson, StreamsResponse};

/// Lists every stream ever written.
#[utoipa::path(
    get,
    path = "/v1/streams",
    tag = "streams",
    summary = "List every stream with its bounds",
    responses(
        (status = 200, description = "Every stream ever written, sorted by name", body = StreamsResponse),
        (status = 503, description = "unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn list(
    request: HttpRequest,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    let _pending = context.gates.pending_requests.enter(1)?;
    let streams = match summaries(&service, &context).await {
        Ok(streams) => streams,
        Err(error) => return forward(error, &request, &context, &forwarder).await,
    };
    let streams = streams.into_iter().map(stream_json).collect();
    Ok(HttpResponse::Ok().json(StreamsResponse { streams }))
}

/// One stream's bounds; a stream never written has every offset 0.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}",
    tag = "streams",
    summary = "One stream's bounds",
    params(("stream" = String, Path, description = "The stream name", pattern = r"^[A-Za-z0-9._-]{1,255}$")),
    responses(
        (status = 200, description = "The stream's bounds (all 0 if never written)", body = StreamJson),
        (status = 400, description = "bad_request: bad name", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn get(
    request: HttpRequest,
    stream: web::Path<String>,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    let name = stream.into_inner();
    crate::streams::validate_stream_name(&name).map_err(ApiError::bad_request)?;
    let _pending = context.gates.pending_requests.enter(1)?;
    let streams = match summaries(&service, &context).await {
        Ok(streams) => streams,
        Err(error) => return forward(error, &request, &context, &forwarder).await,
    };
    let found = streams.into_iter().find(|stream| stream.name == name);
    let json = found.map(stream_json).unwrap_or(StreamJson {
        name,
        start_offset: 0,
        end_offset: 0,
    });
    Ok(HttpResponse::Ok().json(json))
}

/// The node's stream list, or 503 if it takes longer than the request timeout.
async fn summaries(
    service: &web::Data<dyn LogService>,
    context: &HttpContext,
) -> Result<Vec<StreamSummary>, ServiceError> {
    match tokio::time::timeout(context.request_timeout, service.streams()).await {
        Ok(answer) => answer,
        Err(_) => Err(ServiceError::unavailable(
            format!(
                "the stream list could not be served within request_timeout_ms ({} ms)",
                context.request_timeout.as_millis()
            ),
            NO_LEADER_RETRY_AFTER,
        )),
    }
}

async fn forward(
    error: ServiceError,
    request: &HttpRequest,
    context: &HttpContext,
    forwarder: &Forwarder,
) -> Result<HttpResponse, ApiError> {
    let relay = Relay::Whole {
        deadline: context.request_timeout,
    };
    forwarder
        .forward_or_fail(error, request, Bytes::new(), context, relay)
        .await
}

fn stream_json(stream: StreamSummary) -> StreamJson {
    StreamJson {
        name: stream.name,
        start_offset: stream.start_offset.0,
        end_offset: stream.end_offset.0,
    }
}
