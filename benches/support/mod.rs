//! What the root crate's criterion benches share.

use std::time::Duration;

use criterion::Criterion;

/// Short runs (1 s warm-up, 3 s measurement): enough to see a regression on a quiet machine;
/// pass `-- --measurement-time N` for tighter figures.
pub fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}
