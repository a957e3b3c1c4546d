//! The on-disk record: one log entry, self-describing and checksummed.
//!
//! ```text
//!  byte 0        4        8                16               24     25       28          32
//!       +--------+--------+----------------+----------------+------+--------+-----------+
//!       | payload| crc32c | index          | term           | kind |reserved| durable_  |
//!       | _bytes |        | (u64 LE)       | (u64 LE)       | (u8) |(3 zero | watermark |
//!       | u32 LE | u32 LE |                |                |      | bytes) | u32 LE    |
//!       +--------+--------+----------------+----------------+------+--------+-----------+
//!  byte 32: payload (payload_bytes bytes), then zeros up to the next multiple of 8
//! ```
//!
//! The CRC32C covers the segment's salt (see `segment.rs`), then bytes 0..4, then bytes
//! 8..32 + payload_bytes: the whole header except the CRC field itself, and the payload. The
//! header is covered so a flipped bit in `index` or `payload_bytes` cannot pass; the salt is
//! covered so bytes that merely look like a record (say, a payload that embeds a record from
//! another log, or a recycled segment's old records) never validate in this segment. Padding
//! is not covered: it carries nothing.
//!
//! `durable_watermark` is the segment-local byte offset through which the segment was known
//! durable when the record was written: the end of the last flush that had completed (or the
//! end of what recovery kept, or the segment header for a new segment). Every record carries
//! it; it costs no I/O, since the writer knows it when it encodes the batch. Within a segment
//! it never decreases and never exceeds the record's own offset. Recovery uses it to tell a
//! power loss from corruption (`recovery.rs`): a valid record whose watermark lies past a bad
//! record proves the bad record had been flushed.
//!
//! Records start at 8-byte-aligned offsets, which keeps the header fields aligned and lets
//! recovery probe for records at aligned positions only.

use crate::NewEntry;

/// Bytes in a record header.
pub(crate) const HEADER_BYTES: usize = 32;
/// Records start and end on multiples of this.
pub(crate) const ALIGN_BYTES: usize = 8;

/// The bytes a record with a `payload_bytes`-byte payload takes on disk, padding included.
///
/// Callers that budget batches by disk space can use it; the WAL's own limits are in
/// `Options`.
pub fn encoded_record_bytes(payload_bytes: usize) -> usize {
    (HEADER_BYTES + payload_bytes).next_multiple_of(ALIGN_BYTES)
}

/// The CRC32C seed of a segment: every record's checksum starts from its segment's salt.
pub(crate) fn crc_seed(salt: u64) -> u32 {
    crc32c::crc32c(&salt.to_le_bytes())
}

/// Writes `entry` as a record into `dst`, which is exactly `encoded_record_bytes` long,
/// stamped with the segment's `durable_watermark` at the time of writing.
pub(crate) fn encode(dst: &mut [u8], seed: u32, entry: &NewEntry<'_>, durable_watermark: u32) {
    let payload_bytes = entry.payload.len();
    assert_eq!(
        dst.len(),
        encoded_record_bytes(payload_bytes),
        "record buffer size"
    );
    let payload_bytes_u32 = u32::try_from(payload_bytes).expect("payload over 4 GiB");
    dst[0..4].copy_from_slice(&payload_bytes_u32.to_le_bytes());
    dst[4..8].fill(0);
    dst[8..16].copy_from_slice(&entry.index.to_le_bytes());
    dst[16..24].copy_from_slice(&entry.term.to_le_bytes());
    dst[24] = entry.kind;
    dst[25..28].fill(0);
    dst[28..HEADER_BYTES].copy_from_slice(&durable_watermark.to_le_bytes());
    let payload_end = HEADER_BYTES + payload_bytes;
    dst[HEADER_BYTES..payload_end].copy_from_slice(entry.payload);
    dst[payload_end..].fill(0);
    let crc = checksum(seed, &dst[..payload_end]);
    dst[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The CRC of a record's header-and-payload bytes, skipping the CRC field.
fn checksum(seed: u32, record: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(seed, &record[0..4]);
    crc32c::crc32c_append(crc, &record[8..])
}

/// A record that passed every check, located within the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub index: u64,
    pub term: u64,
    pub kind: u8,
    /// The segment offset through which the segment was durable when this was written.
    pub durable_watermark: u32,
    pub payload_bytes: usize,
    /// Header, payload and padding: where the next record starts.
    pub encoded_bytes: usize,
}

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Fewer bytes remain than a header.
    NoRoom { bytes_left: usize },
    /// The header claims a payload that runs past the end of the segment.
    TooLong {
        payload_bytes: u32,
        bytes_left: usize,
    },
    /// A reserved header byte is not zero.
    Reserved,
    /// The checksum does not match.
    Checksum { stored: u32, computed: u32 },
    /// A valid record, but not the entry expected here.
    WrongIndex { expected: u64, found: u64 },
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::NoRoom { bytes_left } => {
                write!(f, "only {bytes_left} bytes left, less than a record header")
            }
            Invalid::TooLong {
                payload_bytes,
                bytes_left,
            } => write!(
                f,
                "header claims a {payload_bytes}-byte payload but only {bytes_left} bytes follow"
            ),
            Invalid::Reserved => write!(f, "reserved header bytes are not zero"),
            Invalid::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Invalid::WrongIndex { expected, found } => {
                write!(f, "expected entry {expected}, found entry {found}")
            }
        }
    }
}

