//! Encoding and decoding an AppendEntries peer message in the transport's own frame format.
//!
//! The message is what a leader sends a follower: a `PeerMessage` whose AppendEntries carries
//! N entries (N = 1, 16, 256; 256 is `replication.entries_per_append_max`'s default), each a
//! stream command entry as the node builds it: `streams::encode` of a `CommandBatch` with one
//! append of one 256-byte record: a 271-byte payload, 279 bytes per entry in the frame.
//!
//! - `append_entries/encode/N`: `transport::frame::encode` with the default frame limit, as
//!   the dialing side of a peer connection does before writing the frame;
//! - `append_entries/decode/N`: `transport::frame::decode::<PeerMessage>` of those bytes, as
//!   the accepting side does with each frame.
//!
//! Throughput is in entries. Run: `cargo bench --bench append_entries` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raftlog::raft::message::{AppendEntries, Entry, EntryPayload, MessageBody, PeerMessage};
use raftlog::streams::{self, AppendCommand, CommandBatch, StreamCommand};
use raftlog::transport::frame::{self, FRAME_BYTES_MAX_DEFAULT};
use raftlog::types::{LogId, LogIndex, NodeId, Term};

mod support;

const ENTRY_COUNTS: [u64; 3] = [1, 16, 256];
const RECORD_BYTES: usize = 256;

/// One stream command entry's payload: an append of one record, encoded as the node does.
fn command_payload(serial: u64) -> Bytes {
    let record: Vec<u8> = (0..RECORD_BYTES)
        .map(|i| (i as u64 ^ serial) as u8)
        .collect();
    streams::encode(&CommandBatch {
        commands: vec![StreamCommand::Append(AppendCommand {
            stream: "orders".to_string(),
            records: vec![Bytes::from(record)],
            producer: None,
            expected_offset: None,
        })],
    })
}

/// A leader's AppendEntries of `entry_count` entries after index 1000, in a term of its own.
fn append_entries(entry_count: u64) -> PeerMessage {
    let prev = LogId::new(Term(7), LogIndex(1000));
    let entries = (1..=entry_count)
        .map(|i| Entry {
            log_id: LogId::new(Term(7), prev.index + i),
            payload: EntryPayload::Command(command_payload(i)),
        })
        .collect();
    PeerMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(7),
        body: MessageBody::AppendEntries(AppendEntries {
            prev,
            entries,
            leader_commit: LogIndex(998),
        }),
    }
}

fn encode_decode(c: &mut Criterion) {
    let messages: Vec<(u64, PeerMessage)> = ENTRY_COUNTS
        .iter()
        .map(|&n| (n, append_entries(n)))
        .collect();

    let mut group = c.benchmark_group("append_entries/encode");
    for (entry_count, message) in &messages {
        group.throughput(Throughput::Elements(*entry_count));
        group.bench_function(BenchmarkId::from_parameter(entry_count), |b| {
            b.iter(|| frame::encode(black_box(message), FRAME_BYTES_MAX_DEFAULT).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("append_entries/decode");
    for (entry_count, message) in &messages {
        let bytes = frame::encode(message, FRAME_BYTES_MAX_DEFAULT).unwrap();
        assert_eq!(&frame::decode::<PeerMessage>(&bytes).unwrap(), message);
        eprintln!("{entry_count} entries: a frame of {} bytes", bytes.len());
        group.throughput(Throughput::Elements(*entry_count));
        group.bench_function(BenchmarkId::from_parameter(entry_count), |b| {
            b.iter(|| frame::decode::<PeerMessage>(black_box(&bytes)).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::quick();
    targets = encode_decode
}
criterion_main!(benches);
