//! One thread, one `poll(2)` loop: standard input and a bus driven together.
//!
//! ```text
//! cargo run --example event_loop [-- --listen HOST:PORT | --unix PATH]
//! ```
//!
//! Each line typed on stdin is sent to the bus; each message the bus delivers is printed
//! on stdout, every other event (workers, listener clients, errors) on stderr. At end of
//! input the example waits until every request it sent has been answered (at most
//! [`DRAIN`]), stops the bus and exits. The workers are this same executable, re-run
//! with `--worker`: each answers a request with its method and params as the result.
//!
//! With `--listen` or `--unix` the bus also accepts clients on a socket, and their
//! connections and disconnections are printed. Their requests reach the workers, but the
//! kernel hands the responses to the host, not back to the client (observed; see
//! `tests/listener.rs`): they are printed here on stdout like any other message, and the
//! client hears nothing.
//!
//! # One wait for everything
//!
//! The loop blocks in `poll(2)` on stdin and on [`Bus::poll_fd`], with no timeout, and
//! after every wake-up steps the bus without waiting (`bus.poll(Duration::ZERO)`). The
//! descriptor is the kernel's own event loop: it is readable exactly when a step has
//! something to do (worker output, a client, a worker that exited), so an idle loop does
//! not wake at all and a response is read as soon as it arrives. So that a burst is not
//! read one step per wake-up (a step reads about 4 KiB per ready worker), the loop does
//! not wait while the last step delivered something.
//!
//! Where the bus has no descriptor (the kernel's calls are not interposed on Apple
//! targets), the loop falls back to waiting at most [`TICK`] in `poll(2)`, which adds up
//! to that much latency to worker output.

use std::collections::HashSet;
use std::ffi::CString;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use stdiobus_embed::{
    Bus, ConfigBuffer, Consumer, Error, Event, EventMask, EventRing, Limits, Listener, Options,
    Pool, Retry, Running,
};

const USAGE: &str = "usage: event_loop [--listen HOST:PORT | --unix PATH]";

/// The longest `poll(2)` wait where the bus has no descriptor: the latency added to
/// worker output that arrives meanwhile.
const TICK: Duration = Duration::from_millis(10);
/// How long, after end of input, the example waits for the answers still owed to it.
const DRAIN: Duration = Duration::from_secs(2);
/// How long one line may be retried while the bus pushes back.
const SEND_DEADLINE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match worker() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("event_loop worker: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let listen = match parse_args(&args) {
        Ok(listen) => listen,
        Err(message) => {
            eprintln!("event_loop: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(listen) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("event_loop: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Worker mode: answer each request with `{"method":METHOD,"params":PARAMS}`.
fn worker() -> io::Result<()> {
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        let (Some(id), Some(method)) = (request.get("id"), request.get("method")) else {
            continue; // a notification or a response: nothing to answer
        };
        let params = request.get("params").unwrap_or(&serde_json::Value::Null);
        let written = writeln!(
            out,
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"method":{method},"params":{params}}}}}"#
        )
        .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Where clients may connect, as given on the command line.
enum Listen {
    None,
    Tcp { host: CString, port: u16 },
    Unix { path: CString },
}

fn parse_args(args: &[String]) -> Result<Listen, String> {
    let mut listen = Listen::None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        listen = match arg.as_str() {
            "--listen" => {
                let (host, port) = value.rsplit_once(':').ok_or("--listen takes HOST:PORT")?;
                Listen::Tcp {
                    host: CString::new(host).map_err(|e| format!("--listen: {e}"))?,
                    port: port.parse().map_err(|e| format!("--listen port: {e}"))?,
                }
            }
            "--unix" => Listen::Unix {
                path: CString::new(value.as_str()).map_err(|e| format!("--unix: {e}"))?,
            },
            _ => return Err(format!("unknown argument `{arg}`")),
        };
    }
    Ok(listen)
}

