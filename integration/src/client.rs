//! Workload clients over the public HTTP API, recording every attempt in the shared history
//! with its invocation and completion time and its outcome — the integration twin of the
//! simulator's `testing::sim::client`.
//!
//! Each client is an idempotent producer (`producer: {id: "c<N>", seq}`) appending unique
//! values (`c<N>-<seq>-<k>`) to a few streams; an attempt without a definite answer is
//! retried under the same seq, with the same values, on another node. Now and then it reads
//! a whole stream at `linearizable`, `lease` or `stale`. Some appends are conditional
//! (`expected_offset` = the stream's end as the client last saw it), so `offset_mismatch`
//! answers are checked too.
//!
//! Outcomes, conservatively (see `raftlog::testing::Outcome`):
//! - 200: `Appended` at the offsets of the answer; a 409/400: `AppendRejected`;
//! - connection never made: `Failed` (the request never left);
//! - a 503 whose message is one the server only gives before proposing anything, or for an
//!   entry a later leader overwrote ([`definitely_not_written`]): `Failed` — the checkers
//!   then test that claim (a "not written" append found in the log is a phantom write);
//! - everything else (timeouts, resets, other 503s): `Unknown`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use raftlog::http::wire::{AppendResponse, ErrorBody, ReadResponse};
use raftlog::testing::{
    AppendCall, Call, ClientId, Consistency, HistoryRecorder, Outcome, ProducerSeq, ReadCall,
    RejectReason,
};
use raftlog::types::{MonoTime, Offset};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::time::Instant;

use crate::http::{encode, request, request_counted, HttpError, Response};
use crate::view::{record_value, ClusterView};

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    pub clients: u64,
    pub streams: u64,
    /// Pause between a client's operations, drawn uniformly, in ms.
    pub think_ms: (u64, u64),
    pub read_per_mille: u32,
    /// Appends that are conditional (`expected_offset` = the stream's end as this client
    /// last saw it), per mille of appends.
    pub conditional_per_mille: u32,
    /// The client's deadline for one attempt.
    pub request_timeout: Duration,
    /// Attempts per logical append before the client moves on to its next seq.
    pub attempts_max: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 6,
            streams: 3,
            think_ms: (0, 20),
            read_per_mille: 300,
            conditional_per_mille: 150,
            request_timeout: Duration::from_millis(1_500),
            attempts_max: 4,
        }
    }
}

pub fn stream_name(index: u64) -> String {
    format!("s{index}")
}

