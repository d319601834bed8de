//! The kernel's worker processes: forked with a pidfd and their pipes enlarged, exec'd
//! clean, waited for and signalled only as the bus's supervision allows (module
//! invariants 4 and 6). The decisions are `supervise`'s; these functions carry them out.

use core::ptr;

use cty::{c_char, c_int, c_uint};
use libc::pid_t;

use super::children::{Child, Output};
use super::exec_report::{self, ExecFailure, ExecReport};
use super::{KernelResources, epoll, guardian, launch, resources, stderr};
use crate::clock::Instant;
use crate::launch::Stderr;
use crate::os::set_errno;
use crate::supervise::{Life, Refusal, Restart, Verdict, restart_verdict, status_for_kernel};

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "fork"))]
extern "C" fn fork() -> pid_t {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::fork() };
    };
    // A restart is let through only for the worker the bus just told the kernel about,
    // whose connection it kept open; any other the kernel logs as "Fork failed: Operation
    // canceled", marking the worker stopped.
    let restart = resources.spawn.restarting.take();
    let new_worker = resources.spawn.forks_allowed && !resources.children.is_full();
    if restart.is_none() && !new_worker {
        set_errno(libc::ECANCELED);
        return -1;
    }
    let [stdin, stdout] = fresh_worker_pipes(resources);
    let report = ExecReport::open();
    resources.spawn.exec_report = report.write_end();
    // New workers are forked in worker id order: this one is the next.
    let worker = restart.unwrap_or(resources.children.len());
    resources.spawn.worker = worker;
    let tagged = resources
        .launch
        .for_worker(worker)
        .is_some_and(|launch| launch.stderr == Stderr::Tagged);
    let stderr_pipe = if tagged { stderr::open_pipe() } else { None };
    resources.spawn.stderr_pipe = stderr_pipe.map_or(-1, |[_, write]| write);
    // SAFETY: the kernel forks to exec a worker; the child makes only async-signal-safe
    // calls here (invariant 6).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        return 0;
    }
    // At once, while the child cannot have been reaped by anyone: before its exec is
    // waited for, since a child that fails to exec exits at once.
    let pidfd = if pid > 0 { open_pidfd(pid) } else { Err(0) };
    resources.spawn.exec_report = -1;
    resources.spawn.stderr_pipe = -1;
    let stderr_read = stderr_pipe.map_or(-1, |[read, write]| {
        // SAFETY: the write end is the child's now; the parent's copy goes, once.
        unsafe { libc::close(write) };
        read
    });
    let failure = report.wait();
    // A worker whose end the bus could not see is not let run: without its pidfd, nothing
    // would notice that it died, and it would be served messages for ever.
    if let Ok(pidfd) = pidfd {
        track(
            resources,
            restart,
            pid,
            pidfd,
            [stdin, stdout, stderr_read],
            failure,
        );
        return pid;
    }
    if stderr_read >= 0 {
        // SAFETY: the read end of a pipe nobody writes to, closed once.
        unsafe { libc::close(stderr_read) };
    }
    if let Err(errno) = pidfd {
        if pid > 0 {
            // It told the guardian of its group before its exec: that group is gone.
            guardian::forget(resources.guardian.lifeline(), pid);
        }
        if errno == libc::EMFILE || errno == libc::ENFILE {
            resources.out_of_low_fds = true;
        }
        set_errno(errno);
    }
    if let Some(child) = restart.and_then(|id| resources.children.get_mut(id)) {
        child.outcome = Some(Restart::Refused(Refusal::SpawnFailed));
    }
    -1
}

