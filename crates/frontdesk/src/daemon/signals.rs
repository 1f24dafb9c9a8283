//! The signals the daemon acts on: SIGTERM and SIGINT stop it, SIGHUP
//! reloads the dialplan.

use std::fmt;
use std::io;

use tokio::signal::unix::{SignalKind, signal};

/// A signal the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: drain and exit 0.
    Terminate,
    /// SIGINT (Ctrl-C): the same as SIGTERM.
    Interrupt,
    /// SIGHUP: reload the dialplan.
    Hangup,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
        })
    }
}

/// The installed handlers. From [`Signals::install`] on, these signals no
/// longer kill the process: they queue here until read.
#[derive(Debug)]
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; needs a running tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        // `recv` yields `None` only if the signal driver is gone; then no
        // signal can come any more.
        tokio::select! {
            Some(()) = self.terminate.recv() => Signal::Terminate,
            Some(()) = self.interrupt.recv() => Signal::Interrupt,
            Some(()) = self.hangup.recv() => Signal::Hangup,
            else => std::future::pending().await,
        }
    }

    /// The next SIGTERM or SIGINT; SIGHUP is ignored (while draining).
    pub async fn next_stop(&mut self) -> Signal {
        loop {
            let signal = self.next().await;
            if signal != Signal::Hangup {
                return signal;
            }
        }
    }
}
