//! What the integration tests share: the real worker binary, rings, and waiting for events
//! with a deadline.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::{Duration, Instant};

use stdiobus_embed::{
    Bus, ClientId, ConfigBuffer, Consumer, ErrorCode, Event, EventRing, ExitStatus, Limits,
    LogLevel, Options, Pool, Producer, RestartRefused, Running, WorkerEvent, WorkerId,
};

/// The worker process shipped with the crate.
pub const WORKER: &str = env!("CARGO_BIN_EXE_stdiobus-echo-worker");

/// How long any test waits for something the kernel should do in milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A 2 MiB ring whose halves own it, so buses can hold them as long as they like.
pub fn ring() -> (Producer<'static>, Consumer<'static>) {
    EventRing::<512, 4096>::boxed()
        .split_owned()
        .expect("fresh ring")
}

/// A configuration that lives for the whole test process.
pub fn config(pools: &[Pool<'_>], limits: &Limits) -> stdiobus_embed::Config<'static> {
    Box::leak(Box::new(ConfigBuffer::<4096>::new()))
        .write(pools, limits)
        .expect("valid configuration")
}

/// Options that keep kernel logs out of the ring unless a test asks for them.
pub fn options() -> Options<'static> {
    Options::new().log_level(LogLevel::Warn)
}

/// A started bus over `pools`, with its consumer.
pub fn start(pools: &[Pool<'_>]) -> (Bus<'static, Running>, Consumer<'static>) {
    start_config(config(pools, &Limits::default()))
}

/// A started bus over `config`, with its consumer.
pub fn start_config(
    config: stdiobus_embed::Config<'static>,
) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, consumer) = ring();
    let bus = Bus::create(config, options(), producer)
        .expect("create")
        .start()
        .expect("start");
    (bus, consumer)
}

/// A started bus whose one worker is the shell script `script`.
pub fn shell_bus(script: &'static str) -> (Bus<'static, Running>, Consumer<'static>) {
    let args: &'static [&'static str] = Box::leak(Box::new(["-c", script]));
    start(&[Pool::new("shell", "/bin/sh").args(args)])
}

/// A started bus with `instances` echo workers in one pool named "echo".
pub fn start_echo(instances: u32) -> (Bus<'static, Running>, Consumer<'static>) {
    start(&[Pool::new("echo", WORKER)
        .args(&["--name", "echo"])
        .instances(instances)])
}

/// An event, owned, so tests can keep and compare what they saw.
#[derive(Clone, PartialEq, Eq)]
pub enum Seen {
    Message(Vec<u8>),
    Error(ErrorCode, String),
    Log(LogLevel, String),
    Worker(WorkerId, String),
    /// A worker process was reaped, with how it ended.
    Exited(WorkerId, ExitStatus),
    /// A worker will not be restarted, and why.
    Failed(WorkerId, RestartRefused),
    ClientConnected(ClientId, String),
    ClientDisconnected(ClientId, String),
    /// Events lost, bytes lost, the lost responses' ids, whether more ids were lost.
    Overflow(u64, u64, Vec<Vec<u8>>, bool),
}

impl Seen {
    pub fn from_event(event: Event<'_>) -> Self {
        match event {
            Event::Message { line, .. } => Self::Message(line.as_bytes().to_vec()),
            Event::Error { code, text } => Self::Error(code, text.to_string()),
            Event::Log { level, text } => Self::Log(level, text.to_string()),
            Event::Worker {
                id,
                event: WorkerEvent::Exited(status),
            } => Self::Exited(id, status),
            Event::Worker {
                id,
                event: WorkerEvent::Failed(reason),
            } => Self::Failed(id, reason),
            Event::Worker { id, event } => Self::Worker(id, event.to_string()),
            Event::ClientConnected { id, peer } => Self::ClientConnected(id, peer.to_string()),
            Event::ClientDisconnected { id, reason } => {
                Self::ClientDisconnected(id, reason.to_string())
            }
            Event::Overflow(overflow) => Self::Overflow(
                overflow.loss().events,
                overflow.loss().bytes,
                overflow
                    .lost_ids()
                    .map(|id| id.as_bytes().to_vec())
                    .collect(),
                overflow.more_ids_lost(),
            ),
            other => panic!("an event this harness does not know: {other:?}"),
        }
    }

    /// The message parsed as JSON, if it is a message and parses.
    pub fn json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Message(bytes) => serde_json::from_slice(bytes).ok(),
            _ => None,
        }
    }
}

/// Messages show as text, cut after [`SHOWN_BYTES`], so a failing test's dump of what it
/// saw stays readable when the messages are large.
impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Message(line) if line.len() > SHOWN_BYTES => write!(
                f,
                "Message({:?}… {} bytes)",
                String::from_utf8_lossy(&line[..SHOWN_BYTES]),
                line.len()
            ),
            Self::Message(line) => write!(f, "Message({:?})", String::from_utf8_lossy(line)),
            Self::Error(code, text) => f.debug_tuple("Error").field(code).field(text).finish(),
            Self::Log(level, text) => f.debug_tuple("Log").field(level).field(text).finish(),
            Self::Worker(id, word) => f.debug_tuple("Worker").field(id).field(word).finish(),
            Self::Exited(id, status) => f.debug_tuple("Exited").field(id).field(status).finish(),
            Self::Failed(id, reason) => f.debug_tuple("Failed").field(id).field(reason).finish(),
            Self::ClientConnected(id, peer) => f
                .debug_tuple("ClientConnected")
                .field(id)
                .field(peer)
                .finish(),
            Self::ClientDisconnected(id, reason) => f
                .debug_tuple("ClientDisconnected")
                .field(id)
                .field(reason)
                .finish(),
            Self::Overflow(events, bytes, ids, more) => {
                let ids: Vec<_> = ids.iter().map(|id| String::from_utf8_lossy(id)).collect();
                f.debug_tuple("Overflow")
                    .field(events)
                    .field(bytes)
                    .field(&ids)
                    .field(more)
                    .finish()
            }
        }
    }
}

