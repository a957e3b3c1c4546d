//! Issue 5's integration proof: SIGSTOP the leader past its lease, let the others elect a
//! new leader and acknowledge writes, then ask the old leader for `lease` and
//! `linearizable` reads — some sent while it is still stopped (the test resumes it only once
//! they are on the wire: they wait in its sockets and are among the first things it handles
//! when it wakes up, before it can hear of the new term), some right after SIGCONT. None may
//! miss a write acknowledged before the read was sent. `stale` reads go along with them: they
//! must miss those writes at least once, which shows the old leader really was behind.
//! Background clients run throughout, and the whole history is checked too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raftlog::http::wire::RoleJson;
use raftlog::testing::{check_history, AppendCall, ClientId, Consistency, Outcome, ProducerSeq};
use raftlog_integration::client::{
    append_recorded, level_name, read_recorded, run_client, ReadAt, Recording, Workload,
};
use raftlog_integration::cluster::{Cluster, ClusterSpec};
use raftlog_integration::run::soak;
use raftlog_integration::view::{block_on, ClusterView};

const STREAM: &str = "pause";
/// Reads sent to the old leader while it is stopped, and again right after SIGCONT: a
/// third each at `lease`, `linearizable` and `stale`.
const READS_PER_BATCH: usize = 12;

/// What the old leader did with the reads sent to it, by level.
#[derive(Debug, Default)]
struct Tally {
    rounds: usize,
    answered: BTreeMap<&'static str, usize>,
    refused: BTreeMap<&'static str, usize>,
    /// `stale` reads that missed a write acknowledged before they were sent: the old
    /// leader really was behind, so the fresh `lease` and `linearizable` answers mean
    /// something.
    stale_behind: usize,
    /// Rounds in which not every queued read was on the wire before SIGCONT (they were
    /// then still sent after the acknowledgements, so they are checked all the same).
    queue_incomplete: usize,
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn paused_leader_serves_no_stale_read_3() {
    pause_test("pause_3", 3);
}

#[test]
#[ignore = "needs the release binary (and root for namespaces): scripts/test-integration"]
fn paused_leader_serves_no_stale_read_5() {
    pause_test("pause_5", 5);
}

fn pause_test(name: &str, nodes: u64) {
    let rounds = if soak() { 20 } else { 3 };
    let mut cluster = Cluster::start(ClusterSpec::new(name, nodes)).expect("cluster");
    let view = cluster.view();
    let recording = Recording::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Background load on other streams until the rounds are over.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let (view, recording, stop) = (view.clone(), recording.clone(), stop.clone());
        std::thread::spawn(move || background_load(view, recording, stop))
    };

