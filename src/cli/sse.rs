//! Reading Server-Sent Events from bytes as they arrive: the client side of `http::tail`,
//! for `raftlog tail` (and the tests of the tail endpoint).
//!
//! It follows the SSE parsing rules that matter here: lines end in `\n` or `\r\n`, a blank
//! line ends an event, `data:` lines join with `\n`, one space after the colon is dropped,
//! comment lines (`:`) and `retry:` are skipped, and an event with no `data:` line is not
//! dispatched.

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `id:` field: in a raftlog tail, the record's offset.
    pub id: Option<String>,
    /// The `event:` field; `None` for the default type (`message`).
    pub kind: Option<String>,
    pub data: String,
}

/// Turns chunks of an event stream into events.
#[derive(Debug, Default)]
pub struct EventParser {
    /// Bytes of an unfinished line.
    partial: Vec<u8>,
    event: Event,
    has_data: bool,
}

impl EventParser {
    /// Takes the next chunk and returns the events it completes, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in chunk {
            if byte != b'\n' {
                self.partial.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    /// Takes one line; returns an event if the line was the blank line that ends one.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            return std::mem::take(&mut self.has_data).then_some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.event.id = Some(value.to_string()),
            "event" => self.event.kind = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut parser = EventParser::default();
        assert!(parser
            .feed(b"retry: 1000\n\n: keep-alive\n\nid: 4\nda")
            .is_empty());
        let events = parser
            .feed(b"ta: a\ndata: b\n\nid: 5\nevent: b64\r\ndata: /w==\r\n\r\nid: 6\ndata: \n\n");
        let event = |id: &str, kind: Option<&str>, data: &str| Event {
            id: Some(id.to_string()),
            kind: kind.map(str::to_string),
            data: data.to_string(),
        };
        assert_eq!(
            events,
            [
                event("4", None, "a\nb"),
                event("5", Some("b64"), "/w=="),
                event("6", None, "")
            ]
        );
    }
}
