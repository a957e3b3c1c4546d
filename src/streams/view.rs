//! Reading a command payload in place: a [`BatchView`] borrows every stream name, producer id
//! and record from the payload's bytes and allocates nothing but its list of commands.
//!
//! The bytes are [`command`](super::command)'s: bincode 1.3 with `DefaultOptions` — integers
//! as varints (one byte below 251, else a marker byte 251/252/253 and a little-endian
//! u16/u32/u64), lengths and enum variants as varints, an `Option` as a tag byte 0 or 1.
//! The owned types are encoded (and may be decoded) by bincode itself; this reader decodes the
//! same bytes by hand because it runs for every command on every node when an entry is applied,
//! and serde's borrowed decoding there cost a fifth of the core benchmark's CPU, most of it
//! collecting each command's records into a vector that applying only counts. Here a command's
//! records stay a [`RecordsView`]: their count, and the bytes that hold them, checked once.
//!
//! It accepts exactly the payloads bincode's decoder of the owned types accepts, and reads
//! them the same (property-tested against it in `command`'s tests): nodes must never read one
//! entry two ways.

use crate::types::Offset;

/// The borrowed mirror of a [`CommandBatch`](super::CommandBatch).
#[derive(Debug)]
pub struct BatchView<'a> {
    pub commands: Vec<CommandView<'a>>,
}

/// The borrowed mirror of a [`StreamCommand`](super::StreamCommand); same variants, same order.
#[derive(Debug)]
pub enum CommandView<'a> {
    Append(AppendView<'a>),
}

/// The borrowed mirror of an [`AppendCommand`](super::AppendCommand).
#[derive(Debug)]
pub struct AppendView<'a> {
    pub stream: &'a str,
    pub records: RecordsView<'a>,
    pub producer: Option<ProducerSeqView<'a>>,
    pub expected_offset: Option<Offset>,
}

/// The borrowed mirror of a [`ProducerSeq`](super::ProducerSeq).
#[derive(Clone, Copy, Debug)]
pub struct ProducerSeqView<'a> {
    pub id: &'a str,
    pub seq: u64,
}

/// A command's records, still in the payload: `count` records, each a varint length and its
/// bytes, filling `bytes` exactly (checked when the batch was read).
#[derive(Clone, Copy, Debug)]
pub struct RecordsView<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> RecordsView<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records in order, each borrowed from the payload.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut reader = Reader::new(self.bytes);
        (0..self.count).map(move |_| {
            reader
                .bytes()
                .expect("the records were checked when the batch was read")
        })
    }
}

/// Why a payload does not read as a command batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the payload ends inside a value")]
    Truncated,
    #[error("{0} bytes follow the batch")]
    TrailingBytes(usize),
    #[error("invalid varint marker {0}")]
    BadVarint(u8),
    #[error("a value does not fit its type")]
    Overflow,
    #[error("unknown command kind {0}")]
    UnknownCommand(u64),
    #[error("invalid option tag {0}")]
    BadOptionTag(u8),
    #[error("a string is not UTF-8")]
    NotUtf8,
}

/// Reads a whole payload; any bytes after the batch are an error, as for bincode's decoder.
pub fn read_batch(payload: &[u8]) -> Result<BatchView<'_>, ViewError> {
    let mut reader = Reader::new(payload);
    let count = reader.length()?;
    // Every command takes at least five bytes, so a corrupt count cannot reserve much.
    let mut commands = Vec::with_capacity(count.min(reader.rest.len() / 5));
    for _ in 0..count {
        commands.push(reader.command()?);
    }
    match reader.rest.len() {
        0 => Ok(BatchView { commands }),
        trailing => Err(ViewError::TrailingBytes(trailing)),
    }
}

/// A cursor over the bytes not yet read.
struct Reader<'a> {
    rest: &'a [u8],
    /// The previous command's stream name: a batch's commands mostly name one stream, whose
    /// bytes then need comparing, not checking as UTF-8 again.
    last_stream: &'a str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            rest: bytes,
            last_stream: "",
        }
    }

    fn command(&mut self) -> Result<CommandView<'a>, ViewError> {
        // The variant index: a u32 varint.
        match self.varint()? {
            0 => Ok(CommandView::Append(self.append()?)),
            other if u32::try_from(other).is_err() => Err(ViewError::Overflow),
            other => Err(ViewError::UnknownCommand(other)),
        }
    }

    fn append(&mut self) -> Result<AppendView<'a>, ViewError> {
        let stream = self.stream_name()?;
        let records = self.records()?;
        let producer = match self.option_tag()? {
            false => None,
            true => Some(ProducerSeqView {
                id: self.str()?,
                seq: self.varint()?,
            }),
        };
        let expected_offset = match self.option_tag()? {
            false => None,
            true => Some(Offset(self.varint()?)),
        };
        Ok(AppendView {
            stream,
            records,
            producer,
            expected_offset,
        })
    }

    fn records(&mut self) -> Result<RecordsView<'a>, ViewError> {
        let count = self.length()?;
        let start = self.rest;
        for _ in 0..count {
            self.bytes()?;
        }
        let used = start.len() - self.rest.len();
        Ok(RecordsView {
            count,
            bytes: &start[..used],
        })
    }

    /// A string, like [`Reader::str`], remembered for the next command.
    fn stream_name(&mut self) -> Result<&'a str, ViewError> {
        let bytes = self.bytes()?;
        if bytes != self.last_stream.as_bytes() {
            self.last_stream = std::str::from_utf8(bytes).map_err(|_| ViewError::NotUtf8)?;
        }
        Ok(self.last_stream)
    }

    fn str(&mut self) -> Result<&'a str, ViewError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| ViewError::NotUtf8)
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self) -> Result<&'a [u8], ViewError> {
        let len = self.length()?;
        self.take(len)
    }

    fn length(&mut self) -> Result<usize, ViewError> {
        usize::try_from(self.varint()?).map_err(|_| ViewError::Overflow)
    }

    fn option_tag(&mut self) -> Result<bool, ViewError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(ViewError::BadOptionTag(tag)),
        }
    }

    /// bincode's varint: a byte below 251 is the value; 251, 252 and 253 announce a
    /// little-endian u16, u32 and u64. (Like bincode, a wider form than needed is accepted.)
    fn varint(&mut self) -> Result<u64, ViewError> {
        let marker = self.take(1)?[0];
        let width = match marker {
            0..=250 => return Ok(u64::from(marker)),
            251 => 2,
            252 => 4,
            253 => 8,
            _ => return Err(ViewError::BadVarint(marker)),
        };
        let mut little_endian = [0u8; 8];
        little_endian[..width].copy_from_slice(self.take(width)?);
        Ok(u64::from_le_bytes(little_endian))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ViewError> {
        if len > self.rest.len() {
            return Err(ViewError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }
}
