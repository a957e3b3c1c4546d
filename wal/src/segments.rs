//! Segment file names, and the check that a directory's segments form one contiguous log.
//!
//! Names are zero-padded to 20 digits so they sort as numbers:
//!
//! - `{first:020}.wal` — the active segment, still being appended to. At most one, the last.
//! - `{first:020}-{last:020}.wal` — a sealed segment holding exactly `first..=last`. Bytes
//!   after `last` in the file (left by a truncation) are ignored.
//! - `*.wal.tmp` — a segment being made, or the zero-filled spare. Removed on open.
//!
//! Other files in the directory (the lock, the hard state) are not segments and are left
//! alone; a `.wal` name that does not parse is refused rather than ignored.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::Io;

/// The suffix of every segment file.
const SEGMENT_SUFFIX: &str = ".wal";
/// The suffix of files that are not (yet) part of the log.
pub(crate) const TEMP_SUFFIX: &str = ".wal.tmp";

/// The name of the active segment starting at `first_index`.
pub(crate) fn active_name(first_index: u64) -> String {
    format!("{first_index:020}{SEGMENT_SUFFIX}")
}

/// The name of the sealed segment holding `first_index..=last_index`.
pub(crate) fn sealed_name(first_index: u64, last_index: u64) -> String {
    assert!(
        first_index <= last_index,
        "sealed segment {first_index}-{last_index}"
    );
    format!("{first_index:020}-{last_index:020}{SEGMENT_SUFFIX}")
}

/// The temporary name under which the segment starting at `first_index` is made.
pub(crate) fn temp_name(first_index: u64) -> String {
    format!("{first_index:020}{TEMP_SUFFIX}")
}

/// One segment file found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub path: PathBuf,
    pub first_index: u64,
    /// `Some(last)` for a sealed segment, `None` for the active one.
    pub last_index: Option<u64>,
}

/// A directory's files, sorted and checked: sealed segments contiguous, then at most one
/// active segment continuing them.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub segments: Vec<SegmentFile>,
    pub temp_files: Vec<PathBuf>,
}

fn parse_index(digits: &str) -> Option<u64> {
    let all_digits = digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

/// Parses a segment name; `None` if it is not one.
fn parse_name(name: &str) -> Option<(u64, Option<u64>)> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    match stem.split_once('-') {
        None => Some((parse_index(stem)?, None)),
        Some((first, last)) => {
            let (first, last) = (parse_index(first)?, parse_index(last)?);
            (first >= 1 && first <= last).then_some((first, Some(last)))
        }
    }
}

/// Lists `dir`, classifies its files, and refuses any layout that is not one contiguous log.
pub(crate) fn list(io: &Io, dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    for name in io.read_dir(dir)? {
        let path = dir.join(&name);
        if name.ends_with(TEMP_SUFFIX) {
            listing.temp_files.push(path);
        } else if name.ends_with(SEGMENT_SUFFIX) {
            let (first_index, last_index) =
                parse_name(&name).ok_or_else(|| Error::SegmentLayout {
                    reason: format!("unrecognised segment file name {}", path.display()),
                    paths: vec![path.clone()],
                })?;
            listing.segments.push(SegmentFile {
                path,
                first_index,
                last_index,
            });
        }
    }
    // Sealed before active at equal first index, so a stray active sorts last and is caught.
    listing
        .segments
        .sort_by_key(|s| (s.first_index, s.last_index.is_none()));
    listing.temp_files.sort();
    check_contiguous(&listing.segments)?;
    Ok(listing)
}

/// Sealed segments must follow each other exactly, and only the last may be active.
fn check_contiguous(segments: &[SegmentFile]) -> Result<()> {
    for pair in segments.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let layout_error = |what: &str| Error::SegmentLayout {
            reason: format!(
                "{what} between {} and {}",
                prev.path.display(),
                next.path.display()
            ),
            paths: vec![prev.path.clone(), next.path.clone()],
        };
        let Some(prev_last) = prev.last_index else {
            return Err(layout_error(
                "an active segment is followed by another segment",
            ));
        };
        if next.first_index > prev_last + 1 {
            return Err(layout_error(&format!(
                "entries {}..{} are missing",
                prev_last + 1,
                next.first_index
            )));
        }
        if next.first_index <= prev_last {
            return Err(layout_error("overlapping entries"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(parse_name(&active_name(42)), Some((42, None)));
        assert_eq!(parse_name(&sealed_name(3, 9)), Some((3, Some(9))));
        assert_eq!(parse_name("42.wal"), None);
        assert_eq!(parse_name(&format!("{:020}-{:020}.wal", 9, 3)), None);
        assert!(sealed_name(9, 10) < sealed_name(10, 10));
    }

    fn file(first_index: u64, last_index: Option<u64>) -> SegmentFile {
        SegmentFile {
            path: PathBuf::from(match last_index {
                Some(last) => sealed_name(first_index, last),
                None => active_name(first_index),
            }),
            first_index,
            last_index,
        }
    }

    #[test]
    fn gaps_overlaps_and_misplaced_actives_are_refused() {
        assert!(check_contiguous(&[file(1, Some(5)), file(6, Some(9)), file(10, None)]).is_ok());
        let gap = check_contiguous(&[file(1, Some(5)), file(7, None)]).unwrap_err();
        assert!(
            gap.to_string().contains("entries 6..7 are missing"),
            "{gap}"
        );
        assert!(check_contiguous(&[file(1, Some(5)), file(5, None)]).is_err());
        assert!(check_contiguous(&[file(1, None), file(6, None)]).is_err());
    }
}
