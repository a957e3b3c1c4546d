//! The JSON of API.md, as Rust types: request bodies, query strings and responses.
//!
//! These types are the single description of the wire format. The handlers parse and produce
//! them, `openapi.rs` derives the published schema from them (so the schema cannot drift from
//! what the handlers do), and the CLI client decodes the server's answers with them. Numbers
//! are plain `u64` here, as on the wire; the handlers convert to the newtypes of
//! `crate::types` at the edge.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The longest producer id, in characters (as JSON Schema's `maxLength` counts).
pub const PRODUCER_ID_CHARS_MAX: usize = 255;

/// `POST /v1/streams/{stream}/records` with `Content-Type: application/json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// The batch, written all or nothing, in this order. At least one record.
    #[schema(min_items = 1)]
    pub records: Vec<RecordIn>,
    /// Makes the append idempotent: a retry with the same id and seq returns the original
    /// offsets and writes nothing; a lower seq is refused with `stale_producer_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    /// Makes the append conditional: written only if the stream's next offset is this one,
    /// else `offset_mismatch` and nothing is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub expected_offset: Option<u64>,
}

/// One record to append: either UTF-8 text or base64-encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, try_from = "RecordInFields")]
pub enum RecordIn {
    Text(TextRecord),
    Base64(Base64Record),
}

/// A UTF-8 text value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRecord {
    /// The value, stored as its UTF-8 bytes.
    pub value: String,
}

/// A binary value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Base64Record {
    /// The value in base64 (RFC 4648 standard alphabet, with padding).
    #[schema(
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        content_encoding = "base64"
    )]
    pub value_b64: String,
}

impl RecordIn {
    pub fn text(value: impl Into<String>) -> Self {
        RecordIn::Text(TextRecord {
            value: value.into(),
        })
    }

    pub fn base64(value_b64: impl Into<String>) -> Self {
        RecordIn::Base64(Base64Record {
            value_b64: value_b64.into(),
        })
    }
}

/// How a [`RecordIn`] is read: both fields optional, so that "neither" and "both" get a
/// message that says so rather than serde's "did not match any variant".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordInFields {
    value: Option<String>,
    value_b64: Option<String>,
}

impl TryFrom<RecordInFields> for RecordIn {
    type Error = &'static str;

    fn try_from(fields: RecordInFields) -> Result<Self, Self::Error> {
        match (fields.value, fields.value_b64) {
            (Some(value), None) => Ok(RecordIn::text(value)),
            (None, Some(value_b64)) => Ok(RecordIn::base64(value_b64)),
            (Some(_), Some(_)) => Err("a record has both \"value\" and \"value_b64\"; give one"),
            (None, None) => Err("a record needs \"value\" (text) or \"value_b64\" (base64)"),
        }
    }
}

/// An idempotent producer's identity and the sequence number of this append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    #[schema(min_length = 1, max_length = 255)]
    pub id: String,
    #[schema(minimum = 0)]
    pub seq: u64,
}

/// The raw body of an `application/octet-stream` append: exactly one record.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawRecord(pub Vec<u8>);

/// 200 answer to an append: where the batch was committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppendResponse {
    pub stream: String,
    /// The offset of the first record of the batch.
    pub first_offset: u64,
    /// The offset of the last record of the batch.
    pub last_offset: u64,
    /// The Raft log index of the entry that carried the batch.
    pub index: u64,
    /// The Raft term of that entry.
    pub term: u64,
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyParam {
    /// ReadIndex through the leader (the default).
    #[default]
    Linearizable,
    /// The leader's lease, else ReadIndex.
    Lease,
    /// This node's applied state, no coordination.
    Stale,
}

/// How values are given in a read or a tail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncodingParam {
    /// `"value"` as text; a value that is not valid UTF-8 is still given as `"value_b64"`.
    #[default]
    Utf8,
    /// `"value_b64"` for every value.
    Base64,
}

