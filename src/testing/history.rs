//! The recorded history of client operations against streams: what each client asked for,
//! when it asked, when (if ever) it heard back, and what it heard.
//!
//! This module owns the history's data model and its recorder. It is plain data: the
//! simulator (tokio's paused clock) and the integration suite (real processes, real time)
//! both record into a [`HistoryRecorder`] and hand the finished [`History`] to the checkers
//! in [`crate::testing::invariants`] and [`crate::testing::linearizability`].
//!
//! Times are [`MonoTime`]s supplied by the caller: microseconds on one monotonic clock shared
//! by all clients of a run. The checkers compare times of different clients, so they must all
//! read the same clock.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::types::{MonoTime, Offset};

/// The client that issued an operation. A client issues one operation at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// An operation's position in its history, in invocation order. Violations name operations
/// by it, so a failing run's dump can be searched for `#17`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The idempotent-producer fields of an append (API.md): a retry with the same `id` and `seq`
/// returns the original offsets and writes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducerSeq {
    pub id: String,
    pub seq: u64,
}

/// The read consistency a client asked for (API.md, "Read").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Consistency {
    Linearizable,
    Lease,
    /// A node's local applied state: a prefix of the stream, but possibly an old one.
    Stale,
}

impl Consistency {
    /// Whether a read at this level must respect real-time order. Lease reads promise it
    /// under the bounded-clock-drift assumption, which the tests hold to.
    pub fn is_linearizable(self) -> bool {
        matches!(self, Consistency::Linearizable | Consistency::Lease)
    }
}

/// An append of one batch of records to a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendCall {
    pub stream: String,
    pub values: Vec<Bytes>,
    pub producer: Option<ProducerSeq>,
    pub expected_offset: Option<Offset>,
}

/// A read of a stream from an offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadCall {
    pub stream: String,
    pub from: Offset,
    pub consistency: Consistency,
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Append(AppendCall),
    Read(ReadCall),
}

impl Call {
    /// The stream the call is about; histories are checked one stream at a time.
    pub fn stream(&self) -> &str {
        match self {
            Call::Append(append) => &append.stream,
            Call::Read(read) => &read.stream,
        }
    }
}

/// Why the service definitely wrote nothing for an append (API.md's 409 and 400 codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// `expected_offset` was not the stream's next offset, which the service reports when
    /// the client parsed it.
    OffsetMismatch {
        next_offset: Option<Offset>,
    },
    StaleProducerSeq,
    BadRequest,
}

/// What a client heard back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The append is committed at `first_offset..=last_offset`.
    Appended {
        first_offset: Offset,
        last_offset: Offset,
    },
    /// A definite "nothing was written".
    AppendRejected { reason: RejectReason },
    /// The records read, each with its offset, and the stream's end offset at the read.
    Read {
        records: Vec<(Offset, Bytes)>,
        end_offset: Offset,
    },
    /// Definitely not applied (e.g. a connection refused before sending, "not leader"
    /// before proposing). Only the caller knows when that is certain; when in doubt, record
    /// `Unknown`: a 503 or a timeout after the request left may still have been committed.
    Failed,
    /// No answer (timeout, crash): the operation may or may not have taken effect, at any
    /// time after its invocation. Checkers treat it as never completed, whatever its
    /// `completed_at` says.
    Unknown,
}

impl Outcome {
    /// Whether this outcome can answer `call`; a mismatch is a bug in the test harness.
    fn fits(&self, call: &Call) -> bool {
        match self {
            Outcome::Appended { .. } | Outcome::AppendRejected { .. } => {
                matches!(call, Call::Append(_))
            }
            Outcome::Read { .. } => matches!(call, Call::Read(_)),
            Outcome::Failed | Outcome::Unknown => true,
        }
    }
}

/// One client operation: its call, its outcome and the interval it was in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: OpId,
    pub client: ClientId,
    pub invoked_at: MonoTime,
    /// `None` for an operation that never completed; its outcome is then `Unknown`.
    pub completed_at: Option<MonoTime>,
    pub call: Call,
    pub outcome: Outcome,
}

impl Operation {
    /// When the operation definitely completed: `None` for `Unknown` outcomes, which may
    /// take effect at any time after their invocation.
    pub fn definite_completion(&self) -> Option<MonoTime> {
        match self.outcome {
            Outcome::Unknown => None,
            _ => self.completed_at,
        }
    }

