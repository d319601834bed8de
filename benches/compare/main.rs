//! Three ways of driving the same stdio_bus kernel, measured side by side in one run.
//!
//! ```text
//! cargo bench -p stdiobus-embed-bench
//! BENCH_ROUNDS=8 BENCH_REQUESTS=10000 cargo bench -p stdiobus-embed-bench   # longer, steadier
//! ```
//!
//! The contenders, each talking to the same compiled echo worker (`stdiobus-echo-worker`,
//! a real process), through the same kernel archive, with the same configuration:
//!
//! 1. `raw sys`: the `stdiobus_embed::sys` calls, with a message callback that only counts
//!    and records the response id. No safe layer: the kernel as it comes.
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
//! The measurement itself exists once (`measure.rs`), over the `Contender` trait: raw and
//! crate implement it by stepping the kernel (`stepped.rs`), tokio by blocking on its
//! runtime for each `send` and `recv`, inside the child process.
//!
//! The workloads: ping-pong round trips (one request in flight), pipelined throughput (64
//! requests in flight, one message per `send`), the same in batches of 16 messages per
//! `send_batch` (this crate only: its ratio to raw is to raw's one message per call), and
//! round trips of one message of
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
//! posix_memalign and aligned_alloc, and the `__wrap_*` functions in `alloc_count.rs`
//! count every call before forwarding it. Calls that glibc makes to itself internally are
//! not seen. The CPU column is the host process's user + system time (all threads, not
//! the worker's).
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
//! [ping-pong,pipelined,batches,large]. The bench prints the command line that repeats a
//! run.
//!
//! Run without `--bench` (as `cargo test --benches` does), it makes one tiny round as a
//! smoke test.

mod alloc_count;
mod crate_api;
mod measure;
mod messages;
mod placement;
mod processes;
mod raw;
mod report;
mod settings;
mod stepped;
mod tokio_native;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use alloc_count::counting_works;
use messages::Messages;
use placement::place_host;
use report::{Totals, percentile, print_table};
use settings::{Pin, Settings, WORKER, WORKLOADS, Workload};

/// The contenders, in the table's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContenderId {
    Raw,
    Crate,
    Tokio,
}

pub const CONTENDERS: [ContenderId; 3] = [ContenderId::Raw, ContenderId::Crate, ContenderId::Tokio];

impl ContenderId {
    pub fn name(self) -> &'static str {
        match self {
            ContenderId::Raw => "raw sys",
            ContenderId::Crate => "stdiobus-embed",
            ContenderId::Tokio => "tokio native 1.1.1",
        }
    }
}

/// Contender indices in the order round `round` runs them: raw and crate always next to
/// each other, taking turns to go first; tokio after them, then before them, and so on.
fn round_order(round: usize) -> [usize; 3] {
    let pair = if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    };
    if (round / 2).is_multiple_of(2) {
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
        return tokio_native::child(workload, &settings);
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
    let mut totals: [[Totals; WORKLOADS.len()]; 3] = Default::default();
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
                if workload == Workload::Batches && CONTENDERS[c] != ContenderId::Crate {
                    // Only this crate has a batch call; the others' figure is pipelined.
                    continue;
                }
                let mut outcome = match CONTENDERS[c] {
                    ContenderId::Raw => raw::round(workload, &settings, &messages, counting),
                    ContenderId::Crate => {
                        crate_api::round(workload, &settings, &messages, counting)
                    }
                    ContenderId::Tokio => tokio_native::round(workload, &settings),
                };
                if let Some(shutdown) = outcome.shutdown.take() {
                    if CONTENDERS[c] == ContenderId::Tokio {
                        shutdowns.push(shutdown);
                    } else {
                        eprintln!("{}: {shutdown}", CONTENDERS[c].name());
                    }
                }
                let summary = if outcome.failure.is_some() {
                    "failed".to_string()
                } else if matches!(workload, Workload::Pipelined | Workload::Batches) {
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