    let mut tally = Tally::default();
    let mut problems = Vec::new();
    let mut seq = 0u64;
    for round in 0..rounds {
        let result = runtime.block_on(pause_round(
            &mut cluster,
            &view,
            &recording,
            &mut seq,
            &mut tally,
        ));
        if let Err(problem) = result {
            problems.push(format!("round {round}: {problem}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    background.join().expect("background clients");
    cluster.heal().expect("heal");
    let streams = vec![STREAM.to_string(), "s0".to_string(), "s1".to_string()];
    let final_log = runtime
        .block_on(view.converge(&streams, Duration::from_secs(30)))
        .expect("convergence");
    let history = recording.recorder.finish();
    match check_history(&history, &final_log) {
        Ok(report) => eprintln!("{name}: whole history: {report}"),
        Err(violations) => problems.extend(violations.iter().map(|v| v.to_string())),
    }
    // A test where the old leader refused every read, or was never behind, would show
    // nothing: its stale-level answers prove it held an old state when the reads arrived.
    for level in ["lease", "linearizable"] {
        if tally.answered.get(level).copied().unwrap_or(0) == 0 {
            problems.push(format!(
                "the old leader answered no {level} read after a pause: nothing was shown"
            ));
        }
    }
    if tally.stale_behind == 0 {
        problems.push(
            "no stale-level read at the old leader missed an acknowledged write: it was never \
             behind, so its fresh answers show nothing"
                .into(),
        );
    }
    eprintln!(
        "{name}: {} rounds; reads at the old leader answered {:?} (every lease and \
         linearizable answer held every write acknowledged before it was sent), refused \
         {:?}; {} stale-level answers missed such a write (the old leader was behind); {} \
         rounds resumed before every queued read was sent",
        tally.rounds, tally.answered, tally.refused, tally.stale_behind, tally.queue_incomplete
    );
    for (why, count) in recording.reasons() {
        eprintln!("  {count:>6} × {why}");
    }
    if problems.is_empty() {
        cluster.mark_passed();
    } else {
        let path = cluster.dir.join("history.txt");
        let _ = std::fs::write(&path, history.to_string());
        panic!(
            "{name}: stale reads after a pause:\n{}\nhistory: {}",
            problems.join("\n"),
            path.display()
        );
    }
}

/// Three recording clients on streams `s0` and `s1` until `stop`.
fn background_load(view: ClusterView, recording: Recording, stop: Arc<AtomicBool>) {
    let workload = Workload {
        clients: 3,
        streams: 2,
        ..Workload::default()
    };
    block_on(async {
        let clients = (0..workload.clients).map(|c| {
            run_client(
                ClientId(c),
                c,
                workload.clone(),
                view.clone(),
                recording.clone(),
                tokio::time::Instant::now() + Duration::from_secs(3_600),
            )
        });
        let stopped = async {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // The clients run until the stop flag: whichever finishes first ends the load.
        tokio::select! {
            _ = futures::future::join_all(clients) => {}
            () = stopped => {}
        }
    });
}

async fn pause_round(
    cluster: &mut Cluster,
    view: &ClusterView,
    recording: &Recording,
    seq: &mut u64,
    tally: &mut Tally,
) -> Result<(), String> {
    // Start from a settled cluster: the previous round's old leader has heard of the new
    // term and follows.
    let old = view
        .wait_settled(Duration::from_secs(10))
        .await
        .ok_or("the cluster did not settle on one leader within 10 s")?;
    let old_term = view
        .status(old)
        .await
        .ok_or("the leader does not answer")?
        .term;
    // One write the old leader acknowledges, so it has an own-term commit and a fresh lease.
    append_until_acked(view, recording, old, seq).await?;
    cluster.pause(old);

    // The others elect a new leader (the old one's lease runs out first: followers withhold
    // votes while they hear from a live leader) and it acknowledges writes.
    let new = wait_new_leader(view, old, old_term).await?;
    let mut acked = Vec::new();
    for _ in 0..3 {
        acked.push(append_until_acked(view, recording, new, seq).await?);
    }

    // Reads at the stopped old leader, sent after those acks: they wait in its sockets and
    // are among the first things it handles when it wakes up, before it can hear of the
    // new term. SIGCONT once all are on the wire, then more reads.
    let sent = AtomicUsize::new(0);
    let queued = reads_at(view, recording, old, 100, Some(&sent));
    let woken = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sent.load(Ordering::Relaxed) < READS_PER_BATCH {
            if tokio::time::Instant::now() > deadline {
                tally.queue_incomplete += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.resume(old);
        reads_at(view, recording, old, 200, None).await
    };
    let (queued, woken) = tokio::join!(queued, woken);
    tally.rounds += 1;
    for (consistency, outcome) in queued.into_iter().chain(woken) {
        let level = level_name(consistency);
        let Outcome::Read {
            records,
            end_offset,
        } = outcome
        else {
            *tally.refused.entry(level).or_default() += 1;
            continue;
        };
        *tally.answered.entry(level).or_default() += 1;
        let values: Vec<&Bytes> = records.iter().map(|(_, v)| v).collect();
        let missing = acked.iter().find(|v| !values.contains(v));
        match (missing, consistency) {
            (None, _) => {}
            (Some(_), Consistency::Stale) => tally.stale_behind += 1,
            (Some(missing), _) => {
                return Err(format!(
                    "a {level} read at the resumed old leader n{old} (end {end_offset}) misses \
                     {missing:?}, acknowledged by the new leader n{new} before the read was sent"
                ));
            }
        }
    }
    Ok(())
}

/// [`READS_PER_BATCH`] reads at `node`, cycling through `lease`, `linearizable` and
/// `stale`, all at once; each counted in `sent` once it is on the wire.
async fn reads_at(
    view: &ClusterView,
    recording: &Recording,
    node: u64,
    client_base: u64,
    sent: Option<&AtomicUsize>,
) -> Vec<(Consistency, Outcome)> {
    let reads = (0..READS_PER_BATCH).map(|i| async move {
        let consistency = [
            Consistency::Lease,
            Consistency::Linearizable,
            Consistency::Stale,
        ][i % 3];
        let read = ReadAt {
            sent,
            ..ReadAt::new(node, STREAM, consistency, Duration::from_secs(5))
        };
        let client = ClientId(client_base + i as u64);
        let outcome = read_recorded(view, recording, client, read).await;
        (consistency, outcome)
    });
    futures::future::join_all(reads).await
}

async fn wait_new_leader(view: &ClusterView, old: u64, old_term: u64) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        for id in view.ids().into_iter().filter(|&id| id != old) {
            if let Some(status) = view.status(id).await {
                if status.role == RoleJson::Leader && status.term > old_term {
                    return Ok(id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no new leader within 10 s of pausing n{old}"))
}

/// Appends the next value of the pause stream at `node` until acknowledged (same producer
/// seq on every attempt); returns the value.
async fn append_until_acked(
    view: &ClusterView,
    recording: &Recording,
    node: u64,
    seq: &mut u64,
) -> Result<Bytes, String> {
    let client = ClientId(50);
    let value = Bytes::from(format!("pause-{seq}"));
    let append = AppendCall {
        stream: STREAM.to_string(),
        values: vec![value.clone()],
        producer: Some(ProducerSeq {
            id: "pause-writer".into(),
            seq: *seq,
        }),
        expected_offset: None,
    };
    *seq += 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let timeout = Duration::from_secs(2);
        let (outcome, _) = append_recorded(view, recording, client, node, &append, timeout).await;
        if let Outcome::Appended { .. } = outcome {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("n{node} acknowledged no write within 10 s"))
}
