//! Peer transport (in progress).