/// A pidfd for the child `pid` just forked (-1 on a system that has none: Linux before
/// 5.3, see the README), or the errno why not, once the child is killed and reaped: a
/// process the bus cannot watch for want of a descriptor must not run.
fn open_pidfd(pid: pid_t) -> Result<c_int, c_int> {
    // SAFETY: pidfd_open takes a pid and flags; the result is a close-on-exec descriptor.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as c_int;
    let errno = crate::os::errno();
    if pidfd >= 0 || errno == libc::ENOSYS {
        return Ok(pidfd);
    }
    let mut status = 0;
    // SAFETY: our own child, just forked: it is still on its way to its exec (this is the
    // parent's next call), so it has not ended and no one else can have reaped it; the
    // wait returns as soon as SIGKILL has ended it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    Err(errno)
}

/// The kernel's ends of the worker pipes made just before this fork: the stdin pipe's
/// write end and the stdout pipe's read end.
fn fresh_worker_pipes(resources: &mut KernelResources) -> [c_int; 2] {
    let pipes = if resources.spawn.fresh_count == 2 {
        [
            resources.spawn.fresh_pipes[0][1],
            resources.spawn.fresh_pipes[1][0],
        ]
    } else {
        [-1, -1]
    };
    resources.spawn.fresh_count = 0;
    pipes
}

/// Records a worker just forked, with a pidfd in the kernel's epoll set so that its exit
/// wakes the event loop, and its pipes enlarged: a new worker, or the replacement of
/// worker `restart`'s ended process.
fn track(
    resources: &mut KernelResources,
    restart: Option<usize>,
    pid: pid_t,
    pidfd: c_int,
    [stdin, stdout, stderr_read]: [c_int; 3],
    failure: Option<ExecFailure>,
) {
    let previous = restart.and_then(|id| Some((id, *resources.children.get(id)?)));
    let mut child = Child::new(
        pid,
        pidfd,
        [stdin, stdout],
        Instant::now(),
        previous.as_ref().map(|(_, old)| old),
    );
    let exec_errno = match failure {
        None => 0,
        Some(ExecFailure::Exec(errno)) => errno,
        Some(ExecFailure::Cwd(errno)) => {
            child.exec_in_cwd = true;
            errno
        }
    };
    child.exec_errno = exec_errno;
    child.stderr = stderr_read;
    child.stdin_capacity = enlarge_pipe(stdin) as u32;
    // A large answer then goes out in one write instead of waiting for the host in 64 KiB
    // pieces.
    enlarge_pipe(stdout);
    // The worker also does this itself before it execs; whichever comes first wins, and
    // the group exists before anyone can signal it.
    // SAFETY: making our new child the leader of a process group of its own.
    unsafe { libc::setpgid(pid, pid) };
    if let Some((id, _)) = previous {
        // What the ended process wrote to its tagged stderr goes out before its successor
        // takes the slot.
        stderr::finish(resources, id);
    }
    let id = match previous {
        Some((id, old)) => {
            // The transport still reads the old process's descriptor number (parked at
            // its end): the new pipe takes that number, and the kernel's own copy stays
            // with the process manager, which closes it at the next reap.
            // SAFETY: both are open pipe ends the kernel holds; dup3 closes what
            // `old.stdout` was (the ended pipe) and makes it the new pipe's read end.
            let moved = unsafe { libc::dup3(stdout, old.stdout, libc::O_CLOEXEC) };
            child.stdout = old.stdout;
            child.pm_stdout = stdout;
            if moved == old.stdout {
                epoll::watch(resources.epoll, old.stdout);
            } else {
                // Its output cannot reach the transport: end it, and the slot, still
                // parked at the old end, goes through another restart.
                child.output = Output::Parked;
                child.signal(libc::SIGKILL);
            }
            child.outcome = Some(match exec_errno {
                0 => Restart::Done,
                _ => Restart::Refused(Refusal::ExecFailed),
            });
            resources.children.respawn(id, child);
            id
        }
        None => match resources.children.push(child) {
            Some(id) => id,
            None => return, // cannot happen: `fork` refused when full
        },
    };
    if pidfd >= 0 && resources.epoll >= 0 {
        let events = libc::EPOLLIN | libc::EPOLLONESHOT;
        epoll::epoll_add(resources.epoll, pidfd, events, epoll::PIDFD_TAG | id as u64);
    }
    if stderr_read >= 0 && resources.epoll >= 0 {
        let tag = stderr::STDERR_TAG | id as u64;
        epoll::epoll_add(resources.epoll, stderr_read, libc::EPOLLIN, tag);
    }
}

