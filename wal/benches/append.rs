//! Append + flush throughput of the WAL against the disk's own limits.
//!
//! - `raw/fdatasync_4k`: 4 KiB pwrite + fdatasync at sequential offsets of a file whose
//!   blocks are already written: the disk's sync rate, the ceiling for batch-1 flushes.
//! - `raw/fdatasync_bandwidth`: pwrite of 4096 × 288 bytes (what a 4096-record batch
//!   occupies) + fdatasync, same kind of file: the sequential bandwidth with syncs.
//! - `wal/append_flush/N`: `Wal::append` of N records of 256 bytes, then `Wal::flush`, with
//!   default options (64 MiB segments, spare segments on), compacting to keep ~3 segments —
//!   measured in the steady state of such a log: before measuring, up to 3 s of the same
//!   loop runs, so the first segments' zero-fill and the first compaction are behind it.
//!
//! The disk's speed drifts (it is shared), so the raw benches run right next to the WAL
//! benches they are compared with: `fdatasync_4k` before batches 1..512, `fdatasync_bandwidth`
//! before and after batch 4096.
//!
//! Run: `cargo bench -p raftlog-wal --bench append`. The files go to `WAL_BENCH_DIR` (default:
//! the system temp dir) — point it at the disk you want to measure, not at a tmpfs.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raftlog_wal::{encoded_record_bytes, NewEntry, Options, Wal};

const PAYLOAD_BYTES: usize = 256;
const BATCH_SIZES: [u64; 5] = [1, 8, 64, 512, 4096];
/// Raw-file benches cycle through a file this large, written in full beforehand.
const RAW_FILE_BYTES: u64 = 256 << 20;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("WAL_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(PathBuf::from(dir)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// A file of `RAW_FILE_BYTES` whose blocks are allocated and written (zeros), synced.
fn prewritten_file(dir: &tempfile::TempDir) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("raw"))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for offset in (0..RAW_FILE_BYTES).step_by(zeros.len()) {
        file.write_all_at(&zeros, offset).unwrap();
    }
    file.sync_all().unwrap();
    file
}

/// pwrite `chunk_bytes` at the next sequential offset (wrapping) + fdatasync, per iteration.
fn bench_raw(c: &mut Criterion, name: &str, chunk_bytes: usize) {
    let dir = bench_dir();
    let file = prewritten_file(&dir);
    let chunk = vec![0xA5u8; chunk_bytes];
    let mut offset = 0u64;
    let mut group = c.benchmark_group("raw");
    group.throughput(Throughput::Bytes(chunk_bytes as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            if offset + chunk_bytes as u64 > RAW_FILE_BYTES {
                offset = 0;
            }
            file.write_all_at(&chunk, offset).unwrap();
            file.sync_data().unwrap();
            offset += chunk_bytes as u64;
        })
    });
    group.finish();
}

fn raw_sync_rate(c: &mut Criterion) {
    bench_raw(c, "fdatasync_4k", 4096);
}

fn raw_bandwidth(c: &mut Criterion) {
    let batch_bytes = 4096 * encoded_record_bytes(PAYLOAD_BYTES);
    bench_raw(c, "fdatasync_bandwidth", batch_bytes);
}

fn raw_bandwidth_after(c: &mut Criterion) {
    let batch_bytes = 4096 * encoded_record_bytes(PAYLOAD_BYTES);
    bench_raw(c, "fdatasync_bandwidth_after", batch_bytes);
}

/// One append + flush of `batch_size` records, compacting to keep the log to a few segments.
fn append_flush(wal: &mut Wal, batch_size: u64, payload: &[u8]) {
    let entries_per_segment = (64 << 20) / encoded_record_bytes(PAYLOAD_BYTES) as u64;
    let next = wal.last_index() + 1;
    let batch: Vec<NewEntry<'_>> = (next..next + batch_size)
        .map(|index| NewEntry {
            index,
            term: 1,
            kind: 0,
            payload,
        })
        .collect();
    wal.append(&batch).unwrap();
    wal.flush().unwrap();
    if wal.last_index() - wal.first_index() > 4 * entries_per_segment {
        wal.compact_below(wal.last_index() - 2 * entries_per_segment)
            .unwrap();
    }
}

fn bench_wal(c: &mut Criterion, batch_sizes: &[u64]) {
    let payload = vec![0x5Au8; PAYLOAD_BYTES];
    let mut group = c.benchmark_group("wal/append_flush");
    for &batch_size in batch_sizes {
        let dir = bench_dir();
        let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
        let prefill = Instant::now();
        let segment_records = (64 << 20) / encoded_record_bytes(PAYLOAD_BYTES) as u64;
        while prefill.elapsed() < Duration::from_secs(3) && wal.last_index() < 6 * segment_records {
            append_flush(&mut wal, batch_size, &payload);
        }
        group.throughput(Throughput::Elements(batch_size));
        group.bench_function(BenchmarkId::from_parameter(batch_size), |b| {
            b.iter(|| append_flush(&mut wal, batch_size, &payload))
        });
    }
    group.finish();
}

fn wal_small(c: &mut Criterion) {
    bench_wal(c, &BATCH_SIZES[..4]);
}

fn wal_large(c: &mut Criterion) {
    bench_wal(c, &BATCH_SIZES[4..]);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = raw_sync_rate, wal_small, raw_bandwidth, wal_large, raw_bandwidth_after
}
criterion_main!(benches);
