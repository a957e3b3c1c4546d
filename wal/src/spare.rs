//! Spare segment files, made ahead of time so a segment roll costs a rename.
//!
//! On ext4, syncing writes into preallocated-but-unwritten blocks also has to record the
//! extent conversion, which about doubles the cost of every fdatasync (BENCHMARKS.md). A
//! segment whose blocks are already written avoids that. There are two sources of such files:
//!
//! - **Recycling.** Compaction hands over a deleted segment whose map no reader holds any
//!   more (`Wal::compact_below`); a rename makes it a spare. Its old records stay in it,
//!   harmless: each segment has its own salt and a record is only valid under its segment's
//!   salt. A compacting log in its steady state writes no zeros at all.
//! - **Zero-filling.** With no spare ready, a background thread writes zeros over a new file,
//!   so the writer does not stall on 64 MiB of zeros at a roll — a chunk at a time, each
//!   written back before the next, so the log's own writes never queue behind the whole fill
//!   on the disk (`Io::write_zeros`). The writer never waits for
//!   it either: a roll that finds the fill still running makes its segment inline (only
//!   fallocate'd) and leaves the fill to finish for the next roll. That matters most for a
//!   new log, whose first append would otherwise wait for the fill that `Wal::open` started.
//!
//! At most `SPARES_MAX` spares are kept, and a zero-fill only starts when none is ready. A spare that fails (ENOSPC, say) is
//! not an error of the log, since nothing in it is data: the roll then makes its segment
//! inline, which reports any real problem itself.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Result;
use crate::io::Io;
use crate::segments::TEMP_SUFFIX;

/// Spares kept ready (or being made) at most.
const SPARES_MAX: usize = 2;

/// A spare file, under its temporary name.
pub(crate) struct SpareFile {
    pub path: PathBuf,
    pub file: File,
}

struct Pending {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<Option<SpareFile>>>,
}

/// The spares of one WAL directory, and the zero-fill thread.
pub(crate) struct Spare {
    io: Io,
    dir: PathBuf,
    segment_bytes: u64,
    enabled: bool,
    ready: Vec<SpareFile>,
    pending: Option<Pending>,
    names_used: u64,
}

impl Spare {
    pub(crate) fn new(io: Io, dir: &Path, segment_bytes: u64, enabled: bool) -> Spare {
        Spare {
            io,
            dir: dir.to_path_buf(),
            segment_bytes,
            enabled,
            ready: Vec::new(),
            pending: None,
            names_used: 0,
        }
    }

    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// A fresh temporary name (`*.wal.tmp`: recovery deletes leftovers).
    fn next_path(&mut self) -> PathBuf {
        self.names_used += 1;
        self.dir
            .join(format!("spare-{}{TEMP_SUFFIX}", self.names_used))
    }

    /// Starts zero-filling a spare if none is ready or on its way.
    pub(crate) fn start(&mut self) {
        if !self.enabled || self.pending.is_some() || !self.ready.is_empty() {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (io, path, bytes) = (self.io.clone(), self.next_path(), self.segment_bytes);
        let thread_cancel = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("wal-spare".to_string())
            .spawn(move || zero_fill(&io, path, bytes, &thread_cancel))
            .expect("spawn the WAL spare thread");
        self.pending = Some(Pending { cancel, thread });
    }

    /// A spare if one is ready, including a zero-fill that has just finished; `None` if spares
    /// are off, the fill is still running (it goes on, for the next roll) or failed. The
    /// caller renames it away and then calls `start`.
    pub(crate) fn take(&mut self) -> Option<SpareFile> {
        if let Some(spare) = self.ready.pop() {
            return Some(spare);
        }
        if !self.pending.as_ref()?.thread.is_finished() {
            return None;
        }
        let pending = self.pending.take()?;
        pending.thread.join().ok().and_then(Result::ok).flatten()
    }

    /// The name a recycled file should be renamed to, if one is wanted now. A zero-fill
    /// under way is cancelled: the recycled file makes it unnecessary, and its writes would
    /// only compete with the log's for the disk.
    pub(crate) fn recycle_path(&mut self) -> Option<PathBuf> {
        if !self.enabled || self.ready.len() >= SPARES_MAX {
            return None;
        }
        if let Some(pending) = self.pending.take() {
            pending.cancel.store(true, Ordering::Relaxed);
            let finished = pending.thread.join().ok().and_then(Result::ok).flatten();
            self.ready.extend(finished);
        }
        (self.ready.len() < SPARES_MAX).then(|| self.next_path())
    }

    /// Takes a recycled segment file, already renamed to a `recycle_path`.
    pub(crate) fn put_recycled(&mut self, spare: SpareFile) {
        assert!(self.ready.len() < SPARES_MAX, "too many spares");
        self.ready.push(spare);
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.cancel.store(true, Ordering::Relaxed);
            // Join so a reopened WAL never races this thread over the directory.
            let _ = pending.thread.join();
        }
    }
}

/// Creates a spare: reserve the blocks, write zeros over them, sync.
fn zero_fill(
    io: &Io,
    path: PathBuf,
    segment_bytes: u64,
    cancel: &AtomicBool,
) -> Result<Option<SpareFile>> {
    let file = io.create(&path)?;
    // Not fallocate'd first: zeros written over preallocated (unwritten) extents make ext4
    // convert each extent as its writeback completes, and on a disk mounted with `discard`
    // the conversion discards synchronously — 100–180 ms during which every WAL's fdatasync
    // on the disk waited (seen under load). Written directly, the blocks are allocated once.
    if !io.write_zeros(&file, &path, segment_bytes, cancel)? {
        return Ok(None);
    }
    io.fdatasync(&file, &path)?;
    Ok(Some(SpareFile { path, file }))
}
