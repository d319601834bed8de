//! The safe bus: one kernel instance, its lifecycle as types, driven by the caller.
//!
//! One concept a file: [`create`](self::create) makes the instance, [`transitions`] move it
//! from state to state, [`send`] hands messages to workers, [`step`] drives the kernel and
//! supervision, [`ending`] ends a worker on request, [`liveness`] restarts hung ones,
//! [`shutdown`] stops it gracefully, [`callbacks`] are what the kernel calls,
//! [`overflow`] hands what the ring cannot hold to the host, and [`kernel`] owns the
//! instance and ends it on drop. The bus's fields are private to this folder.

// A failed transition hands the bus back by value, and the bus keeps its worker table
// inline because nothing in this crate allocates: the error is large on purpose.
#![allow(clippy::result_large_err)]

mod callbacks;
mod create;
#[cfg(feature = "embedded-workers")]
mod embedded;
mod ending;
mod failed;
mod kernel;
mod liveness;
mod overflow;
mod send;
mod shutdown;
mod step;
mod transitions;

use core::fmt;
use core::marker::PhantomData;

use cty::c_int;

#[cfg(feature = "embedded-workers")]
pub use embedded::EmbeddedWorker;
pub use failed::Failed;
use kernel::{Kernel, count};
use shutdown::Phase;

use crate::interpose::Child;
use crate::ring::Producer;
use crate::routing::Router;
use crate::state::State;
use crate::{KernelState, Stats, WorkerId, backpressure, sys};

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
    /// The instance; dropping it ends the workers and frees it, whatever `S` is.
    kernel: Kernel<'r>,
    producer: Producer<'r>,
    /// Which worker each message goes to (see `routing`).
    router: Router<'r>,
    /// Progress of the shutdown (see `shutdown`).
    phase: Phase,
    /// Free ring bytes below which `poll` does not step the kernel.
    reserve: usize,
    state: PhantomData<S>,
}

// SAFETY: the kernel instance has no thread affinity (no threads, no thread-local state;
// its only globals are the stderr log level and colour, which it never mutates after
// startup), every call into it goes through `&mut self` or `self`, the producer is Send,
// and the send buffer's pointer stands for an exclusive borrow the bus carries along.
unsafe impl<S: State> Send for Bus<'_, S> {}

impl<'r, S: State> Bus<'r, S> {
    /// The kernel's own view of its lifecycle.
    pub fn kernel_state(&self) -> KernelState {
        self.kernel.state()
    }

    /// Workers currently known to the kernel.
    pub fn worker_count(&self) -> usize {
        self.kernel.worker_count()
    }

    /// The process id of worker `id` while the process has not been reaped; `None` once it
    /// has, or where the kernel's calls are not interposed (Apple targets).
    pub fn worker_pid(&self, id: WorkerId) -> Option<u32> {
        let child = self.kernel.resources.children.get(id.index())?;
        child.life.is_unreaped().then(|| child.pid.unsigned_abs())
    }

    /// Sessions the kernel itself routes by `sessionId`: those of listener clients. The
    /// bus's own, for `send`, are [`Bus::session_table_len`].
    pub fn session_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_session_count(self.kernel.raw.as_ptr()) })
    }

    /// Requests waiting for a response, as the kernel tracks them: listener clients'. The
    /// bus's own, for `send`, are [`Bus::requests_in_flight`].
    pub fn pending_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_pending_count(self.kernel.raw.as_ptr()) })
    }

    /// Listener clients connected.
    pub fn client_count(&self) -> usize {
        // SAFETY: `self.raw` is live.
        count(unsafe { sys::stdio_bus_client_count(self.kernel.raw.as_ptr()) })
    }

    /// The kernel's traffic counters.
    pub fn stats(&self) -> Stats {
        let mut raw = sys::stdio_bus_stats_t::default();
        // SAFETY: `self.raw` is live and `raw` is a valid out-parameter.
        unsafe { sys::stdio_bus_get_stats(self.kernel.raw.as_ptr(), &mut raw) };
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
        if let Some(fd) = self.kernel.resources.poll_fd() {
            return Some(fd);
        }
        // SAFETY: `self.raw` is live.
        let fd = unsafe { sys::stdio_bus_get_poll_fd(self.kernel.raw.as_ptr()) };
        (fd >= 0).then_some(fd)
    }

    /// The longest message [`Bus::send`] can hand to every worker: one byte less than the
    /// smallest worker stdin pipe, or than the send buffer ([`Bus::set_send_buffer`]) if
    /// that is larger, once the bus has started (Linux). Longer messages are refused with
    /// [`Error::TooLarge`](crate::Error::TooLarge).
    pub fn max_message_len(&self) -> Option<usize> {
        let resources = &self.kernel.resources;
        let pipes = resources.children.iter().filter_map(Child::stdin_pipe);
        backpressure::max_message_len(pipes, &resources.backlog)
    }

    /// The ring's producer, for its loss counters.
    pub fn producer(&self) -> &Producer<'r> {
        &self.producer
    }

    /// Shuts the instance down as dropping would and hands back the producer, so the ring
    /// can serve a new bus.
    pub fn into_producer(self) -> Producer<'r> {
        let Self {
            kernel, producer, ..
        } = self;
        drop(kernel);
        producer
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
