//! The I/O seam: every system call the WAL and the hard-state file make goes through `Io`.
//!
//! One place for syscalls gives us two things. Errors come back as `Error::Io` naming the
//! operation and the file, so the message is useful without context. And a test can hand in a
//! `FaultInjector` that fails the Nth call with EIO or ENOSPC, which is how the crash tests
//! prove that every failure poisons the WAL and that recovery afterwards is correct.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};

/// Zero-fill writes go out in chunks of this size, each written back before the next (so a
/// cancel is noticed quickly, and the disk never queues more than this of the fill).
const ZERO_CHUNK_BYTES: usize = 256 << 10;

/// Which error an injected fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An I/O error (EIO), as from a failing disk or a lost fsync.
    Eio,
    /// A full disk (ENOSPC).
    Enospc,
}

/// A test seam that fails one chosen system call.
///
/// Calls are counted from 1 across every `Io` that shares the injector (including flush jobs
/// on other threads). Only the armed call fails; the ones after it succeed, so a test sees
/// exactly one fault and can check that the WAL stops on it.
#[derive(Debug, Default)]
pub struct FaultInjector {
    calls: AtomicU64,
    fail_at: AtomicU64,
    errno: AtomicI32,
    fired: Mutex<Option<String>>,
}

impl FaultInjector {
    /// An injector that counts calls and fails none.
    pub fn new() -> Arc<FaultInjector> {
        Arc::new(FaultInjector::default())
    }

    /// How many calls went through the seam so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Fail the `nth` call from now (1 = the very next one) with `fault`.
    pub fn fail_after(&self, nth: u64, fault: Fault) {
        assert!(nth >= 1, "fail_after counts from 1");
        let errno = match fault {
            Fault::Eio => libc::EIO,
            Fault::Enospc => libc::ENOSPC,
        };
        self.errno.store(errno, Ordering::SeqCst);
        self.fail_at.store(self.calls() + nth, Ordering::SeqCst);
    }

    /// Fail nothing from now on.
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// The operation and file of the call that was failed, if one was.
    pub fn fired(&self) -> Option<String> {
        self.fired.lock().expect("fault injector lock").clone()
    }

    fn check(&self, op: &'static str, path: &Path) -> io::Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call != self.fail_at.load(Ordering::SeqCst) {
            return Ok(());
        }
        let description = format!("call {call}: {op} on {}", path.display());
        *self.fired.lock().expect("fault injector lock") = Some(description);
        Err(io::Error::from_raw_os_error(
            self.errno.load(Ordering::SeqCst),
        ))
    }
}

/// The system calls of the WAL, each wrapped to name its file on error and to consult the
/// optional fault injector first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Io {
    faults: Option<Arc<FaultInjector>>,
}

impl Io {
    pub(crate) fn new(faults: Option<Arc<FaultInjector>>) -> Io {
        Io { faults }
    }

    /// Runs one syscall: first the injector, then the call, mapping the error either way.
    fn call<T>(
        &self,
        op: &'static str,
        path: &Path,
        f: impl FnOnce() -> io::Result<T>,
    ) -> Result<T> {
        let injected = match &self.faults {
            Some(faults) => faults.check(op, path),
            None => Ok(()),
        };
        injected.and_then(|()| f()).map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }

