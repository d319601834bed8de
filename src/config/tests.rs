//! The configuration writer and checks, against what the kernel takes.

extern crate std;
use core::ffi::CStr;
use core::fmt;

use super::pool::LIMIT_NAMES;
use super::writer::check_pools;
use super::*;
use crate::json::{self, Scanner};
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
            instances: 2,
            env: &[],
            inherit_env: true,
            cwd: None,
            stderr: Stderr::Inherit,
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
    assert!(text.contains("caf\u{e9}") && text.contains('\u{1f600}') && text.contains('\u{7f}'));
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
    let max = crate::limits::MAX_WORKERS;
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
    let max = crate::limits::MAX_WORKERS;
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

/// `Config::normalize` of `text`, as the text the kernel gets.
fn normalized(text: &str, defaults: &Limits) -> Result<String, ConfigError> {
    let mut buf = vec![0u8; text.len() + NORMALIZE_SLACK];
    let config = Config::normalize(text, defaults, &mut buf)?;
    Ok(config.json().unwrap().to_str().unwrap().to_string())
}

#[test]
fn normalize_decodes_the_escapes_the_kernel_does_not() {
    // What Python's json.dump writes by default: every non-ASCII character escaped, a
    // character outside the BMP as a surrogate pair; and an escaped key.
    let text = r#"{"\u0070ools":[{"id":"caf\u00e9","command":"/bin/echo","args":["\ud83d\ude80","a\u0022b","c\u005cd","e\u000af","g\/h"],"instances":1}]}"#;
    assert_eq!(
        normalized(text, &Limits::new()).unwrap(),
        r#"{"pools":[{"id":"café","command":"/bin/echo","args":["🚀","a\"b","c\\d","e\nf","g\/h"],"instances":1}]}"#
    );
    // Text with nothing to decode comes out as it went in.
    let plain = r#"{"pools":[{"id":"é","command":"/bin/cat","instances":1}]}"#;
    assert_eq!(normalized(plain, &Limits::new()).unwrap(), plain);
}

