//! The HTTP API (`../shared/API.md`) against a real 3-node cluster in this process: WAL on
//! disk, peers over loopback TCP, clients over HTTP, each node started and stopped with
//! `raftlog::runtime` as `raftlog serve` does. Tests use the public HTTP API only.
//!
//! Each test proves one promise of the contract:
//! - an append through a follower is read back from every node at every consistency level;
//! - without quorum a node answers 503 `unavailable` with `Retry-After`, and restarting the
//!   stopped nodes on their data brings the data and the service back;
//! - an idempotent producer's retry after a leader change (and after a restart of the whole
//!   cluster) returns the original offsets and writes nothing twice;
//! - a conditional append that conflicts is a 409 with `next_offset` and writes nothing;
//! - every error code of API.md that bad input can cause, through a follower too;
//! - a long-poll is woken by another client's append;
//! - an SSE tail delivers every record in offset order across many concurrent appends, and
//!   resumes after `Last-Event-ID` without a gap or a repeat.
//!
//! Waits poll a public endpoint with a deadline (`common::poll_until`); no test sleeps in the
//! hope that something has happened.

mod common;

use std::time::{Duration, Instant};

use awc::http::Method;
use bytes::Bytes;
use common::{poll_until, records, texts, Cluster, REQUEST_TIMEOUT_MS};
use serde_json::{json, Value};

/// `(offset, value)` pairs, for comparing reads.
fn expected(values: &[&[u8]]) -> Vec<(u64, Vec<u8>)> {
    (0..).zip(values.iter().map(|v| v.to_vec())).collect()
}

