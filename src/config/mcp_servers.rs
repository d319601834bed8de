//! An MCP client's `mcpServers` block for one stdio server, translated into the kernel's
//! configuration: one pool, named after the server, of one instance.
//!
//! Clients (Claude Desktop, Claude Code, Cursor, Cline, Gemini CLI…) describe a
//! stdio server as
//! `{"mcpServers": {"NAME": {"command": …, "args": […], "env": {…}, "cwd": …}}}`; this
//! turns such a block into `{"pools": [{"id": "NAME", "command": …, "args": […],
//! "instances": 1, "env": {…}, "cwd": …}]}`, so that what a user pastes from a client's
//! configuration runs as it would under the client. Keys and values are copied as written
//! (escapes included); [`Config::normalize`](super::Config::normalize) then decodes and
//! checks them like any configuration.

use super::ConfigError;
use super::mcp_error::{McpServersError, ServerNames, key_text};
use super::text::{note_member, syntax};
use crate::json::{self, Kind, Scanner};

/// The parts of the translation that are not copied from the input.
const FIXED: [&str; 9] = [
    "{\"pools\":[{\"id\":",
    ",\"command\":",
    ",\"args\":",
    ",\"instances\":1",
    ",\"env\":",
    ",\"cwd\":",
    "}]",
    ",\"limits\":",
    "}",
];

/// The most bytes [`from_mcp_servers`] writes beyond its input's length: everything it
/// copies comes from the input, and this is the rest.
pub const MCP_SERVERS_SLACK: usize = {
    let mut bytes = 0;
    let mut i = 0;
    while i < FIXED.len() {
        bytes += FIXED[i].len();
        i += 1;
    }
    bytes
};

/// Top-level keys as written in the translation; their values are copied from the input.
const POOLS_OPEN: usize = 0;
const COMMAND: usize = 1;
const ARGS: usize = 2;
const INSTANCES: usize = 3;
const ENV: usize = 4;
const CWD: usize = 5;
const POOLS_CLOSE: usize = 6;
const LIMITS: usize = 7;
const CLOSE: usize = 8;

/// Keys that name a transport: honoured when `"stdio"`.
const TRANSPORT_KEYS: [&str; 3] = ["type", "transport", "transportType"];

/// Keys a server entry may have that the relay cannot honour, and why.
const UNSUPPORTED: [(&str, &str); 9] = [
    ("url", REMOTE),
    ("serverUrl", REMOTE),
    ("httpUrl", REMOTE),
    ("headers", REMOTE),
    (
        "envFile",
        "the relay does not read env files: put the variables in \"env\"",
    ),
    ("id", OWN_FORMAT),
    ("instances", OWN_FORMAT),
    ("inherit_env", OWN_FORMAT),
    ("stderr", OWN_FORMAT),
];
const REMOTE: &str =
    "a remote server; the relay starts a stdio server's \"command\" and cannot reach one";
const OWN_FORMAT: &str = "a key of the relay's own format: write a \"pools\" file to use it";
const DISABLED: &str = "the server is disabled; remove \"disabled\" to serve it";

