//! The kernel configuration, built without allocating.
//!
//! The kernel takes its configuration as JSON text or as a file path. When the text is
//! wrong, `stdio_bus_create` only returns NULL with a generic "Failed to load
//! configuration" and prints the actual reason on stderr, so everything the kernel would
//! reject is checked here first, with an error that names the pool and the field.
//!
//! Two ways in:
//! - [`ConfigBuffer::write`] turns [`Pool`]s and [`Limits`] into the kernel's JSON inside a
//!   fixed buffer (which can be a `static`);
//! - [`Config::from_json`] checks caller-supplied JSON against the same rules, and
//!   [`Config::from_file`] names a file that `Bus::create` checks the same way.
//!
//! Strings the kernel hands to exec (ids, commands, arguments) are also checked for what it
//! would change silently: it (archive 1.1.1, observed) decodes only the JSON escapes `\"`
//! `\\` `\/` `\n` `\r` `\t` and passes any other escape on as its literal text, so a
//! control character other than `\n` `\r` `\t`, or in JSON text a `\b`, `\f` or `\uXXXX`
//! escape, is refused with [`ConfigError::UnsupportedCharacter`].

use core::ffi::CStr;
use core::fmt;

use crate::json::{self, JStr, Kind, Scanner};

mod file;
pub(crate) use file::check as check_file;

/// One worker pool: `instances` copies of `command args…`, addressed by `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool<'a> {
    /// Unique, non-empty name of the pool.
    pub id: &'a str,
    /// Program the kernel executes for each worker; a NUL byte cannot be passed to exec.
    /// In the id, the command and the arguments, control characters other than `\n`, `\r`
    /// and `\t` are refused: the kernel cannot carry them (see
    /// [`ConfigError::UnsupportedCharacter`]).
    pub command: &'a str,
    /// Arguments after the program name.
    pub args: &'a [&'a str],
    /// Number of workers, at least 1.
    pub instances: u32,
}

impl<'a> Pool<'a> {
    /// A pool of one worker with no arguments; `const` so pool tables can be constants.
    pub const fn new(id: &'a str, command: &'a str) -> Self {
        Self {
            id,
            command,
            args: &[],
            instances: 1,
        }
    }

    /// The same pool with these arguments.
    pub const fn args(self, args: &'a [&'a str]) -> Self {
        Self { args, ..self }
    }

    /// The same pool with this many workers.
    pub const fn instances(self, instances: u32) -> Self {
        Self { instances, ..self }
    }
}

/// The six optional kernel limits; `None` leaves the kernel's default (the field is left
/// out of the JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// The longest line, its newline included, the kernel takes from a worker (or a
    /// listener client), in bytes; by default 1 MiB with the 1.1.1 archive and 10 MiB with
    /// 2.2.1. A longer worker line is dropped and reported
    /// ([`Event::LineTooLong`](crate::Event::LineTooLong)).
    pub max_input_buffer: Option<u32>,
    /// Largest output queue per worker, in bytes.
    pub max_output_queue: Option<u32>,
    /// Restarts allowed per worker within `restart_window_sec`.
    pub max_restarts: Option<u32>,
    /// Window over which restarts are counted, in seconds.
    pub restart_window_sec: Option<u32>,
    /// How long a stop waits for workers to drain, in seconds.
    pub drain_timeout_sec: Option<u32>,
    /// How long back-pressure may last before the kernel gives up, in seconds.
    pub backpressure_timeout_sec: Option<u32>,
}

/// The limit names in the kernel's JSON, in the order they are written.
const LIMIT_NAMES: [&str; 6] = [
    "max_input_buffer",
    "max_output_queue",
    "max_restarts",
    "restart_window_sec",
    "drain_timeout_sec",
    "backpressure_timeout_sec",
];

impl Limits {
    /// All limits at the kernel's defaults; unlike `Default::default`, usable in a `const`.
    pub const fn new() -> Self {
        Self {
            max_input_buffer: None,
            max_output_queue: None,
            max_restarts: None,
            restart_window_sec: None,
            drain_timeout_sec: None,
            backpressure_timeout_sec: None,
        }
    }

    fn values(&self) -> [Option<u32>; 6] {
        [
            self.max_input_buffer,
            self.max_output_queue,
            self.max_restarts,
            self.restart_window_sec,
            self.drain_timeout_sec,
            self.backpressure_timeout_sec,
        ]
    }
}

/// Where the kernel reads its configuration from: checked JSON text or a file path.
/// Borrowed and `Copy`; [`Bus::create`](crate::Bus::create) keeps the borrow for the bus's
/// lifetime, since the kernel may keep pointers into the text.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    source: Source<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Source<'a> {
    Json(&'a CStr),
    File(&'a CStr),
}

#[cfg(feature = "defmt")]
impl defmt::Format for Config<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.source {
            Source::Json(json) => defmt::write!(f, "Config::Json({=[u8]:a})", json.to_bytes()),
            Source::File(path) => defmt::write!(f, "Config::File({=[u8]:a})", path.to_bytes()),
        }
    }
}

impl<'a> Config<'a> {
    /// Raw JSON text, checked here against the same rules as [`ConfigBuffer::write`]
    /// (plus JSON syntax and types), because the kernel would report any problem only as a
    /// generic error with the reason on stderr. Keys the kernel does not know are ignored;
    /// a known key given twice is rejected as ambiguous.
    pub fn from_json(json: &'a CStr) -> Result<Self, ConfigError> {
        check_text_document(json.to_bytes())?;
        Ok(Self {
            source: Source::Json(json),
        })
    }

    /// A configuration file the kernel reads when the instance is created.
    ///
    /// [`Bus::create`](crate::Bus::create) checks it right before the kernel reads it:
    /// the path must name a regular file ([`ConfigError::NotAFile`] otherwise; a FIFO
    /// would block the kernel forever), readable ([`ConfigError::FileUnreadable`]), whose
    /// text passes the same checks as [`Config::from_json`].
    pub const fn from_file(path: &'a CStr) -> Self {
        Self {
            source: Source::File(path),
        }
    }

    /// The JSON text, for the `config_json` option.
    #[allow(dead_code)] // Used by the FFI layer.
    pub(crate) fn json(&self) -> Option<&'a CStr> {
        match self.source {
            Source::Json(json) => Some(json),
            Source::File(_) => None,
        }
    }

    /// The file path, for the `config_path` option.
    #[allow(dead_code)] // Used by the FFI layer.
    pub(crate) fn file(&self) -> Option<&'a CStr> {
        match self.source {
            Source::File(path) => Some(path),
            Source::Json(_) => None,
        }
    }
}

/// A fixed-capacity buffer the configuration JSON is written into: `N` bytes, including
/// the terminating NUL the kernel needs. `new` is `const`, so the buffer can be a `static`
/// and the whole configuration lives without a heap.
pub struct ConfigBuffer<const N: usize> {
    buf: [u8; N],
    /// Length of the last successful write, without the NUL; 0 otherwise.
    len: usize,
}

impl<const N: usize> ConfigBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Checks `pools` (see [`ConfigError`]), then writes the kernel's JSON. Nothing partial
    /// is ever returned: on error the buffer's content is unspecified and [`Self::as_str`]
    /// is empty; if the JSON does not fit, the error says exactly how many bytes it needs.
    pub fn write(
        &mut self,
        pools: &[Pool<'_>],
        limits: &Limits,
    ) -> Result<Config<'_>, ConfigError> {
        self.len = 0;
        check_pools(pools)?;
        let mut writer = json::Writer::new(&mut self.buf);
        emit(&mut writer, pools, limits);
        let len = writer.len();
        let needed = len.saturating_add(1);
        let too_small = ConfigError::BufferTooSmall {
            needed,
            capacity: N,
        };
        let Some(nul) = self.buf.get_mut(len) else {
            return Err(too_small);
        };
        *nul = 0;
        self.len = len;
        // The JSON holds no NUL (the writer escapes every control character), so the
        // first NUL is the one just written; the error branch cannot be taken.
        let json = CStr::from_bytes_until_nul(&self.buf).map_err(|_| too_small)?;
        Ok(Config {
            source: Source::Json(json),
        })
    }

    /// The JSON last written, without the NUL; empty before the first successful write and
    /// after a failed one.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl<const N: usize> Default for ConfigBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ConfigBuffer<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuffer")
            .field("capacity", &N)
            .field("json", &self.as_str())
            .finish()
    }
}

/// The first bytes of a pool id, copied into a [`ConfigError`] so that the error can name
/// the pool while staying `Copy` and borrowing nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PoolIdText {
    bytes: [u8; PoolIdText::CAPACITY],
    len: u8,
    truncated: bool,
}

impl PoolIdText {
    /// Bytes kept; a longer id is cut at a character boundary and marked truncated.
    pub const CAPACITY: usize = 40;

