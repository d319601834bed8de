extern crate std;

use core::time::Duration;
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use super::*;
use crate::Overflow;
use crate::event::encode_loss;

fn write(request: &Request<'_>) -> String {
    let mut buf = [0u8; 4096];
    let line = request.write(&mut buf).unwrap();
    assert_eq!(request.encoded_len(), Ok(line.len()));
    String::from_utf8(line.to_vec()).unwrap()
}

fn parse(line: &str) -> Result<Message<'_>, ScanError> {
    Message::parse(line.as_bytes())
}

const MS: fn(u64) -> Duration = Duration::from_millis;

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

#[test]
fn writes_requests_and_notifications() {
    assert_eq!(
        write(&Request::new(1, "ping")),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
    );
    assert_eq!(
        write(&Request::new(i64::MIN, "m").params("[]")),
        r#"{"jsonrpc":"2.0","id":-9223372036854775808,"method":"m","params":[]}"#
    );
    assert_eq!(
        write(
            &Request::new("r-1", "tools/call")
                .params(r#"{"a": [1, 2],  "b" : "x y\n"}"#)
                .session_id("s1")
                .agent_id("agent")
        ),
        r#"{"jsonrpc":"2.0","id":"r-1","method":"tools/call","params":{"a":[1,2],"b":"x y\n"},"sessionId":"s1","agentId":"agent"}"#
    );
    assert_eq!(
        write(&Request::notification("tick")),
        r#"{"jsonrpc":"2.0","method":"tick"}"#
    );
    assert_eq!(Request::notification("tick").id(), None);
}

#[test]
fn escapes_every_string() {
    let nasty = "q\"b\\n\nt\tc\u{1}\u{0}\u{7f}é\u{1f600}";
    let line = write(&Request::new(nasty, nasty).session_id(nasty).agent_id(nasty));
    assert!(!line.bytes().any(|b| b < 0x20), "{line}");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in ["id", "method", "sessionId", "agentId"] {
        assert_eq!(json[key], nasty, "{key}");
    }
    let message = parse(&line).unwrap();
    assert!(message.method().unwrap() == nasty);
    assert!(message.id().unwrap().matches(Id::Str(nasty)));
}

#[test]
fn params_whitespace_inside_strings_is_kept() {
    let line = write(&Request::new(1, "m").params(" {\"a b\" :\r\n \"c \\\" d\\\\\" } "));
    assert_eq!(
        line,
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a b":"c \" d\\"}}"#
    );
}

