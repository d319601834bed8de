//! A bare event loop that bridges this process's stdin and stdout to a bus.
//!
//! ```text
//! cargo run --release --example relay -- CONFIG.json [--drain-timeout SECONDS]
//! ```
//!
//! The bus is built from the kernel configuration file `CONFIG.json`. Every line read on
//! stdin is sent to the bus; every line a worker writes comes out on stdout. Kernel errors,
//! logs and worker lifecycle events go to stderr, one line each.
//!
//! At the end of stdin the relay keeps running until every request it forwarded (a line
//! with both `id` and `method`) has been answered, or until the drain timeout (default
//! 5 seconds) passes, then stops the bus and exits with status 0. Bad arguments exit with
//! status 2, a bus that cannot be created or started with status 1.
//!
//! ```text
//! $ cat cfg.json
//! {"pools":[{"id":"echo","command":"/path/to/stdiobus-echo-worker","instances":2}]}
//! $ echo '{"jsonrpc":"2.0","id":1,"method":"hello"}' | relay cfg.json
//! {"jsonrpc":"2.0","id":1,"result":{"worker":"echo","pid":4242,"method":"hello","params":null}}
//! ```

use std::collections::HashSet;
use std::ffi::CString;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use stdiobus_embed::{Bus, Config, Consumer, Event, EventRing, Options, Running};

const USAGE: &str = "usage: relay CONFIG.json [--drain-timeout SECONDS]";

/// The longest time the loop waits in the kernel before it looks at stdin again.
const POLL: Duration = Duration::from_millis(5);
/// Lines read ahead of the bus before the reader thread waits.
const QUEUE: usize = 1024;
/// Lines forwarded per turn of the loop, so a fast stdin cannot hold back worker output.
const BATCH: usize = 64;
/// How long one line may be refused as "retry later" before the relay gives up on it, so a
/// pool whose workers are all gone cannot hang the relay forever.
const RETRY_LIMIT: Duration = Duration::from_secs(10);
/// What the kernel reports, as an error event and as an error log line, each time a worker's
/// stdin pipe is full (or the worker is gone) and `send` fails with `ErrorCode::Worker`.
const REFUSED: &str = "Failed to write to worker";

fn main() -> ExitCode {
    let Some((config_path, drain_timeout)) = parse_args() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };

    // 4096 slots of 1 KiB: 4 MiB on the heap, enough for any line up to almost that size.
    let ring = EventRing::<4096, 1024>::boxed();
    let (producer, events) = ring.split().expect("a fresh ring splits");
    // The kernel reads the file itself; when it is missing or invalid, it prints the
    // reason on stderr and `create` fails.
    let bus = Bus::create(Config::from_file(&config_path), Options::new(), producer)
        .map_err(|failed| failed.error)
        .and_then(|bus| bus.start().map_err(|failed| failed.error));
    let bus = match bus {
        Ok(bus) => bus,
        Err(error) => {
            eprintln!("relay: cannot start the bus: {error}");
            return ExitCode::FAILURE;
        }
    };

    let mut relay = Relay {
        bus,
        events,
        stdout: BufWriter::new(io::stdout().lock()),
        pending: HashSet::new(),
        retrying: false,
    };
    let result = relay.run(read_stdin_lines(), drain_timeout);
    let Relay { bus, .. } = relay;
    if let Err(error) = result {
        eprintln!("relay: {error}");
        // Dropping the bus stops its workers.
        return ExitCode::FAILURE;
    }
    if let Err(failed) = bus.stop(Duration::from_secs(1)) {
        eprintln!("relay: stop: {}", failed.error);
    }
    ExitCode::SUCCESS
}

/// `CONFIG.json [--drain-timeout SECONDS]`, in either order; `None` when they are wrong.
fn parse_args() -> Option<(CString, Duration)> {
    let mut config = None;
    let mut drain_timeout = Duration::from_secs(5);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--drain-timeout" {
            let seconds: f64 = args.next()?.to_str()?.parse().ok()?;
            drain_timeout = Duration::try_from_secs_f64(seconds).ok()?;
        } else if config.is_none() && !arg.to_string_lossy().starts_with('-') {
            config = Some(CString::new(arg.into_vec()).ok()?);
        } else {
            return None;
        }
    }
    Some((config?, drain_timeout))
}

/// Reads stdin on its own thread and hands over its lines, without their `\n`.
///
/// Why a thread rather than `libc::poll` on fd 0: the kernel offers no file descriptor to
/// wait on in embedded mode, so the loop cannot sleep on "stdin or the bus" either way; it
/// must alternate short waits. A blocking reader thread plus `try_recv` does that with
/// `BufRead` doing the line splitting, and it never stalls on half a line, which `poll`
/// (readable is not "a whole line is there") would need a hand-written non-blocking
/// buffer to avoid. The bounded channel stops the thread from reading far ahead of a busy
/// bus. The channel closes at end of input (or on a read error, reported here).
fn read_stdin_lines() -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::sync_channel(QUEUE);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if sender.send(line).is_err() {
                        return; // the relay is gone
                    }
                }
                Err(error) => {
                    eprintln!("relay: reading stdin: {error}");
                    return;
                }
            }
        }
    });
    receiver
}

