//! A host whose SIGPIPE is at its default disposition survives writing to a dead worker,
//! and the bus never changes that disposition.
//!
//! Rust's std runtime ignores SIGPIPE before `main`; this test puts it back to the default,
//! as a `no_std` or C host has it, so a write to a dead worker would kill the process if
//! the crate did not handle it. It is alone in its binary because the disposition is
//! process-wide. Linux only: it reads the dispositions in `/proc`, and elsewhere the
//! kernel's writes are not the bus's (see the README, "Linking").
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, call, config, options, ring};
use serde_json::json;
use stdiobus_embed::{Bus, Error, ErrorCode, Limits, Pool, Running, WorkerId};

/// Bit of SIGPIPE in the signal masks of /proc/PID/status.
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

fn signal_mask(pid: i64, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

/// Writes to a worker that has just exited, before any poll could notice, until the
/// kernel's write fails; returns that error.
fn send_to_the_dead(bus: &mut Bus<'_, Running>) -> Error {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match bus.send(br#"{"jsonrpc":"2.0","id":3,"method":"m"}"#) {
            Err(error) => return error,
            Ok(()) => {
                assert!(
                    Instant::now() < deadline,
                    "every send to the dead worker succeeded"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A bus with one echo worker that has answered a request; returns the worker's pid.
fn answering_bus() -> (
    Bus<'static, Running>,
    stdiobus_embed::Consumer<'static>,
    i64,
) {
    let (producer, mut events) = ring();
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
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
    (bus, events, pid)
}

#[test]
fn a_dead_worker_cannot_kill_a_host_with_default_sigpipe() {
    // SAFETY: resetting a signal to its default disposition is always valid.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);

    let (mut bus, _events, pid) = answering_bus();
    let me = i64::from(std::process::id());
    let untouched = || {
        assert_eq!(
            signal_mask(me, "SigIgn:") & SIGPIPE_BIT,
            0,
            "the host does not ignore SIGPIPE"
        );
        assert_eq!(
            signal_mask(me, "SigCgt:") & SIGPIPE_BIT,
            0,
            "the host does not catch SIGPIPE: its disposition is the default still"
        );
    };
    untouched();
    assert!(common::process_exists(pid));

    // The worker exits; writing to it raises SIGPIPE in this process, which must come
    // back as an error instead.
    bus.send(br#"{"jsonrpc":"2.0","id":2,"method":"exit"}"#)
        .unwrap();
    let error = send_to_the_dead(&mut bus);
    assert_eq!(error, Error::Kernel(ErrorCode::Worker));
    assert!(
        error.is_retryable(),
        "-11 may be back-pressure, so retrying is allowed"
    );
    untouched();
    drop(bus);

    // A host that puts SIGPIPE back to its default while a bus runs is as safe.
    let (mut bus, _events, pid) = answering_bus();
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: `pid` is this bus's live worker.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    assert_eq!(send_to_the_dead(&mut bus), Error::Kernel(ErrorCode::Worker));
    untouched();
    drop(bus);

    // A host that blocks SIGPIPE on its own thread keeps it blocked, and the SIGPIPE the
    // write raised stays pending for it, as its own writes' would.
    // SAFETY: a valid set, and this thread's mask only.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, std::ptr::null_mut());
    }
    let (mut bus, _events, pid) = answering_bus();
    // SAFETY: `pid` is this bus's live worker.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    assert_eq!(send_to_the_dead(&mut bus), Error::Kernel(ErrorCode::Worker));
    drop(bus);
    // SAFETY: a valid out-parameter; then the pending SIGPIPE is taken and the mask
    // restored.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        assert_eq!(
            libc::sigismember(&pending, libc::SIGPIPE),
            1,
            "left pending"
        );
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::sigtimedwait(&pipe, std::ptr::null_mut(), &now);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &pipe, std::ptr::null_mut());
    }
    untouched();

    // A host that promises SIGPIPE stays ignored, while it is at its default, is not
    // taken at its word: the bus blocks it as before.
    let promised = || {
        let (producer, _events) = ring();
        let pools = [Pool::new("echo", WORKER)];
        let options = options().sigpipe_ignored(true);
        let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
            .unwrap()
            .start()
            .unwrap();
        let pid = bus.worker_pid(WorkerId::new(0)).unwrap();
        // SAFETY: `pid` is this bus's live worker.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
        assert_eq!(send_to_the_dead(&mut bus), Error::Kernel(ErrorCode::Worker));
    };
    promised();
    // Kept ignored, as promised: the writes go unblocked and fail with EPIPE.
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    promised();
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };

    // A worker that does not touch SIGPIPE itself (unlike a Rust program, whose runtime
    // ignores it) starts with the default disposition.
    let (producer, mut events) = ring();
    let probe = ["-c", "grep SigIgn /proc/self/status; exec cat"];
    let pools = [Pool::new("probe", "/bin/sh").args(&probe)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let mut seen = Vec::new();
    let ignored_line = |s: &Seen| match s {
        Seen::Message(line) if line.starts_with(b"SigIgn:") => Some(line.clone()),
        _ => None,
    };
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the worker's signal mask",
        |seen| seen.iter().any(|s| ignored_line(s).is_some()),
    );
    let line = seen.iter().find_map(ignored_line).unwrap();
    let mask = u64::from_str_radix(std::str::from_utf8(&line[7..]).unwrap().trim(), 16).unwrap();
    assert_eq!(
        mask & SIGPIPE_BIT,
        0,
        "workers keep the default SIGPIPE behaviour"
    );
}