/// Makes a worker's pipe as large as the system allows: for stdin, so that a message the
/// kernel writes in one non-blocking `write` is cut only when it could never fit. Returns
/// the size it has.
fn enlarge_pipe(fd: c_int) -> usize {
    if fd < 0 {
        return 0;
    }
    /// Largest first: above `/proc/sys/fs/pipe-max-size` (1 MiB by default) only a
    /// privileged process succeeds.
    const SIZES: [c_int; 3] = [4 << 20, 2 << 20, 1 << 20];
    for size in SIZES {
        // SAFETY: resizing a pipe the kernel holds changes only its capacity.
        if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } >= 0 {
            break;
        }
    }
    // SAFETY: F_GETPIPE_SZ only reads.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    usize::try_from(size).unwrap_or(0)
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "execvp"))]
unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    let resources = resources();
    let report = resources
        .as_ref()
        .map_or(-1, |resources| resources.spawn.exec_report);
    let lifeline = resources
        .as_ref()
        .map_or(-1, |resources| resources.guardian.lifeline());
    // Before `prepare_worker` closes every other descriptor, the pipe among them.
    launch::tagged_stderr(resources.as_ref().map_or(-1, |r| r.spawn.stderr_pipe));
    prepare_worker(report, lifeline);
    // The parent laid this worker's settings out at `create`; here they are only read.
    let launch = resources.and_then(|resources| {
        let launch = &resources.launch;
        launch
            .for_worker(resources.spawn.worker)
            .filter(|_| !launch.is_plain())
    });
    let Some(launch) = launch else {
        // SAFETY: the kernel's arguments, forwarded.
        let failed = unsafe { libc::execvp(file, argv) };
        exec_report::child_failed(report, crate::os::errno(), false);
        return failed;
    };
    if let Err(errno) = launch::enter_cwd(&launch) {
        exec_report::child_failed(report, errno, true);
        // SAFETY: ending the child that could not start its worker, as a failed exec does.
        unsafe { libc::_exit(127) };
    }
    launch::redirect_stderr(&launch);
    // SAFETY: the kernel's arguments, forwarded with the pool's environment.
    let failed = unsafe { launch::exec(&launch, file, argv) };
    exec_report::child_failed(report, crate::os::errno(), false);
    failed
}

