//! The worker processes one kernel instance forked: the only processes it may signal or
//! reap.
//!
//! Each entry is made by the kernel's `fork` (its pid comes from the fork itself) and keeps a
//! pidfd taken right after it, so a signal can only reach that very process, never a later
//! one that got the same pid. The index of an entry is the kernel's worker id: workers are
//! forked in configuration order by `start`, and a restart replaces the entry of the worker
//! it restarts.

use cty::c_int;

use super::lines::Lines;
use crate::backpressure::{Held, StdinPipe};
use crate::clock::Instant;
use crate::limits::MAX_WORKERS;
use crate::os::{errno, set_errno};
use crate::supervise::{Backoff, Ending, Life, Restart, WaitStatus, Watch};

/// Whether a worker's stdin pipe still takes messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    Open,
    /// The bus is to end it (see `KernelResources::close_worker_stdin`) once the message
    /// the send buffer keeps for it has been written: it takes no new message.
    Closing,
    /// The bus ended it: the worker has seen the end of its input and takes no more
    /// messages.
    Closed,
}

/// How the kernel's transport reads a worker's stdout pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// In the kernel's epoll set, read as it has data.
    Reading,
    /// Its end was kept from the transport, whose connection stays open for a replacement
    /// (see `io::read`); the descriptor is out of the kernel's epoll set
    /// meanwhile.
    Parked,
}

/// One worker process and the kernel's ends of its pipes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Child {
    pub(crate) pid: libc::pid_t,
    /// A descriptor for the process itself (Linux pidfd), or -1 where the system has none.
    pub(crate) pidfd: c_int,
    /// The kernel's end of the worker's stdin pipe, or -1.
    pub(crate) stdin: c_int,
    pub(crate) input: Input,
    /// Bytes the stdin pipe holds; 0 when unknown.
    pub(crate) stdin_capacity: u32,
    /// The kernel's end of the worker's stdout pipe, or -1 once the kernel closed it.
    pub(crate) stdout: c_int,
    pub(crate) output: Output,
    /// The process manager's own copy of the stdout pipe's read end: `stdout` itself for
    /// the first process, a later pipe's for a replacement (whose pipe was moved onto
    /// `stdout`); -1 once closed.
    pub(crate) pm_stdout: c_int,
    /// Its output, line by line, as the kernel reads it.
    pub(crate) lines: Lines,
    /// Output read for the kernel that the ring had no room for yet (see `held`).
    pub(crate) held: Option<Held>,
    /// How many processes were started in this worker's place before this one.
    pub(crate) generation: u32,
    /// The errno its `execvp` failed with, or 0 once it exec'd its command.
    pub(crate) exec_errno: u16,
    /// The read end of its tagged stderr pipe (see `stderr`), or -1.
    pub(crate) stderr: c_int,
    /// Whether `exec_errno` is the `chdir` to its pool's directory's, before the exec.
    pub(crate) exec_in_cwd: bool,
    pub(crate) life: Life,
    /// When a replacement may start once it has ended.
    pub(crate) backoff: Backoff,
    /// What became of the restart of this worker that the host has not been told yet:
    /// this process replaced an ended one (`Done`), or the kernel was told its process
    /// crashed and why it will not be restarted, unless the kernel restarts it within the
    /// same step.
    pub(crate) outcome: Option<Restart>,
    /// The host asked for its end (`Bus::restart_worker`, `Bus::stop_worker`, or its
    /// pool's liveness check): it takes no more messages, and is killed after the grace.
    pub(crate) ending: Option<Ending>,
    /// Its pool's liveness check (`Bus::set_liveness`), kept for each replacement.
    pub(crate) watch: Option<Watch>,
    /// Reads of its output that got data: the liveness check compares it at its checks,
    /// so a read costs one increment.
    pub(crate) output_seen: u32,
}

/// The worker processes of one kernel instance, in kernel worker id order.
#[derive(Debug, Default)]
pub(crate) struct Children {
    list: heapless::Vec<Child, MAX_WORKERS>,
    /// How many are not reaped: `send` asks on every message.
    alive: usize,
    /// Those reaped that the host has not been told of: every step asks.
    unreported: WorkerSet,
    /// The guardian's lifeline (see `guardian`), told of each group that ends; or -1.
    lifeline: c_int,
}

impl Children {
    pub(crate) const fn new() -> Self {
        Self {
            list: heapless::Vec::new(),
            alive: 0,
            unreported: WorkerSet::new(),
            lifeline: -1,
        }
    }

    /// Tells the guardian of `lifeline` of every group that ends from now on.
    pub(crate) fn set_lifeline(&mut self, lifeline: c_int) {
        self.lifeline = lifeline;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.list.is_full()
    }

