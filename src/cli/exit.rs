//! How a `raftlog` command ends, as an exit code scripts can trust:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the server said no (its error code and message are printed), or the command failed |
//! | 2 | usage or config error: nothing was sent |
//! | 3 | cannot connect, or the cluster is unavailable (503): worth retrying later |

use std::fmt;
use std::process::ExitCode;

use crate::config::ConfigError;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments (clap catches most before we run).
    Usage(String),
    /// A config that cannot be used.
    Config(ConfigError),
    /// The server answered with an error other than `unavailable`.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No connection, no answer in time, or a 503.
    Unavailable(String),
    /// Anything else: a node that failed, an answer we could not understand.
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Refused { .. } | CliError::Failed(_) => 1,
            CliError::Usage(_) | CliError::Config(_) => 2,
            CliError::Unavailable(_) => 3,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message)
            | CliError::Unavailable(message)
            | CliError::Failed(message) => {
                write!(f, "{message}")
            }
            CliError::Config(error) => write!(f, "{error}"),
            CliError::Refused {
                status,
                code,
                message,
            } => write!(f, "{code} ({status}): {message}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(error: ConfigError) -> Self {
        CliError::Config(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::Failed(format!("i/o error: {error}"))
    }
}
