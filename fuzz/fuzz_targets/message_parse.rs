//! `Message::parse` on any bytes: never a panic, and a method reads back consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdiobus_embed::jsonrpc::Message;

fuzz_target!(|line: &[u8]| {
    if let Ok(message) = Message::parse(line) {
        let _ = (
            message.kind(),
            message.raw_id(),
            message.params(),
            message.result(),
        );
        if let Some(method) = message.method() {
            // The decoded text, its length and its comparison agree with each other.
            let len: usize = method.chars().map(char::len_utf8).sum();
            assert_eq!(method.decoded_len(), len);
            let mut buf = [0u8; 256];
            if let Some(decoded) = method.decode_into(&mut buf) {
                assert_eq!(decoded.len(), len);
                assert!(method.eq_str(decoded));
            }
        }
        let _ = message.error().map(|error| error.code);
    }
});
