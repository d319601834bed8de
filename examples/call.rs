//! Calls worker methods with timeouts from a bare event loop: the JSON-RPC writer and the
//! pending-request table, no async runtime.
//!
//! ```text
//! cargo run --example call
//! ```
//!
//! The example starts a bus with two workers. Each worker is this same executable, re-run
//! with `--worker`: it answers `error` with an error response, `sleep` (params
//! `{"ms":N}`) after N milliseconds, and any other method with
//! `{"method":M,"params":P}`.
//!
//! The host registers each call in a [`Pending`] table with its deadline, sends it, then
//! polls no longer than the next deadline, feeds every event to the table and expires the
//! overdue calls. It prints each outcome and exits with status 1 if any call ends other
//! than expected.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use stdiobus_embed::jsonrpc::{Fed, Id, Outcome, Pending, Request};
use stdiobus_embed::{Bus, ConfigBuffer, EventMask, EventRing, Limits, Options, Pool};

/// What a call should end as.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Result,
    Error,
    TimedOut,
}

/// One call: id, method, params, timeout, the expected outcome.
struct Call {
    id: Id<'static>,
    method: &'static str,
    params: &'static str,
    timeout: Duration,
    expect: Expect,
}

const CALLS: &[Call] = &[
    Call {
        id: Id::Int(1),
        method: "greet",
        params: r#"{"name":"world \"quoted\""}"#,
        timeout: Duration::from_secs(2),
        expect: Expect::Result,
    },
    Call {
        id: Id::Str("call-2"),
        method: "sleep",
        params: r#"{"ms":50}"#,
        timeout: Duration::from_secs(2),
        expect: Expect::Result,
    },
    Call {
        id: Id::Int(3),
        method: "error",
        params: "{}",
        timeout: Duration::from_secs(2),
        expect: Expect::Error,
    },
    Call {
        id: Id::Str("call-4"),
        method: "sleep",
        params: r#"{"ms":1000}"#,
        timeout: Duration::from_millis(100),
        expect: Expect::TimedOut,
    },
    Call {
        id: Id::Int(5),
        method: "tools/list",
        params: "[]",
        timeout: Duration::from_secs(2),
        expect: Expect::Result,
    },
];

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--worker") {
        return match worker() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("call worker: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("call: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Worker mode: answer every request on stdin.
fn worker() -> io::Result<()> {
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line?;
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (request.get("id"), request["method"].as_str()) else {
            continue; // a notification, or not a request
        };
        let params = request.get("params").unwrap_or(&serde_json::Value::Null);
        let response = match method {
            "error" => serde_json::json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": -32000, "message": "requested error"},
            }),
            _ => {
                if method == "sleep" {
                    let ms = params["ms"].as_u64().unwrap_or(0);
                    std::thread::sleep(Duration::from_millis(ms));
                }
                serde_json::json!({
                    "jsonrpc": "2.0", "id": id,
                    "result": {"method": method, "params": params},
                })
            }
        };
        match writeln!(out, "{response}").and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exe = exe.to_str().ok_or("the executable's path is not UTF-8")?;
    let pools = [Pool::new("call", exe).args(&["--worker"]).instances(2)];
    let mut json = ConfigBuffer::<4096>::new();
    let config = json
        .write(&pools, &Limits::default())
        .map_err(|e| e.to_string())?;
    let ring = EventRing::<256, 512>::boxed();
    let (producer, mut events) = ring.split().map_err(|e| e.to_string())?;
    let options = Options::new().events(EventMask::ALL - EventMask::LOG);
    let bus = Bus::create(config, options, producer).map_err(|f| f.error.to_string())?;
    let mut bus = bus.start().map_err(|f| f.error.to_string())?;

    // The table's clock: time since this instant.
    let clock = Instant::now();
    let mut pending = Pending::<16>::new();
    let mut buf = [0u8; 512];
    for call in CALLS {
        let request = Request::new(call.id, call.method).params(call.params);
        let line = request.write(&mut buf).map_err(|e| e.to_string())?;
        // Register first, so that no response can arrive unrecognised.
        pending
            .register(call.id, clock.elapsed() + call.timeout)
            .map_err(|e| format!("register {}: {e}", call.id))?;
        if let Err(error) = bus.send(line) {
            pending.cancel(call.id); // it will never be answered
            return Err(format!("send {}: {error}", call.id));
        }
        println!("-> {}", String::from_utf8_lossy(line));
    }

    let mut failures = Vec::new();
    let mut report = |id: Id<'_>, outcome: Outcome<'_>| {
        let elapsed = clock.elapsed().as_millis();
        let (got, text) = match outcome {
            Outcome::Result(result) => (Some(Expect::Result), format!("result {result}")),
            Outcome::Error(error) => (Some(Expect::Error), format!("error {}", error.raw)),
            Outcome::TimedOut => (Some(Expect::TimedOut), "timed out".into()),
            Outcome::Lost => (None, "response lost to a full ring".into()),
            Outcome::MaybeLost => (None, "response may have been lost".into()),
        };
        println!("<- {id} after {elapsed} ms: {text}");
        let expected = CALLS.iter().find(|c| c.id == id).map(|c| c.expect);
        if got.is_none() || got != expected {
            failures.push(format!("{id}: expected {expected:?}, got {text}"));
        }
    };

    while !pending.is_empty() {
        // Wait no longer than the next deadline; poll returns as soon as a worker writes.
        let wait = pending
            .next_deadline()
            .map_or(Duration::ZERO, |d| d.saturating_sub(clock.elapsed()));
        match bus.poll(wait) {
            // The ring is short of room: read what is there first (below), then poll again.
            Ok(_) | Err(stdiobus_embed::Error::RingFull { .. }) => {}
            Err(error) => return Err(format!("poll: {error}")),
        }
        while let Some(event) = events.read() {
            match pending.event(event.event(), |done| report(done.id, done.outcome)) {
                Fed::Unmatched(message) => {
                    println!(
                        "   (not a pending response: {:?} {:?})",
                        message.kind(),
                        message.raw_id()
                    );
                }
                Fed::Invalid(error) => println!("   (not JSON-RPC: {error})"),
                Fed::Completed | Fed::Overflow { .. } | Fed::Other => {}
            }
        }
        pending.expire(clock.elapsed(), |done| report(done.id, done.outcome));
    }

    bus.stop(Duration::from_millis(500))
        .map_err(|f| format!("stop: {}", f.error))?;
    if failures.is_empty() {
        println!("all {} calls ended as expected", CALLS.len());
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
