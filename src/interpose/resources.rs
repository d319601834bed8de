//! What one kernel instance holds from the system, as the bus accounts for it.

use core::ptr;
use core::time::Duration;

use cty::{c_int, c_void};

use super::children::{Child, Children, Input, Output};
use super::current;
use super::fd_set::FdSet;
use super::guardian::Guardian;
use super::line_id::LineIds;
use super::stderr::Carries;
use crate::backpressure::Backlog;
use crate::clock::{Deadline, Instant, sleep};
use crate::launch::LaunchTable;
use crate::ring::{Room, Writer};
use crate::supervise::{DEFAULT_GRACE, EndKind, Ending, Life, Restart};

/// Functions of the bus's and its state, called from the kernel's message callback and
/// the transport's reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineHook {
    /// Called with `data`, the worker and each line it delivers. It must not block or
    /// unwind.
    pub(crate) call: unsafe fn(*mut c_void, usize, &[u8]),
    /// Called likewise with the `id` of a response the worker wrote too long, dropped.
    pub(crate) answered: unsafe fn(*mut c_void, usize, &[u8]),
    /// What they need; valid while the hook is set.
    pub(crate) data: *mut c_void,
}

/// Where the end of a worker line too long is reported: the ring, and the line hook.
#[derive(Clone, Copy, Debug)]
pub(super) struct TooLong {
    ring: *mut c_void,
    hook: Option<LineHook>,
    limit: usize,
}

impl TooLong {
    /// Reports that `worker` wrote a line too long, the response `id` if known.
    pub(super) fn report(&self, worker: usize, id: Option<&[u8]>) {
        if let (Some(hook), Some(id)) = (self.hook, id) {
            // SAFETY: the bus set the hook for the kernel call now running, with data that
            // stays valid for that call.
            unsafe { (hook.answered)(hook.data, worker, id) };
        }
        if !self.ring.is_null() {
            // SAFETY: as in `KernelResources::room`: a kernel call of the bus is running
            // and no callback is.
            unsafe { Writer::from_user_data(self.ring) }.push_line_too_long(
                worker as i32,
                self.limit,
                id,
            );
        }
    }
}

/// The descriptors and processes of one kernel instance, and what its calls may do now.
///
/// The bus reaches the worker table and the send buffer; everything else is the
/// interposed calls' own, grouped by the concern that uses it, and set by the bus through
/// the methods below.
#[derive(Debug)]
pub(crate) struct KernelResources {
    /// The processes it forked, in worker id order.
    pub(crate) children: Children,
    /// What a worker's stdin pipe could not take at once, in the host's lent buffer.
    pub(crate) backlog: Backlog,
    /// Descriptors the kernel created, or was handed by the bus, and has not closed.
    pub(super) owned: FdSet,
    /// The kernel's event loop (an epoll descriptor), or -1.
    pub(super) epoll: c_int,
    /// A descriptor was needed below the kernel's limit and none was free.
    pub(super) out_of_low_fds: bool,
    pub(super) spawn: Spawn,
    pub(super) ingest: Ingest,
    pub(super) output: OutputState,
    pub(super) supervision: Supervision,
    /// Ends the workers' process groups if the host process ends.
    pub(super) guardian: Guardian,
    /// Whether the kernel's writes block SIGPIPE around them (see `sigpipe`): unless the
    /// host keeps SIGPIPE ignored.
    pub(super) shield_sigpipe: bool,
    /// A router the kernel freed during the current call, freed only once the call has
    /// returned (archive A's `destroy` still uses it afterwards).
    pub(super) deferred_router: *mut c_void,
    /// How each pool's workers are started beyond their command, filled at `create`.
    pub(crate) launch: LaunchTable,
}

/// What the kernel's forks may do, and what they start from (`processes`).
#[derive(Debug)]
pub(super) struct Spawn {
    /// The pipes made since the last fork, oldest first: the kernel makes a worker's stdin
    /// pipe, then its stdout pipe, then forks.
    pub(super) fresh_pipes: [[c_int; 2]; 2],
    pub(super) fresh_count: usize,
    /// During a fork, the write end of its exec report (see `exec_report`); else -1.
    pub(super) exec_report: c_int,
    /// Whether the kernel may fork new workers now: only while `start` spawns them. A
    /// restart from `step` is let through only for [`Self::restarting`].
    pub(super) forks_allowed: bool,
    /// The worker whose end the kernel was just told of, and whose restart the kernel may
    /// fork (see `processes::reap`).
    pub(super) restarting: Option<usize>,
    /// During a fork, the id of the worker it starts: its child finds its pool's launch
    /// settings by it.
    pub(super) worker: usize,
    /// During a fork, the write end of the worker's tagged stderr pipe; else -1.
    pub(super) stderr_pipe: c_int,
}

