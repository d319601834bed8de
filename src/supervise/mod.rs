//! Supervision policy: where each worker process is in its life, when an ended one may be
//! restarted, and what the kernel is told of it.
//!
//! Plain values and decisions, no system calls: every function that depends on time takes
//! `now` as an argument, so the restart backoff, the restart verdicts, the grace of a worker ended on request and the
//! liveness deadlines are unit-tested by
//! feeding instants in (as smoltcp's sockets are). The interposed calls (`interpose`) hold
//! each worker's [`Life`] and [`Backoff`] and ask here what to do; the bus reports what
//! they decided.

// Without an interposed archive (Apple targets, or no archive at all) only the bus's own
// bookkeeping uses the policy, and most of it is never called.
#![cfg_attr(not(stdio_bus_interposed), allow(dead_code, unused_imports))]

mod backoff;
mod ending;
mod life;
mod liveness;
mod verdict;

pub(crate) use backoff::Backoff;
pub(crate) use ending::{DEFAULT_GRACE, EndKind, Ending};
pub(crate) use life::{Life, WaitStatus};
pub(crate) use liveness::{Liveness, Watch};
pub(crate) use verdict::{Refusal, Restart, Verdict, restart_verdict, status_for_kernel};
