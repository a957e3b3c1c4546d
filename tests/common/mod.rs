//! A real raftlog cluster inside the test process, and a small HTTP client for its public API.
//!
//! Each node is started with `raftlog::runtime::start_node`, exactly as `raftlog serve` does:
//! its WAL in a temporary directory, its peers over loopback TCP and its clients over HTTP,
//! on ports found free by binding port 0. Tests talk to the nodes over HTTP only.
//!
//! Nothing here sleeps in the hope that something has happened: every wait polls a public
//! endpoint (`/v1/cluster`, `/readyz`, `/metrics`, a read) until it shows what the test waits
//! for, and fails at a deadline.

#![allow(dead_code)] // Each test file uses its own share of the helpers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use awc::http::header::HeaderMap;
use awc::http::Method;
use bytes::Bytes;
use raftlog::config::{
    BatchingConfig, HttpConfig, LimitsConfig, MemberConfig, NodeFileConfig, PeerConfig, RaftConfig,
    ReplicationConfig, WalConfig,
};
use raftlog::runtime::{self, RunningNode};
use raftlog::types::NodeId;
use serde_json::{json, Value};

/// How long a test waits for a cluster to do something it should do within about one
/// election, generously: debug builds on a loaded machine are slow.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The request timeout of test nodes: a write without quorum gets its 503 after this.
pub const REQUEST_TIMEOUT_MS: u64 = 1_500;

/// How long one HTTP exchange of a test may take before the test fails (a long-poll adds
/// its wait).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a wait polls.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The tests of a file share two cores with the compiler and each other; clusters that
/// compete for them miss heartbeats and hold spurious elections. One cluster at a time.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "raftlog-{label}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `count` distinct loopback ports that were free a moment ago.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("a bound address").port())
        .collect()
}

/// The config of node `id` (from 1) of a loopback cluster whose node N serves HTTP on
/// `ports[2(N-1)]` and peers on `ports[2(N-1)+1]`. Everything else is the defaults, but a
/// short request timeout so that a write without quorum fails quickly.
fn node_config(id: u64, nodes: usize, ports: &[u16], data: &Path) -> NodeFileConfig {
    let http = |n: u64| ports[2 * (n as usize - 1)];
    let peer = |n: u64| ports[2 * (n as usize - 1) + 1];
    let members = (1..=nodes as u64)
        .map(|n| MemberConfig {
            id: NodeId(n),
            peer: format!("127.0.0.1:{}", peer(n)),
            http: format!("http://127.0.0.1:{}", http(n)),
        })
        .collect();
    NodeFileConfig {
        id: NodeId(id),
        cluster_id: "http-test".to_string(),
        data_dir: data.join(format!("node-{id}")),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        http: HttpConfig {
            listen: format!("127.0.0.1:{}", http(id)),
            workers: 1,
        },
        peer: PeerConfig {
            listen: format!("127.0.0.1:{}", peer(id)),
        },
        members,
        raft: RaftConfig::default(),
        replication: ReplicationConfig::default(),
        batching: BatchingConfig::default(),
        wal: WalConfig::default(),
        limits: LimitsConfig::default(),
    }
}

/// A running cluster: its nodes (ids from 1), their configs and data, and a client.
pub struct Cluster {
    configs: Vec<NodeFileConfig>,
    nodes: Vec<Option<RunningNode>>,
    pub client: Client,
    _data: TempDir,
    _turn: tokio::sync::SemaphorePermit<'static>,
}

impl Cluster {
    /// Starts `nodes` nodes with the default test configs changed by `tweak`, and waits until
    /// they agree on a leader. Ports found free may be taken before the nodes bind them;
    /// then it tries again with others.
    pub async fn start(nodes: usize, tweak: impl Fn(&mut NodeFileConfig)) -> Cluster {
        let turn = ONE_CLUSTER_AT_A_TIME
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let data = TempDir::new("http-cluster");
        for _attempt in 0..5 {
            let ports = free_ports(2 * nodes);
            let configs: Vec<NodeFileConfig> = (1..=nodes as u64)
                .map(|id| {
                    let mut config = node_config(id, nodes, &ports, data.path());
                    tweak(&mut config);
                    config
                        .validate()
                        .unwrap_or_else(|problems| panic!("a bad test config: {problems:#?}"));
                    config
                })
                .collect();
            let mut running = Vec::new();
            let mut failed = None;
            for config in &configs {
                match runtime::start_node(config, Default::default()) {
                    Ok(node) => running.push(Some(node)),
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
            match failed {
                None => {
                    let cluster = Cluster {
                        configs,
                        nodes: running,
                        client: Client::new(),
                        _data: data,
                        _turn: turn,
                    };
                    cluster.wait_for_leader().await;
                    return cluster;
                }
                Some(error) if error.contains("listen") => {
                    for node in running.into_iter().flatten() {
                        runtime::stop_node(node).await;
                    }
                    let _ = std::fs::remove_dir_all(data.path());
                }
                Some(error) => panic!("a node did not start: {error}"),
            }
        }
        panic!("could not find free ports for a cluster in 5 attempts");
    }

    /// Node `id`'s base URL.
    pub fn url(&self, id: u64) -> String {
        format!("http://{}", self.configs[id as usize - 1].http.listen)
    }

    /// The ids of the nodes running now.
    pub fn running(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|&id| self.nodes[id as usize - 1].is_some())
            .collect()
    }

    /// Stops node `id` cleanly, as SIGTERM would.
    pub async fn stop(&mut self, id: u64) {
        let node = self.nodes[id as usize - 1]
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        runtime::stop_node(node).await;
    }

    /// Starts node `id` again on its data directory and ports.
    pub fn restart(&mut self, id: u64) {
        let slot = id as usize - 1;
        assert!(self.nodes[slot].is_none(), "node {id} is running");
        let node = runtime::start_node(&self.configs[slot], Default::default())
            .unwrap_or_else(|error| panic!("node {id} did not restart: {error}"));
        self.nodes[slot] = Some(node);
    }

    /// Stops every node that runs.
    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }

