//! The hard state (current term and vote), in a small file replaced atomically.
//!
//! Raft §5.1/§5.2: a node must never vote twice in a term nor go back to an older term, so
//! term and vote are durable before any message that depends on them is sent. They change
//! rarely and are owned by a different actor than the log, hence a file of their own:
//!
//! ```text
//!  byte 0        4         8                16                24        28        32
//!       +--------+---------+----------------+-----------------+---------+---------+
//!       | magic  | version | term           | voted_for       | flags   | crc32c  |
//!       | "RLHS" | u32 LE  | u64 LE         | u64 LE          | u32 LE  | u32 LE  |
//!       +--------+---------+----------------+-----------------+---------+---------+
//! ```
//!
//! `flags` bit 0 says a vote is present; the CRC covers bytes 0..28. A save writes
//! `hard_state.tmp`, fsyncs it, renames it over `hard_state`, and fsyncs the directory, so a
//! crash leaves the old state or the new one, never a mix. A file that fails its checksum
//! refuses to open: guessing a term or vote could make this node vote twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{FaultInjector, Io};

const FILE_NAME: &str = "hard_state";
const TEMP_NAME: &str = "hard_state.tmp";
const MAGIC: &[u8; 4] = b"RLHS";
const VERSION: u32 = 1;
const FILE_BYTES: usize = 32;
const HAS_VOTE: u32 = 1;

/// Raft's persistent term and vote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<u64>,
}

/// The hard-state file in one directory. Poisoned, like the WAL, by an I/O error.
#[derive(Debug)]
pub struct HardStateFile {
    dir: PathBuf,
    io: Io,
    saved: Option<HardState>,
    poisoned: Option<String>,
}

impl HardState {
    fn encode(&self) -> [u8; FILE_BYTES] {
        let mut bytes = [0u8; FILE_BYTES];
        bytes[0..4].copy_from_slice(MAGIC);
        bytes[4..8].copy_from_slice(&VERSION.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.term.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.voted_for.unwrap_or(0).to_le_bytes());
        let flags = if self.voted_for.is_some() {
            HAS_VOTE
        } else {
            0
        };
        bytes[24..28].copy_from_slice(&flags.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<HardState, String> {
        if bytes.len() != FILE_BYTES {
            return Err(format!("{} bytes long, expected {FILE_BYTES}", bytes.len()));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let stored = word(28);
        let computed = crc32c::crc32c(&bytes[0..28]);
        if stored != computed {
            return Err(format!(
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        if &bytes[0..4] != MAGIC || word(4) != VERSION || word(24) & !HAS_VOTE != 0 {
            return Err("bad magic, version or flags".to_string());
        }
        let long = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Ok(HardState {
            term: long(8),
            voted_for: (word(24) & HAS_VOTE != 0).then(|| long(16)),
        })
    }
}

impl HardStateFile {
    /// Opens the hard state in `dir` (created if missing): `None` if none was ever saved.
    /// A leftover temp file from a crashed save is deleted; a corrupt file is refused.
    pub fn open(dir: &Path) -> Result<(HardStateFile, Option<HardState>)> {
        HardStateFile::open_with_faults(dir, None)
    }

    /// `open`, with a fault injector on every system call (a test seam).
    pub fn open_with_faults(
        dir: &Path,
        faults: Option<Arc<FaultInjector>>,
    ) -> Result<(HardStateFile, Option<HardState>)> {
        let io = Io::new(faults);
        io.create_dir_all(dir)?;
        let temp_path = dir.join(TEMP_NAME);
        if io.exists(&temp_path)? {
            io.remove(&temp_path)?;
            io.fsync_dir(dir)?;
        }
        let path = dir.join(FILE_NAME);
        let saved = match io.read_file(&path)? {
            None => None,
            Some(bytes) => {
                Some(
                    HardState::decode(&bytes).map_err(|reason| Error::CorruptHardState {
                        path: path.clone(),
                        reason,
                    })?,
                )
            }
        };
        let file = HardStateFile {
            dir: dir.to_path_buf(),
            io,
            saved,
            poisoned: None,
        };
        Ok((file, saved))
    }

    /// The last state saved (or read at open).
    pub fn saved(&self) -> Option<HardState> {
        self.saved
    }

    /// Replaces the hard state, durably, before returning. Panics if the term goes back or
    /// the vote changes within a term: Raft never does either (§5.1, §5.2).
    pub fn save(&mut self, state: &HardState) -> Result<()> {
        if let Some(first) = &self.poisoned {
            return Err(Error::Poisoned {
                first: first.clone(),
            });
        }
        if let Some(saved) = self.saved {
            assert!(
                state.term >= saved.term,
                "term went back from {} to {}",
                saved.term,
                state.term
            );
            let revote = state.term == saved.term
                && saved.voted_for.is_some()
                && state.voted_for != saved.voted_for;
            assert!(!revote, "vote changed within term {}", state.term);
        }
        let result = self.write(state);
        if let Err(error) = &result {
            self.poisoned.get_or_insert_with(|| error.to_string());
        }
        result
    }

    fn write(&mut self, state: &HardState) -> Result<()> {
        let temp_path = self.dir.join(TEMP_NAME);
        let mut file = self.io.create(&temp_path)?;
        self.io.write_all(&mut file, &temp_path, &state.encode())?;
        self.io.fdatasync(&file, &temp_path)?;
        self.io.rename(&temp_path, &self.dir.join(FILE_NAME))?;
        self.io.fsync_dir(&self.dir)?;
        self.saved = Some(*state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_catches_every_flipped_bit() {
        let state = HardState {
            term: 9,
            voted_for: Some(3),
        };
        let bytes = state.encode();
        assert_eq!(HardState::decode(&bytes), Ok(state));
        for bit in 0..FILE_BYTES * 8 {
            let mut copy = bytes;
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(HardState::decode(&copy).is_err(), "bit {bit}");
        }
    }
}