/// An append answer's `(first_offset, last_offset)`.
fn offsets(appended: &Value) -> (u64, u64) {
    let offset = |key: &str| {
        appended[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {appended}"))
    };
    (offset("first_offset"), offset("last_offset"))
}

#[actix_rt::test]
async fn an_append_through_a_follower_reads_back_from_every_node_at_every_level() {
    let cluster = Cluster::start(3, |_| {}).await;
    let client = &cluster.client;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.other_than(&[leader]);
    let other = cluster.other_than(&[leader, follower]);

    let batch = json!({"records": [
        {"value": "first"}, {"value_b64": "AP8="}, {"value": "two\nlines"}
    ]});
    let appended = client
        .append(&cluster.url(follower), "orders", &batch)
        .await;
    let appended = appended.ok();
    assert_eq!(appended["stream"], "orders");
    assert_eq!(offsets(appended), (0, 2));
    assert!(appended["index"].as_u64() >= Some(1) && appended["term"].as_u64() >= Some(1));

    // One raw record, through the other follower.
    let raw = client
        .send(
            Method::POST,
            &cluster.url(other),
            "/v1/streams/orders/records",
            &[("content-type", "application/octet-stream")],
            Bytes::from_static(b"raw \xff"),
        )
        .await
        .unwrap();
    assert_eq!(raw.ok()["first_offset"], 3);
    let want = expected(&[b"first", &[0, 255], b"two\nlines", b"raw \xff"]);

    for id in 1..=3 {
        let url = cluster.url(id);
        // Acknowledged before the read began, so linearizable and lease reads must see it
        // at once, on every node.
        for query in [
            "from=0",
            "from=0&consistency=linearizable",
            "from=0&consistency=lease",
        ] {
            let read = client.read(&url, "orders", query).await;
            let read = read.ok();
            assert_eq!(records(read), want, "node {id}, {query}");
            assert_eq!(
                (
                    &read["next_offset"],
                    &read["end_offset"],
                    &read["start_offset"]
                ),
                (&4.into(), &4.into(), &0.into()),
                "node {id}, {query}"
            );
        }
        // A stale read is this node's applied state: it catches up by itself.
        let stale = poll_until(&format!("node {id} to apply the appends"), || async {
            let read = client
                .read(&url, "orders", "from=0&consistency=stale")
                .await;
            (read.ok()["end_offset"] == 4).then_some(read)
        })
        .await;
        assert_eq!(records(stale.ok()), want, "node {id}, stale");
    }

    // Values that are not UTF-8 come as base64, the others as text unless asked otherwise.
    let read = client
        .read(&cluster.url(follower), "orders", "from=1&limit=2")
        .await;
    let read = read.ok();
    assert_eq!(
        read["records"][0],
        json!({"offset": 1, "value_b64": "AP8="})
    );
    assert_eq!(
        read["records"][1],
        json!({"offset": 2, "value": "two\nlines"})
    );
    assert_eq!(read["next_offset"], 3);
    let read = client
        .read(
            &cluster.url(other),
            "orders",
            "from=0&limit=1&encoding=base64",
        )
        .await;
    assert_eq!(
        read.ok()["records"],
        json!([{"offset": 0, "value_b64": "Zmlyc3Q="}])
    );

    // The stream list and a stream's bounds, at a follower.
    let list = client
        .get(&cluster.url(follower), "/v1/streams")
        .await
        .unwrap();
    assert_eq!(
        list.ok()["streams"],
        json!([{"name": "orders", "start_offset": 0, "end_offset": 4}])
    );
    let one = client
        .get(&cluster.url(other), "/v1/streams/orders")
        .await
        .unwrap();
    assert_eq!(one.ok()["end_offset"], 4);
    let never = client
        .read(&cluster.url(other), "never-written", "from=0")
        .await;
    assert_eq!(
        never.ok(),
        &json!({"records": [], "next_offset": 0, "end_offset": 0, "start_offset": 0})
    );
    cluster.shutdown().await;
}

/// Stops the two nodes of `stopped`, leaving `alone`, and checks that it refuses what needs
/// a quorum with 503s but serves stale reads of `acked`; then restarts them and checks that
/// the write refused meanwhile (producer `writer`, `seq`), retried, lands once after `acked`.
async fn lose_quorum_and_recover(
    cluster: &mut Cluster,
    alone: u64,
    stopped: [u64; 2],
    acked: &[&str],
    seq: u64,
) {
    let client = common::Client::new();
    for id in stopped {
        cluster.stop(id).await;
    }
    let url = cluster.url(alone);

    // A write cannot commit: 503 within the request timeout, whether the node still believes
    // it leads, has stepped down, or forwards to a leader that is gone. Its outcome is
    // unknown to the client, who retries it later with the same producer id and seq.
    let value = format!("after-{seq}");
    let write = json!({"records": [{"value": value}], "producer": {"id": "writer", "seq": seq}});
    let bound = Duration::from_millis(REQUEST_TIMEOUT_MS) + Duration::from_secs(2);
    let started = Instant::now();
    client.append(&url, "ledger", &write).await.unavailable();
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    // Nor can a linearizable read be confirmed.
    client.read(&url, "ledger", "from=0").await.unavailable();

    // CheckQuorum, or an election timeout: the node left knows no leader and says it is not
    // ready; from then on a write is refused at once, not after the request timeout.
    poll_until("the node left alone to know no leader", || async {
        let view = client.get(&url, "/v1/cluster").await.ok()?;
        (view.json["role"] != "leader" && view.json["leader"].is_null()).then_some(())
    })
    .await;
    client.get(&url, "/readyz").await.unwrap().unavailable();
    let started = Instant::now();
    client.append(&url, "ledger", &write).await.unavailable();
    assert!(started.elapsed() < Duration::from_millis(REQUEST_TIMEOUT_MS));
    // A stale read still serves what this node applied: the acknowledged records only.
    let stale = client
        .read(&url, "ledger", "from=0&consistency=stale")
        .await;
    assert_eq!(texts(stale.ok()), acked);

    // Restart the two on their data directories: the cluster serves again, and the write
    // of unknown outcome, retried, lands once.
    for id in stopped {
        cluster.restart(id);
    }
    let leader = cluster.wait_for_leader().await;
    let retried = client
        .append_idempotent(&cluster.url(leader), "ledger", "writer", seq, &[&value])
        .await;
    let next = acked.len() as u64;
    assert_eq!(offsets(&retried), (next, next));
    let mut all: Vec<String> = acked.iter().map(|v| v.to_string()).collect();
    all.push(value);
    for id in 1..=3 {
        let read = client.read(&cluster.url(id), "ledger", "from=0").await;
        assert_eq!(texts(read.ok()), all, "node {id}");
    }
}

#[actix_rt::test]
async fn losing_quorum_gives_503_with_retry_after_and_restarting_brings_the_data_back() {
    let mut cluster = Cluster::start(3, |_| {}).await;
    let leader = cluster.wait_for_leader().await;
    cluster
        .client
        .append_idempotent(&cluster.url(leader), "ledger", "writer", 1, &["one", "two"])
        .await;

    // The leader left alone: it cannot commit, then steps down (CheckQuorum).
    let a = cluster.other_than(&[leader]);
    let b = cluster.other_than(&[leader, a]);
    lose_quorum_and_recover(&mut cluster, leader, [a, b], &["one", "two"], 2).await;

    // A follower left alone: it cannot reach the leader it knew, then knows none.
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.other_than(&[leader]);
    let alone = cluster.other_than(&[leader, follower]);
    let acked = ["one", "two", "after-2"];
    lose_quorum_and_recover(&mut cluster, alone, [leader, follower], &acked, 3).await;
    cluster.shutdown().await;
}

#[actix_rt::test]
async fn an_idempotent_retry_after_a_leader_change_returns_the_original_offsets() {
    let mut cluster = Cluster::start(3, |_| {}).await;
    let client = common::Client::new();
    let leader = cluster.wait_for_leader().await;
    client
        .append_idempotent(&cluster.url(leader), "payments", "someone", 1, &["before"])
        .await;
    let first = client
        .append_idempotent(&cluster.url(leader), "payments", "p-17", 42, &["a", "b"])
        .await;
    assert_eq!(offsets(&first), (1, 2));

    // The leader goes; the client did not hear (say) and retries at whichever node it
    // reaches: the new leader, and a follower that forwards to it.
    cluster.stop(leader).await;
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, leader);
    let follower = cluster.other_than(&[leader, new_leader]);
    for id in [new_leader, follower] {
        let retry = client
            .append_idempotent(&cluster.url(id), "payments", "p-17", 42, &["a", "b"])
            .await;
        assert_eq!(offsets(&retry), offsets(&first), "a retry at node {id}");
    }
    let read = client
        .read(&cluster.url(follower), "payments", "from=0")
        .await;
    assert_eq!(texts(read.ok()), ["before", "a", "b"]);

    // A lower seq is stale; the next one writes.
    let stale = json!({
        "records": [{"value": "a"}, {"value": "b"}],
        "producer": {"id": "p-17", "seq": 41}
    });
    let refused = client
        .append(&cluster.url(follower), "payments", &stale)
        .await;
    assert_eq!(refused.error(409, "stale_producer_seq")["last_seq"], 42);
    let next = client
        .append_idempotent(&cluster.url(new_leader), "payments", "p-17", 43, &["c"])
        .await;
    assert_eq!(next["first_offset"], 3);

    // The dedup table is replicated state: after a restart of every node it is rebuilt
    // from the log, and a retry of the producer's last append still gets its offsets.
    for id in cluster.running() {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    let leader = cluster.wait_for_leader().await;
    let retry = client
        .append_idempotent(&cluster.url(leader), "payments", "p-17", 43, &["c"])
        .await;
    assert_eq!(offsets(&retry), (3, 3));
    let read = client
        .read(&cluster.url(leader), "payments", "from=0")
        .await;
    assert_eq!(texts(read.ok()), ["before", "a", "b", "c"]);
    cluster.shutdown().await;
}

#[actix_rt::test]
async fn a_conditional_append_that_conflicts_writes_nothing() {
    let cluster = Cluster::start(3, |_| {}).await;
    let client = &cluster.client;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.url(cluster.other_than(&[leader]));
    let leader = cluster.url(leader);
    let conditional = |value: &str, expected_offset: u64| json!({"records": [{"value": value}], "expected_offset": expected_offset});

    // On a stream never written, the next offset is 0.
    let first = client
        .append(&follower, "fenced", &conditional("a", 0))
        .await;
    assert_eq!(first.ok()["first_offset"], 0);
    let second = client.append(&leader, "fenced", &conditional("b", 1)).await;
    assert_eq!(second.ok()["first_offset"], 1);

    // Behind, ahead, and a replay of an old condition: each is 409 with the next offset.
    for (at, expected_offset) in [(&follower, 1), (&leader, 5), (&follower, 0)] {
        let conflict = client
            .append(at, "fenced", &conditional("lost", expected_offset))
            .await;
        assert_eq!(
            conflict.error(409, "offset_mismatch")["next_offset"],
            2,
            "expected_offset {expected_offset}"
        );
    }
    let read = client.read(&follower, "fenced", "from=0").await;
    assert_eq!(texts(read.ok()), ["a", "b"]);
    assert_eq!(read.json["end_offset"], 2);
    cluster.shutdown().await;
}

/// The limits of the bad-input test: small, so that oversize bodies stay small.
const RECORD_BYTES_MAX: u64 = 1_024;
const BATCH_BYTES_MAX: u64 = 4_096;
const BATCH_RECORDS_MAX: usize = 8;

#[actix_rt::test]
async fn bad_input_gets_each_error_code_of_the_contract() {
    let cluster = Cluster::start(3, |config| {
        config.limits.record_bytes_max = RECORD_BYTES_MAX;
        config.limits.batch_bytes_max = BATCH_BYTES_MAX;
        config.limits.batch_records_max = BATCH_RECORDS_MAX;
    })
    .await;
    let client = &cluster.client;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.url(cluster.other_than(&[leader]));
    let leader = cluster.url(leader);
    let records_path = "/v1/streams/bad/records";
    let post = |url: &str, content_type: &str, body: Vec<u8>| {
        let url = url.to_string();
        let content_type = content_type.to_string();
        async move {
            client
                .send(
                    Method::POST,
                    &url,
                    records_path,
                    &[("content-type", &content_type)],
                    Bytes::from(body),
                )
                .await
                .unwrap()
        }
    };
    let json_body = |value: Value| value.to_string().into_bytes();
    let text = |bytes: u64| "x".repeat(bytes as usize);

    // 400 bad_request, at a follower and at the leader alike.
    for url in [&follower, &leader] {
        for (body, words) in [
            (b"{\"records\": [".to_vec(), "not a valid append batch"),
            (b"[1, 2]".to_vec(), "not a valid append batch"),
            (json_body(json!({"records": []})), "empty"),
            (
                json_body(json!({"records": [{"value_b64": "not base64!"}]})),
                "record 0",
            ),
            (
                json_body(json!({"records": [{"value_b64": "YQ"}]})),
                "record 0",
            ),
            (
                json_body(json!({"records": [{"value": "a", "value_b64": "YQ=="}]})),
                "both",
            ),
            (json_body(json!({"records": [{}]})), "needs"),
            (
                json_body(json!({"records": [{"value": "a"}], "expected": 1})),
                "unknown field",
            ),
            (
                json_body(json!({"records": [{"value": "a"}], "producer": {"id": "", "seq": 1}})),
                "producer.id",
            ),
        ] {
            let answer = post(url, "application/json", body).await;
            let message = answer.error(400, "bad_request")["message"]
                .as_str()
                .unwrap();
            assert!(message.contains(words), "{message}");
        }
    }
    // Bad stream names, on every route that takes one.
    let long = "n".repeat(256);
    for name in [
        "has%20space",
        "caf%C3%A9",
        "a%2Fb",
        "%2E%2E%2Fetc",
        long.as_str(),
    ] {
        for (method, path) in [
            (Method::POST, format!("/v1/streams/{name}/records")),
            (Method::GET, format!("/v1/streams/{name}/records")),
            (Method::GET, format!("/v1/streams/{name}/tail")),
            (Method::GET, format!("/v1/streams/{name}")),
        ] {
            let headers = [("content-type", "application/json")];
            let body = Bytes::from(json!({"records": [{"value": "a"}]}).to_string());
            let answer = client
                .send(method, &follower, &path, &headers, body)
                .await
                .unwrap();
            answer.error(400, "bad_request");
        }
    }
    // Bad queries and a bad Last-Event-ID.
    for query in [
        "limit=0",
        "from=-1",
        "from=x",
        "consistency=strong",
        "encoding=hex",
        "wait_ms=-5",
    ] {
        let answer = client.read(&follower, "bad", query).await;
        answer.error(400, "bad_request");
    }
    let answer = client
        .send(
            Method::GET,
            &follower,
            "/v1/streams/bad/tail",
            &[("last-event-id", "x")],
            Bytes::new(),
        )
        .await
        .unwrap();
    answer.error(400, "bad_request");

    // 413 too_large, naming the limit, for a record, a batch's bytes and its count, as
    // JSON and raw.
    let record = json!({"records": [{"value": text(RECORD_BYTES_MAX + 1)}]});
    let batch_bytes: Vec<Value> = (0..5).map(|_| json!({"value": text(1_000)})).collect();
    let batch_records: Vec<Value> = (0..=BATCH_RECORDS_MAX)
        .map(|_| json!({"value": "x"}))
        .collect();
    for (content_type, body, limit) in [
        ("application/json", json_body(record), "record_bytes_max"),
        (
            "application/json",
            json_body(json!({"records": batch_bytes})),
            "batch_bytes_max",
        ),
        (
            "application/json",
            json_body(json!({"records": batch_records})),
            "batch_records_max",
        ),
        (
            "application/octet-stream",
            text(RECORD_BYTES_MAX + 1).into_bytes(),
            "record_bytes_max",
        ),
        ("application/json", vec![b' '; 1 << 20], "batch_bytes_max"),
    ] {
        let answer = post(&follower, content_type, body).await;
        let error = answer.error(413, "too_large");
        assert_eq!(error["limit"], limit, "{}", answer.text);
        assert!(
            error["message"].as_str().unwrap().contains(limit),
            "{}",
            answer.text
        );
    }
    // At the limits exactly, the same appends are accepted.
    let at_limit: Vec<Value> = (0..4)
        .map(|_| json!({"value": text(RECORD_BYTES_MAX)}))
        .collect();
    let answer = post(
        &follower,
        "application/json",
        json_body(json!({"records": at_limit})),
    )
    .await;
    assert_eq!(answer.ok()["last_offset"], 3);

    // 409 stale_producer_seq, decided by the leader, answered through a follower.
    let producer =
        |seq: u64| json!({"records": [{"value": "p"}], "producer": {"id": "p-1", "seq": seq}});
    post(&follower, "application/json", json_body(producer(5)))
        .await
        .ok();
    let stale = post(&follower, "application/json", json_body(producer(4))).await;
    assert_eq!(stale.error(409, "stale_producer_seq")["last_seq"], 5);

    // The HTTP layer's own codes: 415, 404, 405 (with Allow).
    post(&follower, "text/plain", b"hello".to_vec())
        .await
        .error(415, "unsupported_media_type");
    let missing = client.get(&follower, "/v2/streams").await.unwrap();
    missing.error(404, "not_found");
    let wrong = client
        .send(Method::DELETE, &follower, records_path, &[], Bytes::new())
        .await
        .unwrap();
    wrong.error(405, "method_not_allowed");
    assert_eq!(wrong.header("allow"), Some("GET, POST"));

    // 416 offset_out_of_range needs `from` below a stream's start offset, and every
    // stream starts at 0 until retention exists: `from` is unsigned, so it is unreachable.

    // Nothing refused was written: only the accepted batch and producer append are there.
    let read = client
        .read(&leader, "bad", "from=0&consistency=linearizable")
        .await;
    assert_eq!(read.ok()["end_offset"], 5);
    let list = client.get(&leader, "/v1/streams").await.unwrap();
    assert_eq!(
        list.ok()["streams"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    cluster.shutdown().await;
}

/// The number of long-polls that node `url` holds now, from its `/metrics`.
async fn long_polls_held(client: &common::Client, url: &str, node: u64) -> Option<u64> {
    let metrics = client.get(url, "/metrics").await.ok()?;
    let wanted = [
        format!("node=\"{node}\""),
        "gate=\"long_polls\"".to_string(),
    ];
    metrics
        .text
        .lines()
        .filter(|line| line.starts_with("raftlog_http_in_use{"))
        .find(|line| wanted.iter().all(|label| line.contains(label.as_str())))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|held| held as u64)
}

#[actix_rt::test]
async fn a_long_poll_is_woken_by_an_append_from_another_client() {
    let cluster = Cluster::start(3, |_| {}).await;
    let writer = &cluster.client;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.other_than(&[leader]);
    let other = cluster.other_than(&[leader, follower]);
    writer
        .append_idempotent(&cluster.url(leader), "events", "w", 1, &["zero"])
        .await;

    // At each level, a reader at a follower waits for offset 1; once the follower holds
    // the long-poll (its gauge says so), another client appends; the reader gets the
    // record long before its wait is up.
    let mut seq = 1;
    for (node, level) in [
        (follower, "stale"),
        (other, "linearizable"),
        (follower, "lease"),
    ] {
        seq += 1;
        let from = seq - 1;
        let reader = common::Client::new();
        let url = cluster.url(node);
        let poll = async {
            let started = Instant::now();
            let query = format!("from={from}&wait_ms=10000&consistency={level}");
            let read = reader.read(&url, "events", &query).await;
            (read, started.elapsed())
        };
        let append = async {
            poll_until("the follower to hold the long-poll", || async {
                (long_polls_held(writer, &url, node).await? >= 1).then_some(())
            })
            .await;
            let value = format!("woke-{level}");
            writer
                .append_idempotent(&cluster.url(leader), "events", "w", seq, &[&value])
                .await
        };
        let ((read, waited), _) = futures::join!(poll, append);
        let read = read.ok();
        assert_eq!(
            records(read),
            [(from, format!("woke-{level}").into_bytes())]
        );
        assert_eq!(read["next_offset"], from + 1);
        assert!(
            waited < Duration::from_secs(5),
            "{level}: woken after {waited:?}"
        );
    }

    // A long-poll that nothing wakes answers, empty, when its wait is up.
    let started = Instant::now();
    let read = writer
        .read(
            &cluster.url(follower),
            "events",
            "from=4&wait_ms=300&consistency=stale",
        )
        .await;
    assert_eq!(read.ok()["records"], json!([]));
    assert_eq!(read.json["next_offset"], 4);
    assert!(started.elapsed() >= Duration::from_millis(300));
    cluster.shutdown().await;
}

#[actix_rt::test]
async fn a_tail_sends_every_record_in_order_and_resumes_after_last_event_id() {
    let cluster = Cluster::start(3, |_| {}).await;
    let client = &cluster.client;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.url(cluster.other_than(&[leader]));
    let mut tail = client
        .open_tail(&follower, "/v1/streams/ticks/tail?from=0", &[])
        .await;

    // Four writers append concurrently, each through its own node, ten batches of two.
    const WRITERS: u64 = 4;
    const BATCHES: u64 = 10;
    let writers = (0..WRITERS).map(|w| {
        let url = cluster.url(w % 3 + 1);
        async move {
            for batch in 0..BATCHES {
                let a = format!("w{w}-{batch}-a");
                let b = format!("w{w}-{batch}-b\nsecond line");
                client
                    .append_idempotent(&url, "ticks", &format!("w{w}"), batch, &[&a, &b])
                    .await;
            }
        }
    });
    futures::future::join_all(writers).await;
    let total = WRITERS * BATCHES * 2;

    // Every record, once, in offset order, exactly as a read gives them.
    let events = tail.events(total as usize).await;
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..total).collect::<Vec<_>>());
    let read = client
        .read(&follower, "ticks", &format!("from=0&limit={total}"))
        .await;
    let from_tail: Vec<(u64, Vec<u8>)> = ids
        .iter()
        .zip(&events)
        .map(|(&id, event)| (id, event.data.clone().into_bytes()))
        .collect();
    assert_eq!(from_tail, records(read.ok()));
    // Each writer's batches are in the order it sent them, each batch's records together.
    for w in 0..WRITERS {
        let mine: Vec<&str> = events
            .iter()
            .map(|e| e.data.as_str())
            .filter(|data| data.starts_with(&format!("w{w}-")))
            .collect();
        let sent: Vec<String> = (0..BATCHES)
            .flat_map(|b| [format!("w{w}-{b}-a"), format!("w{w}-{b}-b\nsecond line")])
            .collect();
        assert_eq!(mine, sent);
    }
    drop(tail);

    // Resume after event 49 (Last-Event-ID overrides `from`), at another node: 50 on.
    let other = cluster.url(cluster.other_than(&[]));
    let mut resumed = client
        .open_tail(
            &other,
            "/v1/streams/ticks/tail?from=0",
            &[("last-event-id", "49")],
        )
        .await;
    let events = resumed.events((total - 50) as usize).await;
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (50..total).collect::<Vec<_>>());
    // And it stays live: the next commit is the next event.
    client
        .append_idempotent(&cluster.url(leader), "ticks", "late", 1, &["late"])
        .await;
    let late = resumed.events(1).await;
    assert_eq!(
        (late[0].id.as_deref(), late[0].data.as_str()),
        (Some(total.to_string().as_str()), "late")
    );
    // A value SSE cannot carry as text comes as a `b64` event.
    let raw = client
        .send(
            Method::POST,
            &cluster.url(leader),
            "/v1/streams/ticks/records",
            &[("content-type", "application/octet-stream")],
            Bytes::from_static(&[0xff, 0x00, b'\r']),
        )
        .await
        .unwrap();
    raw.ok();
    let binary = resumed.events(1).await;
    assert_eq!(binary[0].kind.as_deref(), Some("b64"));
    assert_eq!(binary[0].data, "/wAN");
    // (A tail still open would hold the node's shutdown for its grace period.)
    drop(resumed);
    cluster.shutdown().await;
}

