//! What the load generator sends: the append bodies and the read paths of a run, built once
//! before it starts so that the measured loop only clones bytes and formats a path.

use bytes::Bytes;

/// The read levels of `GET /v1/streams/{stream}/records` (`../shared/API.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    Linearizable,
    Lease,
    Stale,
}

impl Consistency {
    /// The query parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linearizable => "linearizable",
            Self::Lease => "lease",
            Self::Stale => "stale",
        }
    }
}

/// What every request of a run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `POST` a JSON batch of `records_per_request` values of `value_bytes` each.
    Write {
        value_bytes: usize,
        records_per_request: usize,
    },
    /// `GET` one record at a time from offsets `0..records_per_stream`, at `consistency`;
    /// the streams are filled first with values of `value_bytes`.
    Read {
        consistency: Consistency,
        records_per_stream: u64,
        value_bytes: usize,
    },
}

/// The name of bench stream `n`.
pub fn stream_name(n: usize) -> String {
    format!("bench-{n}")
}

/// The JSON append body of `records` values of `value_bytes` each. The values are printable
/// ASCII, so they travel as JSON text with no escaping, as a client's text records would.
pub fn append_body(value_bytes: usize, records: usize) -> Bytes {
    let value: String = (0..value_bytes)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let record = format!(r#"{{"value":"{value}"}}"#);
    let mut body = String::with_capacity(16 + records * (record.len() + 1));
    body.push_str(r#"{"records":["#);
    for i in 0..records {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&record);
    }
    body.push_str("]}");
    Bytes::from(body)
}

/// The path of an append to `stream`.
pub fn append_path(stream: &str) -> String {
    format!("/v1/streams/{stream}/records")
}

/// The path that reads the one record at `offset` of `stream` at `consistency`.
pub fn read_path(stream: &str, offset: u64, consistency: Consistency) -> String {
    format!(
        "/v1/streams/{stream}/records?from={offset}&limit=1&consistency={}",
        consistency.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_body_is_the_api_batch_with_values_of_the_asked_size() {
        let body = append_body(30, 3);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let records = json["records"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        for record in records {
            let value = record["value"].as_str().unwrap();
            assert_eq!(value.len(), 30);
            assert!(value.starts_with("abcdefghijklmnopqrstuvwxyzabcd"));
        }
    }

    #[test]
    fn paths_follow_the_api() {
        assert_eq!(append_path("bench-0"), "/v1/streams/bench-0/records");
        assert_eq!(
            read_path("bench-2", 17, Consistency::Lease),
            "/v1/streams/bench-2/records?from=17&limit=1&consistency=lease"
        );
        assert_eq!(stream_name(3), "bench-3");
    }
}
