//! Round trips through a bus of real echo worker processes: the crate's main job.
//!
//! ```text
//! cargo run --release --example echo [-- --requests N --workers W]
//! ```
//!
//! The example starts a bus in embedded mode with a pool of `W` workers (default 2). Each
//! worker is this same executable, re-run with `--worker`: it reads JSON-RPC requests on
//! stdin and answers each with its `params` as the `result`.
//!
//! The host then sends `N` requests (default 10 000) one at a time, measuring each round
//! trip, and `N` more with 64 in flight, measuring throughput. Every response is checked
//! (its id, and a result equal to the params sent). It prints the round-trip percentiles and
//! the pipelined rate, stops the bus, and exits with status 1 on any failure: a wrong or
//! missing response, an error or overflow event, a worker that stops, or a timeout.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use stdiobus_embed::jsonrpc::{Kind, Message};
use stdiobus_embed::{
    Bus, ConfigBuffer, Consumer, Event, EventMask, EventRing, Limits, Options, Pool, Running,
    WorkerEvent,
};

const USAGE: &str = "usage: echo [--requests N] [--workers W]";

/// How long to wait for any one response before giving up.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(5);
/// Requests in flight during the pipelined phase.
const WINDOW: usize = 64;
/// The longest single `poll`: short enough to check the deadline regularly. `poll` returns
/// as soon as a worker writes, so this does not add latency.
const POLL: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match worker() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("echo worker: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let (requests, workers) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("echo: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(requests, workers) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("echo: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Worker mode: answer every JSON-RPC request on stdin with its params as the result. The
/// crate's own reader takes each line apart in place; one buffer serves every line.
fn worker() -> io::Result<()> {
    let (mut input, mut out) = (io::stdin().lock(), io::stdout().lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let request = match Message::parse(line.trim_ascii_end()) {
            Ok(message) if message.kind() == Kind::Request => message,
            _ => continue, // not a request: nothing to answer
        };
        let (id, params) = (request.raw_id().unwrap_or("null"), request.params());
        let written = writeln!(
            out,
            r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
            params.unwrap_or("null")
        )
        .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            // The bus closed our stdout: nobody is left to answer.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

fn parse_args(args: &[String]) -> Result<(usize, u32), String> {
    let (mut requests, mut workers) = (10_000, 2);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--requests" => requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?,
            "--workers" => workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if requests == 0 || workers == 0 {
        return Err("--requests and --workers must be at least 1".into());
    }
    Ok((requests, workers))
}

fn run(requests: usize, workers: u32) -> Result<(), String> {
    // The pool runs this very executable in worker mode.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exe = exe.to_str().ok_or("the executable's path is not UTF-8")?;
    let pools = [Pool::new("echo", exe)
        .args(&["--worker"])
        .instances(workers)];
    let mut json = ConfigBuffer::<4096>::new();
    let config = json
        .write(&pools, &Limits::default())
        .map_err(|e| e.to_string())?;

    // 1024 slots of 256 bytes: far more than the 64 responses that can be waiting at once.
    let ring = EventRing::<1024, 256>::boxed();
    let (producer, mut events) = ring.split().map_err(|e| e.to_string())?;
    // Kernel log lines are not failures; leave them out of the ring.
    let options = Options::new().events(EventMask::ALL - EventMask::LOG);
    let bus = Bus::create(config, options, producer).map_err(|f| f.error.to_string())?;
    let mut bus = bus.start().map_err(|f| f.error.to_string())?;

    // Every request is formatted before any timing starts: ids 0..N for the ping-pong
    // phase, N..2N for the pipelined one. Params are {"n": id}, so a correct result is
    // {"n": id} too.
    let all: Vec<Vec<u8>> = (0..2 * requests as u64)
        .map(|id| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":{{"n":{id}}}}}"#)
                .into_bytes()
        })
        .collect();
    let (ping_pong, pipelined) = all.split_at(requests);

    // Phase 1: one request at a time.
    let mut round_trips = Vec::with_capacity(requests);
    for (id, request) in (0..).zip(ping_pong) {
        let started = Instant::now();
        bus.send(request)
            .map_err(|e| format!("send request {id}: {e}"))?;
        let answered = wait_response(&mut bus, &mut events)?;
        if answered != id {
            return Err(format!("sent request {id}, got the response to {answered}"));
        }
        round_trips.push(started.elapsed());
    }

    // Phase 2: keep WINDOW requests in flight. Responses may come back in any order (two
    // workers), so each one is ticked off in `answered`. 64 small requests never fill a
    // worker's stdin pipe (about 60 KiB), so `send` has no back-pressure to deal with here.
    let first_id = requests as u64;
    let mut answered = vec![false; requests];
    let (mut sent, mut received) = (0, 0);
    let started = Instant::now();
    while received < requests {
        while sent < requests && sent - received < WINDOW {
            let id = first_id + sent as u64;
            bus.send(&pipelined[sent])
                .map_err(|e| format!("send request {id}: {e}"))?;
            sent += 1;
        }
        let id = wait_response(&mut bus, &mut events)?;
        let index = id
            .checked_sub(first_id)
            .map(|i| i as usize)
            .filter(|&i| i < sent && !answered[i])
            .ok_or(format!("unexpected response to request {id}"))?;
        answered[index] = true;
        received += 1;
    }
    let elapsed = started.elapsed();

    round_trips.sort_unstable();
    // In whole tenths of a microsecond, in integers: formatting a float would add its
    // formatting code to the static images this example is measured as.
    let percentile = |per_mille: usize| {
        let index = ((round_trips.len() - 1) * per_mille + 500) / 1000;
        let tenths = round_trips[index].as_nanos() / 100;
        format!("{}.{}", tenths / 10, tenths % 10)
    };
    println!("{requests} requests, {workers} worker process(es)");
    println!(
        "ping-pong round trip: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        percentile(500),
        percentile(900),
        percentile(990),
        percentile(1000),
    );
    let nanos = elapsed.as_nanos().max(1);
    println!(
        "pipelined ({WINDOW} in flight): {} messages/s",
        (requests as u128 * 1_000_000_000 + nanos / 2) / nanos
    );

    // The figures are out; now the bus must shut down cleanly too.
    bus.stop(Duration::from_secs(1))
        .map_err(|f| format!("stop: {}", f.error))?;
    Ok(())
}

/// Polls until the next response arrives and returns its id, having checked that its
/// result equals the params that were sent. Any other event is a failure, except workers
/// starting up.
fn wait_response(bus: &mut Bus<'_, Running>, events: &mut Consumer<'_>) -> Result<u64, String> {
    let deadline = Instant::now() + RESPONSE_DEADLINE;
    loop {
        if let Some(event) = events.read() {
            match event.event() {
                Event::Message { line, .. } => {
                    return parse_response(line.as_bytes())
                        .ok_or_else(|| format!("not a correct response: {line}"));
                }
                Event::Worker {
                    event: WorkerEvent::Started,
                    ..
                } => continue,
                other => return Err(format!("unexpected event: {other:?}")),
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("no response within {RESPONSE_DEADLINE:?}"));
        }
        bus.poll(POLL.min(deadline - now))
            .map_err(|e| format!("poll: {e}"))?;
    }
}

/// Reads `{"jsonrpc":"2.0","id":ID,"result":{"n":N}}`, exactly as the worker writes it,
/// without allocating; returns ID when N equals it (the result is the params sent).
fn parse_response(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(br#"{"jsonrpc":"2.0","id":"#)?;
    let (id, rest) = split_number(rest)?;
    let rest = rest.strip_prefix(br#","result":{"n":"#)?;
    let (n, rest) = split_number(rest)?;
    (rest == b"}}" && n == id).then_some(id)
}

/// Splits a leading unsigned decimal number off `bytes`.
fn split_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = bytes.split_at(digits);
    let number = std::str::from_utf8(number).ok()?.parse().ok()?;
    Some((number, rest))
}