#[test]
fn normalize_still_refuses_what_the_kernel_cannot_carry() {
    for (escape, what) in [
        (r"\u0008", Unsupported::UnicodeEscape('\u{8}')),
        (r"\b", Unsupported::Escape('b')),
    ] {
        let text =
            format!(r#"{{"pools":[{{"id":"p","command":"/bin/x{escape}","instances":1}}]}}"#);
        match normalized(&text, &Limits::new()) {
            Err(ConfigError::UnsupportedCharacter { found, .. }) => assert_eq!(found, what),
            other => panic!("{escape}: {other:?}"),
        }
    }
    // A lone surrogate is not JSON this crate takes.
    let text = r#"{"pools":[{"id":"p","command":"/bin/x\ud800","instances":1}]}"#;
    assert!(matches!(
        normalized(text, &Limits::new()),
        Err(ConfigError::InvalidJson { .. })
    ));
    assert!(matches!(
        normalized(r#"{"pools":[}"#, &Limits::new()),
        Err(ConfigError::InvalidJson { .. })
    ));
}

#[test]
fn normalize_adds_the_default_limits_the_text_leaves_out() {
    let defaults = Limits {
        max_input_buffer: Some(67_108_865),
        max_restarts: Some(3),
        ..Limits::new()
    };
    let pools = r#""pools":[{"id":"p","command":"/bin/cat","instances":1}]"#;
    for (limits, want) in [
        (
            "",
            r#","limits":{"max_input_buffer":67108865,"max_restarts":3}"#,
        ),
        (
            r#","limits":{}"#,
            r#","limits":{"max_input_buffer":67108865,"max_restarts":3}"#,
        ),
        (
            r#","limits":{"max_restarts":0}"#,
            r#","limits":{"max_input_buffer":67108865,"max_restarts":0}"#,
        ),
        (
            r#","limits": { "max_input_buffer" : 5 , "max_restarts":1 }"#,
            r#","limits": { "max_input_buffer" : 5 , "max_restarts":1 }"#,
        ),
    ] {
        let text = format!("{{{pools}{limits}}}");
        assert_eq!(
            normalized(&text, &defaults).unwrap(),
            format!("{{{pools}{want}}}"),
            "{text}"
        );
    }
    // Whitespace before the closing brace, and limits first.
    assert_eq!(
        normalized(&format!("{{ {pools} \n}}"), &defaults).unwrap(),
        format!("{{ {pools} \n,\"limits\":{{\"max_input_buffer\":67108865,\"max_restarts\":3}}}}"),
    );
    let text = format!(r#"{{"limits":{{"drain_timeout_sec":1}},{pools}}}"#);
    assert_eq!(
        normalized(&text, &defaults).unwrap(),
        format!(
            r#"{{"limits":{{"max_input_buffer":67108865,"max_restarts":3,"drain_timeout_sec":1}},{pools}}}"#
        ),
    );
}

#[test]
fn normalize_says_how_much_room_it_needs() {
    let text = r#"{"pools":[{"id":"p","command":"/bin/cat","instances":1}]}"#;
    let defaults = Limits {
        max_input_buffer: Some(1 << 20),
        ..Limits::new()
    };
    let want = normalized(text, &defaults).unwrap();
    let mut small = vec![0u8; want.len()];
    assert_eq!(
        Config::normalize(text, &defaults, &mut small).map(|_| ()),
        Err(ConfigError::BufferTooSmall {
            needed: want.len() + 1,
            capacity: want.len(),
        })
    );
    let mut exact = vec![0u8; want.len() + 1];
    assert!(Config::normalize(text, &defaults, &mut exact).is_ok());
}

const LAUNCHED: Pool<'static> = Pool::new("mcp", "server")
    .env(&[("API_KEY", "s3cr\"t\n"), ("EMPTY", "")])
    .inherit_env(false)
    .cwd("/srv/é")
    .stderr(Stderr::Tagged);

#[test]
fn writes_env_cwd_and_stderr_only_when_set() {
    assert_eq!(
        write(&[LAUNCHED], &Limits::new()).unwrap(),
        r#"{"pools":[{"id":"mcp","command":"server","instances":1,"env":{"API_KEY":"s3cr\"t\n","EMPTY":""},"inherit_env":false,"cwd":"/srv/é","stderr":"tagged"}]}"#
    );
    let null = Pool::new("a", "b").stderr(Stderr::Null);
    assert!(
        write(&[null], &Limits::new())
            .unwrap()
            .ends_with(r#""stderr":"null"}]}"#)
    );
}

#[test]
fn launch_settings_round_trip_through_the_table() {
    let json = write(&[Pool::new("plain", "x"), LAUNCHED], &Limits::new()).unwrap();
    from_json(&json).unwrap();
    let mut table = crate::launch::LaunchTable::new();
    layout(&json, |_, _| {}, &mut table);
    assert!(table.fits() && !table.is_plain());
    assert!(!table.for_worker(0).unwrap().sets_env());
    let launch = table.for_worker(1).unwrap();
    let vars: Vec<&[u8]> = launch.vars().collect();
    assert_eq!(vars, [&b"API_KEY=s3cr\"t\n\0"[..], b"EMPTY=\0"]);
    assert!(!launch.inherit_env);
    assert_eq!(launch.cwd, Some("/srv/é\0".as_bytes()));
    assert_eq!((launch.stderr, launch.pool), (Stderr::Tagged, &b"mcp"[..]));
    // Escapes the kernel would not decode are the bus's to decode here.
    let escaped =
        r#"{"pools":[{"id":"p","command":"c","instances":1,"env":{"K\u0041":"\u00e9\u0001"}}]}"#;
    from_json(escaped).unwrap();
    let mut table = crate::launch::LaunchTable::new();
    layout(escaped, |_, _| {}, &mut table);
    let vars: Vec<&[u8]> = table.for_worker(0).unwrap().vars().collect();
    assert_eq!(vars, ["KA=é\u{1}\0".as_bytes()]);
}

#[test]
fn bad_launch_settings_are_refused() {
    let w = id("w");
    let pool =
        |extra: &str| format!(r#"{{"pools":[{{"id":"w","command":"c","instances":1,{extra}}}]}}"#);
    let cases: &[(&str, ConfigError)] = &[
        (
            r#""env":["A"]"#,
            ConfigError::WrongType {
                pool: 0,
                id: w,
                field: PoolField::Env,
            },
        ),
        (
            r#""env":{"A":"1","B":2}"#,
            ConfigError::WrongType {
                pool: 0,
                id: w,
                field: PoolField::EnvVar(1),
            },
        ),
        (
            r#""env":{"A=B":"1"}"#,
            ConfigError::InvalidEnvName {
                pool: 0,
                id: w,
                var: 0,
            },
        ),
        (
            r#""env":{"":"1"}"#,
            ConfigError::InvalidEnvName {
                pool: 0,
                id: w,
                var: 0,
            },
        ),
        (
            r#""env":{"A":"1","\u0041":"2"}"#,
            ConfigError::DuplicateEnvName {
                pool: 0,
                id: w,
                var: 1,
            },
        ),
        (
            r#""env":{"A":"\u0000"}"#,
            ConfigError::NulByte {
                pool: 0,
                id: w,
                field: PoolField::EnvVar(0),
            },
        ),
        (
            r#""inherit_env":"no""#,
            ConfigError::WrongType {
                pool: 0,
                id: w,
                field: PoolField::InheritEnv,
            },
        ),
        (
            r#""cwd":7"#,
            ConfigError::WrongType {
                pool: 0,
                id: w,
                field: PoolField::Cwd,
            },
        ),
        (r#""cwd":"""#, ConfigError::EmptyCwd { pool: 0, id: w }),
        (
            r#""stderr":"loud""#,
            ConfigError::UnknownStderr { pool: 0, id: w },
        ),
        (
            r#""stderr":null"#,
            ConfigError::WrongType {
                pool: 0,
                id: w,
                field: PoolField::Stderr,
            },
        ),
        (
            r#""cwd":"/a","cwd":"/b""#,
            ConfigError::DuplicateKey {
                offset: 60,
                key: "cwd",
            },
        ),
    ];
    for (extra, expected) in cases {
        let text = pool(extra);
        let error = from_json(&text).unwrap_err();
        match (error, expected) {
            (ConfigError::DuplicateKey { key, .. }, ConfigError::DuplicateKey { key: k, .. }) => {
                assert_eq!(key, *k)
            }
            _ => assert_eq!(error, *expected, "{text}"),
        }
        assert!(!error.to_string().is_empty());
    }
    let refused = |pool: Pool<'_>| check_pools(&[pool]).unwrap_err();
    assert_eq!(
        refused(Pool::new("w", "c").env(&[("A=", "1")])),
        ConfigError::InvalidEnvName {
            pool: 0,
            id: w,
            var: 0
        }
    );
    assert_eq!(
        refused(Pool::new("w", "c").env(&[("A", "1"), ("A", "2")])),
        ConfigError::DuplicateEnvName {
            pool: 0,
            id: w,
            var: 1
        }
    );
    assert_eq!(
        refused(Pool::new("w", "c").env(&[("A", "\0")])),
        ConfigError::NulByte {
            pool: 0,
            id: w,
            field: PoolField::EnvVar(0)
        }
    );
    assert_eq!(
        refused(Pool::new("w", "c").cwd("")),
        ConfigError::EmptyCwd { pool: 0, id: w }
    );
    let big = "x".repeat(crate::limits::LAUNCH_BYTES);
    let env = [("A", big.as_str())];
    assert_eq!(
        refused(Pool::new("w", "c").env(&env)),
        ConfigError::LaunchTooLarge {
            needed: big.len() + 3,
            capacity: crate::limits::LAUNCH_BYTES
        }
    );
    let mut buf = vec![0u8; big.len() + 200];
    let mut writer = json::Writer::new(&mut buf);
    writer.raw(br#"{"pools":[{"id":"w","command":"c","instances":1,"env":{"A":"#);
    writer.string(&big);
    writer.raw(b"}}]}");
    let len = writer.len();
    let text = core::str::from_utf8(&buf[..len]).unwrap();
    assert!(matches!(
        from_json(text),
        Err(ConfigError::LaunchTooLarge { .. })
    ));
}

#[test]
fn normalize_gives_a_pool_without_instances_one() {
    let none = Limits::default();
    assert_eq!(
        normalized(r#"{"pools":[{"id":"a","command":"c"}]}"#, &none).unwrap(),
        r#"{"pools":[{"id":"a","command":"c","instances":1}]}"#
    );
    // Only where it is missing, in every pool, whatever the layout.
    assert_eq!(
        normalized(
            r#"{"limits":{}, "pools":[ {"id":"a","command":"c","instances":3} , {"command":"d","id":"b" } ]}"#,
            &none
        )
        .unwrap(),
        r#"{"limits":{}, "pools":[ {"id":"a","command":"c","instances":3} , {"command":"d","id":"b" ,"instances":1} ]}"#
    );
    // A pool that is not an object, or has no members, is still refused, as before.
    assert!(normalized(r#"{"pools":[{}]}"#, &none).is_err());
    assert!(normalized(r#"{"pools":[1]}"#, &none).is_err());
    // `from_json` takes the text as the kernel reads it, which requires `instances`.
    let missing = c"{\"pools\":[{\"id\":\"a\",\"command\":\"c\"}]}";
    assert!(Config::from_json(missing).is_err());
}
