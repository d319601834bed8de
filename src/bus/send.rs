//! Sending: where each message goes, and handing it to the kernel for that worker.

use super::Bus;
use crate::routing::{Binding, Target};
use crate::state::Running;
use crate::{Error, WorkerId, backpressure, sys};

impl<'r> Bus<'r, Running> {
    /// Hands `message` to the kernel, which writes it to a worker's stdin: no copy, no
    /// allocation. For many messages in one call, see [`Bus::send_batch`].
    ///
    /// The worker: one of the message's pool (the only pool, or the one its top-level
    /// `"pool"` string names, which two or more pools require: [`Error::PoolNotNamed`],
    /// [`Error::UnknownPool`]), the one that has its `"sessionId"` if the bus has a
    /// session table ([`Bus::set_session_table`]), otherwise the pool's next live worker,
    /// round-robin. [`Event::Message`](crate::Event::Message) says which worker wrote each
    /// line back.
    ///
    /// Refused before the kernel sees them: empty input ([`Error::EmptyMessage`]), NUL
    /// bytes ([`Error::InteriorNul`]), a pool whose every worker has exited
    /// ([`Error::NoWorker`]), and a message longer than `PIPE_BUF` that the chosen
    /// worker's stdin pipe has no room for ([`Error::PipeFull`], retryable once the worker
    /// reads) or could never hold ([`Error::TooLarge`]): the kernel would write part of it
    /// and drop the rest without a word. The kernel refuses text that is not JSON
    /// ([`ErrorCode::Invalid`](crate::ErrorCode::Invalid)) and reports a worker that cannot
    /// take more input, or is gone, as [`ErrorCode::Worker`](crate::ErrorCode::Worker),
    /// which [`Error::retry`] calls [`Retry::Maybe`](crate::Retry::Maybe).
    pub fn send(&mut self, message: &[u8]) -> Result<(), Error> {
        self.route_and_send(message, Target::Message)
    }

    /// Hands every message of `batch` to the kernel in one call, so that one write to a
    /// worker's stdin carries them all: no copy, no allocation. `batch` holds JSON messages
    /// separated by newlines (a trailing newline is optional), written by the caller into
    /// a buffer of its own. Returns how many it held.
    ///
    /// The kernel checks only the first message of a call; the bus checks each, as
    /// [`Bus::send`] does one: a message that is not one JSON value, or an empty line, is
    /// refused as [`Error::BatchNotJson`] with its index, and so is the batch. They all go
    /// to one worker, chosen as `send` chooses for the first: a later message that names
    /// another pool, or (with a session table) another session, is refused as
    /// [`Error::MixedBatch`]. With a request table, each request in it is tracked. The
    /// whole batch must fit in the worker's stdin pipe (or the send buffer), as a message
    /// must.
    pub fn send_batch(&mut self, batch: &[u8]) -> Result<usize, Error> {
        let batch = batch.strip_suffix(b"\n").unwrap_or(batch);
        check_message(batch)?;
        let count = crate::batch::check(batch, self.router.routes_by())?;
        self.route_checked(batch, Target::Message)?;
        Ok(count)
    }

    /// [`Bus::send`] to a worker of the pool whose id is `pool`, whatever the message says
    /// of its pool.
    pub fn send_to_pool(&mut self, pool: &str, message: &[u8]) -> Result<(), Error> {
        self.route_and_send(message, Target::Pool(pool))
    }

    /// [`Bus::send`] to worker `id`, whatever the message says: [`Error::NoSuchWorker`]
    /// for an id the bus does not have, [`Error::WorkerGone`] once it has exited.
    pub fn send_to_worker(&mut self, id: WorkerId, message: &[u8]) -> Result<(), Error> {
        check_message(message)?;
        let worker = id.index();
        if worker >= self.kernel.resources.children.len() {
            return Err(Error::NoSuchWorker { id });
        }
        let children = &self.kernel.resources.children;
        if !children.is_serving(worker) {
            return Err(Error::WorkerGone { id });
        }
        self.ingest_to(worker, message)
    }

    /// Forgets session `id` (of `pool`, which two or more pools require), so that its
    /// slot in the session table is free again; whether the table had it.
    pub fn end_session(&mut self, pool: Option<&str>, id: &str) -> Result<bool, Error> {
        self.router.end_session(pool, id)
    }

