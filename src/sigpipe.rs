//! Keeps a dead worker from killing the host.
//!
//! The kernel writes to worker pipes from inside `ingest` and `step`. When the worker has
//! died, that write raises SIGPIPE, whose default action terminates the process. Rust's std
//! runtime ignores SIGPIPE before `main`, but a `no_std`, `#![no_main]` or C host does not.
//!
//! When SIGPIPE is at its default disposition, this installs a handler that does nothing:
//! the write then fails with EPIPE, which the kernel reports as [`ErrorCode::Worker`].
//! A handler (unlike `SIG_IGN`) is reset to the default across `exec`, so the workers the
//! kernel spawns still get the ordinary SIGPIPE behaviour. A disposition the host chose
//! itself (ignore, or its own handler) is left alone.
//!
//! [`ErrorCode::Worker`]: crate::ErrorCode::Worker

extern "C" fn swallow_sigpipe(_signal: libc::c_int) {}

/// Makes sure SIGPIPE cannot terminate the process. Checked at every `start`, so a host
/// that resets the disposition between two buses is guarded again.
pub(crate) fn guard() {
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
