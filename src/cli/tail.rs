//! `raftlog tail STREAM [--from N] [--limit N]`: follows a stream's new records over SSE and
//! prints each as an `OFFSET<TAB>VALUE` line (see `output.rs`), until interrupted.
//!
//! Without `--from` it starts at the stream's current end, as `tail -f` does. When the event
//! stream ends or breaks (a node restarting, a leader change) it reconnects after a pause and
//! resumes with `Last-Event-ID`, so no record is skipped or repeated; it gives up (exit 3)
//! when a reconnection fails.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;

use super::client::{Client, REQUEST_TIMEOUT};
use super::exit::CliError;
use super::output::{decode_base64, record_line};
use super::sse::{Event, EventParser};
use super::ClientArgs;
use crate::http::wire::{ErrorBody, StreamJson};

/// The pause before reconnecting a broken tail.
pub const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

#[derive(Args, Debug)]
pub struct TailArgs {
    /// The stream to follow.
    pub stream: String,
    /// The first offset to print (default: the stream's current end).
    #[arg(long)]
    pub from: Option<u64>,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: TailArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    crate::streams::validate_stream_name(&args.stream).map_err(CliError::Usage)?;
    let client = Client::new(&args.client.url)?;
    let mut next = match args.from {
        Some(from) => from,
        None => {
            let bounds: StreamJson = client
                .get(&format!("/v1/streams/{}", args.stream), REQUEST_TIMEOUT)
                .await?;
            bounds.end_offset
        }
    };
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    if remaining == 0 {
        return Ok(());
    }
    let path = format!("/v1/streams/{}/tail?from={next}", args.stream);
    loop {
        let resume = next
            .checked_sub(1)
            .map(|last| ("last-event-id", last.to_string()));
        let headers: Vec<_> = resume.into_iter().collect();
        let mut events = client.open_stream(&path, &headers).await?;
        let mut parser = EventParser::default();
        while let Some(chunk) = events.next().await {
            let Ok(chunk) = chunk else { break };
            for event in parser.feed(&chunk) {
                let Some(offset) = print_event(&event, stdout)? else {
                    continue;
                };
                next = offset + 1;
                remaining -= 1;
                if remaining == 0 {
                    return Ok(());
                }
            }
        }
        tracing::info!(next, "the tail ended; reconnecting");
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// Prints a record event and returns its offset; `None` for other events. A `stream_error`
/// event other than `unavailable` ends the command with the server's error.
fn print_event(event: &Event, stdout: &mut dyn Write) -> Result<Option<u64>, CliError> {
    match event.kind.as_deref() {
        None | Some("message") | Some("b64") => {}
        Some("stream_error") => {
            let Ok(error) = serde_json::from_str::<ErrorBody>(&event.data) else {
                return Ok(None);
            };
            tracing::warn!(code = %error.error, message = %error.message, "the tail broke");
            if error.error == "unavailable" {
                return Ok(None);
            }
            return Err(CliError::Refused {
                status: 200,
                code: error.error,
                message: error.message,
            });
        }
        Some(_) => return Ok(None),
    }
    let Some(offset) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) else {
        return Err(CliError::Failed(format!(
            "an event without an offset: {event:?}"
        )));
    };
    let value = match event.kind.as_deref() {
        Some("b64") => decode_base64(&event.data)?,
        _ => event.data.clone().into_bytes(),
    };
    writeln!(stdout, "{}", record_line(offset, &value))?;
    stdout.flush()?;
    Ok(Some(offset))
}
