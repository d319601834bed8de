//! Workers that die are replaced within the configuration's restart limit, the host is
//! told of every step, and no request in flight to a dying worker is lost silently.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{DEADLINE, WORKER, config, options, ring};
use serde_json::{Value, json};
use stdiobus_embed::{
    Bus, Consumer, Error, Event, ExitStatus, Limits, Pool, RequestSlot, RestartRefused, Running,
    WorkerEvent, WorkerId,
};

/// An owned view of the events these tests look at.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A response: the worker the bus says wrote it, its id, the pid in it.
    Answer(Option<WorkerId>, Value, u64),
    Exited(WorkerId, ExitStatus),
    /// The bus will not restart it, and why.
    Failed(WorkerId, RestartRefused),
    Word(WorkerId, String),
    Unanswered(WorkerId, String),
}

fn drain(events: &mut Consumer<'_>, into: &mut Vec<Seen>) {
    events.drain(|event| match event {
        Event::Message { worker, line } => {
            if let Ok(json) = serde_json::from_slice::<Value>(line.as_bytes())
                && json.get("result").is_some()
            {
                let pid = json["result"]["pid"].as_u64().unwrap_or(0);
                into.push(Seen::Answer(worker, json["id"].clone(), pid));
            }
        }
        Event::Worker {
            id,
            event: WorkerEvent::Exited(status),
        } => into.push(Seen::Exited(id, status)),
        Event::Worker {
            id,
            event: WorkerEvent::Failed(reason),
        } => into.push(Seen::Failed(id, reason)),
        Event::Worker { id, event } => into.push(Seen::Word(id, event.to_string())),
        Event::Unanswered { worker, id } => into.push(Seen::Unanswered(worker, id.to_string())),
        _ => {}
    });
}

fn poll_until(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    seen: &mut Vec<Seen>,
    what: &str,
    done: impl Fn(&[Seen]) -> bool,
) {
    common::poll_gathering(bus, seen, |seen| drain(events, seen), what, done);
}

fn start(
    instances: u32,
    limits: &Limits,
    requests: usize,
) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, events) = ring();
    let pools = [Pool::new("echo", WORKER).instances(instances)];
    let mut bus = Bus::create(config(&pools, limits), options(), producer).unwrap();
    bus.set_request_table(Vec::leak(vec![RequestSlot::EMPTY; requests]));
    let bus = bus.start().unwrap();
    let mut events = events;
    // The first `started` of each worker.
    drain(&mut events, &mut Vec::new());
    (bus, events)
}

/// The first and the second worker of a pool.
const W0: WorkerId = WorkerId::new(0);
const W1: WorkerId = WorkerId::new(1);

fn kill(pid: u32) {
    // SAFETY: `pid` is a live worker of the test's bus, unreaped, so not reused.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

fn restarted(id: WorkerId) -> impl Fn(&[Seen]) -> bool {
    move |seen| {
        let at = |wanted: &Seen| seen.iter().position(|s| s == wanted);
        let exited = seen
            .iter()
            .position(|s| matches!(s, Seen::Exited(i, _) if *i == id));
        let restarting = at(&Seen::Word(id, "restarting".into()));
        let started = at(&Seen::Word(id, "started".into()));
        matches!((exited, restarting, started), (Some(e), Some(r), Some(s)) if e < r && r < s)
    }
}

#[test]
fn a_killed_worker_comes_back_and_answers() {
    let (mut bus, mut events) = start(2, &Limits::default(), 16);
    let mut seen = Vec::new();
    let old = bus.worker_pid(W0).unwrap();
    kill(old);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "worker 0's restart",
        restarted(W0),
    );
    assert!(seen.contains(&Seen::Exited(W0, ExitStatus::Signal(libc::SIGKILL))));
    let new = bus.worker_pid(W0).expect("a new process");
    assert_ne!(new, old);
    for id in 0..4 {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "m"}).to_string();
        bus.send_to_worker(W0, request.as_bytes()).unwrap();
    }
    poll_until(&mut bus, &mut events, &mut seen, "4 answers", |seen| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Answer(..)))
            .count()
            == 4
    });
    for s in &seen {
        if let Seen::Answer(worker, _, pid) = s {
            assert_eq!((*worker, *pid), (Some(W0), u64::from(new)));
        }
    }
    assert_eq!(bus.requests_in_flight(), 0);
}

#[test]
fn the_restart_limit_ends_the_restarts() {
    let limits = Limits {
        max_restarts: Some(2),
        restart_window_sec: Some(60),
        ..Limits::new()
    };
    let (mut bus, mut events) = start(1, &limits, 16);
    let mut seen = Vec::new();
    for round in 0..2 {
        seen.clear();
        kill(bus.worker_pid(W0).unwrap());
        poll_until(
            &mut bus,
            &mut events,
            &mut seen,
            &format!("restart {round}"),
            restarted(W0),
        );
    }
    seen.clear();
    kill(bus.worker_pid(W0).unwrap());
    let failed = Seen::Failed(W0, RestartRefused::LimitReached);
    poll_until(&mut bus, &mut events, &mut seen, "the give-up", |seen| {
        seen.contains(&failed)
    });
    assert!(!seen.contains(&Seen::Word(W0, "started".into())));
    assert_eq!(bus.worker_pid(W0), None);
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "m"}).to_string();
    assert_eq!(bus.send(request.as_bytes()), Err(Error::NoWorker));
}

