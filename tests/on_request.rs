//! Workers ended on the host's request (`restart_worker`, `stop_worker`) and hung workers
//! found by a pool's liveness check, with real worker processes and the real kernel.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, WORKER, config, options, ring};
use serde_json::{Value, json};
use stdiobus_embed::{
    Bus, Consumer, Error, Event, ExitStatus, Limits, Pool, RequestSlot, Running, WorkerEvent,
    WorkerId,
};

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A response: the worker that wrote it, its id, the pid in it.
    Answer(Option<WorkerId>, Value, u64),
    Exited(WorkerId, ExitStatus),
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

fn start_pool(pool: Pool<'static>, limits: &Limits) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, mut events) = ring();
    let mut bus = Bus::create(config(&[pool], limits), options(), producer).unwrap();
    bus.set_request_table(Vec::leak(vec![RequestSlot::EMPTY; 16]));
    let bus = bus.start().unwrap();
    drain(&mut events, &mut Vec::new());
    (bus, events)
}

fn start(instances: u32) -> (Bus<'static, Running>, Consumer<'static>) {
    start_pool(
        Pool::new("echo", WORKER).instances(instances),
        &Limits::default(),
    )
}

const W0: WorkerId = WorkerId::new(0);
const W1: WorkerId = WorkerId::new(1);

fn request(id: u32, method: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method})
        .to_string()
        .into_bytes()
}

fn position(seen: &[Seen], wanted: &Seen) -> Option<usize> {
    seen.iter().position(|s| s == wanted)
}

fn exited(seen: &[Seen], id: WorkerId) -> Option<usize> {
    seen.iter()
        .position(|s| matches!(s, Seen::Exited(i, _) if *i == id))
}

/// `Exited`, then `restarting`, then `started` for `id`.
fn restarted(id: WorkerId) -> impl Fn(&[Seen]) -> bool {
    move |seen| {
        let restarting = position(seen, &Seen::Word(id, "restarting".into()));
        let started = position(seen, &Seen::Word(id, "started".into()));
        matches!((exited(seen, id), restarting, started), (Some(e), Some(r), Some(s)) if e < r && r < s)
    }
}

fn answers(seen: &[Seen]) -> Vec<(Option<WorkerId>, Value, u64)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Answer(w, id, pid) => Some((*w, id.clone(), *pid)),
            _ => None,
        })
        .collect()
}

fn process_gone(pid: u32) -> bool {
    !common::process_exists(i64::from(pid))
}

#[test]
fn a_restarted_worker_reports_its_requests_and_a_new_process_answers() {
    let (mut bus, mut events) = start(1);
    let mut seen = Vec::new();
    let old = bus.worker_pid(W0).unwrap();
    bus.send(&request(1, "hang")).unwrap();
    let started = Instant::now();
    bus.restart_worker(W0).unwrap();
    assert!(started.elapsed() < Duration::from_millis(100), "no wait");
    // Ending already: no second end, and no message goes to it.
    assert_eq!(bus.restart_worker(W0), Err(Error::WorkerGone { id: W0 }));
    assert_eq!(bus.send(&request(2, "m")), Err(Error::NoWorker));
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the restart",
        restarted(W0),
    );
    assert!(seen.contains(&Seen::Exited(W0, ExitStatus::Signal(libc::SIGTERM))));
    let unanswered = position(&seen, &Seen::Unanswered(W0, "1".into())).expect("reported");
    assert!(unanswered > exited(&seen, W0).unwrap());
    let new = bus.worker_pid(W0).expect("a new process");
    assert_ne!(new, old);
    assert!(process_gone(old));
    seen.clear();
    bus.send(&request(3, "m")).unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "an answer", |seen| {
        !answers(seen).is_empty()
    });
    assert_eq!(answers(&seen), [(Some(W0), json!(3), u64::from(new))]);
    assert_eq!(bus.requests_in_flight(), 0);
}

