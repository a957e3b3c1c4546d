//! [`RaftlogNode`]: a node running inside the embedding program, on a thread of its own.
//!
//! The node's actors need an actix system; the embedding program may run anything (a plain
//! tokio runtime, another actix system, no runtime at all). So each node gets a thread with
//! its own actix system, and the program talks to it only through channels — the
//! [`Raftlog`] handle's actor addresses and oneshot replies work from any runtime.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::config::NodeFileConfig;
use crate::embed::{Error, Raftlog, StateMachine};
use crate::runtime::{self, StartOptions};

/// How to start a node: its config, and what the embedding program adds to it. Made by
/// [`RaftlogNode::builder`].
pub struct NodeBuilder {
    config: NodeFileConfig,
    options: StartOptions,
}

impl NodeBuilder {
    /// Replicates `machine` alongside the streams: commands proposed with
    /// [`Raftlog::propose`] are applied to it on every node, in log order.
    pub fn state_machine(mut self, machine: impl StateMachine) -> Self {
        self.options.application = Some(Box::new(machine));
        self
    }

    /// Whether to serve raftlog's HTTP API on the config's `[http] listen` address (by
    /// default it does not: an embedding program talks to its node through the handle).
    pub fn http(mut self, serve: bool) -> Self {
        self.options.http = serve;
        self
    }

    /// Opens the node's data directory (recovering its log), starts its transport and
    /// actors, and resolves once it runs. Fails with [`Error::Start`] — naming every
    /// problem — on an invalid config, a data directory it cannot open, or an address in
    /// use.
    pub async fn start(self) -> Result<RaftlogNode, Error> {
        let NodeBuilder { config, options } = self;
        config
            .validate()
            .map_err(|problems| Error::Start(problems.join("; ")))?;
        let transfer_timeout = 3 * config.raft.election_timeout_max();
        let (ready_tx, ready) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("raftlog-n{}", config.id.0))
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let running = match runtime::start_node(&config, options) {
                        Ok(running) => running,
                        Err(problem) => {
                            let _ = ready_tx.send(Err(problem));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(running.node.clone()));
                    // Runs until shut down — or until the owner is dropped, which drops `stop`.
                    let _ = stop_rx.await;
                    runtime::stop_node(running).await;
                });
                let _ = stopped_tx.send(());
            })
            .map_err(|e| Error::Start(format!("cannot start the node's thread: {e}")))?;
        let node = ready
            .await
            .map_err(|_| Error::Start("the node's thread ended while starting".to_string()))?
            .map_err(Error::Start)?;
        Ok(RaftlogNode {
            handle: Raftlog::new(node, transfer_timeout),
            stop: Some(stop),
            stopped: Some(stopped),
            thread: Some(thread),
        })
    }
}

/// A node running in this process. Dropping it stops the node in the background; call
/// [`shutdown`](RaftlogNode::shutdown) to wait for a clean stop.
///
/// If the node's storage fails in a way it cannot recover from (a failed fsync), it stops
/// the whole process rather than go on as if a write had happened — as Kafka's KRaft
/// controllers halt on log errors.
pub struct RaftlogNode {
    handle: Raftlog,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RaftlogNode {
    /// A node from `config` (the same config a `raftlog serve` node reads; see
    /// [`ClusterConfig`](crate::embed::ClusterConfig) to make one in code).
    pub fn builder(config: NodeFileConfig) -> NodeBuilder {
        NodeBuilder {
            config,
            options: StartOptions {
                application: None,
                http: false,
            },
        }
    }

    /// The handle through which the program uses the node. Cheap to clone.
    pub fn handle(&self) -> Raftlog {
        self.handle.clone()
    }

    /// Stops the node cleanly: open subscriptions end, writes in flight are answered or
    /// fail, everything in the log is flushed, then its actors, transport and thread stop.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
        if let Some(thread) = self.thread.take() {
            // The thread has signalled its last step: this join does not wait.
            let _ = thread.join();
        }
    }
}

impl Drop for RaftlogNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
