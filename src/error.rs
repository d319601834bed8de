//! Errors: the kernel's codes, typed, and what this crate refuses before the kernel sees it.

use core::fmt;

use crate::config::ConfigError;
use crate::{WorkerId, sys};

/// Whether repeating the failed call can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Retry {
    /// The condition is temporary: poll, then try again.
    Yes,
    /// It depends on something the error alone cannot tell; see the variant's docs.
    Maybe,
    /// The same call will fail the same way.
    No,
}

/// A status code returned by the kernel (or passed to its error callback).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode {
    /// `-1`: generic failure.
    Generic,
    /// `-2`: the operation would block.
    WouldBlock,
    /// `-3`: the peer closed.
    Eof,
    /// `-4`: a buffer or queue is full.
    Full,
    /// `-5`: not found.
    NotFound,
    /// `-6`: invalid argument.
    InvalidArgument,
    /// `-10`: the configuration was refused.
    Config,
    /// `-11`: a worker could not be spawned or written to. On `send` this is also what a
    /// worker's full stdin pipe looks like (about 60 KiB unread), so retrying after the
    /// worker drains can succeed; a [`WorkerEvent::Stopped`](crate::WorkerEvent) for that
    /// worker means it will not.
    Worker,
    /// `-12`: the message could not be routed.
    Routing,
    /// `-13`: a buffer overflowed.
    Buffer,
    /// `-14`: the argument or message is invalid (for `send`: not JSON).
    Invalid,
    /// `-15`: the call is not allowed in the kernel's current state.
    State,
    /// A negative code this crate does not know.
    Unknown(i32),
}

impl ErrorCode {
    /// Maps a raw kernel code.
    pub const fn from_raw(code: i32) -> Self {
        match code {
            sys::STDIO_BUS_ERR => Self::Generic,
            sys::STDIO_BUS_EAGAIN => Self::WouldBlock,
            sys::STDIO_BUS_EOF => Self::Eof,
            sys::STDIO_BUS_EFULL => Self::Full,
            sys::STDIO_BUS_ENOTFOUND => Self::NotFound,
            sys::STDIO_BUS_EINVAL => Self::InvalidArgument,
            sys::STDIO_BUS_ERR_CONFIG => Self::Config,
            sys::STDIO_BUS_ERR_WORKER => Self::Worker,
            sys::STDIO_BUS_ERR_ROUTING => Self::Routing,
            sys::STDIO_BUS_ERR_BUFFER => Self::Buffer,
            sys::STDIO_BUS_ERR_INVALID => Self::Invalid,
            sys::STDIO_BUS_ERR_STATE => Self::State,
            other => Self::Unknown(other),
        }
    }

    /// The raw kernel code.
    pub const fn raw(self) -> i32 {
        match self {
            Self::Generic => sys::STDIO_BUS_ERR,
            Self::WouldBlock => sys::STDIO_BUS_EAGAIN,
            Self::Eof => sys::STDIO_BUS_EOF,
            Self::Full => sys::STDIO_BUS_EFULL,
            Self::NotFound => sys::STDIO_BUS_ENOTFOUND,
            Self::InvalidArgument => sys::STDIO_BUS_EINVAL,
            Self::Config => sys::STDIO_BUS_ERR_CONFIG,
            Self::Worker => sys::STDIO_BUS_ERR_WORKER,
            Self::Routing => sys::STDIO_BUS_ERR_ROUTING,
            Self::Buffer => sys::STDIO_BUS_ERR_BUFFER,
            Self::Invalid => sys::STDIO_BUS_ERR_INVALID,
            Self::State => sys::STDIO_BUS_ERR_STATE,
            Self::Unknown(code) => code,
        }
    }

    /// Whether repeating the call can help.
    pub const fn retry(self) -> Retry {
        match self {
            Self::WouldBlock | Self::Full => Retry::Yes,
            Self::Eof | Self::Worker => Retry::Maybe,
            _ => Retry::No,
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Self::Generic => "generic failure",
            Self::WouldBlock => "the operation would block",
            Self::Eof => "the peer closed",
            Self::Full => "a buffer or queue is full",
            Self::NotFound => "not found",
            Self::InvalidArgument => "invalid argument",
            Self::Config => "the configuration was refused",
            Self::Worker => "a worker could not be spawned or written to",
            Self::Routing => "the message could not be routed",
            Self::Buffer => "a buffer overflowed",
            Self::Invalid => "invalid argument or message",
            Self::State => "not allowed in the kernel's current state",
            Self::Unknown(_) => "unknown kernel code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (kernel code {})", self.describe(), self.raw())
    }
}