/// Where `ingest`'s write goes, and how it went (`io`).
#[derive(Debug)]
pub(super) struct Ingest {
    /// The worker `ingest` writes to instead of the one the kernel picked: the one the bus
    /// routed the message to.
    pub(super) route: Option<Route>,
    /// `ingest` wrote to `route` since the bus last asked.
    pub(super) routed: bool,
    /// The message `ingest` is writing, noted until its newline is written with it.
    pub(super) unwritten: Option<Unwritten>,
    /// The write of the last routed `ingest` failed.
    pub(super) write_failed: bool,
}

/// What the kernel reads from the workers, and what is held back of it (`io`, `held`).
#[derive(Debug)]
pub(super) struct OutputState {
    /// The worker whose stdout the kernel read last: the one whose lines it is delivering.
    pub(super) reading: Option<usize>,
    /// The longest worker line the kernel takes, newline included (`max_input_buffer`).
    pub(super) line_limit: usize,
    /// The lines too long being dropped, followed for their `id`.
    pub(super) line_ids: LineIds,
    /// Called with every line the kernel delivers from a worker, while set.
    pub(super) line_hook: Option<LineHook>,
    /// The ring the kernel's callbacks write into (its `user_data`), whose room bounds how
    /// much of a worker's output a step delivers (see `held`); null before `create`.
    pub(super) ring: *mut c_void,
    /// Whether output the ring has no room for is held back: while the bus runs. In a
    /// shutdown everything goes on to the ring, the overflow handler or the loss count.
    pub(super) hold_back: bool,
    /// Some worker's output may be held.
    pub(super) output_held: bool,
    /// An event descriptor in the kernel's epoll set, readable while output is held, or
    /// -1 until one is needed.
    pub(super) wake: c_int,
    /// Whether `wake` is readable now.
    pub(super) wake_armed: bool,
    /// The unfinished lines of the workers' tagged stderr.
    pub(super) stderr_carries: Carries,
}

/// What the bus's supervision lets the kernel do (`processes`, `supervise`).
#[derive(Debug)]
pub(super) struct Supervision {
    /// While the bus has the kernel reap: the kernel is told only of workers the bus has
    /// reaped and whose restart backoff has passed. The kernel's own waits, in its
    /// shutdown paths, take any worker that has ended.
    pub(super) bus_reaping: bool,
    /// Whether ended workers may be restarted: from `start` until the shutdown begins.
    pub(super) restarts_allowed: bool,
    /// Some worker's pidfd became readable since the bus last looked.
    pub(super) exits_seen: bool,
    /// A timer in the kernel's epoll set that wakes the event loop when a restart, a
    /// SIGKILL after a grace or a liveness check is due, or -1 until one is needed.
    pub(super) timer: c_int,
    /// How long a worker the host asked to end gets between SIGTERM and SIGKILL.
    pub(super) grace: Duration,
    /// A deadline of the bus's own that the timer wakes the event loop for too: the
    /// shutdown's next step (see [`KernelResources::wake_after`]).
    pub(super) deadline: Option<Instant>,
}

/// Why a worker cannot be ended on request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndRefused {
    /// No worker has that id.
    Unknown,
    /// Its process has exited, or is being ended already.
    Gone,
}

/// A message `ingest` asked to write, in its caller's buffer: written with its newline.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unwritten {
    at: *const u8,
    len: usize,
}

impl Unwritten {
    pub(super) fn of(bytes: &[u8]) -> Self {
        Self {
            at: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// # Safety
    ///
    /// The `ingest` call that noted it is still running: its caller's buffer is valid.
    pub(super) unsafe fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: the caller's contract.
        unsafe { core::slice::from_raw_parts(self.at, self.len) }
    }
}

/// Where the bus sends the message of one `ingest`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Route {
    pub(super) worker: usize,
    /// The start generation of the worker's process.
    pub(super) generation: u32,
    /// Its stdin pipe.
    pub(super) stdin: c_int,
}

