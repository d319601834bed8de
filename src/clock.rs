//! A monotonic deadline without std: the blocking stop and drop need to bound their wait.

use core::time::Duration;

/// A point on the monotonic clock, in nanoseconds: eight bytes, as every worker entry
/// keeps two.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(u64);

impl Deadline {
    /// `timeout` from now; saturates far in the future.
    pub(crate) fn after(timeout: Duration) -> Self {
        let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Self(nanos(now()).saturating_add(timeout))
    }

    /// Time left, zero once passed.
    pub(crate) fn remaining(&self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(nanos(now())))
    }

    pub(crate) fn has_passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

fn nanos(time: Duration) -> u64 {
    u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)
}

/// `timeout` in whole `unit`s, rounded up (a kernel timeout never ends early, and a
/// sub-unit timeout does not become a busy zero), saturating at `c_int::MAX`.
pub(crate) fn whole_units(timeout: Duration, unit: Duration) -> cty::c_int {
    let units = timeout.as_nanos().div_ceil(unit.as_nanos());
    cty::c_int::try_from(units).unwrap_or(cty::c_int::MAX)
}

fn now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every target
    // the kernel archive is built for, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Sleeps for about `duration`; an interrupted sleep just ends early.
pub(crate) fn sleep(duration: Duration) {
    let request = libc::timespec {
        tv_sec: duration
            .as_secs()
            .try_into()
            .unwrap_or(libc::c_long::MAX as _),
        tv_nsec: duration.subsec_nanos().into(),
    };
    // SAFETY: `request` is a valid timespec; a NULL remainder is allowed.
    unsafe { libc::nanosleep(&request, core::ptr::null_mut()) };
}
