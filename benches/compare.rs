//! Three ways of driving the same stdio_bus kernel, measured side by side in one run.
//!
//! ```text
//! cargo bench --bench compare
//! BENCH_ROUNDS=8 BENCH_REQUESTS=10000 cargo bench --bench compare   # longer, steadier
//! ```
//!
//! The contenders, each talking to the same compiled echo worker (`stdiobus-echo-worker`,
//! a real process), through the same kernel archive, with the same configuration:
//!
//! 1. `raw sys`: the `stdiobus_embed::sys` calls, with a message callback that only counts
//!    and records the response id. No safe layer: the floor.
//! 2. `stdiobus-embed`: this crate's `Bus::send`, `Bus::poll` and `Consumer::read` of every
//!    event.
//! 3. `tokio native`: `stdiobus-backend-native` 1.1.1's `NativeBackend` under a tokio
//!    multi-thread runtime, driven as its documentation shows (`start`, `subscribe`,
//!    `send`, `recv`). It runs in a child process (this same executable, re-run with
//!    `--tokio-child`), one per round and workload, because its `stop` calls the kernel's
//!    `stop` and `destroy` with no step in between, which crashes the 1.1.1 archive. The
//!    child reports its figures before it calls `stop`; what `stop` then does is reported
//!    as it happened.
//!
//! The workloads: ping-pong round trips (one request in flight), pipelined throughput (64
//! requests in flight, one message per `send`), and round trips of one message of
//! 1 MiB - 1 byte (newline included); the kernel cuts a message longer than the room in
//! the worker's stdin pipe, and only this crate enlarges the pipes, so the other two are
//! expected to fail there, and the bench reports how much of the message the worker got.
//! Every round starts a fresh bus and worker for each contender and workload, warms it up,
//! measures, and shuts it down. Rounds interleave the contenders so that drift of a noisy
//! machine hits them alike: raw and crate always run back to back, taking turns to go
//! first, and tokio runs after them in one round and before them in the next pair.
//!
//! Allocations are counted for the whole process, Rust and C alike: `build.rs` links
//! bench binaries with `--wrap` for malloc, calloc, realloc, strdup, strndup,
//! posix_memalign and aligned_alloc, and the `__wrap_*` functions below count every call
//! before forwarding it. Calls that glibc makes to itself internally are not seen. The CPU
//! column is the host process's user + system time (all threads, not the worker's).
//!
//! Placement matters more than anything else on a small virtual machine: a round trip
//! between two processes on the same CPU took about 4.5 µs here, across two CPUs 40 to
//! 75 µs (waking an idle virtual CPU), and the scheduler picks one or the other per
//! worker. So by default (`BENCH_PIN=same`) the host, every thread it starts and the
//! workers all run on the first allowed CPU; `BENCH_PIN=split` puts the workers on the
//! second CPU, `BENCH_PIN=none` leaves placement to the scheduler.
//!
//! Settings come from the environment (defaults in brackets): `BENCH_ROUNDS` [4],
//! `BENCH_REQUESTS` ping-pong round trips per contender and round [2500],
//! `BENCH_PIPELINED` pipelined messages per contender and round [30000], `BENCH_LARGE`
//! 1 MiB round trips per contender and round [10], `BENCH_WARMUP` small round trips before
//! each measurement [200], `BENCH_WORKERS` worker processes [1], `BENCH_LARGE_TIMEOUT_MS`
//! how long to wait for a 1 MiB reply [1000], `BENCH_PIN` [same], `BENCH_WORKLOADS`
//! [ping-pong,pipelined,large]. The bench prints the command line that repeats a run.
//!
//! Run without `--bench` (as `cargo test --benches` does), it makes one tiny round as a
//! smoke test.

use std::collections::BTreeSet;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::ptr;
use std::time::{Duration, Instant};

use stdiobus_embed::{
    Bus, ConfigBuffer, Consumer, Event, EventMask, EventRing, Limits, Options, Pool, Running,
    WorkerEvent, sys,
};

/// The worker every contender talks to.
const WORKER: &str = env!("CARGO_BIN_EXE_stdiobus-echo-worker");
/// Requests in flight in the pipelined workload.
const WINDOW: usize = 64;
/// The large message, newline included: 1 MiB - 1 byte. The bus enlarges each worker's
/// stdin pipe to 1 MiB, so it goes in one piece.
const LARGE_WITH_NEWLINE: usize = (1 << 20) - 1;
/// The large message as handed to `send` (the kernel appends the newline).
const LARGE_LEN: usize = LARGE_WITH_NEWLINE - 1;
/// The kernel drops worker lines longer than `max_input_buffer` (1 MiB by default); the
/// echo of a 1 MiB request is a little longer, so every contender gets 4 MiB.
const MAX_INPUT_BUFFER: u32 = 4 << 20;
/// How long any small request may take before the run counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest single kernel step while waiting; a step returns as soon as a worker writes.
const STEP_MS: c_int = 100;
/// What every response of the echo worker starts with, up to the id.
const RESPONSE_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","id":"#;

// ---------------------------------------------------------------------------------------
// Allocation counting: every malloc-family call of the process, Rust and C.
// ---------------------------------------------------------------------------------------

#[cfg(target_os = "linux")]
mod alloc_count {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::atomic::{AtomicU64, Ordering};

    static CALLS: AtomicU64 = AtomicU64::new(0);

    /// Allocation calls so far.
    pub fn calls() -> u64 {
        CALLS.load(Ordering::Relaxed)
    }

    fn count() {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }

    // Resolved by the linker to the C library's functions (`--wrap`, see build.rs).
    unsafe extern "C" {
        fn __real_malloc(size: usize) -> *mut c_void;
        fn __real_calloc(count: usize, size: usize) -> *mut c_void;
        fn __real_realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
        fn __real_strdup(text: *const c_char) -> *mut c_char;
        fn __real_strndup(text: *const c_char, max: usize) -> *mut c_char;
        fn __real_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
        fn __real_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    }

    /// # Safety
    /// As `malloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_malloc(size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_malloc(size) }
    }

    /// # Safety
    /// As `calloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_calloc(n: usize, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_calloc(n, size) }
    }

    /// # Safety
    /// As `realloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_realloc(pointer, size) }
    }

    /// # Safety
    /// As `strdup`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_strdup(text: *const c_char) -> *mut c_char {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_strdup(text) }
    }

    /// # Safety
    /// As `strndup`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_strndup(text: *const c_char, max: usize) -> *mut c_char {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_strndup(text, max) }
    }

    /// # Safety
    /// As `posix_memalign`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_posix_memalign(
        out: *mut *mut c_void,
        align: usize,
        size: usize,
    ) -> c_int {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_posix_memalign(out, align, size) }
    }

    /// # Safety
    /// As `aligned_alloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_aligned_alloc(align: usize, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_aligned_alloc(align, size) }
    }
}