/// `json` with an `mcpServers` member naming exactly one stdio server, translated into the
/// kernel's configuration in `buf`: one pool whose `id` is the server's name, with its
/// `command`, `args`, `env` and `cwd`, and one instance; a top-level `limits` object is
/// kept. `Ok(None)` when `json` is an object without `mcpServers` (or not an object), to be
/// read as the kernel's own format.
///
/// Per server, `type`, `transport` and `transportType` are accepted when they are
/// `"stdio"`, and `"disabled": false`; a remote server (`url`, `serverUrl`, `httpUrl`,
/// `headers`), an `envFile`, `"disabled": true` and the kernel's own pool keys (`id`,
/// `instances`, `inherit_env`, `stderr`) are refused. Other keys are the client's own
/// (`description`, `timeout`, `autoApprove`…) and ignored, as are the document's other
/// top-level keys.
///
/// The text written is JSON for [`Config::normalize`](super::Config::normalize), which
/// decodes escapes and checks the pool like any configuration. `buf` needs at most
/// `json.len() + MCP_SERVERS_SLACK` bytes; when it is too small the error is
/// [`ConfigError::BufferTooSmall`] with the bytes needed.
pub fn from_mcp_servers<'j, 'b>(
    json: &'j str,
    buf: &'b mut [u8],
) -> Result<Option<&'b str>, McpServersError<'j>> {
    json::validate(json).map_err(syntax)?;
    let Some(document) = Document::scan(json)? else {
        return Ok(None);
    };
    let Some(servers_at) = document.servers else {
        return Ok(None);
    };
    if document.pools {
        return Err(McpServersError::BothFormats);
    }
    let (name, entry_at) = one_server(json, servers_at)?;
    let server = Server::scan(json, name, entry_at)?;

    let mut w = json::Writer::new(buf);
    let copy = |w: &mut json::Writer<'_>, key: usize, value: Option<&str>| {
        if let Some(value) = value {
            w.raw(FIXED[key].as_bytes());
            w.raw(value.as_bytes());
        }
    };
    w.raw(FIXED[POOLS_OPEN].as_bytes());
    w.raw(name.as_bytes());
    copy(&mut w, COMMAND, Some(server.command));
    copy(&mut w, ARGS, server.args);
    w.raw(FIXED[INSTANCES].as_bytes());
    copy(&mut w, ENV, server.env);
    copy(&mut w, CWD, server.cwd);
    w.raw(FIXED[POOLS_CLOSE].as_bytes());
    copy(
        &mut w,
        LIMITS,
        document.limits.map(|at| value_text(json, at)),
    );
    w.raw(FIXED[CLOSE].as_bytes());
    let len = w.len();
    let capacity = buf.len();
    match buf.get(..len).map(core::str::from_utf8) {
        Some(Ok(text)) => Ok(Some(text)),
        _ => Err(ConfigError::BufferTooSmall {
            needed: len,
            capacity,
        }
        .into()),
    }
}

/// The top-level members that matter here.
struct Document {
    /// Where the value of `mcpServers` starts.
    servers: Option<usize>,
    pools: bool,
    /// Where the value of `limits` starts.
    limits: Option<usize>,
}

impl Document {
    /// `None` when the document is not an object.
    fn scan(json: &str) -> Result<Option<Self>, ConfigError> {
        let mut sc = Scanner::new(json);
        if sc.peek_kind() != Some(Kind::Object) {
            return Ok(None);
        }
        sc.enter();
        let mut document = Self {
            servers: None,
            pools: false,
            limits: None,
        };
        let mut first = true;
        while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
            first = false;
            let slot = if key.is_key("mcpServers") {
                Some((&mut document.servers, "mcpServers"))
            } else if key.is_key("limits") {
                Some((&mut document.limits, "limits"))
            } else {
                document.pools |= key.is_key("pools");
                None
            };
            note_member(&mut sc, at, slot)?;
            sc.skip_value(1).map_err(syntax)?;
        }
        Ok(Some(document))
    }
}

/// The one server's name (as written, with its quotes) and where its entry starts.
fn one_server(json: &str, at: usize) -> Result<(&str, usize), McpServersError<'_>> {
    let mut sc = Scanner::at(json, at);
    if sc.peek_kind() != Some(Kind::Object) {
        return Err(McpServersError::ServersNotObject);
    }
    sc.enter();
    let mut count = 0;
    let mut found = None;
    let mut first = true;
    while let Some((_, key_at)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        count += 1;
        sc.peek_kind();
        found = Some((key_text(json, key_at), sc.offset()));
        sc.skip_value(2).map_err(syntax)?;
    }
    match found {
        Some(server) if count == 1 => Ok(server),
        _ => Err(McpServersError::ServerCount {
            count,
            servers: ServerNames::new(json, at),
        }),
    }
}

/// The raw text of the value starting at `at` (already validated).
fn value_text(json: &str, at: usize) -> &str {
    let mut sc = Scanner::at(json, at);
    sc.peek_kind();
    let start = sc.offset();
    let end = match sc.skip_value(0) {
        Ok(()) => sc.offset(),
        Err(_) => start,
    };
    json.get(start..end).unwrap_or_default()
}

