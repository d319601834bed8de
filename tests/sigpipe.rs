//! A host whose SIGPIPE is at its default disposition survives writing to a dead worker.
//!
//! Rust's std runtime ignores SIGPIPE before `main`; this test puts it back to the default,
//! as a `no_std` or C host has it, so a write to a dead worker would kill the process if
//! the crate did not handle it. It is alone in its binary because the disposition is
//! process-wide.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, call, config, options, ring};
use serde_json::json;
use stdiobus_embed::{Bus, Error, ErrorCode, Limits, Pool};

/// Bit of SIGPIPE in the signal masks of /proc/PID/status.
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

fn signal_mask(pid: i64, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

#[test]
fn a_dead_worker_cannot_kill_a_host_with_default_sigpipe() {
    // SAFETY: resetting a signal to its default disposition is always valid.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);

    let (producer, mut events) = ring();
    // No restarts: the dead worker's pipe stays dead.
    let limits = Limits {
        max_restarts: Some(0),
        ..Limits::default()
    };
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &limits), options(), producer)
        .unwrap()
        .start()
        .unwrap();

    let pid = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "pid"}),
    )["result"]["pid"]
        .as_i64()
        .unwrap();
    let me = i64::from(std::process::id());
    assert_eq!(
        signal_mask(me, "SigIgn:") & SIGPIPE_BIT,
        0,
        "the host does not ignore SIGPIPE"
    );
    assert_ne!(
        signal_mask(me, "SigCgt:") & SIGPIPE_BIT,
        0,
        "the host catches SIGPIPE"
    );
    assert!(common::process_exists(pid));

    bus.send(br#"{"jsonrpc":"2.0","id":2,"method":"exit"}"#)
        .unwrap();
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the worker to stop",
        |seen| seen.contains(&Seen::Worker(0, "stopped".into())),
    );

    // Writing to the dead worker raises SIGPIPE in this process; it must come back as an
    // error instead.
    let deadline = Instant::now() + DEADLINE;
    let error = loop {
        match bus.send(br#"{"jsonrpc":"2.0","id":3,"method":"m"}"#) {
            Err(error) => break error,
            Ok(()) => {
                assert!(
                    Instant::now() < deadline,
                    "every send to the dead worker succeeded"
                );
                bus.poll(Duration::from_millis(10)).unwrap();
            }
        }
    };
    assert_eq!(error, Error::Kernel(ErrorCode::Worker));
    assert!(
        error.is_retryable(),
        "-11 may be back-pressure, so retrying is allowed"
    );
    drop(bus);
}
