//! Just enough JSON for the kernel configuration: string escaping for the writer and a
//! validating scanner for caller-supplied text.
//!
//! Pure and allocation-free. Nothing here panics on any input: every index is checked, and
//! nesting is bounded by [`MAX_DEPTH`] and walked with a bit stack rather than recursion, so
//! hostile input (`[[[[…`) cannot exhaust the stack.

/// Deepest container nesting accepted in caller-supplied JSON; the configuration itself
/// needs four levels, the rest is room for unknown keys.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a text is not acceptable JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// Not JSON: the byte offset and what was expected there.
    Syntax {
        offset: usize,
        expected: &'static str,
    },
    /// Valid so far, but containers open deeper than [`MAX_DEPTH`] at this offset.
    TooDeep { offset: usize },
}

pub(crate) type Result<T> = core::result::Result<T, Error>;

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Appends to a fixed buffer and keeps counting past its end, so that one pass both writes
/// the text and learns its exact size when it does not fit (nothing is ever truncated: the
/// caller checks [`Writer::len`] against the capacity).
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes produced so far, including those that did not fit.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        // Once something did not fit, `len` stays past the end and nothing more is written.
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped; DEL and
    /// non-ASCII pass through as UTF-8, which JSON allows and the kernel reads as is.
    ///
    /// The kernel (archive 1.1.1, observed) decodes only `\"` `\\` `\/` `\n` `\r` `\t`;
    /// `\b`, `\f` and `\u00XX` would reach the worker as the escape text itself. The
    /// configuration writer therefore refuses every other control character beforehand
    /// ([`ConfigError::UnsupportedCharacter`](crate::config::ConfigError::UnsupportedCharacter)),
    /// so for it only `\"` `\\` `\n` `\r` `\t` are ever emitted; the remaining escapes are
    /// kept so that the output is valid JSON whatever the input.
    pub(crate) fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.raw(b"\"");
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &c) in bytes.iter().enumerate() {
            let mut unicode = *b"\\u0000";
            let escape: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => {
                    unicode[4] = HEX[usize::from(c >> 4)];
                    unicode[5] = HEX[usize::from(c & 0x0f)];
                    &unicode
                }
                _ => continue,
            };
            self.raw(bytes.get(start..i).unwrap_or_default());
            self.raw(escape);
            start = i + 1;
        }
        self.raw(bytes.get(start..).unwrap_or_default());
        self.raw(b"\"");
    }

    /// A decimal integer, without going through `core::fmt`.
    pub(crate) fn u32(&mut self, n: u32) {
        let mut digits = [0u8; 20];
        self.raw(crate::digits::decimal(n.into(), &mut digits));
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// What the next value is, judged by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A string value as it appears in the text, between the quotes, already validated:
/// escapes are decoded lazily by [`JStr::chars`], so comparing two strings needs no buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JStr<'a> {
    raw: &'a str,
}

impl<'a> JStr<'a> {
    /// The decoded characters.
    pub(crate) fn chars(self) -> Chars<'a> {
        Chars {
            raw: self.raw,
            pos: 0,
        }
    }

    /// Whether the decoded value is empty (an escape always decodes to one character, so the
    /// raw text is empty exactly when the value is).
    pub(crate) fn is_empty(self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the text between the quotes is exactly `name`, escapes left undecoded. This is
    /// how keys must be matched: the kernel's parser (archive 1.1.1, observed) decodes no
    /// `\u` escape, so to it `"\u0070ools"` is not `pools`.
    pub(crate) fn is_key(self, name: &str) -> bool {
        self.raw == name
    }

    /// Whether two decoded values are equal (`"a"` and `"\u0061"` are).
    pub(crate) fn same(self, other: JStr<'_>) -> bool {
        if self.raw == other.raw {
            return true;
        }
        self.chars().eq(other.chars())
    }

    /// Whether the decoded value holds a NUL character (only possible as `\u0000`).
    pub(crate) fn has_nul(self) -> bool {
        self.raw.contains("\\u0000") && self.chars().any(|c| c == '\0')
    }

    /// The first escape the kernel (archive 1.1.1, observed) does not decode, that is any
    /// but `\"` `\\` `\/` `\n` `\r` `\t`: the letter after the backslash (`b`, `f` or `u`)
    /// and the character the escape stands for (a surrogate pair is one `u` escape).
    pub(crate) fn undecoded_escape(self) -> Option<(u8, char)> {
        if !self.raw.contains('\\') {
            return None;
        }
        let bytes = self.raw.as_bytes();
        let mut chars = self.chars();
        loop {
            let letter = match bytes.get(chars.pos) {
                Some(b'\\') => bytes.get(chars.pos + 1).copied(),
                _ => None,
            };
            let c = chars.next()?;
            if let Some(letter @ (b'b' | b'f' | b'u')) = letter {
                return Some((letter, c));
            }
        }
    }
}

