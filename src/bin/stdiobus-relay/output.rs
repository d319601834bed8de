//! Everything that goes to the client: the workers' lines, and an error response for each
//! request that cannot be answered, with what the relay must remember to tell which.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use stdiobus_embed::jsonrpc::{Kind, Message};
use stdiobus_embed::{Consumer, Event, ExitStatus, WorkerEvent, WorkerId};

use crate::handshake::{Handshake, Step, is_replay_id};
use crate::timeouts::{PingAction, Pings, RequestDeadlines, is_ping_id};

/// JSON-RPC error codes of the relay's own answers, in the range the specification leaves
/// to implementations.
pub mod code {
    /// The request could not be handed to a worker.
    pub const NOT_DELIVERED: i32 = -32000;
    /// The worker that had the request ended before it answered.
    pub const WORKER_ENDED: i32 = -32001;
    /// The answer was lost on its way back.
    pub const ANSWER_LOST: i32 = -32002;
    /// The relay is stopping, or no worker is left to serve.
    pub const NO_SERVER: i32 = -32003;
    /// The answer was longer than the longest line the relay takes (`--max-line`).
    pub const ANSWER_TOO_LONG: i32 = -32004;
    /// No answer came within `--request-timeout`.
    pub const TIMED_OUT: i32 = -32005;
    /// JSON-RPC's own: the line is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// JSON-RPC's own: the line is JSON but not a request or response.
    pub const INVALID_REQUEST: i32 = -32600;
}

/// A server process that ends within this long of its start died at its start.
pub const QUICK_DEATH: Duration = Duration::from_secs(1);
/// A worker whose process dies at its start this many times in a row ends the relay, as
/// the server run directly would have ended at once.
pub const QUICK_DEATHS: u32 = 3;

/// Where each worker stands, as the bus's events tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worker {
    Serving,
    /// Exited after a crash: a restart may come, or `failed`.
    Ended,
    /// Exited cleanly or `failed`: not coming back.
    Gone,
}

pub struct Output<'r> {
    events: Consumer<'r>,
    client: Client,
    /// Whether anything was written since the last flush.
    unflushed: bool,
    /// Writing to stdout failed: the client is gone, and nothing more is written.
    broken: bool,
}

/// The client's end: its stdout, and what is owed to it and by whom.
struct Client {
    stdout: BufWriter<File>,
    /// Requests from the client not answered yet, by raw id (`1` and `"1"` differ), with
    /// whether a `notifications/cancelled` came for them.
    pending: HashMap<Box<str>, bool>,
    /// Requests the workers sent to the client, by raw id: which worker sent each, so the
    /// client's response goes back to it.
    asked: HashMap<Box<str>, WorkerId>,
    workers: Vec<Worker>,
    /// The client's MCP handshake, for the server processes that have not had it.
    handshake: Handshake,
    /// The deadlines of the client's requests (`--request-timeout`).
    deadlines: RequestDeadlines,
    /// The pings of silent server processes (`--ping-interval`).
    pings: Pings,
    /// Once the relay is stopping, why: the error a request gets when its worker ends
    /// unanswered.
    stopping: Option<Box<str>>,
    /// Each worker's last start, and how many of its processes in a row died within
    /// [`QUICK_DEATH`] of theirs.
    starts: Vec<(Instant, u32)>,
    /// The worker that died at its start [`QUICK_DEATHS`] times in a row, and its last
    /// exit status.
    crash_loop: Option<(WorkerId, ExitStatus)>,
}

impl<'r> Output<'r> {
    pub fn new(
        events: Consumer<'r>,
        stdout: File,
        request_timeout: Option<Duration>,
        ping_interval: Option<Duration>,
    ) -> Self {
        Self {
            events,
            client: Client {
                // Large enough for most lines in one write; a larger one goes straight out.
                stdout: BufWriter::with_capacity(64 << 10, stdout),
                pending: HashMap::new(),
                asked: HashMap::new(),
                workers: Vec::new(),
                handshake: Handshake::default(),
                deadlines: RequestDeadlines::new(request_timeout),
                pings: Pings::new(ping_interval, request_timeout),
                stopping: None,
                starts: Vec::new(),
                crash_loop: None,
            },
            unflushed: false,
            broken: false,
        }
    }

