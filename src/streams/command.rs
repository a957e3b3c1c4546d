//! The wire format of a command entry's payload: one [`CommandBatch`], bincode-encoded.
//!
//! The HTTP layer batches concurrent append requests into one Raft entry, so a payload holds
//! a list of commands, each answered by its own outcome. The bytes are bincode 1.3 with
//! [`bincode::DefaultOptions`] (little-endian, variable-length integers, so a short record
//! costs one length byte, not eight), trailing bytes rejected, and the payload's own length as
//! the decoding limit: a corrupt length inside it fails instead of allocating.
//!
//! These bytes are stored in the WAL and replayed after upgrades, so the format only grows:
//! - [`StreamCommand`] variants are encoded by position. New kinds (retention, trim) go at the
//!   end; never reorder, remove or change a variant, and never add a field to one (bincode has
//!   no field tags). A changed command is a new variant.
//! - A node that cannot decode a kind it does not know applies that entry as a no-op, which
//!   would diverge from nodes that can. So a new kind must not be proposed until every member
//!   runs code that knows it (a version gate on the leader).
//!
//! Proposing does not go through serde either: the `writer` module writes bincode's bytes by
//! hand, in one pass (tested byte for byte against bincode).
//!
//! Applying and reading do not materialise a batch: [`BatchView`] (the `view` module) reads the
//! same bytes with every string and record borrowed from the payload, so locating records
//! `[a, b)` of command `k` copies nothing but those records. It still walks every record
//! before them, because bincode has no skip index; an offset table in the payload is a later
//! optimisation.

use std::ops::Range;

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use super::view::{AppendView, BatchView, CommandView, ProducerSeqView, RecordsView};
use super::{view, writer};
use crate::types::Offset;

/// The payload of one Raft command entry: the commands, applied in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch {
    pub commands: Vec<StreamCommand>,
}

/// One command in a batch. Encoded by variant position: append new kinds at the end only,
/// and mirror each in [`CommandView`] and in the `writer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCommand {
    Append(AppendCommand),
}

/// Append `records` to `stream`, optionally as an idempotent producer write and optionally
/// only if the stream's next offset is `expected_offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCommand {
    pub stream: String,
    pub records: Vec<Bytes>,
    pub producer: Option<ProducerSeq>,
    pub expected_offset: Option<Offset>,
}

/// A producer's identity and the sequence number of this write (API.md's `producer` field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSeq {
    pub id: String,
    pub seq: u64,
}

/// Why a payload, or the part of it asked for, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is not a command batch: {0}")]
    Malformed(String),
    #[error("commands {start}..{end} are not within a batch of {command_count}")]
    NoSuchCommands {
        start: u32,
        end: u32,
        command_count: usize,
    },
    #[error("records {start}..{end} are not within the commands' {record_count}")]
    NoSuchRecords {
        start: u32,
        end: u32,
        record_count: usize,
    },
}

/// Encodes `batch` as an entry payload: bincode's bytes, written by hand (the `writer`
/// module says why).
pub fn encode(batch: &CommandBatch) -> Bytes {
    Bytes::from(writer::write_batch(batch))
}

/// Decodes an entry payload into owned commands. Untrusted bytes give an error, never a panic.
pub fn decode(payload: &[u8]) -> Result<CommandBatch, PayloadError> {
    options(payload)
        .deserialize(payload)
        .map_err(|error| PayloadError::Malformed(error.to_string()))
}

/// Decodes an entry payload without copying any string or record out of it.
pub fn decode_view(payload: &[u8]) -> Result<BatchView<'_>, PayloadError> {
    view::read_batch(payload).map_err(|error| PayloadError::Malformed(error.to_string()))
}

/// The decoding options: [`encode`]'s, limited to the payload's own length.
fn options(payload: &[u8]) -> impl Options {
    bincode::DefaultOptions::new()
        .reject_trailing_bytes()
        .with_limit(payload.len() as u64)
}

