//! `raftlog serve --config FILE`: one node of a real cluster; and [`run_nodes`], the node
//! runtime that `serve` and `dev` hand their validated configs to.

use std::path::PathBuf;

use clap::Args;
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::exit::CliError;
use crate::config::NodeFileConfig;
use crate::runtime;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The node's TOML config file (see config/node-1.toml).
    #[arg(long, short)]
    pub config: PathBuf,
}

/// Loads and validates the config (every problem is listed, exit 2), then runs the node
/// until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let config = NodeFileConfig::load(&args.config)?;
    tracing::info!(
        node = config.id.0,
        cluster = %config.cluster_id,
        http = %config.http.listen,
        peer = %config.peer.listen,
        data = %config.data_dir.display(),
        "starting node"
    );
    run_nodes(vec![config], shutdown_signal().boxed_local()).await
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch for SIGTERM; only Ctrl-C stops the node");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping: finishing requests in progress");
}

/// Runs the nodes of `configs` (validated) in this process until `shutdown` resolves, then
/// stops them cleanly: stop accepting HTTP requests, finish or fail those in progress, flush
/// the WAL, and return `Ok` (exit 0). `serve` passes one config, `dev` several. (The
/// process's panic policy, abort, is `cli::run_from`'s to set.)
pub async fn run_nodes(
    configs: Vec<NodeFileConfig>,
    shutdown: LocalBoxFuture<'static, ()>,
) -> Result<(), CliError> {
    let mut running = Vec::new();
    for config in &configs {
        match runtime::start_node(config, Default::default()) {
            Ok(node) => running.push(node),
            Err(error) => {
                for node in running {
                    runtime::stop_node(node).await;
                }
                return Err(CliError::Failed(format!("node {}: {error}", config.id.0)));
            }
        }
    }
    shutdown.await;
    for node in running {
        runtime::stop_node(node).await;
    }
    Ok(())
}
