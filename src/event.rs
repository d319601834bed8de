//! What the kernel reports, as typed events borrowed from the ring.

use core::fmt;
use core::str::Utf8Error;

use crate::ErrorCode;
use crate::ring::Overflow;
use crate::ring::record::Kind;

/// One event reported by the kernel, borrowing its bytes from the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// One line a worker (or a listener client) wrote, without its newline, unchanged: it
    /// may be half a JSON object, or not even UTF-8.
    Message(Bytes<'a>),
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
        /// The kernel's worker id.
        id: i32,
        /// What happened.
        event: WorkerEvent<'a>,
    },
    /// A listener client connected.
    ClientConnected {
        /// The kernel's client id.
        id: i32,
        /// The peer's address, as the kernel describes it.
        peer: Bytes<'a>,
    },
    /// A listener client went away.
    ClientDisconnected {
        /// The kernel's client id.
        id: i32,
        /// Why, as the kernel describes it.
        reason: Bytes<'a>,
    },
    /// Events were lost here because the ring was full: everything before this event and
    /// after it arrived intact, in order.
    Overflow(Overflow<'a>),
}

impl<'a> Event<'a> {
    pub(crate) fn decode(kind: Kind, value: i32, payload: &'a [u8]) -> Self {
        let bytes = Bytes(payload);
        match kind {
            Kind::Message | Kind::Padding => Self::Message(bytes),
            Kind::Error => Self::Error {
                code: ErrorCode::from_raw(value),
                text: bytes,
            },
            Kind::Log => Self::Log {
                level: LogLevel::from_raw(value),
                text: bytes,
            },
            Kind::Worker => Self::Worker {
                id: value,
                event: WorkerEvent::from_word(bytes),
            },
            Kind::ClientConnected => Self::ClientConnected {
                id: value,
                peer: bytes,
            },
            Kind::ClientDisconnected => Self::ClientDisconnected {
                id: value,
                reason: bytes,
            },
            Kind::Overflow => Self::Overflow(Overflow::decode(payload)),
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

/// A worker's lifecycle word, as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WorkerEvent<'a> {
    /// The process was spawned.
    Started,
    /// The kernel asked it to stop.
    Stopping,
    /// The process is gone.
    Stopped,
    /// The kernel is restarting it.
    Restarting,
    /// The kernel gave up on it.
    Failed,
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
            b"failed" => Self::Failed,
            _ => Self::Other(word),
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
        assert_eq!(word(b"failed"), WorkerEvent::Failed);
        assert_eq!(word(b"paused"), WorkerEvent::Other(Bytes(b"paused")));
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