    /// Sessions in the session table.
    pub fn session_table_len(&self) -> usize {
        self.router.session_count()
    }

    /// Requests in the request table: sent and not answered yet.
    pub fn requests_in_flight(&self) -> usize {
        self.router.requests_in_flight()
    }

    fn route_and_send(&mut self, message: &[u8], target: Target<'_>) -> Result<(), Error> {
        check_message(message)?;
        self.route_checked(message, target)
    }

    /// [`Bus::route_and_send`] of a message already checked.
    fn route_checked(&mut self, message: &[u8], target: Target<'_>) -> Result<(), Error> {
        if !cfg!(stdio_bus_interposed) {
            // Nothing to route with: the kernel's own choice.
            return self.ingest(message, None);
        }
        let (worker, moved) =
            self.router
                .choose(message, target, &self.kernel.resources.children)?;
        let sent = self.ingest_to(worker, message);
        // The session is bound to its new worker now, whether this message went or not.
        if let Some((moved, session)) = moved {
            self.producer.push_session_moved(
                WorkerId::from_index(moved.from),
                WorkerId::from_index(moved.to),
                session.as_bytes(),
            );
        }
        sent
    }

    /// Hands `message` to the kernel for `worker`, once its pipe is known to take it.
    fn ingest_to(&mut self, worker: usize, message: &[u8]) -> Result<(), Error> {
        let Some(child) = self.kernel.resources.children.get(worker) else {
            return Err(Error::NoSuchWorker {
                id: WorkerId::from_index(worker),
            });
        };
        let generation = child.generation;
        let pipe = child.stdin_pipe();
        let backlog = &self.kernel.resources.backlog;
        backpressure::check_room((worker, generation), pipe, message.len(), backlog)?;
        self.router
            .sending(message, Binding { worker, generation })?;
        let mut sent = self.ingest(message, Some(worker));
        // The write is the bus's (see `interpose::io`): archive A does not look at how
        // it went.
        if self.kernel.resources.take_write_failed() && sent.is_ok() {
            sent = Err(Error::Kernel(crate::ErrorCode::Worker));
        }
        // The 2.2.1 archive hands a message for an embedded worker to its socket rather
        // than writing it: then the worker the bus chose did not get it.
        if sent.is_err() || !self.kernel.resources.take_routed() {
            self.router.unsent(message);
        } else {
            self.watch_sent(worker);
        }
        sent
    }

    /// `ingest`, its write going to `worker`'s stdin pipe (the kernel's choice if `None`).
    fn ingest(&mut self, message: &[u8], worker: Option<usize>) -> Result<(), Error> {
        let raw = self.kernel.raw.as_ptr();
        // SAFETY: `raw` is live; the kernel reads exactly `len` bytes of `message` during
        // the call and keeps no pointer to it.
        let ingest =
            || unsafe { sys::stdio_bus_ingest(raw, message.as_ptr().cast(), message.len()) };
        let rc = match worker {
            Some(worker) => self.kernel.resources.enter_routed(worker, ingest),
            None => self.kernel.resources.enter(ingest),
        };
        Error::check(rc).map(drop)
    }

    /// Closes every worker's stdin, so that each sees the end of its input, the first
    /// step of the MCP stdio shutdown: close the server's input, wait for it to exit, then
    /// SIGTERM and later SIGKILL ([`Bus::begin_stop`] or [`Bus::stop`]). Poll on to see
    /// each worker's `exited`. From now on no worker is restarted and `send` refuses with
    /// [`Error::NoWorker`] ([`Error::WorkerGone`] for [`Bus::send_to_worker`]).
    pub fn close_worker_stdin(&mut self) {
        self.kernel.resources.close_worker_stdin();
    }
}

/// What `send` refuses whatever the workers: empty input and NUL bytes.
fn check_message(message: &[u8]) -> Result<(), Error> {
    if message.is_empty() {
        return Err(Error::EmptyMessage);
    }
    // A byte-by-byte search cost about ten per cent of pipelined throughput
    // (benches/compare).
    match crate::memchr::find(0, message) {
        Some(offset) => Err(Error::InteriorNul { offset }),
        None => Ok(()),
    }
}
