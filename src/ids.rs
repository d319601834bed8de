//! The kernel's ids for workers and listener clients, as types of their own.
//!
//! The kernel numbers both with C `int`s that are never negative: a worker's id is its
//! place in configuration order (an embedded worker's is the one its registration
//! returned), a client's is the kernel's own count. They stay the kernel's numbers here, so that they print and
//! compare as the kernel's logs and the host's configuration name them.

use core::fmt;

use cty::c_int;

/// A worker of a bus: the kernel's worker id, its place in configuration order counted from
/// 0 across all pools (an embedded worker's is the one its registration returned). A
/// restarted worker keeps its id.
///
/// Events name the worker they concern with one; [`Bus::send_to_worker`] and
/// [`Bus::worker_pid`] take one. A host that knows the order of its own configuration
/// makes one with [`WorkerId::new`].
///
/// [`Bus::send_to_worker`]: crate::Bus::send_to_worker
/// [`Bus::worker_pid`]: crate::Bus::worker_pid
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WorkerId(u32);

impl WorkerId {
    /// The worker at place `id` of the configuration, counted from 0 across all pools in
    /// order (two pools of two instances: 0 and 1 are the first pool's).
    pub const fn new(id: u32) -> Self {
        Self(id)
    }

    /// The kernel's number for the worker.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The kernel's number for the worker, as an index into a table of the host's own with
    /// one entry per worker.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The worker at `index` of the bus's worker table (fewer than `MAX_WORKERS`, far
    /// below `u32::MAX`).
    pub(crate) const fn from_index(index: usize) -> Self {
        Self(index as u32)
    }

    /// The id the kernel passed to a callback, or the bus stored in a ring record: never
    /// negative.
    pub(crate) const fn from_raw(raw: c_int) -> Self {
        Self(raw as u32)
    }

    /// The id as a ring record stores it.
    pub(crate) const fn raw(self) -> c_int {
        self.0 as c_int
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A client of a bus's listener (TCP or Unix socket): the kernel's client id, as
/// [`Event::ClientConnected`](crate::Event::ClientConnected) and
/// [`Event::ClientDisconnected`](crate::Event::ClientDisconnected) report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientId(u32);

impl ClientId {
    /// The kernel's number for the client.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id the kernel passed to a callback: never negative.
    pub(crate) const fn from_raw(raw: c_int) -> Self {
        Self(raw as u32)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn ids_show_as_the_kernel_numbers_them() {
        assert_eq!(format!("worker {}", WorkerId::new(3)), "worker 3");
        assert_eq!(format!("{:>3}", WorkerId::new(7)), "  7");
        assert_eq!(format!("client {}", ClientId::from_raw(12)), "client 12");
        assert_eq!(WorkerId::from_raw(WorkerId::new(5).raw()), WorkerId::new(5));
        assert_eq!(WorkerId::from_index(2).index(), 2);
        assert_eq!(WorkerId::new(9).get(), 9);
    }
}
