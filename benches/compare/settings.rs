//! What a run is told from the environment, and the constants every contender shares.

use std::ffi::c_int;
use std::fmt::Write as _;
use std::time::Duration;

use crate::placement::two_cpus;

/// The worker every contender talks to.
pub const WORKER: &str = env!("CARGO_BIN_EXE_bench-echo-worker");
/// Requests in flight in the pipelined workload.
pub const WINDOW: usize = 64;
/// The large message, newline included: 1 MiB - 1 byte. The bus enlarges each worker's
/// stdin pipe to 1 MiB, so it goes in one piece.
pub const LARGE_WITH_NEWLINE: usize = (1 << 20) - 1;
/// The large message as handed to `send` (the kernel appends the newline).
pub const LARGE_LEN: usize = LARGE_WITH_NEWLINE - 1;
/// The kernel drops worker lines longer than `max_input_buffer` (1 MiB by default); the
/// echo of a 1 MiB request is a little longer, so every contender gets 4 MiB.
pub const MAX_INPUT_BUFFER: u32 = 4 << 20;
/// How long any small request may take before the run counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest single kernel step while waiting; a step returns as soon as a worker writes.
pub const STEP_MS: c_int = 100;
/// What every response of the echo worker starts with, up to the id.
pub const RESPONSE_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","id":"#;

#[derive(Clone, Debug)]
pub struct Settings {
    pub rounds: usize,
    pub requests: usize,
    pub pipelined: usize,
    pub large: usize,
    pub warmup: usize,
    pub workers: u32,
    pub large_timeout: Duration,
    pub pin: Pin,
    /// The workloads to run (`BENCH_WORKLOADS`, comma-separated names; default all).
    pub workloads: Vec<Workload>,
    /// Host CPU and worker CPU for `pin`, found before anything is pinned.
    pub cpus: (usize, usize),
}

/// Where the host and the workers run (`BENCH_PIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Wherever the scheduler puts them.
    None,
    /// Host (every thread) and workers all on the first allowed CPU.
    Same,
    /// Host (every thread) on the first allowed CPU, workers on the second.
    Split,
}

impl Pin {
    pub fn name(self) -> &'static str {
        match self {
            Pin::None => "none",
            Pin::Same => "same",
            Pin::Split => "split",
        }
    }
}

impl Settings {
    pub fn from_env(smoke: bool) -> Result<Self, String> {
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
                            "BENCH_WORKLOADS: unknown `{name}` (ping-pong, pipelined, batches, large)"
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

    pub fn env(&self) -> Vec<(&'static str, String)> {
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

    pub fn command_line(&self) -> String {
        let mut line = String::new();
        for (name, value) in self.env() {
            let _ = write!(line, "{name}={value} ");
        }
        line + "cargo bench -p stdiobus-embed-bench"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    PingPong,
    Pipelined,
    /// Pipelined, [`BATCH`] messages per `send_batch`: this crate only.
    Batches,
    Large,
}

pub const WORKLOADS: [Workload; 4] = [
    Workload::PingPong,
    Workload::Pipelined,
    Workload::Batches,
    Workload::Large,
];

/// Messages per `send_batch` in the batches workload.
pub const BATCH: usize = 16;

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::PingPong => "ping-pong",
            Workload::Pipelined => "pipelined",
            Workload::Batches => "batches",
            Workload::Large => "large",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        WORKLOADS.into_iter().find(|w| w.name() == name)
    }
}
