//! The few operating-system calls the suite makes: running a command and reading its
//! output, sending a signal to a process it started, telling whether it runs as root, and
//! the lock that keeps two suites (or two tests) from sharing namespaces and mounts.
//!
//! Everything that changes the machine (namespaces, nft rules, loop devices, mounts) goes
//! through [`run`], so a failing step names the exact command that failed and what it said.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where every run keeps its files: configs, logs, data directories, disk images. A run's
/// directory is removed when the run passes and kept (with a `FAILED` marker) when not.
pub fn base_dir() -> PathBuf {
    std::env::var_os("RAFTLOG_INTEG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/raftlog-integ"))
}

/// Whether this process may create namespaces, nft rules and loop devices.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `program` is on the PATH (or is a path that exists).
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}

/// Runs `program args…` to completion; its stdout on success, or an error naming the
/// command, its exit status and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_with_stdin(program, args, None)
}

/// [`run`], feeding `stdin` to the command.
pub fn run_with_stdin(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = command
        .spawn()
        .map_err(|e| format!("`{shown}` did not start: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("`{shown}`: writing its stdin: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("`{shown}`: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Sends `signal` to `pid`, a process this suite started.
pub fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill takes plain integers; a pid that no longer exists is an ESRCH error.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An exclusive lock on the suite's base directory, held for a whole test: namespaces,
/// mount points and loop devices have machine-wide names, so runs never overlap (cargo runs
/// the tests of one binary on several threads, and several binaries may start at once).
/// Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct SuiteLock {
    _file: File,
}

impl SuiteLock {
    pub fn acquire() -> io::Result<SuiteLock> {
        let dir = base_dir();
        fs::create_dir_all(&dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(SuiteLock { _file: file });
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}
