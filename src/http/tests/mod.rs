//! The HTTP API through `actix_web::test`, against the in-memory [`FakeLogService`]: every
//! endpoint and every error code of API.md. Forwarding runs on real loopback ports.

mod append;
mod cluster;
mod forward;
mod read;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use serde_json::Value;

use super::fake::{FakeLogService, Mode};
use super::HttpContext;
use crate::config::LimitsConfig;
use crate::types::NodeId;

/// The request timeout of test contexts: short, so that 503s come quickly.
pub const TEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

pub fn context_with(limits: LimitsConfig) -> HttpContext {
    HttpContext::new(NodeId(1), limits, TEST_REQUEST_TIMEOUT)
}

pub fn context() -> HttpContext {
    context_with(LimitsConfig::default())
}

/// An answer: status, headers, and the body as JSON (`Value::Null` if it is not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// Asserts an API.md error answer with `status` and `code`, and returns its JSON.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.text
        );
        let message = self.json["message"].as_str().unwrap_or_default();
        assert!(
            message.len() > 10,
            "the message is a sentence: {}",
            self.text
        );
        &self.json
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.text);
        &self.json
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Builds the test app of a fake: `test_app!(fake, context)`. (A macro because the app's type
/// names `actix_http::Request`, which actix-web does not re-export.)
macro_rules! test_app {
    ($fake:expr, $context:expr) => {
        actix_web::test::init_service($crate::http::app(
            $fake.clone() as std::sync::Arc<dyn $crate::http::LogService>,
            $context,
        ))
        .await
    };
}
pub(crate) use test_app;

/// Sends a `TestRequest` to a test app and reads the whole answer: `send!(app, request)`.
macro_rules! send {
    ($app:expr, $request:expr) => {
        $crate::http::tests::answer(
            actix_web::test::call_service(&$app, $request.to_request()).await,
        )
        .await
    };
}
pub(crate) use send;

/// Reads a whole answer.
pub async fn answer<B: MessageBody>(response: ServiceResponse<B>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
        text,
    }
}

pub fn post_json(path: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_string())
}

pub fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path)
}

/// Appends text `values` to `stream` through a test app and returns the answer's JSON.
macro_rules! append_texts {
    ($app:expr, $stream:expr, $values:expr) => {{
        let records: Vec<serde_json::Value> = $values.iter().map(|v: &&str| serde_json::json!({ "value": v })).collect();
        let path = format!("/v1/streams/{}/records", $stream);
        let answer = $crate::http::tests::send!($app, $crate::http::tests::post_json(&path, serde_json::json!({ "records": records })));
        answer.assert_ok();
        answer.json
    }};
}
pub(crate) use append_texts;

pub fn leader() -> Arc<FakeLogService> {
    Arc::new(FakeLogService::leader())
}

pub fn fake(mode: Mode) -> Arc<FakeLogService> {
    Arc::new(FakeLogService::new(mode))
}
