//! The lifecycle against the real kernel: every transition, and drop in every state.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, call, config, options, process_exists, ring, start_echo};
use serde_json::json;
use stdiobus_embed::{
    Bus, Config, ConfigError, Error, EventRing, KernelState, Limits, Pool, Running, WorkerId,
};

/// Asks every worker of `bus` for its pid (one call per worker, each answered by some
/// worker; the set is what the test needs).
fn worker_pids(bus: &mut Bus<'_, Running>, events: &mut stdiobus_embed::Consumer<'_>) -> Vec<i64> {
    let mut pids = Vec::new();
    for n in 0..8 {
        let response = call(
            bus,
            events,
            &json!({"jsonrpc": "2.0", "id": n, "method": "pid"}),
        );
        let pid = response["result"]["pid"].as_i64().unwrap();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn created_running_stopped_with_events_at_each_step() {
    let (producer, mut events) = ring();
    let pools = [Pool::new("echo", WORKER).instances(2)];
    let bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    assert_eq!(bus.kernel_state(), KernelState::Created);

    let mut bus = bus.start().unwrap();
    assert_eq!(bus.kernel_state(), KernelState::Running);
    assert_eq!(bus.worker_count(), 2);
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    let started = seen
        .iter()
        .filter(|s| matches!(s, Seen::Worker(_, w) if w == "started"))
        .count();
    assert_eq!(started, 2, "{seen:?}");

    let pids = worker_pids(&mut bus, &mut events);
    let stats = bus.stats();
    assert!(
        stats.messages_in >= 8 && stats.messages_out >= 8,
        "{stats:?}"
    );
    assert_eq!(bus.pending_count(), 0);
    assert_eq!(bus.client_count(), 0);
    assert!(
        bus.poll_fd().is_some(),
        "the kernel's event loop descriptor"
    );

    let stopped = bus.stop(Duration::from_secs(1)).unwrap();
    assert_eq!(stopped.kernel_state(), KernelState::Stopped);
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    // The bus lets the kernel stop only after it has seen every worker's pipe close.
    for id in (0..2).map(WorkerId::new) {
        assert!(
            seen.contains(&Seen::Worker(id, "stopped".into())),
            "{seen:?}"
        );
    }
    assert!(
        stopped.stats().messages_in >= 8,
        "stats stay readable when stopped"
    );
    drop(stopped);
    common::wait_gone(&pids);
}

#[test]
fn a_bare_loop_polls_its_way_to_stopped() {
    let (bus, mut events) = start_echo(1);
    let mut stopping = bus.begin_stop(Duration::from_secs(1)).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    let stopped = loop {
        stopping.poll_stop(Duration::from_millis(10)).unwrap();
        common::drain(&mut events, &mut seen);
        match stopping.try_finish() {
            Ok(stopped) => break stopped,
            Err(still) => stopping = still,
        }
        assert!(Instant::now() < deadline, "never stopped; saw {seen:?}");
    };
    assert_eq!(stopped.kernel_state(), KernelState::Stopped);
    assert!(
        seen.contains(&Seen::Worker(WorkerId::new(0), "stopped".into())),
        "{seen:?}"
    );
}

#[test]
fn dropping_a_created_bus_spawns_nothing_and_frees_it() {
    let (producer, _events) = ring();
    let pools = [Pool::new("echo", WORKER)];
    let bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    assert_eq!(bus.worker_count(), 0);
    drop(bus);
}

#[test]
fn dropping_a_running_bus_ends_its_workers() {
    let (mut bus, mut events) = start_echo(2);
    let pids = worker_pids(&mut bus, &mut events);
    assert!(pids.iter().all(|&pid| process_exists(pid)));
    drop(bus);
    common::wait_gone(&pids);
}

#[test]
fn dropping_a_stopping_bus_ends_its_workers() {
    let (mut bus, mut events) = start_echo(1);
    let pids = worker_pids(&mut bus, &mut events);
    let stopping = bus.begin_stop(Duration::from_secs(5)).unwrap();
    drop(stopping);
    common::wait_gone(&pids);
}

#[test]
fn a_stopped_bus_hands_its_ring_to_the_next_bus() {
    let (mut bus, mut events) = start_echo(1);
    call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    let producer = bus.stop(Duration::from_secs(1)).unwrap().into_producer();
    common::drain(&mut events, &mut Vec::new());

    let pools = [Pool::new("again", WORKER).args(&["--name", "again"])];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "m"}),
    );
    assert_eq!(response["result"]["worker"], "again");
}

