//! The safe bus: one kernel instance, its lifecycle as types, driven by the caller.

// A failed transition hands the bus back by value, and the bus keeps its worker table
// inline because nothing in this crate allocates: the error is large on purpose.
#![allow(clippy::result_large_err)]

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use core::time::Duration;

use cty::c_int;

use crate::clock::{Deadline, whole_units};
use crate::config::Config;
use crate::interpose::{KernelResources, LineHook, Restart};
use crate::ring::{OverflowHandler, Producer};
use crate::routing::{Binding, Pools, RequestSlot, Router, SessionSlot, Target};
use crate::shutdown::{KILL_LIMIT, Phase};
use crate::state::{Created, Running, State, Stopped, Stopping};
use crate::{Error, KernelState, Options, Stats, callbacks, sigpipe, sys, workers};

/// How long [`Bus::stop`] waits beyond the drain timeout: long enough for killed workers
/// to be given up on (`KILL_LIMIT`) and the kernel to stop after that.
const STOP_GRACE: Duration = KILL_LIMIT.saturating_add(Duration::from_secs(1));
/// Kernel step length while a shutdown is driven from inside this crate.
const SHUTDOWN_STEP: Duration = Duration::from_millis(10);
/// How long a bus being dropped waits for its killed workers to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// One stdio_bus kernel instance, in lifecycle state `S`, writing its events into the ring
/// whose [`Producer`] it owns for `'r`.
///
/// ```no_run
/// use core::time::Duration;
/// use stdiobus_embed::{Bus, ConfigBuffer, Event, EventRing, Limits, Options, Pool};
///
/// let ring = EventRing::<64, 1024>::new();
/// let (producer, mut events) = ring.split().unwrap();
/// let mut json = ConfigBuffer::<512>::new();
/// let config = json.write(&[Pool::new("echo", "/usr/bin/cat")], &Limits::default())?;
///
/// let bus = Bus::create(config, Options::new(), producer).map_err(|f| f.error)?;
/// let mut bus = bus.start().map_err(|f| f.error)?;
/// bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)?;
/// while events.is_empty() {
///     bus.poll(Duration::from_millis(100))?;
/// }
/// while let Some(event) = events.read() {
///     if let Event::Message { line, .. } = event.event() {
///         println!("{line}");
///     }
/// }
/// let _stopped = bus.stop(Duration::from_secs(1)).map_err(|f| f.error)?;
/// # Ok::<(), stdiobus_embed::Error>(())
/// ```
///
/// Calls that are wrong for the state do not exist:
///
/// ```compile_fail
/// # use stdiobus_embed::{Bus, Created};
/// fn send_before_start(bus: &mut Bus<'_, Created>) {
///     bus.send(b"{}").unwrap(); // no `send` on a bus that has not started
/// }
/// ```
///
/// ```compile_fail
/// # use stdiobus_embed::{Bus, Stopped};
/// fn restart(bus: Bus<'_, Stopped>) {
///     let _ = bus.start(); // a stopped bus cannot start again
/// }
/// ```
///
/// ```compile_fail
/// # use core::time::Duration;
/// # use stdiobus_embed::{Bus, Stopping};
/// fn poll_while_stopping(bus: &mut Bus<'_, Stopping>) {
///     let _ = bus.poll(Duration::ZERO); // `poll` is for a running bus only
/// }
/// ```
///
/// ```compile_fail
/// # use core::time::Duration;
/// # use stdiobus_embed::{Bus, Running};
/// fn use_after_stop(mut bus: Bus<'_, Running>) {
///     let _stopped = bus.stop(Duration::ZERO);
///     let _ = bus.send(b"{}"); // `stop` consumed the running bus
/// }
/// ```
///
/// Dropping a bus in any state stops its workers if they still run and frees the kernel
/// instance.
pub struct Bus<'r, S: State> {
    pub(crate) raw: NonNull<sys::stdio_bus_t>,
    pub(crate) producer: Producer<'r>,
    /// The descriptors and processes the kernel holds (see `interpose`).
    pub(crate) resources: KernelResources,
    /// Progress of the shutdown (see `shutdown`).
    pub(crate) phase: Phase,
    /// Free ring bytes below which `poll` does not step the kernel.
    reserve: usize,
    /// Which worker each message goes to (see `routing`).
    router: Router<'r>,
    /// Embedded workers registered and not yet unregistered.
    #[cfg(feature = "embedded-workers")]
    pub(crate) embedded: crate::embedded::Registered,
    state: PhantomData<S>,
}