/// The run's clock and recorder, shared by every client.
#[derive(Clone, Debug)]
pub struct Recording {
    pub recorder: HistoryRecorder,
    pub origin: Instant,
    /// Why appends had no definite success and reads failed, counted: the report shows what
    /// the faults did.
    reasons: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Recording {
    pub fn new() -> Recording {
        Recording {
            recorder: HistoryRecorder::new(),
            origin: Instant::now(),
            reasons: Arc::default(),
        }
    }

    /// Counts one append that did not succeed, by why.
    pub fn note_reason(&self, outcome: &Outcome, result: &Result<Response, HttpError>) {
        let kind = match outcome {
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
            Outcome::AppendRejected { .. } => "rejected",
            _ => return,
        };
        self.count(format!("{kind}: {}", why(result)));
    }

    /// Counts one read that got no answer with records, by why.
    pub fn note_read_failure(&self, level: Consistency, result: &Result<Response, HttpError>) {
        self.count(format!(
            "read {} failed: {}",
            level_name(level),
            why(result)
        ));
    }

    fn count(&self, reason: String) {
        *self
            .reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }

    /// The counted reasons, most frequent first.
    pub fn reasons(&self) -> Vec<(String, u64)> {
        let mut reasons: Vec<(String, u64)> = self
            .reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        reasons
    }

    /// Microseconds since the run's origin on the monotonic clock all clients share.
    pub fn now(&self) -> MonoTime {
        MonoTime(self.origin.elapsed().as_micros() as u64)
    }
}

impl Default for Recording {
    fn default() -> Self {
        Recording::new()
    }
}

/// Why a request had no definite success, short enough to count: the status and the
/// error's message with each number masked as `N` (messages carry offsets and indexes, and
/// one line per kind of answer is what a report wants), or the transport error's first
/// words.
fn why(result: &Result<Response, HttpError>) -> String {
    match result {
        Ok(response) => {
            let message = response
                .json::<ErrorBody>()
                .map(|e| e.message)
                .unwrap_or_else(|_| response.text());
            let mut short = String::new();
            let mut in_number = false;
            for c in message.chars().take(70) {
                if !c.is_ascii_digit() {
                    short.push(c);
                } else if !in_number {
                    short.push('N');
                }
                in_number = c.is_ascii_digit();
            }
            format!("{} {short}", response.status)
        }
        Err(HttpError::NotSent(why) | HttpError::Unknown(why)) => {
            why.split(':').next().unwrap_or_default().to_string()
        }
    }
}

/// 503 messages the server sends only when it wrote nothing: it never proposed the write
/// (no leader, overloaded, forwarded to a node that is not the leader) or the entry that
/// carried it was overwritten by a later leader's. Matched exactly, so a reworded message
/// makes the outcome `Unknown` — the safe side.
pub fn definitely_not_written(message: &str) -> bool {
    const EXACT: [&str; 3] = [
        "no leader is known right now",
        "too many writes are waiting to commit; slow down",
        "leadership changed before the write committed; it was not written",
    ];
    const PREFIXES: [&str; 2] = [
        "this node is not the leader and knows of no leader",
        "this node was forwarded the request as the leader but is not the leader",
    ];
    EXACT.contains(&message) || PREFIXES.iter().any(|p| message.starts_with(p))
}

/// One append attempt's outcome from the HTTP exchange.
pub fn append_outcome(result: &Result<Response, HttpError>) -> Outcome {
    let response = match result {
        Err(HttpError::NotSent(_)) => return Outcome::Failed,
        Err(HttpError::Unknown(_)) => return Outcome::Unknown,
        Ok(response) => response,
    };
    match response.status {
        200 => match response.json::<AppendResponse>() {
            Ok(ack) => Outcome::Appended {
                first_offset: Offset(ack.first_offset),
                last_offset: Offset(ack.last_offset),
            },
            Err(_) => Outcome::Unknown,
        },
        400 | 409 | 503 => {
            let Ok(error) = response.json::<ErrorBody>() else {
                return Outcome::Unknown;
            };
            match (response.status, error.error.as_str()) {
                (409, "stale_producer_seq") => Outcome::AppendRejected {
                    reason: RejectReason::StaleProducerSeq,
                },
                (409, "offset_mismatch") => Outcome::AppendRejected {
                    reason: RejectReason::OffsetMismatch {
                        next_offset: error.next_offset.map(Offset),
                    },
                },
                (400, _) => Outcome::AppendRejected {
                    reason: RejectReason::BadRequest,
                },
                (503, _) if definitely_not_written(&error.message) => Outcome::Failed,
                _ => Outcome::Unknown,
            }
        }
        _ => Outcome::Unknown,
    }
}

/// The JSON body of an append of `values` as `producer`.
pub fn append_body(
    values: &[Bytes],
    producer: Option<&ProducerSeq>,
    expected_offset: Option<Offset>,
) -> Vec<u8> {
    let records: Vec<serde_json::Value> = values
        .iter()
        .map(|v| serde_json::json!({ "value": String::from_utf8_lossy(v) }))
        .collect();
    let mut body = serde_json::json!({ "records": records });
    if let Some(p) = producer {
        body["producer"] = serde_json::json!({ "id": p.id, "seq": p.seq });
    }
    if let Some(expected) = expected_offset {
        body["expected_offset"] = serde_json::json!(expected.0);
    }
    serde_json::to_vec(&body).expect("JSON")
}

/// One client's loop until `until`.
pub async fn run_client(
    id: ClientId,
    seed: u64,
    workload: Workload,
    view: ClusterView,
    recording: Recording,
    until: Instant,
) {
    let mut client = Client {
        id,
        rng: SmallRng::seed_from_u64(seed),
        workload,
        view,
        recording,
        next_seq: 0,
        end_seen: BTreeMap::new(),
    };
    while Instant::now() < until {
        let (min, max) = client.workload.think_ms;
        let pause = client.rng.gen_range(min..=max);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if client.rng.gen_range(0..1000) < client.workload.read_per_mille {
            client.read().await;
        } else {
            client.append(until).await;
        }
    }
}

struct Client {
    id: ClientId,
    rng: SmallRng,
    workload: Workload,
    view: ClusterView,
    recording: Recording,
    next_seq: u64,
    /// Per stream, the end offset this client last saw (acknowledged or read).
    end_seen: BTreeMap<String, u64>,
}

impl Client {
    fn random_node(&mut self) -> u64 {
        let ids = self.view.ids();
        ids[self.rng.gen_range(0..ids.len())]
    }

