//! The worker processes one kernel instance forked: the only processes it may signal or
//! reap.
//!
//! Each entry is made by the kernel's `fork` (its pid comes from the fork itself) and keeps a
//! pidfd taken right after it, so a signal can only reach that very process, never a later
//! one that got the same pid. The index of an entry is the kernel's worker id: workers are
//! forked in configuration order by `start`, and a restart replaces the entry of the worker
//! it restarts.

use core::time::Duration;

use cty::c_int;

use super::held::Held;
use super::lines::Lines;
use crate::clock::Deadline;
use crate::os::{errno, set_errno};

use crate::limits::MAX_WORKERS;

/// A process that lives this long before it ends was stable: its replacement starts at
/// once, and the backoff starts over.
pub(crate) const STABLE: Duration = Duration::from_secs(5);
/// The first wait before restarting a process that ended quickly; it doubles with each
/// quick end in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// What became of a worker the kernel was told had crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restart {
    /// A new process took its place.
    Done,
    /// It will not be restarted, for this reason.
    Refused(Refusal),
}

/// Why a crashed worker is not restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The configuration's `max_restarts` within `restart_window_sec` are used up (the
    /// kernel did not fork).
    LimitReached,
    /// The fork failed.
    SpawnFailed,
    /// The transport had closed the worker's output: a new process could not be read.
    OutputClosed,
    /// The new process could not execute the worker's command: another would fail alike.
    ExecFailed,
}

impl Refusal {
    /// The worker event that reports it: `failed: ` and the reason.
    pub(crate) const fn word(self) -> &'static str {
        match self {
            Self::LimitReached => "failed: the restart limit was reached",
            Self::SpawnFailed => "failed: its restart could not be spawned",
            Self::ExecFailed => "failed: its command could not be executed",
            Self::OutputClosed => {
                "failed: the kernel had closed its output, so a new process could not be \
                 connected"
            }
        }
    }
}

/// How a process ended, as `waitpid` reported it; `None` when someone else reaped it
/// first (a host that ignores SIGCHLD, say), so its status is unknown.
pub(crate) type WaitStatus = Option<c_int>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// Running, or exited and not reaped yet.
    Alive,
    /// Reaped; the bus has not reported it yet.
    Reaped(WaitStatus),
    /// Reaped and reported to the host.
    Reported(WaitStatus),
}

/// One worker process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Child {
    pub(crate) pid: libc::pid_t,
    /// A descriptor for the process itself (Linux pidfd), or -1 where the system has none.
    pub(crate) pidfd: c_int,
    /// The kernel's end of the worker's stdin pipe, or -1.
    pub(crate) stdin: c_int,
    /// The kernel's end of the worker's stdout pipe, or -1 once the kernel closed it.
    pub(crate) stdout: c_int,
    /// Bytes the stdin pipe holds; 0 when unknown.
    pub(crate) stdin_capacity: u32,
    /// Its pidfd became readable: the process has exited.
    pub(crate) exited: bool,
    /// The bus itself asked it to end (a stop, a drop): not a crash.
    pub(crate) ended_by_bus: bool,
    /// The kernel's `waitpid` has reported it reaped.
    pub(crate) kernel_told: bool,
    /// How many processes were started in this worker's place before this one.
    pub(crate) generation: u32,
    /// The end of its output was kept from the transport, whose connection stays open for
    /// a replacement (see `calls::stdiobus_embed_read`); its descriptor is out of the
    /// kernel's epoll set meanwhile.
    pub(crate) parked: bool,
    /// The process manager's own copy of the stdout pipe's read end: `stdout` itself for
    /// the first process, a later pipe's for a replacement (whose pipe was moved onto
    /// `stdout`); -1 once closed.
    pub(crate) pm_stdout: c_int,
    /// Its output, line by line, as the kernel reads it.
    pub(crate) lines: Lines,
    /// Output read for the kernel that the ring had no room for yet (see `held`).
    pub(crate) held: Option<Held>,
    /// The kernel started this process in place of an ended one, and the host has not
    /// been told yet.
    pub(crate) respawned: bool,
    /// The kernel was told this process crashed: why it will not be restarted, unless
    /// the kernel restarts it within the same step.
    pub(crate) restart: Option<Refusal>,
    /// Ended processes in a row that lived shorter than [`STABLE`]: the restart backoff.
    pub(crate) quick_restarts: u8,
    /// The errno its `execvp` failed with, or 0 once it exec'd its command.
    pub(crate) exec_errno: u16,
    /// The bus closed its stdin (see `KernelResources::close_worker_stdin`): it takes no
    /// more messages.
    pub(crate) input_closed: bool,
    /// When this process will have lived [`STABLE`].
    pub(crate) stable_at: Deadline,
    /// When the kernel may learn that this process ended, and so restart it.
    pub(crate) restart_at: Deadline,
    pub(crate) life: Life,
}

