//! [`Chunked`], a list that grows in chunks of a fixed capacity, so that pushing never moves
//! what is already stored. A `Vec` grown by doubling copies all of itself into fresh,
//! zero-faulted pages each time: for the lists that grow by one element per log entry — the
//! in-memory log (`node::mem_store`), each stream's index runs (`streams::index`) — that was
//! a fifth and a tenth of all CPU in the core benchmark (BENCHMARKS.md, "Core"), and each
//! copy of a large list stalls its thread for milliseconds.
//!
//! The first chunk grows like a `Vec`, so a short list (a stream written a few times) costs
//! no more than one; every later chunk is allocated whole, at [`CHUNK_LEN`] elements.

use std::fmt;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Elements per chunk.
const CHUNK_LEN: usize = 4096;

/// A list addressed by position from 0, like the `Vec` it stands in for. Serialised as a
/// plain sequence, exactly as a `Vec` of the same elements.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunked<T> {
    /// Every chunk but the last holds `CHUNK_LEN` elements; none is empty.
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, position: usize) -> Option<&T> {
        self.chunks
            .get(position / CHUNK_LEN)?
            .get(position % CHUNK_LEN)
    }

    pub fn get_mut(&mut self, position: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(position / CHUNK_LEN)?
            .get_mut(position % CHUNK_LEN)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    pub fn last_mut(&mut self) -> Option<&mut T> {
        self.chunks.last_mut()?.last_mut()
    }

    pub fn push(&mut self, value: T) {
        self.chunk_with_room().push(value);
        self.len += 1;
    }

    /// Keeps the first `len` elements.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let chunks = len.div_ceil(CHUNK_LEN);
        self.chunks.truncate(chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (chunks - 1) * CHUNK_LEN);
        }
        self.len = len;
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.iter_from(0)
    }

    /// The elements from `position` on (none if it is past the end). Iterates slice by
    /// slice, as fast as iterating a `Vec`.
    pub fn iter_from(&self, position: usize) -> impl Iterator<Item = &T> {
        let (first_chunk, skip) = (position / CHUNK_LEN, position % CHUNK_LEN);
        let head = self
            .chunks
            .get(first_chunk)
            .and_then(|chunk| chunk.get(skip..))
            .unwrap_or(&[]);
        let rest = self.chunks.get(first_chunk + 1..).unwrap_or(&[]);
        head.iter().chain(rest.iter().flatten())
    }

    /// The elements at positions `from..to` (clamped to the end), in order.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &T> {
        self.iter_from(from).take(to.saturating_sub(from))
    }

    /// Like [`slice::partition_point`]: the position of the first element for which `pred`
    /// is false, given that it is true of every element before that one and false after.
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let full = self
            .chunks
            .partition_point(|chunk| pred(chunk.last().expect("no chunk is empty")));
        match self.chunks.get(full) {
            Some(chunk) => full * CHUNK_LEN + chunk.partition_point(pred),
            None => self.len,
        }
    }

    /// The last chunk, or a new one if it is full (or there is none).
    fn chunk_with_room(&mut self) -> &mut Vec<T> {
        match self.chunks.last() {
            None => self.chunks.push(Vec::new()),
            Some(last) if last.len() == CHUNK_LEN => {
                self.chunks.push(Vec::with_capacity(CHUNK_LEN))
            }
            Some(_) => {}
        }
        self.chunks.last_mut().expect("just ensured")
    }
}

impl<T: Clone> Chunked<T> {
    pub fn extend_from_slice(&mut self, mut values: &[T]) {
        while !values.is_empty() {
            let chunk = self.chunk_with_room();
            let taken = values.len().min(CHUNK_LEN - chunk.len());
            chunk.extend_from_slice(&values[..taken]);
            self.len += taken;
            values = &values[taken..];
        }
    }
}

impl<T> From<Vec<T>> for Chunked<T> {
    fn from(values: Vec<T>) -> Self {
        let mut list = Chunked::default();
        for value in values {
            list.push(value);
        }
        list
    }
}

impl<T: fmt::Debug> fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Serialize> Serialize for Chunked<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(Chunked::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends, truncations and reads across chunk boundaries, against a `Vec`.
    #[test]
    fn behaves_like_a_vec_across_chunk_boundaries() {
        let mut list = Chunked::default();
        let mut model: Vec<u64> = Vec::new();
        let size = CHUNK_LEN as u64;
        // Growths that end just before, on and just after chunk boundaries, by pushes and by
        // slices, each followed by a truncation to another kind of position.
        let steps: [(u64, bool, usize); 7] = [
            (size - 1, true, usize::MAX),
            (1, false, usize::MAX),
            (size + 2, false, CHUNK_LEN + 1),
            (3 * size, true, 2 * CHUNK_LEN),
            (5, false, 0),
            (size, true, CHUNK_LEN - 1),
            (2 * size + 7, false, usize::MAX),
        ];
        for (count, one_by_one, keep) in steps {
            let next = model.len() as u64;
            let values: Vec<u64> = (next..next + count).collect();
            if one_by_one {
                values.iter().for_each(|&v| list.push(v));
            } else {
                list.extend_from_slice(&values);
            }
            model.extend(&values);
            assert_eq!(list.iter().copied().collect::<Vec<_>>(), model);
            list.truncate(keep);
            model.truncate(keep);
            assert_eq!(list.len(), model.len());
            assert_eq!(list.is_empty(), model.is_empty());
            assert_eq!(list.last(), model.last());
            assert_eq!(list.iter().copied().collect::<Vec<_>>(), model);
            for position in [0, 1, CHUNK_LEN - 1, CHUNK_LEN, CHUNK_LEN + 1, model.len()] {
                assert_eq!(list.get(position), model.get(position), "at {position}");
                let tail: Vec<u64> = list.iter_from(position).copied().collect();
                assert_eq!(
                    tail,
                    model.get(position..).unwrap_or(&[]),
                    "from {position}"
                );
                let end = (position + CHUNK_LEN / 2).min(model.len());
                let window: Vec<u64> = list
                    .range(position, position + CHUNK_LEN / 2)
                    .copied()
                    .collect();
                assert_eq!(
                    window,
                    model.get(position..end).unwrap_or(&[]),
                    "window at {position}"
                );
            }
            for bound in [0, 1, size - 1, size, size + 1, 2 * size + 3, u64::MAX] {
                assert_eq!(
                    list.partition_point(|&v| v < bound),
                    model.partition_point(|&v| v < bound),
                    "below {bound}"
                );
            }
        }
    }

    #[test]
    fn get_mut_and_last_mut_change_the_element_in_place() {
        let mut list: Chunked<u64> = (0..CHUNK_LEN as u64 + 2).collect::<Vec<_>>().into();
        *list.get_mut(CHUNK_LEN).unwrap() = 7;
        *list.last_mut().unwrap() = 9;
        assert_eq!(list.get(CHUNK_LEN), Some(&7));
        assert_eq!(list.last(), Some(&9));
        assert_eq!(list.get_mut(CHUNK_LEN + 2), None);
    }

    #[test]
    fn serialises_exactly_as_a_vec_does() {
        let values: Vec<u64> = (0..2 * CHUNK_LEN as u64 + 5).map(|v| v * 31).collect();
        let list = Chunked::from(values.clone());
        let as_vec = bincode::serialize(&values).unwrap();
        assert_eq!(bincode::serialize(&list).unwrap(), as_vec);
        let back: Chunked<u64> = bincode::deserialize(&as_vec).unwrap();
        assert_eq!(back, list);
    }
}
