//! The lifecycle's transitions: each moves the bus's parts into a bus of the next state,
//! and one that fails hands the bus back as it was.

use core::marker::PhantomData;
use core::time::Duration;

use super::shutdown::KILL_LIMIT;
use super::{Bus, Failed};
use crate::clock::Deadline;
use crate::state::{Created, Running, State, Stopped, Stopping};
use crate::{Error, WorkerId, sigpipe, sys};

/// How long [`Bus::stop`] waits beyond the drain timeout: long enough for killed workers
/// to be given up on (`KILL_LIMIT`) and the kernel to stop after that.
const STOP_GRACE: Duration = KILL_LIMIT.saturating_add(Duration::from_secs(1));
/// Kernel step length while a shutdown is driven from inside this crate.
const SHUTDOWN_STEP: Duration = Duration::from_millis(10);

impl<'r> Bus<'r, Created> {
    /// Spawns every worker. On failure the created bus comes back with the error;
    /// dropping it ends the workers that did start.
    ///
    /// No worker's life is tied to a thread: any thread may start the bus and poll it,
    /// and threads may end meanwhile. On Linux the workers' process groups are killed
    /// when the host process ends, however it ends (SIGKILL included), by a guardian
    /// process the bus starts here (see the README, "Workers outliving their host").
    pub fn start(self) -> Result<Bus<'r, Running>, Failed<Self>> {
        sigpipe::guard();
        let mut this = self;
        let raw = this.kernel.raw.as_ptr();
        // SAFETY: `raw` is a live instance (type invariant).
        let rc = this
            .kernel
            .resources
            .enter_spawning(|| unsafe { sys::stdio_bus_start(raw) });
        this.producer.flush_loss();
        // A shortage of descriptors is named whatever code the kernel made of it.
        let result = match Error::check(rc) {
            Err(_) if this.kernel.resources.ran_out_of_low_fds() => Err(Error::NoLowDescriptor),
            checked => checked.and_then(|_| this.check_spawned()),
        };
        match result {
            Ok(()) => {
                this.kernel.resources.allow_restarts();
                Ok(this.into_state())
            }
            Err(error) => Err(Failed { error, value: this }),
        }
    }

    /// The kernel's `start` returns success even when some worker could not be spawned:
    /// compare what it forked with what the configuration asks for.
    fn check_spawned(&self) -> Result<(), Error> {
        if self.kernel.resources.ran_out_of_low_fds() {
            return Err(Error::NoLowDescriptor);
        }
        let children = self.kernel.resources.children.iter();
        if let Some((worker, child)) = children.enumerate().find(|(_, c)| c.exec_errno != 0) {
            let (worker, errno) = (WorkerId::from_index(worker), child.exec_errno.into());
            return Err(if child.exec_in_cwd {
                Error::CwdFailed { worker, errno }
            } else {
                Error::ExecFailed { worker, errno }
            });
        }
        let spawned = self.kernel.resources.children.len();
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
    /// The same parts as a bus in state `T`.
    pub(super) fn into_state<T: State>(self) -> Bus<'r, T> {
        Bus {
            kernel: self.kernel,
            producer: self.producer,
            router: self.router,
            phase: self.phase,
            reserve: self.reserve,
            state: PhantomData,
        }
    }
}