// SAFETY: the kernel instance has no thread affinity (no threads, no thread-local state;
// its only globals are the stderr log level and colour, which it never mutates after
// startup), every call into it goes through `&mut self` or `self`, the producer is Send,
// and the send buffer's pointer stands for an exclusive borrow the bus carries along.
unsafe impl<S: State> Send for Bus<'_, S> {}

/// A failed transition, handing back the value it would have consumed so that nothing is
/// lost or dropped on the error path.
pub struct Failed<T> {
    /// Why it failed.
    pub error: Error,
    /// What the call took, given back.
    pub value: T,
}

impl<T> fmt::Debug for Failed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failed")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Failed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

#[cfg(feature = "std")]
impl<T> std::error::Error for Failed<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<Failed<T>> for Error {
    fn from(failed: Failed<T>) -> Self {
        failed.error
    }
}

impl<'r> Bus<'r, Created> {
    /// Creates a kernel instance that reports into `producer`'s ring.
    ///
    /// The configuration and options are checked first, since the kernel reports the
    /// precise reason for a refusal only on stderr. The strings they borrow must live as
    /// long as the bus, because the kernel may keep pointers to them.
    pub fn create(
        config: Config<'r>,
        options: Options<'r>,
        mut producer: Producer<'r>,
    ) -> Result<Self, Failed<Producer<'r>>> {
        if let Err(error) = options.listener.validate() {
            return Err(Failed {
                error,
                value: producer,
            });
        }
        let mut pools = Pools::new();
        let mut input_limit = None;
        match (config.json(), config.file()) {
            (Some(json), _) => {
                // `Config::from_json` checked it, UTF-8 included.
                let text = json.to_str().unwrap_or_default();
                input_limit =
                    crate::config::layout(text, |id, instances| pools.push(id, instances));
            }
            (None, Some(path)) => {
                let pool = |id, instances| pools.push(id, instances);
                if let Err(error) = crate::config::check_file(path, pool, &mut input_limit) {
                    return Err(Failed {
                        error: Error::Config(error),
                        value: producer,
                    });
                }
            }
            (None, None) => {}
        }
        producer.prepare(options.events, options.log_level);
        let reserve = options
            .poll_reserve
            .unwrap_or(producer.capacity() / 4)
            .min(producer.free_bytes());
        let raw_options = raw_options(&config, &options, &producer);
        let mut resources = KernelResources::new();
        resources.ring = producer.user_data();
        resources.hold_back = true;
        resources.line_limit =
            input_limit.unwrap_or(crate::limits::DEFAULT_MAX_INPUT_BUFFER) as usize;
        // SAFETY: `raw_options` is fully initialised; every string in it is NUL-terminated
        // and outlives the instance ('r); `user_data` points at the ring, which outlives
        // the instance ('r) and is reached only through `producer` (ring invariant 3).
        let raw = resources.enter(|| unsafe { sys::stdio_bus_create(&raw_options) });
        producer.flush_loss();
        match NonNull::new(raw) {
            Some(raw) => Ok(Self {
                raw,
                producer,
                resources,
                phase: Phase::Running,
                reserve,
                router: Router::new(pools),
                #[cfg(feature = "embedded-workers")]
                embedded: crate::embedded::Registered::new(),
                state: PhantomData,
            }),
            None => Err(Failed {
                error: if resources.ran_out_of_low_fds() {
                    Error::NoLowDescriptor
                } else {
                    Error::CreateFailed
                },
                value: producer,
            }),
        }
    }

    /// Gives the bus a session table: from now on a message with a top-level `"sessionId"`
    /// string goes to the worker that took the first message of that session, as long as
    /// that worker runs (see [`Event::SessionMoved`](crate::Event::SessionMoved)). The
    /// table holds `slots.len()` sessions at once; a new session when it is full is
    /// refused with [`Error::SessionTableFull`]. Without a table, `sessionId` is not read.
    pub fn set_session_table(&mut self, slots: &'r mut [SessionSlot]) {
        self.router.set_sessions(slots);
    }

    /// Gives the bus a request table: from now on it remembers which worker each request
    /// (a message with `id` and `method`) went to until that worker answers it, and when a
    /// worker's process ends first, reports each such request as
    /// [`Event::Unanswered`](crate::Event::Unanswered) with its id. The table holds
    /// `slots.len()` requests at once; a request when it is full is refused with
    /// [`Error::RequestTableFull`] (retryable). Without a table, responses are not read.
    pub fn set_request_table(&mut self, slots: &'r mut [RequestSlot]) {
        self.router.set_requests(slots);
    }

    /// Lends the bus a buffer for messages longer than a worker's stdin pipe can take at
    /// once: [`Bus::send`] then takes a message of up to `buf.len() - 1` bytes (its
    /// newline needs one) whatever the pipe's size. What the pipe does not take is kept in
    /// `buf` and written by each [`Bus::poll`] as the worker reads; meanwhile the bus's
    /// [`Bus::poll_fd`] wakes when there is room. One message is kept at a time: another
    /// that would need the buffer, or one for the same worker that does not fit behind it,
    /// waits with [`Error::PipeFull`] (retryable). A worker that ends first loses the
    /// rest, as it would lose the message in its pipe. Linux only.
    pub fn set_send_buffer(&mut self, buf: &'r mut [u8]) {
        // SAFETY: `buf` is borrowed for 'r, which the bus and its resources cannot
        // outlive, and mutably, so nothing else uses it.
        unsafe { self.resources.backlog.lend(buf) };
    }

    /// Spawns every worker. On failure the created bus comes back with the error;
    /// dropping it ends the workers that did start.
    ///
    /// Also makes sure SIGPIPE cannot kill the host when a worker dies (see the crate
    /// docs): a default disposition is replaced by a handler that does nothing.
    ///
    /// On Linux every worker is killed when the thread that calls `start` ends
    /// (`PR_SET_PDEATHSIG` follows the forking thread), so that no worker outlives its
    /// host: start a bus on a thread that lives as long as the bus.
    pub fn start(self) -> Result<Bus<'r, Running>, Failed<Self>> {
        sigpipe::guard();
        let mut this = self;
        let raw = this.raw.as_ptr();
        // SAFETY: `raw` is a live instance (type invariant).
        let rc = this
            .resources
            .enter_spawning(|| unsafe { sys::stdio_bus_start(raw) });
        this.producer.flush_loss();
        let result = Error::check(rc).and_then(|_| this.check_spawned());
        match result {
            Ok(()) => {
                this.resources.restarts_allowed = true;
                Ok(this.into_state())
            }
            Err(error) => Err(Failed { error, value: this }),
        }
    }

    /// The kernel's `start` returns success even when some worker could not be spawned:
    /// compare what it forked with what the configuration asks for.
    fn check_spawned(&self) -> Result<(), Error> {
        if self.resources.ran_out_of_low_fds() {
            return Err(Error::NoLowDescriptor);
        }
        let children = self.resources.children.iter();
        if let Some((worker, child)) = children.enumerate().find(|(_, c)| c.exec_errno != 0) {
            return Err(Error::ExecFailed {
                worker: worker as i32,
                errno: child.exec_errno.into(),
            });
        }
        let spawned = self.resources.children.len();
        let configured = self.worker_count();
        if cfg!(stdio_bus_interposed) && spawned < configured {
            return Err(Error::SpawnFailed {
                spawned,
                configured,
            });
        }
        Ok(())
    }
}

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
    pub fn send_to_worker(&mut self, id: i32, message: &[u8]) -> Result<(), Error> {
        check_message(message)?;
        let Some(worker) = usize::try_from(id)
            .ok()
            .filter(|&id| id < self.resources.children.len())
        else {
            return Err(Error::NoSuchWorker { id });
        };
        let children = &self.resources.children;
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
        let (worker, moved) = self
            .router
            .choose(message, target, &self.resources.children)?;
        let sent = self.ingest_to(worker, message);
        // The session is bound to its new worker now, whether this message went or not.
        if let Some((moved, session)) = moved {
            self.producer.push_session_moved(
                moved.from as i32,
                moved.to as i32,
                session.as_bytes(),
            );
        }
        sent
    }

    /// Hands `message` to the kernel for `worker`, once its pipe is known to take it.
    fn ingest_to(&mut self, worker: usize, message: &[u8]) -> Result<(), Error> {
        let Some(child) = self.resources.children.get(worker) else {
            return Err(Error::NoSuchWorker { id: worker as i32 });
        };
        workers::check_room(worker, child, message.len(), &self.resources.backlog)?;
        let generation = child.generation;
        self.router
            .sending(message, Binding { worker, generation })?;
        let mut sent = self.ingest(message, Some(worker));
        // The write is the bus's (see `interpose::calls`): archive A does not look at how
        // it went.
        if self.resources.take_write_failed() && sent.is_ok() {
            sent = Err(Error::Kernel(crate::ErrorCode::Worker));
        }
        // The 2.2.1 archive hands a message for an embedded worker to its socket rather
        // than writing it: then the worker the bus chose did not get it.
        if sent.is_err() || !self.resources.take_routed() {
            self.router.unsent(message);
        }
        sent
    }

    /// `ingest`, its write going to `worker`'s stdin pipe (the kernel's choice if `None`).
    fn ingest(&mut self, message: &[u8], worker: Option<usize>) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        // SAFETY: `raw` is live; the kernel reads exactly `len` bytes of `message` during
        // the call and keeps no pointer to it.
        let ingest =
            || unsafe { sys::stdio_bus_ingest(raw, message.as_ptr().cast(), message.len()) };
        let rc = match worker {
            Some(worker) => self.resources.enter_routed(worker, ingest),
            None => self.resources.enter(ingest),
        };
        Error::check(rc).map(drop)
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

