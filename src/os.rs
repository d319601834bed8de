//! Small wrappers of the operating system's interface that several modules share: the
//! calling thread's `errno`, and adding a descriptor to an epoll set.

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

/// Adds `fd` to `epoll` for `events`, reported with `data`; whether it was added.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_add(epoll: cty::c_int, fd: cty::c_int, events: cty::c_int, data: u64) -> bool {
    let mut event = libc::epoll_event {
        events: events as u32,
        u64: data,
    };
    // SAFETY: `event` is valid for the call; the kernel checks both descriptors.
    unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) == 0 }
}
