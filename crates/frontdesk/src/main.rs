//! `frontdesk`: the SIP call router and IVR daemon for healthcare clinics.
//!
//! `main` stays thin: parse the command line, set up tracing, hand over to
//! the subcommand. Everything with behaviour lives in the modules below.
#![forbid(unsafe_code)]

mod app;
mod browser;
mod calls;
mod cli;
mod daemon;
mod demo;
mod http;
mod import;
mod leads;
mod private;
mod voicemail;
mod webhooks;

use clap::Parser;

/// mimalloc instead of the system allocator: per-call work allocates small
/// buffers on every worker thread (messages, headers, events), where glibc's
/// malloc and free took ~11 % of the daemon's CPU in a call-flow profile.
/// BENCHMARKS.md has the before and after.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing();
    cli.run()
}