/// A replacement that cannot execute the worker's command ends the restarts at once:
/// another would fail alike.
#[test]
fn a_restart_whose_command_is_gone_fails_and_is_not_retried() {
    let dir = std::env::temp_dir().join(format!("stdiobus-vanishing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("worker.sh");
    // Its first run deletes it, then crashes.
    std::fs::write(&script, "#!/bin/sh\nrm -f \"$0\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let command: &'static str = Box::leak(script.to_str().unwrap().into());
    let (producer, mut events) = ring();
    let pools = [Pool::new("vanishing", command)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .expect("the first run starts");
    let mut seen = Vec::new();
    let failed = Seen::Failed(W0, RestartRefused::ExecFailed);
    poll_until(&mut bus, &mut events, &mut seen, "the give-up", |seen| {
        seen.contains(&failed)
    });
    let crash = seen
        .iter()
        .position(|s| *s == Seen::Exited(W0, ExitStatus::Code(3)));
    let after_crash = &seen[crash.expect("the first run's exit") + 1..];
    assert!(
        !after_crash.contains(&Seen::Word(W0, "started".into())),
        "{seen:?}"
    );
    // The process that could not exec is reaped, and nothing restarts it.
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the second exit",
        |seen| {
            seen.iter()
                .filter(|s| matches!(s, Seen::Exited(W0, _)))
                .count()
                == 2
        },
    );
    bus.poll(Duration::from_millis(100)).unwrap();
    drain(&mut events, &mut seen);
    assert_eq!(
        seen.iter()
            .filter(|s| matches!(s, Seen::Exited(W0, _)))
            .count(),
        2,
        "{seen:?}"
    );
    assert_eq!(bus.worker_pid(W0), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn requests_in_flight_to_a_dying_worker_are_reported_by_id() {
    let (mut bus, mut events) = start(2, &Limits::default(), 16);
    let mut seen = Vec::new();
    let slow = |id: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "sleep", "params": {"ms": 60_000}}).to_string()
    };
    // Two requests in one send: both are tracked.
    let both = format!("{}\n{}", slow("slow-1"), slow("slow-2"));
    bus.send_to_worker(W1, both.as_bytes()).unwrap();
    assert_eq!(
        bus.send_to_worker(W0, slow("slow-1").as_bytes()),
        Err(Error::RequestIdInFlight)
    );
    bus.send_to_worker(W0, br#"{"jsonrpc":"2.0","id":7,"method":"m"}"#)
        .unwrap();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "worker 0's answer",
        |seen| seen.iter().any(|s| matches!(s, Seen::Answer(Some(W0), ..))),
    );
    assert_eq!(bus.requests_in_flight(), 2);
    kill(bus.worker_pid(W1).unwrap());
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "worker 1's restart",
        restarted(W1),
    );
    let lost: Vec<&Seen> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Unanswered(..)))
        .collect();
    assert_eq!(
        lost,
        [
            &Seen::Unanswered(W1, r#""slow-1""#.into()),
            &Seen::Unanswered(W1, r#""slow-2""#.into())
        ]
    );
    assert_eq!(bus.requests_in_flight(), 0);
}

/// Whether `fd` becomes readable within `timeout`.
fn readable(fd: libc::c_int, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) == 1 }
}

#[test]
fn a_restart_after_a_backoff_wakes_the_event_loop_and_then_it_sleeps() {
    let (mut bus, mut events) = start(1, &Limits::default(), 16);
    let fd = bus.poll_fd().expect("the kernel's epoll descriptor");
    let mut seen = Vec::new();
    kill(bus.worker_pid(W0).unwrap());
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the first restart",
        restarted(W0),
    );
    // A second quick end waits a backoff before the restart: only the bus's timer can wake
    // a loop that waits on the descriptor alone.
    seen.clear();
    kill(bus.worker_pid(W0).unwrap());
    let deadline = Instant::now() + DEADLINE;
    while !restarted(W0)(&seen) {
        assert!(Instant::now() < deadline, "no restart; saw {seen:#?}");
        if readable(fd, DEADLINE) {
            bus.poll(Duration::ZERO).unwrap();
        }
        drain(&mut events, &mut seen);
    }
    // Idle again: nothing to do, so nothing wakes the loop.
    while readable(fd, Duration::ZERO) {
        bus.poll(Duration::ZERO).unwrap();
        drain(&mut events, &mut seen);
    }
    assert!(
        !readable(fd, Duration::from_millis(300)),
        "an idle bus woke its loop"
    );
}

