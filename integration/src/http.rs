//! A minimal HTTP/1.1 client for the suite: one connection per request (`Connection:
//! close`), made in the clients' network namespace, with one deadline over the whole
//! exchange.
//!
//! It exists for one distinction a general client blurs: whether the request could have
//! reached the server. A request that failed to connect never left, so an append that
//! failed that way definitely wrote nothing ([`HttpError::NotSent`]); anything that goes
//! wrong after the connection was made — a timeout, a reset, a truncated answer — leaves the
//! outcome unknown ([`HttpError::Unknown`]).

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::netns::NetNs;

/// The largest answer read; reads of whole streams stay well under it.
const RESPONSE_BYTES_MAX: usize = 256 << 20;

/// Where requests go: an address, reached from a namespace.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub ns: Arc<NetNs>,
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "status {}: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why there is no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The connection was never made: nothing was sent.
    NotSent(String),
    /// The connection was made, then no (whole) answer came: the request may have been
    /// acted on.
    Unknown(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NotSent(why) => write!(f, "not sent: {why}"),
            HttpError::Unknown(why) => write!(f, "no answer: {why}"),
        }
    }
}

/// Sends one request and reads its whole answer, all within `timeout`.
pub async fn request(
    endpoint: &Endpoint,
    method: &str,
    path_and_query: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    request_counted(endpoint, method, path_and_query, body, timeout, None).await
}

/// [`request`], adding one to `sent` once the whole request is written to the connection:
/// a test that must know its requests reached a (stopped) server's socket waits on it.
pub async fn request_counted(
    endpoint: &Endpoint,
    method: &str,
    path_and_query: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
    sent: Option<&AtomicUsize>,
) -> Result<Response, HttpError> {
    let connected = AtomicBool::new(false);
    let exchange = async {
        let socket = endpoint
            .ns
            .tcp_socket()
            .map_err(|e| HttpError::NotSent(format!("socket: {e}")))?;
        let mut stream = socket
            .connect(endpoint.addr)
            .await
            .map_err(|e| HttpError::NotSent(format!("connect {}: {e}", endpoint.addr)))?;
        connected.store(true, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let mut head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            endpoint.addr
        );
        let payload = match body {
            Some((content_type, bytes)) => {
                head.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                    bytes.len()
                ));
                bytes
            }
            None => &[][..],
        };
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(payload);
        let unknown = |e: std::io::Error| HttpError::Unknown(e.to_string());
        stream.write_all(&message).await.map_err(unknown)?;
        if let Some(sent) = sent {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let count = stream.read(&mut buf).await.map_err(unknown)?;
            if count == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..count]);
            if raw.len() > RESPONSE_BYTES_MAX {
                return Err(HttpError::Unknown("answer too large".into()));
            }
            if let Some(response) = parse_complete(&raw)? {
                return Ok(response);
            }
        }
        parse_complete(&raw)?.ok_or_else(|| HttpError::Unknown("truncated answer".into()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) if connected.load(Ordering::Relaxed) => Err(HttpError::Unknown(format!(
            "timed out after {} ms",
            timeout.as_millis()
        ))),
        Err(_) => Err(HttpError::NotSent(format!(
            "connect timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

/// The answer in `raw`, once it is complete (by `Content-Length` or chunked encoding).
fn parse_complete(raw: &[u8]) -> Result<Option<Response>, HttpError> {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Unknown(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse::<usize>().ok();
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = &raw[head_end + 4..];
    if chunked {
        return Ok(dechunk(body).map(|body| Response { status, body }));
    }
    match length {
        Some(length) if body.len() >= length => Ok(Some(Response {
            status,
            body: body[..length].to_vec(),
        })),
        Some(_) => Ok(None),
        // Without a length the answer ends when the server closes; the caller decides.
        None => Ok(None),
    }
}

/// The body of a complete chunked encoding, `None` while incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if raw.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes a path segment or query value (stream names are already safe; this is
/// for completeness).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sized_and_chunked_answers() {
        let sized = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(
            parse_complete(sized).unwrap(),
            Some(Response {
                status: 200,
                body: b"ok".to_vec()
            })
        );
        assert_eq!(parse_complete(&sized[..sized.len() - 1]).unwrap(), None);
        let chunked =
            b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(parse_complete(chunked).unwrap().unwrap().body, b"abc");
        assert_eq!(parse_complete(&chunked[..20]).unwrap(), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_a_silent_server_is_unknown() {
        let host = Arc::new(NetNs::host());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let endpoint = Endpoint {
            addr,
            ns: host.clone(),
        };
        let refused = request(&endpoint, "GET", "/", None, Duration::from_secs(1)).await;
        assert!(matches!(refused, Err(HttpError::NotSent(_))), "{refused:?}");

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint {
            addr: silent.local_addr().unwrap(),
            ns: host,
        };
        let timed_out = request(&endpoint, "GET", "/", None, Duration::from_millis(100)).await;
        assert!(
            matches!(timed_out, Err(HttpError::Unknown(_))),
            "{timed_out:?}"
        );
    }
}