    fn from_chars(chars: impl Iterator<Item = char>) -> Self {
        let mut text = Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
            truncated: false,
        };
        let mut len = 0;
        for c in chars {
            let end = len + c.len_utf8();
            match text.bytes.get_mut(len..end) {
                Some(dst) => {
                    c.encode_utf8(dst);
                    len = end;
                }
                None => {
                    text.truncated = true;
                    break;
                }
            }
        }
        text.len = len as u8;
        text
    }

    fn new(id: &str) -> Self {
        Self::from_chars(id.chars())
    }

    /// The id, or its first bytes if [`Self::is_truncated`].
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Whether the id was longer than [`Self::CAPACITY`] bytes.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// Quoted, with control characters escaped, and `...` inside the quotes when truncated.
impl fmt::Display for PoolIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        f.write_char('"')?;
        for c in self.as_str().chars() {
            for e in c.escape_debug() {
                f.write_char(e)?;
            }
        }
        if self.truncated {
            f.write_str("...")?;
        }
        f.write_char('"')
    }
}

impl fmt::Debug for PoolIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PoolIdText {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}

/// A field of a pool, as named in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PoolField {
    /// `id`.
    Id,
    /// `command`.
    Command,
    /// `args` as a whole.
    Args,
    /// One element of `args`, by index.
    Arg(usize),
    /// `instances`.
    Instances,
}

impl fmt::Display for PoolField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("id"),
            Self::Command => f.write_str("command"),
            Self::Args => f.write_str("args"),
            Self::Arg(index) => write!(f, "args[{index}]"),
            Self::Instances => f.write_str("instances"),
        }
    }
}

/// What [`ConfigError::UnsupportedCharacter`] found: a character or escape that the kernel
/// (archive 1.1.1, observed) would not pass on unchanged, since it decodes only the JSON
/// escapes `\"` `\\` `\/` `\n` `\r` `\t` and hands any other escape to the worker as its
/// literal text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Unsupported {
    /// A control character other than NUL, `\n`, `\r` and `\t` (U+0001..U+0008, U+000B,
    /// U+000C, U+000E..U+001F) in a [`Pool`]: JSON can carry it only as an escape the kernel
    /// does not decode.
    Control(char),
    /// JSON text only: the escape `\b` or `\f`; the letter after the backslash.
    Escape(char),
    /// JSON text only: a `\uXXXX` escape (a surrogate pair counts as one), with the character
    /// it stands for. A character other than a control character can be written as itself
    /// (UTF-8) instead.
    UnicodeEscape(char),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Control(c) => write!(f, "the control character U+{:04X}", u32::from(c)),
            Self::Escape(letter) => write!(f, "the escape \\{letter}"),
            Self::UnicodeEscape(c) => write!(f, "a \\u escape (for U+{:04X})", u32::from(c)),
        }
    }
}

