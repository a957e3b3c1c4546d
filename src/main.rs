//! The `raftlog` binary. Everything it does is in `raftlog::cli`, so that the library's
//! tests can run the same code.

/// mimalloc rather than glibc's malloc: the request path allocates small objects at a high
/// rate, and glibc's arena bookkeeping was the largest single cost in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    raftlog::cli::main()
}
