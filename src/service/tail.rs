//! The committed records of a stream as an endless async stream, for SSE tails: read a page,
//! hand it out record by record, and when caught up wait for the next record to be applied.
//! It pulls a page only when the consumer has taken the last one, so a slow consumer costs
//! one page of memory, never more.

use std::collections::VecDeque;

use futures::stream::{self, LocalBoxStream, StreamExt};

use crate::http::service::{Record, ServiceError};
use crate::node::NodeHandle;
use crate::types::Offset;

const PAGE_RECORDS_MAX: usize = 256;

struct Tail {
    node: NodeHandle,
    stream: String,
    next: Offset,
    page: VecDeque<Record>,
}

pub fn records_from(
    node: NodeHandle,
    stream: String,
    from: Offset,
) -> LocalBoxStream<'static, Result<Record, ServiceError>> {
    let tail = Tail {
        node,
        stream,
        next: from,
        page: VecDeque::new(),
    };
    stream::unfold(Some(tail), |tail| async move {
        let mut tail = tail?;
        loop {
            if let Some(record) = tail.page.pop_front() {
                return Some((Ok(record), Some(tail)));
            }
            let read = match tail
                .node
                .read_stale(&tail.stream, tail.next, PAGE_RECORDS_MAX)
                .await
            {
                Ok(read) => read,
                Err(message) => return Some((Err(ServiceError::Internal(message)), None)),
            };
            if tail.next < read.info.start_offset {
                let start_offset = read.info.start_offset;
                return Some((Err(ServiceError::OffsetOutOfRange { start_offset }), None));
            }
            if let Some((last, _)) = read.records.last() {
                tail.next = last.next();
                tail.page.extend(
                    read.records
                        .into_iter()
                        .map(|(offset, value)| Record { offset, value }),
                );
                continue;
            }
            if !tail.node.wait_for_record(&tail.stream, tail.next).await {
                return None; // the node stopped
            }
        }
    })
    .boxed_local()
}
