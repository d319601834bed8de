//! Monotonic time without std: the supervision policy takes `now` as a value, and the
//! blocking stop and drop bound their waits.

use core::time::Duration;

/// A point on the monotonic clock, in nanoseconds: eight bytes, as every worker entry
/// keeps two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(u64);

impl Instant {
    /// Now, on the monotonic clock.
    pub(crate) fn now() -> Self {
        Self(nanos(now()))
    }

    /// The instant `nanos` after the clock's origin: for tests that feed time in.
    #[cfg(test)]
    pub(crate) const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// `duration` later; saturates far in the future.
    pub(crate) fn after(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(nanos(duration)))
    }

    /// How long from this instant until `later`; zero once `later` has passed.
    pub(crate) fn until(self, later: Self) -> Duration {
        Duration::from_nanos(later.0.saturating_sub(self.0))
    }
}

/// A point by which something must happen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now; saturates far in the future.
    pub(crate) fn after(timeout: Duration) -> Self {
        Self(Instant::now().after(timeout))
    }

    /// Time left, zero once passed.
    pub(crate) fn remaining(&self) -> Duration {
        Instant::now().until(self.0)
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
