//! Running benchmarks end to end: one measured run against a URL or a fresh local cluster,
//! and the sweep, which is one fresh cluster per knob value, written out as CSV and SVG
//! with a recommended value for each knob.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::cluster::LocalCluster;
use super::csv::{to_csv, LoadShape, SweepRow};
use super::load::{self, LoadSpec};
use super::plot::{svg, Panel};
use super::report::{table, thousands, Progress};
use super::stats::{RequestShape, Summary};
use super::sweep::{baseline, median, recommend, sweepable, Baseline, Knob, Point};
use super::workload::Workload;

/// Where the load goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// A running node, `http://host:port`.
    Url(String),
    /// A fresh local cluster of this executable, started for the run and deleted after it.
    Local {
        nodes: usize,
        base_port: u16,
        /// `KEY=VALUE` config changes for every node.
        overrides: Vec<String>,
    },
}

/// Runs `load` (whose `target` is filled in here) against `target` and summarizes it.
pub async fn measure(
    target: &Target,
    load: &LoadSpec,
    label: &str,
    progress: bool,
) -> Result<Summary, String> {
    let mut load = load.clone();
    let cluster = match target {
        Target::Url(url) => {
            load.target = url.trim_end_matches('/').to_string();
            None
        }
        Target::Local {
            nodes,
            base_port,
            overrides,
        } => {
            let cluster = LocalCluster::start(*nodes, *base_port, overrides).await?;
            load.target = cluster.leader.clone();
            Some(cluster)
        }
    };
    let shape = match load.workload {
        Workload::Write {
            value_bytes,
            records_per_request,
        } => RequestShape {
            records_per_request: records_per_request as u64,
            value_bytes: value_bytes as u64,
        },
        Workload::Read {
            records_per_stream,
            value_bytes,
            ..
        } => {
            load::prefill(&load.target, load.streams, records_per_stream, value_bytes).await?;
            RequestShape {
                records_per_request: 1,
                value_bytes: value_bytes as u64,
            }
        }
    };
    let progress = Progress::new(label, load.warmup + load.duration, progress);
    let recording = load::run(&load, progress).await;
    drop(cluster);
    if let Some(why) = &recording.first_error {
        eprintln!(
            "raftlog bench: {label}: {} failed requests, the first: {why}",
            recording.errors
        );
    }
    Ok(Summary::of(&recording, load.duration, shape))
}

/// What a sweep runs.
pub struct SweepSpec {
    pub plan: Vec<Knob>,
    /// The load of every point; its `target` is each point's fresh cluster.
    pub load: LoadSpec,
    /// Runs of each point; the plot and the recommendation use their medians.
    pub repeat: usize,
    pub nodes: usize,
    /// The first cluster serves HTTP from here; each next one 10 ports higher, cycling.
    pub base_port: u16,
    /// Config changes for every point, before the point's own.
    pub overrides: Vec<String>,
    /// Where `sweep.csv` and `sweep.svg` go.
    pub dir: std::path::PathBuf,
    pub progress: bool,
}

/// A knob's recommendation: its key, its current default, and the recommended value (`None`
/// when no point of it succeeded).
pub type Recommendation = (String, u64, Option<u64>);

