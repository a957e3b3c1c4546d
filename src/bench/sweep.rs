//! The batching sweep: which knobs it varies and over which values, and how it picks the
//! value to recommend for each, against the noise it measured. One knob varies at a time, the others at their defaults, so
//! every point of a knob's curve differs from the default configuration in that knob only.

use crate::config::{BatchingConfig, ReplicationConfig};

/// One knob and the values it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knob {
    /// The config key, as `raftlog dev --set` takes it, e.g. `batching.proposal_linger_us`.
    pub key: String,
    pub values: Vec<u64>,
}

/// A key that a sweep may vary: the batching knobs of issue 7 and their current defaults.
pub struct SweepableKey {
    pub key: &'static str,
    /// What it batches, for the plot's axis.
    pub meaning: &'static str,
    pub default: fn() -> u64,
}

/// Every key `--sweep-knob` accepts. "Proposals per WAL flush" has no knob of its own: the WAL
/// flushes whatever entries queued during the previous flush (group commit), so it follows
/// from the proposal batch and the linger.
pub const SWEEPABLE_KEYS: [SweepableKey; 7] = [
    SweepableKey {
        key: "batching.proposal_batch_requests_max",
        meaning: "appends per log entry",
        default: || BatchingConfig::default().proposal_batch_requests_max as u64,
    },
    SweepableKey {
        key: "batching.proposal_linger_us",
        meaning: "linger before writing a batch (µs)",
        default: || BatchingConfig::default().proposal_linger_us,
    },
    SweepableKey {
        key: "batching.proposal_batch_bytes_max",
        meaning: "bytes per log entry",
        default: || BatchingConfig::default().proposal_batch_bytes_max,
    },
    SweepableKey {
        key: "batching.proposals_in_flight_max",
        meaning: "proposed batches awaiting commit",
        default: || BatchingConfig::default().proposals_in_flight_max as u64,
    },
    SweepableKey {
        key: "replication.entries_per_append_max",
        meaning: "entries per AppendEntries",
        default: || ReplicationConfig::default().entries_per_append_max as u64,
    },
    SweepableKey {
        key: "replication.bytes_per_append_max",
        meaning: "bytes per AppendEntries",
        default: || ReplicationConfig::default().bytes_per_append_max,
    },
    SweepableKey {
        key: "replication.inflight_appends_max",
        meaning: "AppendEntries in flight per follower",
        default: || ReplicationConfig::default().inflight_appends_max as u64,
    },
];

/// The sweepable key named `key`.
pub fn sweepable(key: &str) -> Option<&'static SweepableKey> {
    SWEEPABLE_KEYS.iter().find(|k| k.key == key)
}

/// The plan when `--sweep-knob` is not given: each value range brackets the default by about
/// two orders of magnitude either way, on a roughly ×4 grid.
pub fn default_plan() -> Vec<Knob> {
    let knob = |key: &str, values: &[u64]| Knob {
        key: key.to_string(),
        values: values.to_vec(),
    };
    vec![
        knob(
            "batching.proposal_batch_requests_max",
            &[1, 4, 16, 64, 256, 1024, 4096],
        ),
        knob("batching.proposal_linger_us", &[0, 50, 200, 1000]),
        knob("batching.proposals_in_flight_max", &[0, 1, 2, 4, 16]),
        knob(
            "replication.entries_per_append_max",
            &[1, 4, 16, 64, 256, 1024],
        ),
        knob("replication.inflight_appends_max", &[1, 2, 4, 8, 32]),
    ]
}

/// Parses `--sweep-knob KEY=V1,V2,...`.
pub fn parse_knob(text: &str) -> Result<Knob, String> {
    let Some((key, values)) = text.split_once('=') else {
        return Err(format!(
            "--sweep-knob {text:?} must be KEY=V1,V2,..., e.g. batching.proposal_linger_us=0,100"
        ));
    };
    let key = key.trim();
    if sweepable(key).is_none() {
        let keys: Vec<&str> = SWEEPABLE_KEYS.iter().map(|k| k.key).collect();
        return Err(format!(
            "--sweep-knob: {key} is not a batching knob; the sweepable keys are {}",
            keys.join(", ")
        ));
    }
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("--sweep-knob {key}: {v:?} is not a whole number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() < 2 {
        return Err(format!("--sweep-knob {key}: give at least two values"));
    }
    Ok(Knob {
        key: key.to_string(),
        values,
    })
}

/// One measured point of a knob's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub value: u64,
    pub records_per_s: f64,
    pub p99_ms: f64,
}

/// The least noise assumed: runs of one configuration never agree better than this.
pub const NOISE_MIN: f64 = 0.05;

/// The default configuration as the sweep measured it. Every knob's values include its
/// default, so a sweep of k knobs runs the default configuration k times (times the repeats):
/// their spread is the noise of this machine at this hour, measured rather than assumed.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// Medians over the runs of the default configuration.
    pub records_per_s: f64,
    pub p99_ms: f64,
    /// (max − min) / median of those runs' throughput, and at least [`NOISE_MIN`].
    pub noise: f64,
}

