//! The kernel's traffic counters.

use crate::RingStats;
use crate::sys;

/// Counters kept by the kernel since the instance was created, and the ring's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// `send` calls accepted (one call may carry several messages).
    pub messages_in: u64,
    /// Lines delivered to the host.
    pub messages_out: u64,
    /// Bytes accepted from the host.
    pub bytes_in: u64,
    /// Bytes delivered to the host.
    pub bytes_out: u64,
    /// Workers the kernel restarted.
    pub worker_restarts: u64,
    /// Messages the kernel could not route.
    pub routing_errors: u64,
    /// Listener clients that connected.
    pub client_connects: u64,
    /// Listener clients that went away.
    pub client_disconnects: u64,
    /// What the bus's event ring stored and lost.
    pub ring: RingStats,
}

impl Stats {
    pub(crate) fn new(raw: sys::stdio_bus_stats_t, ring: RingStats) -> Self {
        Self {
            messages_in: raw.messages_in,
            messages_out: raw.messages_out,
            bytes_in: raw.bytes_in,
            bytes_out: raw.bytes_out,
            worker_restarts: raw.worker_restarts,
            routing_errors: raw.routing_errors,
            client_connects: raw.client_connects,
            client_disconnects: raw.client_disconnects,
            ring,
        }
    }
}
