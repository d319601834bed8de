//! The part of a message that a worker's stdin pipe could not take at once, kept in a
//! buffer the host lends (`Bus::set_send_buffer`) and written as the worker reads.
//!
//! `ingest` writes a message with one non-blocking `write`, then its newline (one `writev`
//! here, see `io`), and drops what the pipe does not take. With a lent buffer, the bus takes a message longer than
//! the pipe's room: the `write` puts into the pipe what fits and keeps the rest here, and
//! the kernel is told everything was written. Each step then writes more of it; while
//! some is left, the pipe's write end is watched in the kernel's epoll set, so that a
//! `poll_fd` loop wakes when the worker has read. One message is kept at a time, for one
//! worker; a message for that worker waits until it is out (`Error::PipeFull`), so lines
//! never interleave.

use core::ptr;

use cty::c_int;

#[cfg(target_os = "linux")]
use crate::os::epoll_add;

/// Marks the watch of a worker's stdin in the kernel's epoll set: outside the descriptor
/// numbers the kernel serves, and unlike a pidfd's tag (bit 31 alone, with a worker id
/// below 256) or the timer's; the low bits carry the worker id.
#[cfg(target_os = "linux")]
pub(crate) const STDIN_TAG: u64 = (1 << 31) | (1 << 30);

/// A lent buffer and what it holds.
#[derive(Debug)]
pub(crate) struct Backlog {
    buf: *mut u8,
    capacity: usize,
    /// The bytes still to write are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Where they go: the worker, in which start generation, through which pipe.
    worker: usize,
    generation: u32,
    fd: c_int,
    /// A duplicate of `fd` in the kernel's epoll set, watched for room; -1 when none.
    watch: c_int,
    /// Whether its writes block SIGPIPE around them (see `sigpipe`): unless the host
    /// keeps SIGPIPE ignored.
    shield: bool,
}

impl Backlog {
    pub(crate) const fn new() -> Self {
        Self {
            buf: ptr::null_mut(),
            capacity: 0,
            start: 0,
            end: 0,
            worker: 0,
            generation: 0,
            fd: -1,
            watch: -1,
            shield: true,
        }
    }

    /// Writes without blocking SIGPIPE around them: the host keeps it ignored.
    pub(crate) fn trust_sigpipe_ignored(&mut self) {
        self.shield = false;
    }

    /// Takes `buf` for what pipes cannot take at once, from now on.
    ///
    /// # Safety
    ///
    /// `buf` stays valid, and used by nothing else, for as long as this backlog is.
    pub(crate) unsafe fn lend(&mut self, buf: &mut [u8]) {
        self.buf = buf.as_mut_ptr();
        self.capacity = buf.len();
    }

    /// The most bytes it can keep.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether it keeps bytes for anyone.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether it keeps bytes for worker `worker`'s process of start `generation`.
    pub(crate) fn holds(&self, worker: usize, generation: u32) -> bool {
        !self.is_empty() && self.worker == worker && self.generation == generation
    }

    /// Bytes it can still append behind what it keeps.
    pub(crate) fn room(&self) -> usize {
        self.capacity - self.end
    }

    /// `ingest`'s write of `line` (a message, then its newline) to worker `worker`'s stdin
    /// `fd`: behind what is kept for that process, or as far as the pipe takes it with the
    /// rest kept and the pipe watched in `epoll`. Returns what `writev` would, counting the
    /// kept bytes as written; -1 with EAGAIN when they cannot be kept and the pipe took
    /// none of them, so that nothing is cut and no line jumps ahead of the kept one.
    pub(crate) fn write(
        &mut self,
        epoll: c_int,
        fd: c_int,
        (worker, generation): (usize, u32),
        line: [&[u8]; 2],
    ) -> isize {
        let total = line[0].len() + line[1].len();
        if !self.is_empty() {
            if self.holds(worker, generation) && self.fd == fd {
                return if self.keep(line, 0) {
                    total as isize
                } else {
                    would_block()
                };
            }
            // Another pipe: not behind the kept bytes.
            return write(fd, line, self.shield);
        }
        let written = write(fd, line, self.shield);
        let taken = match usize::try_from(written) {
            Ok(taken) => taken,
            Err(_) if crate::os::errno() == libc::EAGAIN => 0,
            Err(_) => return written,
        };
        if taken == total || self.capacity == 0 {
            return written;
        }
        (self.start, self.end) = (0, 0);
        (self.worker, self.generation, self.fd) = (worker, generation, fd);
        if self.keep(line, taken) {
            self.watch_pipe(epoll);
            total as isize
        } else if taken == 0 {
            would_block()
        } else {
            written // cut, as the kernel alone would; `check_room` keeps this from happening
        }
    }

