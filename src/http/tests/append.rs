//! `POST /v1/streams/{stream}/records`: both body formats, producer dedup, conditional
//! appends, and every way an append is refused.

use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use serde_json::json;

use super::{append_texts, context, context_with, fake, leader, post_json, send, test_app};
use crate::config::LimitsConfig;
use crate::http::fake::Mode;

const PATH: &str = "/v1/streams/orders/records";

#[actix_rt::test]
async fn a_json_batch_gets_consecutive_offsets() {
    let fake = leader();
    let app = test_app!(fake, context());
    let first = append_texts!(app, "orders", ["a", "b", "c"]);
    assert_eq!(first["stream"], "orders");
    assert_eq!(
        (
            first["first_offset"].as_u64(),
            first["last_offset"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert!(first["index"].as_u64().unwrap() >= 1 && first["term"].as_u64().unwrap() >= 1);

    let body = json!({"records": [{"value": "d"}, {"value_b64": "AP8="}]});
    let second = send!(app, post_json(PATH, body));
    let second = second.assert_ok();
    assert_eq!(
        (
            second["first_offset"].as_u64(),
            second["last_offset"].as_u64()
        ),
        (Some(3), Some(4))
    );
    assert_eq!(fake.records("orders")[4].as_ref(), [0, 255]);
}

#[actix_rt::test]
async fn an_octet_stream_body_is_exactly_one_record() {
    let fake = leader();
    let app = test_app!(fake, context());
    let raw = TestRequest::post()
        .uri(PATH)
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(vec![0u8, 1, 2, 255]);
    let answer = send!(app, raw);
    assert_eq!(answer.assert_ok()["last_offset"], 0);
    assert_eq!(fake.records("orders")[0].as_ref(), [0, 1, 2, 255]);
}

#[actix_rt::test]
async fn malformed_bodies_are_bad_requests() {
    let fake = leader();
    let app = test_app!(fake, context());
    let malformed = [
        r#"{"records": [{"value": "a"}"#,
        r#"{"records": [{"value_b64": "not base64!"}]}"#,
        r#"{"records": []}"#,
        r#"{"records": [{"value": "a", "value_b64": "YQ=="}]}"#,
        r#"{"records": [{"value": "a"}], "expected_ofset": 3}"#,
        r#"{"records": [{"value": 5}]}"#,
        r#"{"records": [{"value": "a"}], "producer": {"id": "", "seq": 1}}"#,
        r#"[]"#,
        "",
    ];
    for body in malformed {
        let request = TestRequest::post()
            .uri(PATH)
            .insert_header(("content-type", "application/json"))
            .set_payload(body);
        send!(app, request).assert_error(400, "bad_request");
    }
    assert!(fake.records("orders").is_empty());
}

#[actix_rt::test]
async fn bad_stream_names_are_bad_requests() {
    let fake = leader();
    let app = test_app!(fake, context());
    let long = "x".repeat(256);
    for name in ["bad%20name", "caf%C3%A9", "a%2Fb", long.as_str(), "%00"] {
        let path = format!("/v1/streams/{name}/records");
        let answer = send!(app, post_json(&path, json!({"records": [{"value": "a"}]})));
        answer.assert_error(400, "bad_request");
        send!(app, super::get(&path)).assert_error(400, "bad_request");
        send!(app, super::get(&format!("/v1/streams/{name}/tail")))
            .assert_error(400, "bad_request");
    }
}

#[actix_rt::test]
async fn other_content_types_are_unsupported() {
    let fake = leader();
    let app = test_app!(fake, context());
    let form = TestRequest::post()
        .uri(PATH)
        .insert_header(("content-type", "text/plain"))
        .set_payload("a");
    send!(app, form).assert_error(415, "unsupported_media_type");
    let none = TestRequest::post().uri(PATH).set_payload("a");
    send!(app, none).assert_error(415, "unsupported_media_type");
}

#[actix_rt::test]
async fn media_types_are_case_insensitive_and_their_parameters_ignored() {
    let fake = leader();
    let app = test_app!(fake, context());
    for (content_type, body) in [
        ("Application/JSON", r#"{"records": [{"value": "a"}]}"#),
        (
            "application/json; charset=UTF-8",
            r#"{"records": [{"value": "b"}]}"#,
        ),
        ("APPLICATION/OCTET-STREAM", "c"),
    ] {
        let request = TestRequest::post()
            .uri(PATH)
            .insert_header(("content-type", content_type))
            .set_payload(body);
        send!(app, request).assert_ok();
    }
    assert_eq!(fake.records("orders").len(), 3);
}

fn small_limits() -> LimitsConfig {
    LimitsConfig {
        record_bytes_max: 8,
        batch_bytes_max: 12,
        batch_records_max: 3,
        ..LimitsConfig::default()
    }
}

#[actix_rt::test]
async fn oversize_records_and_batches_are_too_large_and_name_the_limit() {
    let fake = leader();
    let app = test_app!(fake, context_with(small_limits()));
    let cases = [
        (
            json!({"records": [{"value": "123456789"}]}),
            "record_bytes_max",
        ),
        (
            json!({"records": [{"value_b64": "MTIzNDU2Nzg5"}]}),
            "record_bytes_max",
        ),
        (
            json!({"records": [{"value": "1234567"}, {"value": "1234567"}]}),
            "batch_bytes_max",
        ),
        (
            json!({"records": [{"value": "1"}, {"value": "2"}, {"value": "3"}, {"value": "4"}]}),
            "batch_records_max",
        ),
    ];
    for (body, limit) in cases {
        let answer = send!(app, post_json(PATH, body));
        let json = answer.assert_error(413, "too_large");
        assert_eq!(json["limit"], limit);
        assert!(
            json["message"].as_str().unwrap().contains(limit),
            "{}",
            answer.text
        );
    }
    let raw = TestRequest::post()
        .uri(PATH)
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(vec![7u8; 9]);
    assert_eq!(
        send!(app, raw).assert_error(413, "too_large")["limit"],
        "record_bytes_max"
    );
    assert!(fake.records("orders").is_empty());
}

#[actix_rt::test]
async fn a_body_over_the_json_limit_is_refused_before_it_is_parsed() {
    let fake = leader();
    let app = test_app!(fake, context_with(small_limits()));
    let huge = format!(r#"{{"records": [{{"value": "{}"}}]}}"#, "x".repeat(100_000));
    let request = TestRequest::post()
        .uri(PATH)
        .insert_header(("content-type", "application/json"))
        .set_payload(huge);
    let answer = send!(app, request);
    assert_eq!(
        answer.assert_error(413, "too_large")["limit"],
        "batch_bytes_max"
    );
}

#[actix_rt::test]
async fn a_conditional_append_writes_only_at_the_expected_offset() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "orders", ["a", "b"]);
    let stale = send!(
        app,
        post_json(
            PATH,
            json!({"records": [{"value": "c"}], "expected_offset": 1})
        )
    );
    assert_eq!(stale.assert_error(409, "offset_mismatch")["next_offset"], 2);
    assert_eq!(fake.records("orders").len(), 2);

    let fresh = send!(
        app,
        post_json(
            PATH,
            json!({"records": [{"value": "c"}], "expected_offset": 2})
        )
    );
    assert_eq!(fresh.assert_ok()["first_offset"], 2);
}

#[actix_rt::test]
async fn a_producer_retry_returns_the_original_offsets_and_a_lower_seq_is_stale() {
    let fake = leader();
    let app = test_app!(fake, context());
    let write = |seq: u64, value: &str| {
        post_json(
            PATH,
            json!({"records": [{"value": value}], "producer": {"id": "p-17", "seq": seq}}),
        )
    };
    let first = send!(app, write(42, "a")).assert_ok().clone();
    append_texts!(app, "orders", ["other"]);
    let retry = send!(app, write(42, "a")).assert_ok().clone();
    assert_eq!(
        (retry["first_offset"].clone(), retry["last_offset"].clone()),
        (first["first_offset"].clone(), first["last_offset"].clone())
    );
    assert_eq!(fake.records("orders").len(), 2, "the retry wrote nothing");

    let stale = send!(app, write(41, "b"));
    assert_eq!(
        stale.assert_error(409, "stale_producer_seq")["last_seq"],
        42
    );
    assert_eq!(send!(app, write(43, "c")).assert_ok()["first_offset"], 2);
}

#[actix_rt::test]
async fn without_quorum_an_append_is_unavailable_with_retry_after() {
    let fake = fake(Mode::NoQuorum);
    let app = test_app!(fake, context());
    let answer = send!(app, post_json(PATH, json!({"records": [{"value": "a"}]})));
    assert_eq!(
        answer.assert_error(503, "unavailable")["retry_after_ms"],
        1_500
    );
    assert_eq!(answer.header("retry-after"), Some("2"));

    fake.set_mode(Mode::NoLeader);
    let answer = send!(app, post_json(PATH, json!({"records": [{"value": "a"}]})));
    answer.assert_error(503, "unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"));
}

#[actix_rt::test]
async fn an_append_not_committed_within_the_request_timeout_is_unavailable() {
    let fake = leader();
    fake.set_append_delay(Duration::from_secs(30));
    let mut context = context();
    context.request_timeout = Duration::from_millis(100);
    let app = test_app!(fake, context);
    let started = Instant::now();
    let answer = send!(app, post_json(PATH, json!({"records": [{"value": "a"}]})));
    let json = answer.assert_error(503, "unavailable");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("request_timeout_ms"),
        "{}",
        answer.text
    );
    assert!(answer.header("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_rt::test]
async fn appends_past_pending_requests_max_are_unavailable() {
    let fake = leader();
    fake.set_append_delay(Duration::from_millis(300));
    let app = test_app!(
        fake,
        context_with(LimitsConfig {
            pending_requests_max: 1,
            ..LimitsConfig::default()
        })
    );
    let slow = async { send!(app, post_json(PATH, json!({"records": [{"value": "a"}]}))) };
    let refused = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send!(app, post_json(PATH, json!({"records": [{"value": "b"}]})))
    };
    let (slow, refused) = futures::join!(slow, refused);
    slow.assert_ok();
    let json = refused.assert_error(503, "unavailable");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("pending_requests_max"),
        "{}",
        refused.text
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
}
