//! Nothing outlives a bus: no worker process, no zombie, no file descriptor.
//!
//! These tests count the whole process's children and descriptors, so they are in a binary
//! of their own and take turns.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, call, child_pids, open_fds, start_echo};
use serde_json::json;

/// Held by each test for its whole run: nothing else in this process spawns or opens.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn assert_back_to(fds: &[String], what: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let children = child_pids();
        let now = open_fds();
        if children.is_empty() && now == fds {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {what}: children {children:?}, fds {now:?} (before: {fds:?})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn no_process_zombie_or_fd_is_left_in_any_ending() {
    let _alone = alone();
    // The first bus loads what the process keeps for good (the ring's pages, stderr
    // buffering); count from after it.
    drop(start_echo(1));
    assert_back_to(&open_fds(), "the warm-up bus");
    let fds = open_fds();
    // One ending per function: a bus is large, and an unoptimised build keeps every copy
    // of one in its own stack slot.
    drop_running(&fds);
    drop_stopped(&fds);
    drop_stopping(&fds);
    take_the_producer(&fds);
    fail_to_start(20);
}

fn drop_running(fds: &[String]) {
    let (mut bus, mut events) = start_echo(3);
    call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    assert_eq!(child_pids().len(), 3);
    drop(bus);
    assert_back_to(fds, "dropping a running bus");
}

fn drop_stopped(fds: &[String]) {
    let (mut bus, mut events) = start_echo(2);
    call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    let stopped = bus.stop(Duration::from_secs(1)).unwrap();
    assert!(
        child_pids().is_empty(),
        "a stopped bus has collected its workers"
    );
    drop(stopped); // the instance, and with it its pipes, goes with the bus
    assert_back_to(fds, "dropping a stopped bus");
}

fn drop_stopping(fds: &[String]) {
    let (bus, _events) = start_echo(2);
    drop(bus.begin_stop(Duration::from_secs(1)).unwrap());
    assert_back_to(fds, "dropping a stopping bus");
}

fn take_the_producer(fds: &[String]) {
    let (bus, _events) = start_echo(1);
    let _producer = bus.into_producer();
    assert_back_to(fds, "taking the producer back");
}

/// A start that fails after spawning its worker (the port is taken): the instance is
/// destroyed like any other, not leaked.
fn fail_to_start(times: usize) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let fds = open_fds(); // the listener above included
    for _ in 0..times {
        failed_start(port);
    }
    assert_back_to(&fds, "twenty failed starts");
}

fn failed_start(port: u16) {
    let (producer, _events) = common::ring();
    let listener = stdiobus_embed::Listener::Tcp {
        host: c"127.0.0.1",
        port,
    };
    let pools = [stdiobus_embed::Pool::new("echo", common::WORKER)];
    let config = common::config(&pools, &stdiobus_embed::Limits::default());
    let bus = stdiobus_embed::Bus::create(config, common::options().listener(listener), producer)
        .unwrap();
    assert!(bus.start().is_err(), "the port is in use");
}

#[test]
fn two_hundred_lifecycles_leave_nothing_behind() {
    let _alone = alone();
    drop(common::start_echo(1));
    let fds = open_fds();
    for round in 0..200 {
        let (mut bus, mut events) = common::start_echo(1);
        if round % 20 == 0 {
            call(
                &mut bus,
                &mut events,
                &json!({"jsonrpc": "2.0", "id": round, "method": "m"}),
            );
        }
        drop(bus.stop(Duration::from_secs(1)).unwrap());
    }
    assert!(child_pids().is_empty(), "no worker or zombie left");
    assert_eq!(open_fds(), fds, "no descriptor left");
}

#[test]
fn dropping_a_bus_under_load_frees_everything() {
    let _alone = alone();
    drop(common::start_echo(1));
    let fds = open_fds();
    let (mut bus, mut events) = common::start_echo(3);
    common::flood(&mut bus, &mut events, 300);
    drop(bus);
    assert!(child_pids().is_empty(), "no worker or zombie left");
    assert_eq!(open_fds(), fds, "no descriptor left");
}