#[actix_rt::test]
async fn leadership_moves_where_post_cluster_leader_says_even_when_asked_through_a_follower() {
    let cluster = Cluster::start(3, |_| {}).await;
    let client = &cluster.client;
    let old = cluster.wait_for_leader().await;
    let target = cluster.other_than(&[old]);
    let bystander = cluster.other_than(&[old, target]);

    // Bad bodies and strangers are refused, and leadership stays where it is.
    for body in [
        json!({}),
        json!({"to": "two"}),
        json!({"to": 9}),
        json!({"to": 1, "x": 1}),
    ] {
        let refused = client
            .post_json(&cluster.url(bystander), "/v1/cluster/leader", &body)
            .await
            .unwrap();
        refused.error(400, "bad_request");
    }
    assert_eq!(cluster.wait_for_leader().await, old);

    // Asked through the node that neither leads nor is the target: forwarded to the leader.
    let moved = client
        .post_json(
            &cluster.url(bystander),
            "/v1/cluster/leader",
            &json!({"to": target}),
        )
        .await
        .unwrap();
    assert_eq!(moved.ok()["leader"]["id"], target);
    assert_eq!(cluster.wait_for_leader().await, target);
    let append = client
        .append(
            &cluster.url(old),
            "after-transfer",
            &json!({"records": [{"value": "x"}]}),
        )
        .await;
    assert_eq!(append.ok()["first_offset"], 0);
    cluster.shutdown().await;
}
