//! The failover measurement, etcd's method: one client writes sequentially (each append
//! waits for its answer) with a 200 ms deadline, moving to the next endpoint after any
//! failure; the leader is killed with SIGKILL, and the *gap* is the time from the last write
//! acknowledged before the kill to the first acknowledged after it. The killed node is then
//! restarted, and *back in the quorum* is the time from its restart until the leader reports
//! its match index at the commit index the leader had when it restarted.
//!
//! The writes are recorded like any other client's, and the history is checked at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftlog::testing::{AppendCall, Call, ClientId, Outcome, ProducerSeq};

use crate::client::{append_body, append_outcome, Recording};
use crate::cluster::Cluster;
use crate::http::request;
use crate::view::{block_on, ClusterView};

/// The stream the writer appends to.
pub const STREAM: &str = "failover";

/// One kill.
#[derive(Clone, Debug)]
pub struct Sample {
    pub killed: u64,
    /// Last acknowledgement of a write sent before the kill → first acknowledgement of a
    /// write sent after it.
    pub gap: Duration,
    /// The kill → the first acknowledged write sent after it.
    pub kill_to_ack: Duration,
    /// Restart → the node answers `/healthz`.
    pub restart_to_healthy: Duration,
    /// Restart → the leader reports its match index at the commit index the leader had
    /// at the restart.
    pub restart_to_quorum: Duration,
    /// How many terms the failover took (1: one election; more: split votes or
    /// pre-vote rounds that failed).
    pub terms: u64,
}

/// What the writer saw: for every acknowledged write, when it was sent and when its
/// acknowledgement arrived.
#[derive(Debug, Default)]
struct Acks {
    at: Vec<(Instant, Instant)>,
}

