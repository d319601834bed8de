//! The requests, built before anything is timed, and the reading of a reply's id.

use crate::settings::{BATCH, LARGE_LEN, RESPONSE_PREFIX, Settings};

/// The requests, built before anything is timed. Ids are plain numbers, so a response's
/// id is read without allocating. `T` is what the contender's `send` takes: bytes, or
/// `String` for the tokio backend, converted once up front.
pub struct Messages<T = Vec<u8>> {
    pub warmup: Vec<T>,
    pub ping_pong: Vec<T>,
    pub pipelined: Vec<T>,
    /// The pipelined requests, [`BATCH`] to a batch, newline-separated.
    pub batches: Vec<T>,
    /// First id of `ping_pong`.
    pub ping_pong_base: u64,
    /// Warm-up and measured large messages, ids from `large_base`.
    pub large: Vec<T>,
    pub large_base: u64,
}

impl Messages {
    pub fn new(s: &Settings) -> Self {
        let small = |id: u64| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":{{"n":{id}}}}}"#)
                .into_bytes()
        };
        let ping_pong_base = 1_000_000;
        let pipelined_base = 100_000_000;
        let large_base = 2_000_000_000;
        let large_count = s.large + large_warmup(s);
        let pipelined: Vec<Vec<u8>> = (0..s.pipelined as u64)
            .map(|i| small(pipelined_base + i))
            .collect();
        Messages {
            warmup: (0..s.warmup as u64).map(small).collect(),
            ping_pong: (0..s.requests as u64)
                .map(|i| small(ping_pong_base + i))
                .collect(),
            batches: pipelined.chunks(BATCH).map(|c| c.join(&b'\n')).collect(),
            pipelined,
            ping_pong_base,
            large: (0..large_count as u64)
                .map(|i| large_message(large_base + i))
                .collect(),
            large_base,
        }
    }
}

impl<T> Messages<T> {
    /// The same requests in another form; ids are unchanged.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Messages<U> {
        let all = |messages: Vec<T>| messages.into_iter().map(&f).collect();
        Messages {
            warmup: all(self.warmup),
            ping_pong: all(self.ping_pong),
            pipelined: all(self.pipelined),
            batches: all(self.batches),
            ping_pong_base: self.ping_pong_base,
            large: all(self.large),
            large_base: self.large_base,
        }
    }
}

/// Unmeasured large round trips before the measured ones.
pub fn large_warmup(s: &Settings) -> usize {
    s.warmup.clamp(1, 2)
}

/// `{"jsonrpc":"2.0","id":ID,"method":"echo","params":"xxx…"}`, `LARGE_LEN` bytes.
pub fn large_message(id: u64) -> Vec<u8> {
    let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"echo","params":""#);
    let tail = b"\"}";
    let mut message = Vec::with_capacity(LARGE_LEN);
    message.extend_from_slice(head.as_bytes());
    message.resize(LARGE_LEN - tail.len(), b'x');
    message.extend_from_slice(tail);
    assert_eq!(message.len(), LARGE_LEN);
    message
}

/// The id of an echo worker response: `{"jsonrpc":"2.0","id":ID,...`.
pub fn response_id(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(RESPONSE_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        rest[..digits]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}