/// The worker processes of one kernel instance, in kernel worker id order.
#[derive(Debug, Default)]
pub(crate) struct Children {
    list: heapless::Vec<Child, MAX_WORKERS>,
    /// How many are [`Life::Alive`]: `send` asks on every message.
    alive: usize,
    /// Whether some are [`Life::Reaped`]: every step asks.
    unreported: bool,
}

impl Children {
    pub(crate) const fn new() -> Self {
        Self {
            list: heapless::Vec::new(),
            alive: 0,
            unreported: false,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.list.is_full()
    }

    /// Records a process the kernel forked in place of worker `id`'s ended one.
    pub(crate) fn respawn(&mut self, id: usize, child: Child) {
        if let Some(slot) = self.list.get_mut(id) {
            let was_alive = slot.life == Life::Alive;
            *slot = child;
            if !was_alive {
                self.alive += 1;
            }
        }
    }

    /// Records a process just forked; returns its worker id.
    pub(crate) fn push(&mut self, child: Child) -> Option<usize> {
        self.list.push(child).ok()?;
        self.alive += 1;
        Some(self.list.len() - 1)
    }

    /// Reaps worker `id` if it has ended (waits for it without `WNOHANG` in `options`);
    /// returns whether it is reaped now.
    pub(crate) fn reap(&mut self, id: usize, options: c_int) -> bool {
        let Some(child) = self.list.get_mut(id) else {
            return false;
        };
        let was_alive = child.life == Life::Alive;
        let reaped = child.reap(options);
        if was_alive && reaped {
            self.alive -= 1;
            self.unreported = true;
        }
        reaped
    }

    /// Calls `report` with `(worker id, status, generation)` for each worker reaped since
    /// the last call, once each.
    pub(crate) fn take_reaped(&mut self, mut report: impl FnMut(usize, WaitStatus, u32)) {
        if !core::mem::take(&mut self.unreported) {
            return;
        }
        for (id, child) in self.list.iter_mut().enumerate() {
            if let Life::Reaped(status) = child.life {
                child.life = Life::Reported(status);
                report(id, status, child.generation);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn get(&self, id: usize) -> Option<&Child> {
        self.list.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: usize) -> Option<&mut Child> {
        self.list.get_mut(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Child> {
        self.list.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Child> {
        self.list.iter_mut()
    }

    /// The worker whose stdout pipe the kernel reads at `fd`.
    pub(crate) fn by_stdout(&self, fd: c_int) -> Option<usize> {
        self.list.iter().position(|child| child.stdout == fd)
    }

    /// Whether worker `id` runs, in start `generation`, and can take messages.
    pub(crate) fn serves(&self, id: usize, generation: u32) -> bool {
        self.list.get(id).is_some_and(|child| {
            child.generation == generation
                && child.life == Life::Alive
                && !child.exited
                && child.stdin >= 0
                && !child.input_closed
                && child.exec_errno == 0
        })
    }

    /// Whether worker `id`'s current process runs and can take messages.
    pub(crate) fn is_serving(&self, id: usize) -> bool {
        self.serves(id, self.generation(id))
    }

    /// Worker `id`'s start count (0 for an unknown id).
    pub(crate) fn generation(&self, id: usize) -> u32 {
        self.list.get(id).map_or(0, |child| child.generation)
    }

    /// The entry of the unreaped process `pid`.
    pub(crate) fn alive_mut(&mut self, pid: libc::pid_t) -> Option<&mut Child> {
        self.list
            .iter_mut()
            .find(|child| child.pid == pid && child.life == Life::Alive)
    }

    /// Processes not reaped yet.
    pub(crate) fn alive(&self) -> usize {
        self.alive
    }
}

impl Child {
    /// A process just forked, with the kernel's ends of its pipes.
    pub(crate) fn new(pid: libc::pid_t, pidfd: c_int, stdin: c_int, stdout: c_int) -> Self {
        Self {
            pid,
            pidfd,
            stdin,
            stdout,
            stdin_capacity: 0,
            exited: false,
            ended_by_bus: false,
            kernel_told: false,
            generation: 0,
            parked: false,
            pm_stdout: stdout,
            lines: Lines::default(),
            held: None,
            respawned: false,
            restart: None,
            quick_restarts: 0,
            exec_errno: 0,
            input_closed: false,
            stable_at: Deadline::after(STABLE),
            restart_at: Deadline::after(Duration::ZERO),
            life: Life::Alive,
        }
    }

    /// Whether it has exited and the kernel has read its output to the end (closed its
    /// stdout pipe, or found its end, kept from the transport).
    pub(crate) fn drained_exit(&self) -> bool {
        self.life == Life::Alive && self.exited && (self.stdout < 0 || self.parked)
    }

    /// Notes that the process ended, to decide when its replacement may start: at once
    /// after a stable run, later after each quick end in a row.
    pub(crate) fn ended(&mut self) {
        if self.stable_at.has_passed() {
            self.quick_restarts = 0;
        }
        let backoff = match self.quick_restarts {
            0 => Duration::ZERO,
            n => FIRST_BACKOFF
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_BACKOFF),
        };
        self.quick_restarts = self.quick_restarts.saturating_add(1);
        self.restart_at = Deadline::after(backoff);
    }

    /// Sends `signal` to this process, and to its descendants, if it has not been reaped.
    ///
    /// A worker leads a process group of its own, so a signal to the group reaches whatever
    /// it started too (a grandchild holding its pipes, say). The group's number is the
    /// worker's pid, which cannot be reused while the worker is unreaped: only its parent's
    /// wait frees it. A worker that left its group gets the signal alone, through its
    /// pidfd where the system has them, which reaches exactly this process.
    pub(crate) fn signal(&self, signal: c_int) -> c_int {
        if self.life != Life::Alive || !self.still_ours() {
            set_errno(libc::ESRCH);
            return -1;
        }
        // SAFETY: asking for the group of our unreaped child.
        if unsafe { libc::getpgid(self.pid) } == self.pid {
            // SAFETY: the group is this worker's own (see above).
            return unsafe { libc::kill(-self.pid, signal) };
        }
        #[cfg(target_os = "linux")]
        if self.pidfd >= 0 {
            let null = core::ptr::null::<libc::siginfo_t>();
            // SAFETY: `pidfd` is this process's open pidfd; a NULL siginfo is allowed.
            return unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd, signal, null, 0)
            } as c_int;
        }
        // SAFETY: see above: the pid is still this unreaped child's.
        unsafe { libc::kill(self.pid, signal) }
    }

    /// Reaps this process if it has ended (or waits for it without `WNOHANG`), storing its
    /// status; returns whether it is reaped now.
    fn reap(&mut self, options: c_int) -> bool {
        if self.life != Life::Alive {
            return true;
        }
        let mut status: c_int = 0;
        let reaped = if !self.still_ours() {
            // Someone else reaped it (the host's `waitpid(-1)`, say): its pid may already
            // be another process's, so it is not waited for by number.
            Some(None)
        } else {
            self.wait(options, &mut status)
        };
        let Some(status) = reaped else {
            return false;
        };
        self.life = Life::Reaped(status);
        self.close_pidfd();
        true
    }

    /// `waitpid` on this process: `Some` once reaped (`Some(None)`: by someone else).
    fn wait(&self, options: c_int, status: &mut c_int) -> Option<WaitStatus> {
        loop {
            // SAFETY: `status` is a valid out-parameter; the pid is our unreaped child.
            let rc = unsafe { libc::waitpid(self.pid, status, options) };
            if rc == self.pid {
                return Some(Some(*status));
            }
            if rc == 0 {
                return None;
            }
            if errno() != libc::EINTR {
                // ECHILD: reaped by someone else already; its status is gone.
                return Some(None);
            }
        }
    }

    /// Whether this process is still the one forked, not reaped by anyone: always assumed
    /// where there is no pidfd to ask.
    fn still_ours(&self) -> bool {
        #[cfg(target_os = "linux")]
        if self.pidfd >= 0 {
            let null = core::ptr::null::<libc::siginfo_t>();
            // SAFETY: signal 0 only checks that the pidfd's process can be signalled,
            // which it can until it is reaped.
            return unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd, 0, null, 0) }
                == 0;
        }
        true
    }

    /// Closes the pidfd, if open; closing also takes it out of the kernel's epoll set.
    pub(crate) fn close_pidfd(&mut self) {
        if self.pidfd >= 0 {
            // SAFETY: the pidfd is ours alone and closed once.
            unsafe { libc::close(self.pidfd) };
            self.pidfd = -1;
        }
    }
}
