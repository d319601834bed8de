//! The JSON-RPC writer, scanner and pending-request table against the real kernel and the
//! crate's worker processes.

mod common;

use std::time::{Duration, Instant};

use stdiobus_embed::jsonrpc::{Completion, Fed, Kind, Outcome, Pending, RegisterError, Request};
use stdiobus_embed::{Bus, Consumer, Running};

/// A completion, owned.
#[derive(Debug, Clone, PartialEq)]
enum Done {
    Result(serde_json::Value),
    Error(Option<i64>, String),
    TimedOut,
    Lost,
    MaybeLost,
}

fn own(completion: &Completion<'_>) -> (String, Done) {
    let done = match completion.outcome {
        Outcome::Result(result) => Done::Result(serde_json::from_str(result).expect("JSON result")),
        Outcome::Error(error) => Done::Error(
            error.code,
            error.message.map(|m| m.to_string()).unwrap_or_default(),
        ),
        Outcome::TimedOut => Done::TimedOut,
        Outcome::Lost => Done::Lost,
        Outcome::MaybeLost => Done::MaybeLost,
    };
    (completion.id.to_string(), done)
}

/// Writes `request` with the crate's writer and sends it.
fn send(bus: &mut Bus<'_, Running>, request: &Request<'_>) {
    let mut buf = [0u8; 512];
    let line = request.write(&mut buf).expect("write");
    bus.send(line).expect("send");
}

/// Runs the loop a bare host would: poll no longer than the next deadline, feed every
/// event to the table, expire; until the table is empty. Returns the completions and the
/// messages that completed nothing.
fn run<const N: usize>(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    table: &mut Pending<N>,
    clock: Instant,
) -> (Vec<(String, Done)>, Vec<Vec<u8>>) {
    let give_up = Instant::now() + common::DEADLINE;
    let (mut done, mut unmatched) = (Vec::new(), Vec::new());
    while !table.is_empty() {
        assert!(
            Instant::now() < give_up,
            "still pending; done so far: {done:?}"
        );
        let now = clock.elapsed();
        let wait = table
            .next_deadline()
            .map_or(Duration::from_millis(50), |d| d.saturating_sub(now))
            .min(Duration::from_millis(50));
        bus.poll(wait).expect("poll");
        while let Some(event) = events.read() {
            let fed = table.event(event.event(), |c| done.push(own(&c)));
            if let Fed::Unmatched(_) | Fed::Invalid(_) = fed
                && let stdiobus_embed::Event::Message { line, .. } = event.event()
            {
                unmatched.push(line.as_bytes().to_vec());
            }
        }
        table.expire(clock.elapsed(), |c| done.push(own(&c)));
    }
    (done, unmatched)
}

#[test]
fn requests_complete_with_results_errors_and_timeouts() {
    let (mut bus, mut events) = common::start_echo(2);
    let clock = Instant::now();
    let mut table = Pending::<8>::new();
    let long = clock.elapsed() + common::DEADLINE;

    let requests = [
        Request::new(1, "echo").params(r#"{"n": 1}"#),
        Request::new("two \"quoted\"", "tools/list")
            .params("[]")
            .session_id("s-1"),
        Request::new(3, "error"),
    ];
    for request in &requests {
        table.register(request.id().unwrap(), long).unwrap();
        send(&mut bus, request);
    }
    // A sleep far longer than its deadline.
    let sleepy = Request::new(4, "sleep").params(r#"{"ms":1500}"#);
    table
        .register(4, clock.elapsed() + Duration::from_millis(200))
        .unwrap();
    send(&mut bus, &sleepy);
    // A notification: no response, nothing to register.
    send(&mut bus, &Request::notification("note").params("{}"));
    assert_eq!(table.register(1, long), Err(RegisterError::Duplicate));

    let started = Instant::now();
    let (mut done, _) = run(&mut bus, &mut events, &mut table, clock);
    done.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(done.len(), 4, "{done:?}");
    let by_id = |id: &str| done.iter().find(|d| d.0 == id).map(|d| d.1.clone());

    let Some(Done::Result(one)) = by_id("1") else {
        panic!("{done:?}")
    };
    assert_eq!(one["method"], "echo");
    assert_eq!(one["params"], serde_json::json!({"n": 1}));
    let Some(Done::Result(two)) = by_id(r#""two "quoted"""#) else {
        panic!("{done:?}")
    };
    assert_eq!(two["method"], "tools/list");
    assert_eq!(two["params"], serde_json::json!([]));
    assert_eq!(
        by_id("3"),
        Some(Done::Error(Some(-32000), "requested error".into()))
    );
    assert_eq!(by_id("4"), Some(Done::TimedOut));
    // The timeout fired long before the worker woke up.
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );

    // The late response arrives, and is no longer anyone's.
    let mut late = None;
    let give_up = Instant::now() + common::DEADLINE;
    while late.is_none() {
        assert!(Instant::now() < give_up, "the sleep response never came");
        bus.poll(Duration::from_millis(50)).expect("poll");
        while let Some(event) = events.read() {
            if let Fed::Unmatched(message) = table.event(event.event(), |c| panic!("{c:?}"))
                && message.kind() == Kind::Result
                && message.raw_id() == Some("4")
            {
                late = Some(());
            }
        }
    }
    bus.stop(Duration::from_secs(1)).expect("stop");
}

#[test]
fn a_full_table_of_requests_completes() {
    let (mut bus, mut events) = common::start_echo(2);
    let clock = Instant::now();
    let mut table = Pending::<32>::new();
    let deadline = clock.elapsed() + common::DEADLINE;
    let names: Vec<String> = (0..16).map(|n| format!("req-{n}")).collect();
    for n in 0..16i64 {
        let params = format!(r#"{{"n":{n}}}"#);
        table.register(n, deadline).unwrap();
        send(&mut bus, &Request::new(n, "echo").params(&params));
        let name = &names[n as usize];
        table.register(name.as_str(), deadline).unwrap();
        send(
            &mut bus,
            &Request::new(name.as_str(), "echo").params(&params),
        );
    }
    assert_eq!(
        table.register(99, deadline),
        Err(RegisterError::Full { capacity: 32 })
    );
    let (done, unmatched) = run(&mut bus, &mut events, &mut table, clock);
    assert_eq!(done.len(), 32);
    assert!(unmatched.is_empty(), "{unmatched:?}");
    for (id, outcome) in &done {
        let Done::Result(result) = outcome else {
            panic!("{id}: {outcome:?}")
        };
        let n = result["params"]["n"].as_i64().unwrap();
        assert!(
            id == &n.to_string() || id == &format!("\"req-{n}\""),
            "{id}: {result}"
        );
    }
    bus.stop(Duration::from_secs(1)).expect("stop");
}