/// What the pool takes from a server's entry: each value's text, as written.
struct Server<'j> {
    command: &'j str,
    args: Option<&'j str>,
    env: Option<&'j str>,
    cwd: Option<&'j str>,
}

impl<'j> Server<'j> {
    /// Reads the entry of server `name` (with its quotes) starting at `at`.
    fn scan(json: &'j str, name: &'j str, at: usize) -> Result<Self, McpServersError<'j>> {
        let server = name;
        let wrong = |key, expected| McpServersError::WrongType {
            server,
            key,
            expected,
        };
        let mut sc = Scanner::at(json, at);
        if sc.peek_kind() != Some(Kind::Object) {
            return Err(McpServersError::ServerNotObject { server });
        }
        sc.enter();
        let mut command = None;
        let mut args = None;
        let mut env = None;
        let mut cwd = None;
        let mut first = true;
        while let Some((key, key_at)) = sc.next_key(first).map_err(syntax)? {
            first = false;
            sc.peek_kind();
            let value_at = sc.offset();
            let value = value_text(json, value_at);
            let slot = if key.is_key("command") {
                Some((&mut command, "command"))
            } else if key.is_key("args") {
                Some((&mut args, "args"))
            } else if key.is_key("env") {
                Some((&mut env, "env"))
            } else if key.is_key("cwd") {
                Some((&mut cwd, "cwd"))
            } else {
                None
            };
            if let Some((slot, name)) = slot {
                if slot.is_some() {
                    return Err(ConfigError::DuplicateKey {
                        offset: key_at,
                        key: name,
                    }
                    .into());
                }
                *slot = Some(value_at);
            } else if let Some(&key) = TRANSPORT_KEYS.iter().find(|k| key.is_key(k)) {
                if value != "\"stdio\"" {
                    return Err(McpServersError::NotStdio { server, key, value });
                }
            } else if let Some(&(key, why)) = UNSUPPORTED.iter().find(|(k, _)| key.is_key(k)) {
                return Err(McpServersError::Unsupported { server, key, why });
            } else if key.is_key("disabled") {
                match value {
                    "false" => {}
                    "true" => {
                        return Err(McpServersError::Unsupported {
                            server,
                            key: "disabled",
                            why: DISABLED,
                        });
                    }
                    _ => return Err(wrong("disabled", "true or false")),
                }
            }
            sc.skip_value(3).map_err(syntax)?;
        }

        let Some(at) = command else {
            return Err(McpServersError::MissingCommand { server });
        };
        if kind_at(json, at) != Some(Kind::String) {
            return Err(wrong("command", "a string"));
        }
        if let Some(at) = args {
            let mut sc = Scanner::at(json, at);
            if sc.peek_kind() != Some(Kind::Array) {
                return Err(wrong("args", "an array of strings"));
            }
            sc.enter();
            let mut index = 0;
            while sc.next_item(index == 0).map_err(syntax)? {
                if sc.peek_kind() != Some(Kind::String) {
                    return Err(McpServersError::ArgNotString { server, index });
                }
                sc.string().map_err(syntax)?;
                index += 1;
            }
        }
        if let Some(at) = env {
            let mut sc = Scanner::at(json, at);
            if sc.peek_kind() != Some(Kind::Object) {
                return Err(wrong("env", "an object whose values are strings"));
            }
            sc.enter();
            let mut first = true;
            while let Some((_, key_at)) = sc.next_key(first).map_err(syntax)? {
                first = false;
                if sc.peek_kind() != Some(Kind::String) {
                    let name = key_text(json, key_at);
                    return Err(McpServersError::EnvNotString { server, name });
                }
                sc.string().map_err(syntax)?;
            }
        }
        if let Some(at) = cwd
            && kind_at(json, at) != Some(Kind::String)
        {
            return Err(wrong("cwd", "a string"));
        }
        let text = |at: Option<usize>| at.map(|at| value_text(json, at));
        Ok(Self {
            command: value_text(json, at),
            args: text(args),
            env: text(env),
            cwd: text(cwd),
        })
    }
}

/// What the value at `at` is.
fn kind_at(json: &str, at: usize) -> Option<Kind> {
    Scanner::at(json, at).peek_kind()
}
