//! Ending a worker on the host's request: restarted as a crash would be, or stopped for
//! good. Both return at once; the grace before SIGKILL is a deadline that `poll` keeps
//! (`supervise::Ending`), woken by the supervision timer in the kernel's epoll set.

use core::time::Duration;

use super::Bus;
use crate::event::RestartReport;
use crate::interpose::EndRefused;
use crate::state::Running;
use crate::supervise::EndKind;
use crate::{Error, WorkerId};

impl Bus<'_, Running> {
    /// Ends worker `id`'s process and has a new one take its place, as after a crash:
    /// SIGTERM to its process group (and SIGCONT, so that a stopped process acts on it),
    /// SIGKILL once the grace ([`Bus::set_stop_grace`], 2 s by default) has passed if it
    /// still runs. Returns at once; [`Bus::poll`] reports what follows:
    /// `Exited`, an [`Event::Unanswered`](crate::Event::Unanswered) for each request in
    /// flight to it (with a request table), then `Restarting` and `Started`. It takes no
    /// message from this call on: the pool's other workers do.
    ///
    /// The restart starts at once, and does not count as a quick crash for the restart
    /// backoff. The kernel forks the new process, so it counts toward the configuration's
    /// `max_restarts` within `restart_window_sec` like any restart: once those are used up
    /// the worker is not restarted ([`WorkerEvent::Failed`](crate::WorkerEvent::Failed)
    /// with [`RestartRefused::LimitReached`](crate::RestartRefused::LimitReached)), and it
    /// stays stopped, as after [`Bus::stop_worker`].
    ///
    /// [`Error::NoSuchWorker`] for an id the bus does not have, [`Error::WorkerGone`] for a
    /// worker whose process has exited or is being ended already.
    pub fn restart_worker(&mut self, id: WorkerId) -> Result<(), Error> {
        self.end_worker(id, EndKind::Restart)
    }

    /// Ends worker `id`'s process for good: SIGTERM to its process group (and SIGCONT),
    /// SIGKILL once the grace has passed if it still runs. Returns at once, after a
    /// [`WorkerEvent::Stopping`](crate::WorkerEvent::Stopping); [`Bus::poll`] reports its
    /// `Exited` and its requests `Unanswered`. It takes no message from this call on, and
    /// is not restarted: its pool serves with its other workers ([`Error::NoWorker`] once
    /// none is left). Errors as for [`Bus::restart_worker`].
    pub fn stop_worker(&mut self, id: WorkerId) -> Result<(), Error> {
        self.end_worker(id, EndKind::Stop)?;
        self.producer.push_restart(id, RestartReport::Stopping);
        Ok(())
    }

    /// Sets how long a worker ended by [`Bus::restart_worker`], [`Bus::stop_worker`] or a
    /// liveness check gets between SIGTERM and SIGKILL: 2 s unless set. Applies to ends
    /// asked for from now on.
    pub fn set_stop_grace(&mut self, grace: Duration) {
        self.kernel.resources.set_grace(grace);
    }

    pub(super) fn end_worker(&mut self, id: WorkerId, kind: EndKind) -> Result<(), Error> {
        self.kernel
            .resources
            .end_worker(id.index(), kind)
            .map_err(|refused| match refused {
                EndRefused::Unknown => Error::NoSuchWorker { id },
                EndRefused::Gone => Error::WorkerGone { id },
            })
    }
}
