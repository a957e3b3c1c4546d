//! `Wal`, the single writer: open and recover, append, and switch segments.
//!
//! Truncation and compaction are in `truncate.rs`, flushing in `flush.rs`. The writer owns
//! the active segment and is the only one that changes the shared index (`log_state.rs`).
//!
//! Log positions: `first_index ≤ durable_index + 1`, `durable_index ≤ last_index`, and
//! `first_index ≤ last_index + 1` (equality: the log is empty).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::active::ActiveSegment;
use crate::error::{Error, Result};
use crate::flush::FlushTicket;
use crate::io::Io;
use crate::log_state::{SegmentView, Shared};
use crate::reader::WalReader;
use crate::record::encoded_record_bytes;
use crate::recovery::{self, RecoveryReport};
use crate::segment;
use crate::segments;
use crate::spare::Spare;
use crate::{NewEntry, Options};

/// The name of the lock file that keeps two `Wal`s off one directory.
const LOCK_NAME: &str = "wal.lock";

/// The write-ahead log's single writer. `Send`, not `Clone`; see the crate doc.
pub struct Wal {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) io: Io,
    pub(crate) shared: Arc<Shared>,
    pub(crate) active: Option<ActiveSegment>,
    pub(crate) durable_index: u64,
    /// Bumped by every truncation; see `flush.rs`.
    pub(crate) generation: u64,
    pub(crate) flush_in_flight: Option<FlushTicket>,
    pub(crate) next_flush_id: u64,
    pub(crate) poisoned: Option<String>,
    pub(crate) spare: Spare,
    _lock: File,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .field("durable_index", &self.durable_index)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the log in `dir` (creating the directory if missing), recovers it (see
    /// `recovery.rs`), and returns it with a report of what recovery found. Everything
    /// recovered is durable. Refuses to open a log it cannot trust, with an error naming the
    /// file and byte offset; refuses a directory another `Wal` holds.
    pub fn open(dir: &Path, options: Options) -> Result<(Wal, RecoveryReport)> {
        options.validate()?;
        let io = Io::new(options.faults.clone());
        let dir_existed = io.exists(dir)?;
        io.create_dir_all(dir)?;
        if !dir_existed {
            io.fsync_dir(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                io.fsync_dir(parent)?;
            }
        }
        let lock = lock_dir(&io, dir)?;
        let recovered = recovery::recover(&io, dir)?;
        let durable_index = recovered.state.last_index;
        let mut spare = Spare::new(
            io.clone(),
            dir,
            options.segment_bytes,
            options.spare_segments,
        );
        spare.start();
        let wal = Wal {
            dir: dir.to_path_buf(),
            options,
            io,
            shared: Shared::new(recovered.state),
            active: recovered.active,
            durable_index,
            generation: 0,
            flush_in_flight: None,
            next_flush_id: 0,
            poisoned: None,
            spare,
            _lock: lock,
        };
        Ok((wal, recovered.report))
    }

    /// A read handle that sees every entry this writer appends.
    pub fn reader(&self) -> WalReader {
        WalReader::new(Arc::clone(&self.shared))
    }

    /// The oldest entry held; for an empty log, `last_index() + 1`.
    pub fn first_index(&self) -> u64 {
        self.shared.read().first_index
    }

    /// The newest entry written, flushed or not; 0 for a new, empty log.
    pub fn last_index(&self) -> u64 {
        self.shared.read().last_index
    }

    /// The term of the newest entry; 0 for an empty log.
    pub fn last_term(&self) -> u64 {
        let state = self.shared.read();
        if state.is_empty() {
            0
        } else {
            state.terms.last_term()
        }
    }

    /// The newest entry that is durable, with every entry before it.
    pub fn durable_index(&self) -> u64 {
        self.durable_index
    }

    /// The term of entry `index`, if the log holds it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.shared.read().term_at(index)
    }

    /// The first entry the log holds with `term`, if it holds any: terms never decrease, so
    /// that entry starts the only run of `term`. Answered from the in-memory term runs, in
    /// O(log runs), for Raft's conflict hint (the follower's "first index of the conflicting
    /// term", §5.3). After compaction it is at least `first_index()`.
    pub fn first_index_of_term(&self, term: u64) -> Option<u64> {
        self.shared.read().first_index_of_term(term)
    }

    /// Appends a batch, writing it into the active segment (rolling to a new segment when it
    /// fills). Not durable until a flush covering it returns.
    ///
    /// The first entry must be `last_index() + 1`, or anything ≥ 1 if the log is empty (the
    /// log then starts there, as after a snapshot); indexes are contiguous; terms never
    /// decrease; payloads fit `payload_bytes_max`. Otherwise a usage error, and nothing is
    /// written.
    pub fn append(&mut self, batch: &[NewEntry<'_>]) -> Result<()> {
        self.check_poisoned()?;
        self.check_batch(batch)?;
        self.run(|wal| wal.write_batch(batch))
    }

    /// Returns `Error::Poisoned` if an earlier I/O error poisoned this WAL.
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(first) => Err(Error::Poisoned {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Runs a mutation that does I/O: refused if poisoned, and poisons on an I/O error.
    pub(crate) fn run<T>(&mut self, op: impl FnOnce(&mut Wal) -> Result<T>) -> Result<T> {
        self.check_poisoned()?;
        let result = op(self);
        if let Err(error) = &result {
            if error.poisons() {
                self.poison(error);
            }
        }
        result
    }

    fn check_batch(&self, batch: &[NewEntry<'_>]) -> Result<()> {
        let state = self.shared.read();
        let (mut expected, mut previous_term) = match state.is_empty() {
            true => (None, 0),
            false => (Some(state.last_index + 1), state.terms.last_term()),
        };
        for entry in batch {
            if entry.index == 0 {
                return Err(Error::InvalidIndex);
            }
            if let Some(expected) = expected.filter(|&e| e != entry.index) {
                return Err(Error::NotContiguous {
                    expected,
                    got: entry.index,
                });
            }
            if entry.term < previous_term {
                return Err(Error::TermDecreased {
                    index: entry.index,
                    previous: previous_term,
                    got: entry.term,
                });
            }
            if entry.payload.len() > self.options.payload_bytes_max as usize {
                return Err(Error::PayloadTooLarge {
                    index: entry.index,
                    payload_bytes: entry.payload.len(),
                    payload_bytes_max: self.options.payload_bytes_max,
                });
            }
            expected = Some(entry.index + 1);
            previous_term = entry.term;
        }
        Ok(())
    }

    fn write_batch(&mut self, batch: &[NewEntry<'_>]) -> Result<()> {
        let mut pending = Vec::with_capacity(batch.len());
        for entry in batch {
            let encoded_bytes = encoded_record_bytes(entry.payload.len()) as u64;
            let fits = self
                .active
                .as_ref()
                .is_some_and(|a| a.fits(entry.index, encoded_bytes));
            if !fits {
                self.publish(&mut pending)?;
                self.switch_active(entry.index)?;
            }
            let active = self
                .active
                .as_mut()
                .expect("an active segment after a switch");
            let offset = active.encode(entry, encoded_bytes);
            pending.push((offset, entry.index, entry.term));
        }
        self.publish(&mut pending)
    }

    /// Writes the encoded records to the file and makes them readable: `(offset, index,
    /// term)` of each, in order, all in the active segment.
    fn publish(&mut self, pending: &mut Vec<(u32, u64, u64)>) -> Result<()> {
        let Some(&(_, first_pending, _)) = pending.first() else {
            return Ok(());
        };
        let active = self
            .active
            .as_mut()
            .expect("records were encoded for the active segment");
        active.write_pending(&self.io)?;
        let mut state = self.shared.write();
        if state.is_empty() {
            // The log (re)starts here; nothing of it is durable yet.
            state.first_index = first_pending;
            state.last_index = first_pending - 1;
            self.durable_index = state.last_index;
        }
        let view = state
            .segments
            .back_mut()
            .expect("the active segment's view");
        assert_eq!(
            view.first_index, active.first_index,
            "the newest view is the active segment"
        );
        view.offsets
            .extend(pending.iter().map(|&(offset, _, _)| offset));
        view.end_offset = active.written_offset;
        for &(_, index, term) in pending.iter() {
            assert_eq!(
                index,
                state.last_index + 1,
                "appended entries are contiguous"
            );
            state.terms.push(index, term);
            state.last_index = index;
        }
        state.assert_consistent();
        pending.clear();
        Ok(())
    }

    /// Retires the active segment (if any) and makes a new one starting at `first_index`.
    fn switch_active(&mut self, first_index: u64) -> Result<()> {
        if let Some(active) = self.active.take() {
            self.retire(active)?;
        }
        let active = self.create_segment(first_index)?;
        self.shared.write().segments.push_back(SegmentView {
            first_index,
            path: active.path.clone(),
            map: Arc::clone(&active.map),
            crc_seed: active.crc_seed,
            offsets: Vec::new(),
            end_offset: active.written_offset,
        });
        self.active = Some(active);
        Ok(())
    }

    /// Seals a full active segment (sync, then rename: a sealed name promises valid records
    /// up to its last index) or deletes an empty one.
    fn retire(&mut self, active: ActiveSegment) -> Result<()> {
        if active.entry_count == 0 {
            self.io.remove(&active.path)?;
            self.io.fsync_dir(&self.dir)?;
            let removed = self
                .shared
                .write()
                .segments
                .pop_back()
                .expect("the active view");
            assert!(
                removed.offsets.is_empty(),
                "only an empty active segment is deleted"
            );
            return Ok(());
        }
        self.io.fdatasync(&active.file, &active.path)?;
        self.durable_index = self.last_index();
        let last_index = active.next_index() - 1;
        let sealed_path = self
            .dir
            .join(segments::sealed_name(active.first_index, last_index));
        self.io.rename(&active.path, &sealed_path)?;
        self.io.fsync_dir(&self.dir)?;
        self.shared
            .write()
            .segments
            .back_mut()
            .expect("the active view")
            .path = sealed_path;
        Ok(())
    }

    /// A new active segment: the spare if there is one, else a file made here.
    fn create_segment(&mut self, first_index: u64) -> Result<ActiveSegment> {
        let final_path = self.dir.join(segments::active_name(first_index));
        let (file, temp_path) = match self.spare.take() {
            Some(spare) => (spare.file, spare.path),
            None => {
                let temp_path = self.dir.join(segments::temp_name(first_index));
                let file =
                    segment::create_preallocated(&self.io, &temp_path, self.options.segment_bytes)?;
                (file, temp_path)
            }
        };
        let new = segment::install(&self.io, &file, &temp_path, &final_path, first_index)?;
        self.spare.start();
        Ok(ActiveSegment::new(
            first_index,
            final_path,
            file,
            Arc::new(new.map),
            new.header.crc_seed(),
            0,
            segment::SEGMENT_HEADER_BYTES,
        ))
    }

    /// Test hook: the active segment's file and the byte range whose records are written but
    /// not known durable, i.e. what a power loss may take. Not part of the stable API.
    #[doc(hidden)]
    pub fn unflushed_bytes(&self) -> Option<(PathBuf, u64, u64)> {
        let active = self.active.as_ref()?;
        Some((
            active.path.clone(),
            active.durable_offset(),
            active.written_offset,
        ))
    }
}

/// Takes the directory's lock file, so a second `Wal` on the same directory is refused.
fn lock_dir(io: &Io, dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_NAME);
    let file = io.create(&lock_path)?;
    if !io.try_lock(&file, &lock_path)? {
        return Err(Error::Locked {
            dir: dir.to_path_buf(),
            lock_path,
        });
    }
    Ok(file)
}
