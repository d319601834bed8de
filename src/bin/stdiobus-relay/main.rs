//! `stdiobus-relay`: a stdio MCP or ACP server that is a bus of workers.
//!
//! ```text
//! stdiobus-relay CONFIG.json [--max-line BYTES] [--term-grace SECONDS]
//!                [--kill-grace SECONDS] [--request-timeout SECONDS] [--ping-interval SECONDS]
//! ```
//!
//! Put it where a client expects the command of a stdio server. It serves newline-delimited
//! JSON-RPC on stdin and stdout, and the workers of `CONFIG.json` (the kernel's
//! configuration, or an MCP client's `mcpServers` block for one server; see the README) do
//! the serving:
//!
//! - each line from stdin goes to a worker, each line a worker writes comes out on stdout,
//!   whole, up to `--max-line` bytes either way; a response to a request a worker sent goes
//!   back to that worker;
//! - a request that cannot be delivered, or whose answer can no longer come, is answered
//!   with a JSON-RPC error (codes in `output::code`);
//! - every server process has the client's MCP handshake, restarted ones and other
//!   instances too (`handshake`);
//! - with `--request-timeout`, a request not answered in time gets an error (-32005) and
//!   its late answer is dropped; with `--ping-interval`, a server process silent that long
//!   gets an MCP `ping` under the relay's own id, and is restarted when it does not answer
//!   in time (`timeouts`);
//! - when no worker is left, the requests still due are answered with errors, stdout is
//!   closed and the relay exits with status 1;
//! - at the end of stdin it stops the workers in the MCP stdio order, bounded so that a
//!   client's own kill never comes first: it closes their stdin at once, relays what they
//!   still write, sends SIGTERM to the process group of each still running after
//!   `--term-grace` (0.5 s) and SIGKILL after `--kill-grace` (1 s) more; SIGTERM, SIGINT
//!   and SIGHUP start that same stop. It exits with status 0.
//!
//! Bad arguments exit with status 2; a configuration the bus refuses or that names more than
//! one pool, or a worker command that cannot be executed, with status 1 and the reason on
//! stderr. A server process that dies within 1 s of its start 3 times in a row ends the
//! relay at once, with its exit status (128 + the signal for one killed), after the server's
//! own stderr lines (inherited unless its pool says otherwise). Everything else the
//! relay has to say goes to stderr, one line each.

mod args;
mod handshake;
mod input;
mod output;
mod signals;
mod timeouts;

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use stdiobus_embed::config::{self, MCP_SERVERS_SLACK, NORMALIZE_SLACK};
use stdiobus_embed::jsonrpc::{self, Kind, Message};
use stdiobus_embed::{
    Bus, Config, Error, EventRing, ExitStatus, Limits, LogLevel, Options, RequestSlot, Running,
    WorkerId,
};

use args::{Args, NotRun, USAGE};
use handshake::Step;
use input::{Input, Line};
use output::{Output, code};
use signals::Signals;
use timeouts::PingAction;

