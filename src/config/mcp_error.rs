//! Why an MCP client's `mcpServers` block cannot be served as one pool
//! ([`from_mcp_servers`](super::from_mcp_servers)), naming the server and the key.

use core::fmt;

use super::ConfigError;
use crate::json::Scanner;

/// Why [`from_mcp_servers`](super::from_mcp_servers) refused a document. Server names and
/// values are borrowed from the document as written: a name is shown with its quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpServersError<'a> {
    /// The text is not JSON, a key is given twice, or the translation does not fit the
    /// buffer ([`ConfigError::BufferTooSmall`]).
    Config(ConfigError),
    /// The document has both `pools` (the kernel's format) and `mcpServers`.
    BothFormats,
    /// `mcpServers` is not an object.
    ServersNotObject,
    /// `mcpServers` names no server, or more than one.
    ServerCount {
        /// How many it names.
        count: usize,
        /// Their names.
        servers: ServerNames<'a>,
    },
    /// The server's entry is not an object.
    ServerNotObject {
        /// The server's name.
        server: &'a str,
    },
    /// The server has no `command`.
    MissingCommand {
        /// The server's name.
        server: &'a str,
    },
    /// A key the relay honours has the wrong type.
    WrongType {
        /// The server's name.
        server: &'a str,
        /// `command`, `args`, `env`, `cwd` or `disabled`.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// An element of `args` is not a string.
    ArgNotString {
        /// The server's name.
        server: &'a str,
        /// Its index.
        index: usize,
    },
    /// A value of `env` is not a string.
    EnvNotString {
        /// The server's name.
        server: &'a str,
        /// The variable's name, as written.
        name: &'a str,
    },
    /// `type`, `transport` or `transportType` names another transport than `"stdio"`.
    NotStdio {
        /// The server's name.
        server: &'a str,
        /// The key.
        key: &'static str,
        /// Its value, as written.
        value: &'a str,
    },
    /// A key the server's entry has and the relay cannot honour: a remote server's `url`,
    /// `serverUrl`, `httpUrl` or `headers`, an `envFile`, `"disabled": true`, or a key of
    /// the kernel's own pool format (`id`, `instances`, `inherit_env`, `stderr`).
    Unsupported {
        /// The server's name.
        server: &'a str,
        /// The key.
        key: &'static str,
        /// Why, and what to do.
        why: &'static str,
    },
}

impl From<ConfigError> for McpServersError<'_> {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// The names in an `mcpServers` object, as written, shown as `"a", "b"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ServerNames<'a> {
    /// The document, already validated.
    text: &'a str,
    /// Where the `mcpServers` object starts.
    at: usize,
}

impl<'a> ServerNames<'a> {
    pub(super) fn new(text: &'a str, at: usize) -> Self {
        Self { text, at }
    }

    /// Each name, with its quotes, as written.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let text = self.text;
        let mut sc = Scanner::at(text, self.at);
        sc.enter();
        let mut first = true;
        core::iter::from_fn(move || {
            let (_, at) = sc.next_key(first).ok()??;
            first = false;
            let name = key_text(text, at);
            sc.skip_value(2).ok()?;
            Some(name)
        })
    }
}

/// The key at `at` (a scanner's key offset), with its quotes, as written.
pub(super) fn key_text(text: &str, at: usize) -> &str {
    let mut sc = Scanner::at(text, at);
    let end = match sc.string() {
        Ok(_) => sc.offset(),
        Err(_) => at,
    };
    text.get(at..end).unwrap_or_default()
}

impl fmt::Display for ServerNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServerNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for McpServersError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Config(error) => fmt::Display::fmt(&error, f),
            Self::BothFormats => f.write_str(
                "the file has both \"pools\" and \"mcpServers\": keep one (\"pools\" is the \
                 relay's own format, \"mcpServers\" an MCP client's)",
            ),
            Self::ServersNotObject => f.write_str("\"mcpServers\" is not an object"),
            Self::ServerCount { count: 0, .. } => f.write_str(
                "\"mcpServers\" names no server; the relay serves one: put one in \"mcpServers\"",
            ),
            Self::ServerCount { count, servers } => write!(
                f,
                "\"mcpServers\" names {count} servers ({servers}); the relay serves one: keep \
                 one in \"mcpServers\""
            ),
            Self::ServerNotObject { server } => {
                write!(f, "server {server} is not an object")
            }
            Self::MissingCommand { server } => {
                write!(f, "server {server} has no \"command\"")
            }
            Self::WrongType {
                server,
                key,
                expected,
            } => write!(f, "server {server}: \"{key}\" must be {expected}"),
            Self::ArgNotString { server, index } => {
                write!(f, "server {server}: \"args\"[{index}] must be a string")
            }
            Self::EnvNotString { server, name } => write!(
                f,
                "server {server}: the value of {name} in \"env\" must be a string"
            ),
            Self::NotStdio { server, key, value } => write!(
                f,
                "server {server} has \"{key}\": {value}; the relay serves stdio servers only \
                 (\"{key}\": \"stdio\" or no \"{key}\")"
            ),
            Self::Unsupported { server, key, why } => {
                write!(f, "server {server} has \"{key}\": {why}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for McpServersError<'_> {}
