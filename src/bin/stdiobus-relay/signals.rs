//! SIGTERM, SIGINT and SIGHUP, turned into a descriptor the loop waits on with the others.
//!
//! The handler only writes the signal's number into a pipe (async-signal-safe); the loop
//! reads it when `poll` says so. Any other signal keeps its default action, and the
//! workers die with the relay whatever ends it (the bus asks for that at each fork).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

pub const HANDLED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The read end of the signal pipe.
pub struct Signals {
    read_end: RawFd,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        let mut ends = [-1; 2];
        // SAFETY: `ends` has room for the two descriptors.
        if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in ends {
            // SAFETY: plain descriptor flags on the pipe just made: the handler must never
            // block, and neither end belongs in a worker.
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        WRITE_END.store(ends[1], Ordering::Relaxed);
        for signal in HANDLED {
            // SAFETY: a zeroed sigaction with a handler that only calls `write` is valid;
            // SA_RESTART keeps blocking writes to stdout from failing with EINTR.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(Self { read_end: ends[0] })
    }

    /// The descriptor that becomes readable when a signal came.
    pub fn fd(&self) -> RawFd {
        self.read_end
    }

    /// Whether a signal came that [`Signals::take`] has not taken yet.
    pub fn pending(&self) -> bool {
        let mut pollfd = libc::pollfd {
            fd: self.read_end,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout does not wait.
        unsafe { libc::poll(&mut pollfd, 1, 0) > 0 }
    }

    /// The last of the signals that came since the last call; 0 for none.
    pub fn take(&self) -> libc::c_int {
        let mut last = 0;
        let mut byte = [0u8; 1];
        // SAFETY: reading single bytes into a local buffer from our non-blocking pipe.
        while unsafe { libc::read(self.read_end, byte.as_mut_ptr().cast(), 1) } == 1 {
            last = libc::c_int::from(byte[0]);
        }
        last
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    let byte = [signal as u8];
    // SAFETY: `write` is async-signal-safe; a full pipe just drops the byte, and one
    // pending signal is enough to act on. The code it interrupted keeps its errno.
    unsafe {
        let errno = *errno_location();
        libc::write(WRITE_END.load(Ordering::Relaxed), byte.as_ptr().cast(), 1);
        *errno_location() = errno;
    }
}

#[cfg(target_os = "linux")]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno; always valid.
    unsafe { libc::__errno_location() }
}

#[cfg(not(target_os = "linux"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno; always valid.
    unsafe { libc::__error() }
}
