//! Workers that misbehave never take the host down, and what they do is reported.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, call, config, options, process_exists, ring};
use serde_json::json;
use stdiobus_embed::{
    Bus, Error, ErrorCode, ExitStatus, Limits, Pool, RestartRefused, Running, WorkerId,
};

/// A started bus whose workers are not restarted when they end.
fn start_without_restarts(
    pools: &[Pool<'_>],
) -> (Bus<'static, Running>, stdiobus_embed::Consumer<'static>) {
    let (producer, events) = ring();
    let limits = Limits {
        max_restarts: Some(0),
        ..Limits::default()
    };
    let bus = Bus::create(config(pools, &limits), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    (bus, events)
}

fn messages(seen: &[Seen]) -> Vec<Vec<u8>> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Message(line) => Some(line.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn garbage_half_lines_and_a_silent_exit_are_delivered_as_written() {
    // Binary junk, a half object, a line without its newline at exit.
    let (mut bus, mut events) =
        common::shell_bus(r#"printf '\377\001junk\n{"jsonrpc":"2.0",\n'; printf 'no newline'"#);
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the worker to exit",
        |seen| seen.contains(&Seen::Worker(WorkerId::new(0), "stopped".into())),
    );
    let lines = messages(&seen);
    assert_eq!(lines[0], b"\xff\x01junk");
    assert_eq!(lines[1], br#"{"jsonrpc":"2.0","#);
    // The kernel alone drops a last line without a newline; the bus, which keeps the end
    // of a worker's output from it, ends that line for it.
    assert_eq!(lines[2], b"no newline");
    assert_eq!(lines.len(), 3, "{seen:?}");
}

#[test]
fn a_line_longer_than_the_ring_is_counted_lost_not_cut() {
    // 3 MiB without a newline until the end: more than the 2 MiB test ring, less than the
    // kernel's line limit raised to 8 MiB.
    let (producer, mut events) = ring();
    let script = [
        "-c",
        "head -c 3145728 /dev/zero | tr '\\0' x; echo; echo small",
    ];
    let limits = Limits {
        max_input_buffer: Some(8 << 20),
        ..Limits::default()
    };
    let pools = [Pool::new("long", "/bin/sh").args(&script)];
    let mut bus = Bus::create(config(&pools, &limits), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let mut seen = Vec::new();
    common::poll_until(&mut bus, &mut events, &mut seen, "the small line", |seen| {
        seen.contains(&Seen::Message(b"small".to_vec()))
    });
    assert!(
        seen.contains(&Seen::Overflow(1, 3 << 20, vec![], false)),
        "one event of 3 MiB reported lost: {seen:?}"
    );
    assert!(messages(&seen).iter().all(|line| line.len() < 1 << 20));
}

#[test]
fn a_worker_that_never_reads_makes_send_retryable_not_hang() {
    let (mut bus, _events) = common::shell_bus("exec sleep 1000");
    let request = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":"0123456789012345678901234567890123456789"}"#;
    let deadline = Instant::now() + DEADLINE;
    let error = loop {
        match bus.send(request) {
            Ok(()) => assert!(Instant::now() < deadline, "the pipe never filled"),
            Err(error) => break error,
        }
    };
    assert_eq!(error, Error::Kernel(ErrorCode::Worker));
    assert!(error.is_retryable());
    // Large messages are refused by the bus itself before the kernel could cut them.
    let large = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"m","params":"{}"}}"#,
        "y".repeat(10_000)
    );
    assert!(matches!(
        bus.send(large.as_bytes()),
        Err(Error::PipeFull { .. })
    ));
    // The worker ignores stdin and SIGTERM does end `sleep`; stop completes.
    bus.stop(Duration::from_secs(1)).unwrap();
}

/// Sends a `pid` request and returns the pid in its response.
fn answer_pid(
    bus: &mut Bus<'_, Running>,
    events: &mut stdiobus_embed::Consumer<'_>,
    id: i64,
) -> i64 {
    call(
        bus,
        events,
        &json!({"jsonrpc": "2.0", "id": id, "method": "pid"}),
    )["result"]["pid"]
        .as_i64()
        .unwrap()
}

/// A worker that dies, and may not be restarted (`max_restarts` 0), is noticed: the bus
/// sees the process exit, lets the kernel reap it, and every later request goes to the
/// other worker; with none left, `send` says so instead of handing the message to a dead
/// pipe.
#[test]
fn a_dead_worker_is_noticed_and_the_next_one_serves() {
    let (mut bus, mut events) =
        start_without_restarts(&[Pool::new("echo", common::WORKER).instances(2)]);
    let first = answer_pid(&mut bus, &mut events, 0);
    assert_eq!(
        bus.worker_pid(WorkerId::new(0)),
        Some(first as u32),
        "round-robin starts at 0"
    );
    let second = i64::from(bus.worker_pid(WorkerId::new(1)).expect("the second worker"));

    // SAFETY: `first` is a live worker of this test's bus.
    assert_eq!(
        unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert_eq!(
        common::wait_for_exit(&mut bus, &mut events, WorkerId::new(0)),
        ExitStatus::Signal(libc::SIGKILL)
    );
    for id in 1..5 {
        assert_eq!(answer_pid(&mut bus, &mut events, id), second);
    }
    assert!(
        !process_exists(first),
        "the dead worker was reaped, not left a zombie"
    );

    // SAFETY: `second` is a live worker of this test's bus.
    assert_eq!(
        unsafe { libc::kill(second as libc::pid_t, libc::SIGKILL) },
        0
    );
    assert_eq!(
        common::wait_for_exit(&mut bus, &mut events, WorkerId::new(1)),
        ExitStatus::Signal(libc::SIGKILL)
    );
    let error = bus
        .send(br#"{"jsonrpc":"2.0","id":9,"method":"pid"}"#)
        .unwrap_err();
    assert_eq!(error, Error::NoWorker);
    // A restart could bring one back; with `max_restarts` 0 the `failed` event said none
    // will come.
    assert_eq!(error.retry(), stdiobus_embed::Retry::Maybe);

    drop(bus);
    assert!(!process_exists(second), "nothing left behind");
}

/// Between a worker's death and the poll that notices it, the bus still takes that worker
/// for alive: a message for it must fail rather than vanish, since no other process holds
/// the read end of its stdin pipe any more.
#[test]
fn a_send_right_after_a_death_is_refused_or_answered_never_lost() {
    for round in 0..20 {
        let (mut bus, mut events) = common::start_echo(2);
        let first = i64::from(bus.worker_pid(WorkerId::new(0)).unwrap());
        assert_eq!(answer_pid(&mut bus, &mut events, 0), first);
        // SAFETY: `first` is a live worker of this test's bus.
        assert_eq!(
            unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) },
            0
        );
        let deadline = Instant::now() + DEADLINE;
        while common::is_running(first as u32) {
            assert!(Instant::now() < deadline, "worker {first} did not die");
            std::thread::sleep(Duration::from_millis(1));
        }
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "pid"});
        match bus.send_to_worker(WorkerId::new(0), request.to_string().as_bytes()) {
            Err(error) => assert_eq!(error, Error::Kernel(ErrorCode::Worker), "round {round}"),
            Ok(()) => {
                let mut seen = Vec::new();
                common::poll_until(&mut bus, &mut events, &mut seen, "the answer", |seen| {
                    !common::responses(seen, &json!(1)).is_empty()
                });
            }
        }
    }
}

