//! Messages through the real kernel and real worker processes.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, call, poll_until, responses, start, start_echo};
use serde_json::json;
use stdiobus_embed::{Bus, Error, ErrorCode, Event, EventRing, Limits, Pool, Retry};

#[test]
fn a_request_gets_its_response() {
    let (mut bus, mut events) = start_echo(1);
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": [1, "two"]}}),
    );
    assert_eq!(response["jsonrpc"], "2.0");
    assert_eq!(response["result"]["worker"], "echo");
    assert_eq!(response["result"]["method"], "ping");
    assert_eq!(response["result"]["params"], json!({"x": [1, "two"]}));
}

#[test]
fn an_error_response_arrives_as_a_message() {
    let (mut bus, mut events) = start_echo(1);
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": "e", "method": "error"}),
    );
    assert_eq!(response["error"]["code"], -32000);
}

#[test]
fn workers_send_notifications_and_requests_unprompted() {
    let (mut bus, mut events) = start(&[Pool::new("echo", WORKER).args(&["--announce"])]);
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the ready notification",
        |seen| {
            seen.iter()
                .filter_map(Seen::json)
                .any(|m| m["method"] == "worker/ready")
        },
    );

    bus.send(br#"{"jsonrpc":"2.0","id":7,"method":"notify","params":{"count":3}}"#)
        .unwrap();
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the notify response",
        |seen| !responses(seen, &json!(7)).is_empty(),
    );
    let lines: Vec<_> = seen.iter().filter_map(Seen::json).collect();
    let ticks: Vec<_> = lines
        .iter()
        .filter(|m| m["method"] == "worker/tick")
        .map(|m| m["params"]["seq"].clone())
        .collect();
    assert_eq!(ticks, [json!(1), json!(2), json!(3)], "in order: {lines:?}");
    let ping = lines
        .iter()
        .position(|m| m["method"] == "host/ping" && m["id"] == "worker-1")
        .expect("the worker's request to the host");
    let response = lines.iter().position(|m| m["id"] == 7).unwrap();
    assert!(ping < response, "the request came before the response");
}

#[test]
fn session_ids_travel_with_requests_and_responses() {
    let (mut bus, mut events) = start_echo(2);
    for n in 0..4 {
        let response = call(
            &mut bus,
            &mut events,
            &json!({"jsonrpc": "2.0", "id": n, "method": "s", "sessionId": "session-a"}),
        );
        assert_eq!(response["sessionId"], "session-a");
        assert_eq!(response["id"], n);
    }
}

#[test]
fn two_pools_both_run_and_a_message_must_name_its_pool() {
    let (mut bus, mut events) = start(&[
        Pool::new("a", WORKER).args(&["--name", "a", "--announce"]),
        Pool::new("b", WORKER).args(&["--name", "b", "--announce"]),
    ]);
    assert_eq!(bus.worker_count(), 2);
    // Both pools' workers run, and what each writes reaches the host.
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "both ready notifications",
        |seen| {
            ["a", "b"].iter().all(|name| {
                seen.iter()
                    .filter_map(Seen::json)
                    .any(|m| m["method"] == "worker/ready" && m["params"]["name"] == *name)
            })
        },
    );
    // The member is `pool`, as the 2.2.1 archive reads it; `poolId` names nothing.
    for n in 0..6 {
        let pool = if n % 2 == 0 { "a" } else { "b" };
        let response = call(
            &mut bus,
            &mut events,
            &json!({"jsonrpc": "2.0", "id": n, "method": "who", "pool": pool}),
        );
        assert_eq!(response["result"]["worker"], pool, "request {n}");
    }
    let unnamed = json!({"jsonrpc": "2.0", "id": 9, "method": "who", "poolId": "a"});
    assert_eq!(
        bus.send(unnamed.to_string().as_bytes()),
        Err(stdiobus_embed::Error::PoolNotNamed)
    );
}

#[test]
fn several_messages_in_one_send_all_arrive() {
    let (mut bus, mut events) = start_echo(1);
    bus.send(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}\n\
          {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\"}\n\
          {\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"m\"}",
    )
    .unwrap();
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "three responses",
        |seen| (1..=3).all(|id| !responses(seen, &json!(id)).is_empty()),
    );
    assert_eq!(seen.iter().filter_map(Seen::json).count(), 3);
}

