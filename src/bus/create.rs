//! Creating a bus: the kernel instance, its options, and the caller's tables and buffers.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::kernel::Kernel;
use super::shutdown::Phase;
use super::{Bus, Failed, callbacks};
use crate::config::Config;
use crate::interpose::KernelResources;
use crate::ring::Producer;
use crate::routing::{Pools, RequestSlot, Router, SessionSlot};
use crate::state::Created;
use crate::{Error, Options, sys};

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
        let mut resources = KernelResources::new();
        let launch = &mut resources.launch;
        match (config.json(), config.file()) {
            (Some(json), _) => {
                // `Config::from_json` checked it, UTF-8 included.
                let text = json.to_str().unwrap_or_default();
                let pool = |id, instances| pools.push(id, instances);
                input_limit = crate::config::layout(text, pool, launch);
            }
            (None, Some(path)) => {
                let pool = |id, instances| pools.push(id, instances);
                let checked = crate::config::check_file(path, pool, &mut input_limit, launch);
                if let Err(error) = checked {
                    return Err(Failed {
                        error: Error::Config(error),
                        value: producer,
                    });
                }
            }
            (None, None) => {}
        }
        // The configuration checks bound what the table takes.
        debug_assert!(resources.launch.fits());
        producer.prepare(options.events, options.log_level);
        let reserve = options
            .poll_reserve
            .unwrap_or(producer.capacity() / 4)
            .min(producer.free_bytes());
        let raw_options = raw_options(&config, &options, &producer);
        let line_limit = input_limit.unwrap_or(crate::limits::DEFAULT_MAX_INPUT_BUFFER);
        resources.attach_ring(producer.user_data(), line_limit as usize);
        if options.sigpipe_ignored && crate::sigpipe::is_ignored() {
            resources.trust_sigpipe_ignored();
        }
        // SAFETY: `raw_options` is fully initialised; every string in it is NUL-terminated
        // and outlives the instance ('r); `user_data` points at the ring, which outlives
        // the instance ('r) and is reached only through `producer` (ring invariant 3).
        let raw = resources.enter(|| unsafe { sys::stdio_bus_create(&raw_options) });
        producer.flush_loss();
        match NonNull::new(raw) {
            Some(raw) => Ok(Self {
                kernel: Kernel::new(raw, resources),
                producer,
                router: Router::new(pools),
                phase: Phase::Running,
                reserve,
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
        unsafe { self.kernel.resources.backlog.lend(buf) };
    }
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
