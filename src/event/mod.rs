//! What the kernel reports, as typed events borrowed from the ring.

mod kind;
pub(crate) mod lost_ids;
mod overflow;
mod restart;

pub(crate) use kind::Kind;
pub(crate) use overflow::{LOSS_LEN, encode_loss};
pub use overflow::{Loss, Overflow};
pub use restart::RestartRefused;
pub(crate) use restart::RestartReport;

use core::fmt;
use core::str::Utf8Error;

use crate::{ClientId, ErrorCode, WorkerId};

/// One event reported by the kernel, borrowing its bytes from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// One line a worker wrote, without its newline, unchanged: it may be half a JSON
    /// object, or not even UTF-8.
    Message {
        /// The worker that wrote it (its id, as [`Event::Worker`] reports it); `None` for an
        /// embedded worker, and where the kernel's reads are not interposed (Apple
        /// targets).
        worker: Option<WorkerId>,
        /// The line.
        line: Bytes<'a>,
    },
    /// The kernel reported an error.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// The kernel's description.
        text: Bytes<'a>,
    },
    /// A kernel log line.
    Log {
        /// Its severity.
        level: LogLevel,
        /// The line, without a newline.
        text: Bytes<'a>,
    },
    /// A worker changed state.
    Worker {
        /// The worker.
        id: WorkerId,
        /// What happened.
        event: WorkerEvent<'a>,
    },
    /// A listener client connected.
    ClientConnected {
        /// The client.
        id: ClientId,
        /// The peer's address, as the kernel describes it.
        peer: Bytes<'a>,
    },
    /// A listener client went away.
    ClientDisconnected {
        /// The client.
        id: ClientId,
        /// Why, as the kernel describes it.
        reason: Bytes<'a>,
    },
    /// Messages of a session went to a new worker because the one that had the session
    /// is gone (with [`Bus::set_session_table`](crate::Bus::set_session_table)); the new
    /// worker does not know what the old one did for the session.
    SessionMoved {
        /// The `sessionId`, decoded.
        session: Bytes<'a>,
        /// The worker that had it.
        from: WorkerId,
        /// The worker that has it now: `from` again when that worker was restarted (a
        /// new process).
        to: WorkerId,
    },
    /// A line `worker` wrote was longer than the kernel takes (`limit` bytes, its newline
    /// included: the configuration's `max_input_buffer`, or the archive's default), and
    /// was dropped whole. Without the bus the kernel would close the worker's output. The
    /// worker's other lines come through; recorded under `EventMask::MESSAGE`, once the
    /// line's end has been read (or the worker's output ended).
    LineTooLong {
        /// The worker that wrote it.
        worker: WorkerId,
        /// The longest line taken.
        limit: usize,
        /// The `id` of the response the line was, as raw JSON, when its first or last
        /// bytes show it (an `id` before any `method`, or as the object's last member);
        /// the request table, if any, no longer holds that request. `None` for a request
        /// or a notification, or when neither end shows it.
        id: Option<Bytes<'a>>,
    },
    /// A request the bus handed to `worker` will not be answered: the worker's process
    /// ended first (with [`Bus::set_request_table`](crate::Bus::set_request_table)).
    Unanswered {
        /// The worker it went to.
        worker: WorkerId,
        /// The request's `id`, as raw JSON (`"req-1"` with its quotes, or `42`).
        id: Bytes<'a>,
    },
    /// Events were lost here because the ring was full: everything before this event and
    /// after it arrived intact, in order.
    Overflow(Overflow<'a>),
}