    async fn append(&mut self, until: Instant) {
        let stream = stream_name(self.rng.gen_range(0..self.workload.streams));
        let seq = self.next_seq;
        self.next_seq += 1;
        let values: Vec<Bytes> = (0..self.rng.gen_range(1..=3))
            .map(|k| Bytes::from(format!("{}-{seq}-{k}", self.id)))
            .collect();
        let producer = ProducerSeq {
            id: self.id.to_string(),
            seq,
        };
        let conditional = self.rng.gen_range(0..1000) < self.workload.conditional_per_mille;
        let expected_offset = self
            .end_seen
            .get(&stream)
            .copied()
            .filter(|_| conditional)
            .map(Offset);
        let mut node = self.random_node();
        for attempt in 0..self.workload.attempts_max {
            if attempt > 0 && Instant::now() >= until {
                return;
            }
            let call = AppendCall {
                stream: stream.clone(),
                values: values.clone(),
                producer: Some(producer.clone()),
                expected_offset,
            };
            let outcome = self.append_once(node, call).await;
            match &outcome {
                Outcome::Appended { last_offset, .. } => {
                    self.end_seen.insert(stream.clone(), last_offset.0 + 1);
                }
                Outcome::AppendRejected {
                    reason:
                        RejectReason::OffsetMismatch {
                            next_offset: Some(next),
                        },
                } => {
                    self.end_seen.insert(stream.clone(), next.0);
                }
                _ => {}
            }
            if matches!(
                outcome,
                Outcome::Appended { .. } | Outcome::AppendRejected { .. }
            ) {
                return;
            }
            // Try another node after a short back-off, as a real client would.
            let ids = self.view.ids();
            let next = ids.iter().position(|&n| n == node).map_or(0, |i| i + 1);
            node = ids[next % ids.len()];
            let backoff = self.rng.gen_range(10..=60);
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
    }

    async fn append_once(&mut self, node: u64, call: AppendCall) -> Outcome {
        let timeout = self.workload.request_timeout;
        let (outcome, result) =
            append_recorded(&self.view, &self.recording, self.id, node, &call, timeout).await;
        self.recording.note_reason(&outcome, &result);
        outcome
    }

    async fn read(&mut self) {
        let node = self.random_node();
        let stream = stream_name(self.rng.gen_range(0..self.workload.streams));
        let consistency = match self.rng.gen_range(0..10) {
            0..=3 => Consistency::Linearizable,
            4..=6 => Consistency::Lease,
            _ => Consistency::Stale,
        };
        let read = ReadAt::new(node, &stream, consistency, self.workload.request_timeout);
        let outcome = read_recorded(&self.view, &self.recording, self.id, read).await;
        if let Outcome::Read { end_offset, .. } = outcome {
            self.end_seen.insert(stream, end_offset.0);
        }
    }
}

/// The `consistency` query value of a level.
pub fn level_name(consistency: Consistency) -> &'static str {
    match consistency {
        Consistency::Linearizable => "linearizable",
        Consistency::Lease => "lease",
        Consistency::Stale => "stale",
    }
}

/// One whole-stream read to make and record.
#[derive(Clone, Debug)]
pub struct ReadAt<'a> {
    pub node: u64,
    pub stream: &'a str,
    /// The level the history records, and the checkers hold the answer to.
    pub recorded_as: Consistency,
    /// The level asked of the server: the recorded one, except in the teeth test that lies.
    pub asked: Consistency,
    pub timeout: Duration,
    /// Counts the request once it is on the wire (connected and written), for tests that
    /// must know a request was sent before they go on.
    pub sent: Option<&'a AtomicUsize>,
}

impl<'a> ReadAt<'a> {
    pub fn new(node: u64, stream: &'a str, consistency: Consistency, timeout: Duration) -> Self {
        ReadAt {
            node,
            stream,
            recorded_as: consistency,
            asked: consistency,
            timeout,
            sent: None,
        }
    }
}

