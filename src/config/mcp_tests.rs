//! `from_mcp_servers`: MCP clients' `mcpServers` blocks translated into one pool.

extern crate std;
use std::string::{String, ToString};
use std::vec;

use super::*;

/// The translation of `json`, or `None` when it is not an `mcpServers` document.
fn translate(json: &str) -> Result<Option<String>, String> {
    let mut buf = vec![0; json.len() + MCP_SERVERS_SLACK];
    match from_mcp_servers(json, &mut buf) {
        Ok(text) => Ok(text.map(ToString::to_string)),
        Err(error) => Err(error.to_string()),
    }
}

fn translated(json: &str) -> String {
    translate(json).unwrap().expect("an mcpServers document")
}

fn refused(json: &str) -> String {
    translate(json).unwrap_err()
}

/// The translation goes through `Config::normalize` as the relay passes it.
fn normalized(json: &str) -> Result<String, ConfigError> {
    let text = translated(json);
    let mut buf = vec![0; text.len() + NORMALIZE_SLACK];
    let config = Config::normalize(&text, &Limits::new(), &mut buf)?;
    Ok(config.json().unwrap().to_str().unwrap().to_string())
}

#[test]
fn a_pasted_block_becomes_one_pool_of_one_instance() {
    let json = r#"{"mcpServers": {"everything": {"command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-everything"],
        "env": {"KEY": "v"}, "cwd": "/tmp"}}}"#;
    assert_eq!(
        translated(json),
        r#"{"pools":[{"id":"everything","command":"npx","args":["-y", "@modelcontextprotocol/server-everything"],"instances":1,"env":{"KEY": "v"},"cwd":"/tmp"}]}"#
    );
    assert!(normalized(json).is_ok());
}

#[test]
fn only_the_command_is_required_and_limits_are_kept() {
    let json = r#"{"limits": {"max_restarts": 0}, "mcpServers": {"time": {"command": "t"}}}"#;
    assert_eq!(
        translated(json),
        r#"{"pools":[{"id":"time","command":"t","instances":1}],"limits":{"max_restarts": 0}}"#
    );
    assert!(normalized(json).is_ok());
}