    /// Waits until every running node names the same running leader, that leader says it
    /// leads, and every running node is ready (`/readyz`). Returns the leader's id.
    pub async fn wait_for_leader(&self) -> u64 {
        let running = self.running();
        let what = format!("nodes {running:?} to agree on a leader and be ready");
        let found = poll_until(&what, || async {
            let mut leaders = Vec::new();
            for &id in &running {
                let view = self.client.get(&self.url(id), "/v1/cluster").await.ok()?;
                let leader = view.json["leader"]["id"].as_u64()?;
                let role = view.json["role"].as_str()?.to_string();
                leaders.push((id, leader, role));
            }
            let leader = leaders[0].1;
            let agreed = leaders.iter().all(|&(_, l, _)| l == leader);
            let leads = leaders
                .iter()
                .any(|(id, _, role)| *id == leader && role == "leader");
            if !agreed || !leads {
                return None;
            }
            for &id in &running {
                let ready = self.client.get(&self.url(id), "/readyz").await.ok()?;
                if ready.status != 200 {
                    return None;
                }
            }
            Some(leader)
        })
        .await;
        found
    }

    /// A running node other than `not`.
    pub fn other_than(&self, not: &[u64]) -> u64 {
        self.running()
            .into_iter()
            .find(|id| !not.contains(id))
            .expect("another running node")
    }
}

/// Calls `probe` every [`POLL_INTERVAL`] until it gives a value, or panics naming `what`
/// after [`DEADLINE`].
pub async fn poll_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// One HTTP answer: status, headers, the body as text and as JSON (`Null` if not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// Asserts a 200 and returns the JSON.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.json
    }

    /// Asserts API.md's error answer (`status`, `code`, a sentence as `message`) and
    /// returns its JSON.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.text
        );
        let message = self.json["message"].as_str().unwrap_or_default();
        assert!(
            message.len() > 10,
            "the message is a sentence: {}",
            self.text
        );
        &self.json
    }

    /// Asserts a 503 `unavailable` with a `Retry-After` of whole seconds (at least 1) and
    /// the same delay in `retry_after_ms`.
    #[track_caller]
    pub fn unavailable(&self) -> &Value {
        let json = self.error(503, "unavailable");
        let seconds: u64 = self
            .header("retry-after")
            .unwrap_or_else(|| panic!("a 503 without Retry-After: {}", self.text))
            .parse()
            .expect("Retry-After in whole seconds");
        assert!(seconds >= 1, "Retry-After {seconds}");
        let retry_after_ms = json["retry_after_ms"].as_u64().expect("retry_after_ms");
        assert!(retry_after_ms <= seconds * 1_000, "{}", self.text);
        json
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A client of the HTTP API: whole answers, each exchange within a deadline.
pub struct Client {
    http: awc::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Client {
        // Deadlines are per exchange (long-polls outlive any default).
        let http = awc::Client::builder().disable_timeout().finish();
        Client { http }
    }

    /// Sends `method base+path` with `headers` and `body`; `Err` if no answer came (a node
    /// that is down).
    pub async fn send(
        &self,
        method: Method,
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let url = format!("{base}{path}");
        let mut request = self.http.request(method, &url);
        for &(name, value) in headers {
            request = request.insert_header((name, value));
        }
        let exchange = async {
            let mut response = request.send_body(body).await.map_err(|e| e.to_string())?;
            let body = response
                .body()
                .limit(64 << 20)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((response.status().as_u16(), response.headers().clone(), body))
        };
        let (status, headers, body) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{url} did not answer within {EXCHANGE_TIMEOUT:?}"))??;
        let text = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            text,
            json,
        })
    }

    pub async fn get(&self, base: &str, path: &str) -> Result<Answer, String> {
        self.send(Method::GET, base, path, &[], Bytes::new()).await
    }

    pub async fn post_json(&self, base: &str, path: &str, body: &Value) -> Result<Answer, String> {
        let headers = [("content-type", "application/json")];
        let body = Bytes::from(body.to_string());
        self.send(Method::POST, base, path, &headers, body).await
    }

    /// Appends `body` (an API.md append batch) to `stream` at `base`.
    pub async fn append(&self, base: &str, stream: &str, body: &Value) -> Answer {
        let path = format!("/v1/streams/{stream}/records");
        self.post_json(base, &path, body)
            .await
            .unwrap_or_else(|error| panic!("append to {base}: {error}"))
    }

    /// Reads `stream` at `base` with `query` (e.g. `from=0&consistency=stale`).
    pub async fn read(&self, base: &str, stream: &str, query: &str) -> Answer {
        let path = format!("/v1/streams/{stream}/records?{query}");
        self.get(base, &path)
            .await
            .unwrap_or_else(|error| panic!("read from {base}: {error}"))
    }

    /// Appends text `values` to `stream` at `base` as producer `producer` with `seq`,
    /// retrying the same (id, seq) on a 503 until [`DEADLINE`] — which the idempotent
    /// producer makes safe — and returns the 200's JSON.
    pub async fn append_idempotent(
        &self,
        base: &str,
        stream: &str,
        producer: &str,
        seq: u64,
        values: &[&str],
    ) -> Value {
        let records: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
        let body = json!({ "records": records, "producer": { "id": producer, "seq": seq } });
        let path = format!("/v1/streams/{stream}/records");
        let what = format!("an append of {values:?} at {base}");
        poll_until(&what, || async {
            match self.post_json(base, &path, &body).await {
                Ok(answer) if answer.status == 503 => None,
                Ok(answer) => Some(answer.ok().clone()),
                Err(_) => None,
            }
        })
        .await
    }
}