/// How much of a message a [`Seen`] dump shows.
const SHOWN_BYTES: usize = 160;

/// Moves every waiting event out of the ring.
pub fn drain(consumer: &mut Consumer<'_>, into: &mut Vec<Seen>) {
    consumer.drain(|event| into.push(Seen::from_event(event)));
}

/// Polls `bus` and collects events until `done` holds for everything seen so far; panics
/// with what was seen when [`DEADLINE`] passes first.
pub fn poll_until(
    bus: &mut Bus<'_, Running>,
    consumer: &mut Consumer<'_>,
    seen: &mut Vec<Seen>,
    what: &str,
    done: impl FnMut(&[Seen]) -> bool,
) {
    poll_gathering(bus, seen, |seen| drain(consumer, seen), what, done);
}

/// [`poll_until`] for tests that keep events their own way: `gather` moves what arrived
/// into `seen`.
pub fn poll_gathering<T: std::fmt::Debug>(
    bus: &mut Bus<'_, Running>,
    seen: &mut Vec<T>,
    mut gather: impl FnMut(&mut Vec<T>),
    what: &str,
    mut done: impl FnMut(&[T]) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        gather(seen);
        if done(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; saw {seen:#?}"
        );
        bus.poll(Duration::from_millis(20)).expect("poll");
    }
}

/// Polls until the kernel reports worker `id` with the lifecycle word `word`; the events
/// read meanwhile are dropped.
pub fn wait_for_worker(
    bus: &mut Bus<'_, Running>,
    consumer: &mut Consumer<'_>,
    id: WorkerId,
    word: &str,
) {
    let mut seen = Vec::new();
    let wanted = Seen::Worker(id, word.into());
    poll_until(
        bus,
        consumer,
        &mut seen,
        &format!("worker {id} {word}"),
        |seen| seen.contains(&wanted),
    );
}

/// Sends `signal` to worker `id` of `bus`, which must be alive.
pub fn signal_worker(bus: &Bus<'_, Running>, id: WorkerId, signal: libc::c_int) {
    let pid = bus.worker_pid(id).expect("a live worker");
    // SAFETY: `pid` is this bus's unreaped worker, so it cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// Polls until worker `id` is reported reaped; returns how it ended.
pub fn wait_for_exit(
    bus: &mut Bus<'_, Running>,
    consumer: &mut Consumer<'_>,
    id: WorkerId,
) -> ExitStatus {
    let exit = |seen: &[Seen]| {
        seen.iter().find_map(|s| match s {
            Seen::Exited(i, status) if *i == id => Some(*status),
            _ => None,
        })
    };
    let mut seen = Vec::new();
    poll_until(
        bus,
        consumer,
        &mut seen,
        &format!("worker {id}'s exit"),
        |seen| exit(seen).is_some(),
    );
    exit(&seen).unwrap()
}

/// JSON responses among `seen` whose `id` is `id`.
pub fn responses(seen: &[Seen], id: &serde_json::Value) -> Vec<serde_json::Value> {
    seen.iter()
        .filter_map(Seen::json)
        .filter(|json| json.get("id") == Some(id) && json.get("method").is_none())
        .collect()
}

/// Sends one request and waits for its response.
pub fn call(
    bus: &mut Bus<'_, Running>,
    consumer: &mut Consumer<'_>,
    request: &serde_json::Value,
) -> serde_json::Value {
    let id = request["id"].clone();
    bus.send(request.to_string().as_bytes()).expect("send");
    let mut seen = Vec::new();
    poll_until(bus, consumer, &mut seen, "a response", |seen| {
        !responses(seen, &id).is_empty()
    });
    responses(&seen, &id).remove(0)
}

/// Sends `count` requests as fast as the pipe takes them; returns how many went out.
pub fn flood(bus: &mut Bus<'_, Running>, events: &mut Consumer<'_>, count: u32) -> u32 {
    let mut sent = 0;
    for id in 0..count {
        let request = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "m"}).to_string();
        while let Err(error) = bus.send(request.as_bytes()) {
            assert!(error.is_retryable(), "{error}");
            drain(events, &mut Vec::new());
            bus.poll(Duration::from_millis(1)).unwrap();
        }
        sent += 1;
    }
    sent
}

/// Whether a process with this pid exists (zombies included).
pub fn process_exists(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until none of `pids` is a process any more; panics after [`DEADLINE`].
pub fn wait_gone(pids: &[i64]) {
    let deadline = Instant::now() + DEADLINE;
    while pids.iter().any(|&pid| process_exists(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} are still there"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The state letter of process `pid` in /proc (`R`, `S`, `Z` for a zombie, ...), or `None`
/// once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command: state first.
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Whether process `pid` runs: it exists and has not ended (a zombie has).
pub fn is_running(pid: u32) -> bool {
    !matches!(process_state(pid), None | Some('Z' | 'X'))
}

/// Pids of this process's children, from /proc (zombies included).
pub fn child_pids() -> Vec<i64> {
    let me = std::process::id().to_string();
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let name = entry.expect("entry").file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the parenthesised command: state, then the parent pid.
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        if after.split(' ').nth(1) == Some(me.as_str()) {
            children.push(pid);
        }
    }
    children
}

/// Open file descriptors of this process.
pub fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    fds
}
