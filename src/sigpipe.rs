//! Keeps a dead worker, or a departed client, from killing the host.
//!
//! A write to a pipe or socket with nobody left to read raises SIGPIPE, whose default
//! action terminates the process. Rust's std runtime ignores SIGPIPE before `main`, but a
//! `no_std`, `#![no_main]` or C host does not, and any host may put the default back at
//! any time.
//!
//! Where the kernel's calls are interposed, every write the kernel makes (and every write
//! the bus makes for it) goes through [`shielded`]: SIGPIPE is blocked on the calling
//! thread for the length of the write, and a SIGPIPE the write raised is taken before it
//! is unblocked, so the write just fails with EPIPE. The process-wide disposition is never
//! touched, and a SIGPIPE the host raises itself, on any thread, is delivered as the host
//! chose.
//!
//! Elsewhere (Apple targets) the kernel's writes cannot be reached: [`guard`] replaces a
//! default disposition with a handler that does nothing, reset at `exec`, so the workers
//! still get the ordinary behaviour.

/// Runs `write`, a system call that may raise SIGPIPE, so that it cannot: it fails with
/// EPIPE instead. Its result comes back with the errno it set.
///
/// Costs two `rt_sigprocmask` calls, and a `sigtimedwait` after a write that raised
/// SIGPIPE. If the thread had SIGPIPE blocked already, the mask is left alone and a
/// SIGPIPE the write raises stays pending, as the host's own writes' would.
#[cfg(target_os = "linux")]
pub(crate) fn shielded(write: impl FnOnce() -> isize) -> isize {
    // SAFETY: zeroed sigsets are valid arguments to sigemptyset and out-parameters;
    // SIGPIPE is a valid signal; pthread_sigmask changes this thread's mask only, and the
    // old mask is put back below on every path.
    let (pipe, old) = unsafe {
        let mut pipe: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        (pipe, old)
    };
    let written = write();
    let errno = crate::os::errno();
    // SAFETY: `old` was filled above.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
    if !was_blocked {
        if written < 0 && errno == libc::EPIPE {
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SIGPIPE is sent to the thread that wrote, and it was unblocked until the
            // write: a pending one is this write's.
            // SAFETY: valid set and timeout; a NULL siginfo is allowed.
            unsafe { libc::sigtimedwait(&pipe, core::ptr::null_mut(), &now) };
        }
        // SAFETY: `old` is the mask this thread had.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    }
    crate::os::set_errno(errno);
    written
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn shielded(write: impl FnOnce() -> isize) -> isize {
    write()
}

/// Whether SIGPIPE is ignored in this process now.
pub(crate) fn is_ignored() -> bool {
    // SAFETY: a zeroed `sigaction` is a valid out-parameter; nothing is changed.
    unsafe {
        let mut current: libc::sigaction = core::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, core::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

extern "C" fn swallow_sigpipe(_signal: libc::c_int) {}

/// Makes sure SIGPIPE cannot terminate the process where the kernel's writes are not the
/// bus's: a default disposition becomes a handler that does nothing. Checked at every
/// `start`, so a host that resets the disposition between two buses is guarded again.
pub(crate) fn guard() {
    if cfg!(stdio_bus_interposed) {
        return;
    }
    // SAFETY: a zeroed `sigaction` is a valid argument and out-parameter; the handler
    // installed is async-signal-safe (it does nothing); SIGPIPE is a valid signal.
    unsafe {
        let mut current: libc::sigaction = core::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, core::ptr::null(), &mut current) != 0 {
            return;
        }
        if current.sa_sigaction != libc::SIG_DFL {
            return;
        }
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = swallow_sigpipe as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGPIPE, &action, core::ptr::null_mut());
    }
}
