//! The `raftlog` binary. Everything it does is in `raftlog::cli`, so that the library's
//! tests can run the same code.

fn main() -> std::process::ExitCode {
    raftlog::cli::main()
}
