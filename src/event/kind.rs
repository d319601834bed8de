//! The kinds of event, as the ring stores each in one byte of a record's header.

/// What a record holds. Stored as one byte in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Filler up to the end of the storage: the next record starts at slot 0.
    Padding = 0,
    Message = 1,
    Error = 2,
    Log = 3,
    Worker = 4,
    ClientConnected = 5,
    ClientDisconnected = 6,
    Overflow = 7,
    /// A worker process was reaped; the payload is its wait status, or empty if unknown.
    Exited = 8,
    /// A session left a worker that is gone; the value is the new worker, the payload the
    /// old one (`i32`, native order) and then the session id.
    SessionMoved = 9,
    /// A request the bus handed to a worker whose process ended before answering it; the
    /// value is the worker, the payload the request's raw id.
    Unanswered = 10,
    /// A worker line longer than the kernel takes was dropped; the value is the worker,
    /// the payload the limit (`u64`, native order).
    LineTooLong = 11,
    /// What the bus's supervision did with a worker whose process ended; the value is the
    /// worker, the payload one byte (`RestartReport`): restarting, started, or why not.
    Restart = 12,
}

impl Kind {
    pub(crate) const fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Self::Message,
            2 => Self::Error,
            3 => Self::Log,
            4 => Self::Worker,
            5 => Self::ClientConnected,
            6 => Self::ClientDisconnected,
            7 => Self::Overflow,
            8 => Self::Exited,
            9 => Self::SessionMoved,
            10 => Self::Unanswered,
            11 => Self::LineTooLong,
            12 => Self::Restart,
            // Only this crate writes headers; anything else is treated as filler.
            _ => Self::Padding,
        }
    }
}