/// Sends `append` to `node`, recording it as `client`'s operation; returns its outcome, and
/// the HTTP exchange for the caller's diagnostics.
pub async fn append_recorded(
    view: &ClusterView,
    recording: &Recording,
    client: ClientId,
    node: u64,
    append: &AppendCall,
    timeout: Duration,
) -> (Outcome, Result<Response, HttpError>) {
    let body = append_body(
        &append.values,
        append.producer.as_ref(),
        append.expected_offset,
    );
    let path = format!("/v1/streams/{}/records", encode(&append.stream));
    let call = Call::Append(append.clone());
    let op = recording.recorder.invoke(client, call, recording.now());
    let json = Some(("application/json", &body[..]));
    let result = request(view.endpoint(node), "POST", &path, json, timeout).await;
    let outcome = append_outcome(&result);
    recording
        .recorder
        .complete(op, outcome.clone(), recording.now());
    (outcome, result)
}

/// Makes `read`, recording it as `client`'s operation; returns its outcome. A read that
/// got no 200 answer is `Failed` (a read has no effect: it simply did not happen), and
/// why is counted in the recording's reasons.
pub async fn read_recorded(
    view: &ClusterView,
    recording: &Recording,
    client: ClientId,
    read: ReadAt<'_>,
) -> Outcome {
    let call = ReadCall {
        stream: read.stream.to_string(),
        from: Offset(0),
        consistency: read.recorded_as,
    };
    let op = recording
        .recorder
        .invoke(client, Call::Read(call), recording.now());
    let path = format!(
        "/v1/streams/{}/records?from=0&limit=1000000&consistency={}",
        encode(read.stream),
        level_name(read.asked)
    );
    let endpoint = view.endpoint(read.node);
    let result = request_counted(endpoint, "GET", &path, None, read.timeout, read.sent).await;
    let outcome = match &result {
        Ok(response) if response.status == 200 => match response.json::<ReadResponse>() {
            Ok(answer) => Outcome::Read {
                end_offset: Offset(answer.end_offset),
                records: answer
                    .records
                    .into_iter()
                    .map(|r| (Offset(r.offset()), record_value(r)))
                    .collect(),
            },
            Err(_) => Outcome::Failed,
        },
        _ => Outcome::Failed,
    };
    recording
        .recorder
        .complete(op, outcome.clone(), recording.now());
    if outcome == Outcome::Failed {
        recording.note_read_failure(read.asked, &result);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    fn answer(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn outcomes_are_definite_only_when_certain() {
        let acked = answer(
            200,
            r#"{"stream":"s","first_offset":3,"last_offset":4,"index":9,"term":2}"#,
        );
        assert_eq!(
            append_outcome(&acked),
            Outcome::Appended {
                first_offset: Offset(3),
                last_offset: Offset(4)
            }
        );
        let not_sent = Err(HttpError::NotSent("refused".into()));
        assert_eq!(append_outcome(&not_sent), Outcome::Failed);
        let timeout = Err(HttpError::Unknown("timed out".into()));
        assert_eq!(append_outcome(&timeout), Outcome::Unknown);
        let no_leader = answer(
            503,
            r#"{"error":"unavailable","message":"no leader is known right now"}"#,
        );
        assert_eq!(append_outcome(&no_leader), Outcome::Failed);
        let commit_timeout = answer(
            503,
            r#"{"error":"unavailable","message":"the write did not commit within 2000 ms"}"#,
        );
        assert_eq!(append_outcome(&commit_timeout), Outcome::Unknown);
        let stale = answer(
            409,
            r#"{"error":"stale_producer_seq","message":"x","last_seq":9}"#,
        );
        assert_eq!(
            append_outcome(&stale),
            Outcome::AppendRejected {
                reason: RejectReason::StaleProducerSeq
            }
        );
        assert_eq!(append_outcome(&answer(502, "")), Outcome::Unknown);
    }

    #[test]
    fn append_bodies_carry_the_producer() {
        let producer = ProducerSeq {
            id: "c1".into(),
            seq: 7,
        };
        let body = append_body(
            &[Bytes::from_static(b"c1-7-0")],
            Some(&producer),
            Some(Offset(3)),
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["records"][0]["value"], "c1-7-0");
        assert_eq!(json["producer"]["seq"], 7);
        assert_eq!(json["expected_offset"], 3);
    }
}