impl<'a> Event<'a> {
    pub(crate) fn decode(kind: Kind, value: i32, payload: &'a [u8]) -> Self {
        let bytes = Bytes(payload);
        match kind {
            Kind::Message | Kind::Padding => Self::Message {
                worker: (value >= 0 && kind == Kind::Message).then(|| WorkerId::from_raw(value)),
                line: bytes,
            },
            Kind::Error => Self::Error {
                code: ErrorCode::from_raw(value),
                text: bytes,
            },
            Kind::Log => Self::Log {
                level: LogLevel::from_raw(value),
                text: bytes,
            },
            Kind::Worker => Self::Worker {
                id: WorkerId::from_raw(value),
                event: WorkerEvent::from_word(bytes),
            },
            Kind::ClientConnected => Self::ClientConnected {
                id: ClientId::from_raw(value),
                peer: bytes,
            },
            Kind::ClientDisconnected => Self::ClientDisconnected {
                id: ClientId::from_raw(value),
                reason: bytes,
            },
            Kind::Overflow => Self::Overflow(Overflow::decode(payload)),
            Kind::LineTooLong => {
                let (limit, id) = payload.split_at(payload.len().min(8));
                Self::LineTooLong {
                    worker: WorkerId::from_raw(value),
                    limit: limit
                        .try_into()
                        .map_or(0, |limit| u64::from_ne_bytes(limit) as usize),
                    id: (!id.is_empty()).then_some(Bytes(id)),
                }
            }
            Kind::Unanswered => Self::Unanswered {
                worker: WorkerId::from_raw(value),
                id: bytes,
            },
            Kind::SessionMoved => {
                let (from, session) = payload.split_at(payload.len().min(4));
                Self::SessionMoved {
                    session: Bytes(session),
                    from: WorkerId::from_raw(from.try_into().map_or(-1, i32::from_ne_bytes)),
                    to: WorkerId::from_raw(value),
                }
            }
            Kind::Exited => Self::Worker {
                id: WorkerId::from_raw(value),
                event: WorkerEvent::Exited(ExitStatus::decode(payload)),
            },
            Kind::Restart => Self::Worker {
                id: WorkerId::from_raw(value),
                event: RestartReport::decode(payload)
                    .map_or(WorkerEvent::Other(bytes), RestartReport::event),
            },
        }
    }
}

/// Bytes the kernel handed over: untrusted, not necessarily UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The bytes as text, if they are valid UTF-8.
    pub const fn to_str(&self) -> Result<&'a str, Utf8Error> {
        core::str::from_utf8(self.0)
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
impl Bytes<'static> {
    /// Test helper: owned bytes that live for the rest of the test process.
    pub(crate) fn leak(bytes: std::vec::Vec<u8>) -> Self {
        extern crate std;
        Bytes(std::vec::Vec::leak(bytes))
    }
}

impl AsRef<[u8]> for Bytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

impl PartialEq<[u8]> for Bytes<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<str> for Bytes<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// Shows the text, with U+FFFD for bytes that are not UTF-8; allocates nothing.
impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// What happened to a worker: the kernel's lifecycle words, and what the bus's supervision
/// reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WorkerEvent<'a> {
    /// The process was spawned.
    Started,
    /// It is asked to stop: by the kernel, or by the host
    /// ([`Bus::stop_worker`](crate::Bus::stop_worker)).
    Stopping,
    /// The process is gone.
    Stopped,
    /// Its process ended and another takes its place (a `Started` follows), under the
    /// same worker id, in its pool; requests it had not answered are not resent.
    Restarting,
    /// Its process ended and no other will take its place, for this reason (reported by
    /// the bus, after [`WorkerEvent::Exited`]).
    Failed(RestartRefused),
    /// The process ended and was reaped; the kernel no longer hands it messages. Reported
    /// by the bus, after the worker's last output.
    Exited(ExitStatus),
    /// Its pool's liveness check ([`Bus::set_liveness`](crate::Bus::set_liveness)) found
    /// it with requests in flight and no output for the pool's limit: it is being
    /// restarted (`Exited`, its requests `Unanswered`, `Restarting` and `Started` follow).
    Unresponsive,
    /// A word this crate does not know, kept as the kernel wrote it.
    Other(Bytes<'a>),
}

impl<'a> WorkerEvent<'a> {
    fn from_word(word: Bytes<'a>) -> Self {
        match word.as_bytes() {
            b"started" => Self::Started,
            b"stopping" => Self::Stopping,
            b"stopped" => Self::Stopped,
            b"restarting" => Self::Restarting,
            _ => Self::Other(word),
        }
    }
}

/// The kernel's lifecycle word (`started`, `stopped`, ...), `exited (<status>)`, or
/// `failed: <reason>`.
impl fmt::Display for WorkerEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started => f.write_str("started"),
            Self::Stopping => f.write_str("stopping"),
            Self::Unresponsive => f.write_str("unresponsive"),
            Self::Stopped => f.write_str("stopped"),
            Self::Restarting => f.write_str("restarting"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
            Self::Exited(status) => write!(f, "exited ({status})"),
            Self::Other(word) => word.fmt(f),
        }
    }
}

