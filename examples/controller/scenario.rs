//! The example's story, with a check at every step: brokers start and register, the
//! controller assigns partitions, the controller's broker is killed, the next controller
//! takes over from exactly the state the first one left, fences the dead broker and moves
//! its partitions, the dead broker comes back and catches up, and all metadata converges.
//!
//! `main.rs` runs it and prints what happens; `tests/embedded_controller.rs` runs it in CI.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftlog::embed::{Consistency, Error};

use crate::broker::{Broker, BrokerSettings, Directory, Takeover};
use crate::metadata::{self, BrokerId, Command, Metadata};

/// How long any one step may take before the story fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the story with brokers `ids`, narrating each step through `say`.
pub async fn run(
    settings: &BrokerSettings,
    ids: &[BrokerId],
    say: &dyn Fn(String),
) -> Result<(), String> {
    let directory = Directory::default();
    let takeovers: Arc<Mutex<Vec<Takeover>>> = Arc::default();
    let mut brokers = BTreeMap::new();
    for &id in ids {
        let broker = Broker::start(id, settings, directory.clone(), takeovers.clone())
            .await
            .map_err(|e| format!("broker {id} did not start: {e}"))?;
        brokers.insert(id, broker);
    }
    say(format!(
        "started brokers {ids:?}, each embedding a quorum node"
    ));

    // 1. Everyone registers; the controller assigns every partition.
    let settled = |m: &Metadata| {
        m.live_brokers().len() == ids.len() && m.partitions.len() == settings.partitions.len()
    };
    let first = wait_for_controller(&takeovers, None).await?;
    let before = wait_for_metadata(&brokers[&first.controller], settled).await?;
    say(format!(
        "broker {} is the controller (term {}); it assigned:",
        first.controller, first.term
    ));
    for (partition, assignment) in &before.partitions {
        say(format!(
            "  {partition}: leader {} replicas {:?}",
            assignment.leader, assignment.replicas
        ));
    }

    // 2. Kill the controller's broker. The next controller must start from exactly the
    //    metadata the first one left: every broker, every assignment.
    let killed = first.controller;
    brokers
        .remove(&killed)
        .expect("the controller runs")
        .stop()
        .await;
    say(format!("killed broker {killed}, the controller"));
    let second = wait_for_controller(&takeovers, Some(killed)).await?;
    if second.metadata.partitions != before.partitions
        || second.metadata.brokers.keys().ne(before.brokers.keys())
        || second.metadata.applied < before.applied
    {
        return Err(format!(
            "broker {} took over from different metadata:\n before the kill: {before:?}\n at \
             the takeover: {:?}",
            second.controller, second.metadata
        ));
    }
    say(format!(
        "broker {} took over in term {} from the same {} assignments",
        second.controller,
        second.term,
        second.metadata.partitions.len()
    ));

    // 3. A decision fenced by the old term cannot land under the new controller.
    let stale = metadata::encode(&Command::Fence {
        broker: second.controller,
    });
    let new_leader = &brokers[&second.controller];
    match new_leader.log.propose_in_term(stale, first.term).await {
        Err(Error::NotLeader { term, .. }) if term == second.term => {
            say(format!(
                "a proposal fenced by term {} was refused",
                first.term
            ));
        }
        other => return Err(format!("a proposal fenced by the old term got {other:?}")),
    }

    // 4. The dead broker's session expires: it is fenced, and its partitions move.
    let moved = |m: &Metadata| {
        m.brokers.get(&killed).is_some_and(|b| b.fenced)
            && m.partitions.values().all(|a| a.leader != killed)
            && m.partitions.len() == settings.partitions.len()
    };
    let after = wait_for_metadata(new_leader, moved).await?;
    let moved_count = after
        .partitions
        .iter()
        .filter(|(name, a)| before.partitions[*name].leader != a.leader)
        .count();
    say(format!(
        "broker {killed} was fenced; {moved_count} partitions moved to live brokers"
    ));

    // 5. The dead broker comes back: it replays its log, catches up and registers again.
    let restarted = Broker::start(killed, settings, directory.clone(), takeovers.clone())
        .await
        .map_err(|e| format!("broker {killed} did not restart: {e}"))?;
    brokers.insert(killed, restarted);
    let back = |m: &Metadata| m.brokers.get(&killed).is_some_and(|b| !b.fenced);
    wait_for_metadata(&brokers[&second.controller], back).await?;
    say(format!("broker {killed} restarted and registered again"));

    // 6. Quiesce, then every node must hold the same metadata at the same index. A command
    //    sent just before quiescing may still commit after the first read, so compare only
    //    once every broker stands at one index.
    for broker in brokers.values() {
        broker.quiesce();
    }
    let states = poll("every broker to apply up to one index", || async {
        settled_states(&brokers, &brokers[&second.controller]).await
    })
    .await??;
    let (first_id, reference) = &states[0];
    for (id, state) in &states[1..] {
        if state != reference {
            return Err(format!(
                "brokers {first_id} and {id} diverged at log index {}:\n{reference:?}\n{state:?}",
                reference.applied
            ));
        }
    }
    say(format!(
        "all {} brokers hold the same metadata at log index {}",
        states.len(),
        reference.applied
    ));
    for broker in brokers.into_values() {
        broker.stop().await;
    }
    Ok(())
}