impl<'r> Bus<'r, Running> {
    /// Runs one kernel step: waits up to `timeout` for worker output or other I/O, then
    /// delivers what arrived into the ring. Returns the number of events delivered.
    ///
    /// `Duration::ZERO` does not wait. A timeout below one millisecond (the kernel's unit)
    /// waits one millisecond rather than spinning; longer timeouts round up to whole
    /// milliseconds and saturate at `i32::MAX` ms. `Duration::MAX` waits until something
    /// happens, however long that takes.
    ///
    /// When the ring has less free space than the poll reserve, no step runs and the
    /// error is [`Error::RingFull`]: read events, then poll again. This is how pressure
    /// reaches the workers instead of the host's memory.
    pub fn poll(&mut self, timeout: Duration) -> Result<usize, Error> {
        self.check_reserve()?;
        self.step(timeout)
    }

    /// Closes every worker's stdin, so that each sees the end of its input, the first
    /// step of the MCP stdio shutdown: close the server's input, wait for it to exit, then
    /// SIGTERM and later SIGKILL ([`Bus::begin_stop`] or [`Bus::stop`]). Poll on to see
    /// each worker's `exited`. From now on no worker is restarted and `send` refuses with
    /// [`Error::NoWorker`] ([`Error::WorkerGone`] for [`Bus::send_to_worker`]).
    pub fn close_worker_stdin(&mut self) {
        self.resources.close_worker_stdin();
    }