#[test]
fn a_one_mebibyte_message_round_trips_intact() {
    // The response is a little over 1 MiB: more than the kernel's default line limit
    // (`max_input_buffer`, 1 MiB with the 1.1.1 archive), past which the line would be
    // dropped (`Event::LineTooLong`).
    let (producer, mut events) = common::ring();
    let limits = Limits {
        max_input_buffer: Some(4 << 20),
        ..Limits::default()
    };
    let config = common::config(&[Pool::new("echo", WORKER)], &limits);
    let mut bus = Bus::create(config, common::options(), producer)
        .unwrap()
        .start()
        .unwrap();
    // 1 MiB on the wire: the message and the newline the kernel adds. That is also the
    // most a worker pipe holds at the default `pipe-max-size`.
    let envelope = r#"{"jsonrpc":"2.0","id":"big","method":"echo","params":[""]}"#.len();
    let payload: String = (0..(1 << 20) - 1 - envelope)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let request = json!({"jsonrpc": "2.0", "id": "big", "method": "echo", "params": [payload]});
    assert_eq!(request.to_string().len() + 1, 1 << 20);
    let response = call(&mut bus, &mut events, &request);
    let echoed = response["result"]["params"][0].as_str().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "the echoed payload differs");

    // One byte more than the pipes hold cannot go through in one piece: refused, not cut.
    let max = bus.max_message_len().expect("the worker's pipe is known");
    assert!(max >= (1 << 20) - 1);
    let too_large = vec![b' '; max + 1];
    assert_eq!(
        bus.send(&too_large),
        Err(Error::TooLarge { len: max + 1, max })
    );
}

#[test]
fn bad_input_is_refused_and_the_bus_keeps_working() {
    let (mut bus, mut events) = start_echo(1);
    assert_eq!(bus.send(b""), Err(Error::EmptyMessage));
    assert_eq!(
        bus.send(b"{\"a\":\"x\0y\"}"),
        Err(Error::InteriorNul { offset: 7 })
    );
    let not_json = bus.send(b"this is not json").unwrap_err();
    assert_eq!(not_json, Error::Kernel(ErrorCode::Invalid));
    assert_eq!(not_json.code(), Some(-14));
    assert_eq!(not_json.retry(), Retry::No);

    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Error(ErrorCode::Invalid, _))),
        "the kernel reports the refusal as an event too: {seen:?}"
    );
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "after"}),
    );
    assert_eq!(response["result"]["method"], "after");
}

#[test]
fn garbage_from_a_worker_is_delivered_as_raw_bytes() {
    let (mut bus, mut events) = start_echo(1);
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"garbage"}"#)
        .unwrap();
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the response after the garbage",
        |seen| !responses(seen, &json!(1)).is_empty(),
    );
    let messages: Vec<_> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Message(_)))
        .collect();
    let garbage = b"\xff\xfe garbage \x80 not json".to_vec();
    assert_eq!(*messages[0], Seen::Message(garbage.clone()));
    assert!(std::str::from_utf8(&garbage).is_err());
    assert_eq!(
        *messages[1],
        Seen::Message(br#"{"jsonrpc":"2.0","#.to_vec())
    );
    assert_eq!(
        messages.len(),
        3,
        "garbage, half object, response: {seen:?}"
    );
}

#[test]
fn two_buses_in_one_process_stay_apart() {
    let (mut first, mut first_events) = start(&[Pool::new("p", WORKER).args(&["--name", "first"])]);
    let (mut second, mut second_events) =
        start(&[Pool::new("p", WORKER).args(&["--name", "second"])]);
    for n in 0..3 {
        let a = call(
            &mut first,
            &mut first_events,
            &json!({"jsonrpc": "2.0", "id": n, "method": "m"}),
        );
        let b = call(
            &mut second,
            &mut second_events,
            &json!({"jsonrpc": "2.0", "id": n, "method": "m"}),
        );
        assert_eq!(a["result"]["worker"], "first");
        assert_eq!(b["result"]["worker"], "second");
    }
    assert!(first_events.is_empty() && second_events.is_empty());
}

