//! Pools: what spreading requests over several workers buys, and what routing costs.
//!
//! ```text
//! cargo bench -p stdiobus-embed-bench --bench pools
//! ```
//!
//! 1. Throughput of CPU-bound requests (each worker computes `BENCH_BURN_US` [200] µs per
//!    request) with 4 workers in the pool against 1, in the same run: `BENCH_ROUNDS` [3]
//!    rounds that alternate which goes first, `BENCH_POOL_REQUESTS` [4000] requests each,
//!    8 in flight. Nothing is pinned: the workers share the machine's CPUs.
//! 2. Host CPU per message of pipelined echo requests (64 in flight, one worker,
//!    `BENCH_PIPELINED` [30000] messages), plain `send` against `send` with a session
//!    table, a request table and a `sessionId` in every message (the routing work that
//!    reads messages and responses).
//!
//! 3. Start time: `create`, `start` and a first answer from every worker, for 1 and 4
//!    workers, median of `BENCH_ROUNDS`.
//!
//! Run without `--bench` (as `cargo test --benches` does), it makes one tiny round.

// The bench package links every bench with the allocation counter's `--wrap` (see
// `build.rs`), which needs the counter's functions.
#[path = "alloc_count.rs"]
#[allow(dead_code)]
mod alloc_count;

use std::time::{Duration, Instant};

use stdiobus_embed::{
    Bus, Config, ConfigBuffer, Consumer, Event, EventRing, Limits, Options, Pool, Producer,
    RequestSlot, SessionSlot, WorkerId,
};

const WORKER: &str = env!("CARGO_BIN_EXE_bench-echo-worker");

fn setting(name: &str, default: u64, smoke: u64) -> u64 {
    let full = std::env::args().any(|arg| arg == "--bench");
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) if full => default,
        Err(_) => smoke,
    }
}

/// Host CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

struct Run {
    elapsed: Duration,
    cpu: Duration,
}

/// A fresh ring's halves and a configuration of `workers` echo workers.
fn parts(workers: u32) -> (Producer<'static>, Consumer<'static>, Config<'static>) {
    let ring = Box::leak(EventRing::<512, 1024>::boxed());
    let (producer, events) = ring.split().expect("a fresh ring");
    let json = Box::leak(Box::new(ConfigBuffer::<1024>::new()));
    let config = json
        .write(
            &[Pool::new("echo", WORKER).instances(workers)],
            &Limits::default(),
        )
        .expect("a valid configuration");
    (producer, events, config)
}

/// Reads every event waiting in the ring; returns how many were worker lines.
fn lines_read(events: &mut Consumer<'_>) -> u64 {
    let mut lines = 0;
    while let Some(event) = events.read() {
        if let Event::Message { .. } = event.event() {
            lines += 1;
        }
    }
    lines
}

/// Sends `count` requests built by `request`, `window` in flight, and waits for every
/// response.
fn run(
    workers: u32,
    count: u64,
    window: u64,
    tables: bool,
    request: impl Fn(u64) -> String,
) -> Run {
    let (producer, mut events, config) = parts(workers);
    let mut bus = Bus::create(config, Options::new(), producer).expect("create");
    if tables {
        bus.set_session_table(Vec::leak(vec![SessionSlot::EMPTY; 256]));
        bus.set_request_table(Vec::leak(vec![RequestSlot::EMPTY; 256]));
    }
    let mut bus = bus.start().expect("start");
    let messages: Vec<String> = (0..count).map(&request).collect();
    let (start, cpu) = (Instant::now(), cpu_time());
    let (mut sent, mut answered) = (0u64, 0u64);
    while answered < count {
        while sent < count && sent - answered < window {
            match bus.send(messages[sent as usize].as_bytes()) {
                Ok(()) => sent += 1,
                Err(error) if error.is_retryable() => break,
                Err(error) => panic!("send: {error}"),
            }
        }
        bus.poll(Duration::from_millis(100)).expect("poll");
        answered += lines_read(&mut events);
    }
    let run = Run {
        elapsed: start.elapsed(),
        cpu: cpu_time() - cpu,
    };
    drop(bus.stop(Duration::from_secs(1)));
    run
}

/// Time from `create` until each of `workers` workers answered once.
fn start_time(workers: u32) -> Duration {
    let (producer, mut events, config) = parts(workers);
    let start = Instant::now();
    let mut bus = Bus::create(config, Options::new(), producer)
        .expect("create")
        .start()
        .expect("start");
    for id in 0..workers {
        let request = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
        bus.send_to_worker(WorkerId::new(id), request.as_bytes())
            .expect("send");
    }
    let mut answered = 0;
    while answered < u64::from(workers) {
        bus.poll(Duration::from_millis(100)).expect("poll");
        answered += lines_read(&mut events);
    }
    let elapsed = start.elapsed();
    drop(bus.stop(Duration::from_secs(1)));
    elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = setting("BENCH_ROUNDS", 3, 1);
    let requests = setting("BENCH_POOL_REQUESTS", 4000, 50);
    let burn_us = setting("BENCH_BURN_US", 200, 200);
    let pipelined = setting("BENCH_PIPELINED", 30_000, 200);
    println!(
        "pools: {rounds} rounds, {requests} requests of {burn_us} µs CPU each, 8 in flight; \
         {pipelined} pipelined echo messages"
    );

    let burn = |id: u64| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"burn","params":{{"us":{burn_us}}}}}"#)
    };
    let mut per_second = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let workers = [1, 4][which];
            let run = run(workers, requests, 8, false, burn);
            per_second[which].push(requests as f64 / run.elapsed.as_secs_f64());
        }
    }
    let [one, four] = per_second.map(median);
    println!("  1 worker : {one:>8.0} requests/s (median of {rounds})");
    println!("  4 workers: {four:>8.0} requests/s (median of {rounds})");
    println!("  4 against 1: {:.2}x", four / one);

    let echo = |id: u64| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
    let routed = |id: u64| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"m","sessionId":"session-{}"}}"#,
            id % 100
        )
    };
    let mut cpu = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let run = if which == 0 {
                run(1, pipelined, 64, false, echo)
            } else {
                run(1, pipelined, 64, true, routed)
            };
            cpu[which].push(run.cpu.as_secs_f64() * 1e6 / pipelined as f64);
        }
    }
    let [plain, tables] = cpu.map(median);
    println!("  host CPU per pipelined message, plain send:             {plain:.2} µs");
    println!("  host CPU per pipelined message, sessions + request table: {tables:.2} µs");

    let mut starts = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (which, workers) in [1, 4].into_iter().enumerate() {
            starts[which].push(start_time(workers).as_secs_f64() * 1e3);
        }
    }
    let [one, four] = starts.map(median);
    println!("  start until every worker answered, 1 worker : {one:.2} ms");
    println!("  start until every worker answered, 4 workers: {four:.2} ms");
}