/// The baseline of the runs of the default configuration, `None` if none succeeded.
pub fn baseline(default_runs: &[Point]) -> Option<Baseline> {
    let valid: Vec<&Point> = default_runs.iter().filter(|p| succeeded(p)).collect();
    let throughputs: Vec<f64> = valid.iter().map(|p| p.records_per_s).collect();
    let records_per_s = median(&throughputs)?;
    let p99s: Vec<f64> = valid
        .iter()
        .map(|p| p.p99_ms)
        .filter(|v| v.is_finite())
        .collect();
    let max = throughputs.iter().copied().fold(f64::MIN, f64::max);
    let min = throughputs.iter().copied().fold(f64::MAX, f64::min);
    Some(Baseline {
        records_per_s,
        p99_ms: median(&p99s).unwrap_or(f64::NAN),
        noise: ((max - min) / records_per_s).max(NOISE_MIN),
    })
}

/// The value to recommend for a knob, given its points (one per value) and its default.
///
/// A value replaces the default only if it beats the default configuration's median throughput
/// by more than the noise, with a p99 no worse than the default's by more than the noise; of
/// those, the fastest. Otherwise the default stays: a default is changed only for a difference
/// this machine can tell from chance. `None` if no point succeeded.
pub fn recommend(points: &[Point], default: u64, baseline: &Baseline) -> Option<u64> {
    if !points.iter().any(succeeded) {
        return None;
    }
    let bar = 1.0 + baseline.noise;
    let better = points.iter().filter(|p| {
        succeeded(p)
            && p.value != default
            && p.records_per_s > baseline.records_per_s * bar
            && p.p99_ms <= baseline.p99_ms * bar
    });
    let best = better.max_by(|a, b| a.records_per_s.total_cmp(&b.records_per_s));
    Some(best.map_or(default, |p| p.value))
}

fn succeeded(point: &Point) -> bool {
    point.records_per_s.is_finite() && point.records_per_s > 0.0
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: u64, records_per_s: f64, p99_ms: f64) -> Point {
        Point {
            value,
            records_per_s,
            p99_ms,
        }
    }

    fn base(records_per_s: f64, p99_ms: f64, noise: f64) -> Baseline {
        Baseline {
            records_per_s,
            p99_ms,
            noise,
        }
    }

    #[test]
    fn the_baseline_is_the_median_and_the_noise_its_spread() {
        let runs = [
            point(8, 5_000.0, 30.0),
            point(8, 4_000.0, 40.0),
            point(8, 4_500.0, 20.0),
            point(8, 0.0, f64::NAN),
        ];
        let b = baseline(&runs).unwrap();
        assert_eq!(b.records_per_s, 4_500.0);
        assert_eq!(b.p99_ms, 30.0);
        assert!((b.noise - 1_000.0 / 4_500.0).abs() < 1e-12);
        // Two equal runs still assume some noise.
        let twins = [point(8, 100.0, 1.0), point(8, 100.0, 1.0)];
        assert_eq!(baseline(&twins).unwrap().noise, NOISE_MIN);
        assert_eq!(baseline(&[point(8, 0.0, f64::NAN)]), None);
    }

    #[test]
    fn a_value_clearly_faster_and_no_slower_at_p99_replaces_the_default() {
        let points = [
            point(1, 3_000.0, 50.0),
            point(16, 6_000.0, 20.0),
            point(64, 7_000.0, 90.0),
            point(256, 5_000.0, 30.0),
        ];
        // 64 is fastest but its p99 is far worse than the default's: 16 wins.
        assert_eq!(recommend(&points, 256, &base(5_000.0, 30.0, 0.1)), Some(16));
    }

    #[test]
    fn a_difference_within_the_noise_keeps_the_default() {
        let points = [point(1, 5_400.0, 20.0), point(256, 5_000.0, 30.0)];
        assert_eq!(
            recommend(&points, 256, &base(5_000.0, 30.0, 0.1)),
            Some(256)
        );
        assert_eq!(recommend(&points, 256, &base(5_000.0, 30.0, 0.05)), Some(1));
    }

    #[test]
    fn failed_points_are_ignored_and_no_points_recommend_nothing() {
        let b = base(100.0, 2.0, 0.05);
        let points = [point(1, 0.0, f64::NAN), point(4, 200.0, 2.0)];
        assert_eq!(recommend(&points, 1, &b), Some(4));
        assert_eq!(recommend(&[point(1, 0.0, f64::NAN)], 1, &b), None);
        assert_eq!(recommend(&[], 1, &b), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn knobs_parse_and_refuse_what_is_not_a_batching_knob() {
        assert_eq!(
            parse_knob("batching.proposal_linger_us=0, 100,1000").unwrap(),
            Knob {
                key: "batching.proposal_linger_us".to_string(),
                values: vec![0, 100, 1000],
            }
        );
        assert!(parse_knob("raft.heartbeat_interval_ms=1,2")
            .unwrap_err()
            .contains("not a batching knob"));
        assert!(parse_knob("batching.proposal_linger_us")
            .unwrap_err()
            .contains("KEY=V1,V2"));
        assert!(parse_knob("batching.proposal_linger_us=1,x")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_knob("batching.proposal_linger_us=1")
            .unwrap_err()
            .contains("at least two"));
    }

    #[test]
    fn the_default_plan_covers_each_default() {
        for knob in default_plan() {
            let key = sweepable(&knob.key).expect("plan keys are sweepable");
            assert!(
                knob.values.contains(&(key.default)()),
                "{} does not measure its default",
                knob.key
            );
        }
    }
}
