//! raftlog as a library: run a node inside your own program — a broker running its
//! controller quorum in-process, as Kafka brokers run KRaft — and use it through a handle.
//!
//! | file | owns |
//! |---|---|
//! | `node.rs` | [`RaftlogNode`] and [`NodeBuilder`]: starting a node on its own thread, stopping it |
//! | `handle.rs` | [`Raftlog`], the handle: append, propose, read, linearize, leadership |
//! | `subscription.rs` | [`Subscription`]: committed records as an async stream |
//! | `cluster.rs` | [`ClusterConfig`]: node configs made in code |
//! | `error.rs` | [`Error`] |
//!
//! raftlog's own HTTP service is a layer over this same handle, so anything it can do, an
//! embedding program can do without HTTP.
//!
//! # Example
//!
//! A one-node cluster: start it, wait until it leads, append, read, subscribe, append
//! fenced by term, shut down. A real controller quorum has three or five members (see
//! `examples/controller.rs`); the calls are the same.
//!
//! ```
//! use futures::StreamExt;
//! use raftlog::embed::{Append, ClusterConfig, Consistency, Error, RaftlogNode};
//! use raftlog::types::{Offset, Term};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let dir = std::env::temp_dir().join(format!("raftlog-doc-embed-{}", std::process::id()));
//! let config = ClusterConfig::new("doc")
//!     .member(1, "127.0.0.1:0", "http://127.0.0.1:0")
//!     .node(1, &dir)?;
//! let node = RaftlogNode::builder(config).start().await?;
//! let log = node.handle();
//!
//! // A lone voter elects itself. The watch names it once it has applied its term's start.
//! let mut leader = log.leader_changes();
//! let term = leader.wait_for(|view| view.leader == Some(log.id())).await.unwrap().term;
//!
//! let appended = log.append("events", ["hello", "world"]).await?;
//! assert_eq!((appended.first_offset, appended.last_offset), (Offset(0), Offset(1)));
//! let read = log.read("events", Offset(0), 10, Consistency::Linearizable).await?;
//! assert_eq!(read.records[1].value, "world");
//!
//! let mut events = log.subscribe("events", Offset(1));
//! assert_eq!(events.next().await.unwrap()?.value, "world");
//!
//! // Only the leader of exactly `term` may write this; a later term's leader may not.
//! log.append_with(Append::new("events", ["fenced"]).in_term(term)).await?;
//! let late = Append::new("events", ["late"]).in_term(Term(term.0 + 1));
//! assert!(matches!(log.append_with(late).await, Err(Error::NotLeader { .. })));
//! assert_eq!(events.next().await.unwrap()?.value, "fenced");
//!
//! node.shutdown().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod cluster;
mod error;
mod handle;
mod node;
mod subscription;

pub use cluster::ClusterConfig;
pub use error::Error;
pub use handle::{Append, Appended, Consistency, Proposed, Raftlog, Records};
pub use node::{NodeBuilder, RaftlogNode};
pub use subscription::{Record, Subscription};

pub use crate::node::state_machine::StateMachine;
pub use crate::node::NodeStatus;
pub use crate::raft::leader_view::LeaderView;
pub use crate::streams::StreamInfo;
