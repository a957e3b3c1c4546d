//! Model test: random sequences of append / flush / background flush / truncate / compact /
//! reopen / crash, checked after every step against a plain `Vec` of entries.
//!
//! A "crash" drops the `Wal` without flushing and then destroys what a power loss may take:
//! the kernel writes dirty pages back in any order, so any subset of the units (64-byte
//! pieces, 512-byte sectors or 4 KiB pages) written after the active segment's durable point
//! may be lost, each reading back as zeros, random garbage, or a recycled file's stale
//! records (another segment's bytes, under another salt). Recovery must then open and keep a
//! prefix of what was written that still contains every entry reported durable.
//!
//! Each sequence derives everything from its seed; a failure prints the seed, and
//! `WAL_MODEL_SEED=<seed>` replays just that one.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use raftlog_wal::{FlushJob, Options, Wal};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SEQUENCE_COUNT: u64 = 300;
const STEP_COUNT: usize = 80;

/// What the log should hold.
struct Model {
    entries: Vec<Owned>,
    /// The log's first index (meaningful when empty too).
    first_index: u64,
    /// The highest index the WAL has reported durable.
    durable_index: u64,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.first_index - 1, |e| e.index)
    }

    fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// Keeps entries `..=last`.
    fn keep_through(&mut self, last: u64) {
        self.entries.retain(|e| e.index <= last);
        if self.entries.is_empty() {
            self.first_index = last + 1;
        }
        self.durable_index = self.durable_index.min(last);
    }
}

struct Run {
    rng: SmallRng,
    dir: tempfile::TempDir,
    wal: Option<Wal>,
    model: Model,
    job: Option<FlushJob>,
    log: Vec<String>,
}

fn options(rng: &mut SmallRng) -> Options {
    Options {
        segment_bytes: 4096,
        payload_bytes_max: 1024,
        spare_segments: rng.gen_bool(0.5),
        faults: None,
    }
}