/// The sweep: for each knob, each of its values and each repeat, a fresh local cluster with
/// that value, measured with the spec's load. Writes `sweep.csv` and `sweep.svg` (the CSV after
/// every run, so an interrupted sweep keeps what it measured), prints the table and the
/// recommendations to `out`, and returns the recommendations.
pub async fn sweep(spec: &SweepSpec, out: &mut dyn Write) -> Result<Vec<Recommendation>, String> {
    std::fs::create_dir_all(&spec.dir)
        .map_err(|e| format!("cannot create {}: {e}", spec.dir.display()))?;
    let Workload::Write {
        value_bytes,
        records_per_request,
    } = spec.load.workload
    else {
        return Err("the sweep measures writes".to_string());
    };
    let shape = LoadShape {
        connections: spec.load.connections,
        value_bytes,
        records_per_request,
        duration_s: spec.load.duration.as_secs(),
    };
    let runs = measure_plan(spec, &shape).await?;
    let labelled: Vec<(String, Summary)> = runs
        .iter()
        .map(|row| {
            let label = format!("{}={} #{}", row.key, row.value, row.run);
            (label, row.summary.clone())
        })
        .collect();
    writeln!(out, "{}", table(&labelled)).map_err(|e| e.to_string())?;

    // The default configuration's runs, whichever knob's series they belong to.
    let default_runs: Vec<Point> = runs
        .iter()
        .filter(|row| sweepable(&row.key).is_some_and(|k| (k.default)() == row.value))
        .map(|row| point(row.value, std::slice::from_ref(row)))
        .collect();
    let Some(baseline) = baseline(&default_runs) else {
        return Err("no run of the default configuration succeeded".to_string());
    };
    let band = default_band(&default_runs);
    writeln!(
        out,
        "default configuration: {} runs, median {} records/s, p99 {:.2} ms; noise ±{:.0}%",
        default_runs.len(),
        thousands(baseline.records_per_s.round() as u64),
        baseline.p99_ms,
        baseline.noise * 100.0
    )
    .map_err(|e| e.to_string())?;
    let mut panels = Vec::new();
    let mut recommendations = Vec::new();
    for knob in &spec.plan {
        let key = sweepable(&knob.key).ok_or_else(|| format!("{} is not sweepable", knob.key))?;
        let default = (key.default)();
        let points: Vec<Point> = knob
            .values
            .iter()
            .map(|&value| {
                let of_value: Vec<SweepRow> = runs
                    .iter()
                    .filter(|row| row.key == knob.key && row.value == value)
                    .cloned()
                    .collect();
                point(value, &of_value)
            })
            .collect();
        let recommended = recommend(&points, default, &baseline);
        writeln!(
            out,
            "{}",
            describe(&knob.key, default, recommended, &points, &baseline)
        )
        .map_err(|e| e.to_string())?;
        recommendations.push((knob.key.clone(), default, recommended));
        panels.push(Panel {
            title: format!("{} ({})", knob.key, key.meaning),
            default,
            points,
            band,
        });
    }
    let caption = format!(
        "raftlog write sweep: {} conns, {} × {} B per request, {} s per run, median of {} runs; \
         records/s solid (left), p99 ms dashed (right), shaded: default config's runs",
        shape.connections,
        shape.records_per_request,
        shape.value_bytes,
        shape.duration_s,
        spec.repeat
    );
    write_file(&spec.dir.join("sweep.svg"), &svg(&caption, &panels))?;
    writeln!(
        out,
        "wrote {} and {}",
        spec.dir.join("sweep.csv").display(),
        spec.dir.join("sweep.svg").display()
    )
    .map_err(|e| e.to_string())?;
    Ok(recommendations)
}

/// Runs every point of the plan `spec.repeat` times, rewriting the CSV after each run.
async fn measure_plan(spec: &SweepSpec, shape: &LoadShape) -> Result<Vec<SweepRow>, String> {
    let total: usize = spec.plan.iter().map(|k| k.values.len()).sum::<usize>() * spec.repeat;
    let mut rows: Vec<SweepRow> = Vec::new();
    // Repeats go round the whole plan rather than back to back, so a slow minute on the
    // shared machine spreads over many points instead of sinking one.
    for run in 1..=spec.repeat {
        for knob in &spec.plan {
            for &value in &knob.values {
                let mut overrides = spec.overrides.clone();
                overrides.push(format!("{}={value}", knob.key));
                // Each cluster gets ports of its own, so a port the last one left in
                // TIME_WAIT never delays the next.
                let port = spec.base_port + 10 * (rows.len() % 100) as u16;
                let target = Target::Local {
                    nodes: spec.nodes,
                    base_port: port,
                    overrides,
                };
                let label = format!("[{}/{total}] {}={value}", rows.len() + 1, knob.key);
                let summary = match measure(&target, &spec.load, &label, spec.progress).await {
                    Ok(summary) => summary,
                    Err(why) => {
                        eprintln!("raftlog bench: {label}: {why}");
                        failed_run(spec.load.duration)
                    }
                };
                rows.push(SweepRow {
                    key: knob.key.clone(),
                    value,
                    run,
                    summary,
                });
                write_file(&spec.dir.join("sweep.csv"), &to_csv(shape, &rows))?;
            }
        }
    }
    Ok(rows)
}

