//! When a worker that ended may be restarted: at once after a stable run, later after each
//! quick end in a row, so that a worker that crashes at every start does not spin.

use core::time::Duration;

use crate::clock::Instant;

/// A process that lives this long before it ends was stable: its replacement starts at
/// once, and the backoff starts over.
pub(crate) const STABLE: Duration = Duration::from_secs(5);
/// The first wait before restarting a process that ended quickly; it doubles with each
/// quick end in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The restart schedule of one worker's current process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Ended processes in a row that lived shorter than [`STABLE`].
    quick_ends: u8,
    /// When this process will have lived [`STABLE`].
    stable_at: Instant,
    /// When its replacement may start, once it has ended.
    restart_at: Instant,
}

impl Backoff {
    /// The schedule of a process started at `now`, in place of one whose schedule was
    /// `previous` (`None`: the worker's first).
    pub(crate) fn started(now: Instant, previous: Option<&Self>) -> Self {
        Self {
            quick_ends: previous.map_or(0, |previous| previous.quick_ends),
            stable_at: now.after(STABLE),
            restart_at: now,
        }
    }

    /// The process ended at `now`: sets when its replacement may start.
    pub(crate) fn ended(&mut self, now: Instant) {
        if now >= self.stable_at {
            self.quick_ends = 0;
        }
        let wait = match self.quick_ends {
            0 => Duration::ZERO,
            n => FIRST_BACKOFF
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_BACKOFF),
        };
        self.quick_ends = self.quick_ends.saturating_add(1);
        self.restart_at = now.after(wait);
    }

    /// The process ended at `now` because the host asked for its end (a restart, a stop, a
    /// liveness check it set): no quick end to back off from, so its replacement may start
    /// at once, and the schedule of crashes is left as it was.
    pub(crate) fn ended_on_request(&mut self, now: Instant) {
        self.restart_at = now;
    }

    /// Whether the replacement may start at `now`.
    pub(crate) fn restart_due(&self, now: Instant) -> bool {
        now >= self.restart_at
    }

    /// How long after `now` the replacement may start; zero once it may.
    pub(crate) fn until_restart(&self, now: Instant) -> Duration {
        now.until(self.restart_at)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    const MS: u64 = 1_000_000;

    /// The waits before each restart of a process that ends `lives` after each start.
    fn waits(lives: &[Duration]) -> Vec<Duration> {
        let mut now = Instant::from_nanos(1_000 * MS);
        let mut backoff = Backoff::started(now, None);
        let mut waits = Vec::new();
        for &life in lives {
            now = now.after(life);
            backoff.ended(now);
            let wait = backoff.until_restart(now);
            assert!(backoff.restart_due(now.after(wait)));
            if !wait.is_zero() {
                assert!(!backoff.restart_due(now));
            }
            waits.push(wait);
            now = now.after(wait);
            backoff = Backoff::started(now, Some(&backoff));
        }
        waits
    }

    #[test]
    fn quick_ends_in_a_row_wait_longer_each_time_up_to_the_limit() {
        let quick = Duration::from_millis(10);
        let ms = Duration::from_millis;
        assert_eq!(
            waits(&[quick; 9]),
            [
                ms(0),
                ms(25),
                ms(50),
                ms(100),
                ms(200),
                ms(400),
                ms(500),
                ms(500),
                ms(500)
            ]
        );
    }

    #[test]
    fn a_stable_run_starts_the_backoff_over() {
        let quick = Duration::from_millis(10);
        let ms = Duration::from_millis;
        assert_eq!(
            waits(&[quick, quick, quick, STABLE, quick, quick]),
            [ms(0), ms(25), ms(50), ms(0), ms(25), ms(50)]
        );
    }

    #[test]
    fn an_end_on_request_restarts_at_once_and_leaves_the_crash_count() {
        let start = Instant::from_nanos(1_000 * MS);
        let quick = Duration::from_millis(10);
        let mut backoff = Backoff::started(start, None);
        backoff.ended(start.after(quick));
        let mut backoff = Backoff::started(start.after(quick), Some(&backoff));
        let now = start.after(quick * 2);
        backoff.ended_on_request(now);
        assert!(backoff.restart_due(now));
        // The crash after it waits as the second quick end in a row would.
        let mut next = Backoff::started(now, Some(&backoff));
        next.ended(now.after(quick));
        assert_eq!(
            next.until_restart(now.after(quick)),
            Duration::from_millis(25)
        );
    }

    #[test]
    fn a_first_start_may_be_restarted_at_once() {
        let now = Instant::from_nanos(5 * MS);
        let backoff = Backoff::started(now, None);
        assert!(backoff.restart_due(now));
        assert_eq!(backoff.until_restart(now), Duration::ZERO);
    }
}
