//! `Config::from_json` on any text: a precise error or a configuration, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdiobus_embed::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::ffi::CString::new(data) {
        let _ = Config::from_json(&text);
    }
});