/// Why a configuration was refused before it reached the kernel. Pools are counted from 0
/// in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file cannot be opened or read; `errno` says why.
    FileUnreadable {
        /// The system's error number.
        errno: i32,
    },
    /// The configuration path names something other than a regular file.
    NotAFile {
        /// What it names: `"a directory"`, `"a FIFO"`, `"a device"`, `"a socket"`.
        kind: &'static str,
    },
    /// The pool list is empty; the kernel needs at least one pool.
    NoPools,
    /// A pool's id is the empty string.
    EmptyId {
        /// Index of the pool.
        pool: usize,
    },
    /// Two pools have the same id (for JSON: the same decoded value).
    DuplicateId {
        /// Index of the earlier pool.
        first: usize,
        /// Index of the later pool.
        second: usize,
        /// The shared id.
        id: PoolIdText,
    },
    /// A pool's command is the empty string.
    EmptyCommand {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
    },
    /// A pool asks for 0 instances; the kernel needs at least 1.
    ZeroInstances {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
    },
    /// The pools ask for more worker processes in all than one bus can track.
    TooManyWorkers {
        /// Instances asked for by the pools up to the first one past the limit: checking
        /// stops there, so that a huge configuration is refused in time linear in its size.
        total: u64,
        /// The most a bus tracks.
        max: usize,
    },
    /// An id, command or argument contains a NUL byte, which cannot be passed to exec.
    NulByte {
        /// Index of the pool.
        pool: usize,
        /// Its id (up to the NUL, escaped, if the id is the culprit).
        id: PoolIdText,
        /// Which field: [`PoolField::Id`], [`PoolField::Command`] or [`PoolField::Arg`].
        field: PoolField,
    },
    /// An id, command or argument holds something the kernel cannot carry to the worker
    /// unchanged: it (archive 1.1.1, observed) decodes only the JSON escapes `\"` `\\` `\/`
    /// `\n` `\r` `\t` and passes any other escape on as its literal text. Refused: a control
    /// character other than `\n` `\r` `\t` (NUL is [`Self::NulByte`]), and in JSON text the
    /// escapes `\b`, `\f` and `\uXXXX`, whatever character they stand for.
    UnsupportedCharacter {
        /// Index of the pool.
        pool: usize,
        /// Its id (escaped, if the id is the culprit).
        id: PoolIdText,
        /// Which field: [`PoolField::Id`], [`PoolField::Command`] or [`PoolField::Arg`].
        field: PoolField,
        /// The first offending character or escape in that field.
        found: Unsupported,
    },
    /// The JSON does not fit in the [`ConfigBuffer`]; nothing was truncated.
    BufferTooSmall {
        /// Bytes the JSON needs, including the terminating NUL.
        needed: usize,
        /// Bytes the buffer holds.
        capacity: usize,
    },
    /// JSON text only: not well-formed JSON (or not UTF-8).
    InvalidJson {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// JSON text only: containers nested deeper than `limit` levels; refused rather than
    /// walked, so hostile input cannot cost unbounded time or stack.
    TooDeep {
        /// Byte offset of the bracket that opens one level too many.
        offset: usize,
        /// The deepest nesting accepted.
        limit: usize,
    },
    /// JSON text only: the top-level value is not an object.
    NotAnObject,
    /// JSON text only: the top-level object has no `pools`.
    MissingPools,
    /// JSON text only: `pools` is not an array.
    PoolsNotArray,
    /// JSON text only: an element of `pools` is not an object.
    PoolNotObject {
        /// Index of the element.
        pool: usize,
    },
    /// JSON text only: a pool has no `id`.
    MissingId {
        /// Index of the pool.
        pool: usize,
    },
    /// JSON text only: a pool's `id` is not a string.
    IdNotString {
        /// Index of the pool.
        pool: usize,
    },
    /// JSON text only: a required pool field (`command` or `instances`) is missing.
    MissingField {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
        /// The missing field.
        field: PoolField,
    },
    /// JSON text only: a pool field has the wrong type: `command` not a string, `args` not
    /// an array, an argument not a string, `instances` not an integer in `1..=u32::MAX`.
    WrongType {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
        /// The offending field.
        field: PoolField,
    },
    /// JSON text only: a key the kernel reads appears twice in one object, so which one
    /// wins is up to the kernel's parser.
    DuplicateKey {
        /// Byte offset of the second occurrence.
        offset: usize,
        /// The key.
        key: &'static str,
    },
    /// JSON text only: `limits` is not an object.
    LimitsNotObject,
    /// JSON text only: a limit is not an integer in `0..=u32::MAX`.
    InvalidLimit {
        /// The limit's name.
        name: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FileUnreadable { errno } => {
                write!(f, "the configuration file cannot be read (errno {errno})")
            }
            Self::NotAFile { kind } => {
                write!(f, "the configuration path is {kind}, not a regular file")
            }
            Self::NoPools => {
                f.write_str("the configuration has no pools; at least one is required")
            }
            Self::EmptyId { pool } => write!(f, "pool {pool}: id is empty"),
            Self::DuplicateId { first, second, id } => {
                write!(f, "pools {first} and {second} have the same id {id}")
            }
            Self::EmptyCommand { pool, id } => write!(f, "pool {pool} ({id}): command is empty"),
            Self::ZeroInstances { pool, id } => {
                write!(f, "pool {pool} ({id}): instances must be at least 1")
            }
            Self::TooManyWorkers { total, max } => write!(
                f,
                "the pools ask for at least {total} worker processes; a bus tracks at most {max}"
            ),
            Self::NulByte { pool, id, field } => {
                write!(
                    f,
                    "pool {pool} ({id}): {field} contains a NUL byte, which cannot be passed to exec"
                )
            }
            Self::UnsupportedCharacter {
                pool,
                id,
                field,
                found,
            } => write!(
                f,
                "pool {pool} ({id}): {field} contains {found}, which the stdio_bus kernel cannot \
                 carry: it decodes only the JSON escapes \\\" \\\\ \\/ \\n \\r \\t and would pass \
                 any other escape to the worker as its literal text"
            ),
            Self::BufferTooSmall { needed, capacity } => write!(
                f,
                "the configuration JSON needs {needed} bytes including the NUL terminator, \
                 but the buffer holds {capacity}"
            ),
            Self::InvalidJson { offset, expected } => {
                write!(f, "invalid JSON at byte {offset}: expected {expected}")
            }
            Self::TooDeep { offset, limit } => {
                write!(f, "JSON nested deeper than {limit} levels at byte {offset}")
            }
            Self::NotAnObject => f.write_str("the configuration JSON is not an object"),
            Self::MissingPools => f.write_str("the configuration JSON has no \"pools\""),
            Self::PoolsNotArray => f.write_str("\"pools\" is not an array"),
            Self::PoolNotObject { pool } => write!(f, "pool {pool} is not an object"),
            Self::MissingId { pool } => write!(f, "pool {pool} has no \"id\""),
            Self::IdNotString { pool } => write!(f, "pool {pool}: \"id\" is not a string"),
            Self::MissingField { pool, id, field } => {
                write!(f, "pool {pool} ({id}) has no \"{field}\"")
            }
            Self::WrongType { pool, id, field } => {
                let expected = match field {
                    PoolField::Args => "an array of strings",
                    PoolField::Instances => "an integer from 1 to 4294967295",
                    _ => "a string",
                };
                write!(f, "pool {pool} ({id}): {field} must be {expected}")
            }
            Self::DuplicateKey { offset, key } => {
                write!(f, "key \"{key}\" appears twice (again at byte {offset})")
            }
            Self::LimitsNotObject => f.write_str("\"limits\" is not an object"),
            Self::InvalidLimit { name } => {
                write!(
                    f,
                    "limit \"{name}\" must be an integer from 0 to 4294967295"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// The first control character the kernel cannot carry: all but NUL (refused on its own,
/// as [`ConfigError::NulByte`]) and `\n` `\r` `\t`, the only ones it decodes.
fn unsupported_control(s: &str) -> Option<char> {
    s.bytes()
        .find(|b| matches!(b, 0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f))
        .map(char::from)
}

/// A string the kernel passes to exec: no NUL, then nothing it cannot carry.
fn check_text(
    text: &str,
    pool: usize,
    id: PoolIdText,
    field: PoolField,
) -> Result<(), ConfigError> {
    if text.as_bytes().contains(&0) {
        return Err(ConfigError::NulByte { pool, id, field });
    }
    if let Some(c) = unsupported_control(text) {
        return Err(ConfigError::UnsupportedCharacter {
            pool,
            id,
            field,
            found: Unsupported::Control(c),
        });
    }
    Ok(())
}

/// Everything the kernel checks (and what it would silently cut at or change), in pool
/// order; within a pool: id, command, arguments, instances, and for each string a NUL
/// before any other character.
fn check_pools(pools: &[Pool<'_>]) -> Result<(), ConfigError> {
    if pools.is_empty() {
        return Err(ConfigError::NoPools);
    }
    let mut workers = 0u64;
    for (index, pool) in pools.iter().enumerate() {
        if pool.id.is_empty() {
            return Err(ConfigError::EmptyId { pool: index });
        }
        let id = PoolIdText::new(pool.id);
        check_text(pool.id, index, id, PoolField::Id)?;
        if let Some(first) = pools
            .iter()
            .take(index)
            .position(|earlier| earlier.id == pool.id)
        {
            return Err(ConfigError::DuplicateId {
                first,
                second: index,
                id,
            });
        }
        if pool.command.is_empty() {
            return Err(ConfigError::EmptyCommand { pool: index, id });
        }
        check_text(pool.command, index, id, PoolField::Command)?;
        for (arg, text) in pool.args.iter().enumerate() {
            check_text(text, index, id, PoolField::Arg(arg))?;
        }
        if pool.instances == 0 {
            return Err(ConfigError::ZeroInstances { pool: index, id });
        }
        workers += u64::from(pool.instances);
        check_worker_total(workers)?;
    }
    Ok(())
}

/// A bus tracks every worker process it starts (to stop and reap it); refuse more.
fn check_worker_total(total: u64) -> Result<(), ConfigError> {
    let max = crate::workers::MAX_WORKERS;
    if total > max as u64 {
        return Err(ConfigError::TooManyWorkers { total, max });
    }
    Ok(())
}

/// The kernel's format: `args` left out when empty, `limits` left out when all defaults.
fn emit(w: &mut json::Writer<'_>, pools: &[Pool<'_>], limits: &Limits) {
    w.raw(b"{\"pools\":[");
    for (index, pool) in pools.iter().enumerate() {
        if index > 0 {
            w.raw(b",");
        }
        w.raw(b"{\"id\":");
        w.string(pool.id);
        w.raw(b",\"command\":");
        w.string(pool.command);
        if !pool.args.is_empty() {
            w.raw(b",\"args\":[");
            for (i, arg) in pool.args.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.string(arg);
            }
            w.raw(b"]");
        }
        w.raw(b",\"instances\":");
        w.u32(pool.instances);
        w.raw(b"}");
    }
    w.raw(b"]");
    let mut any = false;
    for (name, value) in LIMIT_NAMES.iter().zip(limits.values()) {
        if let Some(value) = value {
            w.raw(if any { b"," } else { b",\"limits\":{" });
            any = true;
            w.string(name);
            w.raw(b":");
            w.u32(value);
        }
    }
    if any {
        w.raw(b"}");
    }
    w.raw(b"}");
}

fn syntax(error: json::Error) -> ConfigError {
    match error {
        json::Error::Syntax { offset, expected } => ConfigError::InvalidJson { offset, expected },
        json::Error::TooDeep { offset } => ConfigError::TooDeep {
            offset,
            limit: json::MAX_DEPTH,
        },
    }
}

/// Marks a known key as seen; a second sighting is an error.
fn once(seen: &mut bool, offset: usize, key: &'static str) -> Result<(), ConfigError> {
    if *seen {
        return Err(ConfigError::DuplicateKey { offset, key });
    }
    *seen = true;
    Ok(())
}

/// A whole configuration document as bytes: UTF-8, then [`check_json`].
fn check_text_document(bytes: &[u8]) -> Result<(), ConfigError> {
    let text = core::str::from_utf8(bytes).map_err(|e| ConfigError::InvalidJson {
        offset: e.valid_up_to(),
        expected: "valid UTF-8",
    })?;
    check_json(text)
}

/// Syntax first (so a broken document is reported as such), then the kernel's rules, in
/// document order.
fn check_json(text: &str) -> Result<(), ConfigError> {
    json::validate(text).map_err(syntax)?;
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return Err(ConfigError::NotAnObject);
    }
    sc.enter();
    let (mut pools, mut limits) = (false, false);
    let mut first = true;
    while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        if key.is_key("pools") {
            once(&mut pools, at, "pools")?;
            check_json_pools(&mut sc, text)?;
        } else if key.is_key("limits") {
            once(&mut limits, at, "limits")?;
            check_json_limits(&mut sc)?;
        } else {
            sc.skip_value(1).map_err(syntax)?;
        }
    }
    if !pools {
        return Err(ConfigError::MissingPools);
    }
    Ok(())
}

/// The longest worker line the kernel takes, newline included, when the configuration
/// leaves `max_input_buffer` unset: the archive's default (observed).
pub(crate) const DEFAULT_MAX_INPUT_BUFFER: u32 = if cfg!(stdio_bus_embedded_api) {
    10 << 20
} else {
    1 << 20
};

/// What the bus needs to know of a document [`check_json`] accepted, read in one walk:
/// calls `each` with every pool's id and instance count, in document order, and returns
/// `limits.max_input_buffer` if set (anything unexpected ends the walk early).
pub(crate) fn layout(text: &str, mut each: impl FnMut(PoolIdText, u32)) -> Option<u32> {
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return None;
    }
    sc.enter();
    let mut input_limit = None;
    let mut first = true;
    while let Ok(Some((key, _))) = sc.next_key(first) {
        first = false;
        if key.is_key("pools") {
            sc.enter();
            let mut item = true;
            while let Ok(true) = sc.next_item(item) {
                item = false;
                let members = PoolMembers::scan(&mut sc).ok()?;
                let id = members.id.and_then(|at| string_at(text, at).ok().flatten());
                let instances = members.instances.and_then(|at| {
                    let mut sc = Scanner::at(text, at);
                    json::parse_u32(sc.number().ok()?)
                });
                if let (Some(id), Some(instances)) = (id, instances) {
                    each(PoolIdText::from_chars(id.chars()), instances);
                }
            }
        } else if key.is_key("limits") {
            sc.enter();
            let mut first = true;
            while let Ok(Some((key, _))) = sc.next_key(first) {
                first = false;
                if key.is_key("max_input_buffer") {
                    input_limit = json::parse_u32(sc.number().ok()?);
                } else {
                    sc.skip_value(2).ok()?;
                }
            }
        } else {
            sc.skip_value(1).ok()?;
        }
    }
    input_limit
}

/// Offsets of the values of the pool keys the kernel reads.
#[derive(Default)]
struct PoolMembers {
    id: Option<usize>,
    command: Option<usize>,
    args: Option<usize>,
    instances: Option<usize>,
}

impl PoolMembers {
    /// Reads one pool object (the scanner is at its `{`), up to and including its `}`.
    fn scan(sc: &mut Scanner<'_>) -> Result<Self, ConfigError> {
        let mut members = Self::default();
        sc.enter();
        let mut first = true;
        while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
            first = false;
            let slot = if key.is_key("id") {
                Some((&mut members.id, "id"))
            } else if key.is_key("command") {
                Some((&mut members.command, "command"))
            } else if key.is_key("args") {
                Some((&mut members.args, "args"))
            } else if key.is_key("instances") {
                Some((&mut members.instances, "instances"))
            } else {
                None
            };
            if let Some((slot, name)) = slot {
                if slot.is_some() {
                    return Err(ConfigError::DuplicateKey {
                        offset: at,
                        key: name,
                    });
                }
                sc.peek_kind();
                *slot = Some(sc.offset());
            }
            // Inside the top object, `pools` and this pool: three levels.
            sc.skip_value(3).map_err(syntax)?;
        }
        Ok(members)
    }
}