struct Relay<'r> {
    bus: Bus<'r, Running>,
    events: Consumer<'r>,
    stdout: BufWriter<io::StdoutLock<'static>>,
    /// Ids of forwarded requests not answered yet, as JSON text: `1` and `"1"` differ.
    pending: HashSet<String>,
    /// Whether `forward` is retrying a refused line: the kernel's reports of the refusal
    /// would only repeat what the retry loop already knows, so they are not shown.
    retrying: bool,
}

impl Relay<'_> {
    /// Forwards stdin until it ends, then waits for the answers still due.
    fn run(&mut self, lines: Receiver<Vec<u8>>, drain_timeout: Duration) -> io::Result<()> {
        let mut line_number = 0;
        'input: loop {
            for _ in 0..BATCH {
                match lines.try_recv() {
                    Ok(line) => {
                        line_number += 1;
                        self.forward(&line, line_number)?;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'input,
                }
            }
            self.pump(POLL)?;
        }

        let deadline = Instant::now() + drain_timeout;
        while !self.pending.is_empty() && Instant::now() < deadline {
            self.pump(POLL)?;
        }
        if !self.pending.is_empty() {
            let mut ids: Vec<&str> = self.pending.iter().map(String::as_str).collect();
            ids.sort_unstable();
            eprintln!(
                "relay: gave up after {drain_timeout:?} waiting for the answers to ids {}",
                ids.join(", ")
            );
        }
        Ok(())
    }

    /// Sends one line, polling the bus (and delivering its events) for as long as the
    /// kernel says "try again", and remembers the id if the line is a request.
    fn forward(&mut self, line: &[u8], line_number: u64) -> io::Result<()> {
        if line.trim_ascii().is_empty() {
            return Ok(());
        }
        // Caveat (observed with the 1.1.1 archive): a line longer than 4 KiB, the size the
        // kernel can write to a pipe atomically, may be partly written before it is refused,
        // and the worker then sees it corrupted. Retrying cannot repair that.
        let started = Instant::now();
        let result = loop {
            match self.bus.send(line) {
                Err(error) if error.is_retryable() && started.elapsed() < RETRY_LIMIT => {
                    // Let the workers drain their input, then try the same line again.
                    self.retrying = true;
                    self.pump(POLL)?;
                }
                result => break result,
            }
        };
        self.retrying = false;
        if let Err(error) = result {
            eprintln!("relay: stdin line {line_number} skipped, not sent: {error}");
            return Ok(());
        }
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(line)
            && let (Some(id), Some(_)) = (json.get("id"), json.get("method"))
        {
            self.pending.insert(id.to_string());
        }
        Ok(())
    }

    /// Runs one kernel step of at most `timeout`, then writes out what it delivered.
    fn pump(&mut self, timeout: Duration) -> io::Result<()> {
        self.bus.poll(timeout).map_err(io::Error::other)?;
        while let Some(event) = self.events.read() {
            match event.event() {
                Event::Message { line, .. } => {
                    self.stdout.write_all(line.as_bytes())?;
                    self.stdout.write_all(b"\n")?;
                    answered(&mut self.pending, line.as_bytes());
                }
                Event::Error { text, .. } | Event::Log { text, .. }
                    if self.retrying && text == *REFUSED => {}
                Event::Error { code, text } => eprintln!("relay: kernel error: {text} ({code})"),
                Event::Log { level, text } => eprintln!("relay: kernel {level:?}: {text}"),
                Event::Worker { id, event } => eprintln!("relay: worker {id} {event}"),
                Event::ClientConnected { id, peer } => {
                    eprintln!("relay: client {id} connected from {peer}");
                }
                Event::ClientDisconnected { id, reason } => {
                    eprintln!("relay: client {id} disconnected: {reason}");
                }
                Event::Overflow(overflow) => {
                    let loss = overflow.loss();
                    eprintln!(
                        "relay: {} events ({} bytes) lost: the event ring was full",
                        loss.events, loss.bytes
                    );
                    // Their answers will never come: stop waiting for them.
                    for id in overflow.lost_ids() {
                        eprintln!("relay: the response to id {id} was lost");
                        if let Ok(id) = serde_json::from_slice::<serde_json::Value>(id.as_bytes()) {
                            self.pending.remove(&id.to_string());
                        }
                    }
                    if overflow.more_ids_lost() {
                        eprintln!("relay: more responses were lost than their ids could say");
                    }
                }
                other => eprintln!("relay: {other:?}"),
            }
        }
        self.stdout.flush()
    }
}

/// Crosses off the request a worker's line answers: a message with an `id` and no `method`.
fn answered(pending: &mut HashSet<String>, line: &[u8]) {
    if pending.is_empty() {
        return;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(line)
        && let (Some(id), None) = (json.get("id"), json.get("method"))
    {
        pending.remove(&id.to_string());
    }
}
