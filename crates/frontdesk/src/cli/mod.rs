//! The command line of DESIGN.md ("Command line").

mod certs;
mod check;
mod demo;
mod import;
mod run;
mod simulate;

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
    /// Serve: SIP, the IVR, routing and the admin HTTP API.
    Run(Box<run::RunArgs>),
    /// The daemon plus simulated agents and patients over real SIP on loopback.
    Demo(demo::DemoArgs),
    /// Validate a dialplan: exit 0 when valid, else each error as PATH:LINE:COLUMN: message.
    Check {
        /// The dialplan to check.
        path: PathBuf,
    },
    /// Make TLS certificates (`certs dev`: a self-signed pair in certs/).
    Certs {
        #[command(subcommand)]
        command: certs::CertsCommand,
    },
    /// Write a dialplan from another system's configuration (`import asterisk`).
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Walk a dialplan's IVR with no network (--number), or classify a lead (--lead): print
    /// each step and the routing decision.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["number", "lead"])))]
    Simulate {
        /// The dialed number (`+15550100`, or an alias such as `clinic`).
        #[arg(long)]
        number: Option<String>,
        /// A lead's message ("my knee hurts since Sunday"): its intent, branch, queue and
        /// agent order, as POST /api/leads would decide.
        #[arg(long)]
        lead: Option<String>,
        /// With --lead: the lead's postal code (picks the branch).
        #[arg(long, conflicts_with = "number")]
        postal: Option<String>,
        /// With --lead: the source it comes from (`[sources.<id>]`).
        #[arg(long, conflicts_with = "number")]
        source: Option<String>,
        /// When the call arrives: clinic local time (`2026-12-25T02:00`) unless it
        /// carries an offset (`2026-12-25T08:00Z`). Default: now.
        #[arg(long, conflicts_with = "lead")]
        at: Option<String>,
        /// Digits the caller presses, one per menu prompt; `.` presses nothing there.
        #[arg(long, default_value = "", conflicts_with = "lead")]
        digits: String,
        /// What the caller says at the first menu that takes speech ("heart doctor"):
        /// matched as the recogniser's words would be.
        #[arg(long, conflicts_with = "lead")]
        say: Option<String>,
        /// The caller's number (matched against the dialplan's directory).
        #[arg(long, default_value = "anonymous")]
        caller: String,
        /// The dialplan to walk.
        #[arg(long, default_value = "dialplans/clinic.toml")]
        dialplan: PathBuf,
    },
}

impl Cli {
    /// Runs the chosen subcommand and turns its outcome into the exit code.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Run(args) => run::run(*args),
            Command::Demo(args) => demo::demo(args),
            Command::Check { path } => check::check(&path),
            Command::Certs { command } => certs::certs(command),
            Command::Import { command } => import::import(command),
            Command::Simulate {
                number,
                lead,
                postal,
                source,
                at,
                digits,
                say,
                caller,
                dialplan,
            } => match (number, lead) {
                (Some(number), _) => simulate::simulate(
                    &dialplan,
                    &number,
                    at.as_deref(),
                    &digits,
                    say.as_deref(),
                    &caller,
                ),
                (None, Some(text)) => {
                    simulate::lead(&dialplan, &text, postal.as_deref(), source.as_deref())
                }
                // clap requires one of them (the `what` group).
                (None, None) => ExitCode::from(2),
            },
        }
    }
}

/// Runs `future` (the daemon, or the demo around it) on a multi-threaded
/// runtime and turns its end into the exit code: 0 after SIGTERM or SIGINT;
/// 1 when it cannot start or fails, with a dialplan's errors printed as
/// `PATH:LINE:COLUMN: message` lines. The runtime's threads run `worker_nice`
/// steps nicer than the SIP front end's (`daemon::front`).
pub(crate) fn serve<E: std::fmt::Display>(
    future: impl std::future::Future<Output = Result<(), E>>,
    daemon_error: impl Fn(&E) -> Option<&crate::daemon::DaemonError>,
    worker_nice: u8,
) -> ExitCode {
    // The main thread's priority, read here: a thread the runtime starts
    // from one of its own (a blocking thread) inherits that thread's
    // lowered priority, and must not be lowered twice.
    let base = crate::daemon::front::this_thread_priority();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || crate::daemon::front::lower_this_thread(base, worker_nice))
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Err(error) = runtime.block_on(future) else {
        return ExitCode::SUCCESS;
    };
    if let Some(crate::daemon::DaemonError::Dialplan { path, errors }) = daemon_error(&error) {
        for line in errors.to_lines() {
            eprintln!("{line}");
        }
        tracing::error!(
            "the dialplan {} has {} error(s); not starting",
            path.display(),
            errors.len()
        );
    } else {
        tracing::error!("{error}");
    }
    ExitCode::FAILURE
}

/// Logs go to stderr through `tracing`; `RUST_LOG` picks the levels (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal; never in files or pipes,
    // and never with NO_COLOR set.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}
