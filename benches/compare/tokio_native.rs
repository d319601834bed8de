//! Contender 3: `stdiobus-backend-native` 1.1.1's `NativeBackend` under a tokio
//! multi-thread runtime, driven as its documentation shows (`start`, `subscribe`, `send`,
//! `recv`), in a child process: its `stop` crashes the 1.1.1 archive, so the child reports
//! its figures on stdout before it calls `stop`, and the parent reads them back.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use stdiobus_backend_native::NativeBackend;
use stdiobus_core::{Backend, BusConfig, BusMessage, ConfigSource, LimitsConfig, PoolConfig};
use tokio::runtime::Runtime;
use tokio::time::error::Elapsed;

use crate::alloc_count::counting_works;
use crate::measure::{Contender, Outcome, measure};
use crate::messages::{Messages, response_id};
use crate::placement::{place_host, place_workers};
use crate::processes::children;
use crate::settings::{MAX_INPUT_BUFFER, RESPONSE_TIMEOUT, Settings, WORKER, Workload};

/// Parent side: runs one child and reads back what it reports.
pub fn round(workload: Workload, s: &Settings) -> Outcome {
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

type Replies = tokio::sync::mpsc::Receiver<BusMessage>;

/// The backend as a [`Contender`]: each call blocks on the runtime until its `send` or
/// `recv` is done, as an `await` in the caller's `async fn` would.
struct TokioBackend<'a> {
    runtime: &'a Runtime,
    backend: &'a NativeBackend,
    rx: Replies,
    replies: u64,
}

impl TokioBackend<'_> {
    /// The next reply: `Err` when none came by `deadline`, `Ok(None)` when the channel
    /// closed.
    fn recv_by(&mut self, deadline: Instant) -> Result<Option<BusMessage>, Elapsed> {
        let rx = &mut self.rx;
        // The timer needs the runtime's context, so it is made inside the future.
        let reply = self
            .runtime
            .block_on(async { tokio::time::timeout_at(deadline.into(), rx.recv()).await });
        if let Ok(Some(_)) = reply {
            self.replies += 1;
        }
        reply
    }
}

impl Contender for TokioBackend<'_> {
    /// `NativeBackend::send` takes `&str`.
    type Message = String;

    fn send(&mut self, message: &String) -> Result<(), String> {
        self.runtime
            .block_on(self.backend.send(message))
            .map_err(|e| e.to_string())
    }

    fn wait_for(&mut self, id: u64, deadline: Instant) -> Result<bool, String> {
        match self.recv_by(deadline) {
            Ok(Some(reply)) => match response_id(reply.json.as_bytes()) {
                Some(got) if got == id => Ok(true),
                got => Err(format!("failed: sent request {id}, got reply {got:?}")),
            },
            Ok(None) => Err("failed: channel closed".to_string()),
            Err(_) => Ok(false),
        }
    }

    /// Waits up to `RESPONSE_TIMEOUT` for one reply; there is no deadline for the whole.
    fn collect(&mut self, _deadline: Instant) -> Result<bool, String> {
        let reply = self.recv_by(Instant::now() + RESPONSE_TIMEOUT);
        Ok(matches!(reply, Ok(Some(_))))
    }

    fn replies(&self) -> u64 {
        self.replies
    }
}

/// Child side: one workload on a fresh `NativeBackend`, figures on stdout, then `stop`.
pub fn child(workload: Workload, s: &Settings) -> ExitCode {
    place_host(s);
    let counting = counting_works();
    // `NativeBackend::send` takes `&str`: the requests are converted before anything runs.
    let m = Messages::new(s).map(|m| String::from_utf8(m).expect("ASCII"));
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
    let runtime = Runtime::new().expect("tokio runtime");
    let backend =
        NativeBackend::from_config_source(&ConfigSource::Config(config)).expect("backend");
    let outcome = (|| {
        let before = children();
        if let Err(e) = runtime.block_on(backend.start()) {
            return Outcome::failed(format!("failed: start: {e}"));
        }
        let pids: Vec<i32> = children().difference(&before).copied().collect();
        place_workers(s, &pids);
        let Some(rx) = backend.subscribe() else {
            return Outcome::failed("failed: subscribe".into());
        };
        let mut contender = TokioBackend {
            runtime: &runtime,
            backend: &backend,
            rx,
            replies: 0,
        };
        measure(&mut contender, &pids, workload, s, &m, counting).unwrap_or_else(Outcome::failed)
    })();

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