impl KernelResources {
    pub(crate) const fn new() -> Self {
        Self {
            children: Children::new(),
            backlog: Backlog::new(),
            owned: FdSet::new(),
            epoll: -1,
            out_of_low_fds: false,
            spawn: Spawn {
                fresh_pipes: [[-1; 2]; 2],
                fresh_count: 0,
                exec_report: -1,
                forks_allowed: false,
                restarting: None,
                worker: 0,
                stderr_pipe: -1,
            },
            ingest: Ingest {
                route: None,
                routed: false,
                unwritten: None,
                write_failed: false,
            },
            output: OutputState {
                reading: None,
                line_limit: crate::limits::DEFAULT_MAX_INPUT_BUFFER as usize,
                line_ids: LineIds::new(),
                line_hook: None,
                ring: ptr::null_mut(),
                hold_back: false,
                output_held: false,
                wake: -1,
                wake_armed: false,
                stderr_carries: Carries::new(),
            },
            supervision: Supervision {
                bus_reaping: false,
                restarts_allowed: false,
                exits_seen: false,
                timer: -1,
                grace: DEFAULT_GRACE,
                deadline: None,
            },
            guardian: Guardian::new(),
            shield_sigpipe: true,
            deferred_router: ptr::null_mut(),
            launch: LaunchTable::new(),
        }
    }

    /// Readies the resources of a bus being created: its callbacks write into `ring` (the
    /// user data), whose room bounds what a step delivers, and worker lines are taken up
    /// to `line_limit` bytes.
    pub(crate) fn attach_ring(&mut self, ring: *mut c_void, line_limit: usize) {
        self.output.ring = ring;
        self.output.hold_back = true;
        self.output.line_limit = line_limit;
    }

    /// The ring the kernel's callbacks write into; null before `create`.
    pub(crate) fn ring(&self) -> *mut c_void {
        self.output.ring
    }

    /// Has the kernel's writes and the send buffer's go without blocking SIGPIPE around
    /// them: the host keeps SIGPIPE ignored (see `Options::sigpipe_ignored`).
    pub(crate) fn trust_sigpipe_ignored(&mut self) {
        self.shield_sigpipe = false;
        self.backlog.trust_sigpipe_ignored();
    }

    /// Lets ended workers be restarted: from a successful `start` on.
    pub(crate) fn allow_restarts(&mut self) {
        self.supervision.restarts_allowed = true;
    }

    /// Restarts no ended worker from now on.
    pub(crate) fn stop_restarts(&mut self) {
        self.supervision.restarts_allowed = false;
    }

    /// Restarts no ended worker from now on, and holds no output back: a shutdown has
    /// begun, and nothing may wait for room that nobody frees.
    pub(crate) fn begin_shutdown(&mut self) {
        self.supervision.restarts_allowed = false;
        self.output.hold_back = false;
    }

    /// Calls `hook` with every line the kernel delivers during the calls that follow,
    /// until it is set again (`None`: no hook).
    pub(crate) fn set_line_hook(&mut self, hook: Option<LineHook>) {
        self.output.line_hook = hook;
    }

    /// Runs `call`, a call into the kernel, with these resources current on this thread, so
    /// that the kernel's system calls are checked against them.
    pub(crate) fn enter<R>(&mut self, call: impl FnOnce() -> R) -> R {
        self.output.reading = None;
        let outer = current::replace(self);
        let result = call();
        // Still current: whatever the router's destructor does is accounted here too.
        self.free_deferred_router();
        current::replace(outer);
        result
    }

    /// [`enter`](Self::enter) with `ingest`'s write going to worker `worker`'s stdin pipe.
    pub(crate) fn enter_routed<R>(&mut self, worker: usize, call: impl FnOnce() -> R) -> R {
        self.ingest.route = self
            .children
            .get(worker)
            .filter(|c| c.stdin >= 0)
            .map(|c| Route {
                worker,
                generation: c.generation,
                stdin: c.stdin,
            });
        self.ingest.routed = false;
        self.ingest.write_failed = false;
        let result = self.enter(call);
        if let (Some(message), Some(route)) = (self.ingest.unwritten.take(), self.ingest.route) {
            // The kernel wrote no newline after the message (neither archive does that):
            // the message goes alone, as it asked.
            // SAFETY: `call` has just returned; the caller's buffer is still borrowed.
            let line = [unsafe { message.bytes() }, &[][..]];
            let target = (route.worker, route.generation);
            if self.backlog.write(self.epoll, route.stdin, target, line) < 0 {
                self.ingest.write_failed = true;
            }
        }
        self.ingest.route = None;
        result
    }