/// Kill workers at random for 10 s while requests flow: the host lives, every request is
/// answered or reported unanswered, and every killed worker is back (started again) within
/// a second of the kill.
#[test]
fn killing_workers_at_random_under_load_loses_nothing() {
    let limits = Limits {
        max_restarts: Some(1000),
        ..Limits::new()
    };
    let (mut bus, mut events) = start(3, &limits, 256);
    let mut seen = Vec::new();
    let mut sent = HashSet::new();
    let mut next_id = 0u64;
    let mut killed_at: HashMap<WorkerId, Instant> = HashMap::new();
    let mut back_within = Duration::ZERO;
    let mut kills = 0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let end = Instant::now() + Duration::from_secs(10);
    let mut next_kill = Instant::now() + Duration::from_millis(200);
    while Instant::now() < end {
        while bus.requests_in_flight() < 64 {
            let request = json!({"jsonrpc": "2.0", "id": next_id, "method": "m"}).to_string();
            match bus.send(request.as_bytes()) {
                Ok(()) => {
                    sent.insert(next_id);
                    next_id += 1;
                }
                Err(error) if error.is_retryable() || error == Error::NoWorker => break,
                Err(error) => panic!("send: {error}"),
            }
        }
        if Instant::now() >= next_kill {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let id = WorkerId::new((rng % 3) as u32);
            if let Some(pid) = bus.worker_pid(id)
                && !killed_at.contains_key(&id)
            {
                kill(pid);
                killed_at.insert(id, Instant::now());
                kills += 1;
            }
            next_kill = Instant::now() + Duration::from_millis(150 + rng % 200);
        }
        bus.poll(Duration::from_millis(5)).unwrap();
        let before = seen.len();
        drain(&mut events, &mut seen);
        for s in &seen[before..] {
            match s {
                Seen::Word(id, word) if word == "started" => {
                    let at = killed_at.remove(id).expect("a start follows a kill");
                    back_within = back_within.max(at.elapsed());
                }
                Seen::Failed(id, reason) => panic!("worker {id} failed: {reason}"),
                _ => {}
            }
        }
    }
    // Let everything in flight come back or be reported, and the last killed come back.
    let deadline = Instant::now() + DEADLINE;
    while bus.requests_in_flight() > 0 || !killed_at.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} still in flight",
            bus.requests_in_flight()
        );
        bus.poll(Duration::from_millis(20)).unwrap();
        let before = seen.len();
        drain(&mut events, &mut seen);
        for s in &seen[before..] {
            if let Seen::Word(id, word) = s
                && word == "started"
                && let Some(at) = killed_at.remove(id)
            {
                back_within = back_within.max(at.elapsed());
            }
        }
    }
    let mut settled = HashMap::new();
    for s in &seen {
        let id = match s {
            Seen::Answer(_, id, _) => id.as_u64(),
            Seen::Unanswered(_, id) => id.parse().ok(),
            _ => continue,
        };
        *settled.entry(id.expect("a numeric id")).or_insert(0) += 1;
    }
    let unanswered = seen
        .iter()
        .filter(|s| matches!(s, Seen::Unanswered(..)))
        .count();
    for id in &sent {
        assert_eq!(
            settled.get(id),
            Some(&1),
            "request {id} settled {:?} times",
            settled.get(id)
        );
    }
    assert_eq!(
        settled.len(),
        sent.len(),
        "responses to requests never sent"
    );
    assert!(kills >= 20, "only {kills} kills");
    assert!(
        back_within <= Duration::from_secs(1),
        "a worker took {back_within:?} to come back"
    );
    eprintln!(
        "{kills} kills, {} requests, {unanswered} reported unanswered, slowest return {back_within:?}",
        sent.len()
    );
}

#[test]
fn a_session_follows_its_worker_through_a_restart_and_the_host_is_told() {
    let (producer, mut events) = ring();
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    bus.set_session_table(Vec::leak(vec![stdiobus_embed::SessionSlot::EMPTY; 4]));
    let mut bus = bus.start().unwrap();
    drain(&mut events, &mut Vec::new());
    let mut moved = Vec::new();
    let mut answers = Vec::new();
    let message = |id: u32| {
        json!({"jsonrpc": "2.0", "id": id, "method": "m", "sessionId": "s", "pool": "typo"})
            .to_string()
    };
    // One pool: its `pool` member is not read, whatever it says.
    bus.send(message(0).as_bytes()).unwrap();
    let first = bus.worker_pid(W0).unwrap();
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the first answer",
        |seen| seen.iter().any(|s| matches!(s, Seen::Answer(..))),
    );
    kill(first);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the restart",
        restarted(W0),
    );
    bus.send(message(1).as_bytes()).unwrap();
    let deadline = Instant::now() + DEADLINE;
    while answers.is_empty() {
        assert!(Instant::now() < deadline, "no answer after the restart");
        bus.poll(Duration::from_millis(20)).unwrap();
        events.drain(|event| match event {
            Event::SessionMoved { session, from, to } => {
                moved.push((session.to_string(), from, to))
            }
            Event::Message { line, .. } => answers.push(line.to_string()),
            _ => {}
        });
    }
    assert_eq!(moved, [("s".to_owned(), W0, W0)]);
    assert!(answers[0].contains(&bus.worker_pid(W0).unwrap().to_string()));
}
