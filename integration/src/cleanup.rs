//! Removing what a run that died left behind — node processes, namespaces, mounts, loop
//! devices, disk images — before the next cluster starts ([`crate::cluster::Cluster::start`])
//! and when `scripts/test-integration` exits (`raftlog-integ-cleanup`). Everything the suite
//! makes is named so it can be found here: processes by their config path under the base
//! directory, namespaces by their prefix, mounts and images by their path.

use std::fs;
use std::path::Path;

use crate::sys;
use crate::{netns, powerloss};

/// Removes what a run that died left: namespaces, mounts, loop devices, and the disk
/// images of kept run directories (the logs stay). Processes of a dead run died with it
/// or are killed by their pid if they still run a config of the suite's.
pub fn cleanup_stale() {
    let base = sys::base_dir();
    kill_stale_nodes(&base);
    if sys::is_root() {
        netns::cleanup_stale();
        powerloss::cleanup_stale(&base);
    }
    if let Ok(entries) = fs::read_dir(&base) {
        for entry in entries.flatten() {
            let run_dir = entry.path();
            if !run_dir.is_dir() {
                continue;
            }
            if !run_dir.join("FAILED").exists() {
                let _ = fs::remove_dir_all(&run_dir);
                continue;
            }
            if let Ok(nodes) = fs::read_dir(&run_dir) {
                for node in nodes.flatten() {
                    let _ = fs::remove_file(node.path().join("disk.img"));
                    let _ = fs::remove_dir_all(node.path().join("data"));
                }
            }
        }
    }
}

/// Kills `raftlog serve` processes whose command line names a config under `base`: only
/// this suite starts those.
fn kill_stale_nodes(base: &Path) {
    let base = base.to_string_lossy().into_owned();
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let serves = args.iter().any(|a| a == "serve");
        let ours = args
            .iter()
            .any(|a| a.starts_with(&base) && a.ends_with("node.toml"));
        if serves && ours {
            eprintln!("cleanup: killing stale node process {pid}");
            let _ = sys::signal(pid, libc::SIGCONT);
            let _ = sys::signal(pid, libc::SIGKILL);
        }
    }
}
