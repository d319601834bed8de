//! Stepping the kernel: one wait for I/O, the events it delivers, and the supervision that
//! follows a worker's end.

use core::time::Duration;

use cty::c_int;

use super::Bus;
use crate::clock::whole_units;
use crate::event::RestartReport;
use crate::interpose::LineHook;
use crate::routing::Router;
use crate::state::{Running, State};
use crate::supervise::{Refusal, Restart};
use crate::{Error, Event, RestartRefused, WorkerId, sys};

impl<'r> Bus<'r, Running> {
    /// Runs one kernel step: waits up to `timeout` for worker output or other I/O, then
    /// delivers what arrived into the ring. Returns the number of events delivered.
    ///
    /// `Duration::ZERO` does not wait. A timeout below one millisecond (the kernel's unit)
    /// waits one millisecond rather than spinning; longer timeouts round up to whole
    /// milliseconds and saturate at `i32::MAX` ms. `Duration::MAX` waits until something
    /// happens, however long that takes.
    ///
    /// When the ring has less free space than the poll reserve, no step runs and the
    /// error is [`Error::RingFull`]: read events, then poll again. This is how pressure
    /// reaches the workers instead of the host's memory.
    pub fn poll(&mut self, timeout: Duration) -> Result<usize, Error> {
        self.check_reserve()?;
        self.step(timeout)
    }

    /// [`Bus::poll`], with `overflow` taking every event that does not fit in the ring
    /// during this call, as a handler set with [`Bus::set_overflow_handler`] would: so
    /// nothing is lost, and `overflow` can borrow the host's state, the consumer included,
    /// for this call only. It runs inside the kernel's callbacks: it must not block, and a
    /// panic in it aborts the process. A handler set for the bus's lifetime is back in
    /// place when this returns.
    ///
    /// ```no_run
    /// # use core::time::Duration;
    /// # use stdiobus_embed::{Bus, Consumer, Event, Running};
    /// fn pump(bus: &mut Bus<'_, Running>, events: &mut Consumer<'_>, out: &mut Vec<Vec<u8>>) {
    ///     let mut keep = |event: Event<'_>| {
    ///         if let Event::Message { line, .. } = event {
    ///             out.push(line.as_bytes().to_vec());
    ///         }
    ///     };
    ///     // What the ring cannot hold goes to `out` now, what it holds below.
    ///     let _ = bus.poll_with(Duration::from_millis(10), |event| {
    ///         events.drain(&mut keep); // older events first
    ///         keep(event);
    ///     });
    ///     events.drain(keep);
    /// }
    /// ```
    pub fn poll_with(
        &mut self,
        timeout: Duration,
        mut overflow: impl FnMut(Event<'_>),
    ) -> Result<usize, Error> {
        self.with_overflow_handler(&mut overflow, |bus| bus.poll(timeout))
    }
}

impl<S: State> Bus<'_, S> {
    /// Refuses to step while the ring is short of the poll reserve.
    pub(super) fn check_reserve(&self) -> Result<(), Error> {
        let free = self.producer.free_bytes();
        if free < self.reserve {
            return Err(Error::RingFull {
                free,
                reserve: self.reserve,
            });
        }
        Ok(())
    }

    pub(super) fn step(&mut self, timeout: Duration) -> Result<usize, Error> {
        let before = self.producer.delivered();
        // A kept message goes on before the wait (the pipe may have room since) and after
        // it (the wait may have been for that room).
        self.kernel.resources.flush_backlog();
        let mut rc = self.kernel_step(step_timeout(timeout), false);
        if rc >= 0 && self.kernel.resources.take_exits_seen() {
            rc = self.settle_ended();
        }
        // After the restarts too: what was kept for an ended process goes with it.
        self.kernel.resources.flush_backlog();
        self.kernel.resources.settle_wake();
        self.report_reaped();
        self.producer.flush_loss();
        Error::check(rc)?;
        Ok(self.producer.delivered().wrapping_sub(before) as usize)
    }

