//! `GET /v1/streams/{stream}/records`: offsets and bounds, encodings, limits, long-polls, and
//! the read errors.

use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use serde_json::json;

use super::{append_texts, context, context_with, get, leader, send, test_app};
use crate::config::LimitsConfig;
use crate::types::Offset;

#[actix_rt::test]
async fn a_read_returns_records_and_the_stream_bounds() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b", "c", "d"]);
    let answer = send!(app, get("/v1/streams/s/records?from=1&limit=2"));
    assert_eq!(
        answer.assert_ok(),
        &json!({
            "records": [{"offset": 1, "value": "b"}, {"offset": 2, "value": "c"}],
            "next_offset": 3, "end_offset": 4, "start_offset": 0
        })
    );
    let past_the_end = send!(app, get("/v1/streams/s/records?from=9&consistency=stale"));
    assert_eq!(past_the_end.assert_ok()["records"], json!([]));
}

#[actix_rt::test]
async fn a_stream_never_written_reads_as_empty() {
    let fake = leader();
    let app = test_app!(fake, context());
    let answer = send!(app, get("/v1/streams/nothing/records"));
    assert_eq!(
        answer.assert_ok(),
        &json!({"records": [], "next_offset": 0, "end_offset": 0, "start_offset": 0})
    );
}

#[actix_rt::test]
async fn values_are_text_or_base64_as_asked_and_as_they_must_be() {
    let fake = leader();
    let app = test_app!(fake, context());
    let raw = TestRequest::post()
        .uri("/v1/streams/s/records")
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(vec![0xff, 0xfe]);
    send!(app, raw).assert_ok();
    append_texts!(app, "s", ["hi"]);
    let utf8 = send!(app, get("/v1/streams/s/records"));
    assert_eq!(
        utf8.assert_ok()["records"],
        json!([{"offset": 0, "value_b64": "//4="}, {"offset": 1, "value": "hi"}])
    );
    let base64 = send!(app, get("/v1/streams/s/records?encoding=base64"));
    assert_eq!(
        base64.assert_ok()["records"][1],
        json!({"offset": 1, "value_b64": "aGk="})
    );
}

#[actix_rt::test]
async fn bad_queries_are_bad_requests() {
    let fake = leader();
    let app = test_app!(fake, context());
    for query in [
        "limit=0",
        "from=-1",
        "from=x",
        "consistency=strong",
        "encoding=hex",
        "wait_ms=-5",
    ] {
        let answer = send!(app, get(&format!("/v1/streams/s/records?{query}")));
        answer.assert_error(400, "bad_request");
    }
}

#[actix_rt::test]
async fn limits_cut_large_reads_but_always_return_one_record() {
    let fake = leader();
    let limits = LimitsConfig {
        read_records_max: 2,
        read_bytes_max: 3,
        ..LimitsConfig::default()
    };
    let app = test_app!(fake, context_with(limits));
    append_texts!(app, "s", ["a", "b", "c"]);
    let answer = send!(app, get("/v1/streams/s/records?limit=1000"));
    assert_eq!(
        answer.assert_ok()["next_offset"],
        2,
        "cut to read_records_max"
    );

    append_texts!(app, "big", ["abcdef", "g"]);
    let answer = send!(app, get("/v1/streams/big/records"));
    assert_eq!(
        answer.assert_ok()["records"],
        json!([{"offset": 0, "value": "abcdef"}]),
        "one record over read_bytes_max"
    );
}

#[actix_rt::test]
async fn a_read_below_the_start_is_out_of_range() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b", "c"]);
    fake.remove_before("s", Offset(2));
    let answer = send!(app, get("/v1/streams/s/records?from=1"));
    assert_eq!(
        answer.assert_error(416, "offset_out_of_range")["start_offset"],
        2
    );
    let answer = send!(app, get("/v1/streams/s/records?from=2"));
    assert_eq!(answer.assert_ok()["start_offset"], 2);
}

#[actix_rt::test]
async fn a_long_poll_is_woken_by_an_append() {
    let fake = leader();
    let app = test_app!(fake, context());
    let started = Instant::now();
    let poll = async { send!(app, get("/v1/streams/s/records?wait_ms=10000")) };
    let write = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        append_texts!(app, "s", ["woken"]);
    };
    let (answer, ()) = futures::join!(poll, write);
    assert_eq!(
        answer.assert_ok()["records"],
        json!([{"offset": 0, "value": "woken"}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[actix_rt::test]
async fn a_long_poll_with_nothing_to_read_answers_empty_after_its_wait() {
    let fake = leader();
    let app = test_app!(fake, context());
    let started = Instant::now();
    let answer = send!(app, get("/v1/streams/s/records?wait_ms=150"));
    assert_eq!(answer.assert_ok()["records"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[actix_rt::test]
async fn long_polls_past_long_polls_max_are_unavailable() {
    let fake = leader();
    let app = test_app!(
        fake,
        context_with(LimitsConfig {
            long_polls_max: 1,
            ..LimitsConfig::default()
        })
    );
    let waiting = async { send!(app, get("/v1/streams/s/records?wait_ms=300")) };
    let refused = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send!(app, get("/v1/streams/s/records?wait_ms=300"))
    };
    let (waiting, refused) = futures::join!(waiting, refused);
    waiting.assert_ok();
    let json = refused.assert_error(503, "unavailable");
    assert!(json["message"].as_str().unwrap().contains("long_polls_max"));
    // A plain read does not count against the long-poll limit.
    send!(app, get("/v1/streams/s/records")).assert_ok();
}

#[actix_rt::test]
async fn stream_list_and_one_stream() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "b", ["1"]);
    append_texts!(app, "a", ["1", "2"]);
    let list = send!(app, get("/v1/streams"));
    assert_eq!(
        list.assert_ok(),
        &json!({"streams": [
            {"name": "a", "start_offset": 0, "end_offset": 2},
            {"name": "b", "start_offset": 0, "end_offset": 1}
        ]})
    );
    let one = send!(app, get("/v1/streams/a"));
    assert_eq!(
        one.assert_ok(),
        &json!({"name": "a", "start_offset": 0, "end_offset": 2})
    );
    let never = send!(app, get("/v1/streams/zzz"));
    assert_eq!(
        never.assert_ok(),
        &json!({"name": "zzz", "start_offset": 0, "end_offset": 0})
    );
    send!(app, get("/v1/streams/bad%20name")).assert_error(400, "bad_request");
}