#[cfg(not(target_os = "linux"))]
mod alloc_count {
    /// Link-time wrapping is set up for Linux only.
    pub fn calls() -> u64 {
        0
    }
}

/// Allocation calls so far, if counting works in this binary (checked once at startup).
fn alloc_calls(counting: bool) -> Option<u64> {
    counting.then(alloc_count::calls)
}

/// Whether the wrapped allocator sees a Rust allocation of this process.
fn counting_works() -> bool {
    let before = alloc_count::calls();
    drop(std::hint::black_box(Box::new(7u64)));
    alloc_count::calls() > before
}

// ---------------------------------------------------------------------------------------
// CPU placement.
// ---------------------------------------------------------------------------------------

/// The first two CPUs this process may run on (the second is the first on a 1-CPU box).
#[cfg(target_os = "linux")]
fn two_cpus() -> (usize, usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid out-parameter of the size given.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| rc == 0 && unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    let first = allowed.first().copied().unwrap_or(0);
    (first, allowed.get(1).copied().unwrap_or(first))
}

/// Pins `pid` (0: the calling thread, and what it creates afterwards) to `cpu`.
#[cfg(target_os = "linux")]
fn pin(pid: i32, cpu: usize) {
    // SAFETY: as in `two_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from the allowed set, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: a valid set of the size given; failure leaves the placement as it was.
    unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
}

#[cfg(not(target_os = "linux"))]
fn two_cpus() -> (usize, usize) {
    (0, 0)
}

#[cfg(not(target_os = "linux"))]
fn pin(_pid: i32, _cpu: usize) {}

/// Places the calling thread, before it starts any bus, runtime or child.
fn place_host(s: &Settings) {
    if s.pin != Pin::None {
        pin(0, s.cpus.0);
    }
}

/// Places freshly started workers (in `Same` they inherited the host's CPU already).
fn place_workers(s: &Settings, pids: &[i32]) {
    if s.pin == Pin::Split {
        for &pid in pids {
            pin(pid, s.cpus.1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Settings and shared pieces.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Settings {
    rounds: usize,
    requests: usize,
    pipelined: usize,
    large: usize,
    warmup: usize,
    workers: u32,
    large_timeout: Duration,
    pin: Pin,
    /// The workloads to run (`BENCH_WORKLOADS`, comma-separated names; default all).
    workloads: Vec<Workload>,
    /// Host CPU and worker CPU for `pin`, found before anything is pinned.
    cpus: (usize, usize),
}

/// Where the host and the workers run (`BENCH_PIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pin {
    /// Wherever the scheduler puts them.
    None,
    /// Host (every thread) and workers all on the first allowed CPU.
    Same,
    /// Host (every thread) on the first allowed CPU, workers on the second.
    Split,
}

impl Pin {
    fn name(self) -> &'static str {
        match self {
            Pin::None => "none",
            Pin::Same => "same",
            Pin::Split => "split",
        }
    }
}

impl Settings {
    fn from_env(smoke: bool) -> Result<Self, String> {
        let read = |name: &str, default: u64, smoke_default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse()
                    .map_err(|e| format!("{name}={text}: {e}")),
                Err(_) => Ok(if smoke { smoke_default } else { default }),
            }
        };
        let settings = Settings {
            rounds: read("BENCH_ROUNDS", 4, 1)? as usize,
            requests: read("BENCH_REQUESTS", 2500, 20)? as usize,
            pipelined: read("BENCH_PIPELINED", 30_000, 200)? as usize,
            large: read("BENCH_LARGE", 10, 1)? as usize,
            warmup: read("BENCH_WARMUP", 200, 5)? as usize,
            workers: read("BENCH_WORKERS", 1, 1)? as u32,
            large_timeout: Duration::from_millis(read("BENCH_LARGE_TIMEOUT_MS", 1000, 500)?),
            pin: match std::env::var("BENCH_PIN").as_deref() {
                Err(_) | Ok("same") => Pin::Same,
                Ok("none") => Pin::None,
                Ok("split") => Pin::Split,
                Ok(other) => return Err(format!("BENCH_PIN={other}: use same, split or none")),
            },
            workloads: match std::env::var("BENCH_WORKLOADS") {
                Err(_) => WORKLOADS.to_vec(),
                Ok(list) => list
                    .split(',')
                    .map(|name| {
                        Workload::from_name(name.trim()).ok_or(format!(
                            "BENCH_WORKLOADS: unknown `{name}` (ping-pong, pipelined, large)"
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            },
            // A tokio child inherits the pinned host CPU; its parent passes the pair on.
            cpus: match std::env::var("BENCH_CHILD_CPUS") {
                Ok(pair) => pair
                    .split_once(',')
                    .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)))
                    .ok_or(format!("BENCH_CHILD_CPUS={pair}"))?,
                Err(_) => two_cpus(),
            },
        };
        if settings.rounds == 0
            || settings.requests == 0
            || settings.pipelined == 0
            || settings.large == 0
            || settings.workers == 0
        {
            return Err(
                "BENCH_ROUNDS, _REQUESTS, _PIPELINED, _LARGE, _WORKERS must be >= 1".into(),
            );
        }
        Ok(settings)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BENCH_ROUNDS", self.rounds.to_string()),
            ("BENCH_REQUESTS", self.requests.to_string()),
            ("BENCH_PIPELINED", self.pipelined.to_string()),
            ("BENCH_LARGE", self.large.to_string()),
            ("BENCH_WARMUP", self.warmup.to_string()),
            ("BENCH_WORKERS", self.workers.to_string()),
            (
                "BENCH_LARGE_TIMEOUT_MS",
                self.large_timeout.as_millis().to_string(),
            ),
            ("BENCH_PIN", self.pin.name().to_string()),
            (
                "BENCH_WORKLOADS",
                self.workloads
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }

    fn command_line(&self) -> String {
        let mut line = String::new();
        for (name, value) in self.env() {
            let _ = write!(line, "{name}={value} ");
        }
        line + "cargo bench --bench compare"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    PingPong,
    Pipelined,
    Large,
}

const WORKLOADS: [Workload; 3] = [Workload::PingPong, Workload::Pipelined, Workload::Large];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PingPong => "ping-pong",
            Workload::Pipelined => "pipelined",
            Workload::Large => "large",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        WORKLOADS.into_iter().find(|w| w.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Raw,
    Crate,
    Tokio,
}

const CONTENDERS: [Contender; 3] = [Contender::Raw, Contender::Crate, Contender::Tokio];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Raw => "raw sys",
            Contender::Crate => "stdiobus-embed",
            Contender::Tokio => "tokio native 1.1.1",
        }
    }
}