/// The kernel writes a message with one non-blocking `write` and drops whatever does not
/// fit; the bus must refuse (retryably) rather than let a message be cut.
#[test]
fn large_messages_to_a_slow_worker_arrive_whole_or_are_refused() {
    let (mut bus, mut events) = start_echo(1);
    let pad = "p".repeat(10_000);
    let total = 300;
    let mut pipe_full = 0;
    let mut seen = Vec::new();
    for id in 0..total {
        let request =
            json!({"jsonrpc": "2.0", "id": id, "method": "sleep", "params": {"ms": 1, "pad": pad}})
                .to_string();
        loop {
            match bus.send(request.as_bytes()) {
                Ok(()) => break,
                Err(error) if error.is_retryable() => {
                    pipe_full += usize::from(matches!(error, Error::PipeFull { .. }));
                    bus.poll(std::time::Duration::from_millis(1)).unwrap();
                    common::drain(&mut events, &mut seen);
                }
                Err(error) => panic!("request {id} refused for good: {error}"),
            }
        }
    }
    // Each message is parsed once: reparsing 3 MB of them at every poll was slow enough
    // under AddressSanitizer to miss the deadline.
    let (mut parsed, mut results) = (0, 0);
    poll_until(&mut bus, &mut events, &mut seen, "every response", |seen| {
        for message in seen[parsed..].iter().filter_map(Seen::json) {
            results += usize::from(message.get("result").is_some());
        }
        parsed = seen.len();
        results >= total
    });
    let mut ids: Vec<i64> = Vec::new();
    for response in seen.iter().filter_map(Seen::json) {
        if let Some(result) = response.get("result") {
            assert_eq!(result["params"]["pad"].as_str().map(str::len), Some(10_000));
            ids.push(response["id"].as_i64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..total as i64).collect::<Vec<_>>(),
        "each request answered once"
    );
    assert!(pipe_full > 0, "the bus itself pushed back at least once");
}

/// What Python's `json.dump` writes: every non-ASCII character as a `\u` escape, which the
/// kernel would hand to exec as literal text. Normalized, the worker gets the characters.
#[test]
fn a_configuration_with_unicode_escapes_reaches_the_worker_decoded() {
    let text = format!(
        r#"{{"pools":[{{"id":"caf\u00e9","command":{},"args":["--name","\u00e9t\u00e9 \ud83d\ude80"],"instances":1}}]}}"#,
        json!(WORKER)
    );
    let buf = Box::leak(
        vec![0u8; text.len() + stdiobus_embed::config::NORMALIZE_SLACK].into_boxed_slice(),
    );
    let config = stdiobus_embed::Config::normalize(&text, &Limits::default(), buf).unwrap();
    let (mut bus, mut events) = common::start_config(config);
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    assert_eq!(response["result"]["worker"], "été 🚀");
    // The same text as it is is refused, not passed on literally.
    let mut raw = text.into_bytes();
    raw.push(0);
    let raw = std::ffi::CStr::from_bytes_with_nul(&raw).unwrap();
    assert!(matches!(
        stdiobus_embed::Config::from_json(raw),
        Err(stdiobus_embed::ConfigError::UnsupportedCharacter { .. })
    ));
}

/// With a send buffer, a message longer than the worker's stdin pipe goes out whole: what
/// the pipe cannot take waits in the buffer and follows as the worker reads.
#[test]
fn messages_larger_than_the_pipe_go_out_whole_through_the_send_buffer() {
    // 16 MiB: room for the answers, each as large as its request.
    let ring = Box::leak(stdiobus_embed::EventRing::<4096, 4096>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let pools = [Pool::new("echo", WORKER).instances(2)];
    let limits = Limits {
        max_input_buffer: Some(64 << 20),
        ..Limits::default()
    };
    let mut bus =
        Bus::create(common::config(&pools, &limits), common::options(), producer).unwrap();
    bus.set_send_buffer(Box::leak(vec![0u8; 16 << 20].into_boxed_slice()));
    let mut bus = bus.start().unwrap();
    let pipe = bus.max_message_len().unwrap();
    assert!(pipe >= (16 << 20) - 1, "the send buffer counts: {pipe}");
    // Larger than any pipe (1 MiB without privileges, 4 MiB with), three in a row, so that
    // some wait for the buffer to be free.
    let (mut seen, mut waits) = (Vec::new(), 0);
    let pad = "abcdefghijklmnopqrstuvwxyz".repeat((5 << 20) / 26);
    for id in 0..3 {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "big", "params": {"pad": pad}})
            .to_string();
        let mut waited = 0;
        loop {
            match bus.send(request.as_bytes()) {
                Ok(()) => break,
                Err(Error::PipeFull { .. }) => {
                    waited += 1;
                    bus.poll(std::time::Duration::from_millis(5)).unwrap();
                    common::drain(&mut events, &mut seen);
                }
                Err(error) => panic!("request {id}: {error}"),
            }
            assert!(waited < 10_000, "request {id} never went out");
        }
        waits += waited;
    }
    assert!(waits > 0, "one message waited for the buffer to be free");
    let (mut parsed, mut answers) = (0, Vec::new());
    poll_until(&mut bus, &mut events, &mut seen, "three answers", |seen| {
        for message in seen[parsed..].iter().filter_map(Seen::json) {
            answers.push(message);
        }
        parsed = seen.len();
        answers.len() >= 3
    });
    for answer in &answers {
        let pad = answer["result"]["params"]["pad"]
            .as_str()
            .expect("the whole request came back");
        assert_eq!(pad.len(), (5 << 20) / 26 * 26);
        assert!(
            pad.bytes()
                .enumerate()
                .all(|(i, b)| b == b'a' + (i % 26) as u8)
        );
    }
    let mut ids: Vec<i64> = answers.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2]);
    // Longer than the buffer: refused, not cut.
    let huge = vec![b' '; 16 << 20];
    assert!(matches!(bus.send(&huge), Err(Error::TooLarge { .. })));
}