    /// Begins a graceful shutdown without waiting: every worker is asked to exit
    /// (SIGTERM) and killed if it has not after `drain`. Drive the returned bus with
    /// [`Bus::poll_stop`] until [`Bus::try_finish`] succeeds.
    pub fn begin_stop(mut self, drain: Duration) -> Result<Bus<'r, Stopping>, Failed<Self>> {
        match self.begin_shutdown(drain) {
            Ok(()) => Ok(self.into_state()),
            Err(error) => Err(Failed { error, value: self }),
        }
    }

    /// Stops the bus and waits, delivering events meanwhile, until every worker is gone.
    ///
    /// Workers get `drain` to exit after SIGTERM before they are killed. Events go on
    /// into the ring while this waits; what does not fit is counted as lost, so read the
    /// consumer from another thread or use [`Bus::begin_stop`] to keep draining it.
    ///
    /// If the kernel has not reached STOPPED two seconds after `drain`, the error is
    /// [`Error::StopTimedOut`] and the stopping bus comes back: poll it further or drop it.
    pub fn stop(self, drain: Duration) -> Result<Bus<'r, Stopped>, Failed<Bus<'r, Stopping>>> {
        let deadline = Deadline::after(drain.saturating_add(STOP_GRACE));
        let mut stopping = match self.begin_stop(drain) {
            Ok(stopping) => stopping,
            // The kernel refuses `stop` only outside RUNNING, which a `Bus<Running>` is
            // not; should it happen anyway, a stopping bus is still the honest thing to
            // return: drop shuts the instance down whatever its state.
            Err(Failed { error, value }) => {
                return Err(Failed {
                    error,
                    value: value.into_state(),
                });
            }
        };
        loop {
            stopping = match stopping.try_finish() {
                Ok(stopped) => return Ok(stopped),
                Err(stopping) => stopping,
            };
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Err(Failed {
                    error: Error::StopTimedOut,
                    value: stopping,
                });
            }
            // No reserve check here: nobody may be reading the ring while this waits.
            if let Err(error) = stopping.advance_shutdown(remaining.min(SHUTDOWN_STEP)) {
                return Err(Failed {
                    error,
                    value: stopping,
                });
            }
        }
    }
}

