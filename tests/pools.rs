//! Pools whose every worker serves: requests spread round-robin, sessions stick to a worker,
//! a message reaches the pool it names and no other, and each line says who wrote it.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{DEADLINE, WORKER, config, options, ring};
use serde_json::{Value, json};
use stdiobus_embed::{
    Bus, Consumer, Error, Event, Limits, Pool, Running, SessionSlot, WorkerEvent, WorkerId,
};

/// What the tests read back: responses with the worker the bus says wrote them, sessions
/// that moved, and worker exits.
#[derive(Default)]
struct Seen {
    responses: Vec<(Option<WorkerId>, Value)>,
    moved: Vec<(String, WorkerId, WorkerId)>,
    exited: Vec<WorkerId>,
}

impl Seen {
    fn drain(&mut self, events: &mut Consumer<'_>) {
        events.drain(|event| match event {
            Event::Message { worker, line } => {
                if let Ok(json) = serde_json::from_slice::<Value>(line.as_bytes())
                    && json.get("result").is_some()
                {
                    self.responses.push((worker, json));
                }
            }
            Event::SessionMoved { session, from, to } => {
                self.moved.push((session.to_string(), from, to));
            }
            Event::Worker {
                id,
                event: WorkerEvent::Exited(_),
            } => self.exited.push(id),
            _ => {}
        });
    }

    /// Polls until `count` responses are in.
    fn wait_for(&mut self, bus: &mut Bus<'_, Running>, events: &mut Consumer<'_>, count: usize) {
        let deadline = Instant::now() + DEADLINE;
        while self.responses.len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} responses",
                self.responses.len()
            );
            bus.poll(Duration::from_millis(20)).expect("poll");
            self.drain(events);
        }
    }
}

fn echo_pool<'a>(id: &'a str, name: &'a [&'a str], instances: u32) -> Pool<'a> {
    Pool::new(id, WORKER).args(name).instances(instances)
}

fn start(
    pools: &[Pool<'_>],
    sessions: Option<usize>,
) -> (Bus<'static, Running>, Consumer<'static>) {
    start_with(pools, sessions, &Limits::default())
}

/// Limits under which a worker that ends is not restarted.
const NO_RESTARTS: Limits = Limits {
    max_restarts: Some(0),
    ..Limits::new()
};

fn start_with(
    pools: &[Pool<'_>],
    sessions: Option<usize>,
    limits: &Limits,
) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, events) = ring();
    let mut bus = Bus::create(config(pools, limits), options(), producer).unwrap();
    if let Some(slots) = sessions {
        bus.set_session_table(Vec::leak(vec![SessionSlot::EMPTY; slots]));
    }
    (bus.start().unwrap(), events)
}

/// The pid of each worker, by id.
fn pids(bus: &Bus<'_, Running>) -> Vec<u32> {
    (0..bus.worker_count() as u32)
        .map(|id| bus.worker_pid(WorkerId::new(id)).expect("a live worker"))
        .collect()
}

/// Every response's worker, as the bus attributed it, checked against the pid the worker
/// put in it (`pids` from [`pids`]).
fn attributed(pids: &[u32], seen: &Seen) -> Vec<WorkerId> {
    seen.responses
        .iter()
        .map(|(worker, json)| {
            let pid = json["result"]["pid"].as_u64().expect("a pid") as u32;
            let by_pid = pids.iter().position(|&p| p == pid).expect("a worker's pid");
            let by_pid = WorkerId::new(by_pid as u32);
            assert_eq!(*worker, Some(by_pid), "misattributed: {json}");
            by_pid
        })
        .collect()
}

fn request(id: usize) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "m"}).to_string()
}