    /// [`enter`](Self::enter) with forks allowed: for `start`. The guardian starts first,
    /// so that every worker can put its group in its care.
    pub(crate) fn enter_spawning<R>(&mut self, call: impl FnOnce() -> R) -> R {
        if cfg!(stdio_bus_interposed) {
            self.guardian.start();
            self.children.set_lifeline(self.guardian.lifeline());
        }
        self.spawn.forks_allowed = true;
        let result = self.enter(call);
        self.spawn.forks_allowed = false;
        result
    }

    /// [`enter`](Self::enter) for a step that tells the kernel of the workers the bus
    /// reaped ([`collect_ended`](Self::collect_ended)) whose restart is due.
    pub(crate) fn enter_reaping<R>(&mut self, call: impl FnOnce() -> R) -> R {
        self.supervision.bus_reaping = true;
        let result = self.enter(call);
        self.supervision.bus_reaping = false;
        result
    }

    /// Where lines too long are reported during the running kernel call.
    pub(super) fn too_long(&self) -> TooLong {
        TooLong {
            ring: self.output.ring,
            hook: self.output.line_hook,
            limit: self.output.line_limit,
        }
    }

    /// Whether the write of the last routed `ingest` failed, and clears it.
    pub(crate) fn take_write_failed(&mut self) -> bool {
        core::mem::take(&mut self.ingest.write_failed)
    }

    /// Whether `ingest` wrote to the routed pipe since the last call, and clears it.
    pub(crate) fn take_routed(&mut self) -> bool {
        core::mem::take(&mut self.ingest.routed)
    }

    /// The kernel's event loop descriptor, once `create` made it.
    pub(crate) fn poll_fd(&self) -> Option<c_int> {
        (self.epoll >= 0).then_some(self.epoll)
    }

    /// Hands `fd` to the kernel: it may close it from now on.
    #[cfg(feature = "embedded-workers")]
    pub(crate) fn adopt(&mut self, fd: c_int) -> bool {
        self.owned.insert(fd)
    }

    /// Takes `fd` back from the kernel.
    #[cfg(feature = "embedded-workers")]
    pub(crate) fn disown(&mut self, fd: c_int) {
        self.owned.remove(fd);
    }

    /// Whether a descriptor the kernel needed could not be given a number below 1024.
    pub(crate) fn ran_out_of_low_fds(&self) -> bool {
        self.out_of_low_fds
    }

    /// Whether a worker's exit was seen since the last call, and clears it.
    pub(crate) fn take_exits_seen(&mut self) -> bool {
        core::mem::take(&mut self.supervision.exits_seen)
    }

    /// Reaps every worker that has exited and whose output has been read to the end, and
    /// sets when the kernel may restart it (see [`Backoff`](crate::supervise::Backoff)).
    /// While restarts are off (a stop, a drop, closed input) there is nothing to wait
    /// for: the kernel may learn of the end at once.
    pub(crate) fn collect_ended(&mut self) {
        let now = Instant::now();
        for id in 0..self.children.len() {
            let drained = self.children.get(id).is_some_and(Child::drained_exit);
            if drained
                && self.children.reap(id, libc::WNOHANG)
                && self.supervision.restarts_allowed
                && let Some(child) = self.children.get_mut(id)
            {
                match child.ending {
                    Some(_) => child.backoff.ended_on_request(now),
                    None => child.backoff.ended(now),
                }
            }
        }
    }

    /// Sets how long a worker the host asks to end gets between SIGTERM and SIGKILL.
    pub(crate) fn set_grace(&mut self, grace: Duration) {
        self.supervision.grace = grace;
    }

    /// Begins the end of worker `id`'s process, as the host asked (`kind`): SIGTERM to its
    /// group (and SIGCONT, so that a stopped process can act on it), SIGKILL once the
    /// grace has passed ([`Self::kill_overdue`], woken by the supervision timer). It takes
    /// no message from now on; its end then goes the way of a crash, restarted or not as
    /// `kind` says (see `supervise::status_for_kernel`).
    pub(crate) fn end_worker(&mut self, id: usize, kind: EndKind) -> Result<(), EndRefused> {
        let grace = self.supervision.grace;
        let child = self.children.get_mut(id).ok_or(EndRefused::Unknown)?;
        if child.life != Life::Running || child.ending.is_some() {
            return Err(EndRefused::Gone);
        }
        child.ending = Some(Ending::begin(kind, Instant::now(), grace));
        child.signal(libc::SIGTERM);
        child.signal(libc::SIGCONT);
        self.arm_restart_timer();
        Ok(())
    }