/// The requests, built before anything is timed. Ids are plain numbers, so a response's
/// id is read without allocating.
struct Messages {
    warmup: Vec<Vec<u8>>,
    ping_pong: Vec<Vec<u8>>,
    pipelined: Vec<Vec<u8>>,
    /// First id of `ping_pong`.
    ping_pong_base: u64,
    /// Warm-up and measured large messages, ids from `large_base`.
    large: Vec<Vec<u8>>,
    large_base: u64,
}

impl Messages {
    fn new(s: &Settings) -> Self {
        let small = |id: u64| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":{{"n":{id}}}}}"#)
                .into_bytes()
        };
        let ping_pong_base = 1_000_000;
        let pipelined_base = 100_000_000;
        let large_base = 2_000_000_000;
        let large_count = s.large + large_warmup(s);
        Messages {
            warmup: (0..s.warmup as u64).map(small).collect(),
            ping_pong: (0..s.requests as u64)
                .map(|i| small(ping_pong_base + i))
                .collect(),
            pipelined: (0..s.pipelined as u64)
                .map(|i| small(pipelined_base + i))
                .collect(),
            ping_pong_base,
            large: (0..large_count as u64)
                .map(|i| large_message(large_base + i))
                .collect(),
            large_base,
        }
    }
}

/// Unmeasured large round trips before the measured ones.
fn large_warmup(s: &Settings) -> usize {
    s.warmup.clamp(1, 2)
}

/// `{"jsonrpc":"2.0","id":ID,"method":"echo","params":"xxx…"}`, `LARGE_LEN` bytes.
fn large_message(id: u64) -> Vec<u8> {
    let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":""#);
    let tail = b"\"}";
    let mut message = Vec::with_capacity(LARGE_LEN);
    message.extend_from_slice(head.as_bytes());
    message.resize(LARGE_LEN - tail.len(), b'x');
    message.extend_from_slice(tail);
    assert_eq!(message.len(), LARGE_LEN);
    message
}

