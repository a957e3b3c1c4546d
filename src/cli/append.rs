//! `raftlog append STREAM [VALUE...]`: appends the values given, or else each line of stdin,
//! and prints the offset of each record, one per line, in input order.
//!
//! Values on the command line go in one request. Stdin is sent in batches of up to
//! [`STDIN_BATCH_RECORDS_MAX`] lines or [`STDIN_BATCH_BYTES_MAX`] bytes, one request after
//! another, so the records keep their order; a failed request stops the command (the lines
//! before it are written, and their offsets printed). With `--producer ID --seq N` each
//! request is an idempotent write with seq N, N+1, ...; with `--expected-offset N` the first
//! request is conditional on N and each next one on the offset after the last.

use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clap::Args;

use super::client::Client;
use super::exit::CliError;
use super::ClientArgs;
use crate::http::wire::{AppendBody, AppendResponse, Producer, RecordIn};

/// The most stdin lines sent in one request.
pub const STDIN_BATCH_RECORDS_MAX: usize = 1_000;
/// A stdin batch is sent once it reaches this many bytes (the server's default batch limit
/// is 8 MiB).
pub const STDIN_BATCH_BYTES_MAX: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct AppendArgs {
    /// The stream to append to.
    pub stream: String,
    /// The values to append, as one batch. Without values, each line of stdin is a record.
    pub values: Vec<String>,
    /// Make the writes idempotent under this producer id (a retry writes nothing twice).
    #[arg(long, requires = "seq")]
    pub producer: Option<String>,
    /// The producer's sequence number for the first request; later requests add one each.
    #[arg(long, requires = "producer")]
    pub seq: Option<u64>,
    /// Write only if the stream's next offset is this (fencing).
    #[arg(long)]
    pub expected_offset: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `append`: reads stdin only when no values are given.
pub async fn run(
    args: AppendArgs,
    stdin: &mut dyn BufRead,
    stdout: &mut dyn Write,
) -> Result<(), CliError> {
    crate::streams::validate_stream_name(&args.stream).map_err(CliError::Usage)?;
    let client = Client::new(&args.client.url)?;
    let mut writer = Writer {
        client: &client,
        path: format!("/v1/streams/{}/records", args.stream),
        producer: args.producer.clone().zip(args.seq),
        expected_offset: args.expected_offset,
    };
    if !args.values.is_empty() {
        let records = args
            .values
            .into_iter()
            .map(|value| value.into_bytes())
            .collect();
        return writer.send(records, stdout).await;
    }
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    loop {
        let mut line = Vec::new();
        if stdin.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        batch_bytes += line.len();
        batch.push(line);
        if batch.len() >= STDIN_BATCH_RECORDS_MAX || batch_bytes >= STDIN_BATCH_BYTES_MAX {
            writer.send(std::mem::take(&mut batch), stdout).await?;
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        writer.send(batch, stdout).await?;
    }
    Ok(())
}

/// Sends batches in order, advancing the producer seq and the expected offset.
struct Writer<'a> {
    client: &'a Client,
    path: String,
    producer: Option<(String, u64)>,
    expected_offset: Option<u64>,
}

impl Writer<'_> {
    async fn send(
        &mut self,
        records: Vec<Vec<u8>>,
        stdout: &mut dyn Write,
    ) -> Result<(), CliError> {
        let count = records.len() as u64;
        let body = AppendBody {
            records: records.into_iter().map(record_in).collect(),
            producer: self.producer.clone().map(|(id, seq)| Producer { id, seq }),
            expected_offset: self.expected_offset,
        };
        let written: AppendResponse = self.client.post(&self.path, &body).await?;
        if written.last_offset + 1 - written.first_offset != count {
            return Err(CliError::Failed(format!(
                "the server wrote {count} records at offsets {}..={}",
                written.first_offset, written.last_offset
            )));
        }
        for offset in written.first_offset..=written.last_offset {
            writeln!(stdout, "{offset}")?;
        }
        stdout.flush()?;
        if let Some((_, seq)) = &mut self.producer {
            *seq += 1;
        }
        if let Some(expected) = &mut self.expected_offset {
            *expected = written.last_offset + 1;
        }
        Ok(())
    }
}

/// A value as text if it is UTF-8, else as base64.
fn record_in(value: Vec<u8>) -> RecordIn {
    match String::from_utf8(value) {
        Ok(value) => RecordIn::text(value),
        Err(error) => RecordIn::base64(BASE64.encode(error.as_bytes())),
    }
}
