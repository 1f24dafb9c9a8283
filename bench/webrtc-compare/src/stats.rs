//! What the server reports about itself, and the client's counters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts every heap allocation of the process (the server's alone: the
/// client is another process).
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The server's media packets and connected legs.
static SERVER_RX: AtomicU64 = AtomicU64::new(0);
static SERVER_TX: AtomicU64 = AtomicU64::new(0);
static SERVER_CONNECTED: AtomicU64 = AtomicU64::new(0);

pub fn server_received() {
    SERVER_RX.fetch_add(1, Ordering::Relaxed);
}
pub fn server_sent() {
    SERVER_TX.fetch_add(1, Ordering::Relaxed);
}
pub fn server_connected() {
    SERVER_CONNECTED.fetch_add(1, Ordering::Relaxed);
}

/// One `STATS` line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    /// User + system CPU time of the whole process.
    pub cpu_us: u64,
    pub allocs: u64,
    pub alloc_bytes: u64,
    pub rss_kib: u64,
    pub tasks: u64,
    pub threads: u64,
    pub rx: u64,
    pub tx: u64,
    pub connected: u64,
}

impl Snapshot {
    /// Taken inside the server's runtime.
    pub fn take() -> Snapshot {
        Snapshot {
            cpu_us: cpu_us(),
            allocs: ALLOCATIONS.load(Ordering::Relaxed),
            alloc_bytes: ALLOCATED_BYTES.load(Ordering::Relaxed),
            rss_kib: status_field("VmRSS:"),
            tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks() as u64,
            threads: status_field("Threads:"),
            rx: SERVER_RX.load(Ordering::Relaxed),
            tx: SERVER_TX.load(Ordering::Relaxed),
            connected: SERVER_CONNECTED.load(Ordering::Relaxed),
        }
    }

    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.cpu_us,
            self.allocs,
            self.alloc_bytes,
            self.rss_kib,
            self.tasks,
            self.threads,
            self.rx,
            self.tx,
            self.connected
        )
    }

    pub fn from_line(line: &str) -> Option<Snapshot> {
        let v: Vec<u64> = line
            .split(' ')
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        let [
            cpu_us,
            allocs,
            alloc_bytes,
            rss_kib,
            tasks,
            threads,
            rx,
            tx,
            connected,
        ] = v[..]
        else {
            return None;
        };
        Some(Snapshot {
            cpu_us,
            allocs,
            alloc_bytes,
            rss_kib,
            tasks,
            threads,
            rx,
            tx,
            connected,
        })
    }
}

fn cpu_us() -> u64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Pins the calling process (all its later threads too) to one core, when
/// the machine has it.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; we pass its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("could not pin to cpu {cpu}; running unpinned");
        }
    }
}

/// The client's counters (atomics: webrtc-rs wants `Send + Sync` handlers).
#[derive(Default)]
pub struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    connected: AtomicU64,
}

impl Counters {
    pub fn sent_one(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    pub fn received_one(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connected_one(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    pub fn connected(&self) -> u64 {
        self.connected.load(Ordering::Relaxed)
    }
}