/// The event ring: 4096 slots of 1 KiB, 4 MiB on the heap (touched only as used). A
/// longer line goes straight to stdout through the overflow handler.
type Ring = EventRing<4096, 1024>;
/// Requests in flight at once, remembered so that a worker's end answers them.
const REQUESTS: usize = 4096;
/// How long a line refused as "retry later" is retried before the client is told.
const RETRY_LIMIT: Duration = Duration::from_secs(10);
/// Each wait in the kernel while a refused line is retried.
const RETRY_WAIT: Duration = Duration::from_millis(1);
/// How long the stop waits beyond `--kill-grace`, for the bus to give up on workers it
/// killed, as `Bus::stop` does.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Each wait in the kernel while the workers stop.
const STOP_WAIT: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(NotRun::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(NotRun::Bad(why)) => {
            eprintln!("stdiobus-relay: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(why) => {
            eprintln!("stdiobus-relay: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Why serving stopped.
enum End {
    InputEnded,
    Signal(libc::c_int),
    NoWorker,
    /// Stdout failed: the client is gone.
    ClientGone,
    /// A worker's process died at its start [`output::QUICK_DEATHS`] times in a row, the
    /// last time with this status.
    CrashLoop(WorkerId, ExitStatus),
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let signals = Signals::install().map_err(|e| format!("cannot handle signals: {e}"))?;
    let path = args.config.display();
    let text = std::fs::read_to_string(&args.config).map_err(|e| format!("{path}: {e}"))?;
    // The kernel takes lines up to --max-line from the workers unless the file says
    // otherwise (its limit counts the newline).
    let defaults = Limits {
        max_input_buffer: Some(u32::try_from(args.max_line + 1).unwrap_or(u32::MAX)),
        ..Limits::new()
    };
    // An MCP client's `mcpServers` block for one server is read as one pool of it.
    let mut pools = vec![0; text.len() + MCP_SERVERS_SLACK];
    let text = config::from_mcp_servers(&text, &mut pools)
        .map_err(|e| format!("{path}: {e}"))?
        .unwrap_or(&text);
    // The relay stands in for one server: requests name no pool, so a second one would
    // never be reached.
    let mut ids = Vec::new();
    config::pool_ids(text, |id| ids.push(id.to_string()));
    if ids.len() > 1 {
        return Err(format!(
            "{path}: \"pools\" has {} pools ({}); the relay serves one: keep one in \"pools\"",
            ids.len(),
            ids.join(", ")
        ));
    }
    // The bus borrows its configuration, its ring and its tables: they outlive the relay.
    let mut json = vec![0; text.len() + NORMALIZE_SLACK];
    let config =
        Config::normalize(text, &defaults, &mut json).map_err(|e| format!("{path}: {e}"))?;
    let ring = Ring::boxed();
    let (producer, consumer) = ring.split().expect("a new ring splits");
    let mut requests = vec![RequestSlot::EMPTY; REQUESTS];
    // A line longer than a worker's stdin pipe waits here for the worker to read it. Zeroed
    // pages that are never written cost no memory.
    let mut send_buffer = vec![0; args.max_line + 1];
    // Rust's runtime leaves SIGPIPE ignored, and the relay keeps it so: its writes to
    // servers need not block it one by one.
    let options = Options::new()
        .log_level(LogLevel::Warn)
        .sigpipe_ignored(true);
    let mut bus = Bus::create(config, options, producer)
        .map_err(|failed| format!("{path}: the bus refused it: {}", failed.error))?;
    bus.set_request_table(&mut requests);
    bus.set_send_buffer(&mut send_buffer);
    // SAFETY: descriptor 1 is this process's stdout, which nothing else in it writes to;
    // the relay closes it when it has nothing more to say.
    let stdout = File::from(unsafe { OwnedFd::from_raw_fd(libc::STDOUT_FILENO) });
    let mut output = Output::new(consumer, stdout, args.request_timeout, args.ping_interval);
    let bus = bus
        .start()
        .map_err(|failed| format!("{path}: cannot start the workers: {}", failed.error))?;
    output.started(bus.worker_count());
    let mut relay = Relay {
        bus,
        output,
        input: Input::new(libc::STDIN_FILENO, args.max_line),
        signals,
        request_timeout: args.request_timeout,
    };
    let (term, kill) = (args.term_grace, args.kill_grace);
    match relay.serve() {
        End::NoWorker => {
            relay.give_up();
            Err("no worker is left: every one has ended".into())
        }
        End::CrashLoop(worker, status) => {
            relay.give_up();
            eprintln!(
                "stdiobus-relay: worker {worker} died within {} s of its start {} times in a \
                 row, the last time with {status} (its stderr is above): ending, as the \
                 server run directly would",
                output::QUICK_DEATH.as_secs_f64(),
                output::QUICK_DEATHS,
            );
            let code = match status {
                ExitStatus::Code(code) => u8::try_from(code).unwrap_or(1),
                ExitStatus::Signal(signal) => u8::try_from(128 + signal).unwrap_or(1),
                ExitStatus::Unknown => 1,
            };
            Ok(ExitCode::from(code.max(1)))
        }
        End::ClientGone => {
            relay.stop(term, kill, "the client closed the connection");
            Err("stdout is closed: the client is gone".into())
        }
        End::InputEnded => {
            relay.stop(term, kill, "the relay's input ended");
            Ok(ExitCode::SUCCESS)
        }
        End::Signal(signal) => {
            relay.stop(term, kill, &signal_reason(signal));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn signal_reason(signal: libc::c_int) -> String {
    let name = match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    format!("the relay was stopped by {name}")
}

struct Relay<'r> {
    bus: Bus<'r, Running>,
    /// Everything that goes to the client. The bus's calls that step the kernel lend it to
    /// their overflow handler (`Bus::poll_with`), which writes out what the ring cannot
    /// hold at once, after the older lines.
    output: Output<'r>,
    input: Input,
    signals: Signals,
    /// `--request-timeout`, for the error message.
    request_timeout: Option<Duration>,
}

impl Relay<'_> {
    /// Relays until stdin ends, a signal comes, no worker is left or the client is gone.
    fn serve(&mut self) -> End {
        loop {
            let readable = self.wait(Some(libc::STDIN_FILENO), None);
            self.keep_deadlines();
            if let Some(end) = self.signal() {
                return end;
            }
            if readable {
                if let Err(error) = self.input.fill() {
                    eprintln!("stdiobus-relay: reading stdin: {error}");
                }
                while let Some(line) = self.input.next() {
                    let line = match line {
                        Line::Whole(line) => line,
                        Line::TooLong(len) => {
                            let message = format!(
                                "stdiobus-relay: a line of {len} bytes is longer than --max-line"
                            );
                            self.output.refuse("null", code::INVALID_REQUEST, &message);
                            continue;
                        }
                    };
                    forward(&mut self.bus, &mut self.output, &self.signals, line);
                }
            }
            self.pump(Duration::ZERO);
            if let Some(end) = self.ended() {
                return end;
            }
            if self.input.ended() {
                return End::InputEnded;
            }
        }
    }

    /// The MCP stdio shutdown, bounded: the workers' stdin closes at once, those still
    /// running after `term_grace` get SIGTERM (to their process group, so whatever they
    /// started too), and SIGKILL `kill_grace` later. What the workers write meanwhile goes
    /// to the client; a request still due at the end is answered with an error saying
    /// `why`, and stdout closes. A second signal cuts the first grace short.
    fn stop(mut self, term_grace: Duration, kill_grace: Duration, why: &str) {
        self.bus.close_worker_stdin();
        let message = format!("stdiobus-relay: {why}");
        self.output.stopping(&message);
        let deadline = Instant::now() + term_grace;
        while !self.output.none_running() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.wait(None, Some(left));
            if matches!(self.signal(), Some(End::Signal(_))) {
                break; // a second signal: no more waiting
            }
            self.pump(Duration::ZERO);
        }
        // Whatever the workers wrote before they ended goes out first.
        self.pump(Duration::ZERO);
        let Self {
            bus, mut output, ..
        } = self;
        if let Err(error) = stop_bus(bus, kill_grace, &mut output) {
            eprintln!("stdiobus-relay: stopping the workers: {error}");
        }
        output.drain();
        output.refuse_all(code::NO_SERVER, &message);
        output.close();
    }

    /// No worker is left: what is due is answered, stdout closes, and the bus stops.
    fn give_up(self) {
        let Self {
            bus, mut output, ..
        } = self;
        output.drain();
        output.refuse_all(code::NO_SERVER, "stdiobus-relay: no server process is left");
        output.close();
        let _ = stop_bus(bus, Duration::ZERO, &mut output);
    }

    /// Acts on the deadlines that have come: the client's requests not answered in
    /// time get an error, silent servers a ping, and those that did not answer their
    /// ping are restarted.
    fn keep_deadlines(&mut self) {
        let now = Instant::now();
        if let Some(timeout) = self.request_timeout {
            self.output.expire(now, timeout);
        }
        for action in self.output.pings_due(now) {
            match action {
                PingAction::Send(worker, line) => {
                    if let Err(error) = self.bus.send_to_worker(worker, line.as_bytes()) {
                        // Left owed: no answer by the deadline restarts it all the same.
                        eprintln!(
                            "stdiobus-relay: the ping to worker {worker} did not go: {error}"
                        );
                    }
                }
                PingAction::Restart(worker) => {
                    eprintln!(
                        "stdiobus-relay: worker {worker} did not answer its ping: restarting it"
                    );
                    if let Err(error) = self.bus.restart_worker(worker) {
                        eprintln!("stdiobus-relay: restarting worker {worker}: {error}");
                    }
                }
            }
        }
        self.output.flush();
    }

    /// Waits until the bus, the signal pipe, or `input` if given has something, or
    /// `timeout` passes (`None`: no limit), or the next request deadline or ping is due;
    /// whether `input` is readable.
    fn wait(&mut self, input: Option<libc::c_int>, timeout: Option<Duration>) -> bool {
        let next = self.output.next_deadline();
        let until_next = next.map(|at| at.saturating_duration_since(Instant::now()));
        let timeout = match (timeout, until_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let watch = |fd: libc::c_int| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [watch(self.signals.fd()), watch(-1), watch(-1)];
        // Where the bus has no descriptor (Apple targets), it is polled every millisecond.
        let mut timeout = timeout.map_or(-1, |t| t.as_millis().clamp(1, i32::MAX as u128) as i32);
        match self.bus.poll_fd() {
            Some(fd) => fds[1] = watch(fd),
            None => timeout = if timeout < 0 { 1 } else { timeout.min(1) },
        }
        if let Some(fd) = input.filter(|_| !self.input.closed()) {
            fds[2] = watch(fd);
        }
        // SAFETY: `fds` is a valid array of three pollfds; negative descriptors are skipped.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
        ready > 0 && fds[2].revents != 0
    }

    /// A signal that came, as the end it asks for.
    fn signal(&mut self) -> Option<End> {
        match self.signals.take() {
            0 => None,
            signal => Some(End::Signal(signal)),
        }
    }

    /// Whether the relay must end: no worker left, or the client gone.
    fn ended(&self) -> Option<End> {
        if let Some((worker, status)) = self.output.crash_loop() {
            Some(End::CrashLoop(worker, status))
        } else if self.output.broken() {
            Some(End::ClientGone)
        } else if self.output.no_worker_left() {
            Some(End::NoWorker)
        } else {
            None
        }
    }

    /// One step of the bus, and its events out to the client.
    fn pump(&mut self, timeout: Duration) {
        pump(&mut self.bus, &mut self.output, timeout);
    }
}

/// One step of the bus of at most `timeout`, and its events out to the client: what the
/// ring cannot hold goes out from inside the step.
fn pump(bus: &mut Bus<'_, Running>, output: &mut Output<'_>, timeout: Duration) {
    match bus.poll_with(timeout, |event| output.overflowed(event)) {
        // The ring is drained right below: the next step has room again.
        Ok(_) | Err(Error::RingFull { .. }) => {}
        Err(error) => eprintln!("stdiobus-relay: poll: {error}"),
    }
    output.drain();
    output.flush();
    catch_up(bus, output);
}

/// The bus's graceful stop (see `Bus::begin_stop`), its events out to the client as they
/// come, what the ring cannot hold from inside each step.
fn stop_bus(bus: Bus<'_, Running>, drain: Duration, output: &mut Output<'_>) -> Result<(), Error> {
    let deadline = Instant::now() + drain + STOP_GRACE;
    let mut stopping = bus.begin_stop(drain).map_err(|failed| failed.error)?;
    loop {
        stopping = match stopping.try_finish() {
            Ok(_stopped) => return Ok(()),
            Err(stopping) => stopping,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::StopTimedOut);
        }
        match stopping.poll_stop_with(left.min(STOP_WAIT), |event| output.overflowed(event)) {
            // The ring is drained right below: the next step has room again.
            Ok(_) | Err(Error::RingFull { .. }) => {}
            Err(error) => return Err(error),
        }
        output.drain();
        output.flush();
    }
}

/// Brings each running worker that has not had the client's MCP handshake (a restarted
/// one, another instance) up to where the client is, line by line. A worker whose pipe is
/// full now gets the rest at a later step.
fn catch_up(bus: &mut Bus<'_, Running>, output: &mut Output<'_>) {
    let owed = output.owed_handshake();
    for (worker, from, lines) in owed {
        let mut had = from;
        for line in &lines {
            match bus.send_to_worker(worker, line) {
                Ok(()) => had += 1,
                Err(error) if error.is_retryable() => break,
                Err(error) => {
                    eprintln!(
                        "stdiobus-relay: the handshake did not reach worker {worker}: {error}"
                    );
                    had = from + lines.len();
                    break;
                }
            }
        }
        output.had_handshake(worker, had);
    }
}

/// Hands one line from the client to a worker: a request to the next worker of its pool,
/// a response to the worker that asked.
fn forward(bus: &mut Bus<'_, Running>, output: &mut Output<'_>, signals: &Signals, line: &[u8]) {
    if line.trim_ascii().is_empty() {
        return;
    }
    // What the relay cannot read is still the worker's to answer: the kernel takes any
    // JSON, and a line it refuses gets an error below, as a server gives for bad input.
    let message = Message::parse(line).ok();
    let id = message.and_then(|m| m.raw_id()).unwrap_or("null");
    let kind = message.map(|m| m.kind());
    let step = message.map_or(Step::Other, |m| output.handshake(line, &m));
    let mut worker = None;
    match kind {
        Some(Kind::Request) => output.requested(id),
        Some(Kind::Notification) => {
            if let Some(m) = message
                && m.method()
                    .is_some_and(|method| method.eq_str("notifications/cancelled"))
                && let Some(request) = m.params().and_then(|p| jsonrpc::member(p, "requestId"))
            {
                output.cancelled(request);
            }
        }
        Some(Kind::Result | Kind::Error) => worker = output.asker(id),
        None => {}
    }
    let delivered = match step {
        Step::Initialize => initialize(bus, output, signals, line),
        Step::Initialized => {
            catch_up(bus, output);
            Ok(())
        }
        Step::Other => deliver(bus, output, signals, line, worker),
    };
    if let Err(error) = delivered {
        let is_request = matches!(kind, Some(Kind::Request) | None);
        let code = match error {
            Error::Kernel(stdiobus_embed::ErrorCode::Invalid) => code::PARSE_ERROR,
            _ => code::NOT_DELIVERED,
        };
        if is_request {
            output.refuse(id, code, &format!("stdiobus-relay: not delivered: {error}"));
        } else {
            eprintln!("stdiobus-relay: a message from the client was not delivered: {error}");
        }
    }
}

/// The client's `initialize`: to the first worker that takes it, whose answer the client
/// gets, and a copy to every other (see `handshake`).
fn initialize(
    bus: &mut Bus<'_, Running>,
    output: &mut Output<'_>,
    signals: &Signals,
    line: &[u8],
) -> Result<(), Error> {
    let mut last = Error::NoWorker;
    for worker in (0..bus.worker_count() as u32).map(WorkerId::new) {
        if !output.serving(worker) {
            continue;
        }
        // Counted as had before it goes, so that the steps of a retry give no copy to it.
        output.had_handshake(worker, 1);
        match deliver(bus, output, signals, line, Some(worker)) {
            Ok(()) => {
                catch_up(bus, output);
                return Ok(());
            }
            Err(error) => {
                output.had_handshake(worker, 0);
                last = error;
            }
        }
    }
    Err(last)
}

/// Sends `line` (to `worker`, if given), retrying while the bus says "later": polling
/// lets the workers read their input, and restarts come. A signal ends the retries.
fn deliver(
    bus: &mut Bus<'_, Running>,
    output: &mut Output<'_>,
    signals: &Signals,
    line: &[u8],
    worker: Option<WorkerId>,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let sent = match worker {
            Some(worker) => bus.send_to_worker(worker, line),
            None => bus.send(line),
        };
        match sent {
            Err(error)
                if error.is_retryable()
                    && started.elapsed() < RETRY_LIMIT
                    && !signals.pending()
                    && !output.no_worker_left()
                    && output.crash_loop().is_none() =>
            {
                pump(bus, output, RETRY_WAIT);
            }
            sent => return sent,
        }
    }
}
