//! The randomized election timeout (Raft §5.2) and the tiny deterministic generator behind it.
//!
//! The core draws its jitter from a seeded xorshift generator it owns, so a run is reproducible
//! from its seed and the core needs no RNG crate. Production seeds it from the OS; the
//! simulator derives each node's seed from the run's seed.

use std::time::Duration;

/// xorshift64* — small, fast, and good enough for timer jitter. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero forever.
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration drawn uniformly from `[min, max)`; `min` when the range is empty.
    pub fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span_us = max.saturating_sub(min).as_micros() as u64;
        if span_us == 0 {
            return min;
        }
        min + Duration::from_micros(self.next_u64() % span_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_spreads() {
        let mut jitter = Jitter::new(1);
        let (min, max) = (Duration::from_millis(150), Duration::from_millis(300));
        let draws: Vec<Duration> = (0..1000).map(|_| jitter.between(min, max)).collect();
        assert!(draws.iter().all(|d| *d >= min && *d < max));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(175)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(275)));
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Jitter::new(0).next_u64(), 0);
    }
}