/// The id of an echo worker response: `{"jsonrpc":"2.0","id":ID,...`.
fn response_id(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(RESPONSE_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        rest[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

/// The same configuration as JSON, for the raw contender.
fn config_json(s: &Settings) -> String {
    format!(
        r#"{{"pools":[{{"id":"echo","command":"{WORKER}","args":[],"instances":{}}}],"limits":{{"max_input_buffer":{MAX_INPUT_BUFFER}}}}}"#,
        s.workers
    )
}

/// What one contender did in one round of one workload.
#[derive(Debug, Default)]
struct Outcome {
    /// Round-trip times (ping-pong, large).
    samples_ns: Vec<u64>,
    /// Messages measured and the time they took (pipelined; also set for the others).
    messages: u64,
    elapsed_ns: u64,
    /// Allocation calls during the measured part, when counting works.
    allocs: Option<u64>,
    /// CPU time of the host process (all its threads, user and system) while measuring.
    cpu_ns: u64,
    failure: Option<String>,
    /// Tokio only: what happened at `stop`.
    shutdown: Option<String>,
}

impl Outcome {
    fn failed(failure: String) -> Self {
        Outcome {
            failure: Some(failure),
            ..Outcome::default()
        }
    }
}

/// CPU time this process has used so far, all threads, user and system.
fn cpu_ns() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Every pid that is a child of some thread of this process.
fn children() -> BTreeSet<i32> {
    let mut pids = BTreeSet::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Bytes the given processes have read so far (`rchar` in `/proc/PID/io`); after startup
/// an echo worker reads nothing but its stdin.
fn bytes_read(pids: &[i32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        let line = text.lines().find(|l| l.starts_with("rchar:"))?;
        total += line["rchar:".len()..].trim().parse::<u64>().ok()?;
    }
    Some(total)
}

/// Why a large round trip got no reply, with what the worker actually read.
fn truncation_report(pids: &[i32], read_before: Option<u64>, timeout: Duration) -> String {
    match (read_before, bytes_read(pids)) {
        (Some(before), Some(after)) => format!(
            "failed: truncated (worker read {} of {LARGE_WITH_NEWLINE} bytes; no reply in {} ms)",
            after - before,
            timeout.as_millis()
        ),
        _ => format!("failed: no reply in {} ms", timeout.as_millis()),
    }
}

// ---------------------------------------------------------------------------------------
// Contender 1: raw `sys` calls.
// ---------------------------------------------------------------------------------------

mod raw {
    use super::*;
    use std::cell::Cell;

    /// What the callbacks record. Only the message callback matters on the hot path.
    #[derive(Default)]
    pub struct Counts {
        pub messages: Cell<u64>,
        pub last_id: Cell<u64>,
        pub errors: Cell<u64>,
        pub last_error: Cell<c_int>,
        pub stopped: Cell<usize>,
    }

    unsafe extern "C" fn on_message(
        _bus: *mut sys::stdio_bus_t,
        msg: *const c_char,
        len: usize,
        user: *mut c_void,
    ) {
        // SAFETY: `user` is the `Counts` of the live `RawBus` (see `start`).
        let counts = unsafe { &*user.cast::<Counts>() };
        // SAFETY: the kernel passes `len` readable bytes.
        let line = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
        counts.messages.set(counts.messages.get() + 1);
        counts.last_id.set(response_id(line).unwrap_or(u64::MAX));
    }

    unsafe extern "C" fn on_error(
        _bus: *mut sys::stdio_bus_t,
        code: c_int,
        _text: *const c_char,
        user: *mut c_void,
    ) {
        // SAFETY: as for `on_message`.
        let counts = unsafe { &*user.cast::<Counts>() };
        counts.errors.set(counts.errors.get() + 1);
        counts.last_error.set(code);
    }

    unsafe extern "C" fn on_log(
        _bus: *mut sys::stdio_bus_t,
        _level: c_int,
        _text: *const c_char,
        _user: *mut c_void,
    ) {
        // Without a log callback the kernel prints every line to stderr.
    }

    unsafe extern "C" fn on_worker(
        _bus: *mut sys::stdio_bus_t,
        _id: c_int,
        event: *const c_char,
        user: *mut c_void,
    ) {
        // SAFETY: as for `on_message`; `event` is a NUL-terminated word.
        let (counts, word) = unsafe { (&*user.cast::<Counts>(), std::ffi::CStr::from_ptr(event)) };
        if word.to_bytes() == b"stopped" {
            counts.stopped.set(counts.stopped.get() + 1);
        }
    }

    /// One kernel instance driven by hand.
    pub struct RawBus {
        bus: *mut sys::stdio_bus_t,
        pub counts: Box<Counts>,
        pub pids: Vec<i32>,
        _options: Box<sys::stdio_bus_options_t>,
        _json: CString,
    }

    impl RawBus {
        pub fn start(json: &str) -> Result<Self, String> {
            let json = CString::new(json).map_err(|e| e.to_string())?;
            let counts = Box::<Counts>::default();
            let options = Box::new(sys::stdio_bus_options_t {
                config_path: ptr::null(),
                config_json: json.as_ptr(),
                listener: sys::stdio_bus_listener_config_t {
                    mode: sys::STDIO_BUS_LISTEN_NONE,
                    tcp_host: ptr::null(),
                    tcp_port: 0,
                    unix_path: ptr::null(),
                },
                on_message: Some(on_message),
                on_error: Some(on_error),
                on_log: Some(on_log),
                on_worker: Some(on_worker),
                on_client_connect: None,
                on_client_disconnect: None,
                user_data: ptr::from_ref::<Counts>(&counts).cast_mut().cast(),
                log_level: sys::STDIO_BUS_LOG_ERROR,
            });
            let before = children();
            // SAFETY: the options and every string they point to outlive the instance.
            let bus = unsafe { sys::stdio_bus_create(&*options) };
            if bus.is_null() {
                return Err("stdio_bus_create returned NULL".into());
            }
            // SAFETY: a live, created instance.
            let rc = unsafe { sys::stdio_bus_start(bus) };
            let pids = children().difference(&before).copied().collect();
            if rc < 0 {
                return Err(format!("stdio_bus_start: {rc}"));
            }
            Ok(RawBus {
                bus,
                counts,
                pids,
                _options: options,
                _json: json,
            })
        }

        #[inline]
        pub fn ingest(&mut self, message: &[u8]) -> Result<(), String> {
            // SAFETY: a live instance; the kernel reads `len` bytes during the call.
            let rc =
                unsafe { sys::stdio_bus_ingest(self.bus, message.as_ptr().cast(), message.len()) };
            if rc < 0 {
                return Err(format!("stdio_bus_ingest: {rc}"));
            }
            Ok(())
        }

        #[inline]
        pub fn step(&mut self, timeout_ms: c_int) -> Result<(), String> {
            // SAFETY: a live instance; callbacks reach `counts`, which outlives it.
            let rc = unsafe { sys::stdio_bus_step(self.bus, timeout_ms) };
            if rc < 0 {
                return Err(format!("stdio_bus_step: {rc}"));
            }
            if self.counts.errors.get() > 0 {
                return Err(format!(
                    "error callback: code {}",
                    self.counts.last_error.get()
                ));
            }
            Ok(())
        }

        /// Shuts down the way the 1.1.1 archive survives: SIGTERM to the workers, step
        /// until the kernel saw every one stop, then `stop`, step to STOPPED, `destroy`.
        /// Returns whether the instance could be destroyed (it is leaked otherwise).
        pub fn shutdown(self) -> bool {
            for &pid in &self.pids {
                // SAFETY: our unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.counts.stopped.get() < self.pids.len() && Instant::now() < deadline {
                // SAFETY: a live instance.
                unsafe { sys::stdio_bus_step(self.bus, 10) };
            }
            // SAFETY: a live instance.
            unsafe { sys::stdio_bus_stop(self.bus, 0) };
            // SAFETY: a live instance.
            while unsafe { sys::stdio_bus_get_state(self.bus) } != sys::STDIO_BUS_STATE_STOPPED
                && Instant::now() < deadline
            {
                // SAFETY: a live instance.
                unsafe { sys::stdio_bus_step(self.bus, 10) };
            }
            // SAFETY: a live instance.
            let stopped =
                unsafe { sys::stdio_bus_get_state(self.bus) } == sys::STDIO_BUS_STATE_STOPPED;
            let safe = stopped && self.counts.stopped.get() >= self.pids.len();
            if safe {
                // SAFETY: STOPPED, every worker connection closed; never used again.
                unsafe { sys::stdio_bus_destroy(self.bus) };
            } else {
                // Leaked with its counts: destroying it could crash the archive.
                std::mem::forget(self.counts);
                std::mem::forget(self._options);
                std::mem::forget(self._json);
            }
            for &pid in &self.pids {
                reap(pid);
            }
            safe
        }
    }
}

/// Waits up to two seconds for child `pid`, then kills and collects it.
fn reap(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc != 0 {
            return; // collected, or not ours (any more)
        }
        if Instant::now() >= deadline {
            // SAFETY: still our unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn raw_round(workload: Workload, s: &Settings, m: &Messages, counting: bool) -> Outcome {
    let mut bus = match raw::RawBus::start(&config_json(s)) {
        Ok(bus) => bus,
        Err(e) => return Outcome::failed(format!("failed: start: {e}")),
    };
    place_workers(s, &bus.pids);
    let mut outcome = match raw_measure(&mut bus, workload, s, m, counting) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::failed(e),
    };
    if !bus.shutdown() {
        outcome.shutdown = Some("raw instance leaked: workers did not stop".into());
    }
    outcome
}

fn raw_measure(
    bus: &mut raw::RawBus,
    workload: Workload,
    s: &Settings,
    m: &Messages,
    counting: bool,
) -> Result<Outcome, String> {
    // One round trip: send, step until the message callback has counted the reply.
    fn round_trip(
        bus: &mut raw::RawBus,
        message: &[u8],
        id: u64,
        timeout: Duration,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let target = bus.counts.messages.get() + 1;
        bus.ingest(message)?;
        while bus.counts.messages.get() < target {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            bus.step(STEP_MS)?;
        }
        let got = bus.counts.last_id.get();
        if got != id {
            return Err(format!("failed: sent request {id}, got reply {got}"));
        }
        Ok(true)
    }
    let mut outcome = Outcome::default();
    // Small round trips first for every workload: the worker is up and settled before
    // anything is measured (and before its read counter is sampled).
    for (id, message) in (0..).zip(&m.warmup) {
        if !round_trip(bus, message, id, RESPONSE_TIMEOUT)? {
            return Err(format!("failed: no reply to warm-up request {id}"));
        }
    }
    // Room for every sample before counting starts.
    outcome
        .samples_ns
        .reserve(m.ping_pong.len().max(m.large.len()));
    let allocs_before = alloc_calls(counting);
    let cpu_before = cpu_ns();
    let started = Instant::now();
    match workload {
        Workload::PingPong => {
            for (id, message) in (m.ping_pong_base..).zip(&m.ping_pong) {
                let t = Instant::now();
                if !round_trip(bus, message, id, RESPONSE_TIMEOUT)? {
                    return Err(format!("failed: no reply to request {id}"));
                }
                outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
            }
            outcome.messages = m.ping_pong.len() as u64;
        }
        Workload::Pipelined => {
            let total = m.pipelined.len();
            let base = bus.counts.messages.get();
            let (mut sent, mut received) = (0usize, 0usize);
            let deadline = Instant::now() + RESPONSE_TIMEOUT * 10;
            while received < total {
                while sent < total && sent - received < WINDOW {
                    bus.ingest(&m.pipelined[sent])?;
                    sent += 1;
                }
                bus.step(STEP_MS)?;
                received = (bus.counts.messages.get() - base) as usize;
                if Instant::now() >= deadline {
                    return Err(format!("failed: {received} of {total} replies"));
                }
            }
            outcome.messages = total as u64;
        }
        Workload::Large => {
            let warm = large_warmup(s);
            let (mut large_allocs, mut large_cpu) = (Some(0u64), 0u64);
            for (i, (id, message)) in (m.large_base..).zip(&m.large).enumerate() {
                let read_before = bytes_read(&bus.pids);
                let allocs_at = alloc_calls(counting);
                let cpu_at = cpu_ns();
                let t = Instant::now();
                if !round_trip(bus, message, id, s.large_timeout)? {
                    return Err(truncation_report(&bus.pids, read_before, s.large_timeout));
                }
                if i >= warm {
                    outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
                    // Only the round trip itself: reading the worker's counter allocates.
                    large_cpu += cpu_ns() - cpu_at;
                    large_allocs = large_allocs
                        .zip(allocs_at)
                        .and_then(|(sum, at)| Some(sum + alloc_calls(counting)? - at));
                }
            }
            outcome.messages = outcome.samples_ns.len() as u64;
            outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
            outcome.cpu_ns = large_cpu;
            outcome.allocs = large_allocs;
            return Ok(outcome);
        }
    }
    outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
    outcome.cpu_ns = cpu_ns() - cpu_before;
    outcome.allocs = allocs_before.and_then(|b| Some(alloc_calls(counting)? - b));
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------
// Contender 2: this crate.
// ---------------------------------------------------------------------------------------

fn crate_round(workload: Workload, s: &Settings, m: &Messages, counting: bool) -> Outcome {
    // 256-byte slots hold a small reply each; the large workload needs room for 1 MiB.
    let result = match workload {
        Workload::Large => crate_run::<512, 8192>(workload, s, m, counting),
        _ => crate_run::<1024, 256>(workload, s, m, counting),
    };
    result.unwrap_or_else(Outcome::failed)
}

fn crate_run<const SLOTS: usize, const SLOT_SIZE: usize>(
    workload: Workload,
    s: &Settings,
    m: &Messages,
    counting: bool,
) -> Result<Outcome, String> {
    let ring = EventRing::<SLOTS, SLOT_SIZE>::boxed();
    let (producer, mut events) = ring.split().map_err(|e| e.to_string())?;
    let mut json = ConfigBuffer::<4096>::new();
    let limits = Limits {
        max_input_buffer: Some(MAX_INPUT_BUFFER),
        ..Limits::new()
    };
    let config = json
        .write(&[Pool::new("echo", WORKER).instances(s.workers)], &limits)
        .map_err(|e| e.to_string())?;
    let options = Options::new().events(EventMask::ALL - EventMask::LOG);
    let bus = Bus::create(config, options, producer).map_err(|f| f.error.to_string())?;
    let before = children();
    let mut bus = bus.start().map_err(|f| f.error.to_string())?;
    let pids: Vec<i32> = children().difference(&before).copied().collect();
    place_workers(s, &pids);
    let result = crate_measure(&mut bus, &mut events, &pids, workload, s, m, counting);
    if let Err(f) = bus.stop(Duration::from_secs(1)) {
        return Err(format!("failed: stop: {}", f.error));
    }
    result
}

/// Polls once, then reads every event in the ring: counts replies, remembers the last id.
fn crate_poll(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    replies: &mut u64,
    last_id: &mut u64,
) -> Result<(), String> {
    bus.poll(Duration::from_millis(STEP_MS as u64))
        .map_err(|e| format!("failed: poll: {e}"))?;
    while let Some(event) = events.read() {
        match event.event() {
            Event::Message(line) => {
                *replies += 1;
                *last_id = response_id(line.as_bytes()).unwrap_or(u64::MAX);
            }
            Event::Worker {
                event: WorkerEvent::Started,
                ..
            } => {}
            other => return Err(format!("failed: unexpected event {other:?}")),
        }
    }
    Ok(())
}

fn crate_measure(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    pids: &[i32],
    workload: Workload,
    s: &Settings,
    m: &Messages,
    counting: bool,
) -> Result<Outcome, String> {
    let (mut replies, mut last_id) = (0u64, 0u64);
    let mut round_trip = |bus: &mut Bus<'_, Running>,
                          events: &mut Consumer<'_>,
                          message: &[u8],
                          id: u64,
                          timeout: Duration|
     -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let target = replies + 1;
        bus.send(message)
            .map_err(|e| format!("failed: send {id}: {e}"))?;
        while replies < target {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            crate_poll(bus, events, &mut replies, &mut last_id)?;
        }
        if last_id != id {
            return Err(format!("failed: sent request {id}, got reply {last_id}"));
        }
        Ok(true)
    };
    let mut outcome = Outcome::default();
    for (id, message) in (0..).zip(&m.warmup) {
        if !round_trip(bus, events, message, id, RESPONSE_TIMEOUT)? {
            return Err(format!("failed: no reply to warm-up request {id}"));
        }
    }
    // Room for every sample before counting starts.
    outcome
        .samples_ns
        .reserve(m.ping_pong.len().max(m.large.len()));
    let allocs_before = alloc_calls(counting);
    let cpu_before = cpu_ns();
    let started = Instant::now();
    match workload {
        Workload::PingPong => {
            for (id, message) in (m.ping_pong_base..).zip(&m.ping_pong) {
                let t = Instant::now();
                if !round_trip(bus, events, message, id, RESPONSE_TIMEOUT)? {
                    return Err(format!("failed: no reply to request {id}"));
                }
                outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
            }
            outcome.messages = m.ping_pong.len() as u64;
        }
        Workload::Pipelined => {
            let total = m.pipelined.len();
            let (mut sent, mut received, mut last) = (0usize, 0u64, 0u64);
            let deadline = Instant::now() + RESPONSE_TIMEOUT * 10;
            while (received as usize) < total {
                while sent < total && sent - (received as usize) < WINDOW {
                    bus.send(&m.pipelined[sent])
                        .map_err(|e| format!("failed: send: {e}"))?;
                    sent += 1;
                }
                crate_poll(bus, events, &mut received, &mut last)?;
                if Instant::now() >= deadline {
                    return Err(format!("failed: {received} of {total} replies"));
                }
            }
            outcome.messages = total as u64;
        }
        Workload::Large => {
            let warm = large_warmup(s);
            let (mut large_allocs, mut large_cpu) = (Some(0u64), 0u64);
            for (i, (id, message)) in (m.large_base..).zip(&m.large).enumerate() {
                let read_before = bytes_read(pids);
                let allocs_at = alloc_calls(counting);
                let cpu_at = cpu_ns();
                let t = Instant::now();
                if !round_trip(bus, events, message, id, s.large_timeout)? {
                    return Err(truncation_report(pids, read_before, s.large_timeout));
                }
                if i >= warm {
                    outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
                    // Only the round trip itself: reading the worker's counter allocates.
                    large_cpu += cpu_ns() - cpu_at;
                    large_allocs = large_allocs
                        .zip(allocs_at)
                        .and_then(|(sum, at)| Some(sum + alloc_calls(counting)? - at));
                }
            }
            outcome.messages = outcome.samples_ns.len() as u64;
            outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
            outcome.cpu_ns = large_cpu;
            outcome.allocs = large_allocs;
            return Ok(outcome);
        }
    }
    outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
    outcome.cpu_ns = cpu_ns() - cpu_before;
    outcome.allocs = allocs_before.and_then(|b| Some(alloc_calls(counting)? - b));
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------
// Contender 3: stdiobus-backend-native 1.1.1 under tokio, in a child process.
// ---------------------------------------------------------------------------------------

/// Parent side: runs one child and reads back what it reports.
fn tokio_round(workload: Workload, s: &Settings) -> Outcome {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Outcome::failed(format!("failed: current_exe: {e}")),
    };
    let output = Command::new(exe)
        .args(["--tokio-child", workload.name()])
        .envs(s.env())
        .env("BENCH_CHILD_CPUS", format!("{},{}", s.cpus.0, s.cpus.1))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => return Outcome::failed(format!("failed: spawn: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut outcome = Outcome::default();
    let mut reported = false;
    let mut stop_returned = None;
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "OUTCOME" => {
                reported = true;
                let mut fields = rest.split(' ');
                outcome.messages = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
                outcome.elapsed_ns = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
                outcome.allocs = fields.next().and_then(|f| f.parse().ok());
                outcome.cpu_ns = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            }
            "SAMPLES" => {
                outcome.samples_ns = rest.split(',').filter_map(|f| f.parse().ok()).collect();
            }
            "FAILURE" => outcome.failure = Some(rest.to_string()),
            "STOP" => stop_returned = Some(rest.to_string()),
            _ => {}
        }
    }
    let status = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(11)) => "killed by SIGSEGV".to_string(),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    };
    if !reported {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        outcome.failure = Some(format!("failed: child {status} before reporting ({last})"));
    }
    outcome.shutdown = Some(match stop_returned {
        // "Ok after 1.2 ms": the timing is left out so that outcomes can be grouped.
        Some(result) => format!(
            "`stop` returned {}, then the child ended ({status})",
            result.split(" after ").next().unwrap_or(&result)
        ),
        None if reported => format!("child {status} inside `stop`"),
        None => format!("child {status}"),
    });
    outcome
}

/// The requests as `&str`, which is what `NativeBackend::send` takes.
struct TokioMessages {
    warmup: Vec<String>,
    ping_pong: Vec<String>,
    pipelined: Vec<String>,
    large: Vec<String>,
    ping_pong_base: u64,
    large_base: u64,
}

impl TokioMessages {
    fn new(s: &Settings) -> Self {
        let m = Messages::new(s);
        let strings = |messages: Vec<Vec<u8>>| -> Vec<String> {
            messages
                .into_iter()
                .map(|m| String::from_utf8(m).expect("ASCII"))
                .collect()
        };
        TokioMessages {
            warmup: strings(m.warmup),
            ping_pong: strings(m.ping_pong),
            pipelined: strings(m.pipelined),
            large: strings(m.large),
            ping_pong_base: m.ping_pong_base,
            large_base: m.large_base,
        }
    }
}

type Replies = tokio::sync::mpsc::Receiver<stdiobus_core::BusMessage>;

/// `send`, then `recv` the reply; `Ok(false)` when none came within `timeout`.
async fn tokio_round_trip(
    backend: &stdiobus_backend_native::NativeBackend,
    rx: &mut Replies,
    message: &str,
    id: u64,
    timeout: Duration,
) -> Result<bool, String> {
    use stdiobus_core::Backend;
    backend
        .send(message)
        .await
        .map_err(|e| format!("failed: send {id}: {e}"))?;
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(reply)) => match response_id(reply.json.as_bytes()) {
            Some(got) if got == id => Ok(true),
            got => Err(format!("failed: sent request {id}, got reply {got:?}")),
        },
        Ok(None) => Err("failed: channel closed".to_string()),
        Err(_) => Ok(false),
    }
}

