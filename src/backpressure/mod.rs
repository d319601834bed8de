//! Back-pressure, both ways: a message waits, or is refused, rather than being cut or lost,
//! and a worker's output waits in its pipe rather than being dropped.
//!
//! - Towards a worker: [`pipe_room`] checks that a worker's stdin pipe can take a message
//!   whole before the kernel writes it, and the [`Backlog`] keeps what a pipe could not
//!   take yet, in a buffer the host lends, writing it as the worker reads.
//! - From a worker: [`held`] keeps back the lines of a read that the ring has no room for,
//!   in the kernel's own buffer, so that the worker's pipe fills and the worker waits.
//!
//! The interposed calls (`interpose`) apply them where the kernel reads and writes.

// Without an interposed archive (Apple targets, or no archive at all) the kernel's reads
// and writes are its own, and most of this is never called.
#![cfg_attr(not(stdio_bus_interposed), allow(dead_code))]

pub(crate) mod backlog;
pub(crate) mod held;
mod pipe_room;

pub(crate) use backlog::Backlog;
#[cfg(all(target_os = "linux", stdio_bus_interposed))]
pub(crate) use backlog::STDIN_TAG;
pub(crate) use held::Held;
pub(crate) use pipe_room::{StdinPipe, check_room, max_message_len};
