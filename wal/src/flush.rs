//! Group commit: a flush covers everything written before it started, and runs on another
//! thread while the writer keeps appending.
//!
//! `Wal::start_flush` captures the active segment's file and the index its written bytes end
//! at; `FlushJob::run` (blocking: fdatasync) may run anywhere; the outcome
//! goes back through `Wal::finish_flush`, which is the only place `durable_index` advances
//! from a job. Only one job is in flight at a time; an fdatasync covers every byte written to
//! the file before it started.
//!
//! A truncation may happen while a job runs. The job would then report an index whose entry
//! has since been replaced by one it never covered. Each job therefore carries the WAL's
//! truncation generation, and a job from an older generation advances nothing (its failure
//! still poisons: a lost write is lost whatever came after it).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::Io;
use crate::Wal;

/// What a flush job promises, checked when its outcome comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlushTicket {
    pub id: u64,
    pub generation: u64,
    /// Every entry up to this one is durable once the job succeeds.
    pub index: u64,
    /// The active segment the job flushes, and where its range ends.
    pub segment_first_index: u64,
    pub end_offset: u64,
}

/// A flush to run off the writer's thread. `Send`; see the module doc.
#[must_use = "a started flush must be run and its outcome passed to Wal::finish_flush"]
pub struct FlushJob {
    file: Arc<File>,
    path: PathBuf,
    io: Io,
    ticket: FlushTicket,
}

/// The result of `FlushJob::run`, to hand back to `Wal::finish_flush`.
#[must_use = "pass the outcome to Wal::finish_flush"]
pub struct FlushOutcome {
    ticket: FlushTicket,
    result: Result<()>,
}

impl std::fmt::Debug for FlushJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushJob")
            .field("path", &self.path)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl std::fmt::Debug for FlushOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushOutcome")
            .field("ticket", &self.ticket)
            .field("result", &self.result)
            .finish()
    }
}

impl FlushJob {
    /// The index that is durable once this job succeeds (unless a truncation intervenes).
    pub fn index(&self) -> u64 {
        self.ticket.index
    }

    /// Blocks until the range is on disk (or the sync fails).
    pub fn run(self) -> FlushOutcome {
        let result = self.io.fdatasync(&self.file, &self.path);
        FlushOutcome {
            ticket: self.ticket,
            result,
        }
    }
}

impl FlushOutcome {
    /// The index the job covered.
    pub fn index(&self) -> u64 {
        self.ticket.index
    }
}

impl Wal {
    /// Starts a flush of everything written so far; `None` if all of it is durable already
    /// or a flush is in flight (start another once that one finishes). The job must be run
    /// and its outcome passed to `finish_flush`, else no later flush can start.
    pub fn start_flush(&mut self) -> Result<Option<FlushJob>> {
        self.check_poisoned()?;
        if self.flush_in_flight.is_some() || self.durable_index == self.last_index() {
            return Ok(None);
        }
        let active = self
            .active
            .as_ref()
            .expect("entries that are not durable are in the active segment");
        let ticket = FlushTicket {
            id: self.next_flush_id,
            generation: self.generation,
            index: self.shared.read().last_index,
            segment_first_index: active.first_index,
            end_offset: active.written_offset,
        };
        let job = FlushJob {
            file: Arc::clone(&active.file),
            path: active.path.clone(),
            io: self.io.clone(),
            ticket,
        };
        self.next_flush_id += 1;
        self.flush_in_flight = Some(ticket);
        Ok(Some(job))
    }

    /// Takes a job's outcome and returns the durable index. A failed job poisons the WAL and
    /// its error is returned. Panics on an outcome of a job this WAL did not start last.
    pub fn finish_flush(&mut self, outcome: FlushOutcome) -> Result<u64> {
        assert_eq!(
            self.flush_in_flight,
            Some(outcome.ticket),
            "finish_flush got an outcome this WAL is not waiting for"
        );
        self.flush_in_flight = None;
        if let Err(error) = outcome.result {
            self.poison(&error);
            return Err(error);
        }
        self.check_poisoned()?;
        let ticket = outcome.ticket;
        if ticket.generation == self.generation {
            self.durable_index = self.durable_index.max(ticket.index);
            if let Some(active) = self.active.as_mut() {
                if active.first_index == ticket.segment_first_index {
                    active.mark_durable(ticket.end_offset);
                }
            }
        }
        assert!(
            self.durable_index <= self.last_index(),
            "durable past the end"
        );
        Ok(self.durable_index)
    }

    /// Flushes everything written so far and returns the durable index: start, run and
    /// finish in one call on this thread. With a job in flight elsewhere it syncs directly.
    pub fn flush(&mut self) -> Result<u64> {
        match self.start_flush()? {
            Some(job) => self.finish_flush(job.run()),
            None if self.flush_in_flight.is_some() => {
                self.run(Wal::sync_active)?;
                Ok(self.durable_index)
            }
            None => Ok(self.durable_index),
        }
    }

    /// Makes every written entry durable, on this thread.
    pub(crate) fn sync_active(&mut self) -> Result<()> {
        if let Some(active) = self.active.as_mut() {
            self.io.fdatasync(&active.file, &active.path)?;
            active.mark_durable(active.written_offset);
        }
        self.durable_index = self.last_index();
        Ok(())
    }

    /// Records the first poisoning error; later calls return `Error::Poisoned`.
    pub(crate) fn poison(&mut self, error: &Error) {
        if self.poisoned.is_none() {
            let first = error.to_string();
            self.shared.write().poisoned = Some(first.clone());
            self.poisoned = Some(first);
        }
    }
}