/// Decodes a [`JStr`]. Given text the scanner accepted it yields exactly the value; given
/// anything else it stops early instead of panicking.
#[derive(Clone, Debug)]
pub(crate) struct Chars<'a> {
    raw: &'a str,
    pos: usize,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let rest = self.raw.get(self.pos..)?;
        let c = rest.chars().next()?;
        if c != '\\' {
            self.pos += c.len_utf8();
            return Some(c);
        }
        let bytes = rest.as_bytes();
        let escape = *bytes.get(1)?;
        let decoded = match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = hex4(bytes.get(2..6)?)?;
                if (0xd800..0xdc00).contains(&unit) {
                    if bytes.get(6..8)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(bytes.get(8..12)?)?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return None;
                    }
                    self.pos += 6;
                    char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?
                } else {
                    char::from_u32(unit)?
                }
            }
            _ => return None,
        };
        self.pos += if escape == b'u' { 6 } else { 2 };
        Some(decoded)
    }
}

fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + char::from(d).to_digit(16)?))
}

/// Parses a JSON number that is a plain non-negative integer fitting in `u32`; `None` for
/// fractions, exponents, signs and overflow (the kernel's fields are counts and sizes).
pub(crate) fn parse_u32(number: &str) -> Option<u32> {
    if number.is_empty() {
        return None;
    }
    number.bytes().try_fold(0u32, |acc, d| {
        let digit = char::from(d).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// Checks that `text` is exactly one JSON value (RFC 8259, plus: lone surrogates rejected,
/// nesting bounded by [`MAX_DEPTH`]), surrounded by nothing but whitespace.
pub(crate) fn validate(text: &str) -> Result<()> {
    let mut scanner = Scanner::new(text);
    scanner.skip_value(0)?;
    scanner.ws();
    if scanner.pos != text.len() {
        return scanner.fail("end of input after the JSON value");
    }
    Ok(())
}

/// A cursor over JSON text. Every method validates what it consumes, so the scanner can be
/// used on unchecked text; the configuration reader runs [`validate`] first only so that
/// syntax errors are reported before any schema error.
#[derive(Clone, Debug)]
pub(crate) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    /// A scanner positioned at `offset` (an offset this or another scanner reported).
    pub(crate) fn at(text: &'a str, offset: usize) -> Self {
        Self { text, pos: offset }
    }

    /// The current byte offset.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn fail<T>(&self, expected: &'static str) -> Result<T> {
        Err(Error::Syntax {
            offset: self.pos,
            expected,
        })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<()> {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    /// Skips whitespace and tells what the next value is (`None`: no value starts here).
    pub(crate) fn peek_kind(&mut self) -> Option<Kind> {
        self.ws();
        Some(match self.peek()? {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => return None,
        })
    }

    /// Consumes the `{` or `[` that [`Scanner::peek_kind`] just reported.
    pub(crate) fn enter(&mut self) {
        self.ws();
        if let Some(b'{' | b'[') = self.peek() {
            self.pos += 1;
        }
    }

    /// The next member of the object just entered: its key and the key's offset, with the
    /// `:` consumed; `None` once the closing `}` is consumed.
    pub(crate) fn next_key(&mut self, first: bool) -> Result<Option<(JStr<'a>, usize)>> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(None);
        }
        if !first {
            self.expect(b',', "',' or '}'")?;
            self.ws();
        }
        let at = self.pos;
        let key = self.string()?;
        self.expect(b':', "':'")?;
        Ok(Some((key, at)))
    }

    /// Whether the array just entered has another element (the `,` before it consumed);
    /// `false` once the closing `]` is consumed.
    pub(crate) fn next_item(&mut self, first: bool) -> Result<bool> {
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(false);
        }
        if !first {
            self.expect(b',', "',' or ']'")?;
        }
        Ok(true)
    }

    /// A string value.
    pub(crate) fn string(&mut self) -> Result<JStr<'a>> {
        self.ws();
        if self.peek() != Some(b'"') {
            return self.fail("a string");
        }
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return self.fail("closing '\"'"),
                Some(b'"') => {
                    let raw = self.text.get(start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(JStr { raw });
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            let unit = self.hex4()?;
                            if (0xdc00..0xe000).contains(&unit) {
                                self.pos -= 6;
                                return self.fail("a high surrogate before a low one");
                            }
                            if (0xd800..0xdc00).contains(&unit) {
                                if self.text.as_bytes().get(self.pos..self.pos + 2) != Some(b"\\u")
                                {
                                    return self.fail("a low surrogate '\\uDC00'..'\\uDFFF'");
                                }
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    self.pos -= 6;
                                    return self.fail("a low surrogate '\\uDC00'..'\\uDFFF'");
                                }
                            }
                        }
                        _ => return self.fail("an escape: one of \"\\/bfnrtu"),
                    }
                }
                Some(0x00..=0x1f) => return self.fail("no control character in a string"),
                // Other bytes, UTF-8 continuation bytes included: the text is a `str`.
                Some(_) => self.pos += 1,
            }
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut unit = 0;
        for _ in 0..4 {
            match self.peek().and_then(|d| char::from(d).to_digit(16)) {
                Some(digit) => unit = unit * 16 + digit,
                None => return self.fail("a hexadecimal digit"),
            }
            self.pos += 1;
        }
        Ok(unit)
    }

    fn digits(&mut self) -> Result<()> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return self.fail("a digit");
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }

    /// A number value, returned as its text.
    pub(crate) fn number(&mut self) -> Result<&'a str> {
        self.ws();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return self.fail("a digit"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(self.text.get(start..self.pos).unwrap_or_default())
    }

    fn literal(&mut self) -> Result<()> {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        for word in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(());
            }
        }
        self.fail("a value")
    }

    /// Skips one complete value of any kind, validating it. `depth` is the number of
    /// containers already open around it. Iterative: the open containers are a bit stack
    /// (1 = object), which [`MAX_DEPTH`] <= 64 lets fit in a `u64`.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<()> {
        const _: () = assert!(MAX_DEPTH <= 64);
        let mut objects: u64 = 0;
        let mut open: usize = 0;
        loop {
            // A value starts here.
            match self.peek_kind() {
                Some(kind @ (Kind::Object | Kind::Array)) => {
                    if depth + open >= MAX_DEPTH {
                        return Err(Error::TooDeep { offset: self.pos });
                    }
                    self.pos += 1;
                    let is_object = kind == Kind::Object;
                    objects = (objects & !(1 << open)) | (u64::from(is_object) << open);
                    open += 1;
                    self.ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        open -= 1;
                    } else {
                        if is_object {
                            self.string()?;
                            self.expect(b':', "':'")?;
                        }
                        continue;
                    }
                }
                Some(Kind::String) => {
                    self.string()?;
                }
                Some(Kind::Number) => {
                    self.number()?;
                }
                Some(Kind::Bool | Kind::Null) => self.literal()?,
                None => return self.fail("a value"),
            }
            // A value ended: close containers until one continues with ','.
            loop {
                if open == 0 {
                    return Ok(());
                }
                let is_object = objects & (1 << (open - 1)) != 0;
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if is_object {
                            self.ws();
                            self.string()?;
                            self.expect(b':', "':'")?;
                        }
                        break;
                    }
                    Some(b'}') if is_object => {
                        self.pos += 1;
                        open -= 1;
                    }
                    Some(b']') if !is_object => {
                        self.pos += 1;
                        open -= 1;
                    }
                    _ => {
                        return self.fail(if is_object {
                            "',' or '}'"
                        } else {
                            "',' or ']'"
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn write_string(s: &str) -> String {
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        w.string(s);
        let len = w.len();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    /// Decodes one JSON string literal through the scanner.
    fn read_string(json: &str) -> String {
        validate(json).unwrap();
        let mut sc = Scanner::new(json);
        sc.string().unwrap().chars().collect()
    }

    fn syntax_offset(text: &str) -> usize {
        match validate(text) {
            Err(Error::Syntax { offset, .. }) => offset,
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn escapes_quotes_backslashes_and_named_controls() {
        assert_eq!(write_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(write_string("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(write_string(""), r#""""#);
        assert_eq!(write_string("plain/text"), r#""plain/text""#);
    }

    #[test]
    fn escapes_every_control_character_and_round_trips() {
        for c in 0x01u8..0x20 {
            let s: String = ['x', char::from(c), 'y'].iter().collect();
            let json = write_string(&s);
            assert!(json.bytes().all(|b| b >= 0x20), "{json:?}");
            assert_eq!(read_string(&json), s);
        }
        assert_eq!(write_string("\u{1}\u{1f}\0"), r#""\u0001\u001f\u0000""#);
    }

    #[test]
    fn passes_del_and_non_ascii_through() {
        let s = "caf\u{e9} \u{7f} \u{1f600} \u{4e2d}";
        let json = write_string(s);
        assert_eq!(json, std::format!("\"{s}\""));
        assert_eq!(read_string(&json), s);
    }

    #[test]
    fn writer_counts_past_the_end_without_writing() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.raw(b"abc");
        w.raw(b"de");
        w.raw(b"f");
        assert_eq!(w.len(), 6);
        assert_eq!(&buf, b"abc\0");
    }

    #[test]
    fn writes_integers() {
        for n in [0, 1, 9, 10, 1_048_576, u32::MAX] {
            let mut buf = [0u8; 16];
            let mut w = Writer::new(&mut buf);
            w.u32(n);
            let len = w.len();
            assert_eq!(
                core::str::from_utf8(&buf[..len]).unwrap(),
                std::format!("{n}")
            );
        }
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        assert_eq!(read_string(r#""\u0061\/\"\\""#), "a/\"\\");
        assert_eq!(read_string(r#""\ud83d\ude00!""#), "\u{1f600}!");
        assert_eq!(read_string(r#""\u00E9""#), "\u{e9}");
    }

    #[test]
    fn compares_decoded_strings() {
        let a = Scanner::new(r#""a""#).string().unwrap();
        let escaped = Scanner::new(r#""\u0061""#).string().unwrap();
        let b = Scanner::new(r#""b""#).string().unwrap();
        assert!(a.same(escaped) && escaped.same(a));
        assert!(!a.same(b));
        assert!(a.is_key("a") && !escaped.is_key("a"));
        assert!(Scanner::new(r#""x\u0000""#).string().unwrap().has_nul());
        assert!(!Scanner::new(r#""x\\u0000""#).string().unwrap().has_nul());
    }

    #[test]
    fn finds_the_escapes_the_kernel_does_not_decode() {
        let first = |json: &str| {
            validate(json).unwrap();
            Scanner::new(json).string().unwrap().undecoded_escape()
        };
        for decoded in [
            r#""""#,
            r#""plain""#,
            r#""\"\\\/\n\r\t""#,
            "\"caf\u{e9} \u{1f600}\"",
        ] {
            assert_eq!(first(decoded), None, "{decoded}");
        }
        assert_eq!(first(r#""a\nb\bc""#), Some((b'b', '\u{8}')));
        assert_eq!(first(r#""\/\f""#), Some((b'f', '\u{c}')));
        assert_eq!(first(r#""\\u0041""#), None);
        assert_eq!(first(r#""\\\u0041""#), Some((b'u', 'A')));
        assert_eq!(first(r#""x\u00E9\b""#), Some((b'u', '\u{e9}')));
        assert_eq!(first(r#""\ud83d\ude00""#), Some((b'u', '\u{1f600}')));
        assert_eq!(first(r#""\u0000""#), Some((b'u', '\0')));
    }

    #[test]
    fn accepts_valid_documents() {
        for text in [
            "{}",
            "[]",
            " \t\r\n{ } ",
            "0",
            "-0.5e+10",
            "1E-2",
            "true",
            "null",
            r#""\u20ac""#,
            r#"{"a":[1,2,{"b":null}],"c":{"d":[[],{}]},"e":"x"}"#,
            "[false,true,null,\"\",-1,1.0]",
        ] {
            assert_eq!(validate(text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn rejects_malformed_documents_with_offsets() {
        assert_eq!(syntax_offset(""), 0);
        assert_eq!(syntax_offset("{"), 1);
        assert_eq!(syntax_offset("{\"a\" 1}"), 5);
        assert_eq!(syntax_offset("{\"a\":1,}"), 7);
        assert_eq!(syntax_offset("[1,]"), 3);
        assert_eq!(syntax_offset("[1 2]"), 3);
        assert_eq!(syntax_offset("[1}"), 2);
        assert_eq!(syntax_offset("{\"a\":1]"), 6);
        assert_eq!(syntax_offset("01"), 1);
        assert_eq!(syntax_offset("1."), 2);
        assert_eq!(syntax_offset("-"), 1);
        assert_eq!(syntax_offset("1e"), 2);
        assert_eq!(syntax_offset("tru"), 0);
        assert_eq!(syntax_offset("{} {}"), 3);
        assert_eq!(syntax_offset("\"a\nb\""), 2);
        assert_eq!(syntax_offset(r#""\x""#), 2);
        assert_eq!(syntax_offset(r#""\u12G4""#), 5);
        assert_eq!(syntax_offset(r#""\ude00""#), 1);
        assert_eq!(syntax_offset(r#""\ud800x""#), 7);
        assert_eq!(syntax_offset(r#""\ud800\u0041""#), 7);
        assert_eq!(syntax_offset("{1:2}"), 1);
        assert_eq!(syntax_offset("\"abc"), 4);
    }

    #[test]
    fn bounds_nesting() {
        let ok: String = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(validate(&ok), Ok(()));
        let deep: String = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(validate(&deep), Err(Error::TooDeep { offset: MAX_DEPTH }));
        let huge = "[".repeat(10_000);
        assert_eq!(validate(&huge), Err(Error::TooDeep { offset: MAX_DEPTH }));
        let objects = "{\"a\":".repeat(10_000);
        assert!(matches!(validate(&objects), Err(Error::TooDeep { .. })));
        // Mixed nesting keeps track of which bracket closes which container.
        assert_eq!(validate("[{\"a\":[{}]},[{\"b\":[]}]]"), Ok(()));
        assert!(validate("[{\"a\":[{}}]]").is_err());
    }

    #[test]
    fn parses_u32() {
        assert_eq!(parse_u32("0"), Some(0));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        for bad in ["", "-1", "1.0", "1e3", "99999999999999999999"] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
    }

    /// A tiny xorshift generator, so the garbage is reproducible.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] =
            b"{}[]\",:\\u0123456789abcdefABCDEF-+.eE truefalsnl\n\t\x01\xc3\xa9";
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (rng(&mut seed) % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(rng(&mut seed) % ALPHABET.len() as u64) as usize])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = validate(&text);
            let mut sc = Scanner::new(&text);
            if let Ok(s) = sc.string() {
                let _ = s.chars().count();
            }
            // Decoding raw text the scanner never checked must not panic either.
            let _ = JStr { raw: &text }.chars().count();
        }
    }

    #[test]
    fn every_truncation_of_a_document_is_rejected_without_panicking() {
        let doc = r#"{"a":[1,-2.5e3,"x\u00e9\ud83d\ude00",true,null,{"b":false}]}"#;
        assert_eq!(validate(doc), Ok(()));
        for end in 0..doc.len() {
            if let Some(prefix) = doc.get(..end) {
                assert!(validate(prefix).is_err(), "{prefix:?}");
            }
        }
    }
}