/// Measures `kills` leader failovers on `cluster`, writing with a `client_timeout`
/// deadline. Returns the samples and the writer's recording (for the history check).
pub fn measure(
    cluster: &mut Cluster,
    kills: usize,
    client_timeout: Duration,
) -> Result<(Vec<Sample>, Recording), String> {
    let view = cluster.view();
    let recording = Recording::new();
    let acks = Arc::new(Mutex::new(Acks::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (view, recording, acks, stop) =
            (view.clone(), recording.clone(), acks.clone(), stop.clone());
        std::thread::Builder::new()
            .name("failover-writer".into())
            .spawn(move || {
                block_on(write_sequentially(
                    view,
                    recording,
                    acks,
                    stop,
                    client_timeout,
                ))
            })
            .map_err(|e| e.to_string())?
    };
    let result = (0..kills)
        .map(|round| one_failover(cluster, &view, &acks, round))
        .collect::<Result<Vec<Sample>, String>>();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    result.map(|samples| (samples, recording))
}

fn ack_times(acks: &Mutex<Acks>) -> Vec<(Instant, Instant)> {
    acks.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .at
        .clone()
}

fn one_failover(
    cluster: &mut Cluster,
    view: &ClusterView,
    acks: &Mutex<Acks>,
    round: usize,
) -> Result<Sample, String> {
    // Steady state first: writes flowing for a while, a leader everyone follows.
    let steady = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        std::thread::sleep(Duration::from_millis(300));
        let recent = ack_times(acks)
            .iter()
            .rev()
            .take_while(|(_, done)| done.elapsed() < Duration::from_millis(300))
            .count();
        if let Some(leader) = block_on(view.leader()).filter(|_| recent >= 3) {
            break leader;
        }
        if Instant::now() > steady {
            return Err(format!("round {round}: no steady writes within 30 s"));
        }
    };
    let (leader, old_term) = leader;
    let killed_at = Instant::now();
    cluster.kill9(leader);
    let deadline = killed_at + Duration::from_secs(15);
    // "After" is the first write *sent* after the kill to be acknowledged: an answer the old
    // leader put on the wire just before it died may still arrive after the kill, and that
    // write belongs to "before".
    let after = loop {
        let first = ack_times(acks)
            .into_iter()
            .find(|&(sent, _)| sent > killed_at);
        if let Some((_, done)) = first {
            break done;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "round {round}: no write acknowledged within 15 s of killing leader n{leader}"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let before = ack_times(acks)
        .into_iter()
        .filter(|&(sent, _)| sent <= killed_at)
        .map(|(_, done)| done)
        .max()
        .ok_or("no write was acknowledged before the kill")?;
    // The failover is over (a write was acknowledged): restart the killed node now, and
    // measure how long it takes to catch up with the leader that acknowledged it.
    let new_leader = block_on(view.wait_leader(Duration::from_secs(5)))
        .ok_or(format!("round {round}: no leader after the failover"))?;
    let (commit_at_restart, new_term) = block_on(view.status(new_leader))
        .map(|s| (s.commit_index, s.term))
        .ok_or(format!(
            "round {round}: the new leader n{new_leader} does not answer"
        ))?;
    let restarted_at = Instant::now();
    cluster.restart(leader)?;
    let healthy_at = Instant::now();
    let in_quorum_at = loop {
        let caught_up = block_on(view.status(new_leader)).is_some_and(|s| {
            s.members
                .iter()
                .any(|m| m.id == leader && m.match_index.is_some_and(|i| i >= commit_at_restart))
        });
        if caught_up {
            break Instant::now();
        }
        if restarted_at.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "round {round}: n{leader} not back in the quorum within 30 s of its restart"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let sample = Sample {
        killed: leader,
        gap: after - before,
        kill_to_ack: after - killed_at,
        restart_to_healthy: healthy_at - restarted_at,
        restart_to_quorum: in_quorum_at - restarted_at,
        terms: new_term.saturating_sub(old_term),
    };
    eprintln!(
        "failover {round:>2}: killed n{leader}, gap {:>4} ms (kill → ack {:>4} ms), n{leader} \
         healthy after {:>4} ms, back in the quorum after {:>4} ms; term +{}",
        sample.gap.as_millis(),
        sample.kill_to_ack.as_millis(),
        sample.restart_to_healthy.as_millis(),
        sample.restart_to_quorum.as_millis(),
        sample.terms
    );
    Ok(sample)
}

/// The sequential writer: one append at a time to [`STREAM`], each recorded; on any
/// failure the same append (same producer seq and values) goes to the next endpoint.
async fn write_sequentially(
    view: ClusterView,
    recording: Recording,
    acks: Arc<Mutex<Acks>>,
    stop: Arc<AtomicBool>,
    timeout: Duration,
) {
    let client = ClientId(0);
    let ids = view.ids();
    let mut endpoint = 0usize;
    let mut seq = 0u64;
    let path = format!("/v1/streams/{STREAM}/records");
    while !stop.load(Ordering::Relaxed) {
        let values = vec![Bytes::from(format!("w-{seq}"))];
        let producer = ProducerSeq {
            id: "failover-writer".into(),
            seq,
        };
        let body = append_body(&values, Some(&producer), None);
        let call = Call::Append(AppendCall {
            stream: STREAM.to_string(),
            values,
            producer: Some(producer),
            expected_offset: None,
        });
        let started = Instant::now();
        let op = recording.recorder.invoke(client, call, recording.now());
        let node = ids[endpoint % ids.len()];
        let result = request(
            view.endpoint(node),
            "POST",
            &path,
            Some(("application/json", &body)),
            timeout,
        )
        .await;
        let outcome = append_outcome(&result);
        let done = Instant::now();
        recording
            .recorder
            .complete(op, outcome.clone(), recording.now());
        if let Outcome::Appended { .. } = outcome {
            acks.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .at
                .push((started, done));
            seq += 1;
        } else {
            endpoint += 1;
            // A refused connection fails at once; don't spin.
            if started.elapsed() < Duration::from_millis(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// `q`-quantile (0..=1) of `values`, nearest rank.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The samples as a Markdown table (one row per measure: median, p90, max).
pub fn table(samples: &[Sample]) -> String {
    let rows: [(&str, Vec<Duration>); 4] = [
        (
            "write gap (last ack before → first ack after)",
            samples.iter().map(|s| s.gap).collect(),
        ),
        (
            "kill → first ack",
            samples.iter().map(|s| s.kill_to_ack).collect(),
        ),
        (
            "restart → /healthz",
            samples.iter().map(|s| s.restart_to_healthy).collect(),
        ),
        (
            "restart → back in the quorum",
            samples.iter().map(|s| s.restart_to_quorum).collect(),
        ),
    ];
    let mut out = format!(
        "| measure ({} kills) | median | p90 | max |\n|---|---:|---:|---:|\n",
        samples.len()
    );
    for (name, values) in rows {
        out.push_str(&format!(
            "| {name} | {} ms | {} ms | {} ms |\n",
            quantile(&values, 0.5).as_millis(),
            quantile(&values, 0.9).as_millis(),
            quantile(&values, 1.0).as_millis()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        let values = ms(&[5, 1, 4, 2, 3]);
        assert_eq!(quantile(&values, 0.5), Duration::from_millis(3));
        assert_eq!(quantile(&values, 1.0), Duration::from_millis(5));
        assert_eq!(quantile(&ms(&[1, 2, 3, 4]), 0.5), Duration::from_millis(2));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
