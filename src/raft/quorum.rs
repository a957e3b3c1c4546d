//! Majority arithmetic: how many votes win, and which log index a majority holds.

use crate::types::LogIndex;

/// The number of voters that make a majority of `voter_count`.
pub fn majority(voter_count: usize) -> usize {
    assert!(voter_count > 0, "a cluster has at least one voter");
    voter_count / 2 + 1
}

/// The highest index that at least a majority of `matched` (one entry per voter) hold.
///
/// Sorting descending and taking the majority-th value is the whole rule: that many voters
/// hold at least that index, and no higher index is held by as many.
pub fn majority_index(matched: &mut [LogIndex]) -> LogIndex {
    let quorum = majority(matched.len());
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[quorum - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    #[test]
    fn majority_of_small_clusters() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn majority_index_picks_what_a_majority_holds() {
        let mut m = [LogIndex(5), LogIndex(9), LogIndex(7)];
        assert_eq!(majority_index(&mut m), LogIndex(7));
        let mut m = [
            LogIndex(1),
            LogIndex(9),
            LogIndex(2),
            LogIndex(8),
            LogIndex(3),
        ];
        assert_eq!(majority_index(&mut m), LogIndex(3));
    }

    /// The naive definition: the largest candidate index held by at least a majority.
    fn naive(matched: &[LogIndex]) -> LogIndex {
        let quorum = majority(matched.len());
        let mut best = LogIndex(0);
        for &candidate in matched {
            let holders = matched.iter().filter(|&&m| m >= candidate).count();
            if holders >= quorum && candidate > best {
                best = candidate;
            }
        }
        best
    }

    #[test]
    fn majority_index_agrees_with_the_naive_definition() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let voters = rng.gen_range(1..=7);
            let matched: Vec<LogIndex> = (0..voters)
                .map(|_| LogIndex(rng.gen_range(0..20)))
                .collect();
            let mut sorted = matched.clone();
            assert_eq!(majority_index(&mut sorted), naive(&matched), "{matched:?}");
        }
    }
}