async fn tokio_measure(
    backend: &stdiobus_backend_native::NativeBackend,
    rx: &mut Replies,
    pids: &[i32],
    workload: Workload,
    s: &Settings,
    m: &TokioMessages,
    counting: bool,
) -> Result<Outcome, String> {
    use stdiobus_core::Backend;
    let mut outcome = Outcome::default();
    for (id, message) in (0..).zip(&m.warmup) {
        if !tokio_round_trip(backend, rx, message, id, RESPONSE_TIMEOUT).await? {
            return Err(format!("failed: no reply to warm-up request {id}"));
        }
    }
    // Room for every sample before counting starts.
    outcome
        .samples_ns
        .reserve(m.ping_pong.len().max(m.large.len()));
    let allocs_before = alloc_calls(counting);
    let cpu_before = cpu_ns();
    let started = Instant::now();
    match workload {
        Workload::PingPong => {
            for (id, message) in (m.ping_pong_base..).zip(&m.ping_pong) {
                let t = Instant::now();
                if !tokio_round_trip(backend, rx, message, id, RESPONSE_TIMEOUT).await? {
                    return Err(format!("failed: no reply to request {id}"));
                }
                outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
            }
            outcome.messages = m.ping_pong.len() as u64;
        }
        Workload::Pipelined => {
            let total = m.pipelined.len();
            let (mut sent, mut received) = (0usize, 0usize);
            while received < total {
                while sent < total && sent - received < WINDOW {
                    backend
                        .send(&m.pipelined[sent])
                        .await
                        .map_err(|e| format!("failed: send: {e}"))?;
                    sent += 1;
                }
                match tokio::time::timeout(RESPONSE_TIMEOUT, rx.recv()).await {
                    Ok(Some(_reply)) => received += 1,
                    _ => return Err(format!("failed: {received} of {total} replies")),
                }
            }
            outcome.messages = total as u64;
        }
        Workload::Large => {
            let warm = large_warmup(s);
            let (mut large_allocs, mut large_cpu) = (Some(0u64), 0u64);
            for (i, (id, message)) in (m.large_base..).zip(&m.large).enumerate() {
                let read_before = bytes_read(pids);
                let allocs_at = alloc_calls(counting);
                let cpu_at = cpu_ns();
                let t = Instant::now();
                if !tokio_round_trip(backend, rx, message, id, s.large_timeout).await? {
                    return Err(truncation_report(pids, read_before, s.large_timeout));
                }
                if i >= warm {
                    outcome.samples_ns.push(t.elapsed().as_nanos() as u64);
                    // Only the round trip itself: reading the worker's counter allocates.
                    large_cpu += cpu_ns() - cpu_at;
                    large_allocs = large_allocs
                        .zip(allocs_at)
                        .and_then(|(sum, at)| Some(sum + alloc_calls(counting)? - at));
                }
            }
            outcome.messages = outcome.samples_ns.len() as u64;
            outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
            outcome.cpu_ns = large_cpu;
            outcome.allocs = large_allocs;
            return Ok(outcome);
        }
    }
    outcome.elapsed_ns = started.elapsed().as_nanos() as u64;
    outcome.cpu_ns = cpu_ns() - cpu_before;
    outcome.allocs = allocs_before.and_then(|b| Some(alloc_calls(counting)? - b));
    Ok(outcome)
}

