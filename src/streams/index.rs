//! The stream index: for each stream, which log entries hold which of its offsets.
//!
//! Records are not kept in memory; they stay in the Raft log (the WAL), inside the entry
//! that carried them. Applied appends leave [`Run`]s per stream: "offsets
//! `first_offset..first_offset+count` are the records of commands
//! `command..command+commands` of entry `log_index`, in order". Consecutive commands of one
//! entry that all append to the same stream — many small writes to one stream, batched into
//! one entry — share one run, so the index grows by one run per stream per entry, not per
//! write. A read binary-searches the runs and fetches the entries they name.
//!
//! Invariants of one stream, asserted on every append:
//! `start_offset ≤ end_offset`; the runs are contiguous, the first starting at
//! `start_offset` and the last ending at `end_offset`; no run is empty or covers no command;
//! and the write positions `(log_index, command)` of their commands strictly increase.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::producers::WriteId;
use crate::chunked::Chunked;
use crate::types::{LogIndex, Offset};

/// The records of consecutive append commands of one entry that landed in one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub first_offset: Offset,
    pub log_index: LogIndex,
    /// The first command's position in its entry's batch.
    pub command: u32,
    /// How many commands, from `command` on, the run covers (at least one).
    pub commands: u32,
    /// Their records, together.
    pub count: u32,
}

impl Run {
    /// The offset after this run's last record.
    pub fn end_offset(&self) -> Offset {
        Offset(self.first_offset.0 + u64::from(self.count))
    }

    fn written_at(&self) -> WriteId {
        WriteId {
            log_index: self.log_index,
            command: self.command,
        }
    }

    /// The write position of the run's last command.
    fn last_written_at(&self) -> WriteId {
        WriteId {
            log_index: self.log_index,
            command: self.command + (self.commands - 1),
        }
    }

    /// Takes in `count` more records written by the command right after the run's last one,
    /// if that command is in the same entry and the run can still count them.
    fn try_extend(&mut self, written_at: WriteId, count: u32) -> bool {
        let next_command = self.command.checked_add(self.commands);
        let (Some(records), Some(commands)) =
            (self.count.checked_add(count), self.commands.checked_add(1))
        else {
            return false;
        };
        if written_at.log_index != self.log_index || Some(written_at.command) != next_command {
            return false;
        }
        self.count = records;
        self.commands = commands;
        true
    }
}

/// Where to read some of a stream's records: of the records of commands `commands` in entry
/// `log_index`, taken together in order, those at positions `records`; the first of them is
/// at `first_offset` in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRange {
    pub log_index: LogIndex,
    pub commands: Range<u32>,
    pub records: Range<u32>,
    pub first_offset: Offset,
}

/// A stream's bounds: its records are at `start_offset..end_offset`. The default, `0..0`, is
/// how a stream never written reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// The first offset still held; 0 until retention removes records.
    pub start_offset: Offset,
    /// The offset the next record will get.
    pub end_offset: Offset,
}

/// One stream's bounds and runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRuns {
    pub start_offset: Offset,
    pub end_offset: Offset,
    pub runs: Chunked<Run>,
}

impl StreamRuns {
    fn empty() -> Self {
        Self {
            start_offset: Offset(0),
            end_offset: Offset(0),
            runs: Chunked::default(),
        }
    }

    /// Whether the invariants in the module doc hold; for checking a restored snapshot.
    pub fn is_consistent(&self) -> bool {
        let mut next = self.start_offset;
        let mut previous: Option<WriteId> = None;
        for run in self.runs.iter() {
            if run.count == 0 || run.commands == 0 || run.first_offset != next {
                return false;
            }
            if run.command.checked_add(run.commands - 1).is_none() {
                return false;
            }
            if previous.is_some_and(|p| p >= run.written_at()) {
                return false;
            }
            match next.0.checked_add(u64::from(run.count)) {
                Some(end) => next = Offset(end),
                None => return false,
            }
            previous = Some(run.last_written_at());
        }
        next == self.end_offset
    }

    pub fn info(&self) -> StreamInfo {
        StreamInfo {
            start_offset: self.start_offset,
            end_offset: self.end_offset,
        }
    }