/// Closing the workers' input right after a message larger than the pipe: the rest of
/// the message, waiting in the send buffer, goes first, and then the worker sees the end
/// of its input, answers and exits on its own.
#[test]
fn closing_the_input_lets_a_message_half_written_from_the_send_buffer_finish() {
    // 16 MiB: room for the answer, as large as the request.
    let ring = Box::leak(stdiobus_embed::EventRing::<4096, 4096>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let pools = [Pool::new("echo", WORKER)];
    let limits = Limits {
        max_input_buffer: Some(16 << 20),
        ..Limits::default()
    };
    let mut bus =
        Bus::create(common::config(&pools, &limits), common::options(), producer).unwrap();
    bus.set_send_buffer(Box::leak(vec![0u8; 8 << 20].into_boxed_slice()));
    let mut bus = bus.start().unwrap();
    // Larger than any pipe (1 MiB without privileges, 4 MiB with): most of it waits in
    // the send buffer when the input is closed.
    let pad = "x".repeat(5 << 20);
    let request = json!({"jsonrpc": "2.0", "id": 7, "method": "pid", "params": {"pad": pad}});
    bus.send(request.to_string().as_bytes()).unwrap();
    bus.close_worker_stdin();
    let mut seen = Vec::new();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the answer, then the exit",
        |seen| {
            let answered = !common::responses(seen, &json!(7)).is_empty();
            answered
                && seen.contains(&Seen::Exited(
                    stdiobus_embed::WorkerId::new(0),
                    stdiobus_embed::ExitStatus::Code(0),
                ))
        },
    );
}

/// Owned ring halves are `'static`: the bus polls on a thread of its own while the test's
/// thread reads every answer from the consumer, in place.
#[test]
fn an_owned_consumer_reads_on_one_thread_while_the_bus_polls_on_another() {
    const REQUESTS: u64 = 500;
    let (producer, mut events) = EventRing::<64, 1024>::boxed()
        .split_owned()
        .expect("a fresh ring");
    let config = common::config(
        &[Pool::new("echo", WORKER).instances(2)],
        &Limits::default(),
    );
    let bus: Bus<'static, _> = Bus::create(config, common::options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let poller = std::thread::spawn({
        let done = Arc::clone(&done);
        move || {
            let mut bus = bus;
            let poll = |bus: &mut Bus<'static, _>| match bus.poll(Duration::from_millis(1)) {
                // The reader frees the ring meanwhile.
                Ok(_) | Err(Error::RingFull { .. }) => {}
                Err(error) => panic!("poll: {error}"),
            };
            for id in 0..REQUESTS {
                let request = json!({"jsonrpc": "2.0", "id": id, "method": "m"}).to_string();
                while let Err(error) = bus.send(request.as_bytes()) {
                    assert!(error.is_retryable(), "{error}");
                    poll(&mut bus);
                }
            }
            while !done.load(Ordering::Acquire) {
                poll(&mut bus);
            }
            bus
        }
    });
    let mut answered = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while answered.len() < REQUESTS as usize {
        assert!(Instant::now() < deadline, "{} answers", answered.len());
        let Some(event) = events.read() else {
            std::thread::yield_now();
            continue;
        };
        if let Event::Message { line, .. } = event.event() {
            let json: serde_json::Value = serde_json::from_slice(line.as_bytes()).unwrap();
            assert!(answered.insert(json["id"].as_u64().unwrap()), "{json}");
        }
    }
    done.store(true, Ordering::Release);
    let bus = poller.join().unwrap();
    assert_eq!(answered, (0..REQUESTS).collect());
    assert_eq!(bus.stats().ring.lost.events, 0);
    bus.stop(Duration::from_secs(1)).expect("stop");
}
