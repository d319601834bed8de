//! Whether a worker still answers: one with requests in flight that has written nothing
//! for its pool's limit is hung (a deadlock, a SIGSTOP, an endless loop).
//!
//! The worker's reads only count its output (one increment per read); this compares the
//! count at checks, which the supervision timer makes, so a busy worker costs nothing per
//! message. A worker is seen silent between two checks at least `limit` apart, with
//! requests in flight at both and no output in between: no request can have been answered
//! meanwhile (an answer is output), so requests were in flight all that time.

use core::time::Duration;

use crate::clock::Instant;

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Nothing to watch: no request in flight.
    Idle,
    /// Requests in flight; checked again at this instant.
    Watching(Instant),
    /// Requests in flight and no output for the limit: restart it.
    Hung,
}

/// The watch over one worker process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    /// The longest silence allowed while requests are in flight.
    pub(crate) limit: Duration,
    /// Since when the worker has had requests in flight and written nothing: the output
    /// count then, and the instant; `None` while idle.
    silent_since: Option<(u32, Instant)>,
}

impl Watch {
    pub(crate) const fn new(limit: Duration) -> Self {
        Self {
            limit,
            silent_since: None,
        }
    }

    /// Whether the worker is idle as far as the watch knows: a request sent to it now
    /// starts the watch ([`Watch::check`] right away).
    pub(crate) const fn is_idle(&self) -> bool {
        self.silent_since.is_none()
    }

    /// The next check, if one is due.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.silent_since.map(|(_, since)| since.after(self.limit))
    }

    /// Checks the worker at `now`: `output` is its output count, `busy` whether requests
    /// are in flight to it.
    pub(crate) fn check(&mut self, now: Instant, output: u32, busy: bool) -> Liveness {
        if !busy {
            self.silent_since = None;
            return Liveness::Idle;
        }
        match self.silent_since {
            Some((count, since)) if count == output => {
                if now >= since.after(self.limit) {
                    Liveness::Hung
                } else {
                    Liveness::Watching(since.after(self.limit))
                }
            }
            _ => {
                self.silent_since = Some((output, now));
                Liveness::Watching(now.after(self.limit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(1_000_000 * MS + ms * MS)
    }

    #[test]
    fn a_busy_silent_worker_is_hung_after_the_limit() {
        let mut watch = Watch::new(Duration::from_millis(500));
        assert!(watch.is_idle());
        assert_eq!(watch.check(at(0), 7, true), Liveness::Watching(at(500)));
        assert!(!watch.is_idle());
        assert_eq!(watch.next_check(), Some(at(500)));
        assert_eq!(watch.check(at(499), 7, true), Liveness::Watching(at(500)));
        assert_eq!(watch.check(at(500), 7, true), Liveness::Hung);
    }

    #[test]
    fn output_starts_the_silence_over() {
        let mut watch = Watch::new(Duration::from_millis(500));
        watch.check(at(0), 7, true);
        assert_eq!(watch.check(at(500), 8, true), Liveness::Watching(at(1000)));
        assert_eq!(watch.check(at(999), 8, true), Liveness::Watching(at(1000)));
        assert_eq!(watch.check(at(1000), 8, true), Liveness::Hung);
    }

    #[test]
    fn an_idle_worker_is_never_hung_however_quiet() {
        let mut watch = Watch::new(Duration::from_millis(500));
        watch.check(at(0), 7, true);
        assert_eq!(watch.check(at(400), 7, false), Liveness::Idle);
        assert!(watch.is_idle());
        assert_eq!(watch.next_check(), None);
        assert_eq!(watch.check(at(10_000), 7, false), Liveness::Idle);
        // Busy again: the silence counts from this check, not from the last output.
        assert_eq!(
            watch.check(at(10_000), 7, true),
            Liveness::Watching(at(10_500))
        );
        assert_eq!(
            watch.check(at(10_499), 7, true),
            Liveness::Watching(at(10_500))
        );
    }

    #[test]
    fn the_output_count_may_wrap() {
        let mut watch = Watch::new(Duration::from_millis(10));
        watch.check(at(0), u32::MAX, true);
        assert_eq!(watch.check(at(10), 0, true), Liveness::Watching(at(20)));
    }
}