#[test]
fn unknown_and_gone_workers_are_refused() {
    let (mut bus, mut events) = start(1);
    let nine = WorkerId::new(9);
    assert_eq!(
        bus.restart_worker(nine),
        Err(Error::NoSuchWorker { id: nine })
    );
    assert_eq!(bus.stop_worker(nine), Err(Error::NoSuchWorker { id: nine }));
    bus.stop_worker(W0).unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the exit", |seen| {
        exited(seen, W0).is_some()
    });
    assert_eq!(bus.restart_worker(W0), Err(Error::WorkerGone { id: W0 }));
    assert_eq!(bus.stop_worker(W0), Err(Error::WorkerGone { id: W0 }));
}

#[test]
fn a_stopped_worker_is_skipped_at_once_and_not_restarted() {
    let (mut bus, mut events) = start(2);
    let mut seen = Vec::new();
    let stopped = bus.worker_pid(W0).unwrap();
    let other = bus.worker_pid(W1).unwrap();
    bus.stop_worker(W0).unwrap();
    // Before any poll: every message goes to the other worker.
    for id in 0..4 {
        bus.send(&request(id, "m")).unwrap();
    }
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "4 answers and the exit",
        |seen| answers(seen).len() == 4 && exited(seen, W0).is_some(),
    );
    for (worker, _, pid) in answers(&seen) {
        assert_eq!((worker, pid), (Some(W1), u64::from(other)));
    }
    let stopping = position(&seen, &Seen::Word(W0, "stopping".into())).expect("stopping");
    assert!(stopping < exited(&seen, W0).unwrap());
    // Time for a restart that must not come.
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        bus.poll(Duration::from_millis(20)).unwrap();
        drain(&mut events, &mut seen);
    }
    assert!(
        !seen.contains(&Seen::Word(W0, "restarting".into())),
        "{seen:?}"
    );
    assert!(
        !seen.contains(&Seen::Word(W0, "started".into())),
        "{seen:?}"
    );
    assert_eq!(bus.worker_pid(W0), None);
    assert!(process_gone(stopped));
    assert_eq!(
        bus.send_to_worker(W0, &request(9, "m")),
        Err(Error::WorkerGone { id: W0 })
    );
    // The last worker stopped: nothing serves the pool.
    bus.stop_worker(W1).unwrap();
    assert_eq!(bus.send(&request(10, "m")), Err(Error::NoWorker));
}

#[test]
fn a_worker_that_ignores_sigterm_is_killed_after_the_grace() {
    let script = r#"trap '' TERM; echo ready; while read line; do :; done"#;
    let args: &'static [&'static str] = Box::leak(Box::new(["-c", script]));
    let (mut bus, mut events) =
        start_pool(Pool::new("shell", "/bin/sh").args(args), &Limits::default());
    let mut seen = Vec::new();
    let grace = Duration::from_millis(300);
    bus.set_stop_grace(grace);
    // Its trap is set once it said so.
    let ready = || Instant::now() + DEADLINE;
    let until = ready();
    loop {
        bus.poll(Duration::from_millis(20)).unwrap();
        let mut said = false;
        events.drain(|event| said |= matches!(event, Event::Message { .. }));
        if said {
            break;
        }
        assert!(Instant::now() < until, "the script's first line");
    }
    let pid = bus.worker_pid(W0).unwrap();
    let asked = Instant::now();
    bus.stop_worker(W0).unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "the kill", |seen| {
        exited(seen, W0).is_some()
    });
    assert!(asked.elapsed() >= grace, "killed before the grace");
    assert!(
        seen.contains(&Seen::Exited(W0, ExitStatus::Signal(libc::SIGKILL))),
        "{seen:?}"
    );
    assert!(process_gone(pid));
}

/// Waits on the bus's descriptor alone, as an event loop would, and polls without a timeout
/// each time it is readable, until `done`.
fn sleep_on_poll_fd(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    seen: &mut Vec<Seen>,
    what: &str,
    done: impl Fn(&[Seen]) -> bool,
) {
    let fd = bus.poll_fd().expect("a descriptor");
    let deadline = Instant::now() + DEADLINE;
    while !done(seen) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; saw {seen:#?}"
        );
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pollfd, 1, 1000) };
        bus.poll(Duration::ZERO).unwrap();
        drain(events, seen);
    }
}

