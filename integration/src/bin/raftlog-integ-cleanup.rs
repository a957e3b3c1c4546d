//! Removes whatever a run of the suite left behind: node processes, network namespaces,
//! mounts and loop devices, disk images. Each test already undoes what it made when it
//! ends, also when it fails; `scripts/test-integration` runs this on exit for the cases
//! where no destructor runs (the test process killed, or interrupted with Ctrl-C).

use raftlog_integration::cleanup::cleanup_stale;
use raftlog_integration::sys::SuiteLock;

fn main() {
    // Under the suite lock, so a suite still running elsewhere is never cleaned up under it.
    let _lock = match SuiteLock::acquire() {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("raftlog-integ-cleanup: taking the suite lock: {error}");
            std::process::exit(1);
        }
    };
    cleanup_stale();
}
