//! JSON-RPC 2.0 correlation for bare event loops, with no heap.
//!
//! Three pieces, all `core`-only and allocation-free:
//!
//! - [`Request`] writes a request or a notification (`jsonrpc`, `id`, `method`, raw
//!   `params`, optional `sessionId` and `agentId`) into a caller's buffer, escaping every
//!   string and refusing params that are not a JSON object or array.
//! - [`Message::parse`] reads a line a worker wrote, in place: its kind ([`Kind`]), `id`,
//!   `method`, `params`, `result`, `error`, `sessionId` and `agentId`, all borrowed. It
//!   validates the whole line and rejects anything malformed with a [`ScanError`]; it never
//!   panics, whatever the bytes.
//! - [`Pending`] is a fixed-capacity table of requests in flight with deadlines: what the
//!   `request()` futures of the other stdio_bus SDKs give, for a loop with no runtime.
//!   Register an id before sending, hand the table every event the ring gives
//!   ([`Pending::event`]) and call [`Pending::expire`] with the current time; each request
//!   completes exactly once, through a callback, as a result, an error response, a timeout,
//!   or a response lost to a full ring ([`Outcome`]).
//!
//! The table reads no clock: deadlines and `now` are [`Duration`](core::time::Duration)s
//! on a monotonic clock of the caller's choosing (with `std`, the time elapsed since one
//! fixed `Instant`).
//!
//! ```
//! use core::time::Duration;
//! use stdiobus_embed::jsonrpc::{Outcome, Pending, Request};
//!
//! let mut pending = Pending::<8>::new();
//! let mut buf = [0u8; 256];
//! let line = Request::new(7, "tools/list").params(r#"{"cursor":null}"#).write(&mut buf)?;
//! assert_eq!(line, br#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":null}}"#);
//! let now = Duration::ZERO; // the caller's monotonic clock, e.g. since one `Instant`
//! pending.register(7, now + Duration::from_secs(5))?; // a deadline, not a timeout
//! // bus.send(line)?; ... then, for each event read from the ring:
//! let response = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}"#;
//! let mut got = None;
//! pending.message(response, |done| {
//!     if let Outcome::Result(result) = done.outcome {
//!         got = Some(result.len());
//!     }
//! });
//! assert_eq!(got, Some(r#"{"tools":[]}"#.len()));
//! assert!(pending.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

mod pending;
pub(crate) mod response_id;
mod scan;
mod writer;

#[cfg(test)]
mod tests;

pub use pending::{Completion, Fed, Outcome, Pending, RegisterError};
pub use scan::{JsonChars, JsonStr, Kind, Message, MessageId, RpcError, ScanError, member};
pub use writer::{Request, WriteError};

/// A request id as the host chooses it: an integer or a string.
///
/// JSON-RPC also allows `null` and fractional numbers; neither can be told apart reliably
/// from a response, so neither can be sent or registered here. `Int(1)` and `Str("1")` are
/// different ids, as they are in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Id<'a> {
    /// A JSON integer.
    Int(i64),
    /// A JSON string, unescaped (the writer escapes it).
    Str(&'a str),
}

/// Every integer type that fits in an `i64`. For `u64` and `usize`, whose values may not,
/// convert with `i64::try_from` first.
macro_rules! id_from_integer {
    ($($int:ty),*) => {$(
        impl From<$int> for Id<'_> {
            fn from(n: $int) -> Self {
                Self::Int(i64::from(n))
            }
        }
    )*};
}
id_from_integer!(i8, i16, i32, i64, u8, u16, u32);

impl<'a> From<&'a str> for Id<'a> {
    fn from(s: &'a str) -> Self {
        Self::Str(s)
    }
}

/// Shows the id as JSON would: `42`, or the string in quotes (unescaped).
impl fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Str(s) => write!(f, "\"{s}\""),
        }
    }
}
