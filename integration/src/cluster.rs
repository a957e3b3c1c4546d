//! A cluster of real `raftlog serve` processes (the release binary), each in its own
//! network namespace — or, without root, all on 127.0.0.1 behind the fault proxy — with its
//! config, log and data directory under the run's directory, optionally on a loop-mounted
//! ext4 image for power-loss tests.
//!
//! [`Cluster`] owns everything it made and undoes it on drop, also when a test panics:
//! processes (SIGCONT, then SIGKILL), the proxy, mounts and loop devices, namespaces. A run
//! that passed removes its directory; one that did not leaves it (marked `FAILED`) for the
//! report, with every node's log. [`Cluster::start`] first removes whatever a previous run
//! that died left behind, under the suite-wide lock.
//!
//! Process and network operations block (they wait for commands and processes), so the
//! nemesis runs them on a thread of its own; clients and checks only need a
//! [`ClusterView`] (`crate::view`), the addresses to talk to and the namespace to talk from.

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cleanup::cleanup_stale;
use crate::faults::{FaultBackend, NetFaults};
use crate::http::{request, Endpoint};
use crate::netns::{self, NetNs, Topology};
use crate::powerloss::Disk;
use crate::proxy::{LinkSpec, ProxyMesh};
use crate::sys::{self, SuiteLock};
use crate::view::{block_on, ClusterView};

/// Ports inside each node's namespace (every node has its own address there).
const NS_HTTP_PORT: u16 = 7000;
const NS_PEER_PORT: u16 = 8000;
/// Proxy listeners in namespace mode: node `to` listens for `from` on this plus `from`.
const NS_PROXY_PORT_BASE: u16 = 9100;
/// Ports on 127.0.0.1 in the loopback fallback: HTTP base + id, peer base + id, and the
/// proxy's listener for `from → to` at proxy base + 10·from + to.
const LO_HTTP_PORT_BASE: u16 = 27100;
const LO_PEER_PORT_BASE: u16 = 27200;
const LO_PROXY_PORT_BASE: u16 = 27300;

/// How long a node may take to answer `/healthz` after it starts (a power-loss restart
/// replays its WAL first).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop (SIGTERM) may take before the node is killed and that is
/// reported.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How nodes are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// A namespace per node on a bridge, faults as nft rules (needs root).
    Namespaces,
    /// All on 127.0.0.1, every peer link through the fault proxy, faults in the proxy.
    Loopback,
}

/// What cluster to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Names the run's directory.
    pub name: String,
    pub nodes: u64,
    /// Data directories on loop-mounted ext4 images, so power loss can be simulated.
    pub disks: bool,
    /// Put the fault proxy on every peer link (always so in the loopback fallback).
    pub peer_proxy: bool,
    pub election_timeout_ms: (u64, u64),
    pub heartbeat_interval_ms: u64,
    /// The nodes' `request_timeout_ms`: how long a request waits for a commit or a leader.
    pub request_timeout_ms: u64,
    /// Seeds the proxy's delays.
    pub seed: u64,
}

impl ClusterSpec {
    /// `nodes` nodes with the default timeouts, no disks, no proxy.
    pub fn new(name: &str, nodes: u64) -> ClusterSpec {
        ClusterSpec {
            name: name.to_string(),
            nodes,
            disks: false,
            peer_proxy: false,
            election_timeout_ms: (150, 300),
            heartbeat_interval_ms: 50,
            request_timeout_ms: 2_000,
            seed: 0,
        }
    }
}

/// One node: its addresses, files and process.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub http: SocketAddr,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    ns: Arc<NetNs>,
    child: Option<Child>,
    paused: bool,
    disk: Option<Disk>,
    /// How many times the process was started.
    pub starts: u32,
}

