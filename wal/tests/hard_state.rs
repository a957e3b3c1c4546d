//! The hard-state file: round trip, atomic replacement, and refusal of a damaged file.

mod common;

use std::fs;

use common::scratch_dir;
use raftlog_wal::{Error, HardState, HardStateFile};

#[test]
fn saves_round_trip_across_reopen() {
    let dir = scratch_dir();
    let (mut file, state) = HardStateFile::open(dir.path()).unwrap();
    assert_eq!(state, None);
    let states = [
        HardState {
            term: 1,
            voted_for: None,
        },
        HardState {
            term: 1,
            voted_for: Some(2),
        },
        HardState {
            term: 7,
            voted_for: Some(0),
        },
        HardState {
            term: u64::MAX,
            voted_for: Some(u64::MAX),
        },
    ];
    for state in states {
        file.save(&state).unwrap();
        assert_eq!(file.saved(), Some(state));
        let (_, reread) = HardStateFile::open(dir.path()).unwrap();
        assert_eq!(reread, Some(state));
    }
}

#[test]
fn a_crashed_save_leaves_the_old_state_and_its_temp_file_is_removed() {
    let dir = scratch_dir();
    let (mut file, _) = HardStateFile::open(dir.path()).unwrap();
    let old = HardState {
        term: 5,
        voted_for: Some(3),
    };
    file.save(&old).unwrap();
    // A save that died before its rename leaves a (possibly partial) temp file behind.
    fs::write(dir.path().join("hard_state.tmp"), b"partial").unwrap();
    let (_, state) = HardStateFile::open(dir.path()).unwrap();
    assert_eq!(state, Some(old));
    assert!(!dir.path().join("hard_state.tmp").exists());
}

#[test]
fn a_damaged_file_refuses_to_open_with_a_clear_error() {
    let dir = scratch_dir();
    let (mut file, _) = HardStateFile::open(dir.path()).unwrap();
    file.save(&HardState {
        term: 9,
        voted_for: Some(1),
    })
    .unwrap();
    let path = dir.path().join("hard_state");
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    let error = HardStateFile::open(dir.path()).unwrap_err();
    assert!(matches!(error, Error::CorruptHardState { .. }));
    let message = error.to_string();
    assert!(
        message.contains("hard_state") && message.contains("checksum"),
        "{message}"
    );
    fs::write(&path, &bytes[..20]).unwrap();
    let error = HardStateFile::open(dir.path()).unwrap_err();
    assert!(error.to_string().contains("20 bytes long"), "{error}");
}

#[test]
#[should_panic(expected = "vote changed within term")]
fn voting_twice_in_a_term_is_a_bug() {
    let dir = scratch_dir();
    let (mut file, _) = HardStateFile::open(dir.path()).unwrap();
    file.save(&HardState {
        term: 2,
        voted_for: Some(1),
    })
    .unwrap();
    let _ = file.save(&HardState {
        term: 2,
        voted_for: Some(3),
    });
}