/// Reads the header fields without checking anything: cheap, for budgeting and probing.
pub(crate) fn peek(bytes: &[u8]) -> Option<(u32, u64)> {
    if bytes.len() < HEADER_BYTES {
        return None;
    }
    let payload_bytes = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let index = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    Some((payload_bytes, index))
}

/// Decodes the record at the start of `bytes` (which may run on to the end of the segment)
/// and checks everything: room, length, reserved bytes, checksum, and the expected index.
pub(crate) fn decode(bytes: &[u8], seed: u32, expected_index: u64) -> Result<Decoded, Invalid> {
    let (payload_bytes, index) = peek(bytes).ok_or(Invalid::NoRoom {
        bytes_left: bytes.len(),
    })?;
    let bytes_left = bytes.len() - HEADER_BYTES;
    if payload_bytes as usize > bytes_left {
        return Err(Invalid::TooLong {
            payload_bytes,
            bytes_left,
        });
    }
    if bytes[25..28].iter().any(|&b| b != 0) {
        return Err(Invalid::Reserved);
    }
    let payload_end = HEADER_BYTES + payload_bytes as usize;
    let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let computed = checksum(seed, &bytes[..payload_end]);
    if stored != computed {
        return Err(Invalid::Checksum { stored, computed });
    }
    if index != expected_index {
        return Err(Invalid::WrongIndex {
            expected: expected_index,
            found: index,
        });
    }
    Ok(Decoded {
        index,
        term: u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
        kind: bytes[24],
        durable_watermark: u32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes")),
        payload_bytes: payload_bytes as usize,
        encoded_bytes: encoded_record_bytes(payload_bytes as usize).min(bytes.len()),
    })
}

/// The record at the start of `bytes` if it is checksum-valid under `seed` and its index is
/// at least `index_min`, whatever index it has: how recovery finds records past a bad one.
/// Cheap fields are checked first, so probing every aligned offset of a segment is fast.
pub(crate) fn looks_valid(bytes: &[u8], seed: u32, index_min: u64) -> Option<Decoded> {
    let (payload_bytes, index) = peek(bytes)?;
    if index < index_min || payload_bytes as usize > bytes.len() - HEADER_BYTES {
        return None;
    }
    decode(bytes, seed, index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(seed: u32, index: u64, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0; encoded_record_bytes(payload.len())];
        let entry = NewEntry {
            index,
            term: 7,
            kind: 3,
            payload,
        };
        encode(&mut buf, seed, &entry, 4096 + index as u32);
        buf
    }

    #[test]
    fn round_trip_and_padding() {
        let seed = crc_seed(42);
        for payload_bytes in 0..20 {
            let payload = vec![0xAB; payload_bytes];
            let buf = encoded(seed, 9, &payload);
            assert_eq!(buf.len() % ALIGN_BYTES, 0);
            let record = decode(&buf, seed, 9).unwrap();
            assert_eq!((record.index, record.term, record.kind), (9, 7, 3));
            assert_eq!(record.durable_watermark, 4096 + 9);
            assert_eq!(record.payload_bytes, payload_bytes);
            assert_eq!(record.encoded_bytes, buf.len());
        }
    }

    #[test]
    fn every_flipped_bit_in_header_and_payload_is_caught() {
        let seed = crc_seed(1);
        let buf = encoded(seed, 5, b"hello world");
        for bit in 0..(HEADER_BYTES + 11) * 8 {
            let mut copy = buf.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&copy, seed, 5).is_err(), "bit {bit} not caught");
        }
    }

    #[test]
    fn other_salt_wrong_index_and_zeros_are_rejected() {
        let buf = encoded(crc_seed(1), 5, b"x");
        assert!(matches!(
            decode(&buf, crc_seed(2), 5),
            Err(Invalid::Checksum { .. })
        ));
        assert!(matches!(
            decode(&buf, crc_seed(1), 6),
            Err(Invalid::WrongIndex { .. })
        ));
        assert!(decode(&[0; 64], crc_seed(1), 1).is_err());
        assert!(matches!(
            decode(&buf[..20], crc_seed(1), 5),
            Err(Invalid::NoRoom { .. })
        ));
        assert_eq!(looks_valid(&buf, crc_seed(1), 5).map(|r| r.index), Some(5));
        assert_eq!(looks_valid(&buf, crc_seed(1), 6), None);
    }
}