impl Node {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A running cluster; see the module doc.
#[derive(Debug)]
pub struct Cluster {
    pub spec: ClusterSpec,
    pub mode: NetMode,
    pub dir: PathBuf,
    bin: PathBuf,
    nodes: BTreeMap<u64, Node>,
    faults: Option<NetFaults>,
    proxy: Option<Arc<ProxyMesh>>,
    topology: Option<Topology>,
    client_ns: Arc<NetNs>,
    passed: bool,
    /// Held for the cluster's whole life; dropped last.
    _lock: SuiteLock,
}

/// The release binary under test: `RAFTLOG_BIN`, else `$CARGO_TARGET_DIR/release/raftlog`,
/// else the workspace's `target/release/raftlog`.
pub fn raftlog_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("RAFTLOG_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/raftlog")
}

/// How this machine runs clusters: namespaces as root with `ip` and `nft`, else loopback.
pub fn net_mode() -> NetMode {
    if std::env::var_os("RAFTLOG_INTEG_LOOPBACK").is_some() {
        return NetMode::Loopback;
    }
    if sys::is_root() && sys::have("ip") && sys::have("nft") {
        NetMode::Namespaces
    } else {
        NetMode::Loopback
    }
}

/// Whether power-loss disks can be made here (root, loop devices, mkfs.ext4).
pub fn disks_supported() -> bool {
    sys::is_root() && sys::have("losetup") && sys::have("mkfs.ext4") && sys::have("mount")
}

impl Cluster {
    /// Takes the suite lock, removes what dead runs left, then makes the network, the
    /// disks and the configs, starts every node and waits until they elect a leader.
    pub fn start(spec: ClusterSpec) -> Result<Cluster, String> {
        let lock = SuiteLock::acquire().map_err(|e| format!("taking the suite lock: {e}"))?;
        cleanup_stale();
        let bin = raftlog_bin();
        if !bin.is_file() {
            return Err(format!(
                "{} does not exist: build it with `cargo build --release --bin raftlog` (or run \
                 scripts/test-integration), or point RAFTLOG_BIN at it",
                bin.display()
            ));
        }
        let mode = net_mode();
        if mode == NetMode::Loopback {
            eprintln!(
                "NOTE: not root (or RAFTLOG_INTEG_LOOPBACK is set): running on 127.0.0.1 with \
                 the fault proxy on every peer link instead of network namespaces and nft; \
                 packet loss and downed links are skipped (and power loss without root)"
            );
        }
        if spec.disks && !disks_supported() {
            return Err("power-loss disks need root, losetup, mount and mkfs.ext4".into());
        }
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let dir = sys::base_dir().join(format!("{}-{stamp}", spec.name));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ids: Vec<u64> = (1..=spec.nodes).collect();

        let topology = match mode {
            NetMode::Namespaces => Some(Topology::create(&ids)?),
            NetMode::Loopback => None,
        };
        let client_ns = topology
            .as_ref()
            .map_or_else(|| Arc::new(NetNs::host()), |t| t.client.clone());
        let mut cluster = Cluster {
            spec: spec.clone(),
            mode,
            dir: dir.clone(),
            bin,
            nodes: BTreeMap::new(),
            faults: None,
            proxy: None,
            topology,
            client_ns,
            passed: false,
            _lock: lock,
        };
        let proxied = spec.peer_proxy || mode == NetMode::Loopback;
        if proxied {
            let mesh = ProxyMesh::start(cluster.link_specs(&ids), spec.seed)
                .map_err(|e| format!("starting the fault proxy: {e}"))?;
            cluster.proxy = Some(mesh);
        }
        let backend = match (mode, &cluster.proxy) {
            (NetMode::Namespaces, _) => FaultBackend::Nft,
            (NetMode::Loopback, Some(mesh)) => FaultBackend::Proxy(mesh.clone()),
            (NetMode::Loopback, None) => unreachable!("loopback always has the proxy"),
        };
        cluster.faults = Some(NetFaults::new(backend, &ids));

        for &id in &ids {
            let node_dir = dir.join(format!("n{id}"));
            fs::create_dir_all(&node_dir).map_err(|e| format!("{}: {e}", node_dir.display()))?;
            let disk = if spec.disks {
                Some(Disk::create(&node_dir)?)
            } else {
                None
            };
            let data_dir = disk
                .as_ref()
                .map_or_else(|| node_dir.join("data"), |d| d.mount_point().join("data"));
            let ns = match &cluster.topology {
                Some(t) => t.nodes[&id].clone(),
                None => Arc::new(NetNs::host()),
            };
            let node = Node {
                id,
                http: cluster.http_addr(id),
                config: node_dir.join("node.toml"),
                data_dir,
                log: node_dir.join("node.log"),
                ns,
                child: None,
                paused: false,
                disk,
                starts: 0,
            };
            fs::write(&node.config, cluster.config_text(&node, &ids))
                .map_err(|e| format!("{}: {e}", node.config.display()))?;
            cluster.nodes.insert(id, node);
        }
        for &id in &ids {
            cluster.spawn(id)?;
        }
        for &id in &ids {
            cluster.wait_healthy(id)?;
        }
        let view = cluster.view();
        let leader = block_on(view.wait_leader(Duration::from_secs(20)));
        if leader.is_none() {
            return Err(format!(
                "no leader within 20 s of starting; logs in {}",
                cluster.dir.display()
            ));
        }
        Ok(cluster)
    }