    /// The bus started `count` workers.
    pub fn started(&mut self, count: usize) {
        self.client.workers = vec![Worker::Serving; count];
        let now = Instant::now();
        self.client.starts = vec![(now, 0); count];
        for id in (0..count as u32).map(WorkerId::new) {
            self.client.pings.heard(id, now);
        }
    }

    /// The relay is stopping, with this message for the requests left unanswered.
    pub fn stopping(&mut self, message: &str) {
        self.client.stopping = Some(message.into());
    }

    /// Notes a request the client sent, before it goes to a worker.
    pub fn requested(&mut self, id: &str) {
        self.client.pending.insert(id.into(), false);
        self.client.deadlines.sent(id, Instant::now());
    }

    /// The request `id` was not delivered: the client gets `message`, with `code`.
    pub fn refuse(&mut self, id: &str, code: i32, message: &str) {
        self.client.pending.remove(id);
        self.client.deadlines.settled(id);
        self.error(id, code, message);
    }

    /// A `notifications/cancelled` for request `id`: its answer is no longer waited for.
    pub fn cancelled(&mut self, id: &str) {
        if let Some(cancelled) = self.client.pending.get_mut(id) {
            *cancelled = true;
            self.client.deadlines.settled(id);
        }
    }

    /// Answers with an error each request whose `--request-timeout` has passed by `now`;
    /// their late answers are dropped.
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        for id in self.client.deadlines.expire(now) {
            if self.client.pending.remove(&id).is_some() {
                let message = format!(
                    "stdiobus-relay: no answer within --request-timeout ({} s)",
                    timeout.as_secs_f64()
                );
                self.error(&id, code::TIMED_OUT, &message);
            }
        }
    }

    /// The pings due at `now`, and the servers that did not answer theirs in time.
    pub fn pings_due(&mut self, now: Instant) -> Vec<PingAction> {
        let workers = &self.client.workers;
        self.client
            .pings
            .due(now, |id| workers.get(id.index()) == Some(&Worker::Serving))
    }

    /// When the next request deadline or ping is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let requests = self.client.deadlines.next();
        let pings = self.client.pings.next();
        requests.into_iter().chain(pings).min()
    }

    /// The worker that sent request `id` to the client, which answers it now.
    pub fn asker(&mut self, id: &str) -> Option<WorkerId> {
        self.client.asked.remove(id)
    }

    /// Notes `line` from the client, parsed as `message`: what it is to the handshake.
    pub fn handshake(&mut self, line: &[u8], message: &Message<'_>) -> Step {
        self.client.handshake.note(line, message)
    }

    /// Worker `id` has had the first `lines` lines of the handshake.
    pub fn had_handshake(&mut self, id: WorkerId, lines: usize) {
        self.client.handshake.had(id, lines);
    }

    /// Each running worker that has not had all of the handshake: how many lines it has
    /// had, and the lines it is to get now.
    pub fn owed_handshake(&mut self) -> Vec<(WorkerId, usize, Vec<Vec<u8>>)> {
        let len = self.client.handshake.len();
        let mut owed = Vec::new();
        for id in (0..self.client.workers.len() as u32).map(WorkerId::new) {
            let had = self.client.handshake.progress(id);
            if self.serving(id) && had < len {
                let lines = (had..len)
                    .filter_map(|line| self.client.handshake.line(line))
                    .collect();
                owed.push((id, had, lines));
            }
        }
        owed
    }

    /// Whether worker `id` runs.
    pub fn serving(&self, id: WorkerId) -> bool {
        self.client.workers.get(id.index()) == Some(&Worker::Serving)
    }

    /// A worker whose process died at its start [`QUICK_DEATHS`] times in a row, and its
    /// last exit status.
    pub fn crash_loop(&self) -> Option<(WorkerId, ExitStatus)> {
        self.client.crash_loop
    }

    /// Whether every worker is gone for good.
    pub fn no_worker_left(&self) -> bool {
        self.client.workers.iter().all(|&w| w == Worker::Gone)
    }

    /// Whether no worker process runs.
    pub fn none_running(&self) -> bool {
        self.client.workers.iter().all(|&w| w != Worker::Serving)
    }

    /// Whether stdout failed: the client is gone.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Answers every request still due with `code` and `message`; a cancelled one gets
    /// nothing, as the client expects.
    pub fn refuse_all(&mut self, code: i32, message: &str) {
        let mut ids: Vec<Box<str>> = self
            .client
            .pending
            .drain()
            .filter_map(|(id, cancelled)| (!cancelled).then_some(id))
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.error(&id, code, message);
        }
    }

    /// Writes out every event waiting in the ring.
    pub fn drain(&mut self) {
        loop {
            let handled = match self.events.read() {
                Some(event) => self.client.handle(event.event()),
                None => return,
            };
            self.wrote(handled);
        }
    }

    /// An event that did not fit in the ring, inside the kernel's call: the older ones
    /// still in the ring go first, so the client sees every line in the order written.
    pub fn overflowed(&mut self, event: Event<'_>) {
        self.drain();
        let handled = self.client.handle(event);
        self.wrote(handled);
    }

    pub fn flush(&mut self) {
        if std::mem::take(&mut self.unflushed) && !self.broken {
            let flushed = self.client.stdout.flush();
            self.wrote(flushed);
        }
    }

    /// Flushes and closes stdout: the client sees the end of the stream.
    pub fn close(&mut self) {
        self.flush();
        self.broken = true;
        // The stream ends now, though the output lives on while the bus stops: /dev/null
        // takes descriptor 1's place, so what is still written goes nowhere and the
        // number `stdout` owns never comes to name another file.
        // SAFETY: plain calls on descriptors this process owns; `null` is closed once.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if null >= 0 {
                libc::dup2(null, libc::STDOUT_FILENO);
                libc::close(null);
            }
        }
    }

    fn error(&mut self, id: &str, code: i32, message: &str) {
        let written = write_error(&mut self.client.stdout, id, code, message);
        self.wrote(written);
    }

    /// Notes what a write to stdout came to.
    fn wrote(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.unflushed = true,
            Err(error) if !self.broken => {
                eprintln!("stdiobus-relay: writing stdout: {error}");
                self.broken = true;
            }
            Err(_) => {}
        }
    }
}

