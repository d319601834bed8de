//! `stdiobus-echo-worker`: a small, real stdio_bus worker process for the crate's tests and
//! for trying the crate out.
//!
//! The stdio_bus kernel spawns it, writes newline-delimited JSON-RPC to its stdin and
//! forwards every line it writes to stdout to the host unchanged. It uses std only.
//!
//! ```text
//! stdiobus-echo-worker [--name NAME] [--announce] [--mcp]
//!
//!   --name NAME   put NAME in every response and notification (default `echo`),
//!                 so tests can tell pools apart; `--name=NAME` works too
//!   --announce    at startup, before reading anything, write
//!                 {"jsonrpc":"2.0","method":"worker/ready","params":{"name":NAME,"pid":PID}}
//!   --mcp         keep MCP's handshake, as MCP servers do: until the `initialize` request
//!                 and then the `notifications/initialized` notification have come, answer
//!                 every other request with
//!                 {"jsonrpc":"2.0","id":ID,"error":{"code":-32602,"message":"not initialized"}}
//! ```
//!
//! Every request (an object with `id` and a string `method`) is answered with
//!
//! ```text
//! {"jsonrpc":"2.0","id":ID,"result":{"worker":NAME,"pid":PID,"method":METHOD,"params":PARAMS}}
//! ```
//!
//! where `ID`, `METHOD` and `PARAMS` are copied byte for byte from the request (`PARAMS` is
//! `null` when absent), plus `,"sessionId":SID` at the top level when the request carried a
//! string `sessionId`. Methods with a special meaning:
//!
//! | method    | behaviour |
//! | --------- | --------- |
//! | `exit`    | exit at once with status 0, without responding (dead-worker tests) |
//! | `garbage` | first write the non-UTF-8 line `\xff\xfe garbage \x80 not json`, then the half object `{"jsonrpc":"2.0",`, each on its own line, then the normal response |
//! | `notify`  | params `{"count":N}`: write N notifications `{"jsonrpc":"2.0","method":"worker/tick","params":{"seq":K,"name":NAME}}` (K = 1..=N), then the request `{"jsonrpc":"2.0","id":"worker-1","method":"host/ping","params":{"name":NAME}}` to the host, then the normal response |
//! | `error`   | respond `{"jsonrpc":"2.0","id":ID,"error":{"code":-32000,"message":"requested error"}}` (plus `sessionId` as above) |
//! | `sleep`   | params `{"ms":N}`: sleep N milliseconds, then the normal response |
//! | `burn`    | params `{"us":N}`: compute for N microseconds without sleeping, then the normal response (a CPU-bound server) |
//! | `hang`    | never respond, and go on serving the other requests (a server that lost one) |
//! | `env`     | params `{"name":VAR}`: the normal response with `"value":VALUE` added to `result`, the worker's environment variable VAR (`null` when unset or not UTF-8) |
//! | `cwd`     | the normal response with `"cwd":DIR` added to `result`, the worker's working directory |
//!
//! A missing or invalid `count`/`ms`/`us` counts as 0; a `name` is read as written, between
//! its quotes. Notifications (a `method` without `id`)
//! get no response. Anything else is ignored without a word: lines that are not exactly
//! one JSON object (batches, truncated or malformed JSON, binary junk), requests whose `id`
//! is not a number, string or null, or whose `method` is not a string. The JSON structure is
//! checked strictly; bytes that are not UTF-8 are tolerated inside strings and copied
//! through. Keys are compared as written, so an escaped key such as `"\u0069d"` is not `id`.
//!
//! Input is read as bytes and split on `\n` (a trailing `\r` is JSON whitespace); a final
//! line without `\n` is handled too. Every line written is flushed at once. The process exits
//! with status 0 on end of input or when stdout is closed, and with 1 on other I/O errors.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: stdiobus-echo-worker [--name NAME] [--announce] [--mcp]";

/// The first bytes of every line the worker writes.
const JSONRPC: &[u8] = br#"{"jsonrpc":"2.0","#;
/// The non-UTF-8, non-JSON line written by the `garbage` method (without its `\n`).
const GARBAGE_LINE: &[u8] = b"\xff\xfe garbage \x80 not json";
/// The half JSON object written by the `garbage` method (without its `\n`).
const HALF_OBJECT_LINE: &[u8] = br#"{"jsonrpc":"2.0","#;

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("stdiobus-echo-worker: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our stdout is gone: nobody is left to answer.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stdiobus-echo-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    name: String,
    announce: bool,
    mcp: bool,
}