/// Child side: one workload on a fresh `NativeBackend`, figures on stdout, then `stop`.
fn tokio_child(workload: Workload, s: &Settings) -> ExitCode {
    use stdiobus_backend_native::NativeBackend;
    use stdiobus_core::{Backend, BusConfig, ConfigSource, LimitsConfig, PoolConfig};

    place_host(s);
    let counting = counting_works();
    let m = TokioMessages::new(s);
    let config = BusConfig {
        pools: vec![PoolConfig {
            id: "echo".into(),
            command: WORKER.into(),
            args: vec![],
            instances: s.workers,
        }],
        limits: Some(LimitsConfig {
            max_input_buffer: Some(MAX_INPUT_BUFFER as usize),
            ..LimitsConfig::default()
        }),
    };
    // What `#[tokio::main]` builds: a multi-thread runtime, one worker per CPU.
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let backend =
        NativeBackend::from_config_source(&ConfigSource::Config(config)).expect("backend");
    let outcome = runtime.block_on(async {
        let before = children();
        if let Err(e) = backend.start().await {
            return Outcome::failed(format!("failed: start: {e}"));
        }
        let pids: Vec<i32> = children().difference(&before).copied().collect();
        place_workers(s, &pids);
        let Some(mut rx) = backend.subscribe() else {
            return Outcome::failed("failed: subscribe".into());
        };
        tokio_measure(&backend, &mut rx, &pids, workload, s, &m, counting)
            .await
            .unwrap_or_else(Outcome::failed)
    });

    // Report before `stop`, which may take the process down.
    let mut out = String::new();
    let allocs = outcome.allocs.map_or("-".to_string(), |a| a.to_string());
    let _ = writeln!(
        out,
        "OUTCOME {} {} {allocs} {}",
        outcome.messages, outcome.elapsed_ns, outcome.cpu_ns
    );
    let samples: Vec<String> = outcome.samples_ns.iter().map(u64::to_string).collect();
    let _ = writeln!(out, "SAMPLES {}", samples.join(","));
    if let Some(failure) = &outcome.failure {
        let _ = writeln!(out, "FAILURE {failure}");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();

    // The documented shutdown.
    let t = Instant::now();
    let stopped = runtime.block_on(backend.stop(1));
    let _ = writeln!(
        stdout,
        "STOP {} after {:.1} ms",
        match stopped {
            Ok(()) => "Ok".to_string(),
            Err(e) => format!("Err({e})"),
        },
        t.elapsed().as_secs_f64() * 1e3
    );
    let _ = stdout.flush();
    drop(backend);
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------
// The run and the table.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Totals {
    samples_ns: Vec<u64>,
    /// Per round: rate (pipelined) or p50 (ping-pong, large).
    per_round: Vec<f64>,
    messages: u64,
    allocs: Option<u64>,
    counted_messages: u64,
    cpu_ns: u64,
    failures: Vec<String>,
}

impl Totals {
    fn add(&mut self, workload: Workload, mut outcome: Outcome) {
        if let Some(failure) = outcome.failure.take() {
            self.failures.push(failure);
            return;
        }
        match workload {
            Workload::Pipelined if outcome.elapsed_ns > 0 => self
                .per_round
                .push(outcome.messages as f64 / (outcome.elapsed_ns as f64 * 1e-9)),
            Workload::Pipelined => {}
            _ => {
                let mut round = outcome.samples_ns.clone();
                round.sort_unstable();
                if !round.is_empty() {
                    self.per_round.push(percentile(&round, 0.5));
                }
            }
        }
        self.samples_ns.append(&mut outcome.samples_ns);
        self.messages += outcome.messages;
        self.cpu_ns += outcome.cpu_ns;
        if let Some(allocs) = outcome.allocs {
            *self.allocs.get_or_insert(0) += allocs;
            self.counted_messages += outcome.messages;
        }
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
fn percentile(sorted_ns: &[u64], q: f64) -> f64 {
    let rank = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// One line of the table: a figure per contender for one measure.
struct Measure {
    label: &'static str,
    unit: &'static str,
    workload: Workload,
    figure: fn(&Totals) -> Option<f64>,
    spread: bool,
}

fn sorted(totals: &Totals) -> Vec<u64> {
    let mut s = totals.samples_ns.clone();
    s.sort_unstable();
    s
}

const MEASURES: [Measure; 4] = [
    Measure {
        label: "ping-pong p50",
        unit: "µs",
        workload: Workload::PingPong,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.50)),
        spread: true,
    },
    Measure {
        label: "ping-pong p99",
        unit: "µs",
        workload: Workload::PingPong,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.99)),
        spread: false,
    },
    Measure {
        label: "pipelined, 64 in flight",
        unit: "msg/s",
        workload: Workload::Pipelined,
        figure: |t| (!t.per_round.is_empty()).then(|| median(&t.per_round)),
        spread: true,
    },
    Measure {
        label: "1 MiB round trip p50",
        unit: "µs",
        workload: Workload::Large,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.50)),
        spread: true,
    },
];