impl Client {
    /// Writes out one event, and notes what it settles.
    fn handle(&mut self, event: Event<'_>) -> io::Result<()> {
        match event {
            Event::Message { worker, line } => {
                let message = Message::parse(line.as_bytes()).ok();
                if let Some(message) = message.filter(|m| m.raw_id().is_some_and(is_replay_id)) {
                    // The answer to the relay's copy of the handshake: not the client's.
                    if let Some(error) = message.error() {
                        eprintln!(
                            "stdiobus-relay: worker {} refused the client's initialize: {}",
                            worker.map_or(-1, |worker| i64::from(worker.get())),
                            error.raw
                        );
                    }
                    return Ok(());
                }
                if let Some(worker) = worker {
                    self.pings.heard(worker, Instant::now());
                }
                if let Some(message) = message
                    && let Some(id) = message.raw_id()
                    && matches!(message.kind(), Kind::Result | Kind::Error)
                {
                    if is_ping_id(id) {
                        // The answer to the relay's own ping: the server is alive.
                        if let Some(worker) = worker {
                            self.pings.answered(worker, Instant::now());
                        }
                        return Ok(());
                    }
                    if !self.pending.contains_key(id) && self.deadlines.is_late(id) {
                        eprintln!(
                            "stdiobus-relay: the answer to request {id} came after \
                             --request-timeout and was dropped ({} late answers so far)",
                            self.deadlines.late
                        );
                        return Ok(());
                    }
                }
                self.stdout.write_all(line.as_bytes())?;
                self.stdout.write_all(b"\n")?;
                if let Some(message) = message
                    && let Some(id) = message.raw_id()
                {
                    match message.kind() {
                        Kind::Result | Kind::Error => {
                            self.pending.remove(id);
                            self.deadlines.settled(id);
                        }
                        Kind::Request => {
                            if let Some(worker) = worker {
                                self.asked.insert(id.into(), worker);
                            }
                        }
                        Kind::Notification => {}
                    }
                }
            }
            Event::Unanswered { worker, id } => {
                let id = id.to_str().unwrap_or("null");
                self.deadlines.settled(id);
                self.deadlines.forget(id);
                if let Some(cancelled) = self.pending.remove(id) {
                    if let Some(why) = &self.stopping {
                        // A cancelled request gets nothing, as the client expects.
                        if !cancelled {
                            write_error(&mut self.stdout, id, code::NO_SERVER, why)?;
                        }
                    } else {
                        let message = format!(
                            "stdiobus-relay: the server process (worker {worker}) ended before it answered"
                        );
                        write_error(&mut self.stdout, id, code::WORKER_ENDED, &message)?;
                    }
                }
            }
            Event::Overflow(overflow) => {
                let loss = overflow.loss();
                eprintln!(
                    "stdiobus-relay: {} events ({} bytes) lost: the event ring was full",
                    loss.events, loss.bytes
                );
                for id in overflow.lost_ids() {
                    let id = id.to_str().unwrap_or("null");
                    if self.pending.remove(id).is_some() {
                        let message =
                            "stdiobus-relay: the answer was lost: the relay's event ring was full";
                        write_error(&mut self.stdout, id, code::ANSWER_LOST, message)?;
                    }
                }
            }
            Event::LineTooLong { worker, limit, id } => {
                eprintln!(
                    "stdiobus-relay: worker {worker} wrote a line longer than the kernel's \
                     max_input_buffer of {limit} bytes: it was dropped"
                );
                let id = id.and_then(|id| id.to_str().ok());
                if let Some(id) = id
                    && self.pending.remove(id).is_some()
                {
                    let message = format!(
                        "stdiobus-relay: the answer was longer than --max-line ({} bytes)",
                        limit.saturating_sub(1)
                    );
                    write_error(&mut self.stdout, id, code::ANSWER_TOO_LONG, &message)?;
                }
            }
            Event::Worker { id, event } => {
                let slot = self.workers.get(id.index());
                if matches!(event, WorkerEvent::Started) && slot == Some(&Worker::Ended) {
                    // A new process in an ended one's place, not the first start.
                    self.handshake.restarted(id);
                }
                // A new process starts with no ping owed; an ended one gets none.
                match event {
                    WorkerEvent::Started => {
                        self.pings.answered(id, Instant::now());
                        self.pings.heard(id, Instant::now());
                    }
                    WorkerEvent::Exited(_) | WorkerEvent::Failed(_) => self.pings.gone(id),
                    _ => {}
                }
                self.count_quick_deaths(id, &event);
                let state = match event {
                    WorkerEvent::Started => Some(Worker::Serving),
                    WorkerEvent::Exited(status) if status.success() => Some(Worker::Gone),
                    WorkerEvent::Exited(_) => Some(Worker::Ended),
                    WorkerEvent::Failed(_) => Some(Worker::Gone),
                    _ => None,
                };
                if let (Some(state), Some(slot)) = (state, self.workers.get_mut(id.index())) {
                    *slot = state;
                }
                eprintln!("stdiobus-relay: worker {id} {event}");
            }
            Event::Error { code, text } => {
                eprintln!("stdiobus-relay: kernel error: {text} ({code})")
            }
            Event::Log { level, text } => eprintln!("stdiobus-relay: kernel {level:?}: {text}"),
            other => eprintln!("stdiobus-relay: {other:?}"),
        }
        Ok(())
    }
}

