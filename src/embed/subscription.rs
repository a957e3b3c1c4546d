//! Committed records of a stream as an endless async stream ([`Subscription`]): read a page,
//! hand it out record by record, and when caught up wait for the next record to be applied.
//! It reads the next page only when the consumer has taken the last record of the previous
//! one, so a slow consumer costs one page of memory, never more — backpressure, not a
//! growing buffer. The HTTP API's SSE tail is this same stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};

use crate::embed::Error;
use crate::node::NodeHandle;
use crate::types::Offset;

/// How many records one read fetches for a subscriber.
const PAGE_RECORDS_MAX: usize = 256;

/// One committed record of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its offset in its stream.
    pub offset: Offset,
    /// Its value, exactly as appended.
    pub value: Bytes,
}

/// The committed records of one stream from an offset on, in order, as this node applies
/// them; made by [`Raftlog::subscribe`](crate::embed::Raftlog::subscribe). It never ends on
/// its own: it waits for the next record when caught up, and ends when the node shuts down.
/// It yields an error once (and then ends) if the offset is below the stream's start.
pub struct Subscription {
    records: BoxStream<'static, Result<Record, Error>>,
}

impl Stream for Subscription {
    type Item = Result<Record, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.records.poll_next_unpin(cx)
    }
}

struct Cursor {
    node: NodeHandle,
    stream: String,
    next: Offset,
    page: VecDeque<Record>,
}

pub(crate) fn subscribe(node: NodeHandle, stream: String, from: Offset) -> Subscription {
    let cursor = Cursor {
        node,
        stream,
        next: from,
        page: VecDeque::new(),
    };
    let records = stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(record) = cursor.page.pop_front() {
                return Some((Ok(record), Some(cursor)));
            }
            let read = match cursor
                .node
                .read_stale(&cursor.stream, cursor.next, PAGE_RECORDS_MAX)
                .await
            {
                Ok(read) => read,
                Err(message) => return Some((Err(Error::Storage(message)), None)),
            };
            if cursor.next < read.info.start_offset {
                let start_offset = read.info.start_offset;
                return Some((Err(Error::OffsetOutOfRange { start_offset }), None));
            }
            if let Some((last, _)) = read.records.last() {
                cursor.next = last.next();
                let page = read.records.into_iter();
                cursor
                    .page
                    .extend(page.map(|(offset, value)| Record { offset, value }));
                continue;
            }
            if !cursor
                .node
                .wait_for_record(&cursor.stream, cursor.next)
                .await
            {
                return None; // the node stopped
            }
        }
    })
    .boxed();
    Subscription { records }
}
