//! Talking to a running cluster over its public HTTP API, from the clients' namespace:
//! every node's `/v1/cluster` status, who leads, waiting for a leader or a settled cluster,
//! whole-stream reads, and convergence — after healing, every node holds the same log,
//! which becomes the [`FinalLog`] the checkers compare the history with.
//!
//! A [`ClusterView`] is plain data (addresses and a namespace), cheap to clone and `Send`,
//! so clients, the observer and the checks use it while the nemesis thread owns the
//! [`crate::cluster::Cluster`] itself.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use raftlog::http::wire::{ClusterResponse, ReadResponse, RecordOut, RoleJson, StreamsResponse};
use raftlog::testing::FinalLog;

use crate::http::{encode, request, Endpoint};

/// What clients and checks need to talk to a cluster; cheap to clone and `Send`.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub nodes: Vec<(u64, Endpoint)>,
    /// The request timeout of status queries.
    pub status_timeout: Duration,
}

/// Runs `future` on a fresh current-thread runtime (for blocking code that needs one HTTP
/// answer).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a runtime")
        .block_on(future)
}

/// One node's status, as `/v1/cluster` reports it.
pub type Status = ClusterResponse;

impl ClusterView {
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|(id, _)| *id).collect()
    }

    pub fn endpoint(&self, id: u64) -> &Endpoint {
        &self
            .nodes
            .iter()
            .find(|(n, _)| *n == id)
            .expect("a member")
            .1
    }

    /// Node `id`'s `/v1/cluster`, if it answers in time.
    pub async fn status(&self, id: u64) -> Option<Status> {
        let response = request(
            self.endpoint(id),
            "GET",
            "/v1/cluster",
            None,
            self.status_timeout,
        )
        .await
        .ok()?;
        (response.status == 200)
            .then(|| response.json().ok())
            .flatten()
    }

    /// Every node's status, `None` for those that did not answer.
    pub async fn statuses(&self) -> BTreeMap<u64, Option<Status>> {
        let futures = self
            .ids()
            .into_iter()
            .map(|id| async move { (id, self.status(id).await) });
        futures::future::join_all(futures)
            .await
            .into_iter()
            .collect()
    }

    /// The node that answers as leader with the highest term, if any.
    pub async fn leader(&self) -> Option<(u64, u64)> {
        self.statuses()
            .await
            .into_iter()
            .filter_map(|(id, s)| {
                s.filter(|s| s.role == RoleJson::Leader)
                    .map(|s| (id, s.term))
            })
            .max_by_key(|&(_, term)| term)
    }

    /// Waits up to `timeout` for a leader.
    pub async fn wait_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some((id, _)) = self.leader().await {
                return Some(id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Waits up to `timeout` until every node answers and all name the same leader in the
    /// same term (a settled cluster, e.g. after a deposed leader has heard of the new term);
    /// returns that leader.
    pub async fn wait_settled(&self, timeout: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let views: Option<Vec<(u64, Option<u64>)>> = self
                .statuses()
                .await
                .into_values()
                .map(|s| s.map(|s| (s.term, s.leader.map(|l| l.id))))
                .collect();
            if let Some(views) = views {
                if let Some(&(_, Some(leader))) = views.first() {
                    if views.windows(2).all(|w| w[0] == w[1]) {
                        return Some(leader);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Reads `stream` whole from node `id` at `consistency`.
    pub async fn read_all(
        &self,
        id: u64,
        stream: &str,
        consistency: &str,
        timeout: Duration,
    ) -> Result<ReadResponse, String> {
        let path = format!(
            "/v1/streams/{}/records?from=0&limit=1000000&consistency={consistency}",
            encode(stream)
        );
        let response = request(self.endpoint(id), "GET", &path, None, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("status {}: {}", response.status, response.text()));
        }
        response.json()
    }

    /// The stream names node `id` knows.
    pub async fn stream_names(&self, id: u64) -> Result<Vec<String>, String> {
        let response = request(
            self.endpoint(id),
            "GET",
            "/v1/streams",
            None,
            Duration::from_secs(2),
        )
        .await
        .map_err(|e| e.to_string())?;
        let streams: StreamsResponse = response.json()?;
        Ok(streams.streams.into_iter().map(|s| s.name).collect())
    }

    /// Waits until every node answers, one leader leads them all in one term, and all
    /// report the same commit and applied index; then reads every stream (those of
    /// `streams` and any a node lists) from every node at `stale` and requires the same
    /// records everywhere. Returns that log.
    pub async fn converge(
        &self,
        streams: &[String],
        timeout: Duration,
    ) -> Result<FinalLog, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("no status yet");
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.try_converge(streams).await {
                Ok(log) => return Ok(log),
                Err(why) => last = why,
            }
        }
        Err(format!(
            "the healed cluster did not converge within {timeout:?}: {last}"
        ))
    }

    async fn try_converge(&self, streams: &[String]) -> Result<FinalLog, String> {
        let statuses = self.statuses().await;
        let mut indexes = Vec::new();
        for (id, status) in &statuses {
            let status = status
                .as_ref()
                .ok_or(format!("node {id} does not answer"))?;
            if status.commit_index != status.applied_index {
                return Err(format!(
                    "node {id} applied {} of commit {}",
                    status.applied_index, status.commit_index
                ));
            }
            let leader = status.leader.as_ref().map(|l| l.id);
            indexes.push((status.term, leader, status.applied_index));
        }
        if indexes.windows(2).any(|w| w[0] != w[1]) || indexes[0].1.is_none() {
            return Err(format!(
                "nodes disagree (term, leader, applied): {indexes:?}"
            ));
        }
        let mut names: Vec<String> = streams.to_vec();
        for id in self.ids() {
            names.extend(self.stream_names(id).await?);
        }
        names.sort();
        names.dedup();
        let mut log = FinalLog::new();
        for name in &names {
            let mut reference: Option<(u64, Vec<Bytes>)> = None;
            for id in self.ids() {
                let read = self
                    .read_all(id, name, "stale", Duration::from_secs(5))
                    .await?;
                let values: Vec<Bytes> = read.records.into_iter().map(record_value).collect();
                match &reference {
                    None => reference = Some((id, values)),
                    Some((first, expected)) if *expected != values => {
                        return Err(format!(
                            "stream {name}: node {first} holds {} records, node {id} holds {} \
                             (or different ones) at the same applied index",
                            expected.len(),
                            values.len()
                        ));
                    }
                    Some(_) => {}
                }
            }
            if let Some((_, values)) = reference {
                log.insert(name.clone(), values);
            }
        }
        // The nodes may have moved on while we read; only a still-quiet cluster counts.
        let after = self.statuses().await;
        let moved = after.iter().any(|(id, s)| {
            s.as_ref().map(|s| s.applied_index) != statuses[id].as_ref().map(|s| s.applied_index)
        });
        if moved {
            return Err("the cluster applied more while its logs were read".into());
        }
        Ok(log)
    }
}

/// A record's value as bytes, whichever encoding the server chose.
pub fn record_value(record: RecordOut) -> Bytes {
    use base64::Engine as _;
    match record {
        RecordOut::Text { value, .. } => Bytes::from(value),
        // The suite writes ASCII, so this is unexpected; decode anyway so the checkers see
        // what the server holds.
        RecordOut::Base64 { value_b64, .. } => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(value_b64.as_bytes())
                .unwrap_or_else(|_| value_b64.into_bytes()),
        ),
    }
}