/// Each such worker is reported with its exit code and reaped at once; with `max_restarts`
/// 0 none is restarted, each is reported failed, and `send` says that no worker is left.
#[test]
fn workers_that_exit_at_once_are_reported_and_collected() {
    let pools = [Pool::new("quitter", "/bin/sh")
        .args(&["-c", "exit 3"])
        .instances(3)];
    let (mut bus, mut events) = start_without_restarts(&pools);
    let pids: Vec<u32> = (0..3)
        .filter_map(|id| bus.worker_pid(WorkerId::new(id)))
        .collect();
    assert_eq!(pids.len(), 3);
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "all three exited",
        |seen| {
            (0..3).map(WorkerId::new).all(|id| {
                seen.contains(&Seen::Exited(id, ExitStatus::Code(3)))
                    && seen.contains(&Seen::Failed(id, RestartRefused::LimitReached))
            })
        },
    );
    for pid in pids {
        assert!(
            !process_exists(pid.into()),
            "the exited workers were collected"
        );
    }
    let error = bus
        .send(br#"{"jsonrpc":"2.0","id":1,"method":"m"}"#)
        .unwrap_err();
    assert_eq!(error, Error::NoWorker);
    drop(bus.stop(Duration::from_secs(1)).unwrap());
}

#[test]
fn stopping_under_load_delivers_or_accounts_for_every_response() {
    let (mut bus, mut events) = common::start_echo(2);
    common::drain(&mut events, &mut Vec::new());
    let sent = common::flood(&mut bus, &mut events, 500);
    let mut stopping = bus.begin_stop(Duration::from_secs(1)).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    let stopped = loop {
        stopping.poll_stop(Duration::from_millis(5)).unwrap();
        common::drain(&mut events, &mut seen);
        match stopping.try_finish() {
            Ok(stopped) => break stopped,
            Err(still) => stopping = still,
        }
        assert!(Instant::now() < deadline);
    };
    common::drain(&mut events, &mut seen);
    let mut ids: Vec<u64> = seen
        .iter()
        .filter_map(Seen::json)
        .filter(|m| m.get("result").is_some())
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    let delivered = ids.len() as u64;
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, delivered, "no response twice");
    assert!(ids.iter().all(|&id| id < u64::from(sent)));
    // Every line the kernel took from a worker is in the ring or counted lost.
    let stats = stopped.stats();
    assert_eq!(
        stats.messages_out,
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(_)))
            .count() as u64
            + stats.ring.lost.events,
        "{stats:?}"
    );
}

