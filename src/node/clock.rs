//! The node's monotonic clock: tokio's clock (so tests can pause and advance it), optionally
//! running fast or slow by a fixed drift so the simulator can test the lease's drift bound.

use std::time::Duration;

use tokio::time::Instant;

use crate::types::MonoTime;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    /// How much faster than real time this clock runs, in parts per million (negative: slower).
    drift_ppm: i64,
}

impl Clock {
    pub fn new() -> Self {
        Self::with_drift(0)
    }

    pub fn with_drift(drift_ppm: i64) -> Self {
        assert!(
            drift_ppm.abs() < 1_000_000,
            "drift must leave the clock running forward"
        );
        Self {
            origin: Instant::now(),
            drift_ppm,
        }
    }

    pub fn now(&self) -> MonoTime {
        let real_us = self.origin.elapsed().as_micros() as i128;
        MonoTime((real_us * (1_000_000 + self.drift_ppm as i128) / 1_000_000) as u64)
    }

    /// The real (tokio) delay until this clock reads `deadline`, rounded up: a timer that
    /// fires a microsecond early would find nothing due and re-arm for zero, forever.
    pub fn delay_until(&self, deadline: MonoTime) -> Duration {
        let local_us = deadline.0.saturating_sub(self.now().0) as i128;
        let rate = 1_000_000 + self.drift_ppm as i128;
        let real_us = (local_us * 1_000_000 + rate - 1) / rate;
        Duration::from_micros(real_us as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drift_scales_elapsed_time() {
        let fast = Clock::with_drift(100_000); // 10% fast
        let exact = Clock::new();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(exact.now(), MonoTime(1_000_000));
        assert_eq!(fast.now(), MonoTime(1_100_000));
        assert_eq!(
            fast.delay_until(MonoTime(1_210_000)),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_drifting_timer_never_fires_early() {
        for drift_ppm in [-300_000, -20_001, 7, 20_001, 300_000] {
            let clock = Clock::with_drift(drift_ppm);
            for step_us in [1, 2, 3, 999, 1_000_001] {
                let deadline = MonoTime(clock.now().0 + step_us);
                tokio::time::advance(clock.delay_until(deadline)).await;
                assert!(clock.now() >= deadline, "drift {drift_ppm} step {step_us}");
            }
        }
    }
}
