//! Hand-written histories for the checkers' unit tests: a terse builder so that each test
//! reads like the timeline it describes.

use bytes::Bytes;

use super::final_log::FinalLog;
use super::history::{
    AppendCall, Call, ClientId, Consistency, History, OpId, Operation, Outcome, ProducerSeq,
    ReadCall, RejectReason,
};
use crate::types::{MonoTime, Offset};

pub fn b(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

pub fn acked(first: u64, last: u64) -> Outcome {
    Outcome::Appended {
        first_offset: Offset(first),
        last_offset: Offset(last),
    }
}

/// A read that returned `values` at `from, from+1, ...` and saw the stream end at `end`.
pub fn read_ok(from: u64, values: &[&str], end: u64) -> Outcome {
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| (Offset(from + i as u64), b(v)))
        .collect();
    Outcome::Read {
        records,
        end_offset: Offset(end),
    }
}

pub fn mismatch(next: u64) -> Outcome {
    Outcome::AppendRejected {
        reason: RejectReason::OffsetMismatch {
            next_offset: Some(Offset(next)),
        },
    }
}

pub fn final_log(streams: &[(&str, &[&str])]) -> FinalLog {
    streams
        .iter()
        .map(|(name, values)| (name.to_string(), values.iter().map(|v| b(v)).collect()))
        .collect()
}

/// Builds a history one operation at a time; times are microseconds.
#[derive(Default)]
pub struct Builder {
    ops: Vec<Operation>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// An operation by `client` in flight from `t0` to `t1`. `Unknown` outcomes keep `t1`
    /// as their (ignored) completion time, as a client that timed out would record it.
    pub fn op(&mut self, client: u64, t0: u64, t1: u64, call: Call, outcome: Outcome) -> &mut Self {
        self.ops.push(Operation {
            id: OpId(0),
            client: ClientId(client),
            invoked_at: MonoTime(t0),
            completed_at: Some(MonoTime(t1)),
            call,
            outcome,
        });
        self
    }

    pub fn append(
        &mut self,
        client: u64,
        t0: u64,
        t1: u64,
        values: &[&str],
        outcome: Outcome,
    ) -> &mut Self {
        self.op(
            client,
            t0,
            t1,
            append_call("s", values, None, None),
            outcome,
        )
    }

    pub fn append_as(
        &mut self,
        client: u64,
        (t0, t1): (u64, u64),
        values: &[&str],
        (producer, seq): (&str, u64),
        outcome: Outcome,
    ) -> &mut Self {
        let producer = Some(ProducerSeq {
            id: producer.into(),
            seq,
        });
        self.op(
            client,
            t0,
            t1,
            append_call("s", values, producer, None),
            outcome,
        )
    }

    pub fn append_expecting(
        &mut self,
        client: u64,
        (t0, t1): (u64, u64),
        values: &[&str],
        expected: u64,
        outcome: Outcome,
    ) -> &mut Self {
        let call = append_call("s", values, None, Some(Offset(expected)));
        self.op(client, t0, t1, call, outcome)
    }

    pub fn read(
        &mut self,
        client: u64,
        t0: u64,
        t1: u64,
        from: u64,
        consistency: Consistency,
        outcome: Outcome,
    ) -> &mut Self {
        let call = Call::Read(ReadCall {
            stream: "s".into(),
            from: Offset(from),
            consistency,
        });
        self.op(client, t0, t1, call, outcome)
    }

    pub fn build(&self) -> History {
        History::from_operations(self.ops.clone())
    }
}

pub fn append_call(
    stream: &str,
    values: &[&str],
    producer: Option<ProducerSeq>,
    expected_offset: Option<Offset>,
) -> Call {
    Call::Append(AppendCall {
        stream: stream.into(),
        values: values.iter().map(|v| b(v)).collect(),
        producer,
        expected_offset,
    })
}
