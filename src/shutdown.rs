//! How a bus stops without crashing the kernel.
//!
//! The kernel's own `stop` signals every worker and reaches STOPPED at the next step,
//! before it has seen the workers' pipes close. `destroy` then closes those connections
//! itself, and with two or more workers that crashed the 1.1.1 archive in most runs
//! (SIGSEGV in `stdio_bus_router_invalidate_worker`, observed). So the bus ends its
//! workers itself while the kernel still runs: SIGTERM to each worker pid, steps until the
//! kernel has reported every worker `stopped` (its pipe closed), SIGKILL for those that
//! outlive the drain time, and only then the kernel's `stop`, which now has nothing left
//! to close.
//!
//! Without known worker pids (systems other than Linux, or no `/proc`) the kernel's
//! `stop` is called at once. Its STOPPED then usually comes with worker pipes still open,
//! so the bus will not destroy the instance and leaks it instead of crashing.

use core::time::Duration;

use crate::clock::{Deadline, whole_units};
use crate::state::State;
use crate::{Bus, Error, KernelState, sys};

/// How long killed workers get for their pipes to close.
pub(crate) const KILL_LIMIT: Duration = Duration::from_secs(2);

/// Where a bus is in its shutdown.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    /// Not stopping.
    Running,
    /// Workers asked to exit with SIGTERM; the kernel still runs, so it sees each pipe
    /// close.
    Draining { kill_at: Deadline },
    /// Workers killed; waiting for the kernel to see their pipes close.
    Killed { give_up_at: Deadline },
    /// The kernel's `stop` was called; stepping to STOPPED.
    Kernel,
    /// `start` failed after spawning workers: the kernel stopped itself with their
    /// connections open and will not step any more, so it can never be destroyed safely.
    StartFailed,
}

impl<S: State> Bus<'_, S> {
    /// Starts the shutdown; workers get `drain` to exit after SIGTERM.
    pub(crate) fn begin_shutdown(&mut self, drain: Duration) -> Result<(), Error> {
        // Their connections must be gone before the kernel stops, like the processes'.
        #[cfg(feature = "embedded-workers")]
        self.unregister_all_embedded();
        if self.workers.is_empty() {
            return self.stop_kernel(drain);
        }
        self.workers.signal(libc::SIGTERM);
        self.phase = Phase::Draining {
            kill_at: Deadline::after(drain),
        };
        Ok(())
    }

    /// One step of the shutdown, waiting up to `timeout`; returns the events delivered.
    pub(crate) fn advance_shutdown(&mut self, timeout: Duration) -> Result<usize, Error> {
        match self.phase {
            Phase::Running | Phase::StartFailed => Ok(0),
            Phase::Kernel if self.kernel_state() == KernelState::Stopped => Ok(0),
            Phase::Kernel => self.step(timeout),
            // The phase moves on whatever the step returned, so a failing step cannot
            // hold back SIGKILL or the kernel's stop; its error is reported afterwards.
            Phase::Draining { kill_at } => {
                let stepped = self.step(timeout);
                if self.producer.running_workers() <= 0 {
                    self.stop_kernel(Duration::ZERO)?;
                } else if kill_at.has_passed() {
                    self.workers.signal(libc::SIGKILL);
                    self.phase = Phase::Killed {
                        give_up_at: Deadline::after(KILL_LIMIT),
                    };
                }
                stepped
            }
            Phase::Killed { give_up_at } => {
                let stepped = self.step(timeout);
                if self.producer.running_workers() <= 0 || give_up_at.has_passed() {
                    self.stop_kernel(Duration::ZERO)?;
                }
                stepped
            }
        }
    }

    /// Whether the shutdown is complete.
    pub(crate) fn shutdown_done(&self) -> bool {
        match self.phase {
            // The kernel stopped itself and will not step again: nothing is left to do.
            Phase::StartFailed => true,
            Phase::Kernel => self.kernel_state() == KernelState::Stopped,
            _ => false,
        }
    }

    /// Whether `destroy` is safe: the instance is CREATED, or STOPPED with no worker
    /// connection left open.
    pub(crate) fn destroy_is_safe(&self) -> bool {
        if matches!(self.phase, Phase::StartFailed) {
            return false;
        }
        match self.kernel_state() {
            KernelState::Created => true,
            KernelState::Stopped => self.producer.running_workers() <= 0,
            _ => false,
        }
    }

    /// Calls the kernel's `stop`. The phase becomes `Kernel` even when the kernel refuses
    /// (it does only outside RUNNING, when it is stopping or stopped already), so the
    /// shutdown always ends in stepping the kernel to STOPPED.
    fn stop_kernel(&mut self, drain: Duration) -> Result<(), Error> {
        // SAFETY: `self.raw` is live.
        let rc = unsafe { sys::stdio_bus_stop(self.raw.as_ptr(), whole_seconds(drain)) };
        self.phase = Phase::Kernel;
        Error::check(rc).map(drop)
    }
}

/// The kernel's stop timeout, in whole seconds rounded up.
fn whole_seconds(timeout: Duration) -> cty::c_int {
    whole_units(timeout, Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_timeouts_are_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(whole_seconds(Duration::MAX), cty::c_int::MAX);
    }
}