/// Everything a bus call can fail with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A kernel call returned this code.
    Kernel(ErrorCode),
    /// `stdio_bus_create` refused the options. The kernel says why only on stderr, and
    /// reports an [`Event::Error`](crate::Event) with code [`ErrorCode::Config`].
    CreateFailed,
    /// The configuration was refused before it reached the kernel.
    Config(ConfigError),
    /// The listener options were refused before they reached the kernel.
    Listener(&'static str),
    /// `send` was given no bytes.
    EmptyMessage,
    /// `send` was given a NUL byte, which the kernel would cut the message at.
    InteriorNul {
        /// Offset of the first NUL.
        offset: usize,
    },
    /// Message `message` (counted from 0) of a [`Bus::send_batch`](crate::Bus::send_batch)
    /// is not one JSON value, or is an empty line: the kernel, which checks only a call's
    /// first message, would hand it on as it is. Nothing of the batch was sent.
    BatchNotJson {
        /// Its index in the batch.
        message: usize,
    },
    /// Message `message` of a batch names another pool, or another session, than the
    /// first, whose worker gets them all. Nothing of the batch was sent.
    MixedBatch {
        /// Its index in the batch.
        message: usize,
    },
    /// A worker's stdin pipe has no room for the whole message now; the kernel would
    /// write part of it and drop the rest. Poll, then retry.
    PipeFull {
        /// Bytes the message needs, its newline included.
        needed: usize,
        /// Bytes the fullest worker pipe can take now.
        room: usize,
    },
    /// The message is longer than a worker's stdin pipe can ever hold in one write.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The longest message the pipes take.
        max: usize,
    },
    /// More workers were asked for than a bus can track (see
    /// [`ConfigError::TooManyWorkers`]).
    TooManyWorkers {
        /// The most a bus tracks.
        max: usize,
    },
    /// `start` could not spawn every configured worker (the kernel's reason went to
    /// stderr); the bus ends those it spawned when dropped.
    SpawnFailed {
        /// Worker processes running.
        spawned: usize,
        /// Workers the configuration asks for.
        configured: usize,
    },
    /// Worker `worker` could not execute its command: `execvp` failed with `errno`
    /// (`ENOENT` for a command that is not there, `EACCES` for one that may not be run).
    /// The bus ends the other workers when dropped.
    ExecFailed {
        /// The worker, in configuration order.
        worker: WorkerId,
        /// The error `execvp` returned.
        errno: i32,
    },
    /// Worker `worker` could not enter its pool's working directory (`cwd`): `chdir`
    /// failed with `errno` (`ENOENT` for a directory that is not there). The bus ends the
    /// other workers when dropped.
    CwdFailed {
        /// The worker, in configuration order.
        worker: WorkerId,
        /// The error `chdir` returned.
        errno: i32,
    },
    /// The kernel needed a new file descriptor and no number below 1024, the most it can
    /// serve, was free: close some of the host's descriptors, or open them above 1024.
    NoLowDescriptor,
    /// No worker process is left to take the message: every worker of its pool has
    /// exited. Retrying can succeed once a worker has been restarted.
    NoWorker,
    /// With two or more pools, a message must name its pool: a top-level `"pool"` string,
    /// or [`Bus::send_to_pool`](crate::Bus::send_to_pool).
    PoolNotNamed,
    /// The message names a pool the configuration does not have (or one whose id is
    /// longer than [`PoolIdText::CAPACITY`](crate::config::PoolIdText::CAPACITY) bytes,
    /// which cannot be named).
    UnknownPool,
    /// [`Bus::send_to_worker`](crate::Bus::send_to_worker),
    /// [`Bus::restart_worker`](crate::Bus::restart_worker) or
    /// [`Bus::stop_worker`](crate::Bus::stop_worker) named a worker id the bus does not
    /// have.
    NoSuchWorker {
        /// The id asked for.
        id: WorkerId,
    },
    /// [`Bus::send_to_worker`](crate::Bus::send_to_worker),
    /// [`Bus::restart_worker`](crate::Bus::restart_worker) or
    /// [`Bus::stop_worker`](crate::Bus::stop_worker) named a worker whose process has
    /// exited, or is being ended on the host's request.
    WorkerGone {
        /// The worker.
        id: WorkerId,
    },
    /// The message's `sessionId` is longer than a session table keeps.
    SessionIdTooLong {
        /// Its length, in bytes of decoded text.
        len: usize,
        /// The longest kept.
        max: usize,
    },
    /// The request's `id` is longer than the request table keeps.
    RequestIdTooLong {
        /// Its length, in bytes of raw JSON.
        len: usize,
        /// The longest kept.
        max: usize,
    },
    /// A request with this `id` is in flight already (in the request table): its
    /// response could not be told apart. Poll until it is answered, then retry.
    RequestIdInFlight,
    /// The request table has no free slot: every slot holds a request not answered yet.
    /// Poll (responses free their slots), then retry.
    RequestTableFull {
        /// Slots in the table.
        capacity: usize,
    },
    /// The message starts a session and the session table has no free slot: end sessions
    /// with [`Bus::end_session`](crate::Bus::end_session), or give the bus a larger table.
    SessionTableFull {
        /// Slots in the table.
        capacity: usize,
    },
    /// `poll` did not step the kernel: the ring has less free space than the poll reserve
    /// ([`Options::poll_reserve`](crate::Options::poll_reserve)). Read events, then poll
    /// again. Meanwhile the kernel reads no worker output, so the workers, not the host,
    /// hold what is pending.
    RingFull {
        /// Free bytes in the ring.
        free: usize,
        /// The reserve asked for.
        reserve: usize,
    },
    /// A blocking `stop` did not see the kernel reach STOPPED in time.
    StopTimedOut,
    /// [`Bus::set_liveness`](crate::Bus::set_liveness) needs a request table
    /// ([`Bus::set_request_table`](crate::Bus::set_request_table)): without one the bus
    /// cannot tell a worker with requests in flight from an idle one.
    NoRequestTable,
}