/// The query of `GET /v1/streams/{stream}/records`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// The first offset to read (default 0).
    #[param(minimum = 0)]
    pub from: Option<u64>,
    /// At most this many records (default 100; larger values are cut to the server's
    /// `read_records_max`, 1000 by default).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// `linearizable` (default), `lease` or `stale`.
    pub consistency: Option<ConsistencyParam>,
    /// Long-poll: if nothing is at `from` yet, wait up to this many milliseconds for it
    /// (default 0; longer waits are cut to the server's `long_poll_ms_max`, 30000 by default).
    #[param(minimum = 0)]
    pub wait_ms: Option<u64>,
    /// `utf8` (default) or `base64`.
    pub encoding: Option<EncodingParam>,
}

/// The query of `GET /v1/streams/{stream}/tail`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TailQuery {
    /// The first offset to send (default 0). A `Last-Event-ID` header overrides it.
    #[param(minimum = 0)]
    pub from: Option<u64>,
    /// `utf8` (default) or `base64`.
    pub encoding: Option<EncodingParam>,
}

/// One record in a read: its offset and its value, as text or as base64.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RecordOut {
    Text { offset: u64, value: String },
    Base64 { offset: u64, value_b64: String },
}

impl RecordOut {
    pub fn offset(&self) -> u64 {
        match self {
            RecordOut::Text { offset, .. } | RecordOut::Base64 { offset, .. } => *offset,
        }
    }
}

/// 200 answer to a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadResponse {
    /// Contiguous records from `from`, possibly none.
    pub records: Vec<RecordOut>,
    /// Where the next read should start.
    pub next_offset: u64,
    /// The offset after the stream's last committed record.
    pub end_offset: u64,
    /// The stream's first offset still held.
    pub start_offset: u64,
}

/// A stream and its bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamJson {
    pub name: String,
    pub start_offset: u64,
    pub end_offset: u64,
}

/// 200 answer to `GET /v1/streams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamsResponse {
    /// Every stream ever written, sorted by name.
    pub streams: Vec<StreamJson>,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleJson {
    Leader,
    Follower,
    Candidate,
    Learner,
}

/// The leader a node knows of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeaderJson {
    pub id: u64,
    /// Its base HTTP URL.
    pub http: String,
}

/// One member; the progress fields are null except on the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberJson {
    pub id: u64,
    pub voter: bool,
    pub match_index: Option<u64>,
    /// Entries behind the leader's last index.
    pub lag: Option<u64>,
    /// Milliseconds since the member last answered the leader.
    pub last_ack_ms: Option<u64>,
}

/// 200 answer to `GET /v1/cluster`: this node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterResponse {
    pub node_id: u64,
    pub role: RoleJson,
    pub term: u64,
    pub leader: Option<LeaderJson>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<MemberJson>,
}

/// `POST /v1/cluster/leader`: hand leadership to another voter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The voter that should lead.
    #[schema(minimum = 1)]
    pub to: u64,
}

/// 200 answer to `/healthz` and `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// `"ok"` for `/healthz`, `"ready"` for `/readyz`.
    pub status: String,
}

/// Every error answer: a code, a sentence, and the fields particular to the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `bad_request`, `too_large`, `offset_mismatch`, `stale_producer_seq`,
    /// `offset_out_of_range`, `unavailable`, `not_found`, `method_not_allowed`,
    /// `unsupported_media_type` or `internal`.
    pub error: String,
    /// One human sentence.
    pub message: String,
    /// `offset_mismatch`: the stream's next offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// `stale_producer_seq`: the producer's last applied seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// `offset_out_of_range`: the stream's first offset still held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<u64>,
    /// `too_large`: the config key of the limit exceeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `unavailable`: how long to wait before retrying, also sent as `Retry-After` (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// An error with `code` and `message` and no code-specific fields.
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            error: code.to_string(),
            message: message.to_string(),
            next_offset: None,
            last_seq: None,
            start_offset: None,
            limit: None,
            retry_after_ms: None,
        }
    }
}
