//! `POST` and `GET /v1/streams/{stream}/records`: appending a batch and reading records.
//!
//! An append is checked here before it reaches the node: the stream name, the body's format
//! (a JSON batch or one raw record), its base64, the producer id and every size limit. Only a
//! well-formed batch within the limits is handed to [`LogService::append`], under the
//! request timeout. A read turns its query into a [`ReadRequest`] within the read limits, and
//! its answer into JSON, each value as text when it can be and base64 when it must.
//!
//! Both forward to the leader when the node says it is not the leader (`forward.rs`).

use std::time::Duration;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as BASE64};
use base64::Engine;
use bytes::Bytes;

use super::context::HttpContext;
use super::errors::ApiError;
use super::forward::{Forwarder, Relay};
use super::limits::{check_batch, json_body_bytes_max, read_body};
use super::service::{AppendRequest, Consistency, LogService, ReadRequest, ReadResult, Record};
use super::wire::{
    AppendBody, AppendResponse, ConsistencyParam, EncodingParam, ErrorBody, RawRecord, ReadQuery,
    ReadResponse, RecordIn, RecordOut, PRODUCER_ID_CHARS_MAX,
};
use crate::types::Offset;

/// Standard base64 that accepts nonzero unused bits in the last symbol ("AB==" as well as
/// "AA=="), as most encoders' peers do: the schema's pattern promises exactly that.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Records per read when the query gives no `limit`.
pub const READ_LIMIT_DEFAULT: u64 = 100;

/// Appends a batch of records to a stream.
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/records",
    tag = "records",
    summary = "Append a batch of records; answered once committed on a majority",
    params(("stream" = String, Path, description = "The stream name", pattern = r"^[A-Za-z0-9._-]{1,255}$")),
    request_body(
        description = "A JSON batch, or exactly one raw record as application/octet-stream",
        content((AppendBody = "application/json"), (RawRecord = "application/octet-stream"))
    ),
    responses(
        (status = 200, description = "Committed: the batch's offsets", body = AppendResponse),
        (status = 400, description = "bad_request: malformed JSON, bad base64, bad name, empty batch", body = ErrorBody),
        (status = 409, description = "offset_mismatch (with next_offset) or stale_producer_seq (with last_seq); nothing written", body = ErrorBody),
        (status = 413, description = "too_large: a record or the batch is over a limit, which the message and `limit` name", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: not JSON nor octet-stream", body = ErrorBody),
        (status = 503, description = "unavailable: no leader or no quorum in time; the write may or may not be committed", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn append(
    request: HttpRequest,
    stream: web::Path<String>,
    payload: web::Payload,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream.into_inner();
    crate::streams::validate_stream_name(&stream).map_err(ApiError::bad_request)?;
    let format = BodyFormat::of(&request)?;
    let limits = &context.limits;
    let _pending = context.gates.pending_requests.enter(1)?;
    let (body_bytes_max, limit) = match format {
        BodyFormat::Json => (json_body_bytes_max(limits), "batch_bytes_max"),
        BodyFormat::Raw => (limits.record_bytes_max, "record_bytes_max"),
    };
    let (body, _held) = read_body(
        &request,
        payload,
        body_bytes_max,
        limit,
        &context.gates.pending_bytes,
    )
    .await?;
    let append = match format {
        BodyFormat::Json => parse_json_batch(&body)?,
        BodyFormat::Raw => AppendRequest {
            records: vec![body.clone()],
            producer: None,
            expected_offset: None,
        },
    };
    check_batch(&append.records, limits)?;
    let batch_bytes = append.records.iter().map(Bytes::len).sum();
    context
        .append_batches
        .record(append.records.len(), batch_bytes);

    let deadline = context.request_timeout;
    let answer = tokio::time::timeout(deadline, service.append(&stream, append)).await;
    match answer {
        Ok(Ok(done)) => Ok(HttpResponse::Ok().json(AppendResponse {
            stream,
            first_offset: done.first_offset.0,
            last_offset: done.last_offset.0,
            index: done.index.0,
            term: done.term.0,
        })),
        Ok(Err(error)) => {
            forwarder
                .forward_or_fail(error, &request, body, &context, Relay::Whole { deadline })
                .await
        }
        Err(_) => Err(ApiError::unavailable(
            format!(
                "the append was not committed within request_timeout_ms ({} ms); it may or may \
                 not be committed later: retry it with the same producer id and seq to be safe",
                deadline.as_millis()
            ),
            super::errors::NO_LEADER_RETRY_AFTER,
        )),
    }
}

/// The two body formats an append takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFormat {
    /// `application/json`: an [`AppendBody`].
    Json,
    /// `application/octet-stream`: exactly one record.
    Raw,
}

impl BodyFormat {
    /// The format of `request`'s `Content-Type`, whose parameters (`; charset=utf-8`) do not
    /// matter and whose type and subtype are case-insensitive (RFC 9110 §8.3.1).
    fn of(request: &HttpRequest) -> Result<Self, ApiError> {
        match request.content_type() {
            json if json.eq_ignore_ascii_case("application/json") => Ok(BodyFormat::Json),
            raw if raw.eq_ignore_ascii_case("application/octet-stream") => Ok(BodyFormat::Raw),
            other => {
                let got = if other.is_empty() {
                    "no Content-Type".to_string()
                } else {
                    format!("Content-Type {other}")
                };
                Err(ApiError::UnsupportedMediaType(format!(
                    "an append takes Content-Type application/json (a batch) or \
                     application/octet-stream (one raw record), not {got}"
                )))
            }
        }
    }
}

/// Decodes a JSON batch: its records (text or base64), producer and expected offset. Sizes
/// are checked afterwards, on the decoded values.
fn parse_json_batch(body: &[u8]) -> Result<AppendRequest, ApiError> {
    let batch: AppendBody = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("the body is not a valid append batch: {error}"))
    })?;
    let mut records = Vec::with_capacity(batch.records.len());
    for (position, record) in batch.records.into_iter().enumerate() {
        records.push(match record {
            RecordIn::Text(text) => Bytes::from(text.value),
            RecordIn::Base64(binary) => match BASE64_LENIENT.decode(binary.value_b64.as_bytes()) {
                Ok(value) => Bytes::from(value),
                Err(error) => {
                    return Err(ApiError::bad_request(format!(
                        "record {position} has value_b64 that is not valid base64 ({error})"
                    )))
                }
            },
        });
    }
    let producer = match batch.producer {
        Some(producer)
            if producer.id.is_empty() || producer.id.chars().count() > PRODUCER_ID_CHARS_MAX =>
        {
            return Err(ApiError::bad_request(format!(
                "producer.id must be 1 to {PRODUCER_ID_CHARS_MAX} characters long, not {}",
                producer.id.chars().count()
            )))
        }
        Some(producer) => Some((producer.id, producer.seq)),
        None => None,
    };
    Ok(AppendRequest {
        records,
        producer,
        expected_offset: batch.expected_offset.map(Offset),
    })
}