#[test]
fn refuses_bad_method_and_params() {
    let mut buf = [0u8; 256];
    assert_eq!(
        Request::new(1, "").write(&mut buf),
        Err(WriteError::EmptyMethod)
    );
    for scalar in ["1", "\"x\"", "null", "true"] {
        assert_eq!(
            Request::new(1, "m").params(scalar).write(&mut buf),
            Err(WriteError::ParamsNotStructured),
            "{scalar}"
        );
    }
    assert_eq!(
        Request::new(1, "m").params(r#"{"a":}"#).write(&mut buf),
        Err(WriteError::InvalidParams {
            offset: 5,
            expected: "a value"
        })
    );
    assert!(matches!(
        Request::new(1, "m").params("{} {}").write(&mut buf),
        Err(WriteError::InvalidParams { offset: 3, .. })
    ));
    assert!(matches!(
        Request::new(1, "m").params("").encoded_len(),
        Err(WriteError::InvalidParams { .. })
    ));
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert!(matches!(
        Request::new(1, "m").params(&deep).write(&mut buf),
        Err(WriteError::InvalidParams { .. })
    ));
}

#[test]
fn says_how_much_room_it_needs() {
    let request = Request::new(12, "ping").params(r#"{"a":1}"#);
    let needed = request.encoded_len().unwrap();
    for size in [0, 1, needed - 1] {
        let mut buf = vec![0u8; size];
        assert_eq!(
            request.write(&mut buf),
            Err(WriteError::BufferTooSmall {
                needed,
                available: size
            })
        );
    }
    let mut buf = vec![0u8; needed];
    assert_eq!(request.write(&mut buf).unwrap().len(), needed);
    assert_eq!(
        format!(
            "{}",
            WriteError::BufferTooSmall {
                needed: 9,
                available: 3
            }
        ),
        "the message needs 9 bytes, the buffer has 3"
    );
}

// ---------------------------------------------------------------------------------------
// Scanner
// ---------------------------------------------------------------------------------------

#[test]
fn reads_every_kind() {
    let m = parse(
        r#"{"jsonrpc":"2.0","id":3,"method":"a/b","params":{"x":1},"sessionId":"s","agentId":"g"}"#,
    )
    .unwrap();
    assert_eq!(m.kind(), Kind::Request);
    assert_eq!(m.id(), Some(MessageId::Int(3)));
    assert_eq!(m.raw_id(), Some("3"));
    assert!(m.method().unwrap() == "a/b");
    assert_eq!(m.params(), Some(r#"{"x":1}"#));
    assert!(m.session_id().unwrap() == "s");
    assert!(m.agent_id().unwrap() == "g");
    assert!(!m.is_response());

    let m = parse(r#"{"jsonrpc":"2.0","method":"tick","params":[1]}"#).unwrap();
    assert_eq!(m.kind(), Kind::Notification);
    assert_eq!(m.id(), None);

    let m =
        parse(r#" { "result" : [1, {"id": 3}] , "id" : "x\u0041" , "jsonrpc":"2.0"} "#).unwrap();
    assert_eq!(m.kind(), Kind::Result);
    assert_eq!(m.result(), Some(r#"[1, {"id": 3}]"#));
    assert_eq!(m.raw_id(), Some(r#""x\u0041""#));
    assert!(m.id().unwrap().matches(Id::Str("xA")));
    assert!(m.is_response());

    let m = parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse \"error\"","data":{"k":[]}}}"#).unwrap();
    assert_eq!(m.kind(), Kind::Error);
    assert_eq!(m.id(), Some(MessageId::Null));
    let error = m.error().unwrap();
    assert_eq!(error.code, Some(-32700));
    assert!(error.message.unwrap() == "Parse \"error\"");
    assert_eq!(error.data, Some(r#"{"k":[]}"#));
    assert_eq!(format!("{}", error.message.unwrap()), "Parse \"error\"");

    // Without "jsonrpc", and with unknown members.
    let m = parse(r#"{"id":-0,"result":null,"x":{"method":1}}"#).unwrap();
    assert_eq!(m.kind(), Kind::Result);
    assert_eq!(m.id(), Some(MessageId::Int(0)));
    assert_eq!(m.result(), Some("null"));
}

#[test]
fn string_values_decode() {
    let m = parse(r#"{"method":"a\u00e9\ud83d\ude00\/\n"}"#).unwrap();
    let method = m.method().unwrap();
    assert_eq!(method.raw(), r#"a\u00e9\ud83d\ude00\/\n"#);
    assert_eq!(method.quoted(), r#""a\u00e9\ud83d\ude00\/\n""#);
    assert!(method == "a\u{e9}\u{1f600}/\n");
    assert_eq!(method.decoded_len(), "a\u{e9}\u{1f600}/\n".len());
    let mut buf = [0u8; 16];
    assert_eq!(method.decode_into(&mut buf), Some("a\u{e9}\u{1f600}/\n"));
    assert_eq!(method.decode_into(&mut buf[..3]), None);
}

#[test]
fn rejects_malformed_messages() {
    use ScanError::*;
    let cases: &[(&[u8], ScanError)] = &[
        (
            b"",
            Syntax {
                offset: 0,
                expected: "a JSON object",
            },
        ),
        (
            b"   ",
            Syntax {
                offset: 3,
                expected: "a JSON object",
            },
        ),
        (b"\xff{}", NotUtf8 { offset: 0 }),
        (b"{\"id\":1,\"method\":\"a\xff\"}", NotUtf8 { offset: 19 }),
        (b"[1]", NotAnObject),
        (b"42", NotAnObject),
        (
            b"[1",
            Syntax {
                offset: 2,
                expected: "',' or ']'",
            },
        ),
        (
            br#"{"jsonrpc":"2.0","#,
            Syntax {
                offset: 17,
                expected: "a string",
            },
        ),
        (
            br#"{"id":1,"result":1} x"#,
            Syntax {
                offset: 20,
                expected: "end of input after the JSON object",
            },
        ),
        (
            br#"{"id":1,"result":1}{}"#,
            Syntax {
                offset: 19,
                expected: "end of input after the JSON object",
            },
        ),
        (br#"{"id":1,"id":2,"result":1}"#, Duplicate { member: "id" }),
        (br#"{"jsonrpc":"1.0","id":1,"result":1}"#, Version),
        (br#"{"jsonrpc":2,"id":1,"result":1}"#, Version),
        (br#"{"id":1.5,"result":1}"#, InvalidId),
        (br#"{"id":1e3,"result":1}"#, InvalidId),
        (br#"{"id":9223372036854775808,"result":1}"#, InvalidId),
        (br#"{"id":[1],"result":1}"#, InvalidId),
        (br#"{"id":true,"method":"m"}"#, InvalidId),
        (br#"{"id":1,"method":2}"#, InvalidMethod),
        (br#"{"id":1,"method":"m","params":3}"#, InvalidParams),
        (br#"{"id":1,"method":"m","params":"x"}"#, InvalidParams),
        (br#"{"id":1,"error":"bad"}"#, InvalidError),
        (br#"{"id":1,"error":{"code":1.5}}"#, InvalidError),
        (br#"{"id":1,"error":{"code":"1"}}"#, InvalidError),
        (br#"{"id":1,"error":{"message":3}}"#, InvalidError),
        (
            br#"{"id":1,"error":{"code":1,"code":2}}"#,
            Duplicate { member: "code" },
        ),
        (br#"{"method":"m","sessionId":1}"#, InvalidRouting),
        (br#"{"method":"m","agentId":null}"#, InvalidRouting),
        (br#"{"id":1,"result":1,"error":{}}"#, Ambiguous),
        (br#"{"id":1,"method":"m","result":1}"#, Ambiguous),
        (br#"{"result":1}"#, MissingId),
        (br#"{"error":{}}"#, MissingId),
        (br#"{"id":1}"#, Unrecognized),
        (b"{}", Unrecognized),
    ];
    for (line, expected) in cases {
        assert_eq!(
            Message::parse(line),
            Err(*expected),
            "{}",
            line.escape_ascii()
        );
    }
    // Escaped member names are not the members.
    assert_eq!(parse(r#"{"\u0069d":1,"result":1}"#), Err(MissingId));
    let deep = format!(
        r#"{{"id":1,"result":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(matches!(parse(&deep), Err(TooDeep { .. })));
    let huge = "[".repeat(100_000);
    assert!(parse(&huge).is_err());
}

#[test]
fn every_truncation_is_rejected() {
    let line = r#"{"jsonrpc":"2.0","id":"a\"b","method":"m","params":{"x":[1,-2.5e3,"\ud83d\ude00"]},"sessionId":"s"}"#;
    assert!(parse(line).is_ok());
    for end in 0..line.len() {
        assert!(Message::parse(&line.as_bytes()[..end]).is_err(), "{end}");
    }
}

#[test]
fn message_ids_parse_from_raw_tokens() {
    assert_eq!(MessageId::parse(b"42"), Some(MessageId::Int(42)));
    assert_eq!(MessageId::parse(b" -7 "), Some(MessageId::Int(-7)));
    assert_eq!(MessageId::parse(b"null"), Some(MessageId::Null));
    assert!(
        MessageId::parse(br#""a\"b""#)
            .unwrap()
            .matches(Id::Str("a\"b"))
    );
    assert!(!MessageId::parse(b"1").unwrap().matches(Id::Str("1")));
    assert!(!MessageId::parse(br#""1""#).unwrap().matches(Id::Int(1)));
    for bad in [&b""[..], b"1.0", b"\"a", b"1 2", b"{}", b"\xff", b"true"] {
        assert_eq!(MessageId::parse(bad), None, "{}", bad.escape_ascii());
    }
}

// ---------------------------------------------------------------------------------------
// Pending table
// ---------------------------------------------------------------------------------------

/// Owned record of a completion.
#[derive(Debug, PartialEq)]
enum Done {
    Result(String, String),
    Error(String, Option<i64>),
    TimedOut(String),
    Lost(String),
    MaybeLost(String),
}

fn record(into: &mut Vec<Done>) -> impl FnMut(Completion<'_>) + '_ {
    |c| {
        let id = format!("{}", c.id);
        into.push(match c.outcome {
            Outcome::Result(r) => Done::Result(id, r.into()),
            Outcome::Error(e) => Done::Error(id, e.code),
            Outcome::TimedOut => Done::TimedOut(id),
            Outcome::Lost => Done::Lost(id),
            Outcome::MaybeLost => Done::MaybeLost(id),
        })
    }
}

#[test]
fn completes_results_and_errors_once() {
    let mut table = Pending::<4>::new();
    let mut done = Vec::new();
    table.register(1, MS(100)).unwrap();
    table.register("a", MS(100)).unwrap();
    assert_eq!(table.len(), 2);
    assert!(table.contains(1) && table.contains("a") && !table.contains("1"));

    let fed = table.message(
        br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#,
        record(&mut done),
    );
    assert_eq!(fed, Fed::Completed);
    // A second response to the same id completes nothing.
    let line = br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#;
    assert!(matches!(
        table.message(line, record(&mut done)),
        Fed::Unmatched(_)
    ));
    let fed = table.message(
        br#"{"jsonrpc":"2.0","id":"\u0061","error":{"code":-32000,"message":"no"}}"#,
        record(&mut done),
    );
    assert_eq!(fed, Fed::Completed);
    assert_eq!(
        done,
        [
            Done::Result("1".into(), r#"{"ok":true}"#.into()),
            Done::Error("\"a\"".into(), Some(-32000)),
        ]
    );
    assert!(table.is_empty());
}

#[test]
fn other_messages_pass_through() {
    let mut table = Pending::<4>::new();
    table.register(1, MS(100)).unwrap();
    let mut calls = 0;
    let mut count = |_: Completion<'_>| calls += 1;
    // A worker's request with the same id is not a response.
    match table.message(
        br#"{"jsonrpc":"2.0","id":1,"method":"host/ping"}"#,
        &mut count,
    ) {
        Fed::Unmatched(m) => assert_eq!(m.kind(), Kind::Request),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        table.message(br#"{"method":"tick"}"#, &mut count),
        Fed::Unmatched(_)
    ));
    assert!(matches!(
        table.message(br#"{"id":"1","result":1}"#, &mut count),
        Fed::Unmatched(_)
    ));
    assert_eq!(
        table.message(b"\xff garbage", &mut count),
        Fed::Invalid(ScanError::NotUtf8 { offset: 0 })
    );
    assert_eq!(calls, 0);
    assert_eq!(table.len(), 1);
}

#[test]
fn refuses_duplicates_overlong_ids_and_overfilling() {
    let mut table = Pending::<2, 4>::new();
    table.register("abcd", MS(1)).unwrap();
    assert_eq!(table.register("abcd", MS(1)), Err(RegisterError::Duplicate));
    assert_eq!(
        table.register("abcde", MS(1)),
        Err(RegisterError::IdTooLong { len: 5, max: 4 })
    );
    table.register(-5, MS(1)).unwrap();
    assert!(table.is_full());
    assert_eq!(
        table.register(6, MS(1)),
        Err(RegisterError::Full { capacity: 2 })
    );
    assert!(table.cancel("abcd"));
    assert!(!table.cancel("abcd"));
    table.register(6, MS(1)).unwrap();
    table.clear();
    assert!(table.is_empty());
    let mut empty = Pending::<0>::new();
    assert_eq!(
        empty.register(1, MS(1)),
        Err(RegisterError::Full { capacity: 0 })
    );
}

#[test]
fn expires_at_the_deadline() {
    let mut table = Pending::<4>::new();
    let mut done = Vec::new();
    table.register(1, MS(100)).unwrap();
    table.register(2, MS(200)).unwrap();
    table.register(3, MS(300)).unwrap();
    assert_eq!(table.next_deadline(), Some(MS(100)));
    assert_eq!(table.deadline(2), Some(MS(200)));
    assert_eq!(table.expire(MS(99), record(&mut done)), 0);
    assert_eq!(table.expire(MS(200), record(&mut done)), 2);
    assert_eq!(
        done,
        [Done::TimedOut("1".into()), Done::TimedOut("2".into())]
    );
    assert_eq!(table.next_deadline(), Some(MS(300)));
    // A late response is no longer recognised.
    assert!(matches!(
        table.message(br#"{"id":1,"result":1}"#, record(&mut done)),
        Fed::Unmatched(_)
    ));
    table.cancel(3);
    assert_eq!(table.next_deadline(), None);
}

/// An overflow marker as the ring writes it: the loss, then `[more][count][len id]...`.
fn overflow_payload(ids: &[&[u8]], more: bool) -> Vec<u8> {
    let mut payload = encode_loss(3, 300).to_vec();
    payload.push(u8::from(more));
    payload.push(ids.len() as u8);
    for id in ids {
        payload.push(id.len() as u8);
        payload.extend_from_slice(id);
    }
    payload
}

#[test]
fn completes_lost_responses() {
    let mut table = Pending::<4>::new();
    let mut done = Vec::new();
    for id in [1, 2] {
        table.register(id, MS(100)).unwrap();
    }
    table.register("x\"y", MS(100)).unwrap();
    let payload = overflow_payload(&[b"2", br#""x\"y""#, b"99", b"junk"], false);
    let overflow = Overflow::decode(&payload);
    assert_eq!(overflow.lost_ids().count(), 4);
    let fed = table.event(crate::Event::Overflow(overflow), record(&mut done));
    assert_eq!(fed, Fed::Overflow { completed: 2 });
    assert_eq!(
        done,
        [Done::Lost("2".into()), Done::Lost("\"x\"y\"".into())]
    );
    assert!(table.contains(1));

    // More lost than named: every other pending request may be among them.
    done.clear();
    table.register(5, MS(100)).unwrap();
    let payload = overflow_payload(&[b"5"], true);
    assert_eq!(
        table.lost(&Overflow::decode(&payload), record(&mut done)),
        2
    );
    assert_eq!(done, [Done::Lost("5".into()), Done::MaybeLost("1".into())]);
    assert!(table.is_empty());
}

#[test]
fn events_other_than_messages_are_ignored() {
    let mut table = Pending::<1>::new();
    let event = crate::Event::Worker {
        id: crate::WorkerId::new(1),
        event: crate::WorkerEvent::Started,
    };
    assert_eq!(table.event(event, |_| panic!()), Fed::Other);
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn config() -> ProptestConfig {
    crate::test_support::proptest_config(1024)
}

/// Bytes that look enough like JSON-RPC to reach deep into the scanner.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"["[..]),
        Just(&b"]"[..]),
        Just(&b","[..]),
        Just(&b":"[..]),
        Just(&b"\""[..]),
        Just(&b"\\"[..]),
        Just(&b"\\u"[..]),
        Just(&br#""id""#[..]),
        Just(&br#""method""#[..]),
        Just(&br#""result""#[..]),
        Just(&br#""error""#[..]),
        Just(&br#""params""#[..]),
        Just(&br#""sessionId""#[..]),
        Just(&br#""jsonrpc":"2.0""#[..]),
        Just(&br#""code""#[..]),
        Just(&b"-12"[..]),
        Just(&b"1.5e3"[..]),
        Just(&b"null"[..]),
        Just(&b"true"[..]),
        Just(&b" \n"[..]),
        Just(&b"\xff"[..]),
        Just(&b"\xc3\xa9"[..]),
        Just(&b"d83d"[..]),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn id() -> impl Strategy<Value = (Option<i64>, String)> {
    prop_oneof![
        any::<i64>().prop_map(|n| (Some(n), String::new())),
        text().prop_map(|s| (None, s)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scanner_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Message::parse(&bytes);
        let _ = MessageId::parse(&bytes);
        let mut table = Pending::<2>::new();
        table.register(1, MS(1)).unwrap();
        let _ = table.message(&bytes, |_| {});
    }

    #[test]
    fn scanner_never_panics_on_near_json(bytes in jsonish()) {
        if let Ok(message) = Message::parse(&bytes) {
            // Whatever it accepts is JSON.
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
            if let Some(m) = message.method() {
                let _ = m.chars().count();
            }
        }
        let _ = MessageId::parse(&bytes);
    }

    #[test]
    fn written_messages_parse_and_read_back(
        (int, string) in id(),
        notification in any::<bool>(),
        method in text().prop_filter("non-empty", |m| !m.is_empty()),
        session in proptest::option::of(text()),
        agent in proptest::option::of(text()),
        params in proptest::option::of(prop_oneof![
            Just("{}"), Just(" [ 1 , \"a b\" ] "), Just("{\"k\":\n{\"x\":null}}"),
        ]),
    ) {
        let id = int.map_or(Id::Str(&string), Id::Int);
        let mut request = if notification { Request::notification(&method) } else { Request::new(id, &method) };
        if let Some(s) = &session { request = request.session_id(s); }
        if let Some(a) = &agent { request = request.agent_id(a); }
        if let Some(p) = params { request = request.params(p); }
        let mut buf = [0u8; 4096];
        let line = request.write(&mut buf).unwrap();
        prop_assert!(!line.contains(&b'\n'));
        let json: serde_json::Value = serde_json::from_slice(line).unwrap();
        prop_assert_eq!(&json["method"], &serde_json::Value::from(method.as_str()));
        if let Some(p) = params {
            let expected: serde_json::Value = serde_json::from_str(p).unwrap();
            prop_assert_eq!(&json["params"], &expected);
        }
        let message = Message::parse(line).unwrap();
        prop_assert!(message.method().unwrap() == method.as_str());
        prop_assert_eq!(message.session_id().map(|s| format!("{s}")), session);
        prop_assert_eq!(message.agent_id().map(|s| format!("{s}")), agent);
        if notification {
            prop_assert_eq!(message.kind(), Kind::Notification);
        } else {
            prop_assert_eq!(message.kind(), Kind::Request);
            prop_assert!(message.id().unwrap().matches(id));
            // A response echoing the raw id completes the registered request.
            let mut table = Pending::<1, 64>::new();
            table.register(id, MS(1)).unwrap();
            let response = format!(r#"{{"jsonrpc":"2.0","id":{},"result":1}}"#, message.raw_id().unwrap());
            let mut got = None;
            let fed = table.message(response.as_bytes(), |c| got = Some(c.id == id));
            prop_assert_eq!(fed, Fed::Completed);
            prop_assert_eq!(got, Some(true));
        }
    }
}

#[test]
fn string_ids_compare_by_their_decoded_value() {
    let escaped = Message::parse(br#"{"jsonrpc":"2.0","id":"\u0061","result":1}"#).unwrap();
    let plain = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":1}"#).unwrap();
    assert_eq!(escaped.id(), plain.id());
    let other = Message::parse(br#"{"jsonrpc":"2.0","id":"b","result":1}"#).unwrap();
    assert_ne!(escaped.id(), other.id());
}

#[test]
fn member_reads_one_top_level_member_raw() {
    let params = r#"{"reason":"user \"quit\"","requestId":"r-7","nested":{"requestId":1}}"#;
    assert_eq!(super::member(params, "requestId"), Some(r#""r-7""#));
    assert_eq!(super::member(params, "reason"), Some(r#""user \"quit\"""#));
    assert_eq!(super::member(params, "nested"), Some(r#"{"requestId":1}"#));
    assert_eq!(super::member(params, "missing"), None);
    assert_eq!(
        super::member(r#"{ "requestId" : 42 }"#, "requestId"),
        Some("42")
    );
    assert_eq!(super::member("[1,2]", "requestId"), None);
    assert_eq!(super::member(r#"{"requestId":"#, "requestId"), None);
    assert_eq!(super::member("", "requestId"), None);
}
