//! Reading one JSON-RPC message in place.

use core::fmt;

use super::Id;
use crate::json::{self, Kind as ValueKind, Scanner};

/// What a message is, by the JSON-RPC 2.0 rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// A `method` and an `id`: the sender expects a response.
    Request,
    /// A `method` and no `id`.
    Notification,
    /// An `id` and a `result`.
    Result,
    /// An `id` and an `error`.
    Error,
}

/// Why a line is not a JSON-RPC 2.0 message this module accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScanError {
    /// The bytes are not UTF-8 from this offset on.
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Not JSON: the byte offset and what was expected there.
    Syntax {
        /// Byte offset in the line.
        offset: usize,
        /// What would have been valid there.
        expected: &'static str,
    },
    /// Valid so far, but nested deeper than this crate's JSON limit (64 levels).
    TooDeep {
        /// Byte offset of the container that went too deep.
        offset: usize,
    },
    /// Valid JSON, but not an object (a batch array, for one: batches are not supported).
    NotAnObject,
    /// The member appears twice.
    Duplicate {
        /// The member's name.
        member: &'static str,
    },
    /// `jsonrpc` is present but is not the string `"2.0"`.
    Version,
    /// `id` is not an integer fitting in `i64`, a string, or `null`.
    InvalidId,
    /// `method` is not a string.
    InvalidMethod,
    /// `params` is not an object or an array.
    InvalidParams,
    /// `error` is not an object, or its `code` is not an integer, or its `message` not a
    /// string.
    InvalidError,
    /// `sessionId` or `agentId` is not a string.
    InvalidRouting,
    /// The message has both `result` and `error`, or `method` with either.
    Ambiguous,
    /// A response (`result` or `error`) without an `id`.
    MissingId,
    /// Neither `method`, `result` nor `error`.
    Unrecognized,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 { offset } => write!(f, "not UTF-8 at byte {offset}"),
            Self::Syntax { offset, expected } => {
                write!(f, "not JSON: expected {expected} at byte {offset}")
            }
            Self::TooDeep { offset } => write!(f, "JSON nested too deep at byte {offset}"),
            Self::NotAnObject => f.write_str("not a JSON object"),
            Self::Duplicate { member } => write!(f, "member \"{member}\" appears twice"),
            Self::Version => f.write_str("\"jsonrpc\" is not \"2.0\""),
            Self::InvalidId => f.write_str("\"id\" is not an integer, a string or null"),
            Self::InvalidMethod => f.write_str("\"method\" is not a string"),
            Self::InvalidParams => f.write_str("\"params\" is not an object or an array"),
            Self::InvalidError => f.write_str(
                "\"error\" is not an object with an integer \"code\" and a string \"message\"",
            ),
            Self::InvalidRouting => f.write_str("\"sessionId\" or \"agentId\" is not a string"),
            Self::Ambiguous => {
                f.write_str("the message has more than one of \"method\", \"result\", \"error\"")
            }
            Self::MissingId => f.write_str("a response without \"id\""),
            Self::Unrecognized => f.write_str("neither \"method\", \"result\" nor \"error\""),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ScanError {}

impl From<json::Error> for ScanError {
    fn from(error: json::Error) -> Self {
        match error {
            json::Error::Syntax { offset, expected } => Self::Syntax { offset, expected },
            json::Error::TooDeep { offset } => Self::TooDeep { offset },
        }
    }
}

/// A JSON string value as it appears in a message, validated, with its escapes still in
/// place: decoding is lazy ([`JsonStr::chars`]) so nothing needs a buffer. Equality and
/// hashing are on the decoded value, so `"\u0061"` equals `"a"`.
#[derive(Clone, Copy)]
pub struct JsonStr<'a> {
    /// The literal with its quotes; the scanner validated it.
    quoted: &'a str,
}

impl<'a> JsonStr<'a> {
    /// `quoted` must be a string literal the scanner accepted.
    pub(crate) const fn new(quoted: &'a str) -> Self {
        Self { quoted }
    }