impl Client {
    /// Counts the processes of worker `id` that die at their start, while the relay
    /// serves: a clean exit, or a run of [`QUICK_DEATH`] or more, starts the count again.
    fn count_quick_deaths(&mut self, id: WorkerId, event: &WorkerEvent<'_>) {
        let Some((started, deaths)) = self.starts.get_mut(id.index()) else {
            return;
        };
        match event {
            WorkerEvent::Started => *started = Instant::now(),
            WorkerEvent::Exited(status) if self.stopping.is_none() => {
                if status.success() || started.elapsed() >= QUICK_DEATH {
                    *deaths = 0;
                } else {
                    *deaths += 1;
                    if *deaths >= QUICK_DEATHS && self.crash_loop.is_none() {
                        self.crash_loop = Some((id, *status));
                    }
                }
            }
            _ => {}
        }
    }
}

/// `{"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":MESSAGE}}` and a newline.
fn write_error(out: &mut impl Write, id: &str, code: i32, message: &str) -> io::Result<()> {
    write!(
        out,
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":""#
    )?;
    for c in message.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => write!(out, "{c}")?,
        }
    }
    out.write_all(b"\"}}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_responses_are_json_rpc_with_the_message_escaped() {
        let mut out = Vec::new();
        super::write_error(&mut out, r#""a-1""#, -32000, "no \"worker\"\n").unwrap();
        assert_eq!(
            out,
            br#"{"jsonrpc":"2.0","id":"a-1","error":{"code":-32000,"message":"no \"worker\"\u000a"}}
"#
        );
    }
}