/// Reads committed records of a stream.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}/records",
    tag = "records",
    summary = "Read committed records from an offset, optionally long-polling for them",
    params(
        ("stream" = String, Path, description = "The stream name", pattern = r"^[A-Za-z0-9._-]{1,255}$"),
        ReadQuery
    ),
    responses(
        (status = 200, description = "The records found, possibly none", body = ReadResponse),
        (status = 400, description = "bad_request: bad name or query", body = ErrorBody),
        (status = 416, description = "offset_out_of_range: `from` is below start_offset", body = ErrorBody),
        (status = 503, description = "unavailable: no leader or no quorum in time", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn read(
    request: HttpRequest,
    stream: web::Path<String>,
    query: web::Query<ReadQuery>,
    service: web::Data<dyn LogService>,
    context: web::Data<HttpContext>,
    forwarder: web::Data<Forwarder>,
) -> Result<HttpResponse, ApiError> {
    let stream = stream.into_inner();
    crate::streams::validate_stream_name(&stream).map_err(ApiError::bad_request)?;
    let read = read_request(&query, &context)?;
    let encoding = query.encoding.unwrap_or_default();
    // A long-poll holds its slot for up to its wait, so it counts against its own, separate
    // limit rather than crowding out appends.
    let _slot = if read.wait.is_zero() {
        context.gates.pending_requests.enter(1)?
    } else {
        context.gates.long_polls.enter(1)?
    };

    let deadline = context.request_timeout + read.wait;
    let answer = tokio::time::timeout(deadline, service.read(&stream, read)).await;
    match answer {
        Ok(Ok(found)) => Ok(HttpResponse::Ok().json(read_response(found, encoding))),
        Ok(Err(error)) => {
            forwarder
                .forward_or_fail(
                    error,
                    &request,
                    Bytes::new(),
                    &context,
                    Relay::Whole { deadline },
                )
                .await
        }
        Err(_) => Err(ApiError::unavailable(
            format!(
                "the read could not be served within request_timeout_ms ({} ms)",
                context.request_timeout.as_millis()
            ),
            super::errors::NO_LEADER_RETRY_AFTER,
        )),
    }
}

/// The service's read for `query`, within the node's read limits: `limit` is cut to
/// `read_records_max` and `wait_ms` to `long_poll_ms_max`; a zero `limit` is refused.
fn read_request(query: &ReadQuery, context: &HttpContext) -> Result<ReadRequest, ApiError> {
    let limits = &context.limits;
    let limit = query.limit.unwrap_or(READ_LIMIT_DEFAULT);
    if limit == 0 {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let wait_ms = query.wait_ms.unwrap_or(0).min(limits.long_poll_ms_max);
    Ok(ReadRequest {
        from: Offset(query.from.unwrap_or(0)),
        limit: limit.min(limits.read_records_max as u64) as usize,
        bytes_max: limits.read_bytes_max as usize,
        consistency: match query.consistency.unwrap_or_default() {
            ConsistencyParam::Linearizable => Consistency::Linearizable,
            ConsistencyParam::Lease => Consistency::Lease,
            ConsistencyParam::Stale => Consistency::Stale,
        },
        wait: Duration::from_millis(wait_ms),
    })
}

fn read_response(found: ReadResult, encoding: EncodingParam) -> ReadResponse {
    ReadResponse {
        records: found
            .records
            .into_iter()
            .map(|record| record_out(record, encoding))
            .collect(),
        next_offset: found.next_offset.0,
        end_offset: found.end_offset.0,
        start_offset: found.start_offset.0,
    }
}

/// A record as JSON: its value as text if `encoding` allows and it is valid UTF-8, else as
/// base64.
pub fn record_out(record: Record, encoding: EncodingParam) -> RecordOut {
    let offset = record.offset.0;
    match (encoding, std::str::from_utf8(&record.value)) {
        (EncodingParam::Utf8, Ok(text)) => RecordOut::Text {
            offset,
            value: text.to_string(),
        },
        _ => RecordOut::Base64 {
            offset,
            value_b64: BASE64.encode(&record.value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_batches_decode_text_and_base64_records() {
        let body = br#"{"records": [{"value": "a"}, {"value_b64": "AP8="}], "producer": {"id": "p", "seq": 7},
                        "expected_offset": 3}"#;
        let append = parse_json_batch(body).unwrap();
        assert_eq!(
            append.records,
            [Bytes::from_static(b"a"), Bytes::from_static(&[0, 255])]
        );
        assert_eq!(append.producer, Some(("p".to_string(), 7)));
        assert_eq!(append.expected_offset, Some(Offset(3)));
    }

    #[test]
    fn malformed_batches_say_what_is_wrong() {
        for (body, words) in [
            (
                &br#"{"records": [{"value": "a", "value_b64": "YQ=="}]}"#[..],
                "both",
            ),
            (br#"{"records": [{}]}"#, "needs"),
            (br#"{"records": [{"value_b64": "!!"}]}"#, "record 0"),
            (
                br#"{"records": [], "producer": {"id": "", "seq": 1}}"#,
                "producer.id",
            ),
            (
                br#"{"records": [{"value": "a"}], "expected": 1}"#,
                "unknown field",
            ),
            (br#"{"records": "#, "EOF"),
        ] {
            let error = parse_json_batch(body).unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
        }
    }

    #[test]
    fn values_are_text_when_they_can_be() {
        let record = |value: &'static [u8]| Record {
            offset: Offset(1),
            value: Bytes::from_static(value),
        };
        let text = RecordOut::Text {
            offset: 1,
            value: "hi".to_string(),
        };
        assert_eq!(record_out(record(b"hi"), EncodingParam::Utf8), text);
        let binary = RecordOut::Base64 {
            offset: 1,
            value_b64: "/w==".to_string(),
        };
        assert_eq!(record_out(record(&[255]), EncodingParam::Utf8), binary);
        let forced = RecordOut::Base64 {
            offset: 1,
            value_b64: "aGk=".to_string(),
        };
        assert_eq!(record_out(record(b"hi"), EncodingParam::Base64), forced);
    }
}
