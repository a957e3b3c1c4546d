//! `raftlog read STREAM [--from N] [--limit N] [--consistency C] [--follow]`: prints records
//! from `--from` on, one `OFFSET<TAB>VALUE` line each (see `output.rs`).
//!
//! Without `--follow` it reads page by page up to the end of the stream as the first page
//! saw it, and stops. With `--follow` it then keeps long-polling for new records until
//! interrupted. `--limit` stops either after that many records.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::client::{Client, REQUEST_TIMEOUT};
use super::exit::CliError;
use super::output::{record_bytes, record_line};
use super::ClientArgs;
use crate::http::wire::ReadResponse;

/// The records asked for per request (the server's default `read_records_max`).
pub const PAGE_RECORDS_MAX: u64 = 1_000;
/// How long each `--follow` long-poll waits for new records.
pub const FOLLOW_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    Linearizable,
    Lease,
    Stale,
}

impl ConsistencyArg {
    fn as_str(self) -> &'static str {
        match self {
            ConsistencyArg::Linearizable => "linearizable",
            ConsistencyArg::Lease => "lease",
            ConsistencyArg::Stale => "stale",
        }
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    /// The stream to read.
    pub stream: String,
    /// The first offset to read.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    /// How fresh the records must be.
    #[arg(long, value_enum, default_value_t = ConsistencyArg::Linearizable)]
    pub consistency: ConsistencyArg,
    /// After the end, keep waiting for new records (until Ctrl-C or --limit).
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: ReadArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    crate::streams::validate_stream_name(&args.stream).map_err(CliError::Usage)?;
    let client = Client::new(&args.client.url)?;
    let mut from = args.from;
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let mut end = None;
    while remaining > 0 {
        // Long-poll only once caught up, so that a backlog is read at full speed.
        let caught_up = end.is_some_and(|end| from >= end);
        if caught_up && !args.follow {
            break;
        }
        let wait = if caught_up {
            FOLLOW_WAIT
        } else {
            Duration::ZERO
        };
        let path = format!(
            "/v1/streams/{}/records?from={from}&limit={}&consistency={}&wait_ms={}",
            args.stream,
            remaining.min(PAGE_RECORDS_MAX),
            args.consistency.as_str(),
            wait.as_millis()
        );
        let page: ReadResponse = client.get(&path, REQUEST_TIMEOUT + wait).await?;
        for record in &page.records {
            writeln!(
                stdout,
                "{}",
                record_line(record.offset(), &record_bytes(record)?)
            )?;
        }
        stdout.flush()?;
        remaining = remaining.saturating_sub(page.records.len() as u64);
        from = page.next_offset;
        // Without --follow the end is fixed by the first page; with it, each page moves it.
        if end.is_none() || args.follow {
            end = Some(page.end_offset);
        }
        if page.records.is_empty() && !args.follow {
            break;
        }
    }
    Ok(())
}