#[test]
fn requests_spread_evenly_over_the_workers_of_a_pool() {
    let (mut bus, mut events) = start(&[echo_pool("echo", &[], 3)], None);
    let pids = pids(&bus);
    let mut seen = Seen::default();
    for id in 0..300 {
        bus.send(request(id).as_bytes()).unwrap();
        if id % 30 == 29 {
            seen.wait_for(&mut bus, &mut events, id + 1);
        }
    }
    seen.wait_for(&mut bus, &mut events, 300);
    let mut per_worker = HashMap::new();
    for worker in attributed(&pids, &seen) {
        *per_worker.entry(worker).or_insert(0) += 1;
    }
    // Round-robin: exactly a third each (the goal is 90 to 110).
    let third = |id| (WorkerId::new(id), 100);
    assert_eq!(per_worker, HashMap::from([third(0), third(1), third(2)]));
}

#[test]
fn every_session_is_answered_by_one_worker_throughout() {
    let (mut bus, mut events) = start(&[echo_pool("echo", &[], 3)], Some(64));
    let pids = pids(&bus);
    let mut seen = Seen::default();
    let mut sent = 0;
    for round in 0..10 {
        for session in 0..50 {
            let message = json!({"jsonrpc": "2.0", "id": sent, "method": "m",
                "sessionId": format!("session-{session}"), "params": {"round": round}});
            bus.send(message.to_string().as_bytes()).unwrap();
            sent += 1;
        }
        seen.wait_for(&mut bus, &mut events, sent);
    }
    assert_eq!(bus.session_table_len(), 50);
    let workers = attributed(&pids, &seen);
    let mut owner: HashMap<String, HashSet<WorkerId>> = HashMap::new();
    for ((_, json), worker) in seen.responses.iter().zip(workers) {
        let session = json["sessionId"]
            .as_str()
            .expect("the session echoed")
            .to_owned();
        owner.entry(session).or_default().insert(worker);
    }
    assert_eq!(owner.len(), 50);
    for (session, workers) in &owner {
        assert_eq!(workers.len(), 1, "{session} was answered by {workers:?}");
    }
    let used: HashSet<WorkerId> = owner.values().flatten().copied().collect();
    assert_eq!(used.len(), 3, "new sessions spread over the workers too");
    assert!(seen.moved.is_empty());
}

#[test]
fn a_message_reaches_the_pool_it_names_and_no_other() {
    let pools = [
        echo_pool("a", &["--name", "a"], 2),
        echo_pool("b", &["--name", "b"], 1),
    ];
    let (mut bus, mut events) = start(&pools, None);
    let pids = pids(&bus);
    let mut seen = Seen::default();
    for id in 0..20 {
        let pool = if id % 2 == 0 { "a" } else { "b" };
        let message = json!({"jsonrpc": "2.0", "id": id, "method": "m", "pool": pool});
        bus.send(message.to_string().as_bytes()).unwrap();
    }
    for id in 20..30 {
        bus.send_to_pool("b", request(id).as_bytes()).unwrap();
    }
    seen.wait_for(&mut bus, &mut events, 30);
    let workers = attributed(&pids, &seen);
    for ((_, json), worker) in seen.responses.iter().zip(workers) {
        let id = json["id"].as_u64().unwrap();
        let pool = if id < 20 && id % 2 == 0 { "a" } else { "b" };
        assert_eq!(json["result"]["worker"], pool, "{json}");
        assert_eq!(
            worker < WorkerId::new(2),
            pool == "a",
            "worker {worker} is not in pool {pool}"
        );
    }

    let unnamed = request(99);
    assert_eq!(bus.send(unnamed.as_bytes()), Err(Error::PoolNotNamed));
    let unknown = json!({"jsonrpc": "2.0", "id": 99, "method": "m", "pool": "c"}).to_string();
    assert_eq!(bus.send(unknown.as_bytes()), Err(Error::UnknownPool));
    assert_eq!(
        bus.send_to_pool("c", unnamed.as_bytes()),
        Err(Error::UnknownPool)
    );
    let not_a_name = json!({"jsonrpc": "2.0", "id": 99, "method": "m", "pool": 1}).to_string();
    assert_eq!(bus.send(not_a_name.as_bytes()), Err(Error::PoolNotNamed));
    bus.poll(Duration::from_millis(50)).unwrap();
    seen.drain(&mut events);
    assert_eq!(seen.responses.len(), 30, "a refused message went somewhere");
}

