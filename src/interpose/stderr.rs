//! Tagged stderr: each worker of a pool with `"stderr": "tagged"` writes into a pipe of the
//! bus's, whose read end sits in the kernel's epoll set under [`STDERR_TAG`]. Whenever the
//! kernel's wait reports it, the bus reads it and writes each whole line to the host's
//! stderr behind `[POOL#WORKER] `, in one `writev`, so lines of different workers never mix
//! mid-line. A line without its end yet waits in a small carry slot until the rest comes; a
//! line longer than [`STDERR_LINE`] (or one that finds no free slot) goes out in pieces,
//! each prefixed and ended. Nothing of this is on the path of messages.

use cty::c_int;

use super::KernelResources;
use crate::limits::STDERR_LINE;

/// Marks a worker's stderr pipe in the kernel's epoll set, like the pidfd tag: outside the
/// descriptor numbers the kernel serves, apart from the other tags (bit 30 is the stdin
/// tag's, and no worker id reaches bit 29). The low bits carry the worker id.
pub(super) const STDERR_TAG: u64 = (1 << 31) | (1 << 29);

/// Bytes of an unfinished line kept for a worker until its end comes.
const CARRY_BYTES: usize = 256;

/// Workers whose unfinished lines are kept at once.
const CARRY_SLOTS: usize = 8;

/// The start of a worker's line, kept until its end comes.
#[derive(Clone, Copy, Debug)]
struct Carry {
    worker: usize,
    len: usize,
    bytes: [u8; CARRY_BYTES],
}

/// The unfinished lines of the workers' tagged stderr.
#[derive(Debug)]
pub(crate) struct Carries {
    slots: heapless::Vec<Carry, CARRY_SLOTS>,
}

impl Carries {
    pub(crate) const fn new() -> Self {
        Self {
            slots: heapless::Vec::new(),
        }
    }

    /// Moves what is kept for `worker` to the start of `buf`; its length.
    fn take(&mut self, worker: usize, buf: &mut [u8]) -> usize {
        let Some(at) = self.slots.iter().position(|c| c.worker == worker) else {
            return 0;
        };
        let carry = self.slots.swap_remove(at);
        buf[..carry.len].copy_from_slice(&carry.bytes[..carry.len]);
        carry.len
    }

    /// Keeps `bytes` for `worker`, if they fit in a free slot.
    fn keep(&mut self, worker: usize, bytes: &[u8]) -> bool {
        if bytes.len() > CARRY_BYTES || self.slots.is_full() {
            return false;
        }
        let mut carry = Carry {
            worker,
            len: bytes.len(),
            bytes: [0; CARRY_BYTES],
        };
        carry.bytes[..bytes.len()].copy_from_slice(bytes);
        self.slots.push(carry).is_ok()
    }
}

/// A pipe for worker `worker`'s stderr, made before its fork: `[read end, write end]`,
/// both close-on-exec and above 2, the read end non-blocking; `None` if no pipe can be
/// made (the worker then inherits the host's stderr).
#[cfg(stdio_bus_interposed)]
pub(super) fn open_pipe() -> Option<[c_int; 2]> {
    let mut ends = [-1; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    // The write end is made blocking again: a worker that writes faster than the host
    // reads waits, like one whose stderr is a full terminal.
    // SAFETY: changing the flags of the pipe just made.
    unsafe { libc::fcntl(ends[1], libc::F_SETFL, 0) };
    for end in &mut ends {
        if *end < 3 {
            // A host that closed its stdio: 0..=2 are where the kernel's child puts the
            // worker's pipes.
            // SAFETY: duplicating and closing the pipe end made above.
            unsafe {
                let moved = libc::fcntl(*end, libc::F_DUPFD_CLOEXEC, 3);
                libc::close(*end);
                *end = moved;
            }
        }
    }
    Some(ends)
}

/// Reads what worker `worker`'s stderr pipe has now, once, and writes its whole lines to
/// the host's stderr; at the end of the pipe (every process holding it has gone), closes it.
pub(super) fn pump(resources: &mut KernelResources, worker: usize) {
    let Some(child) = resources.children.get(worker) else {
        return;
    };
    let fd = child.stderr;
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; STDERR_LINE];
    let mut len = resources.output.stderr_carries.take(worker, &mut buf);
    // SAFETY: reading into the free part of a local buffer.
    let read = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
    let ended =
        read == 0 || (read < 0 && !matches!(crate::os::errno(), libc::EAGAIN | libc::EINTR));
    len += usize::try_from(read).unwrap_or(0);
    let prefix = Prefix::new(resources, worker);
    let mut rest = &buf[..len];
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        prefix.write(&rest[..=end]);
        rest = &rest[end + 1..];
    }
    let kept =
        !ended && rest.len() < buf.len() && resources.output.stderr_carries.keep(worker, rest);
    if !rest.is_empty() && !kept {
        prefix.write(rest);
    }
    if ended {
        // SAFETY: the bus's own pipe end, closed once; closing takes it out of the epoll
        // set.
        unsafe { libc::close(fd) };
        if let Some(child) = resources.children.get_mut(worker) {
            child.stderr = -1;
        }
    }
}

/// Writes what worker `worker`'s stderr pipe still holds, then closes it: for a worker
/// replaced by a restart, and when the bus lets go of its workers.
pub(super) fn finish(resources: &mut KernelResources, worker: usize) {
    while resources
        .children
        .get(worker)
        .is_some_and(|child| child.stderr >= 0)
    {
        pump(resources, worker);
        let Some(fd) = resources.children.get(worker).map(|child| child.stderr) else {
            return;
        };
        if fd >= 0 && !readable(fd) {
            let mut buf = [0u8; CARRY_BYTES];
            let len = resources.output.stderr_carries.take(worker, &mut buf);
            if len > 0 {
                Prefix::new(resources, worker).write(&buf[..len]);
            }
            // SAFETY: the bus's own pipe end, closed once.
            unsafe { libc::close(fd) };
            if let Some(child) = resources.children.get_mut(worker) {
                child.stderr = -1;
            }
        }
    }
}

fn readable(fd: c_int) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; no wait.
    unsafe { libc::poll(&mut pollfd, 1, 0) > 0 }
}

/// `[POOL#WORKER] ` for one worker, the pool id cut at 64 bytes.
struct Prefix {
    bytes: [u8; 96],
    len: usize,
}

impl Prefix {
    fn new(resources: &KernelResources, worker: usize) -> Self {
        let mut prefix = Self {
            bytes: [0; 96],
            len: 0,
        };
        let pool = resources
            .launch
            .for_worker(worker)
            .map_or(&[][..], |launch| launch.pool);
        prefix.put(b"[");
        prefix.put(&pool[..pool.len().min(64)]);
        prefix.put(b"#");
        let mut digits = [0u8; 20];
        prefix.put(crate::digits::decimal(worker as u64, &mut digits));
        prefix.put(b"] ");
        prefix
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(room) = self.bytes.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Writes `line` (ended with its newline, or given one) behind the prefix, at once.
    fn write(&self, line: &[u8]) {
        let newline = if line.ends_with(b"\n") {
            &b""[..]
        } else {
            b"\n"
        };
        let parts = [&self.bytes[..self.len], line, newline];
        let iov = parts.map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut _,
            iov_len: part.len(),
        });
        // SAFETY: three valid buffers for the call; a failed write to the host's stderr
        // loses the line, as it would for the worker itself, and a stderr nobody reads any
        // more cannot kill the host with SIGPIPE.
        crate::sigpipe::shielded(|| unsafe { libc::writev(2, iov.as_ptr(), iov.len() as c_int) });
    }
}
