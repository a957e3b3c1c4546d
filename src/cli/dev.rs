//! `raftlog dev`: a local cluster in one command. Its nodes run in this process with the
//! configs of `config::dev_configs` (HTTP from `--base-port`, peers 1000 above, data under
//! `--data`, kept between runs), changed by any `--set KEY=VALUE`, until Ctrl-C.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::exit::CliError;
use super::serve::{run_nodes, shutdown_signal};
use crate::config::{dev_configs, NodeFileConfig};

#[derive(Args, Debug)]
pub struct DevArgs {
    /// How many voters to run.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Where the nodes keep their data (node N in DATA/node-N); a second run finds it again.
    #[arg(long, default_value = "./data/dev")]
    pub data: PathBuf,
    /// Node N serves HTTP on BASE_PORT + N - 1 and peers on 1000 above that.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Change a setting of every node: KEY=VALUE with the key as in a config file and the
    /// value in TOML syntax, e.g. `--set limits.long_poll_ms_max=500`. Repeatable. Only the
    /// tuning keys (request_timeout_ms, http.workers, raft.*, replication.*, batching.*,
    /// wal.*, limits.*) can be set.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs the cluster until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    run_until(args, stdout, shutdown_signal().boxed_local()).await
}

/// Runs the cluster until `shutdown` resolves, then stops it cleanly.
pub async fn run_until(
    args: DevArgs,
    stdout: &mut dyn Write,
    shutdown: LocalBoxFuture<'static, ()>,
) -> Result<(), CliError> {
    let configs = dev_configs(args.nodes, &args.data, args.base_port)?
        .into_iter()
        .map(|config| config.with_overrides(&args.set, "raftlog dev --set"))
        .collect::<Result<Vec<_>, _>>()?;
    write_banner(&configs, &args.data, stdout)?;
    run_nodes(configs, shutdown).await
}

/// What the user sees first: where each node is, and commands to try.
pub fn write_banner(
    configs: &[NodeFileConfig],
    data: &Path,
    stdout: &mut dyn Write,
) -> std::io::Result<()> {
    let first = configs[0].own_member().http.clone();
    let second = configs
        .get(1)
        .map_or(first.clone(), |config| config.own_member().http.clone());
    writeln!(
        stdout,
        "raftlog dev: {} nodes on this machine, data in {}",
        configs.len(),
        data.display()
    )?;
    for config in configs {
        let member = config.own_member();
        writeln!(
            stdout,
            "  node {}  {}  (peer {}, data {})",
            config.id.0,
            member.http,
            member.peer,
            config.data_dir.display()
        )?;
    }
    writeln!(stdout)?;
    writeln!(stdout, "Try it:")?;
    writeln!(
        stdout,
        "  curl -s -X POST {first}/v1/streams/demo/records -H 'content-type: application/json' \
         -d '{{\"records\": [{{\"value\": \"hello\"}}]}}'"
    )?;
    writeln!(
        stdout,
        "  curl -s '{second}/v1/streams/demo/records?from=0'"
    )?;
    writeln!(stdout, "  raftlog status --url {first}")?;
    writeln!(stdout)?;
    writeln!(
        stdout,
        "Ctrl-C stops the cluster; running `raftlog dev` again keeps the data."
    )?;
    stdout.flush()
}
