//! The numbers a load run reports: latency percentiles and throughput, computed from what the
//! load generator recorded. Pure, so that the arithmetic is tested without a cluster.

use std::time::Duration;

/// What one measured run recorded: every successful request's latency, and the failures.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// Latencies of the requests answered 2xx inside the measurement window, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Requests that failed inside the window (a non-2xx answer or no answer).
    pub errors: u64,
    /// The first failure seen, to print; a run with thousands of errors shows one.
    pub first_error: Option<String>,
}

impl Recording {
    /// Records one successful request.
    pub fn success(&mut self, latency: Duration) {
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(micros);
    }

    /// Records one failed request, keeping the first reason.
    pub fn failure(&mut self, why: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

/// The summary of a run, as printed and as written to the sweep's CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub records_per_s: f64,
    /// Payload megabytes (10^6 bytes of record values) per second.
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

/// What each request carries, to turn requests into records and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestShape {
    pub records_per_request: u64,
    pub value_bytes: u64,
}

impl Summary {
    /// Summarizes `recording`, made over a window of `window`, of requests shaped `shape`.
    pub fn of(recording: &Recording, window: Duration, shape: RequestShape) -> Self {
        let mut sorted = recording.latencies_us.clone();
        sorted.sort_unstable();
        let requests = sorted.len() as u64;
        let seconds = window.as_secs_f64().max(f64::MIN_POSITIVE);
        let requests_per_s = requests as f64 / seconds;
        let records_per_s = requests_per_s * shape.records_per_request as f64;
        let ms = |q: f64| percentile(&sorted, q).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
        Self {
            requests,
            errors: recording.errors,
            requests_per_s,
            records_per_s,
            mb_per_s: records_per_s * shape.value_bytes as f64 / 1e6,
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
        }
    }
}

/// The `q`-quantile (0 < q ≤ 1) of `sorted` by the nearest-rank method: the smallest value
/// with at least `q` of the samples at or below it. `None` for no samples.
///
/// Nearest-rank rather than interpolation: a reported p99 is then always a latency that some
/// request actually had.
pub fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    assert!(q > 0.0 && q <= 1.0, "a quantile is in (0, 1], not {q}");
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "samples not sorted"
    );
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), Some(50));
        assert_eq!(percentile(&samples, 0.99), Some(99));
        assert_eq!(percentile(&samples, 0.999), Some(100));
        assert_eq!(percentile(&samples, 1.0), Some(100));
        assert_eq!(percentile(&samples, 0.001), Some(1));
    }

    #[test]
    fn percentiles_of_few_samples() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.5), Some(7));
        assert_eq!(percentile(&[7], 0.999), Some(7));
        assert_eq!(percentile(&[1, 9], 0.5), Some(1));
        assert_eq!(percentile(&[1, 9], 0.51), Some(9));
    }

    #[test]
    #[should_panic(expected = "quantile")]
    fn a_quantile_outside_the_unit_interval_is_a_bug() {
        percentile(&[1], 1.5);
    }

    #[test]
    fn summary_turns_requests_into_records_and_bytes() {
        let mut recording = Recording::default();
        for us in [1_000, 2_000, 3_000, 4_000] {
            recording.success(Duration::from_micros(us));
        }
        recording.failure(|| "503".to_string());
        recording.failure(|| "never kept".to_string());
        let shape = RequestShape {
            records_per_request: 10,
            value_bytes: 1_000,
        };
        let summary = Summary::of(&recording, Duration::from_secs(2), shape);
        assert_eq!(summary.requests, 4);
        assert_eq!(summary.errors, 2);
        assert_eq!(recording.first_error.as_deref(), Some("503"));
        assert_eq!(summary.requests_per_s, 2.0);
        assert_eq!(summary.records_per_s, 20.0);
        assert_eq!(summary.mb_per_s, 0.02);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.p99_ms, 4.0);
        assert_eq!(summary.p999_ms, 4.0);
    }

    #[test]
    fn summary_of_nothing_has_no_latency() {
        let shape = RequestShape {
            records_per_request: 1,
            value_bytes: 1,
        };
        let summary = Summary::of(&Recording::default(), Duration::from_secs(1), shape);
        assert_eq!(summary.requests, 0);
        assert!(summary.p50_ms.is_nan());
    }
}