    pub(crate) fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.call("create_dir_all", dir, || fs::create_dir_all(dir))
    }

    /// The names of the directory's entries (not sorted).
    pub(crate) fn read_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.call("read_dir", dir, || {
            let mut names = Vec::new();
            for entry in fs::read_dir(dir)? {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            Ok(names)
        })
    }

    /// Creates `path` (replacing any old file of that name) for reading and writing.
    pub(crate) fn create(&self, path: &Path) -> Result<File> {
        self.call("create", path, || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(path)
        })
    }

    pub(crate) fn open(&self, path: &Path, writable: bool) -> Result<File> {
        self.call("open", path, || {
            OpenOptions::new().read(true).write(writable).open(path)
        })
    }

    pub(crate) fn file_bytes(&self, file: &File, path: &Path) -> Result<u64> {
        self.call("fstat", path, || Ok(file.metadata()?.len()))
    }

    pub(crate) fn set_len(&self, file: &File, path: &Path, bytes: u64) -> Result<()> {
        self.call("set_len", path, || file.set_len(bytes))
    }

    /// Reserves blocks for the whole file, so writes through the map cannot hit ENOSPC as a
    /// SIGBUS. A filesystem without fallocate still gets a sized (sparse) file.
    pub(crate) fn fallocate(&self, file: &File, path: &Path, bytes: u64) -> Result<()> {
        self.call("fallocate", path, || {
            let length = libc::off_t::try_from(bytes).map_err(io::Error::other)?;
            // SAFETY: a plain syscall on a valid descriptor; no memory is passed.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, length) };
            let error = io::Error::last_os_error();
            match rc {
                0 => Ok(()),
                _ if error.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
                _ => Err(error),
            }
        })
    }

    /// Writes zeros over `0..bytes` and syncs them, so the file's blocks are allocated and
    /// written: a later fdatasync of records then has no extent conversion to journal, which
    /// halves its cost on ext4. Stops early (returning `Ok(false)`) when `cancel` is set.
    pub(crate) fn write_zeros(
        &self,
        file: &File,
        path: &Path,
        bytes: u64,
        cancel: &AtomicBool,
    ) -> Result<bool> {
        self.call("write_zeros", path, || {
            let zeros = vec![0u8; ZERO_CHUNK_BYTES];
            let mut offset = 0u64;
            while offset < bytes {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                let chunk_bytes = (bytes - offset).min(ZERO_CHUNK_BYTES as u64) as usize;
                file.write_all_at(&zeros[..chunk_bytes], offset)?;
                write_back_and_wait(file, offset, chunk_bytes)?;
                offset += chunk_bytes as u64;
            }
            Ok(true)
        })
    }

    pub(crate) fn write_all(&self, file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
        self.call("write", path, || file.write_all(bytes))
    }

    pub(crate) fn fdatasync(&self, file: &File, path: &Path) -> Result<()> {
        self.call("fdatasync", path, || file.sync_data())
    }

    /// Writes `bytes` at `offset` (into the page cache; durable only after `fdatasync`).
    pub(crate) fn write_at(
        &self,
        file: &File,
        path: &Path,
        bytes: &[u8],
        offset: u64,
    ) -> Result<()> {
        self.call("pwrite", path, || file.write_all_at(bytes, offset))
    }

    /// Maps the whole file, shared and read-only: the page cache that `write_at` fills.
    pub(crate) fn map(&self, file: &File, path: &Path) -> Result<MmapRaw> {
        self.call("mmap", path, || MmapOptions::new().map_raw_read_only(file))
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.call("rename", from, || fs::rename(from, to))
    }

    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        self.call("remove", path, || fs::remove_file(path))
    }

    /// fsync of a directory: makes its creates, renames and removes durable.
    pub(crate) fn fsync_dir(&self, dir: &Path) -> Result<()> {
        self.call("fsync_dir", dir, || File::open(dir)?.sync_all())
    }

    /// Takes an exclusive, non-blocking flock on `file`; `Ok(false)` if another holds it.
    pub(crate) fn try_lock(&self, file: &File, path: &Path) -> Result<bool> {
        self.call("flock", path, || {
            // SAFETY: a plain syscall on a valid descriptor; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            let error = io::Error::last_os_error();
            match rc {
                0 => Ok(true),
                _ if error.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
                _ => Err(error),
            }
        })
    }

    /// The whole file, or `None` if it does not exist.
    pub(crate) fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        self.call("read", path, || match File::open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
    }

    pub(crate) fn exists(&self, path: &Path) -> Result<bool> {
        self.call("stat", path, || path.try_exists())
    }
}

/// Writes back `len` bytes of `file` at `offset` and waits for them: one chunk of a background
/// zero-fill at a time. Left to the kernel, a 64 MiB fill (one per node) reaches the disk as
/// one burst of writeback, and the log's own small writes and syncs queue behind all of it:
/// a WAL append stalled for 300–400 ms that way, the whole leader with it (BENCHMARKS.md, "Side
/// by side with etcd"). Not a durability point: the fill still ends with an fdatasync.
fn write_back_and_wait(file: &File, offset: u64, len: usize) -> io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let offset = libc::off64_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = libc::off64_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a plain system call on a file descriptor that `file` keeps open.
    let result = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