#[test]
fn a_worker_can_be_addressed_and_a_dead_one_is_skipped() {
    let (mut bus, mut events) = start_with(&[echo_pool("echo", &[], 3)], None, &NO_RESTARTS);
    let pids = pids(&bus);
    let mut seen = Seen::default();
    let worker = WorkerId::new;
    bus.send_to_worker(worker(2), request(0).as_bytes())
        .unwrap();
    seen.wait_for(&mut bus, &mut events, 1);
    assert_eq!(attributed(&pids, &seen), [worker(2)]);
    assert_eq!(
        bus.send_to_worker(worker(3), request(1).as_bytes()),
        Err(Error::NoSuchWorker { id: worker(3) })
    );
    // Far beyond any worker table (the kernel's ids are C ints: no id is negative).
    assert_eq!(
        bus.send_to_worker(worker(u32::MAX), request(1).as_bytes()),
        Err(Error::NoSuchWorker {
            id: worker(u32::MAX)
        })
    );

    common::signal_worker(&bus, worker(1), libc::SIGKILL);
    common::wait_for_exit(&mut bus, &mut events, worker(1));
    assert_eq!(
        bus.send_to_worker(worker(1), request(1).as_bytes()),
        Err(Error::WorkerGone { id: worker(1) })
    );
    for id in 1..21 {
        bus.send(request(id).as_bytes()).unwrap();
    }
    seen.wait_for(&mut bus, &mut events, 21);
    let workers = attributed(&pids, &seen);
    assert!(!workers.contains(&worker(1)), "{workers:?}");
    assert!(workers[1..].contains(&worker(0)) && workers[1..].contains(&worker(2)));
}

#[test]
fn a_session_whose_worker_died_moves_and_the_host_is_told() {
    let (mut bus, mut events) = start_with(&[echo_pool("echo", &[], 2)], Some(8), &NO_RESTARTS);
    let pids = pids(&bus);
    let mut seen = Seen::default();
    let message = |id: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "m", "sessionId": "s-1"}).to_string()
    };
    bus.send(message(0).as_bytes()).unwrap();
    seen.wait_for(&mut bus, &mut events, 1);
    let first = attributed(&pids, &seen)[0];

    common::signal_worker(&bus, first, libc::SIGKILL);
    let deadline = Instant::now() + DEADLINE;
    while !seen.exited.contains(&first) {
        assert!(
            Instant::now() < deadline,
            "worker {first} was not reported gone"
        );
        bus.poll(Duration::from_millis(20)).unwrap();
        seen.drain(&mut events);
    }
    bus.send(message(1).as_bytes()).unwrap();
    bus.send(message(2).as_bytes()).unwrap();
    seen.wait_for(&mut bus, &mut events, 3);
    let workers = attributed(&pids, &seen);
    let second = WorkerId::new(1 - first.get());
    assert_eq!(workers[1..], [second, second]);
    assert_eq!(seen.moved, [("s-1".to_owned(), first, second)]);
}

#[test]
fn a_full_session_table_refuses_new_sessions_until_one_ends() {
    let (mut bus, _events) = start(&[echo_pool("echo", &[], 2)], Some(2));
    let message = |session: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "m", "sessionId": session}).to_string()
    };
    bus.send(message("one").as_bytes()).unwrap();
    bus.send(message("two").as_bytes()).unwrap();
    bus.send(message("one").as_bytes()).unwrap();
    assert_eq!(
        bus.send(message("three").as_bytes()),
        Err(Error::SessionTableFull { capacity: 2 })
    );
    assert_eq!(bus.end_session(None, "one"), Ok(true));
    assert_eq!(bus.end_session(None, "one"), Ok(false));
    bus.send(message("three").as_bytes()).unwrap();
    assert_eq!(bus.session_table_len(), 2);
    let long = "x".repeat(65);
    assert_eq!(
        bus.send(message(&long).as_bytes()),
        Err(Error::SessionIdTooLong { len: 65, max: 64 })
    );
    assert_eq!(
        bus.end_session(Some("nope"), "two"),
        Err(Error::UnknownPool)
    );
}
