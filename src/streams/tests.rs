//! Scenario tests of [`Streams`]: offsets, batches, producers, conditions, snapshots.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};

use super::name::validate_stream_name;
use super::*;
use crate::types::{LogIndex, Offset};

/// A state machine with the payloads it applied, so that reads can be served as the Apply
/// actor will serve them: locate, then cut the records out of each entry.
pub(super) struct Node {
    pub streams: Streams,
    pub payloads: BTreeMap<LogIndex, Bytes>,
}

impl Node {
    pub fn new(producers_max: usize) -> Self {
        Self {
            streams: Streams::new(producers_max),
            payloads: BTreeMap::new(),
        }
    }

    /// Applies `payload` at the next index.
    pub fn apply(&mut self, payload: Bytes) -> Vec<AppendOutcome> {
        let index = self.streams.applied_index().next();
        self.payloads.insert(index, payload.clone());
        self.streams.apply(index, &payload)
    }

    pub fn apply_batch(&mut self, commands: Vec<AppendCommand>) -> Vec<AppendOutcome> {
        let commands = commands.into_iter().map(StreamCommand::Append).collect();
        self.apply(encode(&CommandBatch { commands }))
    }

    pub fn read(&self, stream: &str, from: u64, limit: usize) -> Vec<Bytes> {
        let mut records = Vec::new();
        for range in self.streams.locate(stream, Offset(from), limit) {
            let payload = &self.payloads[&range.log_index];
            records.extend(records_in(payload, range.commands, range.records).unwrap());
        }
        records
    }
}

pub(super) fn append(stream: &str, records: &[&str]) -> AppendCommand {
    AppendCommand {
        stream: stream.to_string(),
        records: records.iter().map(|r| Bytes::from(r.to_string())).collect(),
        producer: None,
        expected_offset: None,
    }
}

fn produced(mut command: AppendCommand, id: &str, seq: u64) -> AppendCommand {
    command.producer = Some(ProducerSeq {
        id: id.to_string(),
        seq,
    });
    command
}

fn expecting(mut command: AppendCommand, offset: u64) -> AppendCommand {
    command.expected_offset = Some(Offset(offset));
    command
}

fn appended(first: u64, last: u64) -> AppendOutcome {
    AppendOutcome::Appended {
        first_offset: Offset(first),
        last_offset: Offset(last),
    }
}

fn duplicate(first: u64, last: u64) -> AppendOutcome {
    AppendOutcome::Duplicate {
        first_offset: Offset(first),
        last_offset: Offset(last),
    }
}

fn info(end: u64) -> Option<StreamInfo> {
    Some(StreamInfo {
        start_offset: Offset(0),
        end_offset: Offset(end),
    })
}

fn values(records: &[&str]) -> Vec<Bytes> {
    records.iter().map(|r| Bytes::from(r.to_string())).collect()
}

#[test]
fn appends_get_dense_offsets_from_zero() {
    let mut node = Node::new(10);
    assert_eq!(
        node.apply_batch(vec![append("s", &["a", "b"])]),
        [appended(0, 1)]
    );
    assert_eq!(
        node.apply_batch(vec![append("s", &["c"])]),
        [appended(2, 2)]
    );
    assert_eq!(
        node.apply_batch(vec![append("s", &["d", "e", "f"])]),
        [appended(3, 5)]
    );
    assert_eq!(node.streams.stream("s"), info(6));
    assert_eq!(
        node.read("s", 0, 100),
        values(&["a", "b", "c", "d", "e", "f"])
    );
    assert_eq!(node.streams.applied_index(), LogIndex(3));
}

#[test]
fn streams_are_independent() {
    let mut node = Node::new(10);
    node.apply_batch(vec![append("x", &["x0", "x1"])]);
    assert_eq!(
        node.apply_batch(vec![append("y", &["y0"])]),
        [appended(0, 0)]
    );
    assert_eq!(
        node.apply_batch(vec![append("x", &["x2"])]),
        [appended(2, 2)]
    );
    assert_eq!(node.read("x", 0, 10), values(&["x0", "x1", "x2"]));
    assert_eq!(node.read("y", 0, 10), values(&["y0"]));
    assert_eq!(node.streams.stream("z"), None);
    let names: Vec<String> = node.streams.list().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["x", "y"]);
}

