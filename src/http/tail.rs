//! `GET /v1/streams/{stream}/tail`: a stream's committed records as Server-Sent Events, one
//! event per record, as they commit.
//!
//! The event format (the SSE spec's fields):
//! - `id:` the record's offset, so a client that reconnects with `Last-Event-ID: N` (browsers
//!   do this by themselves) resumes at `N + 1`, without a gap or a repeat;
//! - `data:` the value: as text with `encoding=utf8` (the default), one `data:` line per line
//!   of the value, which the client joins with `\n`; as base64 with `encoding=base64`.
//!   SSE cannot carry every text: a value that is not UTF-8, or that holds a `\r` (which SSE
//!   would read as a line break), is sent as base64 in an event of type `b64`, even with
//!   `encoding=utf8`. Every other event has the default type (`message`);
//! - on a failure (the node stopping, a consumer too slow to keep up) one last event of type
//!   `stream_error` whose data is API.md's error JSON, and the stream ends. The client resumes
//!   with `Last-Event-ID`.
//!
//! A comment line is sent every [`KEEPALIVE`] while nothing commits, so proxies keep the
//! connection open and a vanished client is noticed (its write fails) and its subscription
//! dropped. Open tails count against `sse_subscribers_max`.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use futures::stream::{LocalBoxStream, Stream, StreamExt};

use super::context::HttpContext;
use super::errors::ApiError;
use super::forward::{Forwarder, Relay};
use super::limits::GatePass;
use super::service::{LogService, Record, ServiceError};
use super::wire::{EncodingParam, ErrorBody, TailQuery};
use crate::types::Offset;

/// How often an idle tail sends a keep-alive comment.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// The header with which an SSE client resumes: the last event id (offset) it received.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Streams a stream's committed records as they commit.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/tail",
    tag = "records",
    summary = "Follow a stream's committed records as Server-Sent Events",
    params(
        ("stream" = String, Path, description = "The stream name", pattern = r"^[A-Za-z0-9._-]{1,255}$"),
        TailQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this offset (overrides `from`)"),
    ),
    responses(
        (status = 200, description = "An event stream: `id:` offset, `data:` value", body = String, content_type = "text/event-stream"),
        (status = 400, description = "bad_request: bad name, query or Last-Event-ID", body = ErrorBody),
        (status = 416, description = "offset_out_of_range: `from` is below start_offset", body = ErrorBody),
        (status = 503, description = "unavailable: too many tails, or no leader", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn tail(
    request: HttpRequest,
    stream: web::Path<String>,
    query: web::Query<TailQuery>,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream.into_inner();
    crate::streams::validate_stream_name(&stream).map_err(ApiError::bad_request)?;
    let from = resume_point(&request, &query)?;
    let encoding = query.encoding.unwrap_or_default();
    let pass = context.gates.sse_subscribers.enter(1)?;
    match service.subscribe(&stream, from) {
        Ok(records) => Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(header::CacheControl(vec![CacheDirective::NoCache]))
            // Tell buffering reverse proxies (nginx) to pass events through as they come.
            .insert_header(("x-accel-buffering", "no"))
            .streaming(events(records, encoding, pass))),
        Err(error) => {
            // The leader counts the subscription; this node only relays it.
            drop(pass);
            let relay = Relay::Stream {
                head_deadline: context.request_timeout,
            };
            forwarder
                .forward_or_fail(error, &request, Bytes::new(), &context, relay)
                .await
        }
    }
}

/// The first offset to send: after `Last-Event-ID` if the client sent one, else `from`.
fn resume_point(request: &HttpRequest, query: &TailQuery) -> Result<Offset, ApiError> {
    let Some(last) = request.headers().get(LAST_EVENT_ID) else {
        return Ok(Offset(query.from.unwrap_or(0)));
    };
    let last = last
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match last.and_then(|last| last.checked_add(1)) {
        Some(next) => Ok(Offset(next)),
        None => Err(ApiError::bad_request(
            "Last-Event-ID must be the offset of the last event received, a number below 2^64-1",
        )),
    }
}

/// What the event stream is made of.
struct Tail {
    records: LocalBoxStream<'static, Result<Record, ServiceError>>,
    encoding: EncodingParam,
    /// The subscriber slot, freed when the client goes and actix drops the stream.
    _pass: GatePass,
    ended: bool,
}

/// The SSE body: a `retry:` hint, then one event per record, keep-alives while idle, and an
/// error event before ending on a failure.
fn events(
    records: LocalBoxStream<'static, Result<Record, ServiceError>>,
    encoding: EncodingParam,
    pass: GatePass,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    // Browsers wait this long (ms) before reconnecting after the stream ends.
    let hint = futures::stream::once(async { Ok(Bytes::from_static(b"retry: 1000\n\n")) });
    let tail = Tail {
        records,
        encoding,
        _pass: pass,
        ended: false,
    };
    let body = futures::stream::unfold(tail, |mut tail| async move {
        if tail.ended {
            return None;
        }
        let chunk = tokio::select! {
            next = tail.records.next() => match next? {
                Ok(record) => record_event(&record, tail.encoding),
                Err(error) => {
                    tail.ended = true;
                    error_event(&ApiError::from(error).body())
                }
            },
            _ = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok(chunk), tail))
    });
    hint.chain(body)
}

/// One record as an SSE event (see the module doc for the format).
pub fn record_event(record: &Record, encoding: EncodingParam) -> Bytes {
    let text = match encoding {
        EncodingParam::Utf8 => std::str::from_utf8(&record.value)
            .ok()
            .filter(|text| !text.contains('\r')),
        EncodingParam::Base64 => None,
    };
    let mut event = format!("id: {}\n", record.offset.0);
    match text {
        Some(text) => {
            for line in text.split('\n') {
                event.push_str("data: ");
                event.push_str(line);
                event.push('\n');
            }
        }
        None => {
            if encoding == EncodingParam::Utf8 {
                event.push_str("event: b64\n");
            }
            event.push_str("data: ");
            event.push_str(&BASE64.encode(&record.value));
            event.push('\n');
        }
    }
    event.push('\n');
    Bytes::from(event)
}

fn error_event(body: &ErrorBody) -> Bytes {
    let json = serde_json::to_string(body).expect("an error body serializes");
    Bytes::from(format!("event: stream_error\ndata: {json}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: &'static [u8], encoding: EncodingParam) -> String {
        let record = Record {
            offset: Offset(7),
            value: Bytes::from_static(value),
        };
        String::from_utf8(record_event(&record, encoding).to_vec()).unwrap()
    }

    #[test]
    fn events_carry_the_offset_and_the_value() {
        assert_eq!(event(b"hi", EncodingParam::Utf8), "id: 7\ndata: hi\n\n");
        assert_eq!(
            event(b"a\nb", EncodingParam::Utf8),
            "id: 7\ndata: a\ndata: b\n\n"
        );
        assert_eq!(event(b"", EncodingParam::Utf8), "id: 7\ndata: \n\n");
        assert_eq!(event(b"hi", EncodingParam::Base64), "id: 7\ndata: aGk=\n\n");
    }

    #[test]
    fn values_sse_cannot_carry_as_text_go_as_base64_events() {
        assert_eq!(
            event(&[255], EncodingParam::Utf8),
            "id: 7\nevent: b64\ndata: /w==\n\n"
        );
        assert_eq!(
            event(b"a\rb", EncodingParam::Utf8),
            "id: 7\nevent: b64\ndata: YQ1i\n\n"
        );
    }
}