    /// [`Index::append`] of this stream.
    fn append(&mut self, written_at: WriteId, count: u32) -> (Offset, Offset) {
        assert!(count > 0, "an append writes at least one record");
        let first_offset = self.end_offset;
        let end = first_offset
            .0
            .checked_add(u64::from(count))
            .expect("the caller checked that the stream has room");
        let extended = match self.runs.last_mut() {
            Some(last) => {
                assert!(
                    last.last_written_at() < written_at,
                    "runs are appended in log order"
                );
                assert_eq!(last.end_offset(), self.end_offset, "runs end at end_offset");
                last.try_extend(written_at, count)
            }
            None => false,
        };
        if !extended {
            self.runs.push(Run {
                first_offset,
                log_index: written_at.log_index,
                command: written_at.command,
                commands: 1,
                count,
            });
        }
        self.end_offset = Offset(end);
        (first_offset, Offset(end - 1))
    }
}

/// The index of every stream ever written, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    streams: BTreeMap<String, StreamRuns>,
}

impl Index {
    /// Rebuilds an index from snapshot entries, which the caller has checked.
    pub fn from_streams(streams: BTreeMap<String, StreamRuns>) -> Self {
        Self { streams }
    }

    pub fn streams(&self) -> &BTreeMap<String, StreamRuns> {
        &self.streams
    }

    pub fn info(&self, stream: &str) -> Option<StreamInfo> {
        self.streams.get(stream).map(StreamRuns::info)
    }

    /// Appends to `stream` the records of command `written_at` if `decide`, given the
    /// stream's next offset — `None` for a stream never written, whose next offset is 0 —
    /// says how many; otherwise leaves everything as it was and returns `decide`'s refusal.
    /// Returns the first and last offsets written. One lookup of the stream either way.
    /// `decide` must have checked that the offsets fit in a `u64`. Extends the stream's last
    /// run when the command right before this one wrote it.
    pub fn append_if<E>(
        &mut self,
        stream: &str,
        written_at: WriteId,
        decide: impl FnOnce(Option<Offset>) -> Result<u32, E>,
    ) -> Result<(Offset, Offset), E> {
        // Not `entry`, which would allocate the name on every append: only a new stream
        // needs it owned.
        if let Some(runs) = self.streams.get_mut(stream) {
            let count = decide(Some(runs.end_offset))?;
            return Ok(runs.append(written_at, count));
        }
        let count = decide(None)?;
        let mut runs = StreamRuns::empty();
        let offsets = runs.append(written_at, count);
        self.streams.insert(stream.to_string(), runs);
        Ok(offsets)
    }

    /// Records that command `written_at` appended `count` records to `stream`, and returns
    /// their first and last offsets. The caller has checked that the offsets fit in a `u64`.
    pub fn append(&mut self, stream: &str, written_at: WriteId, count: u32) -> (Offset, Offset) {
        let Ok(offsets) = self.append_if(stream, written_at, |_| Ok::<_, Infallible>(count));
        offsets
    }

    /// Which entries hold the records of `stream` at `from..from+limit`, in offset order.
    ///
    /// Only records that exist are located: the answer is empty for an unknown stream, a
    /// `from` at or past the end, or a zero `limit`, and stops at the end of the stream.
    /// Offsets below `start_offset` are gone and are skipped; the caller that must refuse
    /// them (API.md's 416) checks `start_offset` first.
    pub fn locate(&self, stream: &str, from: Offset, limit: usize) -> Vec<RecordRange> {
        let Some(runs) = self.streams.get(stream) else {
            return Vec::new();
        };
        let until = Offset(from.0.saturating_add(limit as u64).min(runs.end_offset.0));
        if from >= until {
            return Vec::new();
        }
        let mut ranges = Vec::new();
        let first_run = runs.runs.partition_point(|run| run.end_offset() <= from);
        for run in runs.runs.iter_from(first_run) {
            if run.first_offset >= until {
                break;
            }
            let start = from.max(run.first_offset);
            let end = until.min(run.end_offset());
            ranges.push(RecordRange {
                log_index: run.log_index,
                commands: run.command..run.command + run.commands,
                records: offset_in_run(run, start)..offset_in_run(run, end),
                first_offset: start,
            });
        }
        ranges
    }
}

