//! Forwarding on real loopback ports: a "follower" fake that names a "leader" fake passes
//! appends, reads and tails to it and relays the answers; a request is forwarded once at
//! most; an unknown or unreachable leader is 503 with `Retry-After`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::context;
use crate::cli::sse::EventParser;
use crate::http::fake::{FakeLogService, FakeServer, Mode};
use crate::http::forward::FORWARDED_HEADER;

fn follower_of(leader_url: &str) -> FakeServer {
    FakeServer::start(
        FakeLogService::new(Mode::Follower {
            leader_http: leader_url.to_string(),
        }),
        context(),
    )
}

async fn post(url: &str, body: Value) -> (u16, Value, Option<String>) {
    let client = awc::Client::default();
    let mut response = client
        .post(url)
        .send_json(&body)
        .await
        .expect("the server answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let json = response.json::<Value>().await.expect("a JSON answer");
    (response.status().as_u16(), json, retry_after)
}

async fn get_json(url: &str) -> (u16, Value) {
    let mut response = awc::Client::default()
        .get(url)
        .send()
        .await
        .expect("the server answers");
    (
        response.status().as_u16(),
        response.json::<Value>().await.expect("a JSON answer"),
    )
}

#[actix_rt::test]
async fn a_follower_forwards_appends_and_reads_to_the_leader() {
    let leader = FakeServer::start(FakeLogService::leader(), context());
    let follower = follower_of(&leader.url);

    let url = format!("{}/v1/streams/s/records", follower.url);
    let (status, json, _) = post(&url, json!({"records": [{"value": "via follower"}]})).await;
    assert_eq!((status, &json["first_offset"]), (200, &json!(0)), "{json}");
    assert_eq!(leader.service.records("s")[0].as_ref(), b"via follower");
    assert!(follower.service.records("s").is_empty());

    // Errors come back as the leader gave them.
    let (status, json, _) = post(
        &url,
        json!({"records": [{"value": "x"}], "expected_offset": 7}),
    )
    .await;
    assert_eq!(
        (status, &json["error"], &json["next_offset"]),
        (409, &json!("offset_mismatch"), &json!(1))
    );

    let (status, json) = get_json(&format!("{url}?from=0&consistency=linearizable")).await;
    assert_eq!(
        (status, &json["records"][0]["value"]),
        (200, &json!("via follower"))
    );
}

#[actix_rt::test]
async fn a_follower_relays_a_tail_from_the_leader() {
    let leader = FakeServer::start(FakeLogService::leader(), context());
    let follower = follower_of(&leader.url);
    let records = format!("{}/v1/streams/s/records", leader.url);
    post(
        &records,
        json!({"records": [{"value": "a"}, {"value": "b"}]}),
    )
    .await;

    // The fake follower serves tails itself; make it refuse them so the tail is forwarded.
    follower.service.set_tail_forwarding(true);
    let mut response = awc::Client::default()
        .get(format!("{}/v1/streams/s/tail?from=0", follower.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut parser = EventParser::default();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.len() < 3 {
        if events.len() == 2 {
            post(&records, json!({"records": [{"value": "live"}]})).await;
        }
        let chunk = tokio::time::timeout_at(deadline, response.next())
            .await
            .expect("events in time");
        events.extend(parser.feed(&chunk.expect("more events").expect("a chunk")));
    }
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["a", "b", "live"]);
}

#[actix_rt::test]
async fn a_forwarded_request_is_never_forwarded_again() {
    // Two followers that each believe the other leads.
    let first = FakeServer::start(FakeLogService::new(Mode::NoLeader), context());
    let second = follower_of(&first.url);
    first.service.set_mode(Mode::Follower {
        leader_http: second.url.clone(),
    });

    let url = format!("{}/v1/streams/s/records", first.url);
    let (status, json, retry_after) = post(&url, json!({"records": [{"value": "x"}]})).await;
    assert_eq!(
        (status, &json["error"]),
        (503, &json!("unavailable")),
        "{json}"
    );
    assert!(
        json["message"].as_str().unwrap().contains("forwarded"),
        "{json}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));

    // And a request marked as forwarded is answered, not forwarded.
    let mut response = awc::Client::default()
        .post(format!("{}/v1/streams/s/records", second.url))
        .insert_header((FORWARDED_HEADER, "9"))
        .send_json(&json!({"records": [{"value": "x"}]}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unavailable"
    );
}

#[actix_rt::test]
async fn an_unknown_or_unreachable_leader_is_unavailable() {
    let no_leader = FakeServer::start(FakeLogService::new(Mode::NoLeader), context());
    let (status, json, retry_after) = post(
        &format!("{}/v1/streams/s/records", no_leader.url),
        json!({"records": [{"value": "x"}]}),
    )
    .await;
    assert_eq!(
        (status, &json["error"], retry_after.as_deref()),
        (503, &json!("unavailable"), Some("1"))
    );

    // A port that nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let lost = follower_of(&format!("http://{closed}"));
    let (status, json, retry_after) = post(
        &format!("{}/v1/streams/s/records", lost.url),
        json!({"records": [{"value": "x"}]}),
    )
    .await;
    assert_eq!(
        (status, &json["error"], retry_after.as_deref()),
        (503, &json!("unavailable"), Some("1")),
        "{json}"
    );
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{json}"
    );
}