/// The records of a read answer as `(offset, value)`, the value from `value` or, decoded,
/// `value_b64`.
pub fn records(read: &Value) -> Vec<(u64, Vec<u8>)> {
    use base64::Engine;
    read["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {read}"))
        .iter()
        .map(|record| {
            let offset = record["offset"].as_u64().expect("an offset");
            let value = match (record["value"].as_str(), record["value_b64"].as_str()) {
                (Some(text), None) => text.as_bytes().to_vec(),
                (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .expect("valid base64"),
                _ => panic!("a record with one of value and value_b64: {record}"),
            };
            (offset, value)
        })
        .collect()
}

/// The text values of a read answer, in order.
pub fn texts(read: &Value) -> Vec<String> {
    records(read)
        .into_iter()
        .map(|(_, value)| String::from_utf8(value).expect("a text value"))
        .collect()
}

/// An open SSE tail: the events of a `GET .../tail` answer as they arrive.
pub struct Tail {
    body: futures::stream::LocalBoxStream<'static, Result<Bytes, awc::error::PayloadError>>,
    parser: raftlog::cli::sse::EventParser,
    /// Events parsed but not yet asked for.
    pending: std::collections::VecDeque<raftlog::cli::sse::Event>,
}

impl Client {
    /// Opens `GET base+path` (a tail) with `headers`, and asserts that it is an event
    /// stream.
    pub async fn open_tail(&self, base: &str, path: &str, headers: &[(&str, &str)]) -> Tail {
        let url = format!("{base}{path}");
        let mut request = self.http.get(&url);
        for &(name, value) in headers {
            request = request.insert_header((name, value));
        }
        let response = tokio::time::timeout(EXCHANGE_TIMEOUT, request.send())
            .await
            .unwrap_or_else(|_| panic!("{url} did not answer in time"))
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        assert_eq!(response.status().as_u16(), 200, "{url}");
        let content_type = response.headers().get("content-type").cloned();
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
            "{url}"
        );
        Tail {
            body: Box::pin(response),
            parser: Default::default(),
            pending: Default::default(),
        }
    }
}

impl Tail {
    /// The next `count` events, in the order sent; fails if they do not come by
    /// [`DEADLINE`] or the stream ends first.
    pub async fn events(&mut self, count: usize) -> Vec<raftlog::cli::sse::Event> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.pending.len() < count {
            let came = self.pending.len();
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("only {came} of {count} events came in time"));
            let chunk = chunk
                .unwrap_or_else(|| panic!("the tail ended after {came} of {count} events"))
                .expect("the tail's body reads");
            self.pending.extend(self.parser.feed(&chunk));
        }
        self.pending.drain(..count).collect()
    }
}
