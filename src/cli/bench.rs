//! `raftlog bench`: the arguments, checked before anything starts, turned into a run or a
//! sweep of `crate::bench`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::exit::CliError;
use crate::bench::load::LoadSpec;
use crate::bench::report::table;
use crate::bench::run::{measure, sweep, sweep_duration, SweepSpec, Target};
use crate::bench::sweep::{default_plan, parse_knob};
use crate::bench::workload::{Consistency, Workload};

/// What each request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Append records (`POST /v1/streams/{stream}/records`).
    Write,
    /// Read one record per request (`GET /v1/streams/{stream}/records`).
    Read,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Drive this running node (`http://host:port`) instead of starting a local cluster.
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, value_enum, default_value_t = Mode::Write)]
    pub mode: Mode,
    /// The read level, in read mode.
    #[arg(long, value_enum)]
    pub consistency: Option<Consistency>,
    /// Concurrent keep-alive connections, each with one request at a time.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds measured (per point, in a sweep).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Bytes of each record value.
    #[arg(long, default_value_t = 256)]
    pub value_bytes: usize,
    /// Records in each append.
    #[arg(long, default_value_t = 1)]
    pub records_per_request: usize,
    /// Streams written or read; connection C uses stream C mod STREAMS.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// In read mode, records written to each stream first (reads cycle through them).
    #[arg(long, default_value_t = 1000)]
    pub read_records: u64,
    /// Nodes of the local cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The local cluster serves HTTP from this port (peers 1000 above).
    #[arg(long, default_value_t = 17001)]
    pub base_port: u16,
    /// Change a setting of the local cluster's nodes, as `raftlog dev --set`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Sweep the batching knobs, one fresh cluster per value, and write sweep.csv and
    /// sweep.svg into DIR.
    #[arg(long, value_name = "DIR")]
    pub sweep: Option<PathBuf>,
    /// With --sweep: runs of each point (their medians are plotted and compared).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// With --sweep: vary this knob over these values instead of the default plan.
    /// Repeatable, e.g. `--sweep-knob batching.proposal_linger_us=0,100,1000`.
    #[arg(long = "sweep-knob", value_name = "KEY=V1,V2,...")]
    pub sweep_knob: Vec<String>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// The largest value the bench sends: the default `limits.record_bytes_max`.
const VALUE_BYTES_MAX: usize = 1 << 20;

impl BenchArgs {
    /// Every problem with the arguments, as one usage error, before anything starts.
    pub fn check(&self) -> Result<(), CliError> {
        let mut problems = Vec::new();
        let mut within = |name: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                problems.push(format!("--{name} {value} must be from {min} to {max}"));
            }
        };
        within("connections", self.connections as u64, 1, 10_000);
        within("duration", self.duration, 1, 3_600);
        within("warmup", self.warmup, 0, 600);
        within(
            "value-bytes",
            self.value_bytes as u64,
            1,
            VALUE_BYTES_MAX as u64,
        );
        within(
            "records-per-request",
            self.records_per_request as u64,
            1,
            10_000,
        );
        within(
            "streams",
            self.streams as u64,
            1,
            self.connections.max(1) as u64,
        );
        within("read-records", self.read_records, 1, 1_000_000);
        within("nodes", self.nodes as u64, 1, 7);
        within("repeat", self.repeat as u64, 1, 20);
        let read = self.mode == Mode::Read;
        if !read && self.consistency.is_some() {
            problems.push("--consistency is for --mode read".to_string());
        }
        if read && self.records_per_request != 1 {
            problems.push("--records-per-request is for writes; a read asks for one".to_string());
        }
        if self.url.is_some() && !self.set.is_empty() {
            problems
                .push("--set configures the local cluster; with --url there is none".to_string());
        }
        if self.sweep.is_some() {
            if self.url.is_some() {
                problems.push("--sweep starts its own clusters; it cannot use --url".to_string());
            }
            if read {
                problems.push("--sweep varies write batching; it runs in --mode write".to_string());
            }
        } else if !self.sweep_knob.is_empty() || self.repeat != 1 {
            problems.push("--sweep-knob and --repeat need --sweep DIR".to_string());
        }
        for knob in &self.sweep_knob {
            if let Err(why) = parse_knob(knob) {
                problems.push(why);
            }
        }
        if let Some(url) = &self.url {
            if let Err(error) = super::client::Client::new(url) {
                problems.push(error.to_string());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CliError::Usage(problems.join("; ")))
        }
    }

    fn workload(&self) -> Workload {
        match self.mode {
            Mode::Write => Workload::Write {
                value_bytes: self.value_bytes,
                records_per_request: self.records_per_request,
            },
            Mode::Read => Workload::Read {
                consistency: self.consistency.unwrap_or(Consistency::Linearizable),
                records_per_stream: self.read_records,
                value_bytes: self.value_bytes,
            },
        }
    }

    fn load(&self) -> LoadSpec {
        LoadSpec {
            target: String::new(),
            connections: self.connections,
            warmup: Duration::from_secs(self.warmup),
            duration: Duration::from_secs(self.duration),
            streams: self.streams,
            workload: self.workload(),
        }
    }

    /// What the run does, in a few words: the label of its row.
    fn label(&self) -> String {
        match self.workload() {
            Workload::Write {
                value_bytes,
                records_per_request,
            } => format!(
                "write {} conns, {records_per_request} × {value_bytes} B",
                self.connections
            ),
            Workload::Read {
                consistency,
                value_bytes,
                ..
            } => format!(
                "read {} {} conns, {value_bytes} B",
                consistency.as_str(),
                self.connections
            ),
        }
    }
}

