//! The `id` of a JSON-RPC response, read from a whole line, or from the only bytes the bus
//! sees whole of a worker's response too long to deliver: its start and its end. The host
//! is told that id with the line's `Event::LineTooLong`, so that it can fail that request
//! instead of waiting for it.
//!
//! Serializers put the `id` first (`{"jsonrpc":"2.0","id":1,"result":…}`, as Python's MCP
//! SDK and this crate's writer do) or last (`{"result":…,"jsonrpc":"2.0","id":1}`, as the
//! TypeScript SDK does). The start is scanned as JSON as far as it goes; the end is read
//! backwards and taken only in the one shape that a top-level last member can have. No
//! system calls, no allocation.

use crate::json::{Kind, Scanner};
use crate::limits::MAX_REQUEST_ID;

/// How many of a line's first bytes are scanned.
pub(crate) const START_LEN: usize = 256;
/// How many of a line's last bytes are kept to be read backwards.
pub(crate) const END_LEN: usize = 96;

/// What a line's first bytes say of its `id`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    id: [u8; MAX_REQUEST_ID],
    id_len: u8,
    /// A `result` or `error` member came first: a response.
    answered: bool,
    /// A `method` member came: a request or a notification, which nobody waits for.
    asks: bool,
}

impl Default for Start {
    fn default() -> Self {
        Self {
            id: [0; MAX_REQUEST_ID],
            id_len: 0,
            answered: false,
            asks: false,
        }
    }
}

impl Start {
    /// Scans `start`, a line's first bytes (cut anywhere, even inside a character).
    pub(crate) fn read(start: &[u8]) -> Self {
        let mut this = Self::default();
        let text = match core::str::from_utf8(start) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&start[..error.valid_up_to()]).unwrap_or(""),
        };
        let mut sc = Scanner::new(text);
        if sc.peek_kind() != Some(Kind::Object) {
            return this;
        }
        sc.enter();
        let mut first = true;
        while let Ok(Some((key, _))) = sc.next_key(first) {
            first = false;
            if key.is_key("method") {
                this.asks = true;
                return this;
            }
            this.answered |= key.is_key("result") || key.is_key("error");
            if sc.peek_kind().is_none() {
                return this;
            }
            let at = sc.offset();
            // A value that runs to the end of the start may go on past it (`12` cut to
            // `1`): only one followed by more text is whole.
            if sc.skip_value(1).is_err() || sc.offset() >= text.len() {
                return this;
            }
            let value = text
                .get(at..sc.offset())
                .unwrap_or("")
                .trim_end()
                .as_bytes();
            if key.is_key("id") && value.len() <= MAX_REQUEST_ID && this.id_len == 0 {
                this.id[..value.len()].copy_from_slice(value);
                this.id_len = value.len() as u8;
            }
            if this.answered && this.id_len > 0 {
                return this;
            }
        }
        this
    }

    /// The `id` of the response the whole line was, given its last bytes `end`: from the
    /// start if it showed one, else from the end; `None` for a request or a notification,
    /// or when neither shows it.
    pub(crate) fn id<'a>(&'a self, end: &'a [u8]) -> Option<&'a [u8]> {
        if self.asks {
            return None;
        }
        if self.id_len > 0 {
            // An id before any `method`: a response unless a method follows, which the
            // start would have shown had it come early, as every serializer puts it.
            return Some(&self.id[..usize::from(self.id_len)]);
        }
        last_member_id(end)
    }
}

/// The value of `"id"` when it is the last member of the object that `end` closes:
/// `…,"id":VALUE}` with only whitespace after, VALUE a number, `null` or a string
/// without escapes. A nested object's last `id` is followed by two closing brackets or
/// more, and inside a string the quotes around it would be escaped, so neither matches.
fn last_member_id(end: &[u8]) -> Option<&[u8]> {
    let end = trim_end(end).strip_suffix(b"}")?;
    let end = trim_end(end);
    let value_start = match end.last()? {
        b'"' => {
            let body = &end[..end.len() - 1];
            let open = body.iter().rposition(|&b| b == b'"')?;
            if body[open + 1..].contains(&b'\\') {
                return None;
            }
            open
        }
        _ => {
            let scalar = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.');
            end.iter().rposition(|b| !scalar(b)).map_or(0, |at| at + 1)
        }
    };
    let value = &end[value_start..];
    let before = trim_end(&end[..value_start]).strip_suffix(b":")?;
    let before = trim_end(before).strip_suffix(br#""id""#)?;
    let valid = match value.first()? {
        b'"' => true,
        b'-' | b'0'..=b'9' => value
            .iter()
            .all(|b| !b.is_ascii_alphabetic() || matches!(b, b'e' | b'E')),
        _ => value == b"null",
    };
    let member = matches!(trim_end(before).last(), Some(b',' | b'{'));
    (valid && member && value.len() <= MAX_REQUEST_ID).then_some(value)
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let kept = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |at| at + 1);
    &bytes[..kept]
}

/// A line's last [`END_LEN`] bytes, as they pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct End {
    bytes: [u8; END_LEN],
    len: u8,
}

impl Default for End {
    fn default() -> Self {
        Self {
            bytes: [0; END_LEN],
            len: 0,
        }
    }
}