/// How a worker process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// Someone else reaped it first (a host that ignores SIGCHLD, say): its status is
    /// gone.
    Unknown,
}

impl ExitStatus {
    /// From a `waitpid` status word.
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            Self::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Self::Signal(libc::WTERMSIG(status))
        } else {
            Self::Unknown
        }
    }

    /// The record payload for `status`: the status word, or nothing when unknown.
    pub(crate) fn encode(status: Option<i32>) -> ([u8; 4], usize) {
        match status {
            Some(status) => (status.to_ne_bytes(), 4),
            None => ([0; 4], 0),
        }
    }

    fn decode(payload: &[u8]) -> Self {
        match <[u8; 4]>::try_from(payload) {
            Ok(word) => Self::from_wait_status(i32::from_ne_bytes(word)),
            Err(_) => Self::Unknown,
        }
    }

    /// Whether it exited with code 0.
    pub const fn success(&self) -> bool {
        matches!(self, Self::Code(0))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => write!(f, "signal {signal}"),
            Self::Unknown => f.write_str("unknown status"),
        }
    }
}

/// Log severity, shared by kernel log events and [`Options::log_level`](crate::Options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LogLevel {
    /// Everything, including per-connection chatter.
    Debug = 0,
    /// Lifecycle milestones.
    Info = 1,
    /// Problems the kernel recovered from.
    #[default]
    Warn = 2,
    /// Failures.
    Error = 3,
}

impl LogLevel {
    /// Maps the kernel's integer; values outside 0..=3 clamp to the nearest level.
    pub const fn from_raw(level: i32) -> Self {
        match level {
            i32::MIN..=0 => Self::Debug,
            1 => Self::Info,
            2 => Self::Warn,
            _ => Self::Error,
        }
    }

    /// The kernel's integer for this level.
    pub const fn raw(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_words_map_to_variants() {
        let word = |w: &'static [u8]| WorkerEvent::from_word(Bytes(w));
        assert_eq!(word(b"started"), WorkerEvent::Started);
        assert_eq!(word(b"stopping"), WorkerEvent::Stopping);
        assert_eq!(word(b"stopped"), WorkerEvent::Stopped);
        assert_eq!(word(b"restarting"), WorkerEvent::Restarting);
        assert_eq!(word(b"paused"), WorkerEvent::Other(Bytes(b"paused")));
        // Only the bus reports refused restarts, typed: never read back from text.
        assert_eq!(word(b"failed"), WorkerEvent::Other(Bytes(b"failed")));
    }

    #[test]
    fn restart_records_read_as_typed_worker_events() {
        let id = WorkerId::new(2);
        let report = |report: RestartReport| {
            let payload = std::vec::Vec::from(report.encode());
            Event::decode(Kind::Restart, id.raw(), std::vec::Vec::leak(payload))
        };
        let refused = RestartRefused::OutputClosed;
        assert_eq!(
            report(RestartReport::Refused(refused)),
            Event::Worker {
                id,
                event: WorkerEvent::Failed(refused)
            }
        );
        assert_eq!(
            report(RestartReport::Restarting),
            Event::Worker {
                id,
                event: WorkerEvent::Restarting
            }
        );
        assert_eq!(
            Event::decode(Kind::Restart, id.raw(), b"?"),
            Event::Worker {
                id,
                event: WorkerEvent::Other(Bytes(b"?"))
            }
        );
    }

    #[test]
    fn exit_statuses_round_trip_through_the_record_payload() {
        let through = |status: Option<i32>| {
            let (bytes, len) = ExitStatus::encode(status);
            ExitStatus::decode(&bytes[..len])
        };
        assert_eq!(through(Some(3 << 8)), ExitStatus::Code(3));
        assert_eq!(through(Some(0)), ExitStatus::Code(0));
        assert!(through(Some(0)).success());
        assert_eq!(
            through(Some(libc::SIGKILL)),
            ExitStatus::Signal(libc::SIGKILL)
        );
        assert_eq!(through(None), ExitStatus::Unknown);
    }

    #[test]
    fn bytes_show_invalid_utf8_as_replacement() {
        extern crate std;
        use std::string::ToString;
        let bytes = Bytes(b"ok \xff\xfe end");
        assert!(bytes.to_str().is_err());
        assert_eq!(bytes.to_string(), "ok \u{FFFD}\u{FFFD} end");
    }
}
