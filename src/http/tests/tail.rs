//! `GET /v1/streams/{stream}/tail`: events in offset order, live events, resume with
//! `Last-Event-ID`, encodings, and the tail's errors.

use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::test::TestRequest;

use super::{append_texts, context, context_with, get, leader, send, test_app};
use crate::cli::sse::{Event, EventParser};
use crate::config::LimitsConfig;
use crate::types::Offset;

/// Reads events from an SSE answer until `count` have come (or fails after a few seconds).
async fn events<B: MessageBody>(
    response: &mut Pin<Box<B>>,
    parser: &mut EventParser,
    count: usize,
) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.len() < count {
        let chunk = std::future::poll_fn(|cx| response.as_mut().poll_next(cx));
        let chunk = tokio::time::timeout_at(deadline, chunk)
            .await
            .expect("events in time");
        let chunk = chunk.unwrap_or_else(|| panic!("the stream ended after {events:?}"));
        let chunk = chunk.map_err(|_| "a body error").unwrap();
        events.extend(parser.feed(&chunk));
    }
    events
}

fn body<B: MessageBody>(response: ServiceResponse<B>) -> Pin<Box<B>> {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    Box::pin(response.into_body())
}

fn ids(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.id.as_deref().unwrap())
        .collect()
}

#[actix_rt::test]
async fn a_tail_sends_committed_records_in_order_then_new_ones_as_they_commit() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b\nline", "c"]);
    let response =
        actix_web::test::call_service(&app, get("/v1/streams/s/tail?from=0").to_request()).await;
    let (mut body, mut parser) = (body(response), EventParser::default());
    let first = events(&mut body, &mut parser, 3).await;
    assert_eq!(ids(&first), ["0", "1", "2"]);
    assert_eq!(first[1].data, "b\nline");

    append_texts!(app, "s", ["d", "e"]);
    let live = events(&mut body, &mut parser, 2).await;
    assert_eq!(ids(&live), ["3", "4"]);
    assert_eq!(live[1].data, "e");
}

#[actix_rt::test]
async fn a_tail_resumes_after_last_event_id() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b", "c", "d"]);
    let resume = TestRequest::get()
        .uri("/v1/streams/s/tail?from=0")
        .insert_header(("Last-Event-ID", "1"));
    let response = actix_web::test::call_service(&app, resume.to_request()).await;
    let found = events(&mut body(response), &mut EventParser::default(), 2).await;
    assert_eq!(ids(&found), ["2", "3"]);

    for bad in ["x", "-1", "18446744073709551615"] {
        let request = TestRequest::get()
            .uri("/v1/streams/s/tail")
            .insert_header(("Last-Event-ID", bad));
        send!(app, request).assert_error(400, "bad_request");
    }
}

#[actix_rt::test]
async fn a_tail_gives_binary_values_as_base64_events() {
    let fake = leader();
    let app = test_app!(fake, context());
    let raw = TestRequest::post()
        .uri("/v1/streams/s/records")
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(vec![0xffu8]);
    send!(app, raw).assert_ok();
    append_texts!(app, "s", ["hi"]);
    let response =
        actix_web::test::call_service(&app, get("/v1/streams/s/tail").to_request()).await;
    let found = events(&mut body(response), &mut EventParser::default(), 2).await;
    assert_eq!(
        (found[0].kind.as_deref(), found[0].data.as_str()),
        (Some("b64"), "/w==")
    );
    assert_eq!(
        (found[1].kind.as_deref(), found[1].data.as_str()),
        (None, "hi")
    );

    let response =
        actix_web::test::call_service(&app, get("/v1/streams/s/tail?encoding=base64").to_request())
            .await;
    let found = events(&mut body(response), &mut EventParser::default(), 2).await;
    assert_eq!(
        (found[1].kind.as_deref(), found[1].data.as_str()),
        (None, "aGk=")
    );
}

#[actix_rt::test]
async fn a_tail_below_the_start_is_out_of_range() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b"]);
    fake.remove_before("s", Offset(1));
    send!(app, get("/v1/streams/s/tail?from=0")).assert_error(416, "offset_out_of_range");
}

#[actix_rt::test]
async fn tails_past_sse_subscribers_max_are_unavailable_until_one_closes() {
    let fake = leader();
    let app = test_app!(
        fake,
        context_with(LimitsConfig {
            sse_subscribers_max: 1,
            ..LimitsConfig::default()
        })
    );
    let open = actix_web::test::call_service(&app, get("/v1/streams/s/tail").to_request()).await;
    let refused = send!(app, get("/v1/streams/s/tail"));
    assert!(refused.assert_error(503, "unavailable")["message"]
        .as_str()
        .unwrap()
        .contains("sse_subscribers_max"));
    drop(open);
    let again = actix_web::test::call_service(&app, get("/v1/streams/s/tail").to_request()).await;
    assert_eq!(again.status(), 200);
}
