//! The kernel's epoll set: what the bus adds to it beside the kernel's own descriptors
//! (worker pidfds, the restart timer, the wake event, stdin pipes with a backlog), each
//! marked so that the kernel ignores its events, and the kernel's wait on it.

use cty::c_int;

#[cfg(stdio_bus_interposed)]
use super::stderr::STDERR_TAG;
#[cfg(stdio_bus_interposed)]
use crate::backpressure::STDIN_TAG;
#[cfg(target_os = "linux")]
pub(super) use crate::os::epoll_add;
#[cfg(stdio_bus_interposed)]
use libc::epoll_event;

#[cfg(stdio_bus_interposed)]
use super::resources;

/// Marks a worker's pidfd in the kernel's epoll set: the kernel reads an event's data as a
/// descriptor number (its low 32 bits, on a little-endian target) and skips any outside
/// `0..1024`, which every tagged value is. The low bits carry the worker id.
pub(super) const PIDFD_TAG: u64 = 1 << 31;
#[cfg(target_endian = "big")]
compile_error!("the pidfd tag relies on the kernel reading the low half of epoll data");

/// Marks the bus's restart timer in the kernel's epoll set: outside the descriptor numbers
/// the kernel serves, like a worker's pidfd, and no worker's id.
const TIMER_TAG: u64 = (1 << 31) | ((1 << 31) - 1);

/// Marks the bus's wake event (see `KernelResources::settle_wake`) in the kernel's epoll
/// set, as [`TIMER_TAG`] marks the timer.
const WAKE_TAG: u64 = (1 << 31) | ((1 << 31) - 2);

/// A timer descriptor in `epoll`, marked so the kernel ignores its events, or -1.
pub(super) fn restart_timer(epoll: cty::c_int) -> cty::c_int {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls; the descriptor is the bus's, added to `epoll`.
        let timer = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        };
        if timer >= 0 && epoll >= 0 {
            epoll_add(epoll, timer, libc::EPOLLIN | libc::EPOLLONESHOT, TIMER_TAG);
        }
        timer
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = epoll;
        -1
    }
}

/// Makes `timer` (from [`restart_timer`]) wake `epoll` once, `wait` from now.
pub(super) fn set_restart_timer(epoll: cty::c_int, timer: cty::c_int, wait: core::time::Duration) {
    #[cfg(target_os = "linux")]
    if timer >= 0 {
        let mut expirations = 0u64;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs().try_into().unwrap_or(libc::c_long::MAX as _),
                tv_nsec: wait.subsec_nanos().max(1).into(),
            },
        };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            u64: TIMER_TAG,
        };
        // SAFETY: `timer` is the bus's open timerfd; reading clears a past expiration
        // (non-blocking); the spec and event are valid for their calls, which re-arm the
        // one-shot registration.
        unsafe {
            libc::read(timer, (&raw mut expirations).cast(), 8);
            libc::timerfd_settime(timer, 0, &spec, core::ptr::null_mut());
            libc::epoll_ctl(epoll, libc::EPOLL_CTL_MOD, timer, &mut event);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (epoll, timer, wait);
}

/// An event descriptor in `epoll`, marked so the kernel ignores its events, or -1.
pub(super) fn wake_event(epoll: cty::c_int) -> cty::c_int {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls; the descriptor is the bus's, added to `epoll`.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake >= 0 && epoll >= 0 {
            epoll_add(epoll, wake, libc::EPOLLIN, WAKE_TAG);
        }
        wake
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = epoll;
        -1
    }
}

/// Makes `wake` (from [`wake_event`]) readable, or not.
pub(super) fn set_wake(wake: cty::c_int, readable: bool) {
    #[cfg(target_os = "linux")]
    if wake >= 0 {
        let mut count = 1u64;
        // SAFETY: `wake` is the bus's open, non-blocking eventfd; eight bytes at `count`
        // are valid for either call. A read takes the count to zero.
        unsafe {
            if readable {
                libc::write(wake, (&raw const count).cast(), 8);
            } else {
                libc::read(wake, (&raw mut count).cast(), 8);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (wake, readable);
}

/// Puts a worker's stdout back in the kernel's epoll set as its event loop registers
/// descriptors: readable, level-triggered, the number as data.
#[cfg(stdio_bus_interposed)]
pub(super) fn watch(epoll: c_int, fd: c_int) {
    epoll_add(epoll, fd, libc::EPOLLIN, fd as u64);
}

#[cfg(not(stdio_bus_interposed))]
pub(super) fn watch(_epoll: c_int, _fd: c_int) {}

#[cfg(stdio_bus_interposed)]
#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "epoll_wait"))]
unsafe extern "C" fn epoll_wait(
    epoll: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::epoll_wait(epoll, events, max, timeout) };
    };
    // Workers whose held output the ring has room for now: the kernel is to read them,
    // whether or not their pipes have more.
    let mut due = heapless::Vec::<c_int, { crate::limits::MAX_WORKERS }>::new();
    if resources.output.output_held {
        let mut room = resources.room();
        for child in resources.children.iter() {
            // SAFETY: a worker's output is held only while its connection is open (the
            // close of its stdout drops it).
            if let Some(held) = child.held.filter(|held| !held.is_partial())
                && room.admits(unsafe { held.first_line_len() })
            {
                let _ = due.push(child.stdout);
            }
        }
    }
    let timeout = if due.is_empty() { timeout } else { 0 };
    // SAFETY: the kernel's arguments, forwarded.
    let mut ready = unsafe { libc::epoll_wait(epoll, events, max, timeout) };
    if ready >= 0 {
        for fd in due {
            // SAFETY: epoll_wait (or this loop) filled `ready` events at `events`.
            let filled = unsafe { core::slice::from_raw_parts(events, ready as usize) };
            let listed = filled.iter().any(|event| event.u64 == fd as u64);
            if ready < max && !listed {
                let event = epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: fd as u64,
                };
                // SAFETY: the kernel passed room for `max` events, and `ready < max`.
                unsafe { events.add(ready as usize).write(event) };
                ready += 1;
            }
        }
    }
    if ready > 0 {
        // SAFETY: epoll_wait filled `ready` events at `events`, or the bus did.
        let events = unsafe { core::slice::from_raw_parts(events, ready as usize) };
        for event in events {
            let data = event.u64;
            if data == TIMER_TAG {
                resources.supervision.exits_seen = true;
            } else if data == WAKE_TAG {
                // Held output: `due` had the workers the kernel can read now.
            } else if data & STDIN_TAG == STDIN_TAG {
                // Room in a pipe with a backlog: the step writes more of it after this.
            } else if data & STDERR_TAG == STDERR_TAG {
                super::stderr::pump(resources, (data & ((1 << 29) - 1)) as usize);
            } else if data & PIDFD_TAG != 0 {
                let id = (data & (PIDFD_TAG - 1)) as usize;
                if let Some(child) = resources.children.get_mut(id) {
                    child.life.exit();
                    resources.supervision.exits_seen = true;
                }
            }
        }
    }
    ready
}
