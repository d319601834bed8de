//! Whether a worker's command could be executed, learned at its fork.
//!
//! The kernel forks, and the child calls `execvp`; when that fails the child just exits,
//! and the kernel counts the worker as started. So each fork gets a close-on-exec pipe:
//! a child whose `execvp` fails writes the errno into it, and an `exec` that succeeds
//! closes it. The parent reads it right after the fork, which waits only as long as the
//! child takes to reach its `exec`, the way `posix_spawn` reports the same error, and at
//! most [`WAIT_LIMIT_MS`].

use cty::c_int;

/// The pipe of one fork. Its write end reaches the child through the bus's resources,
/// which the child's copy of the forking thread finds as the parent left them; a static
/// would be shared by buses forking on other threads at the same moment.
pub(super) struct ExecReport {
    ends: [c_int; 2],
}

impl ExecReport {
    /// A pipe for the fork about to be made. Without one (no descriptor left), the fork
    /// goes on and its exec is taken to have succeeded.
    pub(super) fn open() -> Self {
        let mut ends = [-1; 2];
        // SAFETY: `ends` has room for the two descriptors.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            ends = [-1, -1];
        }
        // A host that closed its stdio would have the write end among 0..=2, where the
        // kernel's child puts the worker's pipes.
        if (0..3).contains(&ends[1]) {
            // SAFETY: duplicating and closing the pipe end made above.
            unsafe {
                let moved = libc::fcntl(ends[1], libc::F_DUPFD_CLOEXEC, 3);
                libc::close(ends[1]);
                ends[1] = moved;
            }
        }
        Self { ends }
    }

    /// The end the child reports into; -1 if there is no pipe.
    pub(super) fn write_end(&self) -> c_int {
        self.ends[1]
    }

    /// In the parent after the fork: why the child could not exec, or `None` once it
    /// exec'd (or exited before trying, or there was no pipe, or the fork failed).
    pub(super) fn wait(self) -> Option<ExecFailure> {
        let [read_end, write_end] = self.ends;
        close(write_end);
        if read_end < 0 {
            return None;
        }
        let mut errno = [0u8; 4];
        let read = if readable_within(read_end, WAIT_LIMIT_MS) {
            // SAFETY: reading into a local buffer of that many bytes; the pipe is readable
            // (data, or the end of every write end), so this does not block.
            unsafe { libc::read(read_end, errno.as_mut_ptr().cast(), errno.len()) }
        } else {
            -1
        };
        close(read_end);
        // Four bytes were written at once, well under PIPE_BUF: all or nothing.
        if read != 4 {
            return None;
        }
        // A negative errno is `chdir`'s (see `child_failed`).
        let code = i32::from_ne_bytes(errno);
        let errno = u16::try_from(code.unsigned_abs()).unwrap_or(u16::MAX);
        Some(if code < 0 {
            ExecFailure::Cwd(errno)
        } else {
            ExecFailure::Exec(errno)
        })
    }
}

/// Why a forked worker did not exec its command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExecFailure {
    /// `execvp` failed with this errno.
    Exec(u16),
    /// `chdir` to the pool's directory failed with this errno.
    Cwd(u16),
}

/// The longest wait for a child's exec. A process the host forks at the same moment
/// (without exec) would hold a copy of the write end; past this, the exec is taken to have
/// succeeded, and a failure shows as the worker's exit.
const WAIT_LIMIT_MS: c_int = 1000;

/// Whether `fd` becomes readable within `ms` milliseconds, signals notwithstanding.
fn readable_within(fd: c_int, ms: c_int) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd. An interrupted wait starts over with the whole limit,
        // which only a flood of signals could stretch.
        let ready = unsafe { libc::poll(&mut pollfd, 1, ms) };
        if ready >= 0 || crate::os::errno() != libc::EINTR {
            return ready > 0;
        }
    }
}

/// In the child, after `execvp` (or, with `in_cwd`, the `chdir` before it) failed with
/// `errno`: tells the parent through `fd`, the pipe's write end (nothing if -1).
/// Async-signal-safe.
pub(super) fn child_failed(fd: c_int, errno: c_int, in_cwd: bool) {
    if fd >= 0 {
        let code = if in_cwd { -errno } else { errno };
        let bytes = code.to_ne_bytes();
        // SAFETY: writing four bytes from a local buffer; nothing to do if it fails.
        unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
}

fn close(fd: c_int) {
    if fd >= 0 {
        // SAFETY: a descriptor `ExecReport::open` made and nothing else holds.
        unsafe { libc::close(fd) };
    }
}