    /// One kernel step, with `timeout_ms`; `reaping`: first told that SIGCHLD arrived, so
    /// that it reaps (see [`Bus::settle_ended`]). Lines delivered meanwhile reach the
    /// router when it tracks requests.
    fn kernel_step(&mut self, timeout_ms: c_int, reaping: bool) -> c_int {
        let raw = self.kernel.raw.as_ptr();
        // Made from `&mut self` for this call only: while the kernel runs, the line hook
        // is the router's only user.
        let hook = self.router.tracks_requests().then(|| LineHook {
            call: note_line,
            answered: note_answered,
            data: (&raw mut self.router).cast(),
        });
        self.kernel.resources.set_line_hook(hook);
        let rc = if reaping {
            // SAFETY: `raw` is live; notify only sets a flag that the step reads.
            self.kernel.resources.enter_reaping(|| unsafe {
                sys::stdio_bus_notify_sigchld(raw);
                sys::stdio_bus_step(raw, timeout_ms)
            })
        } else {
            // SAFETY: `raw` is live; callbacks reach the ring through `user_data`, and
            // `&mut self` keeps every other access to the producer out meanwhile.
            self.kernel
                .resources
                .enter(|| unsafe { sys::stdio_bus_step(raw, timeout_ms) })
        };
        self.kernel.resources.set_line_hook(None);
        rc
    }

    /// Reports each worker reaped since the last report, and the requests it left
    /// unanswered.
    fn report_reaped(&mut self) {
        let (producer, router) = (&mut self.producer, &mut self.router);
        self.kernel
            .resources
            .children
            .take_reaped(|id, status, generation| {
                let worker = WorkerId::from_index(id);
                producer.push_exited(worker, status);
                router.abandon(id, generation, |request| {
                    producer.push_unanswered(worker, request);
                });
            });
    }

    /// After a step that saw a worker exit: reaps the workers whose output has been read
    /// to the end and reports them, then, once each one's restart backoff has passed,
    /// tells the kernel (which reaps only when told that SIGCHLD arrived, a signal this
    /// crate leaves to the host), so that it stops choosing that worker and restarts it
    /// within its `max_restarts`. Returns the kernel's code.
    fn settle_ended(&mut self) -> c_int {
        let mut rc = 0;
        // The timer that woke this step may be for a grace or a liveness check: both
        // are cheap to look at, and only here.
        self.kernel.resources.kill_overdue();
        self.check_liveness();
        self.kernel.resources.collect_ended();
        self.report_reaped();
        if self.kernel.resources.has_due_report() {
            rc = self.kernel_step(sys::STDIO_BUS_NO_WAIT, true);
            let producer = &mut self.producer;
            self.kernel.resources.settle_restarts(|id, outcome| {
                let id = WorkerId::from_index(id);
                match outcome {
                    Restart::Done => {
                        producer.push_restart(id, RestartReport::Restarting);
                        producer.push_restart(id, RestartReport::Started);
                    }
                    Restart::Refused(reason) => {
                        producer.push_restart(id, RestartReport::Refused(reason.into()));
                    }
                }
            });
        }
        self.kernel.resources.arm_restart_timer();
        rc
    }
}

/// The public reason for a refusal of the restart policy.
impl From<Refusal> for RestartRefused {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::LimitReached => Self::LimitReached,
            Refusal::SpawnFailed => Self::SpawnFailed,
            Refusal::OutputClosed => Self::OutputClosed,
            Refusal::ExecFailed => Self::ExecFailed,
        }
    }
}

/// The line hook of a bus with a request table: frees the request a response answers.
///
/// # Safety
///
/// `router` is the `Router` of the bus whose kernel call is running, made from the `&mut`
/// that `Bus::kernel_step` holds for that call, during which nothing else uses it.
unsafe fn note_line(router: *mut core::ffi::c_void, worker: usize, line: &[u8]) {
    // SAFETY: see above.
    let router = unsafe { &mut *router.cast::<Router<'_>>() };
    router.received(worker, line);
}

/// The line hook's note of a response dropped as too long: frees the request it answers.
///
/// # Safety
///
/// As for [`note_line`].
unsafe fn note_answered(router: *mut core::ffi::c_void, worker: usize, id: &[u8]) {
    // SAFETY: see above.
    let router = unsafe { &mut *router.cast::<Router<'_>>() };
    router.answered(worker, id);
}

/// The kernel's step timeout for `timeout`; see [`Bus::poll`].
fn step_timeout(timeout: Duration) -> c_int {
    if timeout == Duration::MAX {
        return sys::STDIO_BUS_WAIT_FOREVER;
    }
    whole_units(timeout, Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_timeouts_round_up_and_saturate() {
        assert_eq!(step_timeout(Duration::ZERO), 0);
        assert_eq!(step_timeout(Duration::from_nanos(1)), 1);
        assert_eq!(step_timeout(Duration::from_micros(999)), 1);
        assert_eq!(step_timeout(Duration::from_micros(1001)), 2);
        assert_eq!(step_timeout(Duration::from_secs(1)), 1000);
        assert_eq!(
            step_timeout(Duration::from_secs(u64::from(u32::MAX))),
            c_int::MAX
        );
        assert_eq!(step_timeout(Duration::MAX), -1);
    }
}