    /// Kills every worker being ended on request whose grace has passed.
    pub(crate) fn kill_overdue(&mut self) {
        let now = Instant::now();
        for child in self.children.iter_mut() {
            if child.life.is_unreaped()
                && let Some(ending) = child.ending.as_mut()
                && ending.kill_due(now)
            {
                child.signal(libc::SIGKILL);
            }
        }
    }

    /// Whether the kernel has a reaped worker to be told of now.
    pub(crate) fn has_due_report(&self) -> bool {
        let now = Instant::now();
        self.children
            .iter()
            .any(|child| matches!(child.life, Life::Ended(_)) && child.backoff.restart_due(now))
    }

    /// After the kernel was told of reaped workers: calls `restarted` with each worker it
    /// was asked to restart and how that went, and gives back the end of their output to
    /// the transport of those it will not restart.
    pub(crate) fn settle_restarts(&mut self, mut restarted: impl FnMut(usize, Restart)) {
        self.spawn.restarting = None;
        for id in 0..self.children.len() {
            let Some(child) = self.children.get_mut(id) else {
                continue;
            };
            if let Some(outcome) = child.outcome.take() {
                restarted(id, outcome);
            }
            if child.output == Output::Parked && !child.life.kernel_untold() {
                child.output = Output::Reading;
                super::epoll::watch(self.epoll, child.stdout);
            }
        }
    }

    /// Sets the supervision timer to the earliest of the restarts still to come, the
    /// SIGKILLs due after a grace and the liveness checks, so that an idle event loop
    /// wakes for it instead of spinning or sleeping past it.
    pub(crate) fn arm_restart_timer(&mut self) {
        let now = Instant::now();
        // Passed, it has had its wake-up (the one that led here).
        self.supervision.deadline = self.supervision.deadline.filter(|&at| at > now);
        let own = self.supervision.deadline.map(|at| now.until(at));
        let next = self
            .children
            .iter()
            .filter_map(|child| {
                let restart =
                    matches!(child.life, Life::Ended(_)).then(|| child.backoff.until_restart(now));
                let unreaped = child.life.is_unreaped();
                let kill = child
                    .ending
                    .filter(|_| unreaped)
                    .and_then(|ending| ending.until_kill(now));
                let check = child
                    .watch
                    .filter(|_| child.life == Life::Running && child.ending.is_none())
                    .and_then(|watch| watch.next_check())
                    .map(|at| now.until(at));
                [restart, kill, check].into_iter().flatten().min()
            })
            .chain(own)
            .min();
        let Some(wait) = next else {
            return;
        };
        if self.supervision.timer < 0 {
            self.supervision.timer = super::epoll::restart_timer(self.epoll);
        }
        if self.supervision.timer < 0 {
            // No timer: the next step looks again.
            self.supervision.exits_seen = true;
            return;
        }
        // A restart due by now still needs a wake-up: the timer fires at once.
        super::epoll::set_restart_timer(
            self.epoll,
            self.supervision.timer,
            wait.max(Duration::from_micros(1)),
        );
    }

    /// Has the event loop woken `after` from now, with no other reason to: for a step of
    /// the shutdown that only a poll carries out (SIGKILL after the drain time).
    pub(crate) fn wake_after(&mut self, after: Duration) {
        self.supervision.deadline = Some(Instant::now().after(after));
        self.arm_restart_timer();
    }

    /// The room the ring has for worker lines now (see `held`).
    ///
    /// The room writes to the ring (padding): it is for the running kernel call only,
    /// before the kernel's callbacks run again.
    pub(super) fn room<'a>(&self) -> Room<'a> {
        if !self.output.hold_back || self.output.ring.is_null() {
            return Room::UNBOUNDED;
        }
        // SAFETY: `ring` is the user data of the bus's callbacks, set at `create`, and a
        // kernel call of the bus is running (the only place this is asked): its producer
        // is not used elsewhere meanwhile (ring invariant 3), and the room is dropped
        // before any callback runs.
        unsafe { Writer::from_user_data(self.output.ring) }.into_room()
    }

    /// Counts `bytes` of held output as one lost event: the kernel's buffer they were in
    /// is gone (see `held`).
    pub(super) fn count_lost(&mut self, bytes: usize) {
        if !self.output.ring.is_null() {
            // SAFETY: as in `room`.
            unsafe { Writer::from_user_data(self.output.ring) }.count_lost(bytes);
        }
    }

