//! Whatever `ConfigBuffer::write` accepts, `Config::from_json` accepts too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdiobus_embed::{Config, ConfigBuffer, Limits, Pool};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    // Pools separated by \u{2}, fields by \u{1}: id, command, then arguments.
    let fields: Vec<Vec<&str>> = text
        .split('\u{2}')
        .map(|pool| pool.split('\u{1}').collect())
        .collect();
    let pools: Vec<Pool<'_>> = fields
        .iter()
        .map(|f| {
            let id = f.first().copied().unwrap_or("");
            let command = f.get(1).copied().unwrap_or("");
            let instances = 1 + (id.len() % 3) as u32;
            Pool::new(id, command)
                .args(f.get(2..).unwrap_or(&[]))
                .instances(instances)
        })
        .collect();
    let mut buffer = ConfigBuffer::<16384>::new();
    if buffer.write(&pools, &Limits::default()).is_err() {
        return;
    }
    let json = std::ffi::CString::new(buffer.as_str()).expect("the writer writes no NUL");
    if let Err(error) = Config::from_json(&json) {
        panic!(
            "the writer's own output was refused: {error}\n{}",
            buffer.as_str()
        );
    }
});
