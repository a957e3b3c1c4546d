//! The leader's pure commit computation, per acknowledgement.
//!
//! - `commit/on_match/N`: `CommitTracker::on_match` for a cluster of N voters in its steady
//!   state: this term's no-op is known, and the voters acknowledge in turn (the leader's own
//!   WAL first, then each follower), each round 16 entries further than the last. Every call
//!   moves a match forward, and one call per round advances the commit index. One iteration
//!   is one call, so the time is the cost of one match update.
//! - `commit/majority_index/N`: `quorum::majority_index` alone over N matches, which
//!   `on_match` calls (after collecting the matches into a `Vec`) on every update.
//!
//! Run: `cargo bench --bench commit` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quick run, or a filter such as `-- on_match`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raftlog::raft::commit::{CommitRule, CommitTracker};
use raftlog::raft::quorum::majority_index;
use raftlog::types::{LogIndex, NodeId, Term};

mod support;

const VOTER_COUNTS: [u64; 2] = [3, 5];
/// How many entries each round of acknowledgements covers.
const ROUND_ENTRIES: u64 = 16;

fn on_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit/on_match");
    group.throughput(Throughput::Elements(1));
    for voter_count in VOTER_COUNTS {
        let voters: Vec<NodeId> = (1..=voter_count).map(NodeId).collect();
        let mut tracker =
            CommitTracker::new(Term(2), voters.clone(), LogIndex(10), CommitRule::default());
        assert_eq!(tracker.on_term_first_index(LogIndex(11)), None);
        let mut round_end = LogIndex(11);
        let mut turn = 0;
        group.bench_function(BenchmarkId::from_parameter(voter_count), |b| {
            b.iter(|| {
                if turn == 0 {
                    round_end = round_end + ROUND_ENTRIES;
                }
                let committed = tracker.on_match(voters[turn], black_box(round_end));
                turn = (turn + 1) % voters.len();
                black_box(committed)
            })
        });
        // Every full round committed its entries: the steady state held throughout.
        assert!(tracker.committed() > LogIndex(11));
    }
    group.finish();
}

fn majority(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit/majority_index");
    group.throughput(Throughput::Elements(1));
    for voter_count in VOTER_COUNTS {
        // Matches as they stand mid-round: some voters have acknowledged the newest entries.
        let matched: Vec<LogIndex> = (0..voter_count).map(|v| LogIndex(1000 + v * 7)).collect();
        group.bench_function(BenchmarkId::from_parameter(voter_count), |b| {
            let mut scratch = matched.clone();
            b.iter(|| {
                scratch.copy_from_slice(&matched);
                majority_index(black_box(&mut scratch))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::quick();
    targets = on_match, majority
}
criterion_main!(benches);