/// The next takeover by a broker other than `not`.
async fn wait_for_controller(
    takeovers: &Mutex<Vec<Takeover>>,
    not: Option<BrokerId>,
) -> Result<Takeover, String> {
    poll("a controller to take over", || async {
        let takeovers = takeovers.lock().unwrap();
        let last = takeovers.last().filter(|t| Some(t.controller) != not);
        last.cloned()
    })
    .await
}

/// Every broker's metadata, once all stand at the same log index; `None` while they do not
/// yet. A broker whose linearizable read comes back below the controller's earlier one is
/// an error: the reads would not be linearizable.
async fn settled_states(
    brokers: &BTreeMap<BrokerId, Broker>,
    controller: &Broker,
) -> Option<Result<Vec<(BrokerId, Metadata)>, String>> {
    let last = controller
        .log
        .linearize(Consistency::Linearizable)
        .await
        .ok()?;
    let mut states = Vec::new();
    for broker in brokers.values() {
        // A node that just restarted may not know the leader yet: its read fails until one
        // confirms, and the poll asks again.
        let applied = broker.log.linearize(Consistency::Linearizable).await.ok()?;
        if applied < last {
            let id = broker.id;
            return Some(Err(format!("broker {id} read at {applied}, after {last}")));
        }
        states.push((broker.id, broker.metadata.lock().unwrap().clone()));
    }
    let first = states[0].1.applied;
    states
        .iter()
        .all(|(_, s)| s.applied == first)
        .then_some(Ok(states))
}

/// The metadata on `broker`, read linearizably, once `done` holds for it.
async fn wait_for_metadata(
    broker: &Broker,
    done: impl Fn(&Metadata) -> bool,
) -> Result<Metadata, String> {
    poll("the metadata to settle", || async {
        broker.log.linearize(Consistency::Linearizable).await.ok()?;
        let metadata = broker.metadata.lock().unwrap().clone();
        done(&metadata).then_some(metadata)
    })
    .await
}

/// Polls `check` until it yields a value, for at most [`STEP_TIMEOUT`].
async fn poll<T, F: Future<Output = Option<T>>>(
    what: &str,
    check: impl Fn() -> F,
) -> Result<T, String> {
    within(async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| format!("timed out waiting for {what}"))
}

async fn within<T>(work: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(STEP_TIMEOUT, work)
        .await
        .map_err(|_| format!("a step took over {STEP_TIMEOUT:?}"))
}