#[test]
fn a_sigstopped_worker_with_a_request_is_restarted_by_the_liveness_check() {
    let (mut bus, mut events) = start(1);
    let mut seen = Vec::new();
    let limit = Duration::from_millis(300);
    bus.set_liveness("echo", Some(limit)).unwrap();
    bus.set_stop_grace(Duration::from_millis(200));
    let old = bus.worker_pid(W0).unwrap();
    // Answers while it runs: no restart.
    bus.send(&request(1, "m")).unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "an answer", |seen| {
        !answers(seen).is_empty()
    });
    common::signal_worker(&bus, W0, libc::SIGSTOP);
    bus.send(&request(2, "m")).unwrap();
    let sent = Instant::now();
    // Nothing but the bus's descriptor wakes this loop: the liveness deadline must.
    sleep_on_poll_fd(
        &mut bus,
        &mut events,
        &mut seen,
        "the restart",
        restarted(W0),
    );
    assert!(sent.elapsed() >= limit, "restarted before the limit");
    let unresponsive = position(&seen, &Seen::Word(W0, "unresponsive".into())).expect("said");
    assert!(unresponsive < exited(&seen, W0).unwrap());
    assert!(seen.contains(&Seen::Unanswered(W0, "2".into())), "{seen:?}");
    let new = bus.worker_pid(W0).expect("a new process");
    assert_ne!(new, old);
    assert!(process_gone(old));
    // The new process is watched too, and answers.
    seen.clear();
    bus.send(&request(3, "m")).unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "an answer", |seen| {
        !answers(seen).is_empty()
    });
    assert_eq!(answers(&seen), [(Some(W0), json!(3), u64::from(new))]);
}

#[test]
fn a_slow_worker_that_answers_is_left_alone_and_an_idle_one_wakes_nobody() {
    let (mut bus, mut events) = start(1);
    let mut seen = Vec::new();
    bus.set_liveness("echo", Some(Duration::from_millis(200)))
        .unwrap();
    // Quiet for a while, but with nothing in flight.
    let fd = bus.poll_fd().unwrap();
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pollfd, 1, 500) };
    assert_eq!(ready, 0, "an idle bus woke its loop");
    // Busy and writing: each answer starts the silence over.
    for id in 0..3 {
        bus.send(&request(id, "m")).unwrap();
        let until = Instant::now() + Duration::from_millis(150);
        while Instant::now() < until {
            bus.poll(Duration::from_millis(10)).unwrap();
            drain(&mut events, &mut seen);
        }
    }
    let params = json!({"jsonrpc": "2.0", "id": 9, "method": "sleep", "params": {"ms": 100}});
    bus.send(params.to_string().as_bytes()).unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "4 answers", |seen| {
        answers(seen).len() == 4
    });
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Word(_, w) if w == "unresponsive")),
        "{seen:?}"
    );
    assert!(exited(&seen, W0).is_none());
}

#[test]
fn liveness_needs_a_request_table_and_a_known_pool() {
    let (producer, _events) = ring();
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let limit = Some(Duration::from_secs(1));
    assert_eq!(bus.set_liveness("echo", limit), Err(Error::NoRequestTable));
    assert_eq!(bus.set_liveness("echo", None), Ok(()));
    let (mut bus, _events) = start(1);
    assert_eq!(bus.set_liveness("nope", limit), Err(Error::UnknownPool));
    assert_eq!(bus.set_liveness("echo", limit), Ok(()));
}

/// The kernel forks the new process, so its `max_restarts` applies to a restart asked for
/// too: with none allowed, the worker ends and stays ended.
#[test]
fn a_restart_asked_for_counts_toward_the_kernels_limit() {
    let limits = Limits {
        max_restarts: Some(0),
        ..Limits::new()
    };
    let (mut bus, mut events) = start_pool(Pool::new("echo", WORKER), &limits);
    let mut seen = Vec::new();
    bus.restart_worker(W0).unwrap();
    let failed = Seen::Word(W0, "failed: the restart limit was reached".into());
    poll_until(&mut bus, &mut events, &mut seen, "the refusal", |seen| {
        seen.contains(&failed)
    });
    assert!(
        !seen.contains(&Seen::Word(W0, "started".into())),
        "{seen:?}"
    );
    assert_eq!(bus.worker_pid(W0), None);
    assert_eq!(bus.send(&request(1, "m")), Err(Error::NoWorker));
}