#[test]
fn a_batch_assigns_offsets_in_command_order() {
    let mut node = Node::new(10);
    let outcomes = node.apply_batch(vec![
        append("a", &["a0", "a1"]),
        append("b", &["b0"]),
        append("a", &["a2"]),
        append("b", &["b1", "b2"]),
    ]);
    assert_eq!(
        outcomes,
        [
            appended(0, 1),
            appended(0, 0),
            appended(2, 2),
            appended(1, 2)
        ]
    );
    assert_eq!(node.read("a", 0, 10), values(&["a0", "a1", "a2"]));
    assert_eq!(node.read("b", 1, 10), values(&["b1", "b2"]));
    // One entry, two runs of "a": commands 0 and 2.
    let commands: Vec<Range<u32>> = node
        .streams
        .locate("a", Offset(0), 10)
        .into_iter()
        .map(|r| r.commands)
        .collect();
    assert_eq!(commands, [0..1, 2..3]);
}

#[test]
fn consecutive_appends_to_one_stream_read_back_from_one_run() {
    let mut node = Node::new(10);
    node.apply_batch(vec![
        append("a", &["a0"]),
        append("a", &["a1", "a2"]),
        append("a", &["a3"]),
        append("b", &["b0"]),
    ]);
    let ranges = node.streams.locate("a", Offset(0), 10);
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(ranges[0].commands, 0..3);
    assert_eq!(node.read("a", 0, 10), values(&["a0", "a1", "a2", "a3"]));
    assert_eq!(node.read("a", 1, 2), values(&["a1", "a2"]));
    assert_eq!(node.read("a", 3, 10), values(&["a3"]));
    assert_eq!(node.read("b", 0, 10), values(&["b0"]));
}

#[test]
fn a_retry_returns_the_original_offsets_and_writes_nothing() {
    let mut node = Node::new(10);
    node.apply_batch(vec![append("s", &["other"])]);
    let write = produced(append("s", &["r0", "r1"]), "p", 7);
    assert_eq!(node.apply_batch(vec![write.clone()]), [appended(1, 2)]);
    let before = node.streams.snapshot();
    // The retry, a retry naming another stream, and a retry after a restart.
    assert_eq!(node.apply_batch(vec![write.clone()]), [duplicate(1, 2)]);
    let elsewhere = produced(append("t", &["r0", "r1"]), "p", 7);
    assert_eq!(node.apply_batch(vec![elsewhere]), [duplicate(1, 2)]);
    node.streams = Streams::restore(&node.streams.snapshot()).unwrap();
    assert_eq!(node.apply_batch(vec![write]), [duplicate(1, 2)]);
    assert_eq!(node.streams.stream("s"), info(3));
    assert_eq!(node.streams.stream("t"), None);
    assert_eq!(node.read("s", 0, 10), values(&["other", "r0", "r1"]));
    // Nothing but the applied index moved.
    let mut unchanged = Streams::restore(&before).unwrap();
    unchanged.apply_noop(node.streams.applied_index());
    assert_eq!(unchanged.snapshot(), node.streams.snapshot());
}

#[test]
fn a_retry_within_the_same_batch_is_a_duplicate() {
    let mut node = Node::new(10);
    let write = produced(append("s", &["r0"]), "p", 1);
    assert_eq!(
        node.apply_batch(vec![write.clone(), write]),
        [appended(0, 0), duplicate(0, 0)]
    );
}

#[test]
fn a_stale_seq_is_refused_and_writes_nothing() {
    let mut node = Node::new(10);
    node.apply_batch(vec![produced(append("s", &["a"]), "p", 5)]);
    let stale = node.apply_batch(vec![produced(append("s", &["b"]), "p", 4)]);
    assert_eq!(stale, [AppendOutcome::StaleProducerSeq { last_seq: 5 }]);
    assert_eq!(node.streams.stream("s"), info(1));
    // Gaps are fine: 9 follows 5.
    let next = node.apply_batch(vec![produced(append("s", &["c"]), "p", 9)]);
    assert_eq!(next, [appended(1, 1)]);
    assert_eq!(node.streams.producer("p").unwrap().seq, 9);
}

#[test]
fn a_conditional_append_writes_only_at_the_expected_offset() {
    let mut node = Node::new(10);
    node.apply_batch(vec![append("s", &["a", "b"])]);
    let mismatch = node.apply_batch(vec![expecting(append("s", &["x"]), 1)]);
    assert_eq!(
        mismatch,
        [AppendOutcome::OffsetMismatch {
            next_offset: Offset(2)
        }]
    );
    assert_eq!(node.streams.stream("s"), info(2));
    let matched = node.apply_batch(vec![expecting(append("s", &["c"]), 2)]);
    assert_eq!(matched, [appended(2, 2)]);
    // A never-written stream's next offset is 0, and a mismatch does not create it.
    let fresh = node.apply_batch(vec![expecting(append("n", &["x"]), 3)]);
    assert_eq!(
        fresh,
        [AppendOutcome::OffsetMismatch {
            next_offset: Offset(0)
        }]
    );
    assert_eq!(node.streams.stream("n"), None);
    assert_eq!(node.read("s", 0, 10), values(&["a", "b", "c"]));
}

