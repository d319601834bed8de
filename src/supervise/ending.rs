//! A worker process the host asked to end: SIGTERM first, SIGKILL once its grace has
//! passed, and what follows its end (a restart, or none).

use core::time::Duration;

use crate::clock::Instant;

/// How long a worker asked to end gets between SIGTERM and SIGKILL, unless the host sets
/// another grace: long enough for a server to flush and exit, short enough that a hung one
/// does not hold its slot for long.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// What the host asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndKind {
    /// A new process takes its place, as after a crash.
    Restart,
    /// No process takes its place: the pool serves with its other workers.
    Stop,
}

/// One process being ended on request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ending {
    pub(crate) kind: EndKind,
    /// When it is killed if it has not exited; `None` once it was.
    kill_at: Option<Instant>,
}

impl Ending {
    /// Asked at `now` (SIGTERM sent), to be killed after `grace`.
    pub(crate) fn begin(kind: EndKind, now: Instant, grace: Duration) -> Self {
        Self {
            kind,
            kill_at: Some(now.after(grace)),
        }
    }

    /// Whether SIGKILL is due at `now`; once it says so, it never says so again.
    pub(crate) fn kill_due(&mut self, now: Instant) -> bool {
        match self.kill_at {
            Some(at) if now >= at => {
                self.kill_at = None;
                true
            }
            _ => false,
        }
    }

    /// How long after `now` SIGKILL is due, if it still is.
    pub(crate) fn until_kill(&self, now: Instant) -> Option<Duration> {
        self.kill_at.map(|at| now.until(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_worker_is_killed_once_after_its_grace() {
        let start = Instant::from_nanos(1_000 * MS);
        let grace = Duration::from_millis(300);
        let mut ending = Ending::begin(EndKind::Stop, start, grace);
        assert_eq!(ending.until_kill(start), Some(grace));
        assert!(!ending.kill_due(start.after(Duration::from_millis(299))));
        assert_eq!(
            ending.until_kill(start.after(Duration::from_millis(100))),
            Some(Duration::from_millis(200))
        );
        assert!(ending.kill_due(start.after(grace)));
        assert!(!ending.kill_due(start.after(grace * 2)), "killed once");
        assert_eq!(ending.until_kill(start.after(grace)), None);
        assert_eq!(ending.kind, EndKind::Stop);
    }

    #[test]
    fn a_zero_grace_kills_at_once() {
        let now = Instant::from_nanos(5 * MS);
        let mut ending = Ending::begin(EndKind::Restart, now, Duration::ZERO);
        assert_eq!(ending.until_kill(now), Some(Duration::ZERO));
        assert!(ending.kill_due(now));
    }
}