/// Parses the arguments after the program name; `Ok(None)` asks for the usage text.
fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Option<Options>, String> {
    let mut options = Options {
        name: "echo".to_owned(),
        announce: false,
        mcp: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        if let Some(name) = arg.strip_prefix("--name=") {
            options.name = name.to_owned();
            continue;
        }
        match arg.as_str() {
            "--announce" => options.announce = true,
            "--mcp" => options.mcp = true,
            "--name" => {
                let name = args.next().ok_or("--name needs a value")?;
                options.name = name.to_string_lossy().into_owned();
            }
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(Some(options))
}

/// Reads stdin to its end, answering each line.
fn run(options: &Options) -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = BufReader::with_capacity(64 * 1024, stdin.lock());
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut worker = Worker::new(&options.name, std::process::id());
    if options.mcp {
        worker.handshake = Some(Handshake::Awaited);
    }
    if options.announce {
        worker.announce(&mut out)?;
    }
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let Flow::Exit = worker.handle(&line, &mut out)? {
            return Ok(());
        }
    }
}

/// What the read loop does after a line.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

/// The worker's identity and reusable scratch space.
struct Worker {
    /// The name as a JSON string, quotes included.
    name: Vec<u8>,
    pid: Vec<u8>,
    /// `,"result":{"worker":NAME,"pid":PID,"method":`, prebuilt.
    result_head: Vec<u8>,
    /// The container stack of the JSON scanner.
    stack: Vec<u8>,
    /// Where MCP's handshake stands, with `--mcp`.
    handshake: Option<Handshake>,
}

/// MCP's handshake, as a server sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    /// No `initialize` yet.
    Awaited,
    /// `initialize` came, `notifications/initialized` not yet.
    Initializing,
    Done,
}