fn format_figure(value: f64, unit: &str) -> String {
    if unit == "msg/s" {
        format!("{value:>9.0} {unit}")
    } else {
        format!("{value:>9.1} {unit}")
    }
}

fn print_table(totals: &[[Totals; 3]; 3], counting: bool, workloads: &[Workload]) {
    println!();
    println!(
        "| {:<23} | {:<18} | {:>15} | {:>7} | {:>7} | {:>10} | {:>11} | notes",
        "workload", "contender", "figure", "÷ raw", "÷ tokio", "allocs/msg", "CPU µs/msg"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|------",
        "-".repeat(25),
        "-".repeat(20),
        "-".repeat(17),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(12),
        "-".repeat(13)
    );
    for measure in MEASURES.iter().filter(|m| workloads.contains(&m.workload)) {
        let w = WORKLOADS
            .iter()
            .position(|&w| w == measure.workload)
            .unwrap();
        let figures: Vec<Option<f64>> = (0..3).map(|c| (measure.figure)(&totals[c][w])).collect();
        for (c, contender) in CONTENDERS.iter().enumerate() {
            let t = &totals[c][w];
            let ratio = |reference: Option<f64>| match (figures[c], reference) {
                (Some(v), Some(r)) if r > 0.0 => format!("{:.3}", v / r),
                _ => "—".to_string(),
            };
            let allocs = match (counting, t.allocs) {
                (false, _) => "n/a".to_string(),
                (true, Some(a)) if t.counted_messages > 0 => {
                    format!("{:.2}", a as f64 / t.counted_messages as f64)
                }
                _ => "—".to_string(),
            };
            let cpu = if t.messages > 0 {
                format!("{:.2}", t.cpu_ns as f64 / 1e3 / t.messages as f64)
            } else {
                "—".to_string()
            };
            let mut notes = Vec::new();
            if let Some(first) = t.failures.first() {
                notes.push(format!(
                    "{} of {} rounds: {first}",
                    t.failures.len(),
                    t.failures.len() + t.per_round.len()
                ));
            }
            if measure.spread && t.per_round.len() > 1 {
                let min = t.per_round.iter().copied().fold(f64::INFINITY, f64::min);
                let max = t.per_round.iter().copied().fold(0.0, f64::max);
                let kind = if measure.unit == "msg/s" {
                    "rate"
                } else {
                    "p50"
                };
                let digits = if measure.unit == "msg/s" { 0 } else { 1 };
                notes.push(format!("per-round {kind} {min:.digits$}–{max:.digits$}"));
            }
            let figure =
                figures[c].map_or_else(|| "failed".to_string(), |v| format_figure(v, measure.unit));
            println!(
                "| {:<23} | {:<18} | {:>15} | {:>7} | {:>7} | {:>10} | {:>11} | {}",
                measure.label,
                contender.name(),
                figure,
                ratio(figures[0]),
                ratio(figures[2]),
                allocs,
                cpu,
                notes.join("; ")
            );
        }
    }
    println!();
    println!(
        "Ratios are this row's figure divided by the raw sys (÷ raw) or tokio (÷ tokio) row's: \
         below 1 is faster for latencies, above 1 is faster for msg/s."
    );
    println!(
        "allocs/msg: malloc/calloc/realloc/strdup/strndup/posix_memalign/aligned_alloc calls \
         of the whole process (Rust and C, all threads) during the measured part, per round trip."
    );
    println!(
        "CPU µs/msg: user + system CPU time of the host process (all threads; not the worker) \
         during the measured part, per round trip."
    );
}

