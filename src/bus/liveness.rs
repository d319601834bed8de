//! The liveness check of a pool: a worker with requests in flight that writes nothing for
//! the pool's limit is restarted, as [`Bus::restart_worker`] would, and its requests are
//! reported. The decisions are `supervise::Watch`'s; the checks run when the supervision
//! timer fires, so a message costs nothing but the count of its worker's reads.

use core::time::Duration;

use super::Bus;
use crate::clock::Instant;
use crate::event::RestartReport;
use crate::state::{Running, State};
use crate::supervise::{EndKind, Life, Liveness, Watch};
use crate::{Error, WorkerId};

impl Bus<'_, Running> {
    /// Watches the workers of pool `pool`: one that has requests in flight and has written
    /// nothing for `limit` is taken for hung (a deadlock, a SIGSTOP, an endless loop) and
    /// restarted as [`Bus::restart_worker`] does. [`Bus::poll`] reports
    /// [`WorkerEvent::Unresponsive`](crate::WorkerEvent::Unresponsive), then its `Exited`,
    /// its requests [`Event::Unanswered`](crate::Event::Unanswered), `Restarting` and
    /// `Started`. `None` turns the check off.
    ///
    /// A worker is found hung between `limit` and twice `limit` after its last output:
    /// the bus compares a count of its reads at checks `limit` apart, made by a timer in
    /// the kernel's epoll set, so an event loop asleep on [`Bus::poll_fd`] wakes for them.
    /// An idle worker (nothing in flight) is never checked, and wakes nobody.
    ///
    /// Needs the request table ([`Bus::set_request_table`]), which knows what is in
    /// flight to each worker: [`Error::NoRequestTable`] without it.
    /// [`Error::UnknownPool`] for a pool the configuration does not have.
    pub fn set_liveness(&mut self, pool: &str, limit: Option<Duration>) -> Result<(), Error> {
        if limit.is_some() && !self.router.tracks_requests() {
            return Err(Error::NoRequestTable);
        }
        let workers = self
            .router
            .pools
            .workers_of(pool)
            .ok_or(Error::UnknownPool)?;
        for id in workers {
            if let Some(child) = self.kernel.resources.children.get_mut(id) {
                child.watch = limit.map(Watch::new);
            }
        }
        self.kernel.resources.arm_restart_timer();
        Ok(())
    }

    /// After a message went to `worker`: starts its watch if it was idle, so that its
    /// first check comes `limit` from now. One test per message on a watched worker.
    pub(super) fn watch_sent(&mut self, worker: usize) {
        let Some(child) = self.kernel.resources.children.get_mut(worker) else {
            return;
        };
        let output = child.output_seen;
        if let Some(watch) = child.watch.as_mut()
            && watch.is_idle()
        {
            watch.check(Instant::now(), output, true);
            self.kernel.resources.arm_restart_timer();
        }
    }
}

impl<S: State> Bus<'_, S> {
    /// Checks the watched workers whose check is due, and restarts those found hung.
    pub(super) fn check_liveness(&mut self) {
        let now = Instant::now();
        for id in 0..self.kernel.resources.children.len() {
            let Some(child) = self.kernel.resources.children.get_mut(id) else {
                continue;
            };
            let (generation, output) = (child.generation, child.output_seen);
            let serving = child.life == Life::Running && child.ending.is_none();
            let Some(watch) = child.watch.as_mut().filter(|_| serving) else {
                continue;
            };
            if watch.next_check().is_none_or(|at| at > now) {
                continue;
            }
            let busy = self.router.awaits(id, generation);
            if watch.check(now, output, busy) == Liveness::Hung {
                let worker = WorkerId::from_index(id);
                self.producer
                    .push_restart(worker, RestartReport::Unresponsive);
                let _ = self.kernel.resources.end_worker(id, EndKind::Restart);
            }
        }
    }
}