    fn ip(&self, id: u64) -> Ipv4Addr {
        match self.mode {
            NetMode::Namespaces => netns::node_ip(id),
            NetMode::Loopback => Ipv4Addr::LOCALHOST,
        }
    }

    fn http_addr(&self, id: u64) -> SocketAddr {
        let port = match self.mode {
            NetMode::Namespaces => NS_HTTP_PORT,
            NetMode::Loopback => LO_HTTP_PORT_BASE + id as u16,
        };
        SocketAddr::from((self.ip(id), port))
    }

    fn peer_addr(&self, id: u64) -> SocketAddr {
        let port = match self.mode {
            NetMode::Namespaces => NS_PEER_PORT,
            NetMode::Loopback => LO_PEER_PORT_BASE + id as u16,
        };
        SocketAddr::from((self.ip(id), port))
    }

    /// Where the proxy listens for `from → to`.
    fn proxy_addr(&self, from: u64, to: u64) -> SocketAddr {
        match self.mode {
            NetMode::Namespaces => {
                SocketAddr::from((self.ip(to), NS_PROXY_PORT_BASE + from as u16))
            }
            NetMode::Loopback => SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                LO_PROXY_PORT_BASE + 10 * from as u16 + to as u16,
            )),
        }
    }

    fn link_specs(&self, ids: &[u64]) -> Vec<LinkSpec> {
        let mut specs = Vec::new();
        for &from in ids {
            for &to in ids {
                if from == to {
                    continue;
                }
                let ns = match &self.topology {
                    Some(t) => t.nodes[&to].clone(),
                    None => Arc::new(NetNs::host()),
                };
                specs.push(LinkSpec {
                    from,
                    to,
                    listen: self.proxy_addr(from, to),
                    listen_ns: ns.clone(),
                    upstream: self.peer_addr(to),
                    upstream_ns: ns,
                });
            }
        }
        specs
    }

    /// Node `node`'s TOML config: the suite's timeouts, small WAL segments, reads large
    /// enough to return any stream of a run whole.
    fn config_text(&self, node: &Node, ids: &[u64]) -> String {
        let spec = &self.spec;
        let mut text = format!(
            "id = {id}\ncluster_id = \"integ\"\ndata_dir = \"{data}\"\nrequest_timeout_ms = {rt}\n\n\
             [http]\nlisten = \"{http}\"\nworkers = 1\n\n[peer]\nlisten = \"{peer}\"\n\n",
            id = node.id,
            data = node.data_dir.display(),
            rt = spec.request_timeout_ms,
            http = self.http_addr(node.id),
            peer = self.peer_addr(node.id),
        );
        for &member in ids {
            let peer = if member != node.id && self.proxy.is_some() {
                self.proxy_addr(node.id, member)
            } else {
                self.peer_addr(member)
            };
            text.push_str(&format!(
                "[[members]]\nid = {member}\npeer = \"{peer}\"\nhttp = \"http://{}\"\n\n",
                self.http_addr(member)
            ));
        }
        text.push_str(&format!(
            "[raft]\nelection_timeout_ms_min = {}\nelection_timeout_ms_max = {}\n\
             heartbeat_interval_ms = {}\n\n[wal]\nsegment_bytes = 33554432\n\n\
             [limits]\nread_records_max = 1000000\nread_bytes_max = 268435456\n",
            spec.election_timeout_ms.0, spec.election_timeout_ms.1, spec.heartbeat_interval_ms
        ));
        text
    }

    /// Starts node `id`'s process (it must not be running).
    fn spawn(&mut self, id: u64) -> Result<(), String> {
        let bin = self.bin.clone();
        let node = self.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
        assert!(node.child.is_none(), "node {id} is already running");
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let config = node.config.to_string_lossy().into_owned();
        let serve = [
            bin.to_string_lossy().into_owned(),
            "serve".into(),
            "--config".into(),
            config,
        ];
        let mut command = match node.ns.name() {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(&serve);
                c
            }
            None => {
                let mut c = Command::new(&serve[0]);
                c.args(&serve[1..]);
                c
            }
        };
        command
            .env(
                "RUST_LOG",
                std::env::var("RAFTLOG_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| format!("starting node {id}: {e}"))?;
        node.child = Some(child);
        node.paused = false;
        node.starts += 1;
        Ok(())
    }

    /// Waits until node `id` answers `/healthz`; an error (with its log's tail) if it exits
    /// or does not answer in time.
    pub fn wait_healthy(&mut self, id: u64) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let endpoint = self.endpoint(id);
        while Instant::now() < deadline {
            let node = self.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    return Err(format!(
                        "node {id} exited at start ({status}); its log ends:\n{}",
                        self.log_tail(id, 30)
                    ));
                }
            }
            let health = block_on(request(
                &endpoint,
                "GET",
                "/healthz",
                None,
                Duration::from_millis(300),
            ));
            if matches!(health, Ok(ref r) if r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "node {id} did not answer /healthz within {START_TIMEOUT:?}; its log ends:\n{}",
            self.log_tail(id, 30)
        ))
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let Some(node) = self.nodes.get(&id) else {
            return String::new();
        };
        let text = fs::read_to_string(&node.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.nodes[&id].child.is_some()
    }

    pub fn is_paused(&self, id: u64) -> bool {
        self.nodes[&id].paused
    }

    pub fn endpoint(&self, id: u64) -> Endpoint {
        Endpoint {
            addr: self.nodes[&id].http,
            ns: self.client_ns.clone(),
        }
    }

    pub fn view(&self) -> ClusterView {
        ClusterView {
            nodes: self
                .ids()
                .into_iter()
                .map(|id| (id, self.endpoint(id)))
                .collect(),
            status_timeout: Duration::from_millis(250),
        }
    }

    pub fn faults(&mut self) -> &mut NetFaults {
        self.faults.as_mut().expect("faults are set up at start")
    }

    pub fn proxy(&self) -> Option<&Arc<ProxyMesh>> {
        self.proxy.as_ref()
    }

    pub fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }

    /// kill -9 node `id` (a paused node too) and reap it.
    pub fn kill9(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        if let Some(mut child) = node.child.take() {
            let _ = sys::signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// Stops node `id` gracefully (SIGTERM) and waits; an error if it does not exit 0 in
    /// time (it is killed then).
    pub fn stop(&mut self, id: u64) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(mut child) = node.child.take() else {
            return Ok(());
        };
        if node.paused {
            let _ = sys::signal(child.id(), libc::SIGCONT);
            node.paused = false;
        }
        let _ = sys::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("node {id} exited with {status} on SIGTERM"))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = sys::signal(child.id(), libc::SIGKILL);
                    let _ = child.wait();
                    return Err(format!(
                        "node {id} did not stop within {STOP_TIMEOUT:?} of SIGTERM"
                    ));
                }
            }
        }
    }

    /// Starts node `id` again (it must be stopped) and waits until it answers.
    pub fn restart(&mut self, id: u64) -> Result<(), String> {
        self.spawn(id)?;
        self.wait_healthy(id)
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        if let Some(pid) = node.pid() {
            let _ = sys::signal(pid, libc::SIGSTOP);
            node.paused = true;
        }
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        if let Some(pid) = node.pid() {
            let _ = sys::signal(pid, libc::SIGCONT);
        }
        node.paused = false;
    }

    /// Pulls the plug on `ids` at once: SIGKILL them all, then replace each one's disk by
    /// an unsynced copy. They stay down; [`Cluster::restart`] brings them back.
    pub fn power_loss(&mut self, ids: &[u64]) -> Result<(), String> {
        for &id in ids {
            self.kill9(id);
        }
        for &id in ids {
            let node = self.nodes.get_mut(&id).expect("node");
            let disk = node
                .disk
                .as_mut()
                .ok_or(format!("node {id} has no loop disk (spec.disks is off)"))?;
            disk.pull_plug()?;
        }
        Ok(())
    }

    /// Deletes node `id`'s data directory (it must be stopped): the node forgets everything.
    pub fn wipe(&mut self, id: u64) -> Result<(), String> {
        assert!(!self.is_running(id), "wipe a stopped node");
        let dir = &self.nodes[&id].data_dir;
        match fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        }
    }

    /// Whether the nodes run on loop disks.
    pub fn has_disks(&self) -> bool {
        self.spec.disks
    }

    /// Brings node `id`'s interface down or up (namespaces only).
    pub fn set_link(&mut self, id: u64, up: bool) -> Result<(), String> {
        match &self.topology {
            Some(t) => t.set_link(id, up),
            None => Err("links can only go down in namespace mode".into()),
        }
    }

    /// Undoes every fault: links up, rules and proxy faults removed, paused nodes resumed,
    /// stopped nodes restarted.
    pub fn heal(&mut self) -> Result<(), String> {
        if self.topology.is_some() {
            for id in self.ids() {
                self.set_link(id, true)?;
            }
        }
        self.faults().heal()?;
        if let Some(proxy) = &self.proxy {
            proxy.calm();
        }
        for id in self.ids() {
            if self.is_paused(id) {
                self.resume(id);
            }
        }
        for id in self.ids() {
            if !self.is_running(id) {
                self.restart(id)?;
            }
        }
        Ok(())
    }

    /// Marks the run as passed: its directory is removed on drop.
    pub fn mark_passed(&mut self) {
        self.passed = true;
    }

    /// Removes the run's directory on drop whatever the outcome: for runs meant to fail.
    pub fn discard_dir(&mut self) {
        self.passed = true;
    }

    /// The files a failure report points at.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.nodes.values().map(|n| n.log.clone()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = sys::signal(child.id(), libc::SIGCONT);
                let _ = sys::signal(child.id(), libc::SIGKILL);
                let _ = child.wait();
            }
        }
        if let Some(proxy) = self.proxy.take() {
            proxy.stop();
        }
        self.faults = None;
        for node in self.nodes.values_mut() {
            node.disk = None; // unmounts and detaches
        }
        self.topology = None; // deletes the namespaces
        if self.passed {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            let _ = fs::write(self.dir.join("FAILED"), "this run did not pass\n");
            eprintln!("run directory kept for inspection: {}", self.dir.display());
        }
    }
}