/// The summary of a run that could not start: no requests, no latency.
fn failed_run(window: Duration) -> Summary {
    let shape = RequestShape {
        records_per_request: 1,
        value_bytes: 1,
    };
    Summary::of(&Default::default(), window, shape)
}

/// The lowest and highest throughput of the default configuration's successful runs.
fn default_band(default_runs: &[Point]) -> Option<(f64, f64)> {
    let ok = default_runs
        .iter()
        .map(|p| p.records_per_s)
        .filter(|v| *v > 0.0);
    let (low, high) = ok.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    (high > 0.0).then_some((low, high))
}

/// One point of a curve: the medians of a value's runs.
fn point(value: u64, runs: &[SweepRow]) -> Point {
    let throughputs: Vec<f64> = runs.iter().map(|r| r.summary.records_per_s).collect();
    let p99s: Vec<f64> = runs.iter().map(|r| r.summary.p99_ms).collect();
    Point {
        value,
        records_per_s: median(&throughputs).unwrap_or(0.0),
        p99_ms: median(&p99s).unwrap_or(f64::NAN),
    }
}

/// One line saying what the sweep recommends for a knob, and by how much it beats the default
/// configuration.
pub fn describe(
    key: &str,
    default: u64,
    recommended: Option<u64>,
    points: &[Point],
    baseline: &Baseline,
) -> String {
    match recommended {
        None => format!("{key}: no point succeeded; nothing to recommend"),
        Some(value) if value == default => {
            format!("{key}: keep the default {default} (no value beats it by more than the noise)")
        }
        Some(value) => match points.iter().find(|p| p.value == value) {
            Some(best) => format!(
                "{key}: recommend {value} instead of {default}: {} vs {} records/s ({:+.0}%), \
                 p99 {:.2} vs {:.2} ms",
                thousands(best.records_per_s.round() as u64),
                thousands(baseline.records_per_s.round() as u64),
                (best.records_per_s / baseline.records_per_s - 1.0) * 100.0,
                best.p99_ms,
                baseline.p99_ms
            ),
            None => format!("{key}: recommend {value}"),
        },
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// How long the load of a sweep lasts in all, to tell the user before it starts.
pub fn sweep_duration(plan: &[Knob], load: &LoadSpec, repeat: usize) -> Duration {
    let points: u32 = plan.iter().map(|k| k.values.len() as u32).sum();
    (load.warmup + load.duration) * points * repeat as u32
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

    #[test]
    fn describe_says_keep_or_change_and_by_how_much() {
        let points = [point(1, 1_000.0, 4.0), point(16, 1_500.0, 2.0)];
        let baseline = Baseline {
            records_per_s: 1_000.0,
            p99_ms: 4.0,
            noise: 0.1,
        };
        assert_eq!(
            describe("k", 1, Some(1), &points, &baseline),
            "k: keep the default 1 (no value beats it by more than the noise)"
        );
        assert_eq!(
            describe("k", 1, Some(16), &points, &baseline),
            "k: recommend 16 instead of 1: 1,500 vs 1,000 records/s (+50%), p99 2.00 vs 4.00 ms"
        );
        assert!(describe("k", 1, None, &points, &baseline).contains("nothing to recommend"));
    }

    #[test]
    fn a_point_is_the_median_of_its_runs() {
        let run = |records_per_s: f64, p99_ms: f64| SweepRow {
            key: "k".to_string(),
            value: 4,
            run: 1,
            summary: Summary {
                records_per_s,
                p99_ms,
                ..failed_run(Duration::from_secs(1))
            },
        };
        let runs = [run(100.0, 9.0), run(300.0, 1.0), run(200.0, 5.0)];
        assert_eq!(super::point(4, &runs), point(4, 200.0, 5.0));
    }
}
