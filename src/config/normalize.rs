//! Any valid JSON configuration made into text the kernel reads as JSON means it, with
//! default limits added where the text leaves them out.
//!
//! The kernel decodes only the escapes `\"` `\\` `\/` `\n` `\r` `\t` and takes anything else
//! after a backslash literally, so a `\u00e9` (what Python's `json.dump` writes for `é`)
//! would reach a worker's exec as six characters. Here every `\uXXXX` the kernel cannot
//! read is replaced by its character, as UTF-8, which the kernel passes through; escapes
//! of characters it cannot carry at all are left for [`Config::from_json`]'s checks to
//! refuse with their exact error.

use core::ffi::CStr;

use super::pool::LIMIT_NAMES;
use super::text::{check_text_document, syntax};
use super::{Config, ConfigError, Limits};
use crate::json::{self, Kind, Scanner};
use crate::limits::MAX_WORKERS;

/// The most bytes [`Config::normalize`] adds to its input: every limit, with the longest
/// number, inside a new `"limits"` member, and the NUL.
pub const NORMALIZE_SLACK: usize = {
    let mut names = 0;
    let mut i = 0;
    while i < LIMIT_NAMES.len() {
        names += LIMIT_NAMES[i].len();
        i += 1;
    }
    // `,"limits":{` and `}`, then per limit `"NAME":4294967295,`, then the NUL; and
    // `,"instances":1` for each pool that leaves it out, at most one per worker.
    12 + names + LIMIT_NAMES.len() * (2 + 1 + 10 + 1) + 1 + INSTANCES_DEFAULT.len() * MAX_WORKERS
};

/// What a pool that leaves out `instances` gets: one.
const INSTANCES_DEFAULT: &str = ",\"instances\":1";

impl<'a> Config<'a> {
    /// `json` made into text the kernel reads as JSON means it, written into `buf`, then
    /// checked like [`Config::from_json`]:
    ///
    /// - every `\uXXXX` escape is replaced by its character (keys and values alike), as
    ///   the escape the kernel decodes for `"`, `\`, newline, carriage return and tab, and
    ///   as UTF-8 for the others; a control character or a lone surrogate stays escaped
    ///   and is refused ([`ConfigError::UnsupportedCharacter`]), as are `\b` and `\f`;
    /// - each limit that `defaults` sets and `json` leaves out is added;
    /// - a pool that leaves out `instances` gets one (the kernel, and so
    ///   [`Config::from_json`], requires it).
    ///
    /// `buf` needs at most `json.len() + NORMALIZE_SLACK` bytes, less when nothing is
    /// added; when it is too small the error is [`ConfigError::BufferTooSmall`].
    pub fn normalize(
        json: &str,
        defaults: &Limits,
        buf: &'a mut [u8],
    ) -> Result<Self, ConfigError> {
        json::validate(json).map_err(syntax)?;
        let mut out = Out { buf, len: 0 };
        decode(json.as_bytes(), &mut out);
        add_instances(&mut out)?;
        add_limits(&mut out, defaults)?;
        out.push(0);
        let (len, capacity) = (out.len, out.buf.len());
        if len > capacity {
            return Err(ConfigError::BufferTooSmall {
                needed: len,
                capacity,
            });
        }
        // No NUL inside: JSON text carries none, and the escape of one stays escaped.
        let text =
            CStr::from_bytes_with_nul(&out.buf[..len]).map_err(|_| ConfigError::InvalidJson {
                offset: 0,
                expected: "text without a NUL byte",
            })?;
        check_text_document(text.to_bytes())?;
        Ok(Self {
            source: super::Source::Json(text),
        })
    }
}