#[test]
fn a_refused_configuration_gives_the_producer_back() {
    let (producer, mut events) = ring();
    let missing = Config::from_file(c"/nonexistent/stdiobus-embed/config.json");
    let failed = Bus::create(missing, options(), producer).unwrap_err();
    assert_eq!(
        failed.error,
        Error::Config(ConfigError::FileUnreadable {
            errno: libc::ENOENT
        })
    );
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    assert!(seen.is_empty(), "the kernel never saw it: {seen:?}");

    let pools = [Pool::new("echo", WORKER)];
    let bus = Bus::create(config(&pools, &Limits::default()), options(), failed.value);
    assert!(
        bus.is_ok(),
        "the same producer serves a valid configuration"
    );
}

/// The kernel counts a worker whose command cannot be run as started; the bus learns at
/// the fork that the exec failed, and `start` says which worker and why.
#[test]
fn a_worker_command_that_cannot_be_executed_fails_start() {
    let not_executable =
        std::env::temp_dir().join(format!("stdiobus-noexec-{}", std::process::id()));
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let not_executable: &'static str = Box::leak(not_executable.to_str().unwrap().into());
    for (command, errno, says) in [
        (
            "/nonexistent/stdiobus-embed/worker",
            libc::ENOENT,
            "no such file",
        ),
        (
            "stdiobus-embed-no-such-command",
            libc::ENOENT,
            "no such file",
        ),
        (not_executable, libc::EACCES, "permission denied"),
    ] {
        let (producer, _events) = ring();
        let pools = [Pool::new("echo", WORKER), Pool::new("ghost", command)];
        let created = Bus::create(config(&pools, &Limits::default()), options(), producer);
        let Err(failed) = created.unwrap().start() else {
            panic!("{command}: started");
        };
        assert_eq!(
            failed.error,
            Error::ExecFailed {
                worker: WorkerId::new(1),
                errno
            },
            "{command}"
        );
        let message = failed.error.to_string();
        assert!(
            message.contains("worker 1 could not execute its command") && message.contains(says),
            "{message}"
        );
        // The worker that did start ends with the bus.
        let pid = failed
            .value
            .worker_pid(WorkerId::new(0))
            .expect("worker 0 runs");
        drop(failed);
        common::wait_gone(&[i64::from(pid)]);
    }
    std::fs::remove_file(not_executable).unwrap();
}

/// The MCP stdio shutdown's first step: each worker sees the end of its input and exits
/// on its own, and none is restarted or sent to after.
#[test]
fn closing_the_workers_stdin_lets_them_exit_on_their_own() {
    let (mut bus, mut events) = start_echo(2);
    let pids = worker_pids(&mut bus, &mut events);
    bus.close_worker_stdin();
    let mut seen = Vec::new();
    common::poll_until(&mut bus, &mut events, &mut seen, "both exits", |seen| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Exited(..)))
            .count()
            == 2
    });
    for id in (0..2).map(WorkerId::new) {
        // Exited with 0: they read the end of their input; the bus sent no signal.
        assert!(
            seen.contains(&Seen::Exited(id, stdiobus_embed::ExitStatus::Code(0))),
            "{seen:?}"
        );
    }
    common::wait_gone(&pids);
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "m"}).to_string();
    assert_eq!(bus.send(request.as_bytes()), Err(Error::NoWorker));
    assert_eq!(
        bus.send_to_worker(WorkerId::new(0), request.as_bytes()),
        Err(Error::WorkerGone {
            id: WorkerId::new(0)
        })
    );
    bus.poll(Duration::from_millis(50)).unwrap();
    common::drain(&mut events, &mut seen);
    assert!(
        !seen.contains(&Seen::Worker(WorkerId::new(0), "started".into())),
        "{seen:?}"
    );
    bus.stop(Duration::from_secs(1)).expect("stop");
}

