//! The command line of DESIGN.md ("Command line").

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SIP call router and IVR for healthcare clinics.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a dialplan: exit 0 when valid, else each error as PATH:LINE:COLUMN: message.
    Check {
        /// The dialplan to check.
        path: PathBuf,
    },
}

impl Cli {
    /// Runs the chosen subcommand and turns its outcome into the exit code.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Check { path } => check::check(&path),
        }
    }
}

/// Logs go to stderr through `tracing`; `RUST_LOG` picks the levels (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