/// Bytes written into a buffer that may be too small: the length goes on counting, so the
/// error can say how much was needed.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, byte: u8) {
        self.extend(&[byte]);
    }

    fn extend(&mut self, bytes: &[u8]) {
        if let Some(room) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    /// What was written, if all of it fit.
    fn text(&self) -> Option<&str> {
        core::str::from_utf8(self.buf.get(..self.len)?).ok()
    }

    /// Inserts `bytes` at `at`, moving what follows.
    fn insert(&mut self, at: usize, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end <= self.buf.len() {
            self.buf.copy_within(at..self.len, at + bytes.len());
            self.buf[at..at + bytes.len()].copy_from_slice(bytes);
        }
        self.len = end;
    }
}

/// Copies `json` (valid JSON) into `out`, decoding the `\u` escapes the kernel does not.
fn decode(json: &[u8], out: &mut Out<'_>) {
    let mut i = 0;
    let mut in_string = false;
    while let Some(&byte) = json.get(i) {
        if !in_string || byte != b'\\' {
            in_string ^= byte == b'"';
            out.push(byte);
            i += 1;
            continue;
        }
        if json.get(i + 1) != Some(&b'u') {
            // `\"` `\\` `\/` `\n` `\r` `\t`, which the kernel decodes, or `\b` `\f`, which
            // the checks refuse.
            out.extend(json.get(i..i + 2).unwrap_or_default());
            i += 2;
            continue;
        }
        let (decoded, used) = unicode_escape(&json[i..]);
        let escape = &json[i..i + used];
        match decoded {
            Some('"') => out.extend(b"\\\""),
            Some('\\') => out.extend(b"\\\\"),
            Some('\n') => out.extend(b"\\n"),
            Some('\r') => out.extend(b"\\r"),
            Some('\t') => out.extend(b"\\t"),
            Some(c) if !c.is_control() || u32::from(c) >= 0x7f => {
                out.extend(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            // A control character or a lone surrogate: left for the checks to refuse.
            _ => out.extend(escape),
        }
        i += used;
    }
}

/// The character of the `\uXXXX` escape (or surrogate pair) at the start of `text`, and
/// the bytes it takes; `None` for a lone surrogate.
fn unicode_escape(text: &[u8]) -> (Option<char>, usize) {
    let unit = |at: usize| {
        let hex = core::str::from_utf8(text.get(at + 2..at + 6)?).ok()?;
        u32::from_str_radix(hex, 16).ok()
    };
    let Some(first) = unit(0) else {
        return (None, 2);
    };
    if (0xd800..0xdc00).contains(&first)
        && text.get(6..8) == Some(b"\\u")
        && let Some(second) = unit(6).filter(|s| (0xdc00..0xe000).contains(s))
    {
        let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
        return (char::from_u32(c), 12);
    }
    (char::from_u32(first), 6)
}

/// Gives each pool of the document in `out` that leaves out `instances` one instance.
fn add_instances(out: &mut Out<'_>) -> Result<(), ConfigError> {
    let Some(text) = out.text() else {
        return Ok(()); // the buffer is too small already; the caller says so
    };
    // Where each such pool's members end, and whether it has any, in document order.
    let mut ends = heapless::Vec::<(usize, bool), { MAX_WORKERS + 1 }>::new();
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return Ok(()); // not an object: the checks say so
    }
    sc.enter();
    let mut first = true;
    while let Some((key, _)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        if !key.is_key("pools") || sc.peek_kind() != Some(Kind::Array) {
            sc.skip_value(1).map_err(syntax)?;
            continue;
        }
        sc.enter();
        let mut first_pool = true;
        while sc.next_item(first_pool).map_err(syntax)? {
            first_pool = false;
            if sc.peek_kind() != Some(Kind::Object) {
                sc.skip_value(2).map_err(syntax)?;
                continue;
            }
            sc.enter();
            let (mut any, mut instances, mut first_member) = (false, false, true);
            while let Some((member, _)) = sc.next_key(first_member).map_err(syntax)? {
                first_member = false;
                any = true;
                instances |= member.is_key("instances");
                sc.skip_value(3).map_err(syntax)?;
            }
            // `next_key` consumed the `}`: the member goes before it.
            if !instances && ends.push((sc.offset() - 1, any)).is_err() {
                break; // past the workers a bus tracks: refused anyway
            }
        }
        break;
    }
    // From the last, so that the earlier places stay where they are.
    for &(at, any) in ends.iter().rev() {
        let member = if any {
            INSTANCES_DEFAULT
        } else {
            &INSTANCES_DEFAULT[1..]
        };
        out.insert(at, member.as_bytes());
    }
    Ok(())
}

/// Adds each limit `defaults` sets that the document in `out` leaves out: into its
/// `"limits"` object, or in a new one at the end of the document.
fn add_limits(out: &mut Out<'_>, defaults: &Limits) -> Result<(), ConfigError> {
    let wanted = LIMIT_NAMES.iter().zip(defaults.values());
    if wanted.clone().all(|(_, value)| value.is_none()) {
        return Ok(());
    }
    let Some(text) = out.text() else {
        return Ok(()); // the buffer is too small already; the caller says so
    };
    let Some(found) = find_limits(text)? else {
        return Ok(()); // not an object: the checks say so
    };
    let mut members = heapless::String::<{ NORMALIZE_SLACK }>::new();
    for (name, value) in wanted {
        if let Some(value) = value
            && !found.present.iter().any(|present| present == name)
        {
            let mut digits = [0u8; 10];
            let len = {
                let mut w = json::Writer::new(&mut digits);
                w.u32(value);
                w.len()
            };
            let digits = core::str::from_utf8(&digits[..len]).unwrap_or("0");
            let _ = members.push_str(if members.is_empty() { "\"" } else { ",\"" });
            let _ = members.push_str(name);
            let _ = members.push_str("\":");
            let _ = members.push_str(digits);
        }
    }
    if members.is_empty() {
        return Ok(());
    }
    match found.limits {
        Some(Object { inside, empty }) => {
            if !empty {
                let _ = members.push(',');
            }
            out.insert(inside, members.as_bytes());
        }
        None => {
            let mut member = heapless::String::<{ NORMALIZE_SLACK + 16 }>::new();
            let _ = member.push_str(if found.document.empty { "" } else { "," });
            let _ = member.push_str("\"limits\":{");
            let _ = member.push_str(&members);
            let _ = member.push('}');
            // Before the document's closing brace.
            out.insert(found.document.inside, member.as_bytes());
        }
    }
    Ok(())
}

/// Where an object's members go.
#[derive(Clone, Copy)]
struct Object {
    /// Right after its `{` for `limits`; right before its `}` for the document.
    inside: usize,
    empty: bool,
}

struct Found {
    document: Object,
    limits: Option<Object>,
    /// The limit names the `limits` object has.
    present: heapless::Vec<&'static str, { LIMIT_NAMES.len() }>,
}

/// The document's and its `limits` object's insertion points; `None` when the document is
/// not an object.
fn find_limits(text: &str) -> Result<Option<Found>, ConfigError> {
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return Ok(None);
    }
    sc.enter();
    let mut found = Found {
        document: Object {
            inside: 0,
            empty: true,
        },
        limits: None,
        present: heapless::Vec::new(),
    };
    let mut first = true;
    loop {
        let Some((key, _)) = sc.next_key(first).map_err(syntax)? else {
            // `next_key` consumed the `}`: insert before it.
            found.document.inside = sc.offset() - 1;
            return Ok(Some(found));
        };
        first = false;
        found.document.empty = false;
        if key.is_key("limits") && found.limits.is_none() && sc.peek_kind() == Some(Kind::Object) {
            sc.enter();
            let inside = sc.offset();
            let mut empty = true;
            let mut first_limit = true;
            while let Some((name, _)) = sc.next_key(first_limit).map_err(syntax)? {
                first_limit = false;
                empty = false;
                if let Some(&known) = LIMIT_NAMES.iter().find(|known| name.is_key(known)) {
                    let _ = found.present.push(known);
                }
                sc.skip_value(2).map_err(syntax)?;
            }
            found.limits = Some(Object { inside, empty });
        } else {
            sc.skip_value(1).map_err(syntax)?;
        }
    }
}