    /// Appends `line` from its byte `from` on to what is kept, if it fits.
    fn keep(&mut self, line: [&[u8]; 2], from: usize) -> bool {
        let total = line[0].len() + line[1].len();
        if total - from > self.capacity - self.end {
            return false;
        }
        let mut skip = from;
        for part in line {
            let part = &part[skip.min(part.len())..];
            skip = skip.saturating_sub(line[0].len());
            // SAFETY: the whole rest fits (`end + total - from <= capacity`), within the
            // lent buffer (see `lend`), which `part` (the kernel's or the host's message,
            // or its newline) does not overlap.
            unsafe { ptr::copy_nonoverlapping(part.as_ptr(), self.buf.add(self.end), part.len()) };
            self.end += part.len();
        }
        true
    }

    /// Writes what it keeps as far as the pipe takes it, if `serving(worker, generation)`
    /// still holds (otherwise the bytes go: the process they were for is gone). While
    /// some is left, the pipe is watched in `epoll`.
    pub(crate) fn flush(&mut self, epoll: c_int, serving: impl Fn(usize, u32) -> bool) {
        if self.is_empty() {
            return;
        }
        if !serving(self.worker, self.generation) {
            self.clear(epoll);
            return;
        }
        while !self.is_empty() {
            // SAFETY: `start..end` lies within the lent buffer.
            let pending = unsafe {
                core::slice::from_raw_parts(self.buf.add(self.start), self.end - self.start)
            };
            match usize::try_from(write(self.fd, [pending, &[]], self.shield)) {
                Ok(written) => self.start += written,
                // Full: the watch wakes the loop when the worker has read.
                Err(_) if crate::os::errno() == libc::EAGAIN => break,
                // The worker closed its stdin, or worse: the rest can never go.
                Err(_) => {
                    self.clear(epoll);
                    return;
                }
            }
        }
        if self.is_empty() {
            self.clear(epoll);
        } else {
            self.watch_pipe(epoll);
        }
    }

    /// Drops what it keeps and stops watching.
    pub(crate) fn clear(&mut self, epoll: c_int) {
        (self.start, self.end) = (0, 0);
        if self.watch >= 0 {
            unwatch(epoll, self.watch);
            self.watch = -1;
        }
    }

    /// Adds a duplicate of the pipe to `epoll`, watched for being writable: the kernel may
    /// have the pipe itself in the set already, and a duplicate is an entry of its own.
    #[cfg(not(target_os = "linux"))]
    fn watch_pipe(&mut self, _epoll: c_int) {}

    #[cfg(target_os = "linux")]
    fn watch_pipe(&mut self, epoll: c_int) {
        if self.watch >= 0 {
            return;
        }
        // Above the numbers the kernel serves if the limit allows, so none of them is used
        // up; below, with a soft limit of 1024.
        // SAFETY: duplicating a pipe end the kernel holds.
        let mut watch = unsafe { libc::fcntl(self.fd, libc::F_DUPFD_CLOEXEC, 1024) };
        if watch < 0 {
            // SAFETY: as above.
            watch = unsafe { libc::fcntl(self.fd, libc::F_DUPFD_CLOEXEC, 3) };
        }
        if watch < 0 {
            return; // the next step tries again
        }
        if epoll_add(epoll, watch, libc::EPOLLOUT, STDIN_TAG | self.worker as u64) {
            self.watch = watch;
        } else {
            // SAFETY: the duplicate made above.
            unsafe { libc::close(watch) };
        }
    }
}

/// Takes the duplicate `watch` out of `epoll` and closes it.
#[cfg(target_os = "linux")]
fn unwatch(epoll: c_int, watch: c_int) {
    // SAFETY: `watch` is the backlog's own duplicate, in `epoll`; removed and closed once.
    unsafe {
        libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, watch, ptr::null_mut());
        libc::close(watch);
    }
}

#[cfg(not(target_os = "linux"))]
fn unwatch(_epoll: c_int, _watch: c_int) {}

/// What a non-blocking `write` returns when the pipe is full.
fn would_block() -> isize {
    crate::os::set_errno(libc::EAGAIN);
    -1
}

/// Writes both parts of `line` to `fd` with one system call; a worker gone makes it fail
/// with EPIPE, and, `shield`ed, never raise SIGPIPE.
fn write(fd: c_int, line: [&[u8]; 2], shield: bool) -> isize {
    let parts = line.map(|part| libc::iovec {
        iov_base: part.as_ptr().cast_mut().cast(),
        iov_len: part.len(),
    });
    // SAFETY: writing two valid byte ranges to a pipe end the kernel holds; it is
    // non-blocking, and `writev` only reads them.
    let write = || unsafe { libc::writev(fd, parts.as_ptr(), 2) };
    if shield {
        crate::sigpipe::shielded(write)
    } else {
        write()
    }
}