impl<'r> Bus<'r, Stopping> {
    /// Runs one kernel step of the shutdown, delivering its events into the ring; returns
    /// how many. Does nothing once the kernel has stopped. Timeouts as for
    /// [`Bus::poll`].
    ///
    /// Like [`Bus::poll`], refuses with [`Error::RingFull`] while the ring is short of
    /// its poll reserve.
    pub fn poll_stop(&mut self, timeout: Duration) -> Result<usize, Error> {
        self.check_reserve()?;
        self.advance_shutdown(timeout)
    }

    /// Whether every worker is gone and the bus can become [`Stopped`].
    pub fn is_stopped(&self) -> bool {
        self.shutdown_done()
    }

    /// The stopped bus once the kernel has stopped, or this bus back while it has not.
    pub fn try_finish(self) -> Result<Bus<'r, Stopped>, Self> {
        if self.is_stopped() {
            Ok(self.into_state())
        } else {
            Err(self)
        }
    }
}

impl<'r, S: State> Bus<'r, S> {
    /// The kernel's own view of its lifecycle.
    pub fn kernel_state(&self) -> KernelState {
        // SAFETY: `self.raw` is live.
        KernelState::from_raw(unsafe { sys::stdio_bus_get_state(self.raw.as_ptr()) })
    }

