//! The embedding API on a real 3-node cluster in one process: typed leader errors, fenced
//! appends, leadership transfer and resignation, and subscriptions on followers.

use std::time::Duration;

use futures::StreamExt;
use raftlog::config::NodeFileConfig;
use raftlog::embed::{Append, ClusterConfig, Error, LeaderView, Raftlog, RaftlogNode};
use raftlog::types::{NodeId, Offset, Term};

struct Cluster {
    nodes: Vec<RaftlogNode>,
    data: std::path::PathBuf,
}

impl Cluster {
    async fn start(name: &str) -> Cluster {
        Cluster::start_with(name, |_| {}).await
    }

    /// Three nodes with the default configuration, changed by `tune`.
    async fn start_with(name: &str, tune: impl Fn(&mut NodeFileConfig)) -> Cluster {
        let cluster = ClusterConfig::on_free_loopback_ports(name, 3);
        let data = std::env::temp_dir().join(format!("raftlog-{name}-{}", std::process::id()));
        let mut nodes = Vec::new();
        for id in 1..=3 {
            let mut config = cluster.node(id, data.join(format!("n{id}"))).unwrap();
            tune(&mut config);
            nodes.push(RaftlogNode::builder(config).start().await.unwrap());
        }
        Cluster { nodes, data }
    }

    fn log(&self, id: NodeId) -> Raftlog {
        self.nodes[id.0 as usize - 1].handle()
    }

    /// The leader of a term after `after` once every node names the same one (and has
    /// caught up with it).
    async fn agreed_leader(&self, after: Term) -> LeaderView {
        let wait = async {
            loop {
                let views: Vec<LeaderView> = self
                    .nodes
                    .iter()
                    .map(|n| *n.handle().leader_changes().borrow())
                    .collect();
                if views[0].leader.is_some()
                    && views[0].term > after
                    && views.iter().all(|v| *v == views[0])
                {
                    return views[0];
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("a leader everyone names")
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// With one proposed batch allowed in flight, appends that arrive while it commits gather and
/// go as soon as it is answered. (Were the answer not to release them, they would wait for
/// ever: the timeout below fails the test.)
#[tokio::test]
async fn appends_held_behind_a_batch_in_flight_go_once_it_is_answered() {
    let cluster = Cluster::start_with("embed-in-flight", |config| {
        config.batching.proposals_in_flight_max = 1;
    })
    .await;
    let leader = cluster.agreed_leader(Term(0)).await.leader.unwrap();
    let writers = (0..16).map(|writer| {
        let log = cluster.log(leader);
        async move {
            let mut answers = Vec::new();
            for i in 0..20 {
                answers.push(log.append("s", [format!("{writer}-{i}")]).await.unwrap());
            }
            answers
        }
    });
    let every_writer = futures::future::join_all(writers);
    let answers = tokio::time::timeout(Duration::from_secs(30), every_writer)
        .await
        .expect("every append is answered");

    let mut offsets = Vec::new();
    let mut entries = std::collections::BTreeSet::new();
    for writer in &answers {
        // One writer's appends land in its order.
        assert!(writer
            .windows(2)
            .all(|w| w[0].first_offset < w[1].first_offset));
        for appended in writer {
            assert_eq!(appended.first_offset, appended.last_offset);
            offsets.push(appended.first_offset.0);
            entries.insert(appended.log_id.index);
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..320).collect::<Vec<u64>>(), "dense offsets");
    assert!(
        entries.len() < 320,
        "appends share entries: {}",
        entries.len()
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn leadership_moves_on_request_and_fenced_writes_follow_the_term() {
    let cluster = Cluster::start("embed-transfer").await;
    let first = cluster.agreed_leader(Term(0)).await;
    let leader = first.leader.unwrap();
    let follower = NodeId(leader.0 % 3 + 1);

    // A follower refuses writes with a typed error naming the leader.
    match cluster.log(follower).append("s", ["x"]).await {
        Err(Error::NotLeader { leader: hint, term }) => {
            assert_eq!((hint, term), (Some(leader), first.term))
        }
        other => panic!("a follower's append got {other:?}"),
    }
    // Transfers to a non-member or from a non-leader are refused.
    let to_stranger = cluster.log(leader).transfer_leadership(NodeId(9)).await;
    assert_eq!(to_stranger, Err(Error::NotAVoter(NodeId(9))));
    let from_follower = cluster.log(follower).transfer_leadership(leader).await;
    assert!(
        matches!(from_follower, Err(Error::NotLeader { .. })),
        "{from_follower:?}"
    );

    let appended = cluster.log(leader).append("s", ["before"]).await.unwrap();
    let transfer = cluster.log(leader).transfer_leadership(follower).await;
    transfer.unwrap();
    let second = cluster.agreed_leader(first.term).await;
    assert_eq!(second.leader, Some(follower));
    assert!(second.term > first.term);

    // The old term's fence now refuses writes on both the old and the new leader.
    for id in [leader, follower] {
        let fenced = Append::new("s", ["late"]).in_term(first.term);
        let result = cluster.log(id).append_with(fenced).await;
        assert!(
            matches!(result, Err(Error::NotLeader { .. })),
            "node {id}: {result:?}"
        );
    }
    let fenced = Append::new("s", ["now"]).in_term(second.term);
    let now = cluster.log(follower).append_with(fenced).await.unwrap();
    assert_eq!(now.first_offset, appended.last_offset.next());

    // A resigning leader steps down; another takes over.
    cluster.log(follower).resign();
    let third = cluster.agreed_leader(second.term).await;
    assert_ne!(third.leader, Some(follower));
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_follower_subscription_sees_every_committed_record_in_order() {
    let cluster = Cluster::start("embed-subscribe").await;
    let leader = cluster.agreed_leader(Term(0)).await.leader.unwrap();
    let follower = NodeId(leader.0 % 3 + 1);
    let mut records = cluster.log(follower).subscribe("events", Offset(0));
    for n in 0..50 {
        cluster
            .log(leader)
            .append("events", [format!("r{n}")])
            .await
            .unwrap();
    }
    for n in 0..50u64 {
        let record = records
            .next()
            .await
            .expect("the subscription goes on")
            .unwrap();
        assert_eq!(record.offset, Offset(n));
        assert_eq!(record.value, format!("r{n}"));
    }
    cluster.shutdown().await;
}
