//! Writing requests and notifications into a caller's buffer.

use core::fmt;

use super::Id;
use crate::json::{self, Kind as ValueKind, Scanner, Writer};

/// A JSON-RPC 2.0 request or notification to write into a buffer.
///
/// The output is one line of compact JSON without a trailing newline, ready for
/// [`Bus::send`](crate::Bus::send):
///
/// ```text
/// {"jsonrpc":"2.0","id":ID,"method":"M","params":P,"sessionId":"S","agentId":"A"}
/// ```
///
/// `id` is left out for a notification, `params`, `sessionId` and `agentId` when not
/// given. Strings are escaped (`"`, `\` and every control character), so no input can
/// break the JSON or the line. `params` is copied as given minus the whitespace between
/// tokens (a newline in it would end the line early), after checking that it is one JSON
/// object or array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    id: Option<Id<'a>>,
    method: &'a str,
    params: Option<&'a str>,
    session_id: Option<&'a str>,
    agent_id: Option<&'a str>,
}

/// Why a request could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WriteError {
    /// The buffer is too small; nothing usable was written.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// `method` is empty.
    EmptyMethod,
    /// `params` is not JSON: the byte offset in `params` and what was expected there.
    InvalidParams {
        /// Byte offset in `params`.
        offset: usize,
        /// What would have been valid there.
        expected: &'static str,
    },
    /// `params` is JSON, but not an object or an array (JSON-RPC allows only those).
    ParamsNotStructured,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "the message needs {needed} bytes, the buffer has {available}"
            ),
            Self::EmptyMethod => f.write_str("the method name is empty"),
            Self::InvalidParams { offset, expected } => {
                write!(
                    f,
                    "params are not JSON: expected {expected} at byte {offset}"
                )
            }
            Self::ParamsNotStructured => f.write_str("params are not a JSON object or array"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WriteError {}

impl<'a> Request<'a> {
    /// A request: the peer answers it with a response carrying `id`.
    pub fn new(id: impl Into<Id<'a>>, method: &'a str) -> Self {
        Self {
            id: Some(id.into()),
            method,
            params: None,
            session_id: None,
            agent_id: None,
        }
    }

    /// A notification: no `id`, and no response.
    pub const fn notification(method: &'a str) -> Self {
        Self {
            id: None,
            method,
            params: None,
            session_id: None,
            agent_id: None,
        }
    }

    /// `params`, raw JSON: an object or an array.
    pub const fn params(mut self, params: &'a str) -> Self {
        self.params = Some(params);
        self
    }

    /// `sessionId`, by which the kernel routes the message to one worker.
    pub const fn session_id(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// `agentId`.
    pub const fn agent_id(mut self, agent_id: &'a str) -> Self {
        self.agent_id = Some(agent_id);
        self
    }

    /// The id, `None` for a notification.
    pub const fn id(&self) -> Option<Id<'a>> {
        self.id
    }

    /// The exact length of the message in bytes, or why it cannot be written.
    pub fn encoded_len(&self) -> Result<usize, WriteError> {
        self.check()?;
        let mut writer = Writer::new(&mut []);
        self.emit(&mut writer);
        Ok(writer.len())
    }

    /// Writes the message at the start of `buf` and returns it.
    pub fn write<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], WriteError> {
        self.check()?;
        let available = buf.len();
        let mut writer = Writer::new(&mut *buf);
        self.emit(&mut writer);
        let needed = writer.len();
        let buf: &'b [u8] = buf;
        match buf.get(..needed) {
            Some(written) if needed <= available => Ok(written),
            _ => Err(WriteError::BufferTooSmall { needed, available }),
        }
    }

    fn check(&self) -> Result<(), WriteError> {
        if self.method.is_empty() {
            return Err(WriteError::EmptyMethod);
        }
        if let Some(params) = self.params {
            json::validate(params).map_err(|error| match error {
                json::Error::Syntax { offset, expected } => {
                    WriteError::InvalidParams { offset, expected }
                }
                json::Error::TooDeep { offset } => WriteError::InvalidParams {
                    offset,
                    expected: "nesting at most 64 deep",
                },
            })?;
            match Scanner::new(params).peek_kind() {
                Some(ValueKind::Object | ValueKind::Array) => {}
                _ => return Err(WriteError::ParamsNotStructured),
            }
        }
        Ok(())
    }

    fn emit(&self, w: &mut Writer<'_>) {
        w.raw(br#"{"jsonrpc":"2.0""#);
        match self.id {
            Some(Id::Int(n)) => {
                w.raw(br#","id":"#);
                write_i64(w, n);
            }
            Some(Id::Str(s)) => {
                w.raw(br#","id":"#);
                w.string(s);
            }
            None => {}
        }
        w.raw(br#","method":"#);
        w.string(self.method);
        if let Some(params) = self.params {
            w.raw(br#","params":"#);
            write_compact(w, params);
        }
        if let Some(session_id) = self.session_id {
            w.raw(br#","sessionId":"#);
            w.string(session_id);
        }
        if let Some(agent_id) = self.agent_id {
            w.raw(br#","agentId":"#);
            w.string(agent_id);
        }
        w.raw(b"}");
    }
}

/// A decimal integer, without going through `core::fmt`.
fn write_i64(w: &mut Writer<'_>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        w.raw(b"-");
    }
    w.raw(digits.get(at..).unwrap_or_default());
}

/// Copies validated JSON without the whitespace between tokens.
fn write_compact(w: &mut Writer<'_>, json: &str) {
    let bytes = json.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            w.raw(bytes.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    w.raw(bytes.get(start..).unwrap_or_default());
}
