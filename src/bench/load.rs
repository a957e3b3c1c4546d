//! The load generator: a fixed number of HTTP/1.1 keep-alive connections, each sending its
//! next request as soon as the last one is answered (a closed loop, as `wrk` does), for a
//! warm-up and then a measured window. It runs on the caller's actix system, one task per
//! connection on one thread: on a small machine the generator should take as little CPU
//! from the nodes as it can, and one event loop is what `wrk -t1` spends too.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::report::Progress;
use super::stats::Recording;
use super::workload::{append_body, append_path, read_path, stream_name, Workload};

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer body read; bench answers are small.
const ANSWER_BYTES_MAX: usize = 16 << 20;

/// After a failure a connection pauses this long, so a refused connection is not a busy loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);

/// Records per request when filling streams before a read run.
const PREFILL_RECORDS_PER_REQUEST: usize = 100;

/// One run of load.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The node's base URL, `http://host:port`.
    pub target: String,
    pub connections: usize,
    /// Load before the window, not measured: connections open, batches and caches settle.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Connection `c` uses stream `c % streams`.
    pub streams: usize,
    pub workload: Workload,
}

/// The window the requests are measured in.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Drives the target as `spec` says and returns what the measured window recorded.
/// `progress` is told the completed requests once a second.
pub async fn run(spec: &LoadSpec, mut progress: Progress) -> Recording {
    let begin = Instant::now();
    let window = Window {
        start: begin + spec.warmup,
        end: begin + spec.warmup + spec.duration,
    };
    let recording = Rc::new(RefCell::new(Recording::default()));
    let completed = Rc::new(Cell::new(0u64));
    let body = match spec.workload {
        Workload::Write {
            value_bytes,
            records_per_request,
        } => append_body(value_bytes, records_per_request),
        Workload::Read { .. } => Bytes::new(),
    };
    let ticker = {
        let completed = completed.clone();
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                progress.tick(begin.elapsed(), completed.get());
            }
        })
    };
    let connections = (0..spec.connections).map(|connection| {
        drive(
            connection,
            spec,
            body.clone(),
            window,
            recording.clone(),
            completed.clone(),
        )
    });
    futures::future::join_all(connections).await;
    ticker.abort();
    let recording = recording.borrow().clone();
    recording
}

/// One connection's loop until the window ends.
async fn drive(
    connection: usize,
    spec: &LoadSpec,
    body: Bytes,
    window: Window,
    recording: Rc<RefCell<Recording>>,
    completed: Rc<Cell<u64>>,
) {
    // One client per connection, limited to one socket: `connections` means sockets.
    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(1))
        .timeout(REQUEST_TIMEOUT)
        .finish();
    let stream = stream_name(connection % spec.streams.max(1));
    let append_url = format!("{}{}", spec.target, append_path(&stream));
    // Readers start at different offsets so that they do not all read one record.
    let mut offset = connection as u64;
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return;
        }
        let outcome = match spec.workload {
            Workload::Write { .. } => {
                let request = client.post(&append_url).content_type("application/json");
                answer(request.send_body(body.clone()).await).await
            }
            Workload::Read {
                consistency,
                records_per_stream,
                ..
            } => {
                offset = (offset + 1) % records_per_stream.max(1);
                let url = format!("{}{}", spec.target, read_path(&stream, offset, consistency));
                answer(client.get(&url).send().await).await
            }
        };
        let finished = Instant::now();
        completed.set(completed.get() + 1);
        let measured = finished >= window.start && finished <= window.end;
        match outcome {
            Ok(()) if measured => recording.borrow_mut().success(finished - sent),
            Ok(()) => {}
            Err(why) => {
                if measured {
                    recording.borrow_mut().failure(|| why);
                }
                actix_rt::time::sleep(FAILURE_PAUSE).await;
            }
        }
    }
}

/// Reads the whole answer (so that the connection can be reused) and says whether it is 2xx.
async fn answer<S>(
    sent: Result<awc::ClientResponse<S>, awc::error::SendRequestError>,
) -> Result<(), String>
where
    S: futures::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut response = sent.map_err(|error| format!("no answer: {error}"))?;
    let status = response.status();
    let body = response
        .body()
        .limit(ANSWER_BYTES_MAX)
        .await
        .map_err(|error| format!("answer cut short: {error}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

/// Appends `records_per_stream` records of `value_bytes` to each of `streams` bench streams,
/// so that a read run finds them.
pub async fn prefill(
    target: &str,
    streams: usize,
    records_per_stream: u64,
    value_bytes: usize,
) -> Result<(), String> {
    let client = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
    for stream in 0..streams {
        let url = format!("{target}{}", append_path(&stream_name(stream)));
        let mut written = 0;
        while written < records_per_stream {
            let count = (records_per_stream - written).min(PREFILL_RECORDS_PER_REQUEST as u64);
            let body = append_body(value_bytes, count as usize);
            let request = client.post(&url).content_type("application/json");
            answer(request.send_body(body).await)
                .await
                .map_err(|why| format!("filling {url}: {why}"))?;
            written += count;
        }
    }
    Ok(())
}