/// In a worker between fork and exec: what `std::process::Command` gives its children, a
/// process group of its own, and that group in the guardian's care (invariant 6). Only
/// async-signal-safe calls. `report`, the exec report's write end, stays open; `lifeline`,
/// the guardian's, is closed with the rest once the guardian is told.
fn prepare_worker(report: c_int, lifeline: c_int) {
    // SAFETY: making this process the leader of a process group of its own, first, so
    // that the group the guardian is told of exists.
    unsafe { libc::setpgid(0, 0) };
    guardian::watch_own_group(lifeline);
    // Everything but stdin, stdout and stderr goes: the host's descriptors that are not
    // close-on-exec, and any the kernel made before this module saw them. The exec report
    // stays until the exec closes it.
    let close_range = |first: c_int, last: c_uint| {
        // SAFETY: closing a range of descriptors in a process about to exec.
        unsafe { libc::syscall(libc::SYS_close_range, first as c_uint, last, 0) }
    };
    let closed = if report >= 3 {
        let below = if report > 3 {
            close_range(3, (report - 1) as c_uint)
        } else {
            0
        };
        below.min(close_range(report + 1, c_uint::MAX))
    } else {
        close_range(3, c_uint::MAX)
    };
    if closed != 0 {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid out-parameter.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let highest = limit.rlim_cur.min(1 << 16) as c_int;
        for fd in (3..highest).filter(|&fd| fd != report) {
            // SAFETY: closing descriptors in a process about to exec.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: zeroed sigset and sigaction are valid arguments; SIGPIPE is a valid signal.
    unsafe {
        let mut none: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, ptr::null_mut());
        let mut default: libc::sigaction = core::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &default, ptr::null_mut());
    }
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "waitpid"))]
unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::waitpid(pid, status, options) };
    };
    // Any child of ours not yet reported counts, like an unreaped child for libc.
    let reaped = if pid == -1 {
        reap_any(resources)
    } else {
        let id = resources.children.iter().position(|child| child.pid == pid);
        id.and_then(|id| reap(resources, id, options))
    };
    match reaped {
        Some((pid, code)) => {
            if !status.is_null() {
                // SAFETY: the kernel passed a valid status pointer.
                unsafe { *status = code };
            }
            pid
        }
        // Like libc: 0 while a child of ours that the kernel has not collected is still
        // running (the kernel waits only with WNOHANG).
        None if pid == -1 && resources.children.iter().any(|c| c.life.kernel_untold()) => 0,
        None if resources
            .children
            .iter()
            .any(|c| c.pid == pid && c.life.kernel_untold()) =>
        {
            0
        }
        None => {
            set_errno(libc::ECHILD);
            -1
        }
    }
}

/// The kernel's `waitpid(-1, WNOHANG)`: one of its workers that the bus reaped already
/// and whose restart may start, or, in the kernel's own waits, any that has ended
/// (invariant 4).
fn reap_any(resources: &mut KernelResources) -> Option<(pid_t, c_int)> {
    let now = Instant::now();
    (0..resources.children.len()).find_map(|id| {
        let child = resources.children.get(id)?;
        let ready = (matches!(child.life, Life::Ended(_))
            && (!resources.supervision.bus_reaping || child.backoff.restart_due(now)))
            || resources.reapable(child);
        if ready {
            reap(resources, id, libc::WNOHANG)
        } else {
            None
        }
    })
}

/// Reaps worker `id` as `waitpid` would with `options`, once for the kernel.
fn reap(resources: &mut KernelResources, id: usize, options: c_int) -> Option<(pid_t, c_int)> {
    // Whatever the kernel was told before, it forks (or not) right after the `waitpid` that
    // told it: a restart is only ever for the worker of the latest report.
    resources.spawn.restarting = None;
    let untold = resources.children.get(id)?.life.kernel_untold();
    if !untold || !resources.children.reap(id, options) {
        return None;
    }
    let restarts = resources.supervision.restarts_allowed;
    let child = resources.children.get_mut(id)?;
    let ended = child.ending.map(|ending| ending.kind);
    let status = status_for_kernel(child.life, child.exec_errno, restarts, ended)?;
    child.life.tell_kernel();
    // A crash (any status but a clean exit) makes the kernel restart the worker: let that
    // fork through if the transport's connection was kept for it.
    let kept = child.output == Output::Parked;
    match restart_verdict(status, resources.supervision.bus_reaping && restarts, kept) {
        Verdict::Nothing => {}
        Verdict::Restart => {
            // Until the fork comes, the kernel is taken to have refused (its limit).
            child.outcome = Some(Restart::Refused(Refusal::LimitReached));
            resources.spawn.restarting = Some(id);
        }
        Verdict::Refuse(reason) => child.outcome = Some(Restart::Refused(reason)),
    }
    Some((child.pid, status))
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "kill"))]
extern "C" fn kill(pid: pid_t, signal: c_int) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::kill(pid, signal) };
    };
    match resources.children.alive_mut(pid) {
        Some(child) => child.signal(signal),
        None => {
            set_errno(libc::ESRCH);
            -1
        }
    }
}
