//! The guardian: a small process, apart from the host's threads and children, that ends
//! every worker's process group once the host process is gone, however it went (SIGKILL
//! included).
//!
//! A worker's life is tied to no thread of the host: any thread may start the bus, poll it
//! and fork the workers' restarts, and threads come and go. What ties the workers to the
//! host is the lifeline, a pipe whose write end only the host holds (close-on-exec, and
//! closed in every worker before it execs): when the host process ends, the system closes
//! it, and the guardian, blocked reading the other end, sees the end of the pipe and sends
//! SIGKILL to each process group it was told of. Each worker tells it of its own group
//! between its fork and its exec, before anything it starts can escape, and the bus tells
//! it to forget a group once it has ended the group and reaped its leader.
//!
//! The guardian is forked twice over, so that it is nobody's child in the host: it does
//! not show among the host's children, and no SIGCHLD disposition of the host changes it.
//! It runs a session of its own, so a terminal's Ctrl-C or hang-up does not reach it, and
//! blocks every signal it can. It costs one process per bus (a copy of the host that
//! touches a few pages), two forks at `start`, and one four-byte write per worker start
//! and end; nothing per message.
//!
//! Between the forks and its exit it makes only async-signal-safe calls.

use cty::c_int;
#[cfg(target_os = "linux")]
use cty::c_uint;
use libc::pid_t;

#[cfg(target_os = "linux")]
use crate::limits::MAX_WORKERS;

/// The host's end of the lifeline, and what it tells the guardian.
#[derive(Debug)]
pub(crate) struct Guardian {
    /// The write end of the lifeline, or -1 while no guardian runs.
    lifeline: c_int,
}

impl Guardian {
    pub(crate) const fn new() -> Self {
        Self { lifeline: -1 }
    }

    /// The write end of the lifeline, for a worker to tell the guardian of its group
    /// ([`watch_own_group`]); -1 while no guardian runs.
    pub(crate) fn lifeline(&self) -> c_int {
        self.lifeline
    }

    /// Starts the guardian, unless it runs. Without one (the system refused a pipe or a
    /// fork, or it is not Linux), workers are still supervised, but outlive a host that is
    /// killed.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn start(&mut self) {}

    /// Starts the guardian, unless it runs. Without one (the system refused a pipe or a
    /// fork, or it is not Linux), workers are still supervised, but outlive a host that is
    /// killed.
    #[cfg(target_os = "linux")]
    pub(crate) fn start(&mut self) {
        if self.lifeline >= 0 {
            return;
        }
        let mut ends = [-1; 2];
        // SAFETY: room for two descriptors.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        // A host that closed its stdio would get the pipe at 0, 1 or 2, which a worker's
        // stdio takes over between its fork and its exec.
        let [read, write] = ends.map(above_stdio);
        if read < 0 || write < 0 {
            for end in [read, write].into_iter().filter(|&end| end >= 0) {
                // SAFETY: made above and never handed out.
                unsafe { libc::close(end) };
            }
            return;
        }
        // SAFETY: the child makes only async-signal-safe calls (`spawn`).
        let middle = unsafe { libc::fork() };
        if middle == 0 {
            spawn(read);
        }
        // SAFETY: the read end is the guardian's alone from here; `middle` exits at once,
        // and is reaped here (or by the system, where the host ignores SIGCHLD).
        unsafe {
            libc::close(read);
            if middle > 0 {
                let mut status = 0;
                while libc::waitpid(middle, &mut status, 0) < 0 && crate::os::errno() == libc::EINTR
                {
                }
            }
        }
        if middle < 0 {
            // SAFETY: made above and never handed out.
            unsafe { libc::close(write) };
            return;
        }
        self.lifeline = write;
    }

    /// Ends the guardian: it ends the groups it was not told to forget, then itself.
    pub(crate) fn stop(&mut self) {
        if self.lifeline >= 0 {
            // SAFETY: the lifeline is this guardian's, closed once.
            unsafe { libc::close(self.lifeline) };
            self.lifeline = -1;
        }
    }
}