/// Borrows, of the records of commands `commands` of an entry payload taken together in
/// order, those at positions `records`: the read path's answer to a
/// [`RecordRange`](super::RecordRange). Nothing is copied.
pub fn record_slices(
    payload: &[u8],
    commands: Range<u32>,
    records: Range<u32>,
) -> Result<Vec<&[u8]>, PayloadError> {
    let batch = decode_view(payload)?;
    let command_count = batch.commands.len();
    let Some(asked_commands) = batch
        .commands
        .get(commands.start as usize..commands.end as usize)
    else {
        return Err(PayloadError::NoSuchCommands {
            start: commands.start,
            end: commands.end,
            command_count,
        });
    };
    let appends = asked_commands.iter().map(|command| match command {
        CommandView::Append(append) => append.records,
    });
    let record_count: usize = appends.clone().map(|records| records.len()).sum();
    if records.start > records.end || records.end as usize > record_count {
        return Err(PayloadError::NoSuchRecords {
            start: records.start,
            end: records.end,
            record_count,
        });
    }
    let all = appends.flat_map(|records| records.iter());
    Ok(all
        .take(records.end as usize)
        .skip(records.start as usize)
        .collect())
}

/// [`record_slices`] of a shared payload, as slices of it: no record is copied, and each
/// keeps the payload's buffer alive.
pub fn records_in_shared(
    payload: &Bytes,
    commands: Range<u32>,
    records: Range<u32>,
) -> Result<Vec<Bytes>, PayloadError> {
    let slices = record_slices(payload, commands, records)?;
    Ok(slices.into_iter().map(|r| payload.slice_ref(r)).collect())
}

