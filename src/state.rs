//! The bus lifecycle as types: a call that is wrong for the state does not exist.

/// A lifecycle state of a [`Bus`](crate::Bus). Sealed: the four markers below are all.
pub trait State: sealed::Sealed {}

/// Configured, workers not spawned yet. Can [`start`](crate::Bus::start).
#[derive(Debug)]
pub enum Created {}
/// Workers running; messages flow. Can `send`, `poll` and stop.
#[derive(Debug)]
pub enum Running {}
/// Shutdown begun; driven to [`Stopped`] by polling it.
#[derive(Debug)]
pub enum Stopping {}
/// Every worker gone. Cannot start again.
#[derive(Debug)]
pub enum Stopped {}

impl State for Created {}
impl State for Running {}
impl State for Stopping {}
impl State for Stopped {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Created {}
    impl Sealed for super::Running {}
    impl Sealed for super::Stopping {}
    impl Sealed for super::Stopped {}
}

/// The kernel's own lifecycle state, as `stdio_bus_get_state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KernelState {
    /// Created, not started.
    Created,
    /// Spawning workers.
    Starting,
    /// Serving.
    Running,
    /// Shutting down.
    Stopping,
    /// Every worker gone.
    Stopped,
    /// A value this crate does not know.
    Unknown(i32),
}

impl KernelState {
    pub(crate) const fn from_raw(raw: crate::sys::stdio_bus_state_t) -> Self {
        use crate::sys;
        match raw {
            sys::STDIO_BUS_STATE_CREATED => Self::Created,
            sys::STDIO_BUS_STATE_STARTING => Self::Starting,
            sys::STDIO_BUS_STATE_RUNNING => Self::Running,
            sys::STDIO_BUS_STATE_STOPPING => Self::Stopping,
            sys::STDIO_BUS_STATE_STOPPED => Self::Stopped,
            other => Self::Unknown(other),
        }
    }
}
