//! The one place where an error becomes an HTTP answer: its status, its API.md error code,
//! its code-specific fields and, for 503, its `Retry-After` header.
//!
//! Handlers return `Result<_, ApiError>`; actix-web calls [`ResponseError`] on the error. The
//! same mapping serves actix's own extractor errors (a query string that does not parse) and
//! the fallbacks for unknown routes, so no answer of this server is anything but API.md JSON.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::service::ServiceError;
use super::wire::ErrorBody;

/// When a node that is not the leader cannot tell who is, this is how long clients are told
/// to wait: about one election, rounded up to `Retry-After`'s whole second.
pub const NO_LEADER_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Any error an HTTP handler answers with: the service's, or the HTTP layer's own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// No such route (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// A route that exists, with another method (405 `method_not_allowed`); `allow` lists
    /// the methods it takes, for the `Allow` header.
    #[error("{message}")]
    MethodNotAllowed {
        message: String,
        allow: &'static str,
    },
    /// A body in a format the route does not take (415 `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl ApiError {
    /// 400 `bad_request` for `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Service(ServiceError::BadRequest(message.into()))
    }

    /// 413 `too_large`: `limit` is the config key of the limit exceeded.
    pub fn too_large(limit: &str, message: impl Into<String>) -> Self {
        Self::Service(ServiceError::TooLarge {
            limit: limit.to_string(),
            message: message.into(),
        })
    }

    /// 503 `unavailable`, to retry after `retry_after`.
    pub fn unavailable(reason: impl Into<String>, retry_after: Duration) -> Self {
        Self::Service(ServiceError::unavailable(reason, retry_after))
    }

    /// The JSON body of this error's answer (for an SSE `error` event, which has no status).
    pub fn body(&self) -> ErrorBody {
        self.parts().1
    }

    /// The status, the body and (for 503) the retry delay of this error.
    fn parts(&self) -> Parts {
        match self {
            ApiError::Service(service) => service_parts(service),
            ApiError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                ErrorBody::new("not_found", message),
                None,
            ),
            ApiError::MethodNotAllowed { message, .. } => {
                let body = ErrorBody::new("method_not_allowed", message);
                (StatusCode::METHOD_NOT_ALLOWED, body, None)
            }
            ApiError::UnsupportedMediaType(message) => {
                let body = ErrorBody::new("unsupported_media_type", message);
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, body, None)
            }
        }
    }
}

/// An answer's status, body, and retry delay (503 only).
type Parts = (StatusCode, ErrorBody, Option<Duration>);

/// API.md's status, code and fields for each service error.
fn service_parts(error: &ServiceError) -> Parts {
    match error {
        ServiceError::NotLeader { leader_http } => {
            let message = match leader_http {
                Some(url) => format!(
                    "this node is not the leader, and the request could not be passed to the \
                     leader at {url}"
                ),
                None => "this node is not the leader and knows of no leader (an election may \
                         be under way)"
                    .to_string(),
            };
            unavailable(&message, NO_LEADER_RETRY_AFTER)
        }
        ServiceError::Unavailable {
            reason,
            retry_after,
        } => unavailable(reason, *retry_after),
        ServiceError::OffsetMismatch { next_offset } => {
            let message = format!(
                "expected_offset does not match the stream's next offset, {}; nothing was written",
                next_offset.0
            );
            let body = ErrorBody {
                next_offset: Some(next_offset.0),
                ..ErrorBody::new("offset_mismatch", &message)
            };
            (StatusCode::CONFLICT, body, None)
        }
        ServiceError::StaleProducerSeq { last_seq } => {
            let message = format!(
                "the producer's seq is below its last seq, {last_seq}; nothing was written"
            );
            let body = ErrorBody {
                last_seq: Some(*last_seq),
                ..ErrorBody::new("stale_producer_seq", &message)
            };
            (StatusCode::CONFLICT, body, None)
        }
        ServiceError::OffsetOutOfRange { start_offset } => {
            let message = format!(
                "the offset is below the stream's first offset still held, {}",
                start_offset.0
            );
            let body = ErrorBody {
                start_offset: Some(start_offset.0),
                ..ErrorBody::new("offset_out_of_range", &message)
            };
            (StatusCode::RANGE_NOT_SATISFIABLE, body, None)
        }
        ServiceError::TooLarge { limit, message } => {
            let body = ErrorBody {
                limit: Some(limit.clone()),
                ..ErrorBody::new("too_large", message)
            };
            (StatusCode::PAYLOAD_TOO_LARGE, body, None)
        }
        ServiceError::BadRequest(message) => (
            StatusCode::BAD_REQUEST,
            ErrorBody::new("bad_request", message),
            None,
        ),
        ServiceError::Internal(message) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::new("internal", message),
            None,
        ),
    }
}

/// 503 `unavailable` for `reason`, to retry after `retry_after`.
fn unavailable(reason: &str, retry_after: Duration) -> Parts {
    let body = ErrorBody {
        retry_after_ms: Some(retry_after.as_millis().try_into().unwrap_or(u64::MAX)),
        ..ErrorBody::new("unavailable", reason)
    };
    (StatusCode::SERVICE_UNAVAILABLE, body, Some(retry_after))
}

/// `Retry-After` counts whole seconds (RFC 9110 §10.2.3): round up, and never say 0, which
/// would invite a client to hammer a node that just said it cannot serve.
pub fn retry_after_seconds(retry_after: Duration) -> u64 {
    retry_after
        .as_millis()
        .div_ceil(1_000)
        .clamp(1, u64::MAX.into()) as u64
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body, retry_after) = self.parts();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = %body.error, message = %body.message, "internal error");
        }
        let mut response = HttpResponse::build(status);
        if let Some(retry_after) = retry_after {
            let seconds = retry_after_seconds(retry_after).to_string();
            let value = HeaderValue::from_str(&seconds).expect("digits are a valid header value");
            response.insert_header((header::RETRY_AFTER, value));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, *allow));
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Offset;

    #[test]
    fn retry_after_rounds_up_to_a_whole_second_and_never_zero() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1_000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1_001)), 2);
    }

    #[test]
    fn each_service_error_has_its_status_and_code() {
        let cases = [
            (
                ServiceError::NotLeader { leader_http: None },
                503,
                "unavailable",
            ),
            (
                ServiceError::unavailable("no quorum", Duration::from_secs(2)),
                503,
                "unavailable",
            ),
            (
                ServiceError::OffsetMismatch {
                    next_offset: Offset(3),
                },
                409,
                "offset_mismatch",
            ),
            (
                ServiceError::StaleProducerSeq { last_seq: 4 },
                409,
                "stale_producer_seq",
            ),
            (
                ServiceError::OffsetOutOfRange {
                    start_offset: Offset(5),
                },
                416,
                "offset_out_of_range",
            ),
            (
                ServiceError::TooLarge {
                    limit: "x_max".into(),
                    message: "big".into(),
                },
                413,
                "too_large",
            ),
            (ServiceError::BadRequest("bad".into()), 400, "bad_request"),
            (ServiceError::Internal("bug".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let (got_status, body, _) = ApiError::from(error).parts();
            assert_eq!((got_status.as_u16(), body.error.as_str()), (status, code));
            assert!(!body.message.is_empty());
        }
    }
}