/// Contender indices in the order round `round` runs them: raw and crate always next to
/// each other, taking turns to go first; tokio after them, then before them, and so on.
fn round_order(round: usize) -> [usize; 3] {
    let pair = if round % 2 == 0 { [0, 1] } else { [1, 0] };
    if (round / 2) % 2 == 0 {
        [pair[0], pair[1], 2]
    } else {
        [2, pair[0], pair[1]]
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let settings = match Settings::from_env(smoke) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(i) = args.iter().position(|a| a == "--tokio-child") {
        let Some(workload) = args.get(i + 1).and_then(|w| Workload::from_name(w)) else {
            eprintln!("compare: --tokio-child needs a workload");
            return ExitCode::from(2);
        };
        return tokio_child(workload, &settings);
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    place_host(&settings);
    let counting = counting_works();
    println!(
        "stdiobus-embed comparison: raw sys, this crate, stdiobus-backend-native 1.1.1 (tokio)"
    );
    if smoke {
        println!("(smoke run: pass --bench, as `cargo bench` does, for the real figures)");
    }
    println!("reproduce: {}", settings.command_line());
    println!(
        "worker: {WORKER} ({} process(es)); {} rounds; per contender and round: {} ping-pong, \
         {} pipelined, {} large round trips after {} warm-up round trips; {} CPUs",
        settings.workers,
        settings.rounds,
        settings.requests,
        settings.pipelined,
        settings.large,
        settings.warmup,
        cpus
    );
    println!(
        "placement (BENCH_PIN={}): {}",
        settings.pin.name(),
        match settings.pin {
            Pin::None => "host and workers wherever the scheduler puts them".to_string(),
            Pin::Same => format!("host threads and workers all on CPU {}", settings.cpus.0),
            Pin::Split => format!(
                "host threads on CPU {}, workers on CPU {}",
                settings.cpus.0, settings.cpus.1
            ),
        }
    );
    if !counting {
        println!("allocation counting is not active in this build (Linux only)");
    }

    let messages = Messages::new(&settings);
    let mut totals: [[Totals; 3]; 3] = Default::default();
    let mut shutdowns: Vec<String> = Vec::new();
    let started = Instant::now();
    for round in 0..settings.rounds {
        for (w, &workload) in WORKLOADS.iter().enumerate() {
            if !settings.workloads.contains(&workload) {
                continue;
            }
            let mut line = format!(
                "round {}/{} {:<9}",
                round + 1,
                settings.rounds,
                workload.name()
            );
            for c in round_order(round) {
                let mut outcome = match CONTENDERS[c] {
                    Contender::Raw => raw_round(workload, &settings, &messages, counting),
                    Contender::Crate => crate_round(workload, &settings, &messages, counting),
                    Contender::Tokio => tokio_round(workload, &settings),
                };
                if let Some(shutdown) = outcome.shutdown.take() {
                    if CONTENDERS[c] == Contender::Tokio {
                        shutdowns.push(shutdown);
                    } else {
                        eprintln!("{}: {shutdown}", CONTENDERS[c].name());
                    }
                }
                let summary = if outcome.failure.is_some() {
                    "failed".to_string()
                } else if workload == Workload::Pipelined {
                    format!(
                        "{:.0}/s",
                        outcome.messages as f64 / (outcome.elapsed_ns.max(1) as f64 * 1e-9)
                    )
                } else {
                    let mut s = outcome.samples_ns.clone();
                    s.sort_unstable();
                    format!(
                        "p50 {:.1}µs",
                        if s.is_empty() {
                            0.0
                        } else {
                            percentile(&s, 0.5)
                        }
                    )
                };
                let _ = write!(line, " | {}: {summary}", CONTENDERS[c].name());
                totals[c][w].add(workload, outcome);
            }
            eprintln!("{line}");
        }
    }
    let elapsed = started.elapsed();

    print_table(&totals, counting, &settings.workloads);
    println!();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for s in &shutdowns {
        match kinds.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => kinds.push((s.clone(), 1)),
        }
    }
    for (kind, n) in &kinds {
        println!(
            "tokio native shutdown (`stop(1)`): {n} of {} children: {kind}",
            shutdowns.len()
        );
    }
    println!("total time {:.1} s", elapsed.as_secs_f64());
    // As a smoke test, the crate must pass everything and raw sys the small workloads (it
    // is expected to fail the large one).
    let crate_failed = totals[1].iter().any(|t| !t.failures.is_empty());
    let raw_small_failed = totals[0][..2].iter().any(|t| !t.failures.is_empty());
    if smoke && (crate_failed || raw_small_failed) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