fn run(listen: Listen) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exe = exe.to_str().ok_or("the executable's path is not UTF-8")?;
    let pools = [Pool::new("echo", exe).args(&["--worker"])];
    let mut json = ConfigBuffer::<4096>::new();
    let config = json
        .write(&pools, &Limits::default())
        .map_err(|e| e.to_string())?;
    let listener = match &listen {
        Listen::None => Listener::None,
        Listen::Tcp { host, port } => Listener::Tcp { host, port: *port },
        Listen::Unix { path } => Listener::Unix { path },
    };

    let ring = EventRing::<256, 1024>::boxed();
    let (producer, mut events) = ring.split().map_err(|e| e.to_string())?;
    let options = Options::new()
        .events(EventMask::ALL - EventMask::LOG)
        .listener(listener);
    let bus = Bus::create(config, options, producer).map_err(|f| f.error.to_string())?;
    let bus = match bus.start() {
        Ok(bus) => bus,
        Err(failed) => {
            report(&mut events, &mut HashSet::new());
            // Dropping the bus that comes back kills and collects its workers.
            return Err(format!("start: {}", failed.error));
        }
    };
    let mut bus = bus;
    eprintln!(
        "event_loop: bus running, poll fd {:?}; type JSON-RPC requests, end with ^D",
        bus.poll_fd()
    );

    let mut pending = HashSet::new(); // ids of our own requests not answered yet
    let mut line = Vec::new(); // stdin bytes up to the next newline
    let mut stdin_open = true;
    let mut drain_until = None;
    let mut busy = false; // the last step delivered something
    loop {
        report(&mut events, &mut pending);
        if let Some(until) = drain_until
            && (pending.is_empty() || Instant::now() >= until)
        {
            break;
        }

        let bus_fd = bus.poll_fd();
        let mut fds = [libc::pollfd {
            fd: -1, // ignored by poll(2)
            events: libc::POLLIN,
            revents: 0,
        }; 2];
        if stdin_open {
            fds[0].fd = libc::STDIN_FILENO;
        }
        if let Some(fd) = bus_fd {
            fds[1].fd = fd;
        }
        let timeout = if busy {
            0
        } else if bus_fd.is_none() {
            TICK.as_millis() as libc::c_int
        } else if let Some(until) = drain_until {
            until
                .saturating_duration_since(Instant::now())
                .as_millis()
                .try_into()
                .unwrap_or(libc::c_int::MAX)
        } else {
            -1
        };
        // SAFETY: `fds` is a valid array of two pollfd structures.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {error}"));
            }
        }

        if fds[0].revents != 0 {
            let mut buf = [0u8; 16 * 1024];
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
            let interrupted =
                n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
            if interrupted {
                continue;
            }
            if n <= 0 {
                stdin_open = false;
                drain_until = Some(Instant::now() + DRAIN);
                line.push(b'\n'); // a last line without its newline still counts
            } else {
                line.extend_from_slice(&buf[..n as usize]);
            }
            while let Some(end) = line.iter().position(|&b| b == b'\n') {
                let one: Vec<u8> = line.drain(..=end).collect();
                let text = one.trim_ascii();
                if !text.is_empty() {
                    send(&mut bus, &mut events, &mut pending, text);
                }
            }
        }

        // Step the bus without waiting: it delivers whatever is ready by now.
        busy = match bus.poll(Duration::ZERO) {
            Ok(delivered) => delivered > 0,
            Err(Error::RingFull { .. }) => true, // read events first, then step again
            Err(error) => return Err(format!("poll: {error}")),
        };
    }

    let stopped = bus.stop(Duration::from_secs(1));
    report(&mut events, &mut pending);
    stopped.map_err(|f| format!("stop: {}", f.error))?;
    if !pending.is_empty() {
        return Err(format!("{} request(s) never answered", pending.len()));
    }
    Ok(())
}

/// Sends one line, stepping the bus while it pushes back, for at most [`SEND_DEADLINE`].
fn send(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    pending: &mut HashSet<String>,
    line: &[u8],
) {
    let deadline = Instant::now() + SEND_DEADLINE;
    loop {
        let error = match bus.send(line) {
            Ok(()) => {
                if let Some(id) = request_id(line) {
                    pending.insert(id);
                }
                return;
            }
            Err(error) => error,
        };
        if error.retry() == Retry::No || Instant::now() >= deadline {
            eprintln!("not sent: {error}");
            return;
        }
        // The worker has not read what it was given yet: let the bus work, then retry.
        report(events, pending);
        if let Err(error) = bus.poll(Duration::from_millis(1))
            && !matches!(error, Error::RingFull { .. })
        {
            eprintln!("not sent: {error}");
            return;
        }
    }
}

/// The id of a JSON-RPC request (an object with `id` and `method`), as compact JSON.
fn request_id(line: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    value.get("method")?;
    Some(value.get("id")?.to_string())
}

/// Prints every waiting event and ticks off the answers to our requests.
fn report(events: &mut Consumer<'_>, pending: &mut HashSet<String>) {
    events.drain(|event| match event {
        Event::Message { line, .. } => {
            println!("{}", String::from_utf8_lossy(line.as_bytes()));
            let response = serde_json::from_slice::<serde_json::Value>(line.as_bytes()).ok();
            if let Some(id) = response.as_ref().and_then(|r| r.get("id"))
                && response.as_ref().is_some_and(|r| r.get("method").is_none())
            {
                pending.remove(&id.to_string());
            }
        }
        Event::ClientConnected { id, peer } => eprintln!("client {id} connected from {peer}"),
        Event::ClientDisconnected { id, reason } => {
            eprintln!("client {id} disconnected ({reason})");
        }
        Event::Worker { id, event } => eprintln!("worker {id} {event}"),
        Event::Error { code, text } => eprintln!("error: {text} ({code})"),
        other => eprintln!("{other:?}"),
    });
}
