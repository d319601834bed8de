//! How a bus is set up besides its configuration: log level, recorded events, listener.

use crate::{EventMask, Listener, LogLevel};

/// Options for [`Bus::create`](crate::Bus::create), built with `const` setters.
///
/// ```
/// use stdiobus_embed::{EventMask, Listener, LogLevel, Options};
/// const OPTIONS: Options<'static> = Options::new()
///     .log_level(LogLevel::Info)
///     .events(EventMask::MESSAGE.union(EventMask::WORKER))
///     .listener(Listener::Tcp { host: c"127.0.0.1", port: 9800 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    pub(crate) log_level: LogLevel,
    pub(crate) events: EventMask,
    pub(crate) listener: Listener<'a>,
    pub(crate) poll_reserve: Option<usize>,
    pub(crate) sigpipe_ignored: bool,
}

impl<'a> Options<'a> {
    /// Warnings and errors logged, every kind of event recorded, no listener.
    pub const fn new() -> Self {
        Self {
            log_level: LogLevel::Warn,
            events: EventMask::ALL,
            listener: Listener::None,
            poll_reserve: None,
            sigpipe_ignored: false,
        }
    }

    /// The least severe kernel log line reported.
    pub const fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Which kinds of event are recorded in the ring.
    pub const fn events(mut self, mask: EventMask) -> Self {
        self.events = mask;
        self
    }

    /// Free ring space, in bytes, below which [`Bus::poll`](crate::Bus::poll) does not
    /// run a kernel step but returns [`Error::RingFull`](crate::Error::RingFull) so the host drains first.
    /// Default: a quarter of the ring.
    ///
    /// The reserve only saves steps that could deliver little: whatever it is, a step
    /// hands the host only the worker lines the ring has room for, and the rest waits in
    /// the bus and then in the workers' pipes. What the ring loses is only what cannot
    /// wait: a line larger than the whole ring, or the kernel's own events when a step's
    /// lines left no room for them (a sixteenth of the slots is kept for those).
    pub const fn poll_reserve(mut self, bytes: usize) -> Self {
        self.poll_reserve = Some(bytes);
        self
    }

    /// Promises that SIGPIPE stays ignored in this process, as Rust's std runtime leaves
    /// it before `main`: the bus then writes to workers without blocking SIGPIPE around
    /// each write, which costs two system calls a message (see the README, "SIGPIPE").
    /// `create` checks the promise: where SIGPIPE is not ignored then, the bus blocks it
    /// as by default. A host that restores the default disposition afterwards dies of a
    /// write to a dead worker.
    pub const fn sigpipe_ignored(mut self, ignored: bool) -> Self {
        self.sigpipe_ignored = ignored;
        self
    }

    /// Accept clients on a socket besides the host's own `send`.
    pub const fn listener(mut self, listener: Listener<'a>) -> Self {
        self.listener = listener;
        self
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Options<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Options {{ log_level: {}, events: {}, listener: {}, poll_reserve: {} }}",
            self.log_level,
            self.events,
            self.listener,
            self.poll_reserve
        );
    }
}