#[test]
fn a_retried_conditional_append_gets_its_offsets_not_a_mismatch() {
    let mut node = Node::new(10);
    let write = produced(expecting(append("s", &["a"]), 0), "p", 1);
    assert_eq!(node.apply_batch(vec![write.clone()]), [appended(0, 0)]);
    assert_eq!(node.apply_batch(vec![write]), [duplicate(0, 0)]);
}

#[test]
fn a_refused_producer_write_is_not_remembered() {
    let mut node = Node::new(10);
    let write = produced(expecting(append("s", &["a"]), 5), "p", 1);
    let mismatch = AppendOutcome::OffsetMismatch {
        next_offset: Offset(0),
    };
    for _ in 0..2 {
        let outcomes = node.apply_batch(vec![write.clone()]);
        assert_eq!(outcomes, std::slice::from_ref(&mismatch));
        assert!(node.streams.producer("p").is_none());
    }
}

#[test]
fn invalid_commands_are_rejected_and_the_rest_of_the_batch_applies() {
    let mut node = Node::new(10);
    let outcomes = node.apply_batch(vec![
        append("", &["a"]),
        append("no/slash", &["a"]),
        append(&"x".repeat(256), &["a"]),
        produced(append("s", &[]), "p", 1),
        append("s", &["ok"]),
    ]);
    for outcome in &outcomes[..4] {
        assert!(
            matches!(outcome, AppendOutcome::Rejected { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(outcomes[4], appended(0, 0));
    assert_eq!(node.streams.list().len(), 1);
    assert!(node.streams.producer("p").is_none());
}

#[test]
fn an_undecodable_payload_is_a_noop_with_no_outcomes() {
    let mut node = Node::new(10);
    node.apply_batch(vec![append("s", &["a"])]);
    let before = node.streams.snapshot();
    assert!(node
        .apply(Bytes::from_static(b"\xff\xff garbage"))
        .is_empty());
    assert_eq!(node.streams.applied_index(), LogIndex(2));
    let mut expected = Streams::restore(&before).unwrap();
    expected.apply_noop(LogIndex(2));
    assert_eq!(node.streams.snapshot(), expected.snapshot());
    // An empty batch decodes, and has no outcomes either.
    assert!(node.apply(encode(&CommandBatch::default())).is_empty());
}

#[test]
fn applying_random_bytes_never_panics() {
    let mut rng = SmallRng::seed_from_u64(21);
    let mut streams = Streams::new(4);
    for i in 1..=5_000u64 {
        let len = rng.gen_range(0..64);
        let mut payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) && !payload.is_empty() {
            payload[0] = rng.gen_range(0..3); // A plausible command count.
        }
        streams.apply(LogIndex(i), &payload);
    }
}

#[test]
#[should_panic(expected = "applied after")]
fn apply_refuses_an_index_that_does_not_increase() {
    let mut streams = Streams::new(10);
    streams.apply_noop(LogIndex(5));
    streams.apply(LogIndex(5), &encode(&CommandBatch::default()));
}

#[test]
fn indexes_may_skip_entries_applied_elsewhere() {
    let mut streams = Streams::new(10);
    streams.apply_noop(LogIndex(3));
    let payload = encode(&CommandBatch {
        commands: vec![StreamCommand::Append(append("s", &["a"]))],
    });
    assert_eq!(streams.apply(LogIndex(9), &payload), [appended(0, 0)]);
    assert_eq!(streams.locate("s", Offset(0), 1)[0].log_index, LogIndex(9));
    assert_eq!(streams.applied_index(), LogIndex(9));
}

/// Producers p0..p(n-1) each write once, one per entry, then p0 writes again.
fn feed_producers(node: &mut Node, producer_count: usize) {
    for p in 0..producer_count {
        node.apply_batch(vec![produced(append("s", &["v"]), &format!("p{p}"), 1)]);
    }
    node.apply_batch(vec![produced(append("s", &["v"]), "p0", 2)]);
}

#[test]
fn producer_eviction_is_deterministic_and_forgets_the_least_recent() {
    let mut one = Node::new(3);
    let mut two = Node::new(3);
    feed_producers(&mut one, 5);
    feed_producers(&mut two, 5);
    assert_eq!(one.streams.snapshot(), two.streams.snapshot());
    let kept: Vec<bool> = (0..5)
        .map(|p| one.streams.producer(&format!("p{p}")).is_some())
        .collect();
    // p0 rewrote last; of the rest, the two most recent (p3, p4) stay.
    assert_eq!(kept, [true, false, false, true, true]);
    assert_eq!(one.streams.producer_count(), 3);
    // A retry from a forgotten producer is written again.
    let retry = one.apply_batch(vec![produced(append("s", &["v"]), "p1", 1)]);
    assert_eq!(retry, [appended(6, 6)]);
}

/// The name is checked first even though apply checks only a new stream's name: a bad name
/// with no records, or a bad name retried by a producer it already names, is refused for its
/// name, with the reason the HTTP layer gives.
#[test]
fn a_bad_name_is_refused_for_its_name_before_any_other_check() {
    let mut node = Node::new(10);
    node.apply_batch(vec![produced(append("s", &["a"]), "p", 1)]);
    let name_reason = validate_stream_name("no/slash").unwrap_err();
    let outcomes = node.apply_batch(vec![
        append("no/slash", &[]),
        produced(append("no/slash", &["a"]), "p", 1),
        produced(append("no/slash", &["a"]), "p", 0),
        expecting(append("no/slash", &["a"]), 5),
    ]);
    for outcome in &outcomes {
        assert_eq!(
            outcome,
            &AppendOutcome::Rejected {
                reason: name_reason.clone()
            }
        );
    }
    // A good name with no records: refused for that, whether the stream exists or not.
    let outcomes = node.apply_batch(vec![append("s", &[]), append("new", &[])]);
    let no_records = AppendOutcome::Rejected {
        reason: "the append has no records".to_string(),
    };
    assert_eq!(outcomes, [no_records.clone(), no_records]);
    assert_eq!(node.streams.list().len(), 1);
}

/// A restored index is trusted to hold only valid names, so a snapshot naming an invalid
/// stream is refused.
#[test]
fn a_snapshot_with_an_invalid_stream_name_is_refused() {
    let mut node = Node::new(2);
    node.apply_batch(vec![append("ab", &["x"])]);
    let good = node.streams.snapshot().to_vec();
    assert!(Streams::restore(&good).is_ok());
    let at = good
        .windows(2)
        .position(|w| w == b"ab")
        .expect("the snapshot holds the name");
    let mut bad = good.clone();
    bad[at..at + 2].copy_from_slice(b"a/");
    assert!(Streams::restore(&bad).is_err());
}

#[test]
fn a_snapshot_restores_the_same_state() {
    let mut node = Node::new(2);
    feed_producers(&mut node, 3);
    node.apply_batch(vec![
        append("b", &["x", "y"]),
        expecting(append("a", &["z"]), 0),
    ]);
    let bytes = node.streams.snapshot();
    let restored = Streams::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.list(), node.streams.list());
    assert_eq!(restored.applied_index(), node.streams.applied_index());
    assert_eq!(restored.producer_count(), 2);
    assert_eq!(
        restored.locate("s", Offset(0), 10),
        node.streams.locate("s", Offset(0), 10)
    );
}

#[test]
fn a_corrupt_snapshot_is_refused_or_restores_a_usable_state() {
    let mut rng = SmallRng::seed_from_u64(22);
    let mut node = Node::new(3);
    feed_producers(&mut node, 4);
    node.apply_batch(vec![append("b", &["x", "y"]), append("b", &["z"])]);
    let good = node.streams.snapshot().to_vec();
    assert!(Streams::restore(&good[..good.len() - 1]).is_err());
    assert!(Streams::restore(b"").is_err());
    for _ in 0..3_000 {
        let mut bytes = good.clone();
        for _ in 0..rng.gen_range(1..3) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= 1 << rng.gen_range(0..8);
        }
        let Ok(mut restored) = Streams::restore(&bytes) else {
            continue;
        };
        // Whatever restored must carry on without tripping an assertion.
        if restored.applied_index() == LogIndex(u64::MAX) {
            continue;
        }
        let index = restored.applied_index().next();
        let payload = encode(&CommandBatch {
            commands: vec![
                StreamCommand::Append(produced(append("b", &["n"]), "p1", 2)),
                StreamCommand::Append(produced(append("s", &["n"]), "p9", 1)),
            ],
        });
        restored.apply(index, &payload);
        restored.locate("b", Offset(0), usize::MAX);
        restored.locate("s", Offset(1), 3);
    }
}