/// The position in `run` of `offset`, which is within `first_offset..=end_offset()`.
fn offset_in_run(run: &Run, offset: Offset) -> u32 {
    let position = offset.0 - run.first_offset.0;
    assert!(position <= u64::from(run.count));
    position as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(log_index: u64, command: u32) -> WriteId {
        WriteId {
            log_index: LogIndex(log_index),
            command,
        }
    }

    fn range(log_index: u64, command: u32, records: Range<u32>, first: u64) -> RecordRange {
        RecordRange {
            log_index: LogIndex(log_index),
            commands: command..command + 1,
            records,
            first_offset: Offset(first),
        }
    }

    /// Stream "s": runs of 3, 1 and 4 records at entries 1, 2 (command 1) and 5.
    fn three_runs() -> Index {
        let mut index = Index::default();
        assert_eq!(index.append("s", at(1, 0), 3), (Offset(0), Offset(2)));
        assert_eq!(index.append("s", at(2, 1), 1), (Offset(3), Offset(3)));
        assert_eq!(index.append("s", at(5, 0), 4), (Offset(4), Offset(7)));
        index
    }

    #[test]
    fn locate_spans_runs_and_cuts_at_the_limit() {
        let index = three_runs();
        assert_eq!(
            index.locate("s", Offset(1), 5),
            vec![
                range(1, 0, 1..3, 1),
                range(2, 1, 0..1, 3),
                range(5, 0, 0..2, 4)
            ]
        );
    }

    #[test]
    fn locate_at_run_boundaries() {
        let index = three_runs();
        assert_eq!(index.locate("s", Offset(3), 1), vec![range(2, 1, 0..1, 3)]);
        assert_eq!(
            index.locate("s", Offset(4), 100),
            vec![range(5, 0, 0..4, 4)]
        );
        assert_eq!(index.locate("s", Offset(0), 3), vec![range(1, 0, 0..3, 0)]);
        assert_eq!(index.locate("s", Offset(7), 1), vec![range(5, 0, 3..4, 7)]);
    }

    #[test]
    fn locate_finds_nothing_past_the_end_or_for_no_records() {
        let index = three_runs();
        assert!(index.locate("s", Offset(8), 10).is_empty());
        assert!(index.locate("s", Offset(u64::MAX), usize::MAX).is_empty());
        assert!(index.locate("s", Offset(2), 0).is_empty());
        assert!(index.locate("other", Offset(0), 10).is_empty());
    }

    #[test]
    fn locate_across_many_runs_matches_a_linear_scan() {
        let mut index = Index::default();
        let mut owner = Vec::new(); // offset -> (log index, position in its run)
        for i in 1..=200u64 {
            let count = (i % 7 + 1) as u32;
            index.append("s", at(i, (i % 3) as u32), count);
            owner.extend((0..count).map(|k| (i, k)));
        }
        let end = owner.len() as u64;
        for from in (0..end + 3).step_by(5) {
            for limit in [0, 1, 6, 13, 1000] {
                let located: Vec<(u64, u32)> = index
                    .locate("s", Offset(from), limit)
                    .iter()
                    .flat_map(|r| r.records.clone().map(move |k| (r.log_index.0, k)))
                    .collect();
                let expected: Vec<(u64, u32)> = owner
                    .iter()
                    .copied()
                    .skip(from as usize)
                    .take(limit)
                    .collect();
                assert_eq!(located, expected, "from {from} limit {limit}");
            }
        }
    }

    #[test]
    fn streams_are_consistent_and_a_gap_is_not() {
        let index = three_runs();
        let mut runs = index.streams()["s"].clone();
        assert!(runs.is_consistent());
        runs.runs.get_mut(1).unwrap().first_offset = Offset(4);
        assert!(!runs.is_consistent());
        let mut runs = index.streams()["s"].clone();
        runs.runs.get_mut(1).unwrap().commands = 0;
        assert!(!runs.is_consistent());
    }

    #[test]
    fn consecutive_commands_of_one_entry_share_a_run() {
        let mut index = Index::default();
        // Entry 1: commands 0 and 1 to "s", 2 to "t", 3 to "s"; entry 2: command 0 to "s".
        assert_eq!(index.append("s", at(1, 0), 2), (Offset(0), Offset(1)));
        assert_eq!(index.append("s", at(1, 1), 3), (Offset(2), Offset(4)));
        index.append("t", at(1, 2), 1);
        assert_eq!(index.append("s", at(1, 3), 1), (Offset(5), Offset(5)));
        assert_eq!(index.append("s", at(2, 0), 1), (Offset(6), Offset(6)));
        let runs = &index.streams()["s"];
        assert!(runs.is_consistent());
        let shape: Vec<(u64, u32, u32, u32)> = runs
            .runs
            .iter()
            .map(|r| (r.log_index.0, r.command, r.commands, r.count))
            .collect();
        assert_eq!(shape, vec![(1, 0, 2, 5), (1, 3, 1, 1), (2, 0, 1, 1)]);
        let merged = RecordRange {
            log_index: LogIndex(1),
            commands: 0..2,
            records: 1..5,
            first_offset: Offset(1),
        };
        assert_eq!(
            index.locate("s", Offset(1), 5),
            vec![merged, range(1, 3, 0..1, 5)]
        );
    }
}
