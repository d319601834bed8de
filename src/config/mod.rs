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
//! [`from_mcp_servers`] translates an MCP client's `mcpServers` block for one stdio server
//! into that JSON, as `stdiobus-relay` reads its configuration file.
//!
//! Strings the kernel hands to exec (ids, commands, arguments) are also checked for what it
//! would change silently: it (archive 1.1.1, observed) decodes only the JSON escapes `\"`
//! `\\` `\/` `\n` `\r` `\t` and passes any other escape on as its literal text, so a
//! control character other than `\n` `\r` `\t`, or in JSON text a `\b`, `\f` or `\uXXXX`
//! escape, is refused with [`ConfigError::UnsupportedCharacter`].

use core::ffi::CStr;

mod error;
mod file;
mod mcp_error;
mod mcp_servers;
mod normalize;
mod pool;
mod text;
mod writer;

#[cfg(test)]
mod mcp_tests;
#[cfg(test)]
mod tests;

pub use error::{ConfigError, PoolField, PoolIdText, Unsupported};
pub(crate) use file::check as check_file;
pub use mcp_error::{McpServersError, ServerNames};
pub use mcp_servers::{MCP_SERVERS_SLACK, from_mcp_servers};
pub use normalize::NORMALIZE_SLACK;
pub use pool::{Limits, Pool, Stderr};
use text::check_text_document;
pub(crate) use text::layout;
pub use text::pool_ids;
pub use writer::ConfigBuffer;

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
    /// a known key given twice is rejected as ambiguous. Escapes the kernel would not
    /// decode are refused; [`Config::normalize`] decodes them.
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
    /// text passes the same checks as [`Config::from_json`]. The kernel reads the file
    /// itself, so a `\u` escape in it is refused; read the file and pass its text through
    /// [`Config::normalize`] to take any valid JSON.
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