    /// Records a process the kernel forked in place of worker `id`'s ended one.
    pub(crate) fn respawn(&mut self, id: usize, child: Child) {
        if let Some(slot) = self.list.get_mut(id) {
            let was_alive = slot.life.is_unreaped();
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
        let was_alive = child.life.is_unreaped();
        let reaped = child.reap(options);
        if was_alive && reaped {
            self.alive -= 1;
            self.unreported.insert(id);
            super::guardian::forget(self.lifeline, child.pid);
        }
        reaped
    }

    /// Calls `report` with `(worker id, status, generation)` for each worker reaped since
    /// the last call, once each.
    pub(crate) fn take_reaped(&mut self, mut report: impl FnMut(usize, WaitStatus, u32)) {
        for id in self.unreported.take() {
            // A process the kernel replaced in the meantime is not this one.
            if let Some(child) = self.list.get(id)
                && let Some(status) = child.life.status()
            {
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
                && child.life == Life::Running
                && child.stdin >= 0
                && child.input == Input::Open
                && child.exec_errno == 0
                && child.ending.is_none()
        })
    }

    /// Whether worker `id`, in start `generation`, can still be written what the send
    /// buffer keeps for it: it serves, or its input is to end once that is written.
    pub(crate) fn takes_backlog(&self, id: usize, generation: u32) -> bool {
        self.list.get(id).is_some_and(|child| {
            child.generation == generation
                && child.life == Life::Running
                && child.stdin >= 0
                && child.input != Input::Closed
                && child.exec_errno == 0
                && child.ending.is_none()
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
            .find(|child| child.pid == pid && child.life.is_unreaped())
    }

    /// Processes not reaped yet.
    pub(crate) fn alive(&self) -> usize {
        self.alive
    }
}

impl Child {
    /// A process just forked at `now`, with the kernel's ends of its pipes: a worker's
    /// first, or (`previous`) the replacement of an ended one.
    pub(crate) fn new(
        pid: libc::pid_t,
        pidfd: c_int,
        [stdin, stdout]: [c_int; 2],
        now: Instant,
        previous: Option<&Child>,
    ) -> Self {
        Self {
            pid,
            pidfd,
            stdin,
            input: Input::Open,
            stdin_capacity: 0,
            stdout,
            output: Output::Reading,
            pm_stdout: stdout,
            lines: Lines::default(),
            held: None,
            generation: previous.map_or(0, |old| old.generation.wrapping_add(1)),
            exec_errno: 0,
            exec_in_cwd: false,
            stderr: -1,
            life: Life::Running,
            backoff: Backoff::started(now, previous.map(|old| &old.backoff)),
            outcome: None,
            ending: None,
            watch: previous.and_then(|old| old.watch.map(|watch| Watch::new(watch.limit))),
            output_seen: 0,
        }
    }

    /// Its stdin pipe, while the kernel may write a message to it: the process has not
    /// been reaped, and the pipe's size is known.
    pub(crate) fn stdin_pipe(&self) -> Option<StdinPipe> {
        let open = self.life.is_unreaped() && self.stdin >= 0 && self.stdin_capacity > 0;
        open.then_some(StdinPipe {
            fd: self.stdin,
            capacity: self.stdin_capacity as usize,
        })
    }

    /// Whether it has exited and the kernel has read its output to the end (closed its
    /// stdout pipe, or found its end, kept from the transport).
    pub(crate) fn drained_exit(&self) -> bool {
        self.life == Life::Exited && (self.stdout < 0 || self.output == Output::Parked)
    }

    /// Sends `signal` to this process, and to its descendants, if it has not been reaped.
    ///
    /// A worker leads a process group of its own, so a signal to the group reaches whatever
    /// it started too (a grandchild holding its pipes, say). The group's number is the
    /// worker's pid, which cannot be reused while the worker is unreaped: only its parent's
    /// wait frees it. A worker that left its group gets the signal alone, through its
    /// pidfd where the system has them, which reaches exactly this process.
    pub(crate) fn signal(&self, signal: c_int) -> c_int {
        if !self.life.is_unreaped() || !self.still_ours() {
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
        if !self.life.is_unreaped() {
            return true;
        }
        let mut status: c_int = 0;
        let reaped = if !self.still_ours() {
            // Someone else reaped it (the host's `waitpid(-1)`, say): its pid may already
            // be another process's, so it is not waited for by number.
            Some(None)
        } else {
            self.end_group_once_exited();
            self.wait(options, &mut status)
        };
        let Some(status) = reaped else {
            return false;
        };
        self.life.reap(status);
        self.close_pidfd();
        true
    }

    /// Ends what this process left running in its group, once it has exited: a worker's
    /// end is the end of what it started, as the MCP stdio transport expects of a server.
    /// Done before the reap, while the unreaped leader keeps the group's number from being
    /// anyone else's.
    fn end_group_once_exited(&self) {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: a zeroed siginfo is a valid out-parameter; WNOWAIT leaves the process
            // unreaped; the pid is our unreaped child.
            let exited = unsafe {
                let mut info: libc::siginfo_t = core::mem::zeroed();
                let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
                libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, options) == 0
                    && info.si_pid() == self.pid
            };
            if exited {
                // SAFETY: the group is this worker's own (see `signal`), its number kept by
                // the unreaped leader.
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            }
        }
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

const _: () = assert!(MAX_WORKERS.is_multiple_of(64));

/// A set of worker ids, in id order.
#[derive(Clone, Copy, Debug, Default)]
struct WorkerSet([u64; MAX_WORKERS / 64]);

impl WorkerSet {
    const fn new() -> Self {
        Self([0; MAX_WORKERS / 64])
    }

    fn insert(&mut self, id: usize) {
        if let Some(word) = self.0.get_mut(id / 64) {
            *word |= 1 << (id % 64);
        }
    }

    /// The ids in the set, lowest first, leaving it empty. Cheap when it is empty, as it
    /// is at almost every step.
    fn take(&mut self) -> impl Iterator<Item = usize> + use<> {
        let words = core::mem::take(&mut self.0);
        words.into_iter().enumerate().flat_map(|(at, mut word)| {
            core::iter::from_fn(move || {
                let bit = word.trailing_zeros() as usize;
                word &= word.wrapping_sub(1);
                (bit < 64).then_some(at * 64 + bit)
            })
        })
    }
}