    /// The text between the quotes, escapes undecoded (`a\"b` for the value `a"b`).
    pub fn raw(&self) -> &'a str {
        let inner = self.quoted.strip_prefix('"').unwrap_or(self.quoted);
        inner.strip_suffix('"').unwrap_or(inner)
    }

    /// The literal as it appears in the message, quotes included.
    pub const fn quoted(&self) -> &'a str {
        self.quoted
    }

    /// The decoded characters.
    pub fn chars(&self) -> JsonChars<'a> {
        JsonChars(Scanner::new(self.quoted).string().ok().map(|s| s.chars()))
    }

    /// The decoded value's length in bytes of UTF-8.
    pub fn decoded_len(&self) -> usize {
        if !self.raw().contains('\\') {
            return self.raw().len();
        }
        self.chars().map(char::len_utf8).sum()
    }

    /// Whether the decoded value is `s` (`"\u0061"` is `a`).
    pub fn eq_str(&self, s: &str) -> bool {
        let raw = self.raw();
        if !raw.contains('\\') {
            return raw == s;
        }
        self.chars().eq(s.chars())
    }

    /// Decodes the value into `buf`; `None` if it does not fit
    /// ([`JsonStr::decoded_len`] tells how much room it needs).
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let mut len = 0;
        for c in self.chars() {
            let end = len + c.len_utf8();
            c.encode_utf8(buf.get_mut(len..end)?);
            len = end;
        }
        core::str::from_utf8(buf.get(..len)?).ok()
    }
}

impl PartialEq for JsonStr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.quoted == other.quoted || self.chars().eq(other.chars())
    }
}

impl Eq for JsonStr<'_> {}

impl core::hash::Hash for JsonStr<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for c in self.chars() {
            c.hash(state);
        }
    }
}

impl PartialEq<str> for JsonStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<&str> for JsonStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

/// Shows the decoded value.
impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        self.chars().try_for_each(|c| f.write_char(c))
    }
}

/// Shows the literal as it appears in the message.
impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.quoted)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for JsonStr<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.quoted);
    }
}

/// The decoded characters of a [`JsonStr`].
#[derive(Clone, Debug)]
pub struct JsonChars<'a>(Option<json::Chars<'a>>);

impl Iterator for JsonChars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        self.0.as_mut()?.next()
    }
}

/// The `id` of a message as it was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageId<'a> {
    /// An integer.
    Int(i64),
    /// A string, escapes undecoded.
    Str(JsonStr<'a>),
    /// `null`: what a peer answers when it could not read the request's id.
    Null,
}

impl<'a> MessageId<'a> {
    /// Reads a raw JSON id token (`42`, `"req-42"`, `null`, surrounding whitespace allowed),
    /// such as [`Overflow::lost_ids`](crate::Overflow::lost_ids) gives; `None` if it is not
    /// one.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let text = core::str::from_utf8(raw).ok()?;
        let mut sc = Scanner::new(text);
        sc.peek_kind()?;
        let start = sc.offset();
        sc.skip_value(0).ok()?;
        let end = sc.offset();
        if !is_json_ws(text.get(end..)?) {
            return None;
        }
        Self::from_value(text.get(start..end)?).ok()
    }

    /// `value` is one validated JSON value, without surrounding whitespace.
    fn from_value(value: &'a str) -> Result<Self, ScanError> {
        match value.as_bytes().first() {
            Some(b'"') => Ok(Self::Str(JsonStr::new(value))),
            Some(b'-' | b'0'..=b'9') => parse_i64(value).map(Self::Int).ok_or(ScanError::InvalidId),
            _ if value == "null" => Ok(Self::Null),
            _ => Err(ScanError::InvalidId),
        }
    }

    /// Whether this is the id the host chose (`"\u0061"` is `Id::Str("a")`; `1` is not
    /// `Id::Str("1")`).
    pub fn matches(&self, id: Id<'_>) -> bool {
        match (self, id) {
            (Self::Int(a), Id::Int(b)) => *a == b,
            (Self::Str(a), Id::Str(b)) => a.eq_str(b),
            _ => false,
        }
    }
}

fn is_json_ws(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A validated JSON number that is an integer fitting in `i64` (`-0` is 0).
fn parse_i64(number: &str) -> Option<i64> {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, number),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so that i64::MIN fits.
    let negated = digits.bytes().try_fold(0i64, |acc, d| {
        let digit = i64::from(char::from(d).to_digit(10)?);
        acc.checked_mul(10)?.checked_sub(digit)
    })?;
    if negative {
        Some(negated)
    } else {
        negated.checked_neg()
    }
}

/// The `error` member of an error response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RpcError<'a> {
    /// `code`, if present (JSON-RPC requires it; this reader does not).
    pub code: Option<i64>,
    /// `message`, if present (JSON-RPC requires it; this reader does not).
    pub message: Option<JsonStr<'a>>,
    /// `data`, raw JSON, if present.
    pub data: Option<&'a str>,
    /// The whole error object, raw JSON.
    pub raw: &'a str,
}

