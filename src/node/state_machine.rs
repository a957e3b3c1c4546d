//! The seam for an embedding program's own replicated state machine, kept beside the stream
//! index: a controller's brokers, partitions and assignments, say. Its commands travel in the
//! same Raft log as stream appends (as [`EntryPayload::Application`] entries), are applied in
//! the same order on every node, and each proposer gets back what [`StateMachine::apply`]
//! returned for its command.
//!
//! [`EntryPayload::Application`]: crate::raft::message::EntryPayload::Application

use bytes::Bytes;

use crate::types::LogIndex;

/// A deterministic state machine replicated by raftlog.
///
/// Every node applies the same commands in the same order, so `apply` must depend on nothing
/// but the state and the command: no clocks, no randomness, no I/O whose result can differ
/// between nodes. Put what must be decided once (a timestamp, a random id) into the command.
///
/// ```
/// use bytes::Bytes;
/// use raftlog::node::state_machine::StateMachine;
/// use raftlog::types::LogIndex;
///
/// /// Counts the commands it has seen, and answers each with the new count.
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     fn apply(&mut self, _index: LogIndex, _command: &[u8]) -> Bytes {
///         self.0 += 1;
///         Bytes::from(self.0.to_string())
///     }
///     fn snapshot(&self) -> Bytes {
///         Bytes::from(self.0.to_le_bytes().to_vec())
///     }
///     fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
///         let bytes: [u8; 8] = snapshot.try_into().map_err(|_| "not a counter".to_string())?;
///         self.0 = u64::from_le_bytes(bytes);
///         Ok(())
///     }
/// }
///
/// let mut counter = Counter::default();
/// assert_eq!(counter.apply(LogIndex(1), b"tick"), "1");
/// let mut copy = Counter::default();
/// copy.restore(&counter.snapshot()).unwrap();
/// assert_eq!(copy.apply(LogIndex(2), b"tick"), "2");
/// ```
pub trait StateMachine: Send + 'static {
    /// Applies the committed command at `index`, and returns the answer for its proposer.
    /// Called exactly once per entry on each node, in log order.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Bytes;

    /// The whole state, as bytes [`StateMachine::restore`] accepts.
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with one taken by [`StateMachine::snapshot`]; refuses bytes it
    /// cannot read, leaving the state as it was.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}
