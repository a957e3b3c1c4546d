//! The in-memory log's entries, in chunks of a fixed capacity: appending never moves what is
//! already stored. A single growing `Vec` copies the whole log into fresh (zeroed) pages at
//! each doubling — a fifth of all CPU in the core benchmark, whose three in-memory logs grow
//! by half a million entries each.

use crate::raft::message::Entry;

/// Entries per chunk: 4,096 entries of about a hundred bytes, well under a megabyte.
const CHUNK_ENTRIES: usize = 4096;

/// A list of entries addressed by position from 0, like the `Vec` it replaces.
#[derive(Debug, Default)]
pub struct EntryChunks {
    /// Every chunk but the last is full; the last is not empty (no chunks when empty).
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl EntryChunks {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, position: usize) -> Option<&Entry> {
        self.chunks
            .get(position / CHUNK_ENTRIES)?
            .get(position % CHUNK_ENTRIES)
    }

    pub fn last(&self) -> Option<&Entry> {
        self.chunks.last()?.last()
    }

    pub fn extend_from_slice(&mut self, mut entries: &[Entry]) {
        while !entries.is_empty() {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK_ENTRIES) {
                self.chunks.push(Vec::with_capacity(CHUNK_ENTRIES));
            }
            let chunk = self.chunks.last_mut().expect("just ensured");
            let taken = entries.len().min(CHUNK_ENTRIES - chunk.len());
            chunk.extend_from_slice(&entries[..taken]);
            self.len += taken;
            entries = &entries[taken..];
        }
    }

    /// Keeps the first `len` entries.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let chunks = len.div_ceil(CHUNK_ENTRIES);
        self.chunks.truncate(chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (chunks - 1) * CHUNK_ENTRIES);
        }
        self.len = len;
    }

    /// The entries at positions `from..to` (clamped to the end), in order.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &Entry> {
        let to = to.min(self.len);
        (from..to).map(|position| self.get(position).expect("below len"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::EntryPayload;
    use crate::types::{LogId, LogIndex, Term};

    fn entries(from: u64, count: u64) -> Vec<Entry> {
        (from..from + count)
            .map(|index| Entry {
                log_id: LogId::new(Term(1), LogIndex(index)),
                payload: EntryPayload::Noop,
            })
            .collect()
    }

    fn indexes<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<u64> {
        entries.map(|e| e.log_id.index.0).collect()
    }

    #[test]
    fn behaves_like_a_vec_across_chunk_boundaries() {
        let mut chunks = EntryChunks::default();
        let mut model: Vec<Entry> = Vec::new();
        let size = CHUNK_ENTRIES as u64;
        // Appends that end exactly on, just before and just after chunk boundaries, and
        // truncations to each kind of position.
        let steps: [(u64, usize); 6] = [
            (size - 1, usize::MAX),
            (1, usize::MAX),
            (size + 2, CHUNK_ENTRIES + 1),
            (3 * size, 2 * CHUNK_ENTRIES),
            (5, 0),
            (size, CHUNK_ENTRIES - 1),
        ];
        for (count, keep) in steps {
            let next = model.len() as u64 + 1;
            chunks.extend_from_slice(&entries(next, count));
            model.extend(entries(next, count));
            assert_eq!(chunks.len(), model.len());
            chunks.truncate(keep);
            model.truncate(keep);
            assert_eq!(chunks.len(), model.len());
            assert_eq!(
                chunks.last().map(|e| e.log_id),
                model.last().map(|e| e.log_id)
            );
            assert_eq!(indexes(chunks.range(0, usize::MAX)), indexes(model.iter()));
            for position in [0, CHUNK_ENTRIES - 1, CHUNK_ENTRIES, model.len()] {
                assert_eq!(
                    chunks.get(position).map(|e| e.log_id),
                    model.get(position).map(|e| e.log_id)
                );
            }
        }
        let (from, to) = (CHUNK_ENTRIES - 2, CHUNK_ENTRIES + 3);
        assert_eq!(
            indexes(chunks.range(from, to)),
            indexes(model[from..to.min(model.len())].iter())
        );
    }
}
