//! `raftlog-wal`: the segmented write-ahead log under raftlog's Raft log.
//!
//! The log is a directory of segment files, each preallocated to `Options::segment_bytes`
//! and memory-mapped (read-only, shared). Entries are appended as checksummed records
//! (`record.rs` has the byte layout) by one writer, [`Wal`], which writes a batch into the
//! file's page cache with one `pwrite`, and read concurrently as zero-copy slices of the map
//! through [`WalReader`]s. Nothing is durable until a flush returns: [`Wal::start_flush`]
//! hands out a [`FlushJob`] whose fdatasync runs on another thread while the writer keeps
//! appending (group commit), and [`Wal::finish_flush`] reports the new durable index.
//!
//! The promises:
//! - An entry reported durable survives any crash, power loss included (pages written back
//!   out of order); recovery keeps exactly a prefix of what was written. Damage to bytes the
//!   log can prove were flushed (a sealed segment; bytes below a later record's durable
//!   watermark, `record.rs`) refuses to open, naming file and byte offset, rather than drop
//!   an entry that may have been committed. Damage past that proof is cut as a torn tail and
//!   reported; `recovery.rs` has the rule and its one blind spot.
//! - Payload slices stay valid and unchanged while held, across truncation and compaction:
//!   bytes a reader can see are never rewritten; files are renamed or unlinked instead, and
//!   a compacted file is reused only once no slice of it exists.
//! - After any I/O error the WAL is poisoned: every later call returns [`Error::Poisoned`].
//!
//! Term and vote live apart, in [`HardStateFile`], because another actor owns them.
//!
//! Files, one job each: `wal.rs` (writer, append, segment switch), `flush.rs` (group
//! commit), `truncate.rs` (suffix truncation, compaction), `reader.rs`, `recovery.rs`,
//! `record.rs` and `segment.rs` (byte formats), `segments.rs` (file names, layout check),
//! `log_state.rs` and `terms.rs` (the in-memory index), `active.rs`, `spare.rs` (recycled
//! and zero-filled spare segments), `options.rs`, `hard_state.rs`, `io.rs` (the syscall
//! seam), `error.rs`.

mod active;
mod error;
mod flush;
mod hard_state;
mod io;
mod log_state;
mod options;
mod reader;
mod record;
mod recovery;
mod segment;
mod segments;
mod spare;
mod terms;
mod truncate;
mod wal;

pub use error::{Error, Result};
pub use flush::{FlushJob, FlushOutcome};
pub use hard_state::{HardState, HardStateFile};
pub use io::{Fault, FaultInjector};
pub use options::Options;
pub use reader::{StoredEntry, WalReader};
pub use record::encoded_record_bytes;
pub use recovery::{RecoveryReport, TornTail};
pub use segment::SEGMENT_HEADER_BYTES;
pub use wal::Wal;

/// An entry to append: borrowed, so a batch costs no copies before it reaches the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewEntry<'a> {
    pub index: u64,
    pub term: u64,
    /// The caller's entry type (normal, config change, no-op, ...), stored opaquely.
    pub kind: u8,
    pub payload: &'a [u8],
}
