//! Term runs: the term of every entry in memory, in one element per term change.
//!
//! Terms in a Raft log never decrease (Raft §5.3), and a term usually covers many entries, so
//! `(first_index, term)` per run is tiny and answers `term_at` with a binary search.

/// The runs, ordered by `first_index` and by strictly increasing `term`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TermRuns {
    runs: Vec<(u64, u64)>,
}

impl TermRuns {
    /// Records that entry `index` has `term`; `index` follows the previous one.
    pub(crate) fn push(&mut self, index: u64, term: u64) {
        match self.runs.last() {
            Some(&(_, last_term)) if last_term == term => {}
            Some(&(first, last_term)) => {
                assert!(
                    term > last_term && index > first,
                    "term {term} at {index} after {last_term}"
                );
                self.runs.push((index, term));
            }
            None => self.runs.push((index, term)),
        }
    }

    /// The term of `index`, given that the log holds `index` (the caller checks bounds).
    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        let runs_before = self.runs.partition_point(|&(first, _)| first <= index);
        runs_before.checked_sub(1).map(|i| self.runs[i].1)
    }

    /// The first entry held with `term`, if any. Terms never decrease, so each term is at most
    /// one run, and the runs are sorted by term too: a binary search.
    pub(crate) fn first_index_of(&self, term: u64) -> Option<u64> {
        let run = self.runs.binary_search_by_key(&term, |&(_, t)| t).ok()?;
        Some(self.runs[run].0)
    }

    /// The term of the newest entry, or 0 for an empty log.
    pub(crate) fn last_term(&self) -> u64 {
        self.runs.last().map_or(0, |&(_, term)| term)
    }

    /// Forgets entries `index..`.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        let keep = self.runs.partition_point(|&(first, _)| first < index);
        self.runs.truncate(keep);
    }

    /// Forgets entries below `first_index`, keeping the run that covers it.
    pub(crate) fn compact_below(&mut self, first_index: u64) {
        let covering = self
            .runs
            .partition_point(|&(first, _)| first <= first_index);
        if covering > 1 {
            self.runs.drain(..covering - 1);
        }
        if let Some(run) = self.runs.first_mut() {
            run.0 = run.0.max(first_index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_answer_like_a_per_entry_table() {
        let terms = [1, 1, 1, 2, 2, 5, 5, 5, 5, 6];
        let mut runs = TermRuns::default();
        for (i, &term) in terms.iter().enumerate() {
            runs.push(i as u64 + 10, term);
        }
        for (i, &term) in terms.iter().enumerate() {
            assert_eq!(runs.term_at(i as u64 + 10), Some(term));
        }
        assert_eq!(runs.term_at(9), None);
        let firsts = [1, 2, 5, 6].map(|term| runs.first_index_of(term));
        assert_eq!(firsts, [Some(10), Some(13), Some(15), Some(19)]);
        assert_eq!(
            (runs.first_index_of(3), runs.first_index_of(7)),
            (None, None)
        );
        runs.truncate_from(15);
        assert_eq!(runs.last_term(), 2);
        runs.compact_below(14);
        assert_eq!(runs.term_at(14), Some(2));
        assert_eq!(runs.runs, vec![(14, 2)]);
        runs.truncate_from(14);
        assert_eq!(runs.last_term(), 0);
    }
}
