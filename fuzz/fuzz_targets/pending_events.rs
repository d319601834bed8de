//! `Pending` driven by any sequence of registrations, lines and clock ticks: every request
//! completes at most once, and the table never holds more than it can.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use stdiobus_embed::jsonrpc::Pending;

fuzz_target!(|data: &[u8]| {
    let mut pending = Pending::<8>::new();
    let mut registered = 0usize;
    let mut completed = 0usize;
    let mut now = Duration::ZERO;
    for chunk in data.split(|&b| b == b'\n') {
        let Some((&op, rest)) = chunk.split_first() else {
            continue;
        };
        match op % 3 {
            0 => {
                let id = i64::from(rest.first().copied().unwrap_or(0));
                if pending
                    .register(id, now + Duration::from_millis(u64::from(op)))
                    .is_ok()
                {
                    registered += 1;
                }
            }
            1 => {
                let _ = pending.message(rest, |_| completed += 1);
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(1)));
                pending.expire(now, |_| completed += 1);
            }
        }
        assert!(
            completed <= registered,
            "{completed} completions for {registered} requests"
        );
        assert!(pending.len() <= 8);
    }
});