/// `fd`, or a copy of it numbered 3 or above (close-on-exec) in its place; -1 if none.
#[cfg(target_os = "linux")]
fn above_stdio(fd: c_int) -> c_int {
    if fd > 2 {
        return fd;
    }
    // SAFETY: `fd` is open and ours: copied above the standard descriptors, then closed.
    unsafe {
        let moved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
        libc::close(fd);
        moved
    }
}

/// Tells the guardian of `lifeline` that the group of `leader` has ended, its leader
/// reaped: it must not be signalled any more, since its number may be reused.
pub(crate) fn forget(lifeline: c_int, leader: pid_t) {
    tell(lifeline, -leader);
}

/// In a worker between fork and exec: tells the guardian of `lifeline` to end this
/// process's group with the host. Only async-signal-safe calls.
pub(crate) fn watch_own_group(lifeline: c_int) {
    // SAFETY: getpid cannot fail.
    tell(lifeline, unsafe { libc::getpid() });
}

/// Writes one record to the lifeline: a group to watch (`pid` > 0) or to forget (< 0).
/// Four bytes, well under `PIPE_BUF`: never torn.
fn tell(lifeline: c_int, record: pid_t) {
    if lifeline < 0 {
        return;
    }
    let bytes = record.to_ne_bytes();
    // SAFETY: writing four valid bytes to the lifeline; a guardian gone makes it fail
    // with EPIPE, which SIGPIPE cannot turn into the host's death (`sigpipe`).
    crate::sigpipe::shielded(|| unsafe { libc::write(lifeline, bytes.as_ptr().cast(), 4) });
}

#[cfg(target_os = "linux")]
/// In the first child: forks the guardian and exits, so that the guardian is nobody's
/// child in the host.
fn spawn(read: c_int) -> ! {
    // SAFETY: async-signal-safe calls in a child of a possibly multithreaded process.
    unsafe {
        if libc::fork() == 0 {
            guard(read);
        }
        libc::_exit(0)
    }
}

/// The guardian: keeps the groups it is told of until the lifeline ends, then kills them.
#[cfg(target_os = "linux")]
fn guard(read: c_int) -> ! {
    // SAFETY: async-signal-safe calls only: a session of its own; every descriptor but
    // the lifeline's read end closed (the host's, the workers' pipes, the write end); every
    // signal it can block blocked.
    unsafe {
        libc::setsid();
        if read > 3 {
            libc::syscall(libc::SYS_close_range, 3, (read - 1) as c_uint, 0);
        }
        libc::syscall(libc::SYS_close_range, (read + 1) as c_uint, c_uint::MAX, 0);
        let mut all: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, core::ptr::null_mut());
    }
    // Restarts replace groups one by one: room for every worker twice over.
    let mut groups = [0 as pid_t; 2 * MAX_WORKERS];
    let mut count = 0;
    let mut records = [0u8; 256];
    loop {
        // SAFETY: reading into a valid buffer.
        let read = unsafe { libc::read(read, records.as_mut_ptr().cast(), records.len()) };
        if read < 0 && crate::os::errno() == libc::EINTR {
            continue;
        }
        if read <= 0 {
            break;
        }
        for record in records[..read as usize].chunks_exact(4) {
            let record = pid_t::from_ne_bytes([record[0], record[1], record[2], record[3]]);
            let known = groups[..count]
                .iter()
                .position(|&group| group == record.abs());
            match (record > 0, known) {
                (true, None) if count < groups.len() => {
                    groups[count] = record;
                    count += 1;
                }
                (false, Some(at)) => {
                    count -= 1;
                    groups[at] = groups[count];
                }
                _ => {}
            }
        }
    }
    for &group in &groups[..count] {
        // SAFETY: a group the host told of and did not say had ended: its leader is
        // unreaped (its number cannot be another group's) or the host is gone.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    // SAFETY: ends this process without running anything of the host's.
    unsafe { libc::_exit(0) }
}
