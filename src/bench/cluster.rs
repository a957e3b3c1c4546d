//! A throwaway local cluster for a bench run: this same executable as a child process
//! running `raftlog dev` with data in a fresh temporary directory, waited for until a leader
//! has committed a write, and killed and deleted when dropped.
//!
//! A child process rather than nodes in the bench's own process: the load generator then
//! shares no event loop with the nodes, and the nodes run exactly as `raftlog dev` runs them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::client::Client;
use crate::http::wire::ClusterResponse;

/// How long a fresh cluster may take to elect a leader and commit.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A running local cluster.
pub struct LocalCluster {
    child: Child,
    dir: PathBuf,
    /// The leader's base URL, found when the cluster became ready.
    pub leader: String,
}

impl LocalCluster {
    /// Starts `nodes` nodes with HTTP from `base_port`, every node's config changed by
    /// `overrides` (`KEY=VALUE`, as `raftlog dev --set` takes them), and waits until a leader
    /// has committed a write.
    pub async fn start(nodes: usize, base_port: u16, overrides: &[String]) -> Result<Self, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find raftlog itself: {e}"))?;
        let dir =
            std::env::temp_dir().join(format!("raftlog-bench-{}-{base_port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log = std::fs::File::create(dir.join("nodes.log"))
            .map_err(|e| format!("cannot create the nodes' log: {e}"))?;
        let mut command = Command::new(exe);
        command
            .arg("dev")
            .arg("--nodes")
            .arg(nodes.to_string())
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--base-port")
            .arg(base_port.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for assignment in overrides {
            command.arg("--set").arg(assignment);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start raftlog dev: {e}"))?;
        let mut cluster = Self {
            child,
            dir,
            leader: String::new(),
        };
        let first = format!("http://127.0.0.1:{base_port}");
        cluster.leader = cluster.wait_ready(&first).await?;
        Ok(cluster)
    }

    /// Polls until some leader has committed a probe write; returns the leader's URL.
    async fn wait_ready(&mut self, first: &str) -> Result<String, String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = Client::new(first).map_err(|e| e.to_string())?;
        let probe = serde_json::json!({"records": [{"value": "probe"}]});
        let mut last_problem = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "raftlog dev exited ({status}) before the cluster was ready:\n{}",
                    self.log_tail()
                ));
            }
            match client
                .get::<ClusterResponse>("/v1/cluster", POLL_INTERVAL * 10)
                .await
            {
                Ok(ClusterResponse {
                    leader: Some(leader),
                    ..
                }) => {
                    let at_leader = Client::new(&leader.http).map_err(|e| e.to_string())?;
                    match at_leader
                        .post::<serde_json::Value>("/v1/streams/bench-probe/records", &probe)
                        .await
                    {
                        Ok(_) => return Ok(leader.http.trim_end_matches('/').to_string()),
                        Err(error) => last_problem = error.to_string(),
                    }
                }
                Ok(_) => last_problem = "no leader yet".to_string(),
                Err(error) => last_problem = error.to_string(),
            }
            actix_rt::time::sleep(POLL_INTERVAL).await;
        }
        Err(format!(
            "the local cluster was not ready within {READY_TIMEOUT:?} ({last_problem}):\n{}",
            self.log_tail()
        ))
    }

    /// The last lines the nodes logged, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("nodes.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for LocalCluster {
    /// Kills the nodes and deletes their data. SIGKILL is enough: the data is thrown away,
    /// and the WAL is built to survive it anyway.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