pub async fn run(args: BenchArgs, stdout: &mut dyn Write) -> Result<(), CliError> {
    args.check()?;
    if cfg!(debug_assertions) {
        eprintln!("raftlog bench: this is a debug build; measure with --release");
    }
    let load = args.load();
    if let Some(dir) = &args.sweep {
        let plan = if args.sweep_knob.is_empty() {
            default_plan()
        } else {
            let knobs = args.sweep_knob.iter().map(|k| parse_knob(k));
            knobs.collect::<Result<_, _>>().map_err(CliError::Usage)?
        };
        eprintln!(
            "raftlog bench: sweeping {} values, about {} s of load",
            plan.iter().map(|k| k.values.len()).sum::<usize>(),
            sweep_duration(&plan, &load, args.repeat).as_secs()
        );
        let spec = SweepSpec {
            plan,
            load,
            repeat: args.repeat,
            nodes: args.nodes,
            base_port: args.base_port,
            overrides: args.set.clone(),
            dir: dir.clone(),
            progress: !args.quiet,
        };
        sweep(&spec, stdout).await.map_err(CliError::Failed)?;
        return Ok(());
    }
    let target = match &args.url {
        Some(url) => Target::Url(url.clone()),
        None => Target::Local {
            nodes: args.nodes,
            base_port: args.base_port,
            overrides: args.set.clone(),
        },
    };
    let label = args.label();
    let summary = measure(&target, &load, &label, !args.quiet)
        .await
        .map_err(CliError::Unavailable)?;
    write!(stdout, "{}", table(&[(label, summary)]))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(line: &str) -> BenchArgs {
        let words = std::iter::once("bench").chain(line.split_whitespace());
        Wrapper::try_parse_from(words).expect("parses").args
    }

    fn problems(line: &str) -> String {
        match parse(line).check() {
            Err(CliError::Usage(message)) => message,
            other => panic!("expected a usage error for {line:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_a_valid_write_run() {
        let args = parse("");
        args.check().unwrap();
        assert_eq!(args.label(), "write 64 conns, 1 × 256 B");
        assert_eq!(
            args.load().workload,
            Workload::Write {
                value_bytes: 256,
                records_per_request: 1
            }
        );
    }

    #[test]
    fn read_mode_defaults_to_linearizable() {
        let args = parse("--mode read --connections 8");
        args.check().unwrap();
        assert_eq!(args.label(), "read linearizable 8 conns, 256 B");
        let lease = parse("--mode read --consistency lease");
        assert!(matches!(
            lease.load().workload,
            Workload::Read {
                consistency: Consistency::Lease,
                ..
            }
        ));
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let message = problems("--connections 0 --duration 0 --value-bytes 0");
        assert!(message.contains("--connections 0"));
        assert!(message.contains("--duration 0"));
        assert!(message.contains("--value-bytes 0"));
    }

    #[test]
    fn combinations_that_make_no_sense_are_refused() {
        assert!(problems("--consistency stale").contains("--mode read"));
        assert!(problems("--mode read --records-per-request 5").contains("for writes"));
        assert!(
            problems("--url http://127.0.0.1:7001 --set wal.segment_bytes=1")
                .contains("local cluster")
        );
        assert!(problems("--url http://127.0.0.1:7001 --sweep d").contains("cannot use --url"));
        assert!(problems("--mode read --sweep d").contains("--mode write"));
        assert!(problems("--sweep-knob batching.proposal_linger_us=0,1").contains("need --sweep"));
        assert!(problems("--sweep d --sweep-knob raft.pre_vote=0,1").contains("not a batching"));
        assert!(problems("--url localhost:7001").contains("http://"));
        assert!(problems("--connections 2 --streams 3").contains("--streams 3"));
    }
}
