//! The kernel's system calls, taken over: the one place that knows them.
//!
//! `build.rs` renames the vendor objects' references to `close`, `pipe`, `socket`, `accept`,
//! `eventfd`, `epoll_create1`, `epoll_wait`, `fork`, `execvp`, `waitpid` and `kill` to
//! `stdiobus_embed_<name>`, defined here, and so are `bus_core.o`'s calls to `write` (only
//! `ingest` makes them) and `stdio_bus_router_destroy`, and `transport.o`'s calls to `read`.
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
//!    by the pidfd taken at its fork. Its `waitpid(-1)` becomes a wait on those processes;
//!    when the bus lets it reap during a step, only on those whose output it has read to
//!    the end, since its reap closes the pipe.
//! 5. `ingest` writes to the worker the bus chose (`routing`), whichever one the kernel
//!    picked; every line the kernel delivers is attributed to the worker it last read.
//! 6. The kernel forks only while the bus is in `start`, and every worker it execs starts
//!    with descriptors 0, 1 and 2 alone, an empty signal mask, SIGPIPE at its default, a
//!    process group of its own (so that ending it ends what it started), and SIGKILL when
//!    the thread that started the bus ends.
//!
//! Each function here is entered from C: none may unwind, block beyond the call it wraps,
//! or allocate. Between `fork` and `exec` only async-signal-safe calls are made.

// Without an interposed archive (Apple targets, or no archive at all) nothing but the bus
// uses the bookkeeping, and much of it is never filled in.
#![cfg_attr(not(stdio_bus_interposed), allow(dead_code))]

mod children;
mod current;
mod fd_set;
mod resources;

pub(crate) use children::{Child, Children, Life, MAX_WORKERS, errno};
pub(crate) use resources::KernelResources;

use cty::c_void;

#[cfg(stdio_bus_interposed)]
mod calls;

/// The worker whose lines the kernel is delivering, while a kernel call of the bus runs and
/// the kernel's reads are interposed.
pub(crate) fn reading_worker() -> Option<usize> {
    // SAFETY: a non-null pointer is the resources `enter` holds for the running kernel call
    // on this thread; this only reads one field of it between the kernel's own uses.
    unsafe { current::get().as_ref() }.and_then(|resources| resources.reading)
}

/// Frees a router the kernel let go of during a call (see `KernelResources::enter`).
#[cfg(stdio_bus_interposed)]
fn free_router(router: *mut c_void) {
    calls::free_router(router);
}

#[cfg(not(stdio_bus_interposed))]
fn free_router(_router: *mut c_void) {}
