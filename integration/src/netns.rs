//! The test network: one network namespace per node and one for the clients, each joined by
//! a veth pair to a bridge that lives in a namespace of its own. Addresses come from
//! 198.18.0.0/24 (RFC 2544's range for test networks) and exist only inside these
//! namespaces: no namespace has a route anywhere else, and nothing is added to the host's.
//!
//! Every name starts with [`NS_PREFIX`], so a run that died without cleaning up is found and
//! removed by [`cleanup_stale`] at the start of the next one.
//!
//! The suite's own sockets (clients, the fault proxy) are made inside a namespace by
//! [`NetNs::tcp_socket`]: the calling thread enters the namespace for the one `socket()`
//! call and returns; the socket stays in the namespace it was made in.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

use tokio::net::TcpSocket;

use crate::sys::run;

/// Every namespace the suite makes starts with this.
pub const NS_PREFIX: &str = "rlit-";
/// The namespace that holds the bridge.
pub const BRIDGE_NS: &str = "rlit-br";
/// The clients' namespace.
pub const CLIENT_NS: &str = "rlit-cl";
/// The interface each host namespace reaches the bridge through.
pub const HOST_IF: &str = "veth0";

/// Node `id`'s address: 198.18.0.(10 + id).
pub fn node_ip(id: u64) -> Ipv4Addr {
    assert!((1..=100).contains(&id), "node ids 1..=100");
    Ipv4Addr::new(198, 18, 0, 10 + id as u8)
}

/// The clients' address.
pub fn client_ip() -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 200)
}

/// Node `id`'s namespace name.
pub fn node_ns(id: u64) -> String {
    format!("{NS_PREFIX}n{id}")
}

/// A network namespace to make sockets in: a named one, or the host's own.
#[derive(Debug)]
pub struct NetNs {
    name: Option<String>,
    file: Option<File>,
}

impl NetNs {
    /// The namespace this process runs in (the loopback fallback).
    pub fn host() -> NetNs {
        NetNs {
            name: None,
            file: None,
        }
    }

    /// A namespace made with `ip netns add NAME`.
    pub fn open(name: &str) -> io::Result<NetNs> {
        let file = File::open(format!("/run/netns/{name}"))?;
        Ok(NetNs {
            name: Some(name.to_string()),
            file: Some(file),
        })
    }

    /// Its name, `None` for the host's.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Runs `f` on this thread inside the namespace, then returns to the thread's own.
    /// `f` must not block or yield: nothing else should run inside the namespace.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> io::Result<T> {
        let Some(target) = &self.file else {
            return Ok(f());
        };
        let own = File::open("/proc/thread-self/ns/net")?;
        setns(target)?;
        let result = f();
        setns(&own).expect("returning to the thread's own network namespace");
        Ok(result)
    }

    /// A new IPv4 TCP socket in this namespace, to connect or bind.
    pub fn tcp_socket(&self) -> io::Result<TcpSocket> {
        self.enter(TcpSocket::new_v4)?
    }
}

fn setns(file: &File) -> io::Result<()> {
    // SAFETY: setns on a namespace file descriptor we hold open.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The namespaces of one cluster: one per node, one for the clients, and the bridge's.
/// Dropping it deletes them all (which also removes their veths, rules and addresses).
#[derive(Debug)]
pub struct Topology {
    pub nodes: BTreeMap<u64, Arc<NetNs>>,
    pub client: Arc<NetNs>,
    names: Vec<String>,
}

impl Topology {
    /// Makes the bridge, a namespace per node id and the clients' namespace, all joined.
    pub fn create(ids: &[u64]) -> Result<Topology, String> {
        let mut topology = Topology {
            nodes: BTreeMap::new(),
            client: Arc::new(NetNs::host()),
            names: Vec::new(),
        };
        topology.add_namespace(BRIDGE_NS)?;
        run("ip", &["-n", BRIDGE_NS, "link", "set", "lo", "up"])?;
        run(
            "ip",
            &["-n", BRIDGE_NS, "link", "add", "br0", "type", "bridge"],
        )?;
        run("ip", &["-n", BRIDGE_NS, "link", "set", "br0", "up"])?;
        for &id in ids {
            let name = node_ns(id);
            topology.add_host(&name, &format!("h{id}"), node_ip(id))?;
            let ns = NetNs::open(&name).map_err(|e| format!("opening {name}: {e}"))?;
            topology.nodes.insert(id, Arc::new(ns));
        }
        topology.add_host(CLIENT_NS, "hcl", client_ip())?;
        topology.client =
            Arc::new(NetNs::open(CLIENT_NS).map_err(|e| format!("opening {CLIENT_NS}: {e}"))?);
        Ok(topology)
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        run("ip", &["netns", "add", name])?;
        self.names.push(name.to_string());
        Ok(())
    }

    /// A host namespace with `ip` on its `veth0`, whose other end `port` is on the bridge.
    fn add_host(&mut self, name: &str, port: &str, ip: Ipv4Addr) -> Result<(), String> {
        self.add_namespace(name)?;
        run(
            "ip",
            &[
                "link", "add", HOST_IF, "netns", name, "type", "veth", "peer", "name", port,
                "netns", BRIDGE_NS,
            ],
        )?;
        run(
            "ip",
            &["-n", BRIDGE_NS, "link", "set", port, "master", "br0", "up"],
        )?;
        let cidr = format!("{ip}/24");
        run("ip", &["-n", name, "addr", "add", &cidr, "dev", HOST_IF])?;
        run("ip", &["-n", name, "link", "set", HOST_IF, "up"])?;
        run("ip", &["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Brings node `id`'s interface down (it vanishes from the network, clients included)
    /// or back up.
    pub fn set_link(&self, id: u64, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        run("ip", &["-n", &node_ns(id), "link", "set", HOST_IF, state]).map(drop)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            if let Err(error) = run("ip", &["netns", "del", name]) {
                eprintln!("cleanup: {error}");
            }
        }
    }
}

/// Deletes every namespace a previous run left behind.
pub fn cleanup_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(NS_PREFIX) {
            eprintln!("cleanup: deleting stale namespace {name}");
            if let Err(error) = run("ip", &["netns", "del", name]) {
                eprintln!("cleanup: {error}");
            }
        }
    }
}
