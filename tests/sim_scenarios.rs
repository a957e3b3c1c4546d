//! Named scenarios, scripted on the simulated cluster: situations too precise for random
//! faults to hit often, played deliberately. Each runs over a few seeds, which vary every
//! timing that the script does not pin.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raftlog::node::NodeHandle;
use raftlog::raft::commit::CommitRule;
use raftlog::streams::{AppendCommand, CommandBatch, StreamCommand};
use raftlog::testing::check_cluster;
use raftlog::testing::sim::cluster::{leader_among, SimCluster, SimClusterConfig};
use raftlog::testing::sim::observer::NodeEvent;
use raftlog::testing::sim::{converge, eventually, in_simulation};
use raftlog::transport::SimFaults;
use raftlog::types::{LogId, NodeId};

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

fn one_record(value: &str) -> CommandBatch {
    let command = AppendCommand {
        stream: "s0".into(),
        records: vec![Bytes::from(value.to_string())],
        producer: None,
        expected_offset: None,
    };
    CommandBatch {
        commands: vec![StreamCommand::Append(command)],
    }
}

async fn leader(cluster: &Rc<RefCell<SimCluster>>, among: &[NodeId]) -> Option<NodeHandle> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        let nodes: Vec<NodeHandle> = cluster
            .borrow()
            .running()
            .into_iter()
            .filter(|n| among.contains(&n.id))
            .collect();
        if let Some(leader) = leader_among(nodes).await {
            return Some(leader);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Raft's Figure 8 on real nodes (five of them), with one entry per AppendEntries and one
/// in flight, so that a new leader's acknowledgements of an old-term entry arrive before
/// those of its own no-op. Returns every problem the run shows.
async fn figure_8(seed: u64, rule: CommitRule) -> Vec<String> {
    let mut config = SimClusterConfig::new(5, seed);
    config.node.overrides.commit_rule = rule;
    config.node.replication.entries_per_append_max = 1;
    config.node.replication.inflight_appends_max = 1;
    config.faults = SimFaults {
        delay_ms_min: 1,
        delay_ms_max: 3,
        drop_per_mille: 0,
        duplicate_per_mille: 0,
    };
    let cluster = Rc::new(RefCell::new(SimCluster::start(config)));
    let network = cluster.borrow().network().clone();
    let observer = cluster.borrow().observer().clone();
    let ids = cluster.borrow().ids();

    // (a) A leads, and only A and B receive the entry X.
    let Some(a) = leader(&cluster, &ids).await else {
        return vec!["setup: no first leader".into()];
    };
    // Everyone holds A's no-op first, so that the entry X below is the only difference.
    let a_last = a.last_log_id().await.expect("running");
    let everyone = cluster.borrow().running();
    if !eventually(STEP_TIMEOUT, || {
        let everyone = everyone.clone();
        async move {
            for node in everyone {
                if node.last_log_id().await != Some(a_last) {
                    return false;
                }
            }
            true
        }
    })
    .await
    {
        return vec!["setup: A's no-op did not reach everyone".into()];
    }
    let b = ids
        .iter()
        .copied()
        .find(|&id| id != a.id)
        .expect("five nodes");
    let rest: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&id| id != a.id && id != b)
        .collect();
    // Everyone else alone, so no one else can be elected meanwhile.
    let mut groups = vec![vec![a.id, b]];
    groups.extend(rest.iter().map(|&id| vec![id]));
    network.partition(&groups);
    let before = a.last_log_id().await.expect("running");
    actix_rt::spawn({
        let a = a.clone();
        async move { drop(a.submit(one_record("X")).await) }
    });
    let x = LogId::new(before.term, before.index.next());
    let b_handle = cluster.borrow().handle(b).expect("running");
    if !eventually(STEP_TIMEOUT, || {
        let b = b_handle.clone();
        async move { b.last_log_id().await == Some(x) }
    })
    .await
    {
        return vec!["setup: X did not reach B".into()];
    }
    cluster.borrow_mut().crash(a.id);

    // (b) The other three elect F, which is cut off the moment it wins: its no-op, at X's
    // index and of a later term, never leaves it.
    network.heal();
    network.partition(&[vec![b], rest.clone()]);
    let f_cell = Arc::new(Mutex::new(None));
    observer.set_hook(Some(Arc::new({
        let (network, rest, f_cell) = (network.clone(), rest.clone(), f_cell.clone());
        move |event| {
            if let NodeEvent::BecameLeader { node, .. } = event {
                let mut f = f_cell.lock().unwrap();
                if f.is_none() && rest.contains(&node) {
                    network.isolate(node);
                    *f = Some(node);
                }
            }
        }
    })));
    if !eventually(STEP_TIMEOUT, || {
        let f = *f_cell.lock().unwrap();
        let handle = f.and_then(|f| cluster.borrow().handle(f));
        async move {
            match handle {
                Some(h) => h
                    .last_log_id()
                    .await
                    .is_some_and(|l| l.index >= x.index && l.term > x.term),
                None => false,
            }
        }
    })
    .await
    {
        let f = *f_cell.lock().unwrap();
        let last = match f.and_then(|f| cluster.borrow().handle(f)) {
            Some(h) => h.last_log_id().await,
            None => None,
        };
        return vec![format!(
            "setup: no isolated leader F with its no-op at X's index (X {x}, F {f:?}, its last {last:?}, roles {:?})",
            observer.roles()
        )];
    }
    let f = f_cell.lock().unwrap().expect("F");
    let c_d: Vec<NodeId> = rest.iter().copied().filter(|&id| id != f).collect();

    // (c) A returns; only A and B hold X, so one of them wins and replicates X to C and D.
    // The moment any node applies X, the X holders are cut off from C, D and F.
    let fired = Arc::new(Mutex::new(false));
    observer.set_hook(Some(Arc::new({
        let (network, fired, rest) = (network.clone(), fired.clone(), rest.clone());
        let holders = vec![a.id, b];
        move |event| {
            if let NodeEvent::Applied { log_id, .. } = event {
                let mut fired = fired.lock().unwrap();
                if log_id == x && !*fired {
                    network.heal();
                    network.partition(&[holders.clone(), rest.clone()]);
                    *fired = true;
                }
            }
        }
    })));
    cluster.borrow_mut().restart(a.id);
    network.heal();
    network.isolate(f);
    if !eventually(STEP_TIMEOUT, || {
        let fired = *fired.lock().unwrap();
        async move { fired }
    })
    .await
    {
        return vec!["setup: X was never applied".into()];
    }
    observer.set_hook(None);

    // (d) F, C and D: F wins only if neither C nor D holds the new leader's no-op — which is
    // exactly the case where X was reported committed without it. F then overwrites X.
    let mut voters = c_d.clone();
    voters.push(f);
    let _ = leader(&cluster, &voters).await;
    network.heal();
    let mut problems = Vec::new();
    if let Err(problem) = converge(&cluster, Duration::from_secs(30)).await {
        problems.push(problem);
    }
    if let Err(violations) = check_cluster(&observer.roles(), &observer.applied_by_incarnation()) {
        problems.extend(violations.iter().map(|v| v.to_string()));
    }
    problems.extend(
        observer
            .fatal_errors()
            .into_iter()
            .map(|(n, m)| format!("{n}: {m}")),
    );
    cluster.borrow_mut().stop_all();
    problems
}

#[test]
fn figure_8_with_the_current_term_rule_is_safe() {
    for seed in 0..10 {
        let problems = in_simulation(figure_8(seed, CommitRule::CurrentTermOnly));
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
    }
}

/// The commit rule's teeth: counting replicas of the old-term entry lets X be applied as
/// committed and then overwritten, and the simulator's checks see it.
#[test]
fn figure_8_without_the_current_term_rule_loses_a_committed_entry() {
    let caught: Vec<u64> = (0..10)
        .filter(|&seed| {
            let problems = in_simulation(figure_8(seed, CommitRule::UnsafeAnyTerm));
            assert!(
                !problems.iter().any(|p| p.starts_with("setup")),
                "seed {seed}: {problems:#?}"
            );
            !problems.is_empty()
        })
        .collect();
    eprintln!("the broken commit rule was caught in seeds {caught:?}");
    assert!(
        !caught.is_empty(),
        "the broken commit rule went unnoticed in 10 seeds"
    );
}
