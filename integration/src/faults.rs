//! Network faults between nodes: partitions, isolating a node, one-way cuts and packet loss,
//! as nftables rules inside each node's namespace, or — in the loopback fallback, without
//! root — as blocked links of the fault proxy.
//!
//! The wanted state is kept here (which sources each node drops, how much it loses) and a
//! node's whole rule table is rewritten in one nft transaction whenever its part changes,
//! so what is installed is always exactly what [`NetFaults::describe`] says.
//!
//! Rules drop packets on the *receiving* node's input hook: a cut `a → b` is "b drops what
//! comes from a's address". Clients live in their own namespace and are never cut off by a
//! partition (as in Jepsen, partitions are between nodes), but packet loss and a downed link
//! hit their traffic too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::netns::{node_ip, node_ns, HOST_IF};
use crate::proxy::ProxyMesh;
use crate::sys::run_with_stdin;

/// Where faults are installed.
#[derive(Debug)]
pub enum FaultBackend {
    /// nft rules in each node's namespace.
    Nft,
    /// The fault proxy's links (loopback fallback): cuts only, no packet loss.
    Proxy(Arc<ProxyMesh>),
}

/// The network faults in force, and the means to install them.
#[derive(Debug)]
pub struct NetFaults {
    backend: FaultBackend,
    ids: Vec<u64>,
    /// For each node, the nodes whose packets it drops.
    drops_from: BTreeMap<u64, BTreeSet<u64>>,
    /// For each node, the share (percent) of packets arriving on its interface it drops.
    loss_percent: BTreeMap<u64, u8>,
}

impl NetFaults {
    pub fn new(backend: FaultBackend, ids: &[u64]) -> NetFaults {
        NetFaults {
            backend,
            ids: ids.to_vec(),
            drops_from: BTreeMap::new(),
            loss_percent: BTreeMap::new(),
        }
    }

    /// Whether packet loss can be injected (not through the proxy).
    pub fn supports_loss(&self) -> bool {
        matches!(self.backend, FaultBackend::Nft)
    }

    /// Cuts `from → to` (one way).
    pub fn cut_one_way(&mut self, from: u64, to: u64) -> Result<(), String> {
        self.drops_from.entry(to).or_default().insert(from);
        self.install(&[to])
    }

    /// Cuts every link between different groups, both ways. Nodes in no group keep their
    /// links.
    pub fn partition(&mut self, groups: &[Vec<u64>]) -> Result<(), String> {
        let mut touched = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            for (h, other) in groups.iter().enumerate() {
                if g == h {
                    continue;
                }
                for &to in group {
                    self.drops_from
                        .entry(to)
                        .or_default()
                        .extend(other.iter().copied());
                    touched.push(to);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        self.install(&touched)
    }

    /// Cuts `node` off from every other node, both ways (clients still reach it).
    pub fn isolate(&mut self, node: u64) -> Result<(), String> {
        let rest: Vec<u64> = self.ids.iter().copied().filter(|&n| n != node).collect();
        self.partition(&[vec![node], rest])
    }

    /// Drops `percent` of the packets arriving at each of `nodes`.
    pub fn lose(&mut self, nodes: &[u64], percent: u8) -> Result<(), String> {
        assert!(percent <= 100);
        if !self.supports_loss() {
            return Err("packet loss needs nft (root); the proxy fallback cannot drop".into());
        }
        for &node in nodes {
            self.loss_percent.insert(node, percent);
        }
        self.install(nodes)
    }

    /// Removes every rule.
    pub fn heal(&mut self) -> Result<(), String> {
        self.drops_from.clear();
        self.loss_percent.clear();
        let ids = self.ids.clone();
        self.install(&ids)
    }

    /// The faults in force, one line per node that has any.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for &id in &self.ids {
            let drops = self.drops_from.get(&id).filter(|d| !d.is_empty());
            let loss = self.loss_percent.get(&id).filter(|&&p| p > 0);
            if drops.is_some() || loss.is_some() {
                let _ = write!(out, "n{id}: ");
                if let Some(from) = drops {
                    let _ = write!(out, "drops from {from:?} ");
                }
                if let Some(p) = loss {
                    let _ = write!(out, "loses {p}%");
                }
                out.push('\n');
            }
        }
        out
    }

    fn install(&self, nodes: &[u64]) -> Result<(), String> {
        for &node in nodes {
            match &self.backend {
                FaultBackend::Nft => self.install_nft(node)?,
                FaultBackend::Proxy(mesh) => {
                    for &from in &self.ids {
                        let blocked = self
                            .drops_from
                            .get(&node)
                            .is_some_and(|d| d.contains(&from));
                        if from != node {
                            mesh.set_blocked(from, node, blocked);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Replaces node `node`'s table in one transaction.
    fn install_nft(&self, node: u64) -> Result<(), String> {
        let mut rules = String::new();
        if let Some(from) = self.drops_from.get(&node).filter(|d| !d.is_empty()) {
            let addrs: Vec<String> = from.iter().map(|&id| node_ip(id).to_string()).collect();
            let _ = writeln!(rules, "    ip saddr {{ {} }} drop", addrs.join(", "));
        }
        if let Some(p) = self.loss_percent.get(&node).filter(|&&p| p > 0) {
            let _ = writeln!(
                rules,
                "    iifname \"{HOST_IF}\" numgen random mod 100 < {p} drop"
            );
        }
        let script = format!(
            "table inet rlit\ndelete table inet rlit\ntable inet rlit {{\n  chain input {{\n    \
             type filter hook input priority 0; policy accept;\n{rules}  }}\n}}\n"
        );
        run_with_stdin(
            "ip",
            &["netns", "exec", &node_ns(node), "nft", "-f", "-"],
            Some(&script),
        )
        .map(drop)
    }
}