impl Error {
    /// The raw kernel code, when the kernel produced this error.
    pub const fn code(&self) -> Option<i32> {
        match self {
            Self::Kernel(code) => Some(code.raw()),
            _ => None,
        }
    }

    /// Whether repeating the call can help.
    pub const fn retry(&self) -> Retry {
        match self {
            Self::Kernel(code) => code.retry(),
            Self::StopTimedOut
            | Self::PipeFull { .. }
            | Self::RingFull { .. }
            | Self::RequestTableFull { .. }
            | Self::RequestIdInFlight => Retry::Yes,
            // A restart may bring a worker back (or not: the limit).
            Self::NoWorker | Self::WorkerGone { .. } => Retry::Maybe,
            _ => Retry::No,
        }
    }

    /// Shorthand for `self.retry() != Retry::No`.
    pub const fn is_retryable(&self) -> bool {
        !matches!(self.retry(), Retry::No)
    }

    /// Turns a kernel return value into a result: negative values are errors.
    pub(crate) fn check(rc: cty::c_int) -> Result<cty::c_int, Self> {
        if rc < 0 {
            Err(Self::Kernel(ErrorCode::from_raw(rc)))
        } else {
            Ok(rc)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel(code) => write!(f, "stdio_bus: {code}"),
            Self::CreateFailed => f.write_str(
                "stdio_bus: the kernel refused the options or configuration (its reason went to stderr)",
            ),
            Self::Config(error) => write!(f, "invalid configuration: {error}"),
            Self::Listener(reason) => write!(f, "invalid listener: {reason}"),
            Self::EmptyMessage => f.write_str("refused an empty message"),
            Self::InteriorNul { offset } => {
                write!(f, "refused a message with a NUL byte at offset {offset}")
            }
            Self::BatchNotJson { message } => write!(
                f,
                "refused a batch: its message {message} is not one JSON value"
            ),
            Self::MixedBatch { message } => write!(
                f,
                "refused a batch: its message {message} names another pool or session than the first, whose worker takes them all"
            ),
            Self::PipeFull { needed, room } => write!(
                f,
                "a worker's stdin pipe has room for {room} bytes, the message needs {needed}: poll, then retry"
            ),
            Self::TooLarge { len, max } => write!(
                f,
                "the message is {len} bytes; worker pipes take at most {max} in one piece"
            ),
            Self::TooManyWorkers { max } => {
                write!(f, "more workers than the {max} a bus tracks")
            }
            Self::SpawnFailed {
                spawned,
                configured,
            } => write!(
                f,
                "the kernel spawned {spawned} of {configured} workers (its reason went to stderr)"
            ),
            Self::ExecFailed { worker, errno } => write!(
                f,
                "worker {worker} could not execute its command: {}",
                ExecErrno(*errno)
            ),
            Self::CwdFailed { worker, errno } => write!(
                f,
                "worker {worker} could not enter its working directory (cwd): {}",
                ExecErrno(*errno)
            ),
            Self::NoLowDescriptor => f.write_str(
                "no file descriptor number below 1024 is free, and the kernel can use no other",
            ),
            Self::NoWorker => f.write_str("every worker process of the pool has exited: nothing can take the message"),
            Self::PoolNotNamed => f.write_str("the bus has several pools and the message names none (a top-level \"pool\" string)"),
            Self::UnknownPool => f.write_str("the message names a pool the configuration does not have"),
            Self::NoSuchWorker { id } => write!(f, "the bus has no worker {id}"),
            Self::WorkerGone { id } => write!(f, "worker {id} has exited or is being ended"),
            Self::SessionIdTooLong { len, max } => write!(f, "the sessionId is {len} bytes; a session table keeps at most {max}"),
            Self::RequestIdTooLong { len, max } => write!(f, "the request id is {len} bytes of JSON; the request table keeps at most {max}"),
            Self::RequestIdInFlight => f.write_str("a request with this id is in flight already"),
            Self::RequestTableFull { capacity } => write!(f, "the request table's {capacity} slots all await responses: poll, then retry"),
            Self::SessionTableFull { capacity } => write!(f, "the session table's {capacity} slots are all taken: end sessions, or use a larger table"),
            Self::RingFull { free, reserve } => write!(
                f,
                "the event ring has {free} bytes free, less than the {reserve} kept for a poll: read events first"
            ),
            Self::StopTimedOut => f.write_str("the kernel did not reach STOPPED before the deadline"),
            Self::NoRequestTable => f.write_str("a liveness check needs a request table, to know which workers have requests in flight"),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            _ => None,
        }
    }
}

