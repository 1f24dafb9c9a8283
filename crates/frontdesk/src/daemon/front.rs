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
//!
//! A thread of its own is not enough when the two cores are full: the
//! front end then waits for the CPU among the runtime's workers, and a
//! refused caller's 503 came 30–60 ms late at the median (BENCHMARKS.md,
//! issue 18). So the bulk of the work, the main runtime's threads, runs a
//! little nicer than the front end ([`lower_this_thread`], `--worker-nice`):
//! the shedding path is scheduled ahead of the work it protects, the way a
//! NIC's interrupt is ahead of the application. Raising the front end's own
//! priority would need `CAP_SYS_NICE`; lowering the workers' needs nothing.

use std::future::Future;

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The calling thread's nice value (0 when it cannot be read).
pub fn this_thread_priority() -> i32 {
    rustix::process::getpriority_process(None).unwrap_or(0)
}

/// Lowers the calling thread's scheduling priority by `nice` steps (Linux
/// keeps a nice value per thread; `setpriority(2)`, "BUGS"), for the main
/// runtime's workers and blocking threads. The threads the daemon starts
/// from its main thread (this front end, the journal's writer and
/// checkpointer) keep the main thread's priority: the journal must keep up
/// with the calls it records.
/// 0 leaves the thread as it is. A failure is logged once per thread and
/// otherwise ignored: priority is an optimisation, not a requirement.
/// The thread is set to `base` (the main thread's priority) lowered by
/// `nice`, not its own lowered again: a blocking thread started from a
/// worker inherits the worker's priority.
pub fn lower_this_thread(base: i32, nice: u8) {
    if nice == 0 {
        return;
    }
    let lowered = rustix::process::setpriority_process(None, (base + i32::from(nice)).min(19));
    if let Err(error) = lowered {
        tracing::debug!("cannot lower a worker thread's priority: {error}");
    }
}

/// How many steps below the main thread the background runtime's thread
/// runs ([`OwnRuntime::background`]): below the call workers at the
/// default `--worker-nice` (5), so that work no caller waits for
/// (delivering CRM webhooks) is never ahead of a call's in the CPU's
/// queue. Nice lowers this thread's share of the CPU, not the length of
/// its runs: a call's thread woken while it runs still waits out its
/// slice (EEVDF; BENCHMARKS.md, issue 26, measured it and what delivering
/// 1,000 webhooks a second costs the calls).
pub const BACKGROUND_NICE: u8 = 10;

/// Puts the calling thread in the `SCHED_IDLE` class: its share of the CPU
/// is the least the kernel gives, and an ordinary thread woken while it
/// runs takes the CPU from it at once (`sched(7)`). Nice values do not do
/// that: on EEVDF a woken thread waits for the running one's slice to end
/// whatever their nice values (BENCHMARKS.md, issue 26). Not absolute
/// either: an ordinary thread that has run ahead of its share is not
/// eligible, and meanwhile the idle-class thread may run out the lag it
/// accumulated, up to a few milliseconds (measured there). Threads this
/// one starts inherit the class.
///
/// Wrapped from `thread-priority` (its `sched_setscheduler` binding) so
/// that no code of ours needs `unsafe`.
pub fn idle_this_thread() -> Result<(), String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
    .map_err(|error| format!("{error:?}"))
}

/// How an [`OwnRuntime`]'s thread is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    /// This many nice steps below the thread that starts it.
    Nice(u8),
    /// `SCHED_IDLE` ([`idle_this_thread`]).
    Idle,
}

/// A single-threaded runtime on a thread of its own; stops when dropped.
/// The SIP front end is one; the background work is another, and the
/// webhooks' sending a third.
#[derive(Debug)]
pub struct OwnRuntime {
    handle: Handle,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OwnRuntime {
    /// The SIP front end's: at the main thread's priority.
    pub fn sip_front() -> std::io::Result<OwnRuntime> {
        Self::start("sip-front", Priority::Nice(0))
    }

    /// The background work's: [`BACKGROUND_NICE`] steps below the main
    /// thread (its blocking threads inherit that).
    pub fn background() -> std::io::Result<OwnRuntime> {
        Self::start("background", Priority::Nice(BACKGROUND_NICE))
    }

    /// Work that may wait as long as the CPU is wanted by anything else
    /// (the webhooks' POSTs): `SCHED_IDLE`, so that a call's thread woken
    /// while it runs takes the CPU at once (when it is eligible; see
    /// [`idle_this_thread`]). It must hold nothing a call's thread or the
    /// journal's writer waits for (a lock, the journal's file), or that
    /// thread would wait on a starved holder. If the class cannot be set, the thread
    /// runs [`BACKGROUND_NICE`] steps below instead, and says so.
    pub fn idle(name: &'static str) -> std::io::Result<OwnRuntime> {
        Self::start(name, Priority::Idle)
    }

    /// Starts the thread `name` and its runtime at `priority`.
    fn start(name: &'static str, priority: Priority) -> std::io::Result<OwnRuntime> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name(name)
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let base = this_thread_priority();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                match priority {
                    Priority::Nice(nice) => lower_this_thread(base, nice),
                    Priority::Idle => {
                        if let Err(error) = idle_this_thread() {
                            tracing::warn!(thread = name, %error, "cannot run a thread SCHED_IDLE; lowering its nice value instead");
                            lower_this_thread(base, BACKGROUND_NICE);
                        }
                    }
                }
                runtime.block_on(stopped.cancelled());
                // Tasks still running (a connection's) end with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(OwnRuntime {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// The runtime, to spawn on or to enter while starting the SIP services.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on this runtime (e.g. binding the SIP sockets, which
    /// then belong to its reactor).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            // The runtime's own thread; it ends at once after the cancel.
            let _ = thread.join();
        }
    }
}