impl Run {
    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().expect("an open WAL")
    }

    fn step(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=39 => self.append(),
            40..=49 => self.flush(),
            50..=59 => self.toggle_background_flush(),
            60..=69 => self.truncate(),
            70..=76 => self.compact(),
            77..=84 => self.reopen(),
            85..=94 => self.crash(),
            _ => self.check_reads(),
        }
        self.check_positions();
    }

    fn append(&mut self) {
        let count = self.rng.gen_range(1..=6);
        let start = match self.model.entries.is_empty() {
            true if self.rng.gen_bool(0.3) => self.rng.gen_range(1..500),
            true => self.model.first_index.max(1),
            false => self.model.last_index() + 1,
        };
        let term = self.model.last_term().max(1) + u64::from(self.rng.gen_bool(0.2));
        let salt = self.rng.gen();
        let batch = entries(start, start + count - 1, term, salt);
        self.log.push(format!(
            "append {start}..={} term {term}",
            start + count - 1
        ));
        append(self.wal(), &batch);
        if self.model.entries.is_empty() {
            self.model.first_index = start;
            self.model.durable_index = start - 1;
        }
        self.model.entries.extend(batch);
    }

    fn flush(&mut self) {
        self.log.push("flush".into());
        let durable = self.wal().flush().unwrap();
        assert_eq!(
            durable,
            self.model.last_index(),
            "flush makes everything durable"
        );
        self.model.durable_index = durable;
    }

    /// Starts a flush job and holds it, or runs and finishes the held one.
    fn toggle_background_flush(&mut self) {
        match self.job.take() {
            None => {
                self.log.push("start_flush".into());
                self.job = self.wal().start_flush().unwrap();
            }
            Some(job) => {
                self.log
                    .push(format!("finish_flush (job for {})", job.index()));
                let durable = self.wal().finish_flush(job.run()).unwrap();
                assert!(
                    durable >= self.model.durable_index,
                    "durable index went back"
                );
                self.model.durable_index = durable;
            }
        }
    }

    fn truncate(&mut self) {
        let low = self.model.first_index.saturating_sub(2);
        let index = self.rng.gen_range(low..=self.model.last_index() + 2);
        self.log.push(format!("truncate_from {index}"));
        self.wal().truncate_from(index).unwrap();
        if index <= self.model.last_index() {
            let last = index.max(1) - 1;
            self.model.keep_through(last);
            if self.model.entries.is_empty() {
                self.model.first_index = last + 1;
            }
            assert_eq!(self.wal().durable_index(), last, "truncation is durable");
            self.model.durable_index = last;
        }
    }

    fn compact(&mut self) {
        let index = self
            .rng
            .gen_range(self.model.first_index..=self.model.last_index() + 2);
        self.log.push(format!("compact_below {index}"));
        let before = self.model.first_index;
        self.wal().compact_below(index).unwrap();
        let first = self.wal().first_index();
        assert!(
            first >= before && (first <= index.max(before)),
            "compaction to {first}"
        );
        if !self.model.entries.is_empty() {
            assert!(
                first <= self.model.last_index(),
                "compaction emptied the log"
            );
        }
        self.model.entries.retain(|e| e.index >= first);
        self.model.first_index = first;
    }

    fn reopen(&mut self) {
        self.log.push("reopen".into());
        self.job = None;
        self.wal = None;
        self.open_and_adopt(false);
    }

    /// Drops the WAL and destroys a random subset of what is not yet durable (module doc).
    fn crash(&mut self) {
        let unflushed = self.wal().unflushed_bytes();
        self.job = None;
        self.wal = None;
        match unflushed {
            Some((path, durable_offset, written_offset)) if durable_offset < written_offset => {
                let lost = self.lose_units(&path, durable_offset, written_offset);
                self.log.push(format!(
                    "crash, losing {lost:?} of {durable_offset}..{written_offset} of {}",
                    path.display()
                ));
            }
            _ => self.log.push("crash".into()),
        }
        self.open_and_adopt(true);
    }

    /// Overwrites a random subset of the units of `start..end` in the file at `path` with
    /// what a lost page reads as; returns the lost units as `(start, end, fill)`.
    fn lose_units(&mut self, path: &Path, start: u64, end: u64) -> Vec<(u64, u64, &'static str)> {
        let unit_bytes = [64, 512, 4096][self.rng.gen_range(0..3)];
        let lost_probability = [0.1, 0.5, 0.9, 1.0][self.rng.gen_range(0..4)];
        let stale = segment_files(self.dir.path())
            .into_iter()
            .find(|other| other != path)
            .map(|other| fs::read(other).unwrap());
        let mut bytes = fs::read(path).unwrap();
        let mut lost = Vec::new();
        let mut unit_start = start / unit_bytes * unit_bytes;
        while unit_start < end {
            let (from, to) = (unit_start.max(start), (unit_start + unit_bytes).min(end));
            unit_start += unit_bytes;
            if !self.rng.gen_bool(lost_probability) {
                continue;
            }
            let range = from as usize..to as usize;
            let fill = match (self.rng.gen_range(0..3), &stale) {
                (0, Some(stale)) if stale.len() >= to as usize => {
                    bytes[range].copy_from_slice(&stale[from as usize..to as usize]);
                    "stale"
                }
                (1, _) => {
                    self.rng.fill(&mut bytes[range]);
                    "garbage"
                }
                _ => {
                    bytes[range].fill(0);
                    "zeros"
                }
            };
            lost.push((from, to, fill));
        }
        fs::write(path, bytes).unwrap();
        lost
    }

    /// Opens the WAL and checks it holds a prefix of the model with every durable entry; the
    /// model then adopts that prefix. Without a crash nothing at all may be lost.
    fn open_and_adopt(&mut self, crashed: bool) {
        let options = options(&mut self.rng);
        let (wal, report) = Wal::open(self.dir.path(), options).unwrap();
        let stored = read_all(&wal.reader());
        let model = &mut self.model;
        assert!(
            stored.len() <= model.entries.len(),
            "recovered more than was written"
        );
        for (s, e) in stored.iter().zip(&model.entries) {
            assert!(e.matches(s), "recovered entry {} differs", s.index);
        }
        let must_keep = model
            .entries
            .iter()
            .filter(|e| e.index <= model.durable_index)
            .count();
        assert!(
            stored.len() >= must_keep,
            "lost durable entries: recovered {} entries, {must_keep} were durable",
            stored.len()
        );
        if !crashed {
            assert_eq!(
                stored.len(),
                model.entries.len(),
                "a clean reopen loses nothing"
            );
        }
        model.entries.truncate(stored.len());
        model.first_index = wal.first_index();
        model.durable_index = wal.durable_index();
        assert_eq!(report.last_index, wal.last_index());
        self.wal = Some(wal);
    }

    fn check_reads(&mut self) {
        self.log.push("check_reads".into());
        assert_log(&self.wal().reader(), &self.model.entries);
    }

    fn check_positions(&mut self) {
        let (first, last, term) = (
            self.model.first_index,
            self.model.last_index(),
            self.model.last_term(),
        );
        let wal = self.wal.as_ref().unwrap();
        if !self.model.entries.is_empty() {
            assert_eq!(wal.first_index(), first, "first_index");
        }
        assert_eq!(
            (wal.last_index(), wal.last_term()),
            (last, term),
            "last_index, last_term"
        );
        let durable = wal.durable_index();
        let model_durable = self.model.durable_index;
        assert!(
            durable <= last && durable >= model_durable.min(last),
            "durable {durable}, model durable {model_durable}, last {last}"
        );
        if let Some(entry) = self.model.entries.get(self.model.entries.len() / 2) {
            assert_eq!(wal.term_at(entry.index), Some(entry.term));
            let first_of_term = self.model.entries.iter().find(|e| e.term == entry.term);
            assert_eq!(
                wal.first_index_of_term(entry.term),
                first_of_term.map(|e| e.index),
                "first_index_of_term({})",
                entry.term
            );
            let stored = wal
                .reader()
                .read(entry.index)
                .unwrap()
                .expect("entry present");
            assert!(entry.matches(&stored));
        }
    }
}

fn run_sequence(seed: u64) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = scratch_dir();
    let (wal, _) = Wal::open(dir.path(), options(&mut rng)).unwrap();
    let mut run = Run {
        rng,
        dir,
        wal: Some(wal),
        model: Model {
            entries: Vec::new(),
            first_index: 1,
            durable_index: 0,
        },
        job: None,
        log: Vec::new(),
    };
    for _ in 0..STEP_COUNT {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.step()));
        if let Err(panic) = result {
            eprintln!(
                "model test failed with seed {seed}; steps:\n  {}",
                run.log.join("\n  ")
            );
            std::panic::resume_unwind(panic);
        }
    }
    run.check_reads();
    run.log
}

#[test]
fn random_operation_sequences_match_the_model() {
    if let Ok(seed) = std::env::var("WAL_MODEL_SEED") {
        run_sequence(seed.parse().expect("WAL_MODEL_SEED is a number"));
        return;
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!(
        "model test: seeds {base}..{}",
        base.wrapping_add(SEQUENCE_COUNT)
    );
    for i in 0..SEQUENCE_COUNT {
        run_sequence(base.wrapping_add(i));
    }
}