    /// Workers currently known to the kernel.
    pub fn worker_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_worker_count(self.raw.as_ptr()) })
    }

    /// The process id of worker `id` (the kernel's worker id, as events report it) while
    /// the process has not been reaped; `None` once it has, or where the kernel's calls
    /// are not interposed (Apple targets).
    pub fn worker_pid(&self, id: i32) -> Option<u32> {
        let child = self.resources.children.get(usize::try_from(id).ok()?)?;
        let alive = child.life == crate::interpose::Life::Alive;
        alive.then(|| child.pid.unsigned_abs())
    }

    /// Sessions the kernel itself routes by `sessionId`: those of listener clients. The
    /// bus's own, for `send`, are [`Bus::session_table_len`].
    pub fn session_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_session_count(self.raw.as_ptr()) })
    }

    /// Requests waiting for a response, as the kernel tracks them: listener clients'. The
    /// bus's own, for `send`, are [`Bus::requests_in_flight`].
    pub fn pending_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_pending_count(self.raw.as_ptr()) })
    }

    /// Listener clients connected.
    pub fn client_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_client_count(self.raw.as_ptr()) })
    }

    /// The kernel's traffic counters.
    pub fn stats(&self) -> Stats {
        let mut raw = sys::stdio_bus_stats_t::default();
        // SAFETY: `self.raw` is live and `raw` is a valid out-parameter.
        unsafe { sys::stdio_bus_get_stats(self.raw.as_ptr(), &mut raw) };
        Stats::new(raw, self.producer.stats())
    }

    /// A file descriptor that is readable exactly when [`Bus::poll`] (or
    /// [`Bus::poll_stop`]) with `Duration::ZERO` has work: worker output, a client, a
    /// worker that exited. Wait on it for readability with `poll(2)`, epoll or any event
    /// loop, then poll the bus without a timeout; never read from it or close it.
    ///
    /// It is the kernel's own event loop descriptor, which the kernel does not give out
    /// (its `stdio_bus_get_poll_fd` returns -1): the bus takes it when the kernel creates
    /// it. `None` only where the kernel's calls are not interposed (Apple targets).
    pub fn poll_fd(&self) -> Option<c_int> {
        if let Some(fd) = self.resources.poll_fd() {
            return Some(fd);
        }
        // SAFETY: `self.raw` is live.
        let fd = unsafe { sys::stdio_bus_get_poll_fd(self.raw.as_ptr()) };
        (fd >= 0).then_some(fd)
    }

    /// The longest message [`Bus::send`] can hand to every worker: one byte less than the
    /// smallest worker stdin pipe, or than the send buffer ([`Bus::set_send_buffer`]) if
    /// that is larger, once the bus has started (Linux). Longer messages are refused with
    /// [`Error::TooLarge`].
    pub fn max_message_len(&self) -> Option<usize> {
        workers::max_message_len(self.resources.children.iter(), &self.resources.backlog)
    }

    /// Hands every event that does not fit in the ring to `handler`, synchronously inside
    /// the kernel call that produced it, instead of dropping it: with a handler, nothing
    /// is lost. The handler sees those events as they arrive, ahead of older events still
    /// waiting in the ring. It runs inside a kernel callback, so it must not block, and a
    /// panic in it aborts the process. It stays in place until replaced or the bus ends.
    pub fn set_overflow_handler(&mut self, handler: &'r mut OverflowHandler<'r>) {
        // SAFETY: the handler lives for 'r, which the bus cannot outlive, and the bus
        // clears it whenever it lets go of the producer (`release`, `into_producer`).
        unsafe { self.producer.set_overflow_handler(Some(handler)) };
    }

    /// Goes back to counting events that do not fit as lost.
    pub fn clear_overflow_handler(&mut self) {
        // SAFETY: clearing cannot dangle.
        unsafe { self.producer.set_overflow_handler(None) };
    }

    /// The ring's producer, for its loss counters.
    pub fn producer(&self) -> &Producer<'r> {
        &self.producer
    }

    /// Shuts the instance down as dropping would and hands back the producer, so the ring
    /// can serve a new bus.
    pub fn into_producer(self) -> Producer<'r> {
        let mut this = ManuallyDrop::new(self);
        this.release();
        // SAFETY: `this` is never used or dropped again, so the producer is moved out
        // exactly once.
        unsafe { ptr::read(&this.producer) }
    }

    fn into_state<T: State>(self) -> Bus<'r, T> {
        let this = ManuallyDrop::new(self);
        Bus {
            raw: this.raw,
            // SAFETY: `this` is never used or dropped again; the producer moves once.
            producer: unsafe { ptr::read(&this.producer) },
            // SAFETY: as for the producer.
            resources: unsafe { ptr::read(&this.resources) },
            phase: this.phase,
            reserve: this.reserve,
            // SAFETY: as for the producer.
            router: unsafe { ptr::read(&this.router) },
            #[cfg(feature = "embedded-workers")]
            // SAFETY: as for the producer.
            embedded: unsafe { ptr::read(&this.embedded) },
            state: PhantomData,
        }
    }

    fn check_reserve(&self) -> Result<(), Error> {
        let free = self.producer.free_bytes();
        if free < self.reserve {
            return Err(Error::RingFull {
                free,
                reserve: self.reserve,
            });
        }
        Ok(())
    }

    pub(crate) fn step(&mut self, timeout: Duration) -> Result<usize, Error> {
        let before = self.producer.delivered();
        // A kept message goes on before the wait (the pipe may have room since) and after
        // it (the wait may have been for that room).
        self.resources.flush_backlog();
        let mut rc = self.kernel_step(step_timeout(timeout), false);
        if rc >= 0 && self.resources.take_exits_seen() {
            rc = self.settle_ended();
        }
        // After the restarts too: what was kept for an ended process goes with it.
        self.resources.flush_backlog();
        self.resources.settle_held();
        self.report_reaped();
        self.producer.flush_loss();
        Error::check(rc)?;
        Ok(self.producer.delivered().wrapping_sub(before) as usize)
    }

    /// One kernel step, with `timeout_ms`; `reaping`: first told that SIGCHLD arrived, so
    /// that it reaps (see [`Bus::settle_ended`]). Lines delivered meanwhile reach the
    /// router when it tracks requests.
    fn kernel_step(&mut self, timeout_ms: c_int, reaping: bool) -> c_int {
        let raw = self.raw.as_ptr();
        // Made from `&mut self` for this call only: while the kernel runs, the line hook
        // is the router's only user.
        self.resources.line_hook = self.router.tracks_requests().then(|| LineHook {
            call: note_line,
            answered: note_answered,
            data: (&raw mut self.router).cast(),
        });
        let rc = if reaping {
            // SAFETY: `raw` is live; notify only sets a flag that the step reads.
            self.resources.enter_reaping(|| unsafe {
                sys::stdio_bus_notify_sigchld(raw);
                sys::stdio_bus_step(raw, timeout_ms)
            })
        } else {
            // SAFETY: `raw` is live; callbacks reach the ring through `user_data`, and
            // `&mut self` keeps every other access to the producer out meanwhile.
            self.resources
                .enter(|| unsafe { sys::stdio_bus_step(raw, timeout_ms) })
        };
        self.resources.line_hook = None;
        rc
    }

    /// Reports each worker reaped since the last report, and the requests it left
    /// unanswered.
    fn report_reaped(&mut self) {
        let (producer, router) = (&mut self.producer, &mut self.router);
        self.resources
            .children
            .take_reaped(|id, status, generation| {
                producer.push_exited(id as i32, status);
                router.abandon(id, generation, |request| {
                    producer.push_unanswered(id as i32, request);
                });
            });
    }

    /// After a step that saw a worker exit: reaps the workers whose output has been read
    /// to the end and reports them, then, once each one's restart backoff has passed,
    /// tells the kernel (which reaps only when told that SIGCHLD arrived, a signal this
    /// crate leaves to the host), so that it stops choosing that worker and restarts it
    /// within its `max_restarts`. Returns the kernel's code.
    fn settle_ended(&mut self) -> c_int {
        let mut rc = 0;
        self.resources.collect_ended();
        self.report_reaped();
        if self.resources.has_due_report() {
            rc = self.kernel_step(sys::STDIO_BUS_NO_WAIT, true);
            let producer = &mut self.producer;
            self.resources.settle_restarts(|id, outcome| {
                let id = id as i32;
                match outcome {
                    Restart::Done => {
                        producer.push_worker_word(id, b"restarting");
                        producer.push_worker_word(id, b"started");
                    }
                    Restart::Refused(reason) => {
                        producer.push_worker_word(id, reason.word().as_bytes());
                    }
                }
            });
        }
        self.resources.arm_restart_timer();
        rc
    }

    /// Ends the workers if they still run, frees the instance and collects the processes.
    fn release(&mut self) {
        self.resources.restarts_allowed = false;
        #[cfg(feature = "embedded-workers")]
        self.unregister_all_embedded();
        self.resources.signal_workers(libc::SIGKILL);
        // Collected first, so that `destroy` in a running state finds them gone at once.
        self.resources.reap_workers_within(REAP_LIMIT);
        // Without interposition (Apple targets) the 1.1.1 archive's `destroy` can crash
        // once workers were spawned: the instance is leaked instead.
        if cfg!(stdio_bus_interposed) || self.kernel_state() == KernelState::Created {
            let raw = self.raw.as_ptr();
            // SAFETY: `raw` is live and never used again; `destroy` is safe in every
            // state once the router's free is deferred (`interpose`).
            self.resources
                .enter(|| unsafe { sys::stdio_bus_destroy(raw) });
        }
        self.resources.forget_workers();
        self.producer.flush_loss();
        // The handler borrows for the bus's lifetime, which ends here; no callback can
        // run any more (the instance is destroyed or leaked, never called again).
        self.clear_overflow_handler();
    }
}

