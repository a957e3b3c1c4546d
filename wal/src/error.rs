//! The WAL's errors, in two kinds.
//!
//! *Usage errors* (`NotContiguous`, `TermDecreased`, `PayloadTooLarge`, `InvalidIndex`,
//! `InvalidOptions`) are the caller's mistakes: nothing was written and the WAL stays usable.
//! *Fatal errors* are everything else. An I/O error poisons the WAL (every later call returns
//! `Poisoned`, carrying the first error's text), and a corruption error refuses to open rather
//! than drop data that may have been committed. Messages name the file and, where one exists,
//! the byte offset, so an operator can find what went wrong without a debugger.

use std::io;
use std::path::PathBuf;

/// The result type of every fallible WAL call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed. The WAL that saw it is poisoned from then on.
    #[error("{op} failed on {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An earlier I/O error poisoned this WAL; nothing after it may pretend to succeed.
    #[error("the WAL is poisoned by an earlier I/O error: {first}")]
    Poisoned { first: String },

    /// A record that must be valid is not: refuse rather than drop possibly committed data.
    #[error("corrupt record in {} at byte {offset}: {reason}", path.display())]
    CorruptRecord {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A segment file's header is missing, damaged, or disagrees with the file's name.
    #[error("corrupt segment header in {}: {reason}", path.display())]
    CorruptSegment { path: PathBuf, reason: String },

    /// The segment files do not form one contiguous log (a gap, an overlap, a stray file).
    #[error("segment files do not form a contiguous log: {reason}")]
    SegmentLayout { reason: String, paths: Vec<PathBuf> },

    /// The hard-state file fails its checksum or has the wrong shape.
    #[error("hard state file {} is corrupt: {reason}", path.display())]
    CorruptHardState { path: PathBuf, reason: String },

    /// Another `Wal` holds this directory's lock.
    #[error("{} is locked by another WAL (lock file {})", dir.display(), lock_path.display())]
    Locked { dir: PathBuf, lock_path: PathBuf },

    /// An appended entry does not follow the previous one.
    #[error("entry index {got} is not contiguous: expected {expected}")]
    NotContiguous { expected: u64, got: u64 },

    /// An appended entry's term is lower than the term before it.
    #[error("entry {index} has term {got}, lower than the previous term {previous}")]
    TermDecreased { index: u64, previous: u64, got: u64 },

    /// An appended entry's payload is larger than `Options::payload_bytes_max`.
    #[error(
        "entry {index} has a {payload_bytes}-byte payload, over the limit of {payload_bytes_max}"
    )]
    PayloadTooLarge {
        index: u64,
        payload_bytes: usize,
        payload_bytes_max: u32,
    },

    /// Index 0 is the empty position before the first entry; no entry has it.
    #[error("index 0 is not a valid entry index")]
    InvalidIndex,

    /// The options cannot work together (say, a record larger than a segment).
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
}

impl Error {
    /// True for errors that poison the WAL that saw them.
    pub(crate) fn poisons(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// The errno of an I/O error, for callers that treat ENOSPC apart.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
