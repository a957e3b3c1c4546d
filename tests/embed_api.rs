//! The embedding API on a real 3-node cluster in one process: typed leader errors, fenced
//! appends, leadership transfer and resignation, and subscriptions on followers.

use std::time::Duration;

use futures::StreamExt;
use raftlog::embed::{Append, ClusterConfig, Error, LeaderView, Raftlog, RaftlogNode};
use raftlog::types::{NodeId, Offset, Term};

struct Cluster {
    nodes: Vec<RaftlogNode>,
    data: std::path::PathBuf,
}

impl Cluster {
    async fn start(name: &str) -> Cluster {
        let cluster = ClusterConfig::on_free_loopback_ports(name, 3);
        let data = std::env::temp_dir().join(format!("raftlog-{name}-{}", std::process::id()));
        let mut nodes = Vec::new();
        for id in 1..=3 {
            let config = cluster.node(id, data.join(format!("n{id}"))).unwrap();
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