impl Worker {
    fn new(name: &str, pid: u32) -> Self {
        let name = json_string(name);
        let pid = pid.to_string().into_bytes();
        let mut result_head = br#","result":{"worker":"#.to_vec();
        result_head.extend_from_slice(&name);
        result_head.extend_from_slice(br#","pid":"#);
        result_head.extend_from_slice(&pid);
        result_head.extend_from_slice(br#","method":"#);
        Worker {
            name,
            pid,
            result_head,
            stack: Vec::new(),
            handshake: None,
        }
    }

    /// Writes the `worker/ready` notification.
    fn announce<W: Write>(&self, out: &mut W) -> io::Result<()> {
        emit(
            out,
            &[
                JSONRPC,
                br#""method":"worker/ready","params":{"name":"#,
                &self.name,
                br#","pid":"#,
                &self.pid,
                b"}}",
            ],
        )
    }

    /// Answers one input line (without its `\n`).
    fn handle<W: Write>(&mut self, line: &[u8], out: &mut W) -> io::Result<Flow> {
        let Some(fields) = scan_message(line, &mut self.stack) else {
            return Ok(Flow::Continue);
        };
        if let (Some(method), None) = (fields.method, fields.id)
            && method == br#""notifications/initialized""#
            && self.handshake == Some(Handshake::Initializing)
        {
            self.handshake = Some(Handshake::Done);
        }
        let (Some(id), Some(method)) = (fields.id, fields.method) else {
            // A notification, or not JSON-RPC at all.
            return Ok(Flow::Continue);
        };
        if !is_id(id) || !is_string(method) {
            return Ok(Flow::Continue);
        }
        if method == br#""initialize""# && self.handshake == Some(Handshake::Awaited) {
            self.handshake = Some(Handshake::Initializing);
        } else if self.handshake.is_some_and(|h| h != Handshake::Done) {
            return emit(
                out,
                &[
                    JSONRPC,
                    br#""id":"#,
                    id,
                    br#","error":{"code":-32602,"message":"not initialized"}}"#,
                ],
            )
            .map(|()| Flow::Continue);
        }
        let (session_key, session_id): (&[u8], &[u8]) = match fields.session_id {
            Some(sid) if is_string(sid) => (br#","sessionId":"#, sid),
            _ => (b"", b""),
        };
        // What `env` and `cwd` add to the result.
        let mut extra = Vec::new();
        match &method[1..method.len() - 1] {
            b"exit" => return Ok(Flow::Exit),
            b"hang" => return Ok(Flow::Continue),
            b"error" => {
                emit(
                    out,
                    &[
                        JSONRPC,
                        br#""id":"#,
                        id,
                        br#","error":{"code":-32000,"message":"requested error"}"#,
                        session_key,
                        session_id,
                        b"}",
                    ],
                )?;
                return Ok(Flow::Continue);
            }
            b"garbage" => {
                emit(out, &[GARBAGE_LINE])?;
                emit(out, &[HALF_OBJECT_LINE])?;
            }
            b"notify" => {
                let count = param_u64(fields.params, b"count", &mut self.stack);
                for seq in 1..=count {
                    let seq = seq.to_string();
                    emit(
                        out,
                        &[
                            JSONRPC,
                            br#""method":"worker/tick","params":{"seq":"#,
                            seq.as_bytes(),
                            br#","name":"#,
                            &self.name,
                            b"}}",
                        ],
                    )?;
                }
                emit(
                    out,
                    &[
                        JSONRPC,
                        br#""id":"worker-1","method":"host/ping","params":{"name":"#,
                        &self.name,
                        b"}}",
                    ],
                )?;
            }
            b"sleep" => {
                let ms = param_u64(fields.params, b"ms", &mut self.stack);
                std::thread::sleep(Duration::from_millis(ms));
            }
            b"burn" => {
                let us = param_u64(fields.params, b"us", &mut self.stack);
                burn(Duration::from_micros(us));
            }
            b"env" => {
                let name = param_string(fields.params, b"name", &mut self.stack);
                let value = std::str::from_utf8(name)
                    .ok()
                    .filter(|name| !name.is_empty())
                    .and_then(|name| std::env::var(name).ok());
                extra = br#","value":"#.to_vec();
                extra.extend(value.map_or(b"null".to_vec(), |value| json_string(&value)));
            }
            b"cwd" => {
                let dir = std::env::current_dir()?;
                extra = br#","cwd":"#.to_vec();
                extra.extend(json_string(&dir.to_string_lossy()));
            }
            _ => {}
        }
        emit(
            out,
            &[
                JSONRPC,
                br#""id":"#,
                id,
                &self.result_head,
                method,
                br#","params":"#,
                fields.params.unwrap_or(b"null"),
                &extra,
                b"}",
                session_key,
                session_id,
                b"}",
            ],
        )?;
        Ok(Flow::Continue)
    }
}

/// Writes `parts` and a `\n` as one line, and flushes it.
fn emit<W: Write>(out: &mut W, parts: &[&[u8]]) -> io::Result<()> {
    for part in parts {
        out.write_all(part)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Encodes `s` as a JSON string, quotes included.
fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.push(b'"');
    out
}

// ---------------------------------------------------------------------------------------------
// The scanner: a validating, non-recursive walk over raw JSON bytes that hands out slices.
// ---------------------------------------------------------------------------------------------

/// The top-level fields of one message, each the raw JSON text of its value as it appears in
/// the line (strings keep their quotes and escapes). A repeated key keeps its last value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Fields<'a> {
    id: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    params: Option<&'a [u8]>,
    session_id: Option<&'a [u8]>,
}

/// Scans a line that must hold exactly one JSON object (whitespace around it allowed);
/// `None` when it does not. `stack` is scratch space, reused between calls.
fn scan_message<'a>(line: &'a [u8], stack: &mut Vec<u8>) -> Option<Fields<'a>> {
    let mut fields = Fields::default();
    let end = scan_object(line, skip_ws(line, 0), stack, |key, value| match key {
        b"id" => fields.id = Some(value),
        b"method" => fields.method = Some(value),
        b"params" => fields.params = Some(value),
        b"sessionId" => fields.session_id = Some(value),
        _ => {}
    })?;
    (skip_ws(line, end) == line.len()).then_some(fields)
}

/// Keeps the CPU busy for `time`, as a request that computes does.
fn burn(time: Duration) {
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < time {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Reads `params.<key>` as a non-negative integer; 0 when absent or anything else.
fn param_u64(params: Option<&[u8]>, key: &[u8], stack: &mut Vec<u8>) -> u64 {
    let Some(params) = params else { return 0 };
    let mut found = None;
    scan_object(params, 0, stack, |k, v| {
        if k == key {
            found = Some(v);
        }
    });
    found.and_then(parse_u64).unwrap_or(0)
}

/// Reads `params.<key>` as a string, the text between its quotes as written; empty when
/// absent or anything else.
fn param_string<'a>(params: Option<&'a [u8]>, key: &[u8], stack: &mut Vec<u8>) -> &'a [u8] {
    let Some(params) = params else { return b"" };
    let mut found: &[u8] = b"";
    scan_object(params, 0, stack, |k, v| {
        if k == key && is_string(v) {
            found = &v[1..v.len() - 1];
        }
    });
    found
}

