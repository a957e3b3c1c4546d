//! Three brokers in one process, each embedding a raftlog node as its share of the
//! controller quorum (as Kafka brokers embed KRaft). Brokers register and heartbeat through
//! the quorum; whoever leads is the controller and assigns partitions; the controller's
//! broker is killed and the next controller carries on from exactly the same state.
//!
//! ```text
//! cargo run --release --example controller -- [--base-port 17300] [--data DIR]
//! ```
//!
//! Files: `metadata.rs` (the replicated state machine and the controller's pure planning),
//! `broker.rs` (a broker around its embedded node), `scenario.rs` (the story, checked at
//! every step; `tests/embedded_controller.rs` runs it in CI).

mod broker;
mod metadata;
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;

use raftlog::embed::ClusterConfig;

use crate::broker::BrokerSettings;

const BROKERS: [u64; 3] = [1, 2, 3];

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut base_port: u16 = 17300;
    let mut data_dir =
        std::env::temp_dir().join(format!("raftlog-controller-{}", std::process::id()));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            // Three brokers take six ports from the base on.
            ("--base-port", Some(port))
                if port.parse::<u16>().is_ok_and(|p| p > 0 && p <= 65530) =>
            {
                base_port = port.parse().unwrap()
            }
            ("--data", Some(dir)) => data_dir = PathBuf::from(dir),
            _ => {
                eprintln!("usage: controller [--base-port 1..65530] [--data DIR]");
                return ExitCode::from(2);
            }
        }
    }
    let mut cluster = ClusterConfig::new("controller-example");
    for id in BROKERS {
        let peer = base_port + 2 * (id as u16 - 1);
        cluster = cluster.member(
            id,
            format!("127.0.0.1:{peer}"),
            format!("http://127.0.0.1:{}", peer + 1),
        );
    }
    let settings = BrokerSettings::example(cluster, data_dir.clone());
    println!("data in {}", data_dir.display());
    let result = scenario::run(&settings, &BROKERS, &|line| println!("{line}")).await;
    match result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&data_dir);
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("FAILED: {problem}\n(data kept in {})", data_dir.display());
            ExitCode::FAILURE
        }
    }
}