    /// After a step: keeps the event loop's descriptor readable while the bus has work
    /// that no descriptor of the kernel's announces, so that a host waiting on it polls
    /// again, and quiet otherwise. That work is worker output held back for room in the
    /// ring, and a worker's end that the step saw but did not settle: the step's last
    /// kernel wait consumed its pidfd's one event.
    pub(crate) fn settle_wake(&mut self) {
        if self.output.output_held {
            self.output.output_held = self
                .children
                .iter()
                .any(|child| child.held.is_some_and(|held| !held.is_partial()));
        }
        let awake = self.output.output_held || self.supervision.exits_seen;
        if awake && self.output.wake < 0 {
            self.output.wake = super::epoll::wake_event(self.epoll);
        }
        if awake != self.output.wake_armed {
            super::epoll::set_wake(self.output.wake, awake);
            self.output.wake_armed = awake;
        }
    }

    /// Whether the kernel's `waitpid(-1)` may try to reap `child` now: in its own waits
    /// (shutdown), while it runs; the bus reaps the others itself ([`Self::collect_ended`]).
    pub(super) fn reapable(&self, child: &Child) -> bool {
        child.life.is_unreaped() && !self.supervision.bus_reaping
    }

    /// Writes more of what the backlog keeps, as far as the pipe takes it.
    pub(crate) fn flush_backlog(&mut self) {
        let children = &self.children;
        self.backlog.flush(self.epoll, |worker, generation| {
            children.takes_backlog(worker, generation)
        });
        self.end_closing_inputs();
    }

    /// Ends the input of each worker whose input is to end, once the send buffer keeps
    /// nothing more for it.
    fn end_closing_inputs(&mut self) {
        for (id, child) in self.children.iter_mut().enumerate() {
            if child.input == Input::Closing && !self.backlog.holds(id, child.generation) {
                child.input = Input::Closed;
                super::end_input(child.stdin);
            }
        }
    }

    /// Closes the stdin of every worker not reaped yet, and restarts no worker from now
    /// on: each sees the end of its input and can exit on its own.
    pub(crate) fn close_worker_stdin(&mut self) {
        self.supervision.restarts_allowed = false;
        for child in self.children.iter_mut() {
            if child.life.is_unreaped() && child.stdin >= 0 && child.input == Input::Open {
                // A message half written from the send buffer goes whole first: its input
                // ends with it (`flush_backlog`), and the backlog's watch of the pipe,
                // which would keep the input open, goes with it too.
                child.input = Input::Closing;
            }
        }
        self.end_closing_inputs();
    }

    /// Sends `signal` to every worker not reaped yet, to end it, and drops what the
    /// backlog keeps for them.
    pub(crate) fn signal_workers(&mut self, signal: c_int) {
        self.backlog.clear(self.epoll);
        // These ends are no crashes: restarts are off by now (see `supervise::verdict`).
        debug_assert!(!self.supervision.restarts_allowed);
        for child in self.children.iter() {
            child.signal(signal);
        }
    }

    /// Collects every worker process, waiting up to `limit` for those still running;
    /// gives up on the rest then (a process stuck in the system can outlive SIGKILL for a
    /// while). Never blocks beyond that.
    pub(crate) fn reap_workers_within(&mut self, limit: Duration) {
        /// Poll interval while waiting for workers to exit.
        const WAIT_STEP: Duration = Duration::from_millis(1);
        let deadline = Deadline::after(limit);
        loop {
            for id in 0..self.children.len() {
                self.children.reap(id, libc::WNOHANG);
            }
            if self.children.alive() == 0 || deadline.has_passed() {
                return;
            }
            sleep(WAIT_STEP);
        }
    }

    /// Lets go of every worker the bus gave up on: their pidfds are closed, and the
    /// processes left to the system, or rather to the guardian, which kills their groups.
    pub(crate) fn forget_workers(&mut self) {
        for worker in 0..self.children.len() {
            super::stderr::finish(self, worker);
        }
        for child in self.children.iter_mut() {
            child.close_pidfd();
        }
        // The guardian ends the groups of those given up on, and then itself.
        self.children.set_lifeline(-1);
        self.guardian.stop();
        for fd in [&mut self.supervision.timer, &mut self.output.wake] {
            if *fd >= 0 {
                // SAFETY: the timer and the wake event are the bus's own, closed once.
                unsafe { libc::close(*fd) };
                *fd = -1;
            }
        }
    }

    fn free_deferred_router(&mut self) {
        let router = core::mem::replace(&mut self.deferred_router, ptr::null_mut());
        if !router.is_null() {
            super::free_router(router);
        }
    }
}
