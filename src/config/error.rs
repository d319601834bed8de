//! Why a configuration is refused, naming the pool and the field.

use core::fmt;

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

    pub(crate) fn from_chars(chars: impl Iterator<Item = char>) -> Self {
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

    pub(super) fn new(id: &str) -> Self {
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
    /// `env` as a whole.
    Env,
    /// One variable of `env`, by its position in the object (or slice).
    EnvVar(usize),
    /// `inherit_env`.
    InheritEnv,
    /// `cwd`.
    Cwd,
    /// `stderr`.
    Stderr,
}

impl fmt::Display for PoolField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id => f.write_str("id"),
            Self::Command => f.write_str("command"),
            Self::Args => f.write_str("args"),
            Self::Arg(index) => write!(f, "args[{index}]"),
            Self::Instances => f.write_str("instances"),
            Self::Env => f.write_str("env"),
            Self::EnvVar(index) => write!(f, "env variable {index}"),
            Self::InheritEnv => f.write_str("inherit_env"),
            Self::Cwd => f.write_str("cwd"),
            Self::Stderr => f.write_str("stderr"),
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
    /// U+000C, U+000E..U+001F) in a [`Pool`](super::Pool): JSON can carry it only as an
    /// escape the kernel does not decode.
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
    /// The JSON does not fit in the [`ConfigBuffer`](super::ConfigBuffer); nothing was
    /// truncated.
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
    /// An environment variable's name is empty or holds a `=`, which exec would read as
    /// the end of the name.
    InvalidEnvName {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
        /// The variable's position in `env`.
        var: usize,
    },
    /// Two environment variables of one pool have the same name.
    DuplicateEnvName {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
        /// The later variable's position in `env`.
        var: usize,
    },
    /// A pool's `cwd` is the empty string.
    EmptyCwd {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
    },
    /// JSON text only: a pool's `stderr` is a string other than `"inherit"`, `"tagged"` and
    /// `"null"`.
    UnknownStderr {
        /// Index of the pool.
        pool: usize,
        /// Its id.
        id: PoolIdText,
    },
    /// The pools' environment variables, directories and tagged ids need more bytes than
    /// the bus keeps for them ([`LAUNCH_BYTES`](crate::LAUNCH_BYTES)).
    LaunchTooLarge {
        /// Bytes the pools up to the first one past the limit need.
        needed: usize,
        /// The most a bus keeps.
        capacity: usize,
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
            } => {
                write!(
                    f,
                    "pool {pool} ({id}): {field} contains {found}, which the stdio_bus kernel \
                     cannot carry: it decodes only the JSON escapes \\\" \\\\ \\/ \\n \\r \\t and \
                     would pass any other escape to the worker as its literal text"
                )?;
                if matches!(found, Unsupported::UnicodeEscape(c) if !c.is_control()) {
                    f.write_str(" (Config::normalize decodes such escapes)")?;
                }
                Ok(())
            }
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
                    PoolField::Env => "an object whose values are strings",
                    PoolField::InheritEnv => "true or false",
                    PoolField::Stderr => "\"inherit\", \"tagged\" or \"null\"",
                    _ => "a string",
                };
                write!(f, "pool {pool} ({id}): {field} must be {expected}")
            }
            Self::DuplicateKey { offset, key } => {
                write!(f, "key \"{key}\" appears twice (again at byte {offset})")
            }
            Self::InvalidEnvName { pool, id, var } => write!(
                f,
                "pool {pool} ({id}): env variable {var} has an empty name or a '=' in its name"
            ),
            Self::DuplicateEnvName { pool, id, var } => write!(
                f,
                "pool {pool} ({id}): env variable {var} has the name of an earlier one"
            ),
            Self::EmptyCwd { pool, id } => write!(f, "pool {pool} ({id}): cwd is empty"),
            Self::UnknownStderr { pool, id } => write!(
                f,
                "pool {pool} ({id}): stderr must be \"inherit\", \"tagged\" or \"null\""
            ),
            Self::LaunchTooLarge { needed, capacity } => write!(
                f,
                "the pools' env, cwd and tagged ids need at least {needed} bytes; a bus keeps \
                 {capacity} for them"
            ),
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
