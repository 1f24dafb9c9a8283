//! `frontdesk`: the SIP call router and IVR daemon for healthcare clinics.
//!
//! `main` stays thin: parse the command line, set up tracing, hand over to
//! the subcommand. Everything with behaviour lives in the modules below.
#![forbid(unsafe_code)]

mod app;
mod calls;
mod cli;
mod daemon;
mod demo;
mod http;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::init_tracing();
    cli.run()
}