/// An `execvp` errno, worded for the errors an exec can give.
struct ExecErrno(i32);

impl fmt::Display for ExecErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0 {
            libc::ENOENT => "no such file or directory on the PATH",
            libc::EACCES => "permission denied",
            libc::ENOEXEC => "not an executable format",
            libc::ENOTDIR => "a path component is not a directory",
            libc::ELOOP => "too many symbolic links",
            libc::ENAMETOOLONG => "the name is too long",
            libc::E2BIG => "the argument list is too long",
            libc::ENOMEM => "out of memory",
            libc::ETXTBSY => "the file is open for writing",
            _ => "",
        };
        if what.is_empty() {
            write!(f, "errno {}", self.0)
        } else {
            write!(f, "{what} (errno {})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips() {
        for raw in [-1, -2, -3, -4, -5, -6, -10, -11, -12, -13, -14, -15, -99] {
            assert_eq!(ErrorCode::from_raw(raw).raw(), raw);
        }
        assert_eq!(ErrorCode::from_raw(-99), ErrorCode::Unknown(-99));
    }

    #[test]
    fn retry_follows_the_kernel_table() {
        assert_eq!(ErrorCode::WouldBlock.retry(), Retry::Yes);
        assert_eq!(ErrorCode::Full.retry(), Retry::Yes);
        assert_eq!(ErrorCode::Eof.retry(), Retry::Maybe);
        assert_eq!(ErrorCode::Worker.retry(), Retry::Maybe);
        assert_eq!(ErrorCode::Invalid.retry(), Retry::No);
        assert_eq!(ErrorCode::State.retry(), Retry::No);
        assert!(!Error::EmptyMessage.is_retryable());
        assert_eq!(Error::Kernel(ErrorCode::Invalid).code(), Some(-14));
    }
}
