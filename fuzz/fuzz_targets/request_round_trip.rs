//! Whatever `Request` writes, `Message::parse` reads back as the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdiobus_embed::jsonrpc::{Kind, Message, Request};

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(text) = core::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.splitn(3, '\u{1}');
    let method = parts.next().unwrap_or("");
    let params = parts.next();
    let session = parts.next();
    let id = i64::from_le_bytes(*head);
    let mut request = Request::new(id, method);
    if let Some(params) = params {
        request = request.params(params);
    }
    if let Some(session) = session {
        request = request.session_id(session);
    }
    let mut buf = [0u8; 4096];
    let Ok(line) = request.write(&mut buf) else {
        return;
    };
    let message = Message::parse(line).expect("what the writer wrote parses");
    assert_eq!(message.kind(), Kind::Request);
    assert!(message.id().expect("an id").matches(id.into()));
    assert!(message.method().expect("a method").eq_str(method));
    if let Some(session) = session {
        assert!(message.session_id().expect("a session id").eq_str(session));
    }
});