    /// Real-time order: `self` completed strictly before `other` was invoked. Equal times
    /// count as concurrent, so a coarse clock can only make the checks more lenient.
    pub fn precedes(&self, other: &Operation) -> bool {
        self.definite_completion()
            .is_some_and(|done| done < other.invoked_at)
    }
}

/// The finished record of a run: operations in the order they were recorded (invocation
/// order, from a recorder). The checkers order by time themselves and do not rely on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// A history from operations written by hand (tests) or loaded from elsewhere. Ids are
    /// reassigned to positions, so `ops[i].id == OpId(i)`.
    pub fn from_operations(mut ops: Vec<Operation>) -> Self {
        for (i, op) in ops.iter_mut().enumerate() {
            assert!(
                op.outcome.fits(&op.call),
                "outcome {:?} cannot answer {:?}",
                op.outcome,
                op.call
            );
            assert!(
                op.completed_at.is_some() || op.outcome == Outcome::Unknown,
                "an operation that never completed has an unknown outcome, not {:?}",
                op.outcome
            );
            assert!(
                op.completed_at.is_none_or(|at| at >= op.invoked_at),
                "{op} completed before its invocation"
            );
            op.id = OpId(i);
        }
        Self { ops }
    }

    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Operation> {
        self.ops.iter()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.ops.get(id.0)
    }

    /// The operations of each stream, in invocation order. Streams are independent objects,
    /// so every checker works one partition at a time.
    pub fn by_stream(&self) -> BTreeMap<&str, Vec<&Operation>> {
        let mut streams: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
        for op in &self.ops {
            streams.entry(op.call.stream()).or_default().push(op);
        }
        streams
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a Operation;
    type IntoIter = std::slice::Iter<'a, Operation>;
    fn into_iter(self) -> Self::IntoIter {
        self.ops.iter()
    }
}

/// One line per operation: the dump a failing run prints next to its seed.
impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

/// The recorder concurrent clients share: cloning it is cheap and every clone records into
/// the same history.
#[derive(Clone, Debug, Default)]
pub struct HistoryRecorder {
    ops: Arc<Mutex<Vec<Operation>>>,
}

/// The ticket for an invoked operation; completing it consumes it, so an operation cannot
/// complete twice. Dropping it leaves the operation `Unknown`, which is what a crashed
/// client's operation is.
#[derive(Debug)]
#[must_use = "complete the operation, or it is recorded as Unknown"]
pub struct OpHandle(OpId);

