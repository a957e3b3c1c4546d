//! The `raftlog` command line: running nodes (`dev`, `serve`) and the client verbs (`append`,
//! `read`, `tail`, `status`), with exit codes scripts can trust (see [`exit`]).
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the argument grammar, logging, and dispatch ([`main`]) |
//! | [`exit`] | [`CliError`] and the exit codes |
//! | [`dev`], [`serve`] | running nodes; [`serve::run_nodes`] is the node runtime |
//! | [`client`] | HTTP requests to a node and its error answers |
//! | [`append`], [`read`], [`tail`], [`status`] | the client verbs |
//! | [`output`] | how records are printed |
//! | [`sse`] | reading Server-Sent Events |
//! | [`bench`] | `raftlog bench`; what it runs is in `crate::bench` |

pub mod append;
pub mod bench;
pub mod client;
pub mod dev;
pub mod exit;
pub mod output;
pub mod read;
pub mod serve;
pub mod sse;
pub mod status;
pub mod tail;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

pub use exit::CliError;

/// The default `--url`: node 1 of `raftlog dev`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7001";

/// raftlog: a replicated, durable log service.
#[derive(Parser, Debug)]
#[command(name = "raftlog", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local cluster on this machine (3 nodes on 127.0.0.1:7001-7003 by default).
    Dev(dev::DevArgs),
    /// Run one node of a cluster from its config file.
    Serve(serve::ServeArgs),
    /// Append records to a stream and print their offsets.
    Append(append::AppendArgs),
    /// Print a stream's records from an offset.
    Read(read::ReadArgs),
    /// Follow a stream's new records as they commit.
    Tail(tail::TailArgs),
    /// Show the cluster: leader, term, members and their lag.
    Status(status::StatusArgs),
    /// Print the HTTP API as an OpenAPI 3 document.
    Openapi,
    /// Measure throughput and latency under load (a local cluster, or --url); --sweep tunes
    /// the batching knobs.
    Bench(bench::BenchArgs),
}

/// The node a client verb talks to.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Any node's base URL; it forwards to the leader when it must.
    #[arg(long, env = "RAFTLOG_URL", default_value = DEFAULT_URL)]
    pub url: String,
}

/// The whole program: parses the arguments, sets up logging, runs the command on an actix
/// system, prints any error to stderr and returns its exit code.
pub fn main() -> ExitCode {
    run_from(std::env::args_os())
}

/// [`main`] with the arguments given.
pub fn run_from(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and --version go to stdout with 0; usage errors to stderr with 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    init_logging();
    if matches!(cli.command, Command::Dev(_) | Command::Serve(_)) {
        // A node whose invariant broke must not keep serving. (Set here, for the process,
        // and not by the node runtime, which tests also run.)
        crate::runtime::abort_on_panic();
    }
    let system = actix_rt::System::new();
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let outcome = system.block_on(run(cli.command, &mut stdin.lock(), &mut stdout.lock()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("raftlog: {error}");
            error.exit_code()
        }
    }
}

/// Runs one command with the given stdin and stdout.
pub async fn run(
    command: Command,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        Command::Dev(args) => dev::run(args, stdout).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Append(args) => append::run(args, stdin, stdout).await,
        Command::Read(args) => read::run(args, stdout).await,
        Command::Tail(args) => tail::run(args, stdout).await,
        Command::Status(args) => status::run(args, stdout).await,
        Command::Bench(args) => bench::run(args, stdout).await,
        Command::Openapi => {
            writeln!(stdout, "{}", crate::http::openapi::document())?;
            Ok(())
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (e.g. `RUST_LOG=raftlog=debug`), `info` by default.
fn init_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|error| {
            eprintln!("raftlog: ignoring RUST_LOG={spec:?}: {error}");
            EnvFilter::new("info")
        }),
        Err(_) => EnvFilter::new("info"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