/// Parses a JSON number made of digits only.
fn parse_u64(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// A string (its first byte is a quote; the scanner has validated the rest).
fn is_string(raw: &[u8]) -> bool {
    raw.first() == Some(&b'"')
}

/// A valid JSON-RPC id: a number, a string or null.
fn is_id(raw: &[u8]) -> bool {
    matches!(raw.first(), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Walks the object starting at `b[i]` (which must be `{`), calling `member(key, value)` for
/// each member with the key's text between its quotes and the value's raw text. Returns the
/// index just past the closing `}`, or `None` if the object is not valid JSON.
fn scan_object<'a>(
    b: &'a [u8],
    mut i: usize,
    stack: &mut Vec<u8>,
    mut member: impl FnMut(&'a [u8], &'a [u8]),
) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let key_end = skip_string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = skip_value(b, start, stack)?;
        member(key, &b[start..end]);
        i = skip_ws(b, end);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Skips the JSON value starting at `b[i]`, returning the index just past it, or `None` if it
/// is not valid JSON. Nesting is tracked in `stack` (one byte per open container), not by
/// recursion, so no input can overflow the call stack.
fn skip_value(b: &[u8], mut i: usize, stack: &mut Vec<u8>) -> Option<usize> {
    stack.clear();
    'value: loop {
        i = skip_ws(b, i);
        match *b.get(i)? {
            b'{' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(b'}');
                    i = skip_key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(b']');
                    continue 'value;
                }
            }
            b'"' => i = skip_string(b, i)?,
            b'-' | b'0'..=b'9' => i = skip_number(b, i)?,
            b't' => i = skip_literal(b, i, b"true")?,
            b'f' => i = skip_literal(b, i, b"false")?,
            b'n' => i = skip_literal(b, i, b"null")?,
            _ => return None,
        }
        // A value ends at `i`: close containers until one continues with another element.
        loop {
            let Some(&close) = stack.last() else {
                return Some(i);
            };
            i = skip_ws(b, i);
            match *b.get(i)? {
                b',' => {
                    i += 1;
                    if close == b'}' {
                        i = skip_key(b, skip_ws(b, i))?;
                    }
                    continue 'value;
                }
                c if c == close => {
                    stack.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// Skips `"key" :` starting at the key's opening quote.
fn skip_key(b: &[u8], i: usize) -> Option<usize> {
    let i = skip_ws(b, skip_string(b, i)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// Skips the string starting at `b[i]` (which must be `"`). Escapes are checked; raw control
/// characters are refused; other bytes, UTF-8 or not, are accepted.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut i = i + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0x00..=0x1f => return None,
            _ => i += 1,
        }
    }
}

fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Skips a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn skip_number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = skip_digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = skip_digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = skip_digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

fn skip_literal(b: &[u8], i: usize, literal: &[u8]) -> Option<usize> {
    b[i..].starts_with(literal).then_some(i + literal.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &[u8]) -> Option<Fields<'_>> {
        scan_message(line, &mut Vec::new())
    }

    fn fields<'a>(
        id: Option<&'a [u8]>,
        method: Option<&'a [u8]>,
        params: Option<&'a [u8]>,
        session_id: Option<&'a [u8]>,
    ) -> Fields<'a> {
        Fields {
            id,
            method,
            params,
            session_id,
        }
    }

    /// Runs `input` through a worker named `t` with pid 42 and returns what it wrote.
    fn respond(input: &[u8]) -> (Flow, Vec<u8>) {
        let mut worker = Worker::new("t", 42);
        let mut out = Vec::new();
        let flow = worker.handle(input, &mut out).unwrap();
        (flow, out)
    }

    fn respond_str(input: &str) -> String {
        let (flow, out) = respond(input.as_bytes());
        assert_eq!(flow, Flow::Continue);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn env_and_cwd_report_the_process_environment_and_directory() {
        let path = std::env::var("PATH").unwrap();
        let line = respond_str(r#"{"id":1,"method":"env","params":{"name":"PATH"}}"#);
        assert_eq!(
            line,
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"worker\":\"t\",\"pid\":42,\
                 \"method\":\"env\",\"params\":{{\"name\":\"PATH\"}},\"value\":{}}}}}\n",
                String::from_utf8(json_string(&path)).unwrap()
            )
        );
        for params in [
            r#"{"name":"STDIOBUS_UNSET_VARIABLE"}"#,
            "{}",
            r#"{"name":1}"#,
        ] {
            let line = respond_str(&format!(r#"{{"id":2,"method":"env","params":{params}}}"#));
            assert!(
                line.ends_with(
                    r#","value":null}}
"#
                ),
                "{line}"
            );
        }
        let dir = std::env::current_dir().unwrap();
        let line = respond_str(r#"{"id":3,"method":"cwd"}"#);
        let expected = format!(
            r#","params":null,"cwd":{}}}}}"#,
            String::from_utf8(json_string(&dir.to_string_lossy())).unwrap()
        );
        assert!(line.trim_end().ends_with(&expected), "{line}");
    }

    #[test]
    fn nested_params_with_brackets_and_escaped_quotes_in_strings() {
        let params = br#"{"a":[1,{"b":"]}\"[{"},"x\\"],"c":{"d":"}}}"},"e":"\"}"}"#;
        let mut line = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":"#.to_vec();
        line.extend_from_slice(params);
        line.extend_from_slice(br#","sessionId":"s\"1"}"#);
        assert_eq!(
            scan(&line),
            Some(fields(
                Some(b"1"),
                Some(br#""m""#),
                Some(params),
                Some(br#""s\"1""#)
            ))
        );
    }

    #[test]
    fn params_of_every_kind_and_whitespace() {
        for params in [
            &br#"[1, 2.5e-3, -0, true, false, null, "x", [], {}]"#[..],
            b"\"just a string\"",
            b"-12.5E+10",
            b"null",
            b"{ \"a\" : [ { } , [ ] ] }",
        ] {
            let mut line = b" \t{ \"id\" : 7 , \"method\" : \"m\" , \"params\" : ".to_vec();
            line.extend_from_slice(params);
            line.extend_from_slice(b" } \r");
            let f = scan(&line).unwrap();
            assert_eq!(
                f.params,
                Some(params),
                "{}",
                String::from_utf8_lossy(params)
            );
            assert_eq!(f.id, Some(&b"7"[..]));
        }
    }

    #[test]
    fn ids_as_numbers_strings_and_null() {
        for id in [
            &b"0"[..],
            b"-17",
            b"3.25",
            b"1e9",
            b"\"abc\"",
            b"\"a\\\"b\\\\\"",
            b"\"\\u00e9\"",
            b"null",
        ] {
            let mut line = br#"{"method":"m","id":"#.to_vec();
            line.extend_from_slice(id);
            line.push(b'}');
            assert_eq!(scan(&line).unwrap().id, Some(id));
            assert!(is_id(id));
        }
        for not_an_id in [&b"true"[..], b"false", b"[1]", b"{}"] {
            assert!(!is_id(not_an_id));
            let mut line = br#"{"method":"m","id":"#.to_vec();
            line.extend_from_slice(not_an_id);
            line.push(b'}');
            assert_eq!(respond(&line).1, b"");
        }
    }

    #[test]
    fn missing_fields() {
        assert_eq!(scan(b"{}"), Some(Fields::default()));
        assert_eq!(
            scan(br#"{"method":"n"}"#),
            Some(fields(None, Some(br#""n""#), None, None))
        );
        assert_eq!(
            scan(br#"{"id":5,"result":{"method":"inner"}}"#),
            Some(fields(Some(b"5"), None, None, None))
        );
        // Fields inside nested values are not top-level fields.
        assert_eq!(
            scan(br#"{"x":{"id":1,"method":"m"}}"#),
            Some(Fields::default())
        );
    }

    #[test]
    fn repeated_key_keeps_the_last_value() {
        assert_eq!(scan(br#"{"id":1,"id":2}"#).unwrap().id, Some(&b"2"[..]));
    }

    #[test]
    fn garbage_and_malformed_lines_are_refused() {
        for line in [
            &b""[..],
            b"   ",
            b"\xff\xfe garbage \x80 not json",
            b"\xff{\"id\":1,\"method\":\"m\"}",
            br#"{"jsonrpc":"2.0","#,
            br#"{"id":1,"method":"m""#,
            br#"{"id":1,"method":"m"} x"#,
            br#"{"id":1,"method":"m"}{}"#,
            br#"[{"id":1,"method":"m"}]"#,
            br#"{"id":1,"method":"m","params":[1,2}"#,
            br#"{"id":1,"method":"m","params":{"a":1]}"#,
            br#"{"id":1,"method":"m","params":[1,]}"#,
            br#"{"id":1,"method":"m","params":{"a"}}"#,
            br#"{"id":1,"method":"m","params":{,}}"#,
            br#"{"id":01,"method":"m"}"#,
            br#"{"id":1.,"method":"m"}"#,
            br#"{"id":-,"method":"m"}"#,
            br#"{"id":1e,"method":"m"}"#,
            br#"{"id":tru,"method":"m"}"#,
            br#"{"id":nulll,"method":"m"}"#,
            br#"{"id":"\x","method":"m"}"#,
            br#"{"id":"\u12G4","method":"m"}"#,
            br#"{"id":"\u12"}"#,
            b"{\"id\":\"a\x01b\",\"method\":\"m\"}",
            br#"{id:1}"#,
            br#"{"id":1,}"#,
            b"{\"id\":1,\"method\":\"m\",\"params\":\"trailing backslash\\",
            b"{\x00}",
        ] {
            assert_eq!(scan(line), None, "{}", String::from_utf8_lossy(line));
            assert_eq!(respond(line).1, b"", "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn non_utf8_bytes_inside_strings_are_tolerated_and_copied() {
        let line = b"{\"id\":\"\xff\",\"method\":\"m\",\"params\":[\"\x80\xfe\"]}";
        let (_, out) = respond(line);
        assert_eq!(
            out,
            b"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"result\":{\"worker\":\"t\",\"pid\":42,\
              \"method\":\"m\",\"params\":[\"\x80\xfe\"]}}\n"
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 1_000_000;
        let mut line = br#"{"id":1,"method":"m","params":"#.to_vec();
        line.extend(std::iter::repeat_n(b'[', depth));
        line.extend(std::iter::repeat_n(b']', depth));
        line.push(b'}');
        assert_eq!(scan(&line).unwrap().params.unwrap().len(), 2 * depth);
        line.truncate(line.len() - 2);
        line.push(b'}');
        assert_eq!(scan(&line), None);
    }

    #[test]
    fn request_gets_the_echo_response() {
        assert_eq!(
            respond_str(r#"{"jsonrpc":"2.0","id":"a\"b","method":"x/y","params":{"k":[1]}}"#),
            concat!(
                r#"{"jsonrpc":"2.0","id":"a\"b","result":{"worker":"t","pid":42,"#,
                r#""method":"x/y","params":{"k":[1]}}}"#,
                "\n"
            )
        );
        assert_eq!(
            respond_str(r#"{"id":null,"method":"m","sessionId":"s-1"}"#),
            concat!(
                r#"{"jsonrpc":"2.0","id":null,"result":{"worker":"t","pid":42,"#,
                r#""method":"m","params":null},"sessionId":"s-1"}"#,
                "\n"
            )
        );
        // A sessionId that is not a string is left out.
        assert_eq!(
            respond_str(r#"{"id":3,"method":"m","sessionId":5}"#),
            concat!(
                r#"{"jsonrpc":"2.0","id":3,"result":{"worker":"t","pid":42,"#,
                r#""method":"m","params":null}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn notifications_and_non_requests_get_nothing() {
        assert_eq!(
            respond_str(r#"{"jsonrpc":"2.0","method":"m","params":[]}"#),
            ""
        );
        assert_eq!(respond_str(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), "");
        assert_eq!(respond_str(r#"{"id":1,"method":7}"#), "");
        assert_eq!(respond_str(r#"{"id":1,"method":"exit"}x"#), "");
    }

    #[test]
    fn exit_stops_without_a_word() {
        assert_eq!(
            respond(br#"{"id":1,"method":"exit"}"#),
            (Flow::Exit, Vec::new())
        );
        // As a notification it is ignored like any other.
        assert_eq!(
            respond(br#"{"method":"exit"}"#),
            (Flow::Continue, Vec::new())
        );
    }

    #[test]
    fn error_method() {
        assert_eq!(
            respond_str(r#"{"id":9,"method":"error","sessionId":"s"}"#),
            concat!(
                r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32000,"message":"requested error"},"#,
                r#""sessionId":"s"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn garbage_method() {
        let (_, out) = respond(br#"{"id":1,"method":"garbage"}"#);
        let mut expected = b"\xff\xfe garbage \x80 not json\n{\"jsonrpc\":\"2.0\",\n".to_vec();
        expected.extend_from_slice(
            br#"{"jsonrpc":"2.0","id":1,"result":{"worker":"t","pid":42,"method":"garbage","params":null}}"#,
        );
        expected.push(b'\n');
        assert_eq!(out, expected);
    }

    #[test]
    fn with_mcp_requests_wait_for_the_handshake() {
        let mut worker = Worker::new("t", 42);
        worker.handshake = Some(Handshake::Awaited);
        let mut answer = |line: &str| {
            let mut out = Vec::new();
            worker.handle(line.as_bytes(), &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let refused = "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"not initialized\"}}\n";
        assert_eq!(answer(r#"{"id":1,"method":"tools/list"}"#), refused);
        assert!(answer(r#"{"id":0,"method":"initialize"}"#).contains(r#""result""#));
        assert_eq!(answer(r#"{"id":1,"method":"tools/list"}"#), refused);
        assert_eq!(answer(r#"{"method":"notifications/initialized"}"#), "");
        assert!(answer(r#"{"id":1,"method":"tools/list"}"#).contains(r#""result""#));
    }

    #[test]
    fn notify_method() {
        assert_eq!(
            respond_str(r#"{"id":1,"method":"notify","params":{"x":[],"count":2}}"#),
            concat!(
                r#"{"jsonrpc":"2.0","method":"worker/tick","params":{"seq":1,"name":"t"}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","method":"worker/tick","params":{"seq":2,"name":"t"}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":"worker-1","method":"host/ping","params":{"name":"t"}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":1,"result":{"worker":"t","pid":42,"method":"notify","#,
                r#""params":{"x":[],"count":2}}}"#,
                "\n"
            )
        );
        // No usable count: no ticks, still the ping and the response.
        for params in [r#""#, r#","params":{"count":-1}"#, r#","params":[3]"#] {
            let out = respond_str(&format!(r#"{{"id":1,"method":"notify"{params}}}"#));
            assert_eq!(out.lines().count(), 2, "{out}");
            assert!(out.starts_with(r#"{"jsonrpc":"2.0","id":"worker-1""#));
        }
    }

    #[test]
    fn sleep_method() {
        let start = std::time::Instant::now();
        let out = respond_str(r#"{"id":1,"method":"sleep","params":{"ms":30}}"#);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(out.contains(r#""method":"sleep","params":{"ms":30}"#));
    }

    #[test]
    fn large_params_are_copied_through() {
        let big = "x\\\"]}".repeat(300_000);
        let line = format!(r#"{{"id":1,"method":"m","params":["{big}"]}}"#);
        let out = respond_str(&line);
        assert!(out.ends_with(&format!("\"params\":[\"{big}\"]}}}}\n")));
    }

    #[test]
    fn name_is_json_encoded() {
        assert_eq!(
            json_string("a\"b\\c\n\u{1}é"),
            b"\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\""
        );
        let mut out = Vec::new();
        Worker::new("p\"q", 7).announce(&mut out).unwrap();
        assert_eq!(
            out,
            b"{\"jsonrpc\":\"2.0\",\"method\":\"worker/ready\",\"params\":{\"name\":\"p\\\"q\",\"pid\":7}}\n"
        );
    }

    #[test]
    fn parse_u64_accepts_plain_digits_only() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"1.5"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"\"1\""), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn command_line() {
        let parse = |args: &[&str]| parse_args(args.iter().map(OsString::from));
        assert_eq!(
            parse(&[]),
            Ok(Some(Options {
                name: "echo".into(),
                announce: false,
                mcp: false
            }))
        );
        assert_eq!(
            parse(&["--name", "a", "--announce", "--mcp"]),
            Ok(Some(Options {
                name: "a".into(),
                announce: true,
                mcp: true
            }))
        );
        assert_eq!(
            parse(&["--name=b"]),
            Ok(Some(Options {
                name: "b".into(),
                announce: false,
                mcp: false
            }))
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        assert!(parse(&["--name"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
