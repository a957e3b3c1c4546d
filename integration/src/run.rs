//! One checked run: start a cluster, let clients append and read while the nemesis injects
//! faults, heal, require one more write to succeed, wait until every node holds the same
//! log, then check the recorded history (`check_history`: WGL linearizability, every
//! acknowledged append exactly once at its offsets, no phantom writes, reads are prefixes,
//! real-time order) and the sampled roles (`check_cluster`: one leader per term).
//!
//! A failing run returns a report with the seed, the replay command, every violation, the
//! operations the violations name, the nemesis's log and where the full history and the
//! nodes' logs are (the run directory is kept).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use bytes::Bytes;
use raftlog::testing::{
    check_cluster, check_history, AppendCall, CheckReport, ClientId, History, Outcome, ProducerSeq,
};

use crate::client::{append_recorded, run_client, stream_name, Recording, Workload};
use crate::cluster::{Cluster, ClusterSpec};
use crate::nemesis::{run_nemesis, NemesisConfig};
use crate::observer::observe_roles;

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The test's name; names the run directory and the replay command.
    pub name: String,
    pub nodes: u64,
    pub seed: u64,
    /// How long clients and the nemesis run.
    pub duration: Duration,
    pub workload: Workload,
    pub nemesis: NemesisConfig,
    pub disks: bool,
    pub peer_proxy: bool,
    pub converge_timeout: Duration,
    /// The run is meant to fail (the teeth tests): its directory is not kept.
    pub expect_failure: bool,
}

impl RunConfig {
    pub fn new(name: &str, nodes: u64, seed: u64, nemesis: NemesisConfig) -> RunConfig {
        RunConfig {
            name: name.to_string(),
            nodes,
            seed,
            duration: Duration::from_secs(15),
            workload: Workload::default(),
            nemesis,
            disks: false,
            peer_proxy: false,
            converge_timeout: Duration::from_secs(30),
            expect_failure: false,
        }
    }

    /// The command that replays this run's schedule.
    pub fn replay_command(&self) -> String {
        format!(
            "SEED={} DURATION_S={} scripts/test-integration {}",
            self.seed,
            self.duration.as_secs(),
            self.name
        )
    }
}

/// What a passing run did.
#[derive(Debug)]
pub struct RunReport {
    pub check: CheckReport,
    pub faults: Vec<String>,
    pub leaders_seen: usize,
}

/// Runs `config` and checks it; `Err` holds the failure report.
pub fn run(config: &RunConfig) -> Result<RunReport, String> {
    let mut spec = ClusterSpec::new(&config.name, config.nodes);
    spec.disks = config.disks;
    spec.peer_proxy = config.peer_proxy;
    spec.seed = config.seed;
    let cluster = Cluster::start(spec).map_err(|e| format!("{}: {e}", config.name))?;
    eprintln!(
        "{}: {} nodes ({:?}), seed {}, {:?}, faults {:?}",
        config.name,
        config.nodes,
        cluster.mode,
        config.seed,
        config.duration,
        config.nemesis.faults
    );
    let view = cluster.view();
    let recording = Recording::new();
    let origin = std::time::Instant::now();
    let until = origin + config.duration;

    let nemesis_config = config.nemesis.clone();
    let nemesis_seed = config.seed ^ 0x006e_656d_6573_6973;
    let nemesis = std::thread::Builder::new()
        .name("nemesis".into())
        .spawn(move || {
            let mut cluster = cluster;
            let (log, result) =
                run_nemesis(&mut cluster, &nemesis_config, nemesis_seed, origin, until);
            (cluster, log, result)
        })
        .map_err(|e| format!("starting the nemesis: {e}"))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let tokio_until = tokio::time::Instant::from_std(until);
    let observations = runtime.block_on(async {
        let clients = (0..config.workload.clients).map(|c| {
            run_client(
                ClientId(c),
                config.seed.wrapping_mul(31).wrapping_add(c),
                config.workload.clone(),
                view.clone(),
                recording.clone(),
                tokio_until,
            )
        });
        let observer = observe_roles(view.clone(), tokio_until, Duration::from_millis(100));
        let (_, observations) = tokio::join!(futures::future::join_all(clients), observer);
        observations
    });
    let (mut cluster, faults, nemesis_result) = match nemesis.join() {
        Ok(joined) => joined,
        Err(_) => return Err(format!("{}: the nemesis panicked", config.name)),
    };

    let mut problems = Vec::new();
    if let Err(error) = nemesis_result {
        problems.push(format!("nemesis: {error}"));
    }
    let streams: Vec<String> = (0..config.workload.streams).map(stream_name).collect();
    let after_heal = runtime.block_on(final_write(&view, &recording, &streams[0]));
    if let Err(error) = after_heal {
        problems.push(format!("liveness: {error}"));
    }
    let final_log = runtime.block_on(view.converge(&streams, config.converge_timeout));
    let history = recording.recorder.finish();
    let mut check = None;
    match &final_log {
        Ok(final_log) => match check_history(&history, final_log) {
            Ok(report) => check = Some(report),
            Err(violations) => problems.extend(violations.iter().map(|v| v.to_string())),
        },
        Err(error) => problems.push(error.clone()),
    }
    if let Err(violations) = check_cluster(&observations, &BTreeMap::new()) {
        problems.extend(violations.iter().map(|v| v.to_string()));
    }
    let leaders_seen = observations
        .iter()
        .filter(|o| o.role == raftlog::testing::ObservedRole::Leader)
        .count();

    match check {
        Some(check) if problems.is_empty() => {
            eprintln!(
                "{}: passed: {check}; {leaders_seen} leader terms seen",
                config.name
            );
            for (why, count) in recording.reasons() {
                eprintln!("  {count:>6} × {why}");
            }
            for line in &faults {
                eprintln!("  {line}");
            }
            cluster.mark_passed();
            Ok(RunReport {
                check,
                faults,
                leaders_seen,
            })
        }
        _ => {
            let report = failure_report(
                config,
                &cluster,
                &problems,
                &faults,
                &history,
                &recording.reasons(),
            );
            if config.expect_failure {
                cluster.discard_dir();
            }
            Err(report)
        }
    }
}