#[test]
fn a_ring_splits_once() {
    let ring = EventRing::<4, 64>::new();
    let halves = ring.split();
    assert!(halves.is_ok());
    assert_eq!(ring.split().err(), Some(stdiobus_embed::AlreadySplit));
}

/// With several workers, the kernel's own `stop` reached STOPPED before the workers'
/// pipes closed, and `destroy` then crashed the process in most runs. Any crash here kills
/// the test binary.
#[test]
fn buses_with_several_workers_stop_and_drop_without_crashing() {
    for round in 0..10 {
        let (mut bus, mut events) = start_echo(3);
        call(
            &mut bus,
            &mut events,
            &json!({"jsonrpc": "2.0", "id": round, "method": "m"}),
        );
        match round % 3 {
            0 => drop(bus.stop(Duration::from_secs(1)).unwrap()),
            1 => drop(bus),
            _ => drop(bus.begin_stop(Duration::from_secs(1)).unwrap()),
        }
        common::drain(&mut events, &mut Vec::new());
    }
}

/// A worker that ignores SIGTERM is killed once the drain time has passed.
#[test]
fn a_worker_that_ignores_sigterm_is_killed_after_the_drain_time() {
    let (mut bus, mut events) = common::shell_bus("trap '' TERM; echo $$; exec cat");
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the worker's pid",
        |seen| seen.iter().any(|s| matches!(s, Seen::Message(_))),
    );
    let pid: i64 = seen
        .iter()
        .find_map(|s| match s {
            Seen::Message(line) => std::str::from_utf8(line).ok()?.trim().parse().ok(),
            _ => None,
        })
        .expect("the pid line");

    let asked = Instant::now();
    let stopped = bus.stop(Duration::from_millis(200)).unwrap();
    assert!(
        asked.elapsed() >= Duration::from_millis(200),
        "SIGTERM alone did not end it"
    );
    assert_eq!(stopped.kernel_state(), KernelState::Stopped);
    assert!(!process_exists(pid), "killed and collected");
}

/// A configuration file is checked right before the kernel reads it: only a regular file,
/// with the same rules as `Config::from_json`.
#[test]
fn a_configuration_file_is_checked_like_json_and_must_be_a_regular_file() {
    let dir = std::env::temp_dir().join(format!("stdiobus-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| -> &'static std::ffi::CStr {
        let text = dir.join(name).to_str().unwrap().to_owned();
        Box::leak(std::ffi::CString::new(text).unwrap().into_boxed_c_str())
    };
    let refused = |file: &'static std::ffi::CStr| {
        let (producer, _events) = ring();
        Bus::create(Config::from_file(file), options(), producer)
            .unwrap_err()
            .error
    };
    let not_a_file = |kind| Error::Config(ConfigError::NotAFile { kind });

    // A FIFO would block the kernel's `fopen` until some writer came along.
    let fifo = path("fifo.json");
    // SAFETY: `fifo` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(refused(fifo), not_a_file("a FIFO"));
    assert_eq!(refused(path("")), not_a_file("a directory"));
    assert_eq!(refused(c"/dev/null"), not_a_file("a device"));

    std::fs::write(dir.join("empty.json"), r#"{"pools":[]}"#).unwrap();
    assert_eq!(
        refused(path("empty.json")),
        Error::Config(ConfigError::NoPools)
    );

    let valid = format!(r#"{{"pools":[{{"id":"echo","command":"{WORKER}","instances":1}}]}}"#);
    std::fs::write(dir.join("valid.json"), valid).unwrap();
    let (producer, mut events) = ring();
    let mut bus = Bus::create(Config::from_file(path("valid.json")), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    assert_eq!(response["id"], 1);
    drop(bus);
    std::fs::remove_dir_all(&dir).unwrap();
}