/// The scanner is at the value of `pools`.
fn check_json_pools(sc: &mut Scanner<'_>, text: &str) -> Result<(), ConfigError> {
    if sc.peek_kind() != Some(Kind::Array) {
        return Err(ConfigError::PoolsNotArray);
    }
    let pools_at = sc.offset();
    sc.enter();
    let mut index = 0;
    let mut workers = 0u64;
    while sc.next_item(index == 0).map_err(syntax)? {
        if sc.peek_kind() != Some(Kind::Object) {
            return Err(ConfigError::PoolNotObject { pool: index });
        }
        let members = PoolMembers::scan(sc)?;
        workers += u64::from(check_json_pool(text, pools_at, index, &members)?);
        // Every pool has at least one instance, so this stops within the first 257 pools,
        // which bounds the duplicate-id rescans of `check_json_pool`.
        check_worker_total(workers)?;
        index += 1;
    }
    if index == 0 {
        return Err(ConfigError::NoPools);
    }
    Ok(())
}

/// A string member, or why not.
fn string_at(text: &str, at: usize) -> Result<Option<JStr<'_>>, ConfigError> {
    let mut sc = Scanner::at(text, at);
    if sc.peek_kind() != Some(Kind::String) {
        return Ok(None);
    }
    sc.string().map(Some).map_err(syntax)
}

/// The JSON counterpart of [`check_text`]: no NUL, then no escape the kernel would pass on
/// undecoded (raw control characters are not JSON, so the scanner has refused them already).
fn check_json_text(
    text: JStr<'_>,
    pool: usize,
    id: PoolIdText,
    field: PoolField,
) -> Result<(), ConfigError> {
    if text.has_nul() {
        return Err(ConfigError::NulByte { pool, id, field });
    }
    if let Some((letter, c)) = text.undecoded_escape() {
        let found = match letter {
            b'u' => Unsupported::UnicodeEscape(c),
            _ => Unsupported::Escape(char::from(letter)),
        };
        return Err(ConfigError::UnsupportedCharacter {
            pool,
            id,
            field,
            found,
        });
    }
    Ok(())
}

/// The same checks as [`check_pools`] for one pool of a JSON document.
/// Returns the pool's instance count.
fn check_json_pool(
    text: &str,
    pools_at: usize,
    index: usize,
    members: &PoolMembers,
) -> Result<u32, ConfigError> {
    let Some(at) = members.id else {
        return Err(ConfigError::MissingId { pool: index });
    };
    let Some(raw_id) = string_at(text, at)? else {
        return Err(ConfigError::IdNotString { pool: index });
    };
    if raw_id.is_empty() {
        return Err(ConfigError::EmptyId { pool: index });
    }
    let id = PoolIdText::from_chars(raw_id.chars());
    check_json_text(raw_id, index, id, PoolField::Id)?;
    // Allocation-free: each earlier id is found again by rescanning, at most 256 of them
    // (see `check_json_pools`). Every escape left is one the kernel decodes too, so equal
    // decoded values are equal to it.
    if let Some(first) = JsonPoolIds::new(text, pools_at)
        .take(index)
        .position(|earlier| earlier.same(raw_id))
    {
        return Err(ConfigError::DuplicateId {
            first,
            second: index,
            id,
        });
    }

    let wrong = |field| ConfigError::WrongType {
        pool: index,
        id,
        field,
    };
    let Some(at) = members.command else {
        return Err(ConfigError::MissingField {
            pool: index,
            id,
            field: PoolField::Command,
        });
    };
    let command = string_at(text, at)?.ok_or(wrong(PoolField::Command))?;
    if command.is_empty() {
        return Err(ConfigError::EmptyCommand { pool: index, id });
    }
    check_json_text(command, index, id, PoolField::Command)?;

    if let Some(at) = members.args {
        let mut sc = Scanner::at(text, at);
        if sc.peek_kind() != Some(Kind::Array) {
            return Err(wrong(PoolField::Args));
        }
        sc.enter();
        let mut arg = 0;
        while sc.next_item(arg == 0).map_err(syntax)? {
            if sc.peek_kind() != Some(Kind::String) {
                return Err(wrong(PoolField::Arg(arg)));
            }
            let text = sc.string().map_err(syntax)?;
            check_json_text(text, index, id, PoolField::Arg(arg))?;
            arg += 1;
        }
    }

    let Some(at) = members.instances else {
        return Err(ConfigError::MissingField {
            pool: index,
            id,
            field: PoolField::Instances,
        });
    };
    let mut sc = Scanner::at(text, at);
    if sc.peek_kind() != Some(Kind::Number) {
        return Err(wrong(PoolField::Instances));
    }
    match json::parse_u32(sc.number().map_err(syntax)?) {
        None => Err(wrong(PoolField::Instances)),
        Some(0) => Err(ConfigError::ZeroInstances { pool: index, id }),
        Some(instances) => Ok(instances),
    }
}

/// The `id` string of each pool of a `pools` array already checked; stops at anything else.
struct JsonPoolIds<'a> {
    sc: Scanner<'a>,
    first: bool,
}

impl<'a> JsonPoolIds<'a> {
    fn new(text: &'a str, pools_at: usize) -> Self {
        let mut sc = Scanner::at(text, pools_at);
        sc.enter();
        Self { sc, first: true }
    }
}

impl<'a> Iterator for JsonPoolIds<'a> {
    type Item = JStr<'a>;

    fn next(&mut self) -> Option<JStr<'a>> {
        let sc = &mut self.sc;
        if !sc.next_item(self.first).ok()? {
            return None;
        }
        self.first = false;
        if sc.peek_kind() != Some(Kind::Object) {
            return None;
        }
        sc.enter();
        let mut id = None;
        let mut first = true;
        while let Some((key, _)) = sc.next_key(first).ok()? {
            first = false;
            if id.is_none() && key.is_key("id") && sc.peek_kind() == Some(Kind::String) {
                id = Some(sc.string().ok()?);
            } else {
                sc.skip_value(3).ok()?;
            }
        }
        id
    }
}