/// After healing, one append must be acknowledged within 20 s (retried as a producer).
async fn final_write(
    view: &crate::view::ClusterView,
    recording: &Recording,
    stream: &str,
) -> Result<(), String> {
    let client = ClientId(1_000_000);
    let append = AppendCall {
        stream: stream.to_string(),
        values: vec![Bytes::from("after-heal-0")],
        producer: Some(ProducerSeq {
            id: client.to_string(),
            seq: 0,
        }),
        expected_offset: None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let mut attempt = 0usize;
    while tokio::time::Instant::now() < deadline {
        let ids = view.ids();
        let node = ids[attempt % ids.len()];
        attempt += 1;
        let timeout = Duration::from_secs(3);
        let (outcome, result) =
            append_recorded(view, recording, client, node, &append, timeout).await;
        if let Outcome::Appended { .. } = outcome {
            return Ok(());
        }
        last = match result {
            Ok(response) => format!("n{node}: {} {}", response.status, response.text()),
            Err(error) => format!("n{node}: {error}"),
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "no append was acknowledged within 20 s of healing (last: {last})"
    ))
}

/// The text a failing run panics with, and the history file it writes.
fn failure_report(
    config: &RunConfig,
    cluster: &Cluster,
    problems: &[String],
    faults: &[String],
    history: &History,
    reasons: &[(String, u64)],
) -> String {
    let history_path = cluster.dir.join("history.txt");
    let _ = fs::write(&history_path, history.to_string());
    let _ = fs::write(cluster.dir.join("nemesis.txt"), faults.join("\n"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} FAILED (seed {}, {} nodes, {:?})\nreplay: {}",
        config.name,
        config.seed,
        config.nodes,
        cluster.mode,
        config.replay_command()
    );
    for problem in problems {
        let _ = writeln!(out, "- {problem}");
    }
    let named = named_operations(problems);
    if !named.is_empty() {
        let _ = writeln!(out, "operations named above:");
        for op in history.iter().filter(|op| named.contains(&op.id.0)) {
            let _ = writeln!(out, "  {op}");
        }
    }
    let _ = writeln!(out, "requests without a definite success, by why:");
    for (why, count) in reasons {
        let _ = writeln!(out, "  {count:>6} × {why}");
    }
    let _ = writeln!(out, "nemesis:");
    for line in faults {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "full history: {}\nnode logs: {}",
        history_path.display(),
        cluster
            .log_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    out
}

/// The operation ids (`#17`) that violation texts mention.
fn named_operations(problems: &[String]) -> BTreeSet<usize> {
    let mut ids = BTreeSet::new();
    for problem in problems {
        let mut rest = problem.as_str();
        while let Some(at) = rest.find('#') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(id) = digits.parse() {
                ids.insert(id);
            }
        }
    }
    ids
}

/// The seed of a test: `SEED` if set, else `default`.
pub fn seed_or(default: u64) -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Whether the long soak profile is on (`SOAK=1`).
pub fn soak() -> bool {
    std::env::var("SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// How long each run lasts: `DURATION_S` if set, else the profile's.
pub fn duration_or(short: Duration, soak_duration: Duration) -> Duration {
    if let Some(seconds) = std::env::var("DURATION_S")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return Duration::from_secs(seconds);
    }
    if soak() {
        soak_duration
    } else {
        short
    }
}

/// The seeds a test runs: `SEED` alone if set; else `short` seeds, or under `SOAK=1`
/// `SOAK_RUNS` (default 10) seeds derived from the time, each printed.
pub fn seeds(short: &[u64]) -> Vec<u64> {
    if let Some(seed) = std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    if !soak() {
        return short.to_vec();
    }
    let runs: u64 = std::env::var("SOAK_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    (0..runs)
        .map(|i| base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1_000_000_007)
        .collect()
}

/// Runs `make(seed)` for every seed of [`seeds`]; panics with every failure's report.
pub fn run_seeds(short: &[u64], make: impl Fn(u64) -> RunConfig) -> Vec<RunReport> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for seed in seeds(short) {
        match run(&make(seed)) {
            Ok(report) => reports.push(report),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} run(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    reports
}
