//! Applying committed entries to the stream state machine, and the stream index alone.
//!
//! - `stream_apply/S_streams/P/N`: `Streams::apply` of one committed entry whose payload is
//!   what the node proposes for N concurrent single-record appends: `streams::encode` of a
//!   `CommandBatch` of N append commands, each of one 256-byte record (N = 1, 16, 256). The
//!   commands go round-robin to S streams (1, 4 or 10,000: with one stream, an entry's
//!   commands all extend one run of the index, with more they alternate); with P = `producer`, each carries an
//!   idempotent producer id (1,024 producers, round-robin, each with a rising `seq`), with
//!   P = `no_producer` none. Every stream and producer was written before measuring, and each
//!   entry applies at the next log index; the payload is encoded outside the timing (it is
//!   new for every iteration, because a producer's `seq` must rise).
//! - `stream_index/append/S_streams`: `Index::append` of one single-record write, round-robin
//!   to S streams: the index's share of the above.
//!
//! Throughput is in records. Run: `cargo bench --bench stream_apply` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run, or a filter such as
//! `-- stream_index`).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use raftlog::streams::index::Index;
use raftlog::streams::{
    self, AppendCommand, AppendOutcome, CommandBatch, ProducerSeq, StreamCommand, Streams, WriteId,
    PRODUCERS_MAX_DEFAULT,
};
use raftlog::types::LogIndex;

mod support;

const BATCH_SIZES: [u64; 3] = [1, 16, 256];
const STREAM_COUNTS: [u64; 3] = [1, 4, 10_000];
const PRODUCER_COUNT: u64 = 1024;
const RECORD_BYTES: usize = 256;

/// Builds entry payloads: commands numbered from 0, command `c` to stream `c % S` and, with
/// producers, from producer `c % PRODUCER_COUNT` with `seq` `c / PRODUCER_COUNT + 1`.
struct Workload {
    stream_names: Vec<String>,
    producer_ids: Option<Vec<String>>,
    record: Bytes,
    next_command: u64,
}

impl Workload {
    fn new(stream_count: u64, with_producer: bool) -> Self {
        let producer_ids = (0..PRODUCER_COUNT).map(|p| format!("producer-{p}"));
        Self {
            stream_names: (0..stream_count).map(|s| format!("stream-{s}")).collect(),
            producer_ids: with_producer.then(|| producer_ids.collect()),
            record: Bytes::from(vec![0x5a; RECORD_BYTES]),
            next_command: 0,
        }
    }

    fn payload(&mut self, command_count: u64) -> Bytes {
        let commands = (0..command_count)
            .map(|_| {
                let c = self.next_command;
                self.next_command += 1;
                let stream_count = self.stream_names.len() as u64;
                StreamCommand::Append(AppendCommand {
                    stream: self.stream_names[(c % stream_count) as usize].clone(),
                    records: vec![self.record.clone()],
                    producer: self.producer_ids.as_ref().map(|ids| ProducerSeq {
                        id: ids[(c % PRODUCER_COUNT) as usize].clone(),
                        seq: c / PRODUCER_COUNT + 1,
                    }),
                    expected_offset: None,
                })
            })
            .collect();
        streams::encode(&CommandBatch { commands })
    }
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_apply");
    for stream_count in STREAM_COUNTS {
        for with_producer in [false, true] {
            let producer = if with_producer {
                "producer"
            } else {
                "no_producer"
            };
            let case = format!("{stream_count}_streams/{producer}");
            for batch_size in BATCH_SIZES {
                let mut workload = Workload::new(stream_count, with_producer);
                let mut state = Streams::new(PRODUCERS_MAX_DEFAULT);
                let mut index = LogIndex(0);
                // Write every stream and producer once, so that none is new while measuring.
                while workload.next_command < stream_count.max(PRODUCER_COUNT) {
                    index = index.next();
                    let outcomes = state.apply(index, &workload.payload(batch_size));
                    assert!(outcomes
                        .iter()
                        .all(|o| matches!(o, AppendOutcome::Appended { .. })));
                }
                group.throughput(Throughput::Elements(batch_size));
                group.bench_function(BenchmarkId::new(&case, batch_size), |b| {
                    b.iter_batched_ref(
                        || workload.payload(batch_size),
                        |payload| {
                            index = index.next();
                            state.apply(index, payload)
                        },
                        BatchSize::LargeInput,
                    )
                });
            }
        }
    }
    group.finish();
}

fn index_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_index/append");
    group.throughput(Throughput::Elements(1));
    for stream_count in STREAM_COUNTS {
        let names: Vec<String> = (0..stream_count).map(|s| format!("stream-{s}")).collect();
        let mut index = Index::default();
        let mut log_index = LogIndex(0);
        let mut append_next = |index: &mut Index| {
            log_index = log_index.next();
            let stream = &names[(log_index.0 % stream_count) as usize];
            let written_at = WriteId {
                log_index,
                command: 0,
            };
            index.append(stream, written_at, 1)
        };
        for _ in 0..stream_count {
            append_next(&mut index);
        }
        let id = BenchmarkId::from_parameter(format!("{stream_count}_streams"));
        group.bench_function(id, |b| b.iter(|| append_next(&mut index)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::quick();
    targets = apply, index_append
}
criterion_main!(benches);
