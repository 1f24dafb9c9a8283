//! The SIP front end's own thread: the transport (reading and parsing
//! datagrams and streams) and the endpoint (transactions, admission
//! control) run on a single-threaded tokio runtime of their own, not
//! among the call, media and HTTP tasks of the main runtime.
//!
//! Why: on the shared runtime, under load, the two SIP tasks were two among
//! thousands of runnable call and media tasks and waited their turn like
//! the others, so new INVITEs sat in the socket buffer for hundreds of
//! milliseconds before admission control could even see them; their 503s
//! came late and their callers retransmitted (measured in BENCHMARKS.md,
//! issue 18). On a thread of its own, mostly idle, the front end is
//! scheduled as soon as a datagram arrives (the kernel favours a thread
//! that sleeps), reads and answers what it can answer alone at once, and
//! its sockets are registered with its own reactor, so their readiness is
//! noticed without waiting for a busy worker to poll the main one.

use std::future::Future;

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The front end's runtime; stops when dropped.
#[derive(Debug)]
pub struct SipFront {
    handle: Handle,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SipFront {
    /// Starts the thread and its runtime.
    pub fn start() -> std::io::Result<SipFront> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("sip-front")
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sip-front".into())
            .spawn(move || {
                runtime.block_on(stopped.cancelled());
                // Tasks still running (a connection's) end with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(SipFront {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// The runtime, to spawn on or to enter while starting the SIP services.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on the front end (e.g. binding its sockets, which then
    /// belong to its reactor).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for SipFront {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // The runtime's own thread; it ends at once after the cancel.
            let _ = thread.join();
        }
    }
}
