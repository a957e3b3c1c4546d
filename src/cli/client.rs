//! The HTTP client of the CLI verbs: requests to one node's base URL, and the server's
//! answers turned into values or into a [`CliError`] with the right exit code.
//!
//! The client does not look for the leader: any node forwards what needs the leader.

use std::time::Duration;

use awc::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::exit::CliError;
use crate::http::wire::ErrorBody;

/// How long a plain request may take before the CLI gives up (exit 3).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest answer body the CLI reads.
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// A client of one node.
pub struct Client {
    base: String,
    http: awc::Client,
}

impl Client {
    /// A client of the node at `url` (`http://host:port`). A URL of another form is a usage
    /// error.
    pub fn new(url: &str) -> Result<Self, CliError> {
        let base = url.trim_end_matches('/').to_string();
        let Some(authority) = base.strip_prefix("http://") else {
            return Err(CliError::Usage(format!(
                "--url {url:?} must be http://host:port"
            )));
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(CliError::Usage(format!(
                "--url {url:?} must be http://host:port, with no path"
            )));
        }
        // Deadlines are per request: long-polls and tails outlive any default.
        let http = awc::Client::builder().disable_timeout().finish();
        Ok(Self { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (with its query), decoded as `T`, within `timeout`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, CliError> {
        let url = format!("{}{path}", self.base);
        let request = self.http.get(&url).timeout(timeout);
        let response = request
            .send()
            .await
            .map_err(|error| unreachable(&url, &error))?;
        decode(&url, response).await
    }

    /// `POST path` with `body` as JSON, decoded as `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        let url = format!("{}{path}", self.base);
        let request = self.http.post(&url).timeout(REQUEST_TIMEOUT);
        let response = request
            .send_json(body)
            .await
            .map_err(|error| unreachable(&url, &error))?;
        decode(&url, response).await
    }

    /// `GET path` for a stream of events, with `headers`; the answer's head within
    /// [`REQUEST_TIMEOUT`], and then its body for as long as it lasts.
    pub async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<awc::ClientResponse, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        for (name, value) in headers {
            request = request.insert_header((*name, value.as_str()));
        }
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, request.send()).await;
        let mut response = match sent {
            Err(_) => {
                return Err(CliError::Unavailable(format!(
                    "{url} did not answer within {REQUEST_TIMEOUT:?}"
                )))
            }
            Ok(Err(error)) => return Err(unreachable(&url, &error)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let body = response
            .body()
            .limit(ANSWER_BYTES_MAX)
            .await
            .unwrap_or_default();
        Err(error_answer(&url, response.status(), &body))
    }
}

fn unreachable(url: &str, error: &awc::error::SendRequestError) -> CliError {
    CliError::Unavailable(format!("cannot reach {url}: {error}"))
}

async fn decode<T: DeserializeOwned, S>(
    url: &str,
    mut response: awc::ClientResponse<S>,
) -> Result<T, CliError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = response
        .body()
        .limit(ANSWER_BYTES_MAX)
        .await
        .map_err(|error| CliError::Unavailable(format!("{url} stopped answering: {error}")))?;
    if !response.status().is_success() {
        return Err(error_answer(url, response.status(), &body));
    }
    serde_json::from_slice(&body).map_err(|error| {
        CliError::Failed(format!(
            "{url} gave an answer that is not what raftlog sends: {error}"
        ))
    })
}

/// The error for a non-2xx answer: 503 is unavailable (exit 3), anything else refused.
fn error_answer(url: &str, status: StatusCode, body: &[u8]) -> CliError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match parsed {
        Some(error) => (error.error, error.message),
        None => (
            "http_error".to_string(),
            format!("{url} answered {status}: {}", String::from_utf8_lossy(body)),
        ),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        CliError::Unavailable(format!("{code}: {message}"))
    } else {
        CliError::Refused {
            status: status.as_u16(),
            code,
            message,
        }
    }
}
