//! The operating system's per-thread state that the crate reads and sets: `errno`.

use cty::c_int;

/// The calling thread's `errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: the C library keeps a valid, thread-local errno for the calling thread.
    unsafe { *errno_location() }
}

/// Sets the calling thread's `errno`, as a C function that fails does.
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *errno_location() = value };
}

fn errno_location() -> *mut c_int {
    // SAFETY: both return the calling thread's errno slot and have no preconditions.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe {
        libc::__errno_location()
    }
    // SAFETY: as above.
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    unsafe {
        libc::__error()
    }
}