impl HistoryRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` sent `call` at `at`. Call it before the request leaves.
    pub fn invoke(&self, client: ClientId, call: Call, at: MonoTime) -> OpHandle {
        let mut ops = self.lock();
        let id = OpId(ops.len());
        ops.push(Operation {
            id,
            client,
            invoked_at: at,
            completed_at: None,
            call,
            outcome: Outcome::Unknown,
        });
        OpHandle(id)
    }

    /// Records the outcome the client heard at `at`. Call it after the answer arrived.
    pub fn complete(&self, handle: OpHandle, outcome: Outcome, at: MonoTime) {
        let mut ops = self.lock();
        let op = &mut ops[handle.0 .0];
        assert!(
            outcome.fits(&op.call),
            "outcome {outcome:?} cannot answer {:?}",
            op.call
        );
        assert!(
            at >= op.invoked_at,
            "{} completed at {at:?} before its invocation",
            op.id
        );
        op.completed_at = Some(at);
        op.outcome = outcome;
    }

    /// The history so far; operations still in flight are `Unknown` and never completed.
    pub fn finish(&self) -> History {
        History {
            ops: self.lock().clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Operation>> {
        // A client that panicked mid-record leaves a consistent Vec: every write is one
        // push or one field assignment. Keep recording rather than cascade the panic.
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many values an operation description shows before eliding the rest.
const SHOWN_VALUES_MAX: usize = 4;

/// Values as a short readable list: `["p3-17", "p3-18"]`, long batches elided.
fn show_values<'a>(values: impl ExactSizeIterator<Item = &'a Bytes>) -> String {
    let count = values.len();
    let mut shown: Vec<String> = values
        .take(SHOWN_VALUES_MAX)
        .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
        .collect();
    if count > SHOWN_VALUES_MAX {
        shown.push(format!("… {} more", count - SHOWN_VALUES_MAX));
    }
    format!("[{}]", shown.join(", "))
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}us..", self.id, self.client, self.invoked_at.0)?;
        match self.completed_at {
            Some(at) => write!(f, "{}us): ", at.0)?,
            None => write!(f, "never): ")?,
        }
        match &self.call {
            Call::Append(a) => {
                write!(
                    f,
                    "append {} to {:?}",
                    show_values(a.values.iter()),
                    a.stream
                )?;
                if let Some(p) = &a.producer {
                    write!(f, " as producer {}/{}", p.id, p.seq)?;
                }
                if let Some(e) = a.expected_offset {
                    write!(f, " expecting {e}")?;
                }
            }
            Call::Read(r) => write!(f, "{:?} read {:?} from {}", r.consistency, r.stream, r.from)?,
        }
        write!(f, " -> {}", self.outcome)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Appended {
                first_offset,
                last_offset,
            } => write!(f, "appended at {first_offset}..={last_offset}"),
            Outcome::AppendRejected { reason } => write!(f, "rejected ({reason:?})"),
            Outcome::Read {
                records,
                end_offset,
            } => {
                write!(f, "read {} records", records.len())?;
                if let Some((first, _)) = records.first() {
                    let values = show_values(records.iter().map(|(_, v)| v));
                    write!(f, " from {first} {values}")?;
                }
                write!(f, ", end {end_offset}")
            }
            Outcome::Failed => write!(f, "failed"),
            Outcome::Unknown => write!(f, "unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(stream: &str, value: &'static str) -> Call {
        Call::Append(AppendCall {
            stream: stream.into(),
            values: vec![Bytes::from_static(value.as_bytes())],
            producer: None,
            expected_offset: None,
        })
    }

    #[test]
    fn recorder_keeps_invocation_order_and_leaves_the_unfinished_unknown() {
        let recorder = HistoryRecorder::new();
        let shared = recorder.clone();
        let a = recorder.invoke(ClientId(1), append("s", "a"), MonoTime(10));
        let b = shared.invoke(ClientId(2), append("t", "b"), MonoTime(11));
        shared.complete(
            b,
            Outcome::Appended {
                first_offset: Offset(0),
                last_offset: Offset(0),
            },
            MonoTime(20),
        );
        drop(a);
        let history = recorder.finish();
        assert_eq!(history.len(), 2);
        let ops = history.operations();
        assert_eq!(
            (ops[0].id, ops[0].completed_at, &ops[0].outcome),
            (OpId(0), None, &Outcome::Unknown)
        );
        assert_eq!(ops[1].completed_at, Some(MonoTime(20)));
        let streams = history.by_stream();
        assert_eq!(streams.keys().copied().collect::<Vec<_>>(), vec!["s", "t"]);
    }

    #[test]
    #[should_panic(expected = "cannot answer")]
    fn recorder_refuses_an_outcome_of_the_wrong_kind() {
        let recorder = HistoryRecorder::new();
        let a = recorder.invoke(ClientId(1), append("s", "a"), MonoTime(0));
        let read = Outcome::Read {
            records: vec![],
            end_offset: Offset(0),
        };
        recorder.complete(a, read, MonoTime(1));
    }

    #[test]
    fn unknown_operations_precede_nothing() {
        let recorder = HistoryRecorder::new();
        let a = recorder.invoke(ClientId(1), append("s", "a"), MonoTime(0));
        recorder.complete(a, Outcome::Unknown, MonoTime(1));
        let b = recorder.invoke(ClientId(2), append("s", "b"), MonoTime(5));
        recorder.complete(b, Outcome::Failed, MonoTime(5));
        let c = recorder.invoke(ClientId(2), append("s", "c"), MonoTime(5));
        drop(c);
        let h = recorder.finish();
        let ops = h.operations();
        assert!(!ops[0].precedes(&ops[1]));
        assert!(!ops[1].precedes(&ops[2]), "equal times are concurrent");
        let line = ops[0].to_string();
        assert!(line.contains("#0 (c1, 0us..1us): append [\"a\"]"), "{line}");
    }
}