impl<'a> RpcError<'a> {
    fn parse(value: &'a str) -> Result<Self, ScanError> {
        let mut sc = Scanner::new(value);
        if sc.peek_kind() != Some(ValueKind::Object) {
            return Err(ScanError::InvalidError);
        }
        sc.enter();
        let mut error = Self {
            code: None,
            message: None,
            data: None,
            raw: value,
        };
        let mut first = true;
        while let Some((key, _)) = sc.next_key(first)? {
            first = false;
            let member = next_value(&mut sc, value)?;
            if key.is_key("code") {
                let code = match member.as_bytes().first() {
                    Some(b'-' | b'0'..=b'9') => parse_i64(member),
                    _ => None,
                };
                set(
                    &mut error.code,
                    code.ok_or(ScanError::InvalidError)?,
                    "code",
                )?;
            } else if key.is_key("message") {
                if !member.starts_with('"') {
                    return Err(ScanError::InvalidError);
                }
                set(&mut error.message, JsonStr::new(member), "message")?;
            } else if key.is_key("data") {
                set(&mut error.data, member, "data")?;
            }
        }
        Ok(error)
    }
}

/// One JSON-RPC 2.0 message, read in place from the bytes it borrows.
///
/// Accepted: exactly one JSON object (whitespace around it allowed) with
///
/// - `jsonrpc`, if present, the string `"2.0"` (workers that leave it out are tolerated);
/// - `id`, if present, an integer fitting in `i64`, a string, or `null`;
/// - `method` a string, `params` an object or an array, `error` an object whose `code`, if
///   present, is an integer and whose `message`, if present, is a string; `sessionId` and
///   `agentId` strings; `result` anything;
/// - exactly one of `method`, `result` and `error`, and an `id` with `result` or `error`.
///
/// Other members are ignored. Member names are compared as written: `"\u0069d"` is not
/// `id` (the kernel and the crate's worker read them the same way). Each known member may
/// appear once. Anything else is a [`ScanError`]; no input makes the reader panic, and
/// nesting is bounded (64 levels), walked without recursion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    kind: Kind,
    id: Option<MessageId<'a>>,
    raw_id: Option<&'a str>,
    method: Option<JsonStr<'a>>,
    params: Option<&'a str>,
    result: Option<&'a str>,
    error: Option<RpcError<'a>>,
    session_id: Option<JsonStr<'a>>,
    agent_id: Option<JsonStr<'a>>,
}

