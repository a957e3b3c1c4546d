//! `/v1/cluster`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, and the JSON answers
//! for unknown routes and wrong methods.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use super::{append_texts, context, fake, get, leader, post_json, send, test_app};
use crate::http::fake::Mode;

#[actix_rt::test]
async fn cluster_reports_role_term_leader_and_member_progress() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a"]);
    let answer = send!(app, get("/v1/cluster"));
    let json = answer.assert_ok();
    assert_eq!(json["role"], "leader");
    assert_eq!(json["term"], 3);
    assert_eq!(
        json["leader"],
        json!({"id": 1, "http": "http://127.0.0.1:7001"})
    );
    assert_eq!(json["commit_index"], 1);
    assert_eq!(
        json["members"][0],
        json!({"id": 1, "voter": true, "match_index": 1, "lag": 0, "last_ack_ms": 0})
    );

    fake.set_mode(Mode::NoLeader);
    let answer = send!(app, get("/v1/cluster"));
    let json = answer.assert_ok();
    assert_eq!(
        (json["role"].as_str(), &json["leader"]),
        (Some("follower"), &Value::Null)
    );
    assert_eq!(
        json["members"][2]["lag"],
        Value::Null,
        "progress is known only on the leader"
    );
}

#[actix_rt::test]
async fn healthz_is_always_ok_and_readyz_follows_the_node() {
    let fake = fake(Mode::NoLeader);
    let app = test_app!(fake, context());
    assert_eq!(
        send!(app, get("/healthz")).assert_ok(),
        &json!({"status": "ok"})
    );
    assert_eq!(
        send!(app, get("/readyz")).assert_ok(),
        &json!({"status": "ready"})
    );
    fake.set_ready(false);
    let answer = send!(app, get("/readyz"));
    answer.assert_error(503, "unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"));
}

#[actix_rt::test]
async fn metrics_are_prometheus_text_with_requests_and_node_status() {
    let fake = leader();
    let app = test_app!(fake, context());
    append_texts!(app, "s", ["a", "b"]);
    send!(app, TestRequest::delete().uri("/v1/streams/s/records"))
        .assert_error(405, "method_not_allowed");
    send!(app, get("/v2/nothing")).assert_error(404, "not_found");
    let answer = send!(app, get("/metrics"));
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    for series in [
        "raftlog_http_requests_total{node=\"1\",route=\"/v1/streams/{stream}/records\",status=\"200\"}",
        // A method the route does not take is still that route's; no route is "unmatched".
        "raftlog_http_requests_total{node=\"1\",route=\"/v1/streams/{stream}/records\",status=\"405\"}",
        "raftlog_http_requests_total{node=\"1\",route=\"unmatched\",status=\"404\"}",
        "raftlog_http_request_seconds_bucket",
        "raftlog_append_batch_records_bucket",
        "raftlog_term{node=\"1\"} 3",
        "raftlog_is_leader{node=\"1\"} 1",
        "raftlog_member_lag_entries{node=\"1\",member=\"3\"} 2",
        "raftlog_http_in_use{node=\"1\",gate=\"pending_requests\"}",
    ] {
        assert!(answer.text.contains(series), "no {series} in\n{}", answer.text);
    }
    // The batch-size series is registered with the node's context; the append recorded into
    // it (other tests in this process may have too: the recorder is process-wide).
    let batches = answer
        .text
        .lines()
        .find_map(|line| line.strip_prefix("raftlog_append_batch_records_count{node=\"1\"} "))
        .unwrap_or_else(|| panic!("no batch count in\n{}", answer.text));
    assert!(batches.parse::<u64>().unwrap() >= 1, "{batches}");
}

#[actix_rt::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let fake = leader();
    let app = test_app!(fake, context());
    send!(app, get("/v2/nothing")).assert_error(404, "not_found");
    send!(app, get("/v1/streams/s/records/extra")).assert_error(404, "not_found");
    let wrong = send!(app, TestRequest::delete().uri("/v1/streams/s/records"));
    wrong.assert_error(405, "method_not_allowed");
    assert_eq!(wrong.header("allow"), Some("GET, POST"));
    send!(app, post_json("/v1/cluster", json!({}))).assert_error(405, "method_not_allowed");
}

/// The OpenAPI document lists exactly the routes served: every documented operation is
/// routed (not 404/405), and their number is the route table's.
#[actix_rt::test]
async fn the_openapi_document_matches_the_routes() {
    let fake = leader();
    let app = test_app!(fake, context());
    let answer = send!(app, get("/openapi.json"));
    let document = answer.assert_ok();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{stream}", "s");
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let request = match method.as_str() {
                "get" => TestRequest::get(),
                "post" => TestRequest::post()
                    .insert_header(("content-type", "application/json"))
                    .set_payload("{}"),
                other => panic!("unexpected method {other}"),
            };
            let request = request.uri(&format!("{concrete}?wait_ms=0"));
            let status = actix_web::test::call_service(&app, request.to_request())
                .await
                .status()
                .as_u16();
            assert!(status != 404 && status != 405, "{method} {path}: {status}");
        }
    }
    assert_eq!(operations, 11, "routes in the route table");

    let schemas = &document["components"]["schemas"];
    for name in [
        "AppendBody",
        "RecordIn",
        "ReadResponse",
        "ErrorBody",
        "ClusterResponse",
    ] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    let append = &paths["/v1/streams/{stream}/records"]["post"];
    let content = append["requestBody"]["content"].as_object().unwrap();
    assert!(
        content.contains_key("application/json")
            && content.contains_key("application/octet-stream")
    );
    assert!(append["responses"]["503"]["headers"]["Retry-After"].is_object());
}
