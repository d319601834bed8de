//! What the bus's supervision reports of a worker whose process ended: a restart, or why
//! there is none. The ring keeps it as one byte of a `Kind::Restart` record, never as text.

use core::fmt;

use super::WorkerEvent;

/// Why a worker whose process ended is not restarted, as
/// [`WorkerEvent::Failed`] reports it. The pool serves on with its other workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RestartRefused {
    /// The configuration's `max_restarts` within `restart_window_sec` are used up.
    LimitReached,
    /// The new process could not be forked.
    SpawnFailed,
    /// The kernel had closed the worker's output, so a new process could not be
    /// connected.
    OutputClosed,
    /// The new process could not execute the worker's command: another would fail alike.
    ExecFailed,
}

/// The reason in words: `the restart limit was reached`, ...
impl fmt::Display for RestartRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LimitReached => "the restart limit was reached",
            Self::SpawnFailed => "its restart could not be spawned",
            Self::OutputClosed => {
                "the kernel had closed its output, so a new process could not be connected"
            }
            Self::ExecFailed => "its command could not be executed",
        })
    }
}

/// One report of the supervision, as the bus records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartReport {
    /// The process ended and a new one takes its place ([`WorkerEvent::Restarting`]).
    Restarting,
    /// The new process was spawned ([`WorkerEvent::Started`]).
    Started,
    /// No new process will come ([`WorkerEvent::Failed`]).
    Refused(RestartRefused),
    /// The host asked for its end without a restart ([`WorkerEvent::Stopping`]).
    Stopping,
    /// Its pool's liveness check found it hung; it is being restarted
    /// ([`WorkerEvent::Unresponsive`]).
    Unresponsive,
}

impl RestartReport {
    /// The record's payload: one byte.
    pub(crate) const fn encode(self) -> [u8; 1] {
        [match self {
            Self::Restarting => 0,
            Self::Started => 1,
            Self::Refused(RestartRefused::LimitReached) => 2,
            Self::Refused(RestartRefused::SpawnFailed) => 3,
            Self::Refused(RestartRefused::OutputClosed) => 4,
            Self::Refused(RestartRefused::ExecFailed) => 5,
            Self::Stopping => 6,
            Self::Unresponsive => 7,
        }]
    }

    /// The worker event a record's payload stands for; `None` for a payload this crate
    /// does not write.
    pub(crate) const fn decode(payload: &[u8]) -> Option<Self> {
        let [code] = payload else {
            return None;
        };
        Some(match code {
            0 => Self::Restarting,
            1 => Self::Started,
            2 => Self::Refused(RestartRefused::LimitReached),
            3 => Self::Refused(RestartRefused::SpawnFailed),
            4 => Self::Refused(RestartRefused::OutputClosed),
            5 => Self::Refused(RestartRefused::ExecFailed),
            6 => Self::Stopping,
            7 => Self::Unresponsive,
            _ => return None,
        })
    }

    pub(crate) const fn event<'a>(self) -> WorkerEvent<'a> {
        match self {
            Self::Restarting => WorkerEvent::Restarting,
            Self::Started => WorkerEvent::Started,
            Self::Refused(reason) => WorkerEvent::Failed(reason),
            Self::Stopping => WorkerEvent::Stopping,
            Self::Unresponsive => WorkerEvent::Unresponsive,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn every_report_round_trips_through_its_byte() {
        let reports = [
            RestartReport::Restarting,
            RestartReport::Started,
            RestartReport::Refused(RestartRefused::LimitReached),
            RestartReport::Refused(RestartRefused::SpawnFailed),
            RestartReport::Refused(RestartRefused::OutputClosed),
            RestartReport::Refused(RestartRefused::ExecFailed),
            RestartReport::Stopping,
            RestartReport::Unresponsive,
        ];
        for report in reports {
            assert_eq!(RestartReport::decode(&report.encode()), Some(report));
        }
        assert_eq!(RestartReport::decode(&[8]), None);
        assert_eq!(RestartReport::decode(&[]), None);
        assert_eq!(RestartReport::decode(&[0, 0]), None);
    }

    #[test]
    fn a_refusal_reads_as_the_worker_event_it_was_as_text() {
        let event = RestartReport::Refused(RestartRefused::LimitReached).event();
        assert_eq!(event, WorkerEvent::Failed(RestartRefused::LimitReached));
        assert_eq!(event.to_string(), "failed: the restart limit was reached");
        assert_eq!(
            WorkerEvent::Failed(RestartRefused::ExecFailed).to_string(),
            "failed: its command could not be executed"
        );
        assert_eq!(RestartReport::Started.event(), WorkerEvent::Started);
        assert_eq!(RestartReport::Restarting.event(), WorkerEvent::Restarting);
    }
}
