//! How a bus stops gracefully.
//!
//! The kernel's own `stop` signals every worker and reaches STOPPED at the next step,
//! before those processes have exited and before their last output has been read; a
//! STOPPED instance cannot step any more. So the bus ends its workers itself while the
//! kernel still runs: SIGTERM to each, steps (delivering their last lines) until the kernel
//! has reaped every one, SIGKILL for those that outlive the drain time, and only then the
//! kernel's `stop`, which has nothing left to do but change state.
//!
//! Where the kernel's calls are not interposed (see `interpose`; Apple targets) the bus
//! knows no worker process: the kernel's `stop` is called at once.

use core::time::Duration;

use super::Bus;
use crate::clock::{Deadline, whole_units};
use crate::state::{State, Stopping};
use crate::{Error, Event, KernelState, sys};

/// How long killed workers get to be reaped before the bus stops waiting for them.
pub(super) const KILL_LIMIT: Duration = Duration::from_secs(2);

/// Where a bus is in its shutdown.
#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    /// Not stopping.
    Running,
    /// Workers asked to exit with SIGTERM; the kernel still runs and reaps them.
    Draining { kill_at: Deadline },
    /// Workers killed; waiting for the kernel to reap them.
    Killed { give_up_at: Deadline },
    /// The kernel's `stop` was called; stepping to STOPPED.
    Kernel,
}

impl<S: State> Bus<'_, S> {
    /// Starts the shutdown; workers get `drain` to exit after SIGTERM.
    pub(super) fn begin_shutdown(&mut self, drain: Duration) -> Result<(), Error> {
        #[cfg(feature = "embedded-workers")]
        self.kernel.unregister_all_embedded();
        // From now on what the workers write goes on, and what the ring has no room for
        // is counted lost: nothing may wait for room that nobody frees.
        self.kernel.resources.begin_shutdown();
        if self.kernel.resources.children.alive() == 0 {
            return self.stop_kernel(drain);
        }
        self.kernel.resources.signal_workers(libc::SIGTERM);
        self.phase = Phase::Draining {
            kill_at: Deadline::after(drain),
        };
        // A loop asleep on `poll_fd` wakes for the SIGKILL even if no worker stirs.
        self.kernel.resources.wake_after(drain);
        Ok(())
    }

    /// One step of the shutdown, waiting up to `timeout`; returns the events delivered.
    pub(super) fn advance_shutdown(&mut self, timeout: Duration) -> Result<usize, Error> {
        match self.phase {
            Phase::Running => Ok(0),
            Phase::Kernel if self.kernel_state() == KernelState::Stopped => Ok(0),
            Phase::Kernel => self.step(timeout),
            // The phase moves on whatever the step returned, so a failing step cannot
            // hold back SIGKILL or the kernel's stop; its error is reported afterwards.
            Phase::Draining { kill_at } => {
                let stepped = self.step(timeout);
                if self.kernel.resources.children.alive() == 0 {
                    self.stop_kernel(Duration::ZERO)?;
                } else if kill_at.has_passed() {
                    self.kernel.resources.signal_workers(libc::SIGKILL);
                    self.phase = Phase::Killed {
                        give_up_at: Deadline::after(KILL_LIMIT),
                    };
                    self.kernel.resources.wake_after(KILL_LIMIT);
                }
                stepped
            }
            Phase::Killed { give_up_at } => {
                let stepped = self.step(timeout);
                if self.kernel.resources.children.alive() == 0 || give_up_at.has_passed() {
                    self.stop_kernel(Duration::ZERO)?;
                }
                stepped
            }
        }
    }

    /// Whether the shutdown is complete.
    pub(super) fn shutdown_done(&self) -> bool {
        matches!(self.phase, Phase::Kernel) && self.kernel_state() == KernelState::Stopped
    }

    /// Calls the kernel's `stop`. The phase becomes `Kernel` even when the kernel refuses
    /// (it does only outside RUNNING, when it is stopping or stopped already), so the
    /// shutdown always ends in stepping the kernel to STOPPED.
    fn stop_kernel(&mut self, drain: Duration) -> Result<(), Error> {
        let raw = self.kernel.raw.as_ptr();
        // SAFETY: `raw` is live.
        let rc = self
            .kernel
            .resources
            .enter(|| unsafe { sys::stdio_bus_stop(raw, whole_seconds(drain)) });
        self.producer.flush_loss();
        self.phase = Phase::Kernel;
        Error::check(rc).map(drop)
    }
}

impl Bus<'_, Stopping> {
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

    /// [`Bus::poll_stop`], with `overflow` taking every event that does not fit in the
    /// ring during this call, as for [`Bus::poll_with`].
    pub fn poll_stop_with(
        &mut self,
        timeout: Duration,
        mut overflow: impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        self.with_overflow_handler(&mut overflow, |bus| bus.poll_stop(timeout))
    }

    /// Whether every worker is gone and the bus can become [`Stopped`](crate::Stopped).
    pub fn is_stopped(&self) -> bool {
        self.shutdown_done()
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