impl<S: State> Drop for Bus<'_, S> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<S: State> fmt::Debug for Bus<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("state", &self.kernel_state())
            .field("workers", &self.worker_count())
            .finish_non_exhaustive()
    }
}

/// The line hook of a bus with a request table: frees the request a response answers.
///
/// # Safety
///
/// `router` is the `Router` of the bus whose kernel call is running, made from the `&mut`
/// that `Bus::kernel_step` holds for that call, during which nothing else uses it.
unsafe fn note_line(router: *mut core::ffi::c_void, worker: usize, line: &[u8]) {
    // SAFETY: see above.
    let router = unsafe { &mut *router.cast::<Router<'_>>() };
    router.received(worker, line);
}

/// The line hook's note of a response dropped as too long: frees the request it answers.
///
/// # Safety
///
/// As for [`note_line`].
unsafe fn note_answered(router: *mut core::ffi::c_void, worker: usize, id: &[u8]) {
    // SAFETY: see above.
    let router = unsafe { &mut *router.cast::<Router<'_>>() };
    router.answered(worker, id);
}

/// Builds the kernel's options struct; every pointer in it borrows from the arguments.
fn raw_options(
    config: &Config<'_>,
    options: &Options<'_>,
    producer: &Producer<'_>,
) -> sys::stdio_bus_options_t {
    use crate::Listener;
    let null = ptr::null();
    let listener = match options.listener {
        Listener::None => sys::stdio_bus_listener_config_t {
            mode: sys::STDIO_BUS_LISTEN_NONE,
            tcp_host: null,
            tcp_port: 0,
            unix_path: null,
        },
        Listener::Tcp { host, port } => sys::stdio_bus_listener_config_t {
            mode: sys::STDIO_BUS_LISTEN_TCP,
            tcp_host: host.as_ptr(),
            tcp_port: port,
            unix_path: null,
        },
        Listener::Unix { path } => sys::stdio_bus_listener_config_t {
            mode: sys::STDIO_BUS_LISTEN_UNIX,
            tcp_host: null,
            tcp_port: 0,
            unix_path: path.as_ptr(),
        },
    };
    let mut raw = sys::stdio_bus_options_t {
        config_path: config.file().map_or(null, |path| path.as_ptr()),
        config_json: config.json().map_or(null, |json| json.as_ptr()),
        listener,
        on_message: None,
        on_error: None,
        on_log: None,
        on_worker: None,
        on_client_connect: None,
        on_client_disconnect: None,
        user_data: ptr::null_mut(),
        log_level: options.log_level.raw(),
    };
    callbacks::install(&mut raw, producer);
    raw
}

/// The kernel's step timeout for `timeout`; see [`Bus::poll`].
fn step_timeout(timeout: Duration) -> c_int {
    if timeout == Duration::MAX {
        return sys::STDIO_BUS_WAIT_FOREVER;
    }
    whole_units(timeout, Duration::from_millis(1))
}

/// Kernel counts are never negative; a negative one would be a kernel error code.
fn count(raw: c_int) -> usize {
    usize::try_from(raw).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_timeouts_round_up_and_saturate() {
        assert_eq!(step_timeout(Duration::ZERO), 0);
        assert_eq!(step_timeout(Duration::from_nanos(1)), 1);
        assert_eq!(step_timeout(Duration::from_micros(999)), 1);
        assert_eq!(step_timeout(Duration::from_micros(1001)), 2);
        assert_eq!(step_timeout(Duration::from_secs(1)), 1000);
        assert_eq!(
            step_timeout(Duration::from_secs(u64::from(u32::MAX))),
            c_int::MAX
        );
        assert_eq!(step_timeout(Duration::MAX), -1);
    }
}