/// [`record_slices`], copied out of the payload.
pub fn records_in(
    payload: &[u8],
    commands: Range<u32>,
    records: Range<u32>,
) -> Result<Vec<Bytes>, PayloadError> {
    let slices = record_slices(payload, commands, records)?;
    Ok(slices.into_iter().map(Bytes::copy_from_slice).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn append(stream: &str, records: &[&str]) -> StreamCommand {
        StreamCommand::Append(AppendCommand {
            stream: stream.to_string(),
            records: records.iter().map(|r| Bytes::from(r.to_string())).collect(),
            producer: None,
            expected_offset: None,
        })
    }

    fn random_batch(rng: &mut SmallRng) -> CommandBatch {
        let commands = (0..rng.gen_range(0..5))
            .map(|_| {
                let records = (0..rng.gen_range(0..6))
                    .map(|_| {
                        let len = rng.gen_range(0..300);
                        Bytes::from((0..len).map(|_| rng.gen()).collect::<Vec<u8>>())
                    })
                    .collect();
                StreamCommand::Append(AppendCommand {
                    stream: format!("s{}", rng.gen_range(0..1000)),
                    records,
                    producer: rng.gen_bool(0.5).then(|| ProducerSeq {
                        id: format!("p{}", rng.gen::<u16>()),
                        seq: rng.gen(),
                    }),
                    expected_offset: rng.gen_bool(0.5).then(|| Offset(rng.gen())),
                })
            })
            .collect();
        CommandBatch { commands }
    }

    /// The view must read exactly what the owned types wrote, or reads return wrong records.
    fn assert_view_matches(batch: &CommandBatch, payload: &[u8]) {
        let view = decode_view(payload).unwrap();
        assert_eq!(view.commands.len(), batch.commands.len());
        for (owned, viewed) in batch.commands.iter().zip(&view.commands) {
            let (StreamCommand::Append(owned), CommandView::Append(viewed)) = (owned, viewed);
            assert_eq!(owned.stream, viewed.stream);
            let viewed_records: Vec<&[u8]> = viewed.records.iter().collect();
            let owned_records: Vec<&[u8]> = owned.records.iter().map(|r| &r[..]).collect();
            assert_eq!(owned_records, viewed_records);
            let viewed_producer = viewed.producer.map(|p| (p.id.to_string(), p.seq));
            let owned_producer = owned.producer.as_ref().map(|p| (p.id.clone(), p.seq));
            assert_eq!(owned_producer, viewed_producer);
            assert_eq!(owned.expected_offset, viewed.expected_offset);
        }
    }

    /// Every varint width, in lengths and integers alike.
    fn wide_batch(rng: &mut SmallRng) -> CommandBatch {
        let widths = [
            0u64,
            250,
            251,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ];
        let mut pick =
            || widths[rng.gen_range(0..widths.len())].saturating_sub(rng.gen_range(0..2));
        let commands = vec![StreamCommand::Append(AppendCommand {
            stream: "w".repeat(300),
            records: vec![Bytes::from(vec![7u8; 70_000]), Bytes::new()],
            producer: Some(ProducerSeq {
                id: "p".repeat(251),
                seq: pick(),
            }),
            expected_offset: Some(Offset(pick())),
        })];
        CommandBatch { commands }
    }

    /// The hand-written encoder must write exactly bincode's bytes: the WAL holds entries that
    /// bincode wrote, and the owned decoder is bincode's.
    #[test]
    fn the_writer_writes_exactly_what_bincode_writes() {
        let bincode_bytes = |batch: &CommandBatch| {
            bincode::DefaultOptions::new()
                .reject_trailing_bytes()
                .serialize(batch)
                .unwrap()
        };
        let mut rng = SmallRng::seed_from_u64(13);
        for _ in 0..2_000 {
            let batch = random_batch(&mut rng);
            assert_eq!(encode(&batch)[..], bincode_bytes(&batch)[..], "{batch:?}");
        }
        for _ in 0..200 {
            let batch = wide_batch(&mut rng);
            assert_eq!(encode(&batch)[..], bincode_bytes(&batch)[..]);
            assert_eq!(decode(&encode(&batch)).unwrap(), batch);
        }
        let empty = CommandBatch::default();
        assert_eq!(encode(&empty)[..], bincode_bytes(&empty)[..]);
    }

    #[test]
    fn random_batches_round_trip_through_both_decoders() {
        let mut rng = SmallRng::seed_from_u64(11);
        for _ in 0..500 {
            let batch = random_batch(&mut rng);
            let payload = encode(&batch);
            assert_eq!(decode(&payload).unwrap(), batch);
            assert_view_matches(&batch, &payload);
        }
    }

    #[test]
    fn records_in_returns_the_asked_records_of_the_asked_command() {
        let batch = CommandBatch {
            commands: vec![append("a", &["a0", "a1"]), append("b", &["b0", "b1", "b2"])],
        };
        let payload = encode(&batch);
        let got = records_in(&payload, 1..2, 1..3).unwrap();
        assert_eq!(got, vec![Bytes::from("b1"), Bytes::from("b2")]);
        assert_eq!(
            records_in(&payload, 0..1, 0..1).unwrap(),
            vec![Bytes::from("a0")]
        );
        assert!(records_in(&payload, 0..1, 1..1).unwrap().is_empty());
        assert_eq!(records_in_shared(&payload, 1..2, 1..3).unwrap(), got);
        // Two commands' records read as one run.
        assert_eq!(
            records_in(&payload, 0..2, 1..4).unwrap(),
            vec![Bytes::from("a1"), Bytes::from("b0"), Bytes::from("b1")]
        );
    }

    #[test]
    fn records_in_refuses_what_the_payload_does_not_hold() {
        let payload = encode(&CommandBatch {
            commands: vec![append("a", &["a0", "a1"])],
        });
        assert!(matches!(
            records_in(&payload, 1..2, 0..1),
            Err(PayloadError::NoSuchCommands { .. })
        ));
        assert!(matches!(
            records_in(&payload, 0..2, 0..1),
            Err(PayloadError::NoSuchCommands { .. })
        ));
        assert!(matches!(
            records_in(&payload, 0..1, 1..3),
            Err(PayloadError::NoSuchRecords { .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 2..1;
        assert!(matches!(
            records_in(&payload, 0..1, backwards),
            Err(PayloadError::NoSuchRecords { .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 1..0;
        assert!(matches!(
            records_in(&payload, backwards, 0..0),
            Err(PayloadError::NoSuchCommands { .. })
        ));
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_an_error() {
        let payload = encode(&CommandBatch {
            commands: vec![append("a", &["a0", "a1"]), append("b", &["b0"])],
        });
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
            assert!(decode_view(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = payload.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert!(decode_view(&longer).is_err());
    }

    /// The view reader and bincode's decoder of the owned types must agree on every payload:
    /// both refuse it, or both accept it and read the same commands.
    fn assert_decoders_agree(payload: &[u8]) {
        match (decode(payload), decode_view(payload)) {
            (Ok(batch), Ok(_)) => assert_view_matches(&batch, payload),
            (Err(_), Err(_)) => {}
            (owned, viewed) => panic!(
                "the decoders disagree on {payload:?}: owned {:?}, view {:?}",
                owned.map(|_| ()),
                viewed.map(|_| ())
            ),
        }
    }

    #[test]
    fn both_decoders_agree_on_random_and_mutated_bytes() {
        let mut rng = SmallRng::seed_from_u64(12);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..128);
            let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            assert_decoders_agree(&garbage);
            let first = rng.gen_range(0..3);
            let _ = records_in(&garbage, first..first + 1, 0..rng.gen_range(0..3));
        }
        for _ in 0..20_000 {
            let mut payload = encode(&random_batch(&mut rng)).to_vec();
            if payload.is_empty() {
                continue;
            }
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..payload.len());
                payload[at] ^= 1 << rng.gen_range(0..8);
            }
            assert_decoders_agree(&payload);
        }
    }

    #[test]
    fn a_repeated_stream_name_is_read_again_and_a_changed_one_checked_again() {
        let payload = encode(&CommandBatch {
            commands: vec![
                append("ab", &["0"]),
                append("ab", &["1"]),
                append("ac", &["2"]),
            ],
        });
        assert_decoders_agree(&payload);
        let view = decode_view(&payload).unwrap();
        let names: Vec<&str> = view
            .commands
            .iter()
            .map(|CommandView::Append(a)| a.stream)
            .collect();
        assert_eq!(names, ["ab", "ab", "ac"]);
        // The third name, one byte from the first two, made invalid UTF-8: both refuse.
        let third = payload.len() - 1 - payload.iter().rev().position(|&b| b == b'c').unwrap();
        let mut bad = payload.to_vec();
        bad[third] = 0xff;
        assert!(decode_view(&bad).is_err());
        assert_decoders_agree(&bad);
    }

    #[test]
    fn both_decoders_accept_a_wider_varint_than_needed() {
        // One command: an append to "a" (its length as a u16: 251, 1, 0) of one record "x",
        // no producer, expected offset 7 as a u64 (253 and eight bytes).
        let mut payload = vec![1, 0, 251, 1, 0, b'a', 1, 1, b'x', 0, 1, 253];
        payload.extend_from_slice(&7u64.to_le_bytes());
        assert_decoders_agree(&payload);
        let view = decode_view(&payload).unwrap();
        let CommandView::Append(append) = &view.commands[0];
        assert_eq!(append.stream, "a");
        assert_eq!(append.expected_offset, Some(Offset(7)));
    }

    #[test]
    fn a_huge_length_prefix_fails_without_allocating_it() {
        // One command claimed, then a stream name "of u64::MAX bytes" (varint tag 253).
        let mut payload = vec![1, 0, 253];
        payload.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&payload).is_err());
        assert!(decode_view(&payload).is_err());
        // A batch "of u64::MAX commands".
        let mut payload = vec![253];
        payload.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&payload).is_err());
        assert!(decode_view(&payload).is_err());
    }
}
