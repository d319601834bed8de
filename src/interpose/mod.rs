//! The kernel's system calls, taken over: the one place that knows them.
//!
//! `build.rs` renames the vendor objects' calls to the functions the bus takes over (listed
//! once, in `build/names.rs`, with the objects some are taken over in) to the prefixed
//! functions defined here.
//! Nobody else's calls change: the host's, std's and this crate's own still reach libc
//! directly.
//!
//! # Invariants
//!
//! 1. Every call into the kernel that the bus makes runs inside
//!    [`KernelResources::enter`], so the functions here find that bus's resources in
//!    [`current`]. A call made outside it (raw [`crate::sys`] use) finds none and is
//!    forwarded to libc, with only the protections that need no bookkeeping: descriptors
//!    close-on-exec and below 1024, and a clean exec for workers.
//! 2. The kernel closes only descriptors in its [`FdSet`]: those it created here, and
//!    those the bus handed it. A second close of a number, or a close of anybody else's
//!    descriptor, fails with `EBADF` and touches nothing.
//! 3. Every descriptor the kernel creates is close-on-exec and numbered from 3 to 1023: the
//!    kernel cannot serve higher numbers, and a worker's pipe at 0, 1 or 2 would be closed
//!    by the kernel's own child code after moving it there.
//! 4. The kernel signals and reaps only the processes in its [`Children`], each identified
//!    by the pidfd taken at its fork. Its `waitpid(-1)` becomes a wait on those processes.
//!    While the bus runs, the bus reaps a worker itself once its output has been read to
//!    the end (the kernel's reap closes the pipe), and tells the kernel only when the
//!    worker's restart backoff has passed; the kernel's own waits, in its shutdown, take
//!    any worker that has ended.
//! 5. `ingest` writes to the worker the bus chose (`routing`), whichever one the kernel
//!    picked; every line the kernel delivers is attributed to the worker it last read.
//! 6. The kernel forks in `start`, and to restart a worker it was just told crashed, while
//!    the bus runs. Such a restart is served: the end of the old process's output was kept
//!    from the transport, whose connection stays open, and the new stdout pipe takes the
//!    connection's descriptor number (the kernel itself never connects a restarted
//!    worker). Every worker it execs starts with descriptors 0, 1 and 2 alone, an empty
//!    signal mask, SIGPIPE at its default, and a process group of its own (so that ending
//!    it ends what it started), which it puts in the care of the bus's `guardian` before
//!    it execs: the group is killed when the host process ends, whichever thread started
//!    or polls the bus. A worker's end ends what it left running in its group.
//!
//! 7. The kernel is given only the worker lines the ring has room for while the bus runs
//!    (`held`): the rest of a read waits in the kernel's own buffer, the worker's pipe
//!    fills, and the worker waits. So no line that fits in the ring is lost, whatever the
//!    ring's shape. An overflow handler, a mask without messages, or a shutdown lifts
//!    the bound. An unfinished line waits there too, until it ends or fills the buffer.
//!    `ingest`'s message and its newline go out in one `writev`.
//!
//! Each function here is entered from C: none may unwind, block beyond the call it wraps,
//! or allocate; the one wait added is `fork`'s for its child's `exec` (`exec_report`, at
//! most a second). Between `fork` and `exec` only async-signal-safe calls are made.

// Without an interposed archive (Apple targets, or no archive at all) nothing but the bus
// uses the bookkeeping, and much of it is never filled in.
#![cfg_attr(not(stdio_bus_interposed), allow(dead_code))]

mod children;
mod current;
mod epoll;
mod fd_set;
mod guardian;
mod line_id;
mod lines;
mod resources;

#[cfg(stdio_bus_interposed)]
mod descriptors;
#[cfg(stdio_bus_interposed)]
mod exec_report;
#[cfg(stdio_bus_interposed)]
mod io;
#[cfg(stdio_bus_interposed)]
mod launch;
#[cfg(stdio_bus_interposed)]
mod processes;
#[cfg(stdio_bus_interposed)]
mod router;
mod stderr;

pub(crate) use children::{Child, Children};
pub(crate) use resources::{EndRefused, KernelResources, LineHook};

use cty::c_void;

#[cfg(stdio_bus_interposed)]
use descriptors::end_input;

#[cfg(not(stdio_bus_interposed))]
fn end_input(_fd: cty::c_int) -> bool {
    false
}

/// The resources of the bus whose kernel call is running, if any (invariant 1).
#[cfg(stdio_bus_interposed)]
fn resources<'a>() -> Option<&'a mut KernelResources> {
    // SAFETY: a non-null pointer is the `&mut KernelResources` that `enter` holds for the
    // length of the kernel call, on this thread; no other reference to it is used
    // meanwhile, and the kernel does not call back into itself.
    unsafe { current::get().as_mut() }
}

/// What becomes of a line the kernel is delivering from a worker's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Deliver it; it came from this worker (`None`: not known, outside an interposed
    /// read).
    From(Option<usize>),
    /// The start of a line too long, which the bus ended itself (see `lines`): not
    /// delivered.
    Dropped,
}

/// Decides about `line`, which the kernel is delivering inside a kernel call of the bus:
/// which worker wrote it (the one the kernel read last), whether it is to be dropped, and
/// hands it to the bus's line hook. One look at the running bus's resources per line.
pub(crate) fn take_line(line: &[u8]) -> Line {
    // SAFETY: a non-null pointer is the resources `enter` holds for the running kernel call
    // on this thread; no other reference to them is in use while the kernel runs a
    // callback.
    let Some(resources) = (unsafe { current::get().as_mut() }) else {
        return Line::From(None);
    };
    let Some(worker) = resources.output.reading else {
        return Line::From(None);
    };
    if let Some(child) = resources.children.get_mut(worker)
        && core::mem::take(&mut child.lines.drop_next)
    {
        return Line::Dropped;
    }
    if let Some(hook) = resources.output.line_hook {
        // SAFETY: the bus set the hook for the kernel call now running, with data that
        // stays valid for that call; the data is the router, which the resources do not
        // hold.
        unsafe { (hook.call)(hook.data, worker, line) };
    }
    Line::From(Some(worker))
}

/// Frees a router the kernel let go of during a call (see `KernelResources::enter`).
#[cfg(stdio_bus_interposed)]
fn free_router(router: *mut c_void) {
    router::free_router(router);
}

#[cfg(not(stdio_bus_interposed))]
fn free_router(_router: *mut c_void) {}