/// A line longer than `max_input_buffer` made the kernel close the worker's output, losing
/// everything the worker wrote afterwards. The bus drops that line alone and says so.
#[test]
fn a_worker_line_longer_than_the_kernel_takes_is_dropped_and_reported() {
    for (limit, long) in [(65_536usize, 102_400usize), (100, 200)] {
        let script = format!(
            "for i in $(seq 50); do echo short; done; head -c {long} /dev/zero | tr '\\0' x; \
             echo; echo after; exec cat"
        );
        let args: &'static [&'static str] =
            Box::leak(Box::new(["-c", Box::leak(script.into_boxed_str())]));
        let (producer, mut events) = ring();
        let limits = Limits {
            max_input_buffer: Some(limit as u32),
            ..Limits::default()
        };
        let pools = [Pool::new("long", "/bin/sh").args(args)];
        let mut bus = Bus::create(config(&pools, &limits), options(), producer)
            .unwrap()
            .start()
            .unwrap();
        let mut lines = Vec::new();
        let mut too_long = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        let mut asked = false;
        while !lines.iter().any(|line: &String| line.contains("\"id\":7")) {
            assert!(
                Instant::now() < deadline,
                "limit {limit}: saw {lines:?}, {too_long:?}"
            );
            bus.poll(Duration::from_millis(20)).unwrap();
            events.drain(|event| match event {
                stdiobus_embed::Event::Message { line, .. } => lines.push(line.to_string()),
                stdiobus_embed::Event::LineTooLong { worker, limit, id } => {
                    assert_eq!(id, None, "not JSON: no id");
                    too_long.push((worker, limit))
                }
                _ => {}
            });
            if !asked && lines.iter().any(|line| line == "after") {
                // The worker's output is still connected: what it writes now arrives too.
                bus.send(br#"{"jsonrpc":"2.0","id":7,"method":"m"}"#)
                    .unwrap();
                asked = true;
            }
        }
        assert_eq!(too_long, [(WorkerId::new(0), limit)], "limit {limit}");
        assert_eq!(
            lines.iter().filter(|line| *line == "short").count(),
            50,
            "limit {limit}"
        );
        assert!(lines.iter().all(|line| line.len() < limit), "limit {limit}");
    }
}

/// A response too long to deliver still names its request, so a host can fail it: the
/// bus reads the `id` at the line's start or end, where serializers put it, and frees the
/// request's slot in the request table.
#[test]
fn a_response_too_long_names_its_request() {
    let script = "read -r _; printf '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"'; \
                  head -c 300 /dev/zero | tr '\\0' x; printf '\"}\\n'; \
                  read -r _; printf '{\"result\":\"'; head -c 300 /dev/zero | tr '\\0' x; \
                  printf '\",\"jsonrpc\":\"2.0\",\"id\":\"two\"}\\n'; \
                  read -r _; printf '{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"short\"}\\n'; \
                  exec cat >/dev/null";
    let (producer, mut events) = ring();
    let limits = Limits {
        max_input_buffer: Some(100),
        ..Limits::default()
    };
    let args = ["-c", script];
    let pools = [Pool::new("long", "/bin/sh").args(&args)];
    let mut bus = Bus::create(config(&pools, &limits), options(), producer).unwrap();
    bus.set_request_table(Box::leak(Box::new([stdiobus_embed::RequestSlot::EMPTY; 4])));
    let mut bus = bus.start().unwrap();
    let mut too_long = Vec::new();
    let mut answered = false;
    for id in [r#"1"#, r#""two""#, r#"3"#] {
        bus.send(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#).as_bytes())
            .unwrap();
    }
    assert_eq!(bus.requests_in_flight(), 3);
    let deadline = Instant::now() + DEADLINE;
    while !answered {
        assert!(Instant::now() < deadline, "saw {too_long:?}");
        bus.poll(Duration::from_millis(20)).unwrap();
        events.drain(|event| match event {
            stdiobus_embed::Event::LineTooLong { worker, limit, id } => {
                too_long.push((worker, limit, id.map(|id| id.to_string())))
            }
            stdiobus_embed::Event::Message { line, .. } => {
                answered |= line.to_string().contains("short")
            }
            _ => {}
        });
    }
    assert_eq!(
        too_long,
        [
            (WorkerId::new(0), 100, Some("1".to_owned())),
            (WorkerId::new(0), 100, Some(r#""two""#.to_owned()))
        ]
    );
    assert_eq!(
        bus.requests_in_flight(),
        0,
        "every request answered or dropped"
    );
}