impl End {
    /// Keeps the last of what has passed and `more`.
    pub(crate) fn push(&mut self, more: &[u8]) {
        if more.len() >= END_LEN {
            self.bytes.copy_from_slice(&more[more.len() - END_LEN..]);
            self.len = END_LEN as u8;
            return;
        }
        let keep = (END_LEN - more.len()).min(usize::from(self.len));
        let from = usize::from(self.len) - keep;
        self.bytes.copy_within(from..from + keep, 0);
        self.bytes[keep..keep + more.len()].copy_from_slice(more);
        self.len = (keep + more.len()) as u8;
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The raw `id` of a JSON-RPC response: an object with `id` and `result` or `error`, and
/// no `method`. `None` for anything else, malformed input included; never panics.
pub(crate) fn response_id(line: &[u8]) -> Option<&[u8]> {
    let text = core::str::from_utf8(line).ok()?;
    let mut sc = Scanner::new(text);
    if sc.peek_kind()? != Kind::Object {
        return None;
    }
    sc.enter();
    let (mut id, mut answered, mut first) = (None, false, true);
    while let Some((key, _)) = sc.next_key(first).ok()? {
        first = false;
        sc.peek_kind()?;
        let start = sc.offset();
        sc.skip_value(1).ok()?;
        let value = text.get(start..sc.offset())?.trim_end();
        if key.is_key("id") {
            id = Some(value.as_bytes());
        } else if key.is_key("result") || key.is_key("error") {
            answered = true;
        } else if key.is_key("method") {
            return None;
        }
    }
    if answered { id } else { None }
}

#[cfg(test)]
mod response_id_tests {
    use super::response_id;

    #[test]
    fn finds_the_id_of_responses_only() {
        fn id(line: &str) -> Option<&[u8]> {
            response_id(line.as_bytes())
        }
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Some(&b"7"[..])
        );
        assert_eq!(
            id(r#"{"error":{"code":1},"id":"a\"b"}"#),
            Some(&br#""a\"b""#[..])
        );
        assert_eq!(
            id(r#" { "id" : null , "result" : [1, {"id": 3}] } "#),
            Some(&b"null"[..])
        );
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), None);
        assert_eq!(id(r#"{"jsonrpc":"2.0","method":"tick"}"#), None);
        assert_eq!(id(r#"{"id":1}"#), None);
        assert_eq!(id(r#"{"id":1,"result":"#), None);
        assert_eq!(id("[1,2]"), None);
        assert_eq!(response_id(b"\xff\xfe"), None);
        assert_eq!(id(&"[".repeat(10_000)), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(line: &str, start_len: usize, end_len: usize) -> Option<String> {
        let bytes = line.as_bytes();
        let start = Start::read(&bytes[..start_len.min(bytes.len())]);
        let mut end = End::default();
        end.push(&bytes[bytes.len().saturating_sub(end_len)..]);
        start
            .id(end.as_slice())
            .map(|id| String::from_utf8(id.to_vec()).unwrap())
    }

    #[test]
    fn the_id_is_found_first_or_last() {
        let big = "x".repeat(5000);
        let first = format!(r#"{{"jsonrpc":"2.0","id":"req-1","result":{{"text":"{big}"}}}}"#);
        assert_eq!(id_of(&first, 64, 96).as_deref(), Some(r#""req-1""#));
        let last = format!(r#"{{"result":{{"text":"{big}"}},"jsonrpc":"2.0","id":42}}"#);
        assert_eq!(id_of(&last, 64, 96).as_deref(), Some("42"));
        let spaced = format!("{{\"result\":\"{big}\", \"id\" : -7 }}\r\n");
        assert_eq!(id_of(&spaced, 64, 96).as_deref(), Some("-7"));
        let error = format!(r#"{{"error":{{"code":1,"message":"{big}"}},"id":null}}"#);
        assert_eq!(id_of(&error, 64, 96).as_deref(), Some("null"));
    }

    #[test]
    fn requests_nested_ids_and_ids_in_strings_are_not_taken() {
        let big = "x".repeat(5000);
        for line in [
            format!(r#"{{"method":"sampling/createMessage","params":"{big}","id":0}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":3,"method":"roots/list","params":"{big}"}}"#),
            format!(r#"{{"result":{{"a":"{big}","id":5}}}}"#),
            format!(r#"{{"result":[{{"a":"{big}","id":5}}]}}"#),
            format!(r#"{{"result":"{big}\",\"id\":5}}"}}"#),
            format!(r#"{{"result":"{big}","id":"a\"b"}}"#),
            format!(r#"{{"result":"{big}","id":1}}x"#),
            format!(r#"{{"result":"{big}"}}"#),
        ] {
            let tail = &line[line.len() - 40..];
            assert_eq!(id_of(&line, 64, 96), None, "…{tail}");
        }
    }

    #[test]
    fn an_id_cut_by_the_end_of_the_start_is_not_taken() {
        let line = r#"{"jsonrpc":"2.0","id":12345,"result":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
        let cut = line.find("345").unwrap();
        assert_eq!(Start::read(&line.as_bytes()[..cut]).id(b""), None);
        assert_eq!(id_of(line, cut + 4, 0).as_deref(), Some("12345"));
    }

    #[test]
    fn a_start_cut_anywhere_never_fails() {
        let line =
            r#"{"jsonrpc":"2.0","id":"é-1","result":{"content":[{"type":"text","text":"ü"}]}}"#;
        for cut in 0..line.len() {
            let start = Start::read(&line.as_bytes()[..cut]);
            let _ = start.id(b"");
        }
        assert_eq!(id_of(line, 40, 0).as_deref(), Some(r#""é-1""#));
    }

    #[test]
    fn the_end_keeps_the_last_bytes_of_any_split() {
        let line: Vec<u8> = (0..300u16).map(|n| n as u8).collect();
        for cut in [0, 1, 50, 95, 96, 97, 200, 299] {
            let mut end = End::default();
            end.push(&line[..cut]);
            end.push(&line[cut..]);
            assert_eq!(end.as_slice(), &line[300 - END_LEN..], "cut at {cut}");
        }
        let mut short = End::default();
        short.push(b"ab");
        short.push(b"c");
        assert_eq!(short.as_slice(), b"abc");
    }
}