/// The scanner is at the value of `limits`.
fn check_json_limits(sc: &mut Scanner<'_>) -> Result<(), ConfigError> {
    if sc.peek_kind() != Some(Kind::Object) {
        return Err(ConfigError::LimitsNotObject);
    }
    sc.enter();
    let mut seen = [false; LIMIT_NAMES.len()];
    let mut first = true;
    while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        let known = LIMIT_NAMES
            .iter()
            .zip(seen.iter_mut())
            .find(|(name, _)| key.is_key(name));
        let Some((&name, seen)) = known else {
            sc.skip_value(2).map_err(syntax)?;
            continue;
        };
        once(seen, at, name)?;
        if sc.peek_kind() != Some(Kind::Number)
            || json::parse_u32(sc.number().map_err(syntax)?).is_none()
        {
            return Err(ConfigError::InvalidLimit { name });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, vec};

    const ECHO: Pool<'static> = Pool::new("echo", "/bin/cat").args(&["--x"]).instances(2);

    fn cstring(text: &str) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        bytes
    }

    fn from_json(text: &str) -> Result<(), ConfigError> {
        let bytes = cstring(text);
        let json = CStr::from_bytes_with_nul(&bytes).unwrap();
        Config::from_json(json).map(|config| assert_eq!(config.json(), Some(json)))
    }

    fn write(pools: &[Pool<'_>], limits: &Limits) -> Result<String, ConfigError> {
        let mut buffer = ConfigBuffer::<8192>::new();
        let config = buffer.write(pools, limits)?;
        let text = config.json().unwrap().to_str().unwrap().to_string();
        assert!(config.file().is_none());
        assert_eq!(buffer.as_str(), text);
        Ok(text)
    }

    fn id(text: &str) -> PoolIdText {
        PoolIdText::new(text)
    }

    /// Asserts the error and that its message names what it should.
    fn assert_error(
        result: Result<impl fmt::Debug, ConfigError>,
        expected: ConfigError,
        mentions: &[&str],
    ) {
        let error = result.expect_err("should be refused");
        assert_eq!(error, expected);
        let message = error.to_string();
        for needle in mentions {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
    }

    /// Decodes a configuration through the JSON scanner: (id, command, args, instances).
    fn decode(text: &str) -> Vec<(String, String, Vec<String>, u32)> {
        json::validate(text).unwrap();
        let mut pools = Vec::new();
        let mut sc = Scanner::new(text);
        sc.enter();
        let mut first = true;
        while let Some((key, _)) = sc.next_key(first).unwrap() {
            first = false;
            if !key.is_key("pools") {
                sc.skip_value(1).unwrap();
                continue;
            }
            sc.enter();
            let mut first_pool = true;
            while sc.next_item(first_pool).unwrap() {
                first_pool = false;
                let mut pool = (String::new(), String::new(), Vec::new(), 0);
                sc.enter();
                let mut first_key = true;
                while let Some((key, _)) = sc.next_key(first_key).unwrap() {
                    first_key = false;
                    if key.is_key("id") {
                        pool.0 = sc.string().unwrap().chars().collect();
                    } else if key.is_key("command") {
                        pool.1 = sc.string().unwrap().chars().collect();
                    } else if key.is_key("args") {
                        sc.enter();
                        let mut first_arg = true;
                        while sc.next_item(first_arg).unwrap() {
                            first_arg = false;
                            pool.2.push(sc.string().unwrap().chars().collect());
                        }
                    } else if key.is_key("instances") {
                        pool.3 = json::parse_u32(sc.number().unwrap()).unwrap();
                    } else {
                        panic!("unexpected key {:?}", key.chars().collect::<String>());
                    }
                }
                pools.push(pool);
            }
        }
        pools
    }

    #[test]
    fn builds_pools_in_const_context() {
        assert_eq!(
            ECHO,
            Pool {
                id: "echo",
                command: "/bin/cat",
                args: &["--x"],
                instances: 2
            }
        );
        let plain = Pool::new("a", "b");
        assert_eq!((plain.args.len(), plain.instances), (0, 1));
        const LIMITS: Limits = Limits::new();
        assert_eq!(LIMITS, Limits::default());
    }

    #[test]
    fn writes_the_kernel_format_exactly() {
        assert_eq!(
            write(
                &[ECHO],
                &Limits {
                    max_input_buffer: Some(1_048_576),
                    ..Limits::new()
                }
            )
            .unwrap(),
            r#"{"pools":[{"id":"echo","command":"/bin/cat","args":["--x"],"instances":2}],"limits":{"max_input_buffer":1048576}}"#
        );
        assert_eq!(
            write(
                &[Pool::new("a", "/a"), Pool::new("b", "/b").args(&["1", "2"])],
                &Limits::new()
            )
            .unwrap(),
            r#"{"pools":[{"id":"a","command":"/a","instances":1},{"id":"b","command":"/b","args":["1","2"],"instances":1}]}"#
        );
        let all = Limits {
            max_input_buffer: Some(1),
            max_output_queue: Some(2),
            max_restarts: Some(0),
            restart_window_sec: Some(4),
            drain_timeout_sec: Some(5),
            backpressure_timeout_sec: Some(u32::MAX),
        };
        assert_eq!(
            write(&[Pool::new("a", "/a")], &all).unwrap(),
            r#"{"pools":[{"id":"a","command":"/a","instances":1}],"limits":{"max_input_buffer":1,"max_output_queue":2,"max_restarts":0,"restart_window_sec":4,"drain_timeout_sec":5,"backpressure_timeout_sec":4294967295}}"#
        );
        let some = Limits {
            max_restarts: Some(5),
            drain_timeout_sec: Some(30),
            ..Limits::new()
        };
        assert!(
            write(&[ECHO], &some)
                .unwrap()
                .ends_with(r#"],"limits":{"max_restarts":5,"drain_timeout_sec":30}}"#)
        );
    }

    #[test]
    fn written_json_passes_from_json() {
        let mut buffer = ConfigBuffer::<512>::new();
        let limits = Limits {
            max_output_queue: Some(7),
            ..Limits::new()
        };
        let json = buffer
            .write(&[ECHO, Pool::new("other", "/x").instances(9)], &limits)
            .unwrap()
            .json()
            .unwrap();
        assert!(Config::from_json(json).is_ok());
    }

    #[test]
    fn escapes_and_round_trips_every_awkward_string() {
        let id = "quote\" back\\slash\nnew\r\t/";
        let command = "/opt/caf\u{e9}/\u{1f600}\u{7f}/w\"o\\rk\r\t";
        let args = ["", "a b", "\n\r\t", "{\"json\":[1]}", "\u{4e2d}\u{6587}"];
        let pools = [
            Pool::new(id, command).args(&args).instances(3),
            Pool::new("plain", "/bin/true"),
        ];
        let text = write(&pools, &Limits::new()).unwrap();
        assert!(
            text.bytes().all(|b| b >= 0x20),
            "raw control byte in {text:?}"
        );
        assert!(
            text.starts_with(r#"{"pools":[{"id":"quote\" back\\slash\nnew\r\t/","#),
            "{text}"
        );
        // Only escapes the kernel decodes are written.
        assert!(
            !text.contains(r"\u") && !text.contains(r"\b") && !text.contains(r"\f"),
            "{text}"
        );
        assert!(text.contains(r#"["","a b","\n\r\t","{\"json\":[1]}""#));
        assert!(
            text.contains("caf\u{e9}") && text.contains('\u{1f600}') && text.contains('\u{7f}')
        );
        from_json(&text).unwrap();
        let decoded = decode(&text);
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].0, id);
        assert_eq!(decoded[0].1, command);
        assert_eq!(decoded[0].2, args.map(String::from).to_vec());
        assert_eq!(decoded[0].3, 3);
        assert_eq!(decoded[1], ("plain".into(), "/bin/true".into(), vec![], 1));
    }

    #[test]
    fn reports_the_exact_size_needed() {
        const EXPECTED: &str = r#"{"pools":[{"id":"e\"1","command":"/c\n","instances":1}]}"#;
        let pools = [Pool::new("e\"1", "/c\n")];
        let mut exact = ConfigBuffer::<{ EXPECTED.len() + 1 }>::new();
        assert_eq!(
            exact
                .write(&pools, &Limits::new())
                .unwrap()
                .json()
                .unwrap()
                .to_bytes(),
            EXPECTED.as_bytes()
        );
        assert_eq!(exact.as_str(), EXPECTED);

        let mut short = ConfigBuffer::<{ EXPECTED.len() }>::new();
        let needed = EXPECTED.len() + 1;
        assert_error(
            short.write(&pools, &Limits::new()),
            ConfigError::BufferTooSmall {
                needed,
                capacity: EXPECTED.len(),
            },
            &[&needed.to_string(), &EXPECTED.len().to_string()],
        );
        assert_eq!(short.as_str(), "");
        let mut tiny = ConfigBuffer::<8>::new();
        assert_eq!(
            tiny.write(&pools, &Limits::new()).unwrap_err(),
            ConfigError::BufferTooSmall {
                needed,
                capacity: 8
            }
        );
        let mut empty = ConfigBuffer::<0>::new();
        assert_eq!(
            empty.write(&pools, &Limits::new()).unwrap_err(),
            ConfigError::BufferTooSmall {
                needed,
                capacity: 0
            }
        );
    }

    #[test]
    fn needed_size_matches_for_larger_configurations() {
        let args = ["\n\r\t\u{7f}", "\"\\", "\u{1f600}"];
        let pools = [
            Pool::new("x\ny", "/a\tb\r\n").args(&args),
            Pool::new("z", "/z").instances(200),
        ];
        let limits = Limits {
            max_restarts: Some(12),
            backpressure_timeout_sec: Some(0),
            ..Limits::new()
        };
        let text = write(&pools, &limits).unwrap();
        let mut small = ConfigBuffer::<16>::new();
        assert_eq!(
            small.write(&pools, &limits).unwrap_err(),
            ConfigError::BufferTooSmall {
                needed: text.len() + 1,
                capacity: 16
            }
        );
    }

    #[test]
    fn as_str_tracks_the_last_write() {
        static UNUSED: ConfigBuffer<64> = ConfigBuffer::new();
        assert_eq!(UNUSED.as_str(), "");
        let mut buffer = ConfigBuffer::<128>::default();
        assert_eq!(buffer.as_str(), "");
        buffer.write(&[ECHO], &Limits::new()).unwrap();
        assert!(buffer.as_str().starts_with("{\"pools\""));
        assert!(buffer.write(&[], &Limits::new()).is_err());
        assert_eq!(buffer.as_str(), "");
        assert!(format!("{buffer:?}").contains("capacity: 128"));
    }

    #[test]
    fn writer_refuses_bad_pools() {
        let limits = Limits::new();
        assert_error(write(&[], &limits), ConfigError::NoPools, &["no pools"]);
        assert_error(
            write(&[ECHO, Pool::new("", "/x")], &limits),
            ConfigError::EmptyId { pool: 1 },
            &["pool 1", "id is empty"],
        );
        assert_error(
            write(
                &[ECHO, Pool::new("b", "/b"), Pool::new("echo", "/c")],
                &limits,
            ),
            ConfigError::DuplicateId {
                first: 0,
                second: 2,
                id: id("echo"),
            },
            &["pools 0 and 2", "\"echo\""],
        );
        assert_error(
            write(&[ECHO, Pool::new("w", "")], &limits),
            ConfigError::EmptyCommand {
                pool: 1,
                id: id("w"),
            },
            &["pool 1", "\"w\"", "command"],
        );
        assert_error(
            write(&[Pool::new("w", "/w").instances(0)], &limits),
            ConfigError::ZeroInstances {
                pool: 0,
                id: id("w"),
            },
            &["pool 0", "\"w\"", "instances"],
        );
        assert_error(
            write(&[ECHO, Pool::new("a\0b", "/w")], &limits),
            ConfigError::NulByte {
                pool: 1,
                id: id("a\0b"),
                field: PoolField::Id,
            },
            &["pool 1", "\"a\\0b\"", "id contains a NUL"],
        );
        assert_error(
            write(&[Pool::new("w", "/w\0")], &limits),
            ConfigError::NulByte {
                pool: 0,
                id: id("w"),
                field: PoolField::Command,
            },
            &["pool 0", "\"w\"", "command contains a NUL"],
        );
        assert_error(
            write(&[ECHO, ECHO.args(&["ok", "x\0"])], &limits),
            ConfigError::DuplicateId {
                first: 0,
                second: 1,
                id: id("echo"),
            },
            &[],
        );
        assert_error(
            write(&[Pool::new("w", "/w").args(&["ok", "x\0"])], &limits),
            ConfigError::NulByte {
                pool: 0,
                id: id("w"),
                field: PoolField::Arg(1),
            },
            &["pool 0", "\"w\"", "args[1] contains a NUL"],
        );
    }

    /// The control characters the kernel cannot carry: all but NUL, `\n`, `\r` and `\t`.
    fn refused_controls() -> Vec<char> {
        let refused: Vec<char> = (1u8..0x20)
            .map(char::from)
            .filter(|c| !matches!(c, '\n' | '\r' | '\t'))
            .collect();
        assert_eq!(refused.len(), 28);
        refused
    }

    #[test]
    fn writer_refuses_control_characters_the_kernel_cannot_carry() {
        let limits = Limits::new();
        let w = id("w");
        for c in refused_controls() {
            let bad = format!("x{c}y");
            let unsupported = |pool, id, field| ConfigError::UnsupportedCharacter {
                pool,
                id,
                field,
                found: Unsupported::Control(c),
            };
            let code = format!("U+{:04X}", u32::from(c));
            assert_error(
                write(&[ECHO, Pool::new(&bad, "/w")], &limits),
                unsupported(1, id(&bad), PoolField::Id),
                &["pool 1", "id contains the control character", &code],
            );
            assert_error(
                write(&[Pool::new("w", &bad)], &limits),
                unsupported(0, w, PoolField::Command),
                &["pool 0", "\"w\"", "command contains", &code],
            );
            assert_error(
                write(&[Pool::new("w", "/w").args(&["ok", "\n", &bad])], &limits),
                unsupported(0, w, PoolField::Arg(2)),
                &["pool 0", "\"w\"", "args[2] contains", &code],
            );
        }
        assert_eq!(
            ConfigError::UnsupportedCharacter {
                pool: 0,
                id: w,
                field: PoolField::Arg(1),
                found: Unsupported::Control('\u{1b}'),
            }
            .to_string(),
            r#"pool 0 ("w"): args[1] contains the control character U+001B, which the stdio_bus kernel cannot carry: it decodes only the JSON escapes \" \\ \/ \n \r \t and would pass any other escape to the worker as its literal text"#
        );
        // The id in the message shows the character escaped.
        assert_error(
            write(&[Pool::new("a\u{8}", "/w")], &limits),
            ConfigError::UnsupportedCharacter {
                pool: 0,
                id: id("a\u{8}"),
                field: PoolField::Id,
                found: Unsupported::Control('\u{8}'),
            },
            &["(\"a\\u{8}\")", "U+0008"],
        );
        // A NUL is reported as such, even after another control character in the same field;
        // otherwise the first offending field wins.
        assert_error(
            write(&[Pool::new("w", "/w\u{1}\0")], &limits),
            ConfigError::NulByte {
                pool: 0,
                id: w,
                field: PoolField::Command,
            },
            &["NUL"],
        );
        assert_error(
            write(&[Pool::new("w", "/w\u{c}").args(&["\0"])], &limits),
            ConfigError::UnsupportedCharacter {
                pool: 0,
                id: w,
                field: PoolField::Command,
                found: Unsupported::Control('\u{c}'),
            },
            &[],
        );
        assert_error(
            write(
                &[Pool::new("w\u{1}", "/w"), Pool::new("w\u{1}", "/w")],
                &limits,
            ),
            ConfigError::UnsupportedCharacter {
                pool: 0,
                id: id("w\u{1}"),
                field: PoolField::Id,
                found: Unsupported::Control('\u{1}'),
            },
            &[],
        );
        // Nothing partial is left behind.
        let mut buffer = ConfigBuffer::<256>::new();
        buffer.write(&[ECHO], &limits).unwrap();
        assert!(
            buffer
                .write(&[Pool::new("w", "/w\u{1f}")], &limits)
                .is_err()
        );
        assert_eq!(buffer.as_str(), "");
    }

    #[test]
    fn writer_accepts_what_the_kernel_decodes_and_non_ascii() {
        let fine = [
            "\n\r\t",
            "caf\u{e9}",
            "\u{1f600}",
            "\u{7f}",
            "\u{85}\u{2028}",
            "\"\\/",
        ];
        for text in fine {
            let args = [text, "x"];
            let pools = [Pool::new(text, text).args(&args)];
            let json = write(&pools, &Limits::new()).unwrap();
            assert!(
                !json.contains(r"\u") && !json.contains(r"\b") && !json.contains(r"\f"),
                "{json}"
            );
            from_json(&json).unwrap();
            assert_eq!(
                decode(&json),
                vec![(text.into(), text.into(), vec![text.into(), "x".into()], 1)]
            );
        }
    }

    #[test]
    fn long_ids_are_truncated_in_errors() {
        let long = "\u{e9}".repeat(30);
        let text = id(&long);
        assert!(text.is_truncated());
        assert_eq!(text.as_str(), "\u{e9}".repeat(20));
        let message = ConfigError::ZeroInstances { pool: 4, id: text }.to_string();
        assert!(
            message.contains("pool 4") && message.contains("...\""),
            "{message}"
        );
        assert!(!id("short").is_truncated());
    }

    #[test]
    fn from_json_accepts_valid_configurations() {
        from_json(r#"{"pools":[{"id":"echo","command":"/bin/cat","args":["--x"],"instances":2}]}"#)
            .unwrap();
        from_json(
            r#" { "comment": {"nested": [1, {"id": 0}]},
                  "pools": [ {"instances": 1, "command": "/a", "id": "a", "extra": null},
                             {"id": "b", "command": "/b", "args": []  , "instances": 255} ],
                  "limits": {"max_input_buffer": 1048576, "max_output_queue": 4194304, "max_restarts": 0,
                             "restart_window_sec": 60, "drain_timeout_sec": 30, "backpressure_timeout_sec": 60,
                             "future_limit": -1.5} } "#,
        )
        .unwrap();
        from_json(r#"{"pools":[{"id":"é😀","command":"\/bin\/cat","args":["\"\\\n\r\t"],"instances":1}],"limits":{}}"#).unwrap();
        let config = Config::from_file(c"/etc/stdio_bus.json");
        assert_eq!(config.file(), Some(c"/etc/stdio_bus.json"));
        assert!(config.json().is_none());
    }

    fn pool_json(body: &str) -> String {
        format!(r#"{{"pools":[{{"id":"ok","command":"/ok","instances":1}},{body}]}}"#)
    }

    #[test]
    fn from_json_refuses_bad_documents() {
        assert_error(
            from_json(""),
            ConfigError::InvalidJson {
                offset: 0,
                expected: "a value",
            },
            &["byte 0"],
        );
        assert_error(
            from_json(r#"{"pools":[}"#),
            ConfigError::InvalidJson {
                offset: 10,
                expected: "a value",
            },
            &["byte 10"],
        );
        assert_error(
            from_json("{} x"),
            ConfigError::InvalidJson {
                offset: 3,
                expected: "end of input after the JSON value",
            },
            &[],
        );
        let bytes = b"{\"pools\":\"\xff\"}\0";
        let not_utf8 = Config::from_json(CStr::from_bytes_with_nul(bytes).unwrap());
        assert_error(
            not_utf8,
            ConfigError::InvalidJson {
                offset: 10,
                expected: "valid UTF-8",
            },
            &["byte 10", "UTF-8"],
        );
        assert_error(
            from_json("[]"),
            ConfigError::NotAnObject,
            &["not an object"],
        );
        assert_error(from_json("\"pools\""), ConfigError::NotAnObject, &[]);
        assert_error(
            from_json(r#"{"limits":{}}"#),
            ConfigError::MissingPools,
            &["pools"],
        );
        assert_error(
            from_json(r#"{"pools":{}}"#),
            ConfigError::PoolsNotArray,
            &["pools"],
        );
        assert_error(from_json(r#"{"pools":[]}"#), ConfigError::NoPools, &[]);
        assert_error(
            from_json(r#"{"pools":[],"pools":[]}"#),
            ConfigError::NoPools,
            &[],
        );
        assert_error(
            from_json(&pool_json("[]")),
            ConfigError::PoolNotObject { pool: 1 },
            &["pool 1"],
        );
        assert_error(
            from_json(r#"{"pools":[{"id":"a","command":"/a","instances":1}],"pools":[]}"#),
            ConfigError::DuplicateKey {
                offset: 51,
                key: "pools",
            },
            &["\"pools\"", "byte 51"],
        );
    }

    #[test]
    fn from_json_refuses_bad_pools() {
        let ok = id("ok");
        let w = id("w");
        let cases: &[(&str, ConfigError, &[&str])] = &[
            (
                r#"{"command":"/w","instances":1}"#,
                ConfigError::MissingId { pool: 1 },
                &["pool 1", "id"],
            ),
            (
                r#"{"id":7,"command":"/w","instances":1}"#,
                ConfigError::IdNotString { pool: 1 },
                &["pool 1"],
            ),
            (
                r#"{"id":"","command":"/w","instances":1}"#,
                ConfigError::EmptyId { pool: 1 },
                &["pool 1"],
            ),
            (
                r#"{"id":"ok","command":"/w","instances":1}"#,
                ConfigError::DuplicateId {
                    first: 0,
                    second: 1,
                    id: ok,
                },
                &["pools 0 and 1", "\"ok\""],
            ),
            (
                r#"{"id":"w\u0000","command":"/w","instances":1}"#,
                ConfigError::NulByte {
                    pool: 1,
                    id: id("w\0"),
                    field: PoolField::Id,
                },
                &["pool 1", "NUL"],
            ),
            (
                r#"{"id":"w","instances":1}"#,
                ConfigError::MissingField {
                    pool: 1,
                    id: w,
                    field: PoolField::Command,
                },
                &["pool 1", "\"w\"", "command"],
            ),
            (
                r#"{"id":"w","command":["/w"],"instances":1}"#,
                ConfigError::WrongType {
                    pool: 1,
                    id: w,
                    field: PoolField::Command,
                },
                &["pool 1", "\"w\"", "command must be a string"],
            ),
            (
                r#"{"id":"w","command":"","instances":1}"#,
                ConfigError::EmptyCommand { pool: 1, id: w },
                &["pool 1", "\"w\""],
            ),
            (
                r#"{"id":"w","command":"/w\u0000","instances":1}"#,
                ConfigError::NulByte {
                    pool: 1,
                    id: w,
                    field: PoolField::Command,
                },
                &["pool 1", "\"w\"", "command"],
            ),
            (
                r#"{"id":"w","command":"/w","args":"--x","instances":1}"#,
                ConfigError::WrongType {
                    pool: 1,
                    id: w,
                    field: PoolField::Args,
                },
                &["pool 1", "\"w\"", "args must be an array of strings"],
            ),
            (
                r#"{"id":"w","command":"/w","args":["a",2],"instances":1}"#,
                ConfigError::WrongType {
                    pool: 1,
                    id: w,
                    field: PoolField::Arg(1),
                },
                &["pool 1", "\"w\"", "args[1] must be a string"],
            ),
            (
                r#"{"id":"w","command":"/w","args":["a","b","\u0000"],"instances":1}"#,
                ConfigError::NulByte {
                    pool: 1,
                    id: w,
                    field: PoolField::Arg(2),
                },
                &["pool 1", "\"w\"", "args[2]"],
            ),
            (
                r#"{"id":"w","command":"/w"}"#,
                ConfigError::MissingField {
                    pool: 1,
                    id: w,
                    field: PoolField::Instances,
                },
                &["pool 1", "\"w\"", "instances"],
            ),
            (
                r#"{"id":"w","command":"/w","instances":0}"#,
                ConfigError::ZeroInstances { pool: 1, id: w },
                &["pool 1", "\"w\""],
            ),
        ];
        for (body, expected, mentions) in cases {
            assert_error(from_json(&pool_json(body)), *expected, mentions);
        }
        let twice = pool_json(r#"{"id":"w","command":"/w","id":"v","instances":1}"#);
        let offset = twice.rfind(r#""id""#).unwrap();
        assert_error(
            from_json(&twice),
            ConfigError::DuplicateKey { offset, key: "id" },
            &["\"id\"", &format!("byte {offset}")],
        );
        for instances in [
            "-1",
            "1.5",
            "1e2",
            "\"2\"",
            "null",
            "true",
            "4294967296",
            "-0",
            "[1]",
        ] {
            let body = format!(r#"{{"id":"w","command":"/w","instances":{instances}}}"#);
            assert_error(
                from_json(&pool_json(&body)),
                ConfigError::WrongType {
                    pool: 1,
                    id: w,
                    field: PoolField::Instances,
                },
                &["pool 1", "\"w\"", "instances must be an integer"],
            );
        }
    }

    #[test]
    fn from_json_refuses_escapes_the_kernel_does_not_decode() {
        let w = id("w");
        // (escape, the character it stands for, what the error reports, message)
        let cases: &[(&str, char, Unsupported, &str)] = &[
            (r"\b", '\u{8}', Unsupported::Escape('b'), r"the escape \b"),
            (r"\f", '\u{c}', Unsupported::Escape('f'), r"the escape \f"),
            (
                r"\u0001",
                '\u{1}',
                Unsupported::UnicodeEscape('\u{1}'),
                r"a \u escape (for U+0001)",
            ),
            (
                r"\u001F",
                '\u{1f}',
                Unsupported::UnicodeEscape('\u{1f}'),
                "U+001F",
            ),
            // Even for characters the kernel would carry if written otherwise.
            (r"\u000a", '\n', Unsupported::UnicodeEscape('\n'), "U+000A"),
            (r"\u0041", 'A', Unsupported::UnicodeEscape('A'), "U+0041"),
            (r"\u002f", '/', Unsupported::UnicodeEscape('/'), "U+002F"),
            (
                r"\u00E9",
                '\u{e9}',
                Unsupported::UnicodeEscape('\u{e9}'),
                "U+00E9",
            ),
            (
                r"\ud83d\ude00",
                '\u{1f600}',
                Unsupported::UnicodeEscape('\u{1f600}'),
                "U+1F600",
            ),
        ];
        for &(escape, decoded, found, mention) in cases {
            let unsupported = |id, field| ConfigError::UnsupportedCharacter {
                pool: 1,
                id,
                field,
                found,
            };
            let in_id = pool_json(&format!(
                r#"{{"id":"w{escape}","command":"/w","instances":1}}"#
            ));
            let decoded_id = PoolIdText::from_chars(['w', decoded].into_iter());
            assert_error(
                from_json(&in_id),
                unsupported(decoded_id, PoolField::Id),
                &["pool 1", "id contains", mention, "decodes only"],
            );
            let in_command = pool_json(&format!(
                r#"{{"id":"w","command":"/w\n{escape}","instances":1}}"#
            ));
            assert_error(
                from_json(&in_command),
                unsupported(w, PoolField::Command),
                &["pool 1", "\"w\"", "command contains", mention],
            );
            let in_arg = pool_json(&format!(
                r#"{{"id":"w","command":"/w","args":["a","\t\/",":{escape}:"],"instances":1}}"#
            ));
            assert_error(
                from_json(&in_arg),
                unsupported(w, PoolField::Arg(2)),
                &["pool 1", "\"w\"", "args[2] contains", mention],
            );
        }
        // A NUL is still reported as such, even after another refused escape.
        assert_error(
            from_json(&pool_json(
                r#"{"id":"w","command":"/w\b\u0000","instances":1}"#,
            )),
            ConfigError::NulByte {
                pool: 1,
                id: w,
                field: PoolField::Command,
            },
            &["NUL"],
        );
        // An escaped id is refused before it is compared with the others.
        assert_error(
            from_json(&pool_json(
                r#"{"id":"o\u006b","command":"/w","instances":1}"#,
            )),
            ConfigError::UnsupportedCharacter {
                pool: 1,
                id: id("ok"),
                field: PoolField::Id,
                found: Unsupported::UnicodeEscape('k'),
            },
            &["pool 1"],
        );
        // The first offending field wins.
        assert_error(
            from_json(&pool_json(
                r#"{"id":"w","args":["\b"],"command":"/w\f","instances":1}"#,
            )),
            ConfigError::UnsupportedCharacter {
                pool: 1,
                id: w,
                field: PoolField::Command,
                found: Unsupported::Escape('f'),
            },
            &[],
        );
        // Raw control characters are not JSON at all.
        for c in (1u8..0x20).map(char::from) {
            let text = format!(r#"{{"pools":[{{"id":"w","command":"/w{c}","instances":1}}]}}"#);
            assert_error(
                from_json(&text),
                ConfigError::InvalidJson {
                    offset: text.find(c).unwrap(),
                    expected: "no control character in a string",
                },
                &["control character"],
            );
        }
    }

    #[test]
    fn from_json_accepts_the_escapes_the_kernel_decodes() {
        from_json(
            r#"{"pools":[{"id":"\"\\\/\n\r\t","command":"\/bin\/cat","args":["\"","\\","\/","\n\r\t","caf\u00e9"],"instances":1}]}"#
                .replace(r"\u00e9", "\u{e9}\u{1f600}\u{7f}")
                .as_str(),
        )
        .unwrap();
        // `\/` is decoded by the kernel too, so these ids are the same to it.
        assert_error(
            from_json(
                r#"{"pools":[{"id":"a/b","command":"/a","instances":1},{"id":"a\/b","command":"/b","instances":1}]}"#,
            ),
            ConfigError::DuplicateId {
                first: 0,
                second: 1,
                id: id("a/b"),
            },
            &["pools 0 and 1"],
        );
        // Strings the kernel does not hand to exec may hold any escape.
        from_json(
            r#"{"pools":[{"id":"a","command":"/a","instances":1,"note":"\b\f\u0041"}],"\u0078":"\f","limits":{"\u0062":1}}"#,
        )
        .unwrap();
    }

    #[test]
    fn from_json_refuses_bad_limits() {
        let pools = r#""pools":[{"id":"a","command":"/a","instances":1}]"#;
        assert_error(
            from_json(&format!(r#"{{{pools},"limits":[]}}"#)),
            ConfigError::LimitsNotObject,
            &["limits"],
        );
        assert_error(
            from_json(&format!(r#"{{"limits":5,{pools}}}"#)),
            ConfigError::LimitsNotObject,
            &[],
        );
        for value in ["-1", "1.5", "2e3", "\"5\"", "null", "4294967296", "{}"] {
            for name in LIMIT_NAMES {
                let text = format!(r#"{{{pools},"limits":{{"{name}":{value}}}}}"#);
                assert_error(
                    from_json(&text),
                    ConfigError::InvalidLimit { name },
                    &[name],
                );
            }
        }
        let twice = format!(r#"{{{pools},"limits":{{"max_restarts":1,"max_restarts":2}}}}"#);
        let offset = twice.rfind(r#""max_restarts""#).unwrap();
        assert_error(
            from_json(&twice),
            ConfigError::DuplicateKey {
                offset,
                key: "max_restarts",
            },
            &[],
        );
    }

    #[test]
    fn from_json_bounds_nesting() {
        let limit = json::MAX_DEPTH;
        assert_error(
            from_json(&"[".repeat(10_000)),
            ConfigError::TooDeep {
                offset: limit,
                limit,
            },
            &["64 levels"],
        );
        let deep_unknown = format!(r#"{{"x":{}}}"#, "[".repeat(10_000));
        assert!(matches!(
            from_json(&deep_unknown),
            Err(ConfigError::TooDeep { .. })
        ));
        let in_pool = format!(
            r#"{{"pools":[{{"id":"a","command":"/a","instances":1,"x":{}}}]}}"#,
            "{\"k\":".repeat(100)
        );
        assert!(matches!(
            from_json(&in_pool),
            Err(ConfigError::TooDeep { .. })
        ));
        // Unknown keys may nest up to the limit, counting the levels of the configuration itself.
        let fits = format!(
            r#"{{"pools":[{{"id":"a","command":"/a","instances":1,"x":{}{}}}]}}"#,
            "[".repeat(limit - 3),
            "]".repeat(limit - 3)
        );
        from_json(&fits).unwrap();
    }

    #[test]
    fn from_json_matches_keys_like_the_kernel() {
        // The kernel decodes no `\u` escape, so an escaped key is some other key to it.
        assert_error(
            from_json(r#"{"\u0070ools":[{"id":"a","command":"/a","instances":1}]}"#),
            ConfigError::MissingPools,
            &[],
        );
        assert_error(
            from_json(r#"{"pools":[{"\u0069d":"a","command":"/a","instances":1}]}"#),
            ConfigError::MissingId { pool: 0 },
            &["pool 0"],
        );
        from_json(r#"{"pools":[{"id":"a","\u0069d":"a","command":"/a","instances":1}]}"#).unwrap();
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn try_bytes(bytes: &[u8]) -> Option<Result<(), ConfigError>> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let mut owned = bytes[..end].to_vec();
        owned.push(0);
        let json = CStr::from_bytes_with_nul(&owned).ok()?;
        let result = Config::from_json(json).map(|_| ());
        if let Err(error) = result {
            assert!(!error.to_string().is_empty());
        }
        Some(result)
    }

    #[test]
    fn garbage_never_panics() {
        let valid = r#"{"pools":[{"id":"a\/b","command":"/a","args":["x\n","😀"],"instances":2},{"id":"b2","command":"/b","instances":1}],"limits":{"max_restarts":5}}"#;
        assert_eq!(try_bytes(valid.as_bytes()), Some(Ok(())));
        // Every truncation is refused.
        for end in 0..valid.len() {
            assert!(
                matches!(try_bytes(&valid.as_bytes()[..end]), Some(Err(_))),
                "{}",
                &valid[..end]
            );
        }
        let mut seed = 0x2545_f491_4f6c_dd1d;
        // Random single-byte mutations of a valid document.
        for _ in 0..20_000 {
            let mut bytes = valid.as_bytes().to_vec();
            for _ in 0..(rng(&mut seed) % 3 + 1) {
                let at = (rng(&mut seed) % bytes.len() as u64) as usize;
                const ALPHABET: &[u8] = b"{}[]\",:\\u0aZ-1. \x7f\xc3\xff";
                bytes[at] = ALPHABET[(rng(&mut seed) % ALPHABET.len() as u64) as usize];
            }
            try_bytes(&bytes);
        }
        // Pure noise.
        for _ in 0..20_000 {
            let len = (rng(&mut seed) % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            try_bytes(&bytes);
        }
    }

    #[test]
    fn more_workers_than_a_bus_tracks_are_refused() {
        let max = crate::workers::MAX_WORKERS;
        let fits = [
            Pool::new("a", "/w").instances(max as u32 - 1),
            Pool::new("b", "/w"),
        ];
        assert!(write(&fits, &Limits::default()).is_ok());
        let over = [
            Pool::new("a", "/w").instances(max as u32),
            Pool::new("b", "/w"),
        ];
        assert_eq!(
            write(&over, &Limits::default()),
            Err(ConfigError::TooManyWorkers {
                total: max as u64 + 1,
                max
            })
        );
        let largest = r#"{"pools":[{"id":"a","command":"/w","instances":4294967295}]}"#;
        assert_eq!(
            from_json(largest),
            Err(ConfigError::TooManyWorkers {
                total: u64::from(u32::MAX),
                max
            })
        );
        let json = format!(
            r#"{{"pools":[{{"id":"a","command":"/w","instances":{max}}},{{"id":"b","command":"/w","instances":1}}]}}"#
        );
        assert_eq!(
            from_json(&json),
            Err(ConfigError::TooManyWorkers {
                total: max as u64 + 1,
                max
            })
        );
    }

    #[test]
    fn a_huge_configuration_is_refused_at_the_first_pool_past_the_limit() {
        let max = crate::workers::MAX_WORKERS;
        // 30 000 pools, the last one repeating the first id: checking all of them took
        // quadratic time. It stops at pool 256, the 257th worker.
        let mut json = String::from(r#"{"pools":["#);
        for i in 0..30_000 {
            let id = if i == 29_999 { 0 } else { i };
            json += &format!(r#"{{"id":"p{id}","command":"/w","instances":1}},"#);
        }
        json.pop();
        json += "]}";
        let over = Err(ConfigError::TooManyWorkers {
            total: max as u64 + 1,
            max,
        });
        assert_eq!(from_json(&json), over);
        let pools: Vec<Pool<'_>> = (0..30_000).map(|_| Pool::new("same", "/w")).collect();
        assert!(matches!(
            check_pools(&pools),
            Err(ConfigError::DuplicateId {
                first: 0,
                second: 1,
                ..
            })
        ));
        let ids: Vec<String> = (0..30_000).map(|i| format!("p{i}")).collect();
        let pools: Vec<Pool<'_>> = ids.iter().map(|id| Pool::new(id, "/w")).collect();
        assert_eq!(check_pools(&pools), over);
    }

    #[test]
    fn every_error_has_a_message() {
        let w = id("w");
        let all = [
            ConfigError::FileUnreadable { errno: 2 },
            ConfigError::NotAFile { kind: "a FIFO" },
            ConfigError::NoPools,
            ConfigError::EmptyId { pool: 3 },
            ConfigError::DuplicateId {
                first: 1,
                second: 3,
                id: w,
            },
            ConfigError::EmptyCommand { pool: 3, id: w },
            ConfigError::ZeroInstances { pool: 3, id: w },
            ConfigError::TooManyWorkers {
                total: 300,
                max: 256,
            },
            ConfigError::NulByte {
                pool: 3,
                id: w,
                field: PoolField::Arg(0),
            },
            ConfigError::UnsupportedCharacter {
                pool: 3,
                id: w,
                field: PoolField::Command,
                found: Unsupported::UnicodeEscape('A'),
            },
            ConfigError::BufferTooSmall {
                needed: 10,
                capacity: 9,
            },
            ConfigError::InvalidJson {
                offset: 3,
                expected: "a value",
            },
            ConfigError::TooDeep {
                offset: 64,
                limit: 64,
            },
            ConfigError::NotAnObject,
            ConfigError::MissingPools,
            ConfigError::PoolsNotArray,
            ConfigError::PoolNotObject { pool: 3 },
            ConfigError::MissingId { pool: 3 },
            ConfigError::IdNotString { pool: 3 },
            ConfigError::MissingField {
                pool: 3,
                id: w,
                field: PoolField::Command,
            },
            ConfigError::WrongType {
                pool: 3,
                id: w,
                field: PoolField::Args,
            },
            ConfigError::DuplicateKey {
                offset: 5,
                key: "id",
            },
            ConfigError::LimitsNotObject,
            ConfigError::InvalidLimit {
                name: "max_restarts",
            },
        ];
        for error in all {
            let message = error.to_string();
            assert!(!message.is_empty());
            if format!("{error:?}").contains("pool: 3") {
                assert!(message.contains("pool 3"), "{message}");
            }
        }
        #[cfg(feature = "std")]
        {
            let boxed: std::boxed::Box<dyn std::error::Error> =
                std::boxed::Box::new(ConfigError::NoPools);
            assert!(boxed.to_string().contains("no pools"));
        }
    }
}