impl<'a> Message<'a> {
    /// Reads one message; see [`Message`] for what is accepted.
    pub fn parse(line: &'a [u8]) -> Result<Self, ScanError> {
        let text = core::str::from_utf8(line).map_err(|e| ScanError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        let mut sc = Scanner::new(text);
        match sc.peek_kind() {
            Some(ValueKind::Object) => {}
            Some(_) => {
                // Report syntax errors before the shape.
                json::validate(text)?;
                return Err(ScanError::NotAnObject);
            }
            None => {
                return Err(ScanError::Syntax {
                    offset: sc.offset(),
                    expected: "a JSON object",
                });
            }
        }
        sc.enter();
        let mut version = None;
        let mut id = None;
        let mut method = None;
        let mut params = None;
        let mut result = None;
        let mut error = None;
        let mut session_id = None;
        let mut agent_id = None;
        let mut first = true;
        while let Some((key, _)) = sc.next_key(first)? {
            first = false;
            let value = next_value(&mut sc, text)?;
            let string = value.starts_with('"');
            if key.is_key("jsonrpc") {
                set(&mut version, value, "jsonrpc")?;
            } else if key.is_key("id") {
                set(&mut id, value, "id")?;
            } else if key.is_key("method") {
                set(&mut method, value, "method")?;
            } else if key.is_key("params") {
                set(&mut params, value, "params")?;
            } else if key.is_key("result") {
                set(&mut result, value, "result")?;
            } else if key.is_key("error") {
                set(&mut error, value, "error")?;
            } else if key.is_key("sessionId") {
                set(&mut session_id, value, "sessionId")?;
                if !string {
                    return Err(ScanError::InvalidRouting);
                }
            } else if key.is_key("agentId") {
                set(&mut agent_id, value, "agentId")?;
                if !string {
                    return Err(ScanError::InvalidRouting);
                }
            }
        }
        let end = sc.offset();
        if !is_json_ws(text.get(end..).unwrap_or_default()) {
            let trailing = text.get(end..).unwrap_or_default();
            let skipped =
                trailing.len() - trailing.trim_start_matches([' ', '\t', '\n', '\r']).len();
            return Err(ScanError::Syntax {
                offset: end + skipped,
                expected: "end of input after the JSON object",
            });
        }

        if version.is_some_and(|v| v != "\"2.0\"") {
            return Err(ScanError::Version);
        }
        let raw_id = id;
        let id = raw_id.map(MessageId::from_value).transpose()?;
        if method.is_some_and(|m: &str| !m.starts_with('"')) {
            return Err(ScanError::InvalidMethod);
        }
        if params.is_some_and(|p: &str| !p.starts_with(['{', '['])) {
            return Err(ScanError::InvalidParams);
        }
        let error = error.map(RpcError::parse).transpose()?;
        let kind = match (method.is_some(), result.is_some(), error.is_some()) {
            (true, false, false) if id.is_some() => Kind::Request,
            (true, false, false) => Kind::Notification,
            (false, true, false) => Kind::Result,
            (false, false, true) => Kind::Error,
            (false, false, false) => return Err(ScanError::Unrecognized),
            _ => return Err(ScanError::Ambiguous),
        };
        if matches!(kind, Kind::Result | Kind::Error) && id.is_none() {
            return Err(ScanError::MissingId);
        }
        Ok(Self {
            kind,
            id,
            raw_id,
            method: method.map(JsonStr::new),
            params,
            result,
            error,
            session_id: session_id.map(JsonStr::new),
            agent_id: agent_id.map(JsonStr::new),
        })
    }

    /// Request, notification, result or error.
    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the message is a response (a result or an error).
    pub const fn is_response(&self) -> bool {
        matches!(self.kind, Kind::Result | Kind::Error)
    }

    /// `id`; `None` for a notification.
    pub const fn id(&self) -> Option<MessageId<'a>> {
        self.id
    }

    /// `id` as it appears in the line (`42`, `"req-42"`, `null`).
    pub const fn raw_id(&self) -> Option<&'a str> {
        self.raw_id
    }

    /// `method`, for a request or a notification.
    pub const fn method(&self) -> Option<JsonStr<'a>> {
        self.method
    }

    /// `params`, raw JSON (an object or an array), if present.
    pub const fn params(&self) -> Option<&'a str> {
        self.params
    }

    /// `result`, raw JSON, for a result.
    pub const fn result(&self) -> Option<&'a str> {
        self.result
    }

    /// `error`, for an error response.
    pub const fn error(&self) -> Option<RpcError<'a>> {
        self.error
    }

    /// `sessionId`, if present.
    pub const fn session_id(&self) -> Option<JsonStr<'a>> {
        self.session_id
    }

    /// `agentId`, if present.
    pub const fn agent_id(&self) -> Option<JsonStr<'a>> {
        self.agent_id
    }
}

/// The raw value of member `name` of the JSON object `object`, such as the `params` or
/// `result` a [`Message`] gives: `member(params, "requestId")` for a cancellation.
/// `None` when `object` is not an object, has no such member, or is malformed before it.
/// Names are compared as written, like [`Message::parse`] does.
pub fn member<'a>(object: &'a str, name: &str) -> Option<&'a str> {
    let mut sc = Scanner::new(object);
    if sc.peek_kind() != Some(ValueKind::Object) {
        return None;
    }
    sc.enter();
    let mut first = true;
    while let Some((key, _)) = sc.next_key(first).ok()? {
        first = false;
        let value = next_value(&mut sc, object).ok()?;
        if key.is_key(name) {
            return Some(value);
        }
    }
    None
}

/// The next member value, validated, as raw text without surrounding whitespace.
fn next_value<'a>(sc: &mut Scanner<'a>, text: &'a str) -> Result<&'a str, ScanError> {
    if sc.peek_kind().is_none() {
        return Err(ScanError::Syntax {
            offset: sc.offset(),
            expected: "a value",
        });
    }
    let start = sc.offset();
    sc.skip_value(1)?;
    Ok(text.get(start..sc.offset()).unwrap_or_default())
}

fn set<T>(slot: &mut Option<T>, value: T, member: &'static str) -> Result<(), ScanError> {
    if slot.is_some() {
        return Err(ScanError::Duplicate { member });
    }
    *slot = Some(value);
    Ok(())
}