#[test]
fn escapes_are_copied_and_decoded_by_normalize() {
    let json = r#"{"mcpServers": {"caf\u00e9": {"command": "s", "args": ["\u00e9t\u00e9"]}}}"#;
    assert_eq!(
        translated(json),
        r#"{"pools":[{"id":"caf\u00e9","command":"s","args":["\u00e9t\u00e9"],"instances":1}]}"#
    );
    let text = normalized(json).unwrap();
    assert!(
        text.contains(r#""id":"café""#) && text.contains(r#"["été"]"#),
        "{text}"
    );
}

#[test]
fn stdio_transports_and_client_keys_are_accepted() {
    for extra in [
        r#""type": "stdio""#,
        r#""transport": "stdio""#,
        r#""transportType": "stdio""#,
        r#""disabled": false"#,
        r#""description": "d", "timeout": 60000, "autoApprove": ["x"], "alwaysAllow": []"#,
    ] {
        let json = std::format!(r#"{{"mcpServers": {{"s": {{"command": "c", {extra}}}}}}}"#);
        assert_eq!(
            translated(&json),
            r#"{"pools":[{"id":"s","command":"c","instances":1}]}"#,
            "{extra}"
        );
    }
    // Other top-level keys of a client's file are the client's.
    let json = r#"{"globalShortcut": "", "mcpServers": {"s": {"command": "c"}}}"#;
    assert!(translate(json).unwrap().is_some());
}

#[test]
fn documents_without_mcp_servers_are_left_to_the_kernel_format() {
    for json in [
        r#"{"pools": [{"id": "a", "command": "c", "instances": 1}]}"#,
        r#"{}"#,
        r#"[]"#,
        r#""mcpServers""#,
    ] {
        assert_eq!(translate(json), Ok(None), "{json}");
    }
    // Keys are matched as written, as the kernel does.
    assert_eq!(translate(r#"{"\u006dcpServers": {}}"#), Ok(None));
}

#[test]
fn not_exactly_one_server_is_refused_with_the_names() {
    let json = r#"{"mcpServers": {"a": {"command": "x"}, "b": {"url": "y"}}}"#;
    assert_eq!(
        refused(json),
        r#""mcpServers" names 2 servers ("a", "b"); the relay serves one: keep one in "mcpServers""#
    );
    assert_eq!(
        refused(r#"{"mcpServers": {}}"#),
        r#""mcpServers" names no server; the relay serves one: put one in "mcpServers""#
    );
    let mut buf = [0; 256];
    let error = from_mcp_servers(json, &mut buf).unwrap_err();
    let McpServersError::ServerCount { count, servers } = error else {
        panic!("{error:?}");
    };
    assert_eq!(count, 2);
    assert!(servers.iter().eq([r#""a""#, r#""b""#]));
}

#[test]
fn both_formats_in_one_file_are_refused() {
    let json = r#"{"pools": [], "mcpServers": {"s": {"command": "c"}}}"#;
    assert_eq!(
        translate(json),
        Err(McpServersError::BothFormats.to_string())
    );
}

#[test]
fn transports_other_than_stdio_are_refused() {
    assert_eq!(
        refused(r#"{"mcpServers": {"remote": {"type": "http", "url": "https://x"}}}"#),
        r#"server "remote" has "type": "http"; the relay serves stdio servers only ("type": "stdio" or no "type")"#
    );
    let error = refused(r#"{"mcpServers": {"s": {"command": "c", "transport": {"type": "sse"}}}}"#);
    assert!(
        error.contains(r#"has "transport": {"type": "sse"};"#),
        "{error}"
    );
    assert!(
        refused(r#"{"mcpServers": {"s": {"transportType": "sse"}}}"#)
            .contains("stdio servers only")
    );
}

#[test]
fn keys_the_relay_cannot_honour_are_refused() {
    for (key, value, says) in [
        ("url", r#""https://x""#, "a remote server"),
        ("serverUrl", r#""https://x""#, "a remote server"),
        ("httpUrl", r#""https://x""#, "a remote server"),
        ("headers", "{}", "a remote server"),
        ("envFile", r#"".env""#, "does not read env files"),
        ("disabled", "true", "the server is disabled"),
        ("instances", "2", "the relay's own format"),
        ("stderr", r#""tagged""#, "the relay's own format"),
    ] {
        let json =
            std::format!(r#"{{"mcpServers": {{"s": {{"command": "c", "{key}": {value}}}}}}}"#);
        let error = refused(&json);
        assert!(
            error.starts_with(&std::format!(r#"server "s" has "{key}": "#)) && error.contains(says),
            "{error}"
        );
    }
}

#[test]
fn wrong_types_are_refused_naming_the_key() {
    let cases = [
        (r#"{"mcpServers": []}"#, r#""mcpServers" is not an object"#),
        (
            r#"{"mcpServers": {"s": "npx"}}"#,
            r#"server "s" is not an object"#,
        ),
        (
            r#"{"mcpServers": {"s": {"args": []}}}"#,
            r#"server "s" has no "command""#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": ["npx"]}}}"#,
            r#"server "s": "command" must be a string"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "args": "-y"}}}"#,
            r#"server "s": "args" must be an array of strings"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "args": ["-y", 1]}}}"#,
            r#"server "s": "args"[1] must be a string"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "env": {"A": "1", "PORT": 8080}}}}"#,
            r#"server "s": the value of "PORT" in "env" must be a string"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "env": ["A=1"]}}}"#,
            r#"server "s": "env" must be an object whose values are strings"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "cwd": null}}}"#,
            r#"server "s": "cwd" must be a string"#,
        ),
        (
            r#"{"mcpServers": {"s": {"command": "c", "disabled": "no"}}}"#,
            r#"server "s": "disabled" must be true or false"#,
        ),
    ];
    for (json, error) in cases {
        assert_eq!(refused(json), error, "{json}");
    }
}

#[test]
fn bad_json_and_repeated_keys_are_refused() {
    assert!(refused(r#"{"mcpServers": {"s": {"command": "c"}}"#).starts_with("invalid JSON"));
    assert!(
        refused(r#"{"mcpServers": {}, "mcpServers": {}}"#).contains("\"mcpServers\" appears twice")
    );
    assert!(
        refused(r#"{"mcpServers": {"s": {"command": "c", "command": "d"}}}"#)
            .contains("\"command\" appears twice")
    );
}

#[test]
fn what_the_kernel_refuses_is_refused_by_normalize() {
    let json = r#"{"mcpServers": {"s": {"command": "c", "env": {"A=B": "1"}}}}"#;
    assert!(matches!(
        normalized(json),
        Err(ConfigError::InvalidEnvName {
            pool: 0,
            var: 0,
            ..
        })
    ));
    let json = r#"{"mcpServers": {"s": {"command": ""}}}"#;
    assert!(matches!(
        normalized(json),
        Err(ConfigError::EmptyCommand { .. })
    ));
}

#[test]
fn the_slack_is_enough_and_a_small_buffer_says_what_it_needs() {
    // Every optional part present, written as tightly as JSON allows.
    let json = r#"{"mcpServers":{"s":{"command":"c","args":[],"env":{},"cwd":"d"}},"limits":{}}"#;
    let mut buf = vec![0; json.len() + MCP_SERVERS_SLACK];
    let text = from_mcp_servers(json, &mut buf)
        .unwrap()
        .unwrap()
        .to_string();
    assert!(text.len() <= json.len() + MCP_SERVERS_SLACK);
    let mut small = vec![0; text.len() - 1];
    assert_eq!(
        from_mcp_servers(json, &mut small),
        Err(McpServersError::Config(ConfigError::BufferTooSmall {
            needed: text.len(),
            capacity: text.len() - 1,
        }))
    );
    let mut exact = vec![0; text.len()];
    assert_eq!(from_mcp_servers(json, &mut exact), Ok(Some(text.as_str())));
}

#[test]
fn no_prefix_or_buffer_size_panics() {
    let json = r#"{"limits":{"max_restarts":1},"mcpServers":{"s\"1":{"command":"c","args":["a"],"env":{"K":"v"},"cwd":"/","type":"stdio","x":[{}]}}}"#;
    for end in (0..=json.len()).filter(|&end| json.is_char_boundary(end)) {
        for size in [0, 1, 40, 4096] {
            let mut buf = vec![0; size];
            let _ = from_mcp_servers(&json[..end], &mut buf).map_err(|e| e.to_string());
        }
    }
}
