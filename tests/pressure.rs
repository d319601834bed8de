//! Back-pressure instead of loss: a full ring stops the kernel stepping, and the workers
//! wait with their output until the host has read what it has.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, config};
use serde_json::json;
use stdiobus_embed::{Bus, Error, EventRing, Limits, Pool};

/// The poll reserve of the first test: 60 slots of 256 bytes.
const RESERVE: usize = 60 * 256;

#[test]
fn a_full_ring_holds_the_kernel_back_and_nothing_is_lost() {
    // 16 KiB of ring in 64 slots of 256 bytes; polls stop while fewer than 60 slots are
    // free. One kernel step reads at most 4 KiB from one worker: at most 58 of the lines
    // below, and each line takes a whole slot.
    let ring = Box::leak(EventRing::<64, 256>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let options = common::options().poll_reserve(RESERVE);
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();
    common::drain(&mut events, &mut Vec::new());

    // 2 000 notifications of about 70 bytes: nine times what the ring holds.
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":2000}}"#)
        .unwrap();

    // Without reading, polling soon refuses; the ring never overflows.
    let deadline = Instant::now() + DEADLINE;
    let refusal = loop {
        match bus.poll(Duration::from_millis(10)) {
            Ok(_) => assert!(Instant::now() < deadline, "the ring never filled"),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(
            refusal,
            Error::RingFull {
                reserve: RESERVE,
                ..
            }
        ),
        "{refusal}"
    );
    assert!(refusal.is_retryable());
    assert_eq!(bus.producer().lost().events, 0);

    // Reading and polling in turn, everything arrives, in order.
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the notify response",
        |seen| {
            seen.iter()
                .filter_map(Seen::json)
                .any(|m| m["id"] == 1 && m.get("result").is_some())
        },
    );
    let ticks: Vec<u64> = seen
        .iter()
        .filter_map(Seen::json)
        .filter(|m| m["method"] == "worker/tick")
        .map(|m| m["params"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(ticks, (1..=2000).collect::<Vec<_>>());
    let stats = bus.stats().ring;
    assert_eq!(stats.lost.events, 0);
    assert!(stats.high_water > 8 << 10, "the ring did fill: {stats:?}");
    assert!(stats.high_water <= 16 << 10);
}

/// Runs `notify` with `count` notifications through a 2 KiB ring that is never drained
/// during the burst, so most events cannot be stored.
fn overflowing_bus(
    ring: &'static EventRing<32, 64>,
) -> (
    Bus<'static, stdiobus_embed::Running>,
    stdiobus_embed::Consumer<'static>,
) {
    let (producer, events) = ring.split().unwrap();
    // No reserve: this test is about what happens past it.
    let options = common::options().poll_reserve(0);
    let pools = [Pool::new("echo", WORKER)];
    let bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();
    (bus, events)
}

fn ticks(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .filter_map(Seen::json)
        .filter(|m| m["method"] == "worker/tick")
        .map(|m| m["params"]["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn with_an_overflow_handler_nothing_is_lost() {
    let ring = Box::leak(EventRing::<32, 64>::boxed());
    let (mut bus, mut events) = overflowing_bus(ring);
    // The test shares what the handler saw through a mutex; nothing else holds it while
    // `poll` runs, so the handler never waits.
    let handled = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&handled);
    let handler = Box::leak(Box::new(move |event: stdiobus_embed::Event<'_>| {
        sink.lock().unwrap().push(Seen::from_event(event));
    }));
    bus.set_overflow_handler(handler);
    common::drain(&mut events, &mut Vec::new());

    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":300}}"#)
        .unwrap();
    // Poll without reading the ring until the response has arrived somewhere.
    let answered = |seen: &[Seen]| {
        seen.iter()
            .filter_map(Seen::json)
            .any(|m| m["id"] == 1 && m.get("result").is_some())
    };
    let mut in_ring = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while !answered(&handled.lock().unwrap()) && !answered(&in_ring) {
        assert!(Instant::now() < deadline, "no response");
        bus.poll(Duration::from_millis(10)).unwrap();
        if Instant::now() + DEADLINE / 2 > deadline {
            // Taking long: the response may be waiting in the ring.
            common::drain(&mut events, &mut in_ring);
        }
    }
    common::drain(&mut events, &mut in_ring);
    let handled = handled.lock().unwrap();
    assert!(!handled.is_empty(), "the ring did overflow");
    let mut all = ticks(&in_ring);
    all.extend(ticks(&handled));
    all.sort_unstable();
    assert_eq!(all, (1..=300).collect::<Vec<_>>(), "every tick, once");
    let stats = bus.stats().ring;
    assert_eq!(stats.lost.events, 0);
    assert_eq!(stats.handed_over, handled.len() as u64);
}

#[test]
fn without_a_handler_losses_are_counted_and_marked_in_order() {
    let ring = Box::leak(EventRing::<32, 64>::boxed());
    let (mut bus, mut events) = overflowing_bus(ring);
    common::drain(&mut events, &mut Vec::new());
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":300}}"#)
        .unwrap();
    // Poll a while without reading, then read and poll until all 302 lines the worker
    // writes (300 ticks, a request to the host, the response) are seen or marked lost.
    for _ in 0..20 {
        bus.poll(Duration::from_millis(5)).unwrap();
    }
    let messages = |seen: &[Seen]| {
        seen.iter()
            .filter(|s| matches!(s, Seen::Message(_)))
            .count()
    };
    let marked = |seen: &[Seen]| -> u64 {
        seen.iter()
            .map(|s| match s {
                Seen::Overflow(events, ..) => *events,
                _ => 0,
            })
            .sum()
    };
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "every line, seen or marked lost",
        |seen| messages(seen) as u64 + marked(seen) >= 302,
    );
    let lost = bus.stats().ring.lost;
    assert!(lost.events > 0, "the ring did overflow");
    assert_eq!(
        marked(&seen),
        lost.events,
        "markers account for every lost event"
    );
    assert_eq!(messages(&seen) as u64 + lost.events, 302);
    let got = ticks(&seen);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "what arrived is in order"
    );
}

#[test]
fn the_overflow_marker_names_the_lost_responses() {
    // 16 slots of 256 bytes: room for about 14 responses; 30 are asked for.
    let ring = Box::leak(EventRing::<16, 256>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let options = common::options().poll_reserve(0);
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();
    common::drain(&mut events, &mut Vec::new());
    let before = bus.stats().ring;
    for id in 0..30 {
        bus.send(
            json!({"jsonrpc": "2.0", "id": format!("r{id}"), "method": "m"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    }
    // Poll without reading until every response is either in the ring or lost.
    let deadline = Instant::now() + DEADLINE;
    let settled = |ring: stdiobus_embed::RingStats| {
        ring.stored - before.stored + ring.lost.events - before.lost.events
    };
    while settled(bus.stats().ring) < 30 {
        assert!(Instant::now() < deadline, "{:?}", bus.stats());
        bus.poll(Duration::from_millis(10)).unwrap();
    }
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    bus.poll(Duration::ZERO).unwrap(); // writes a marker that had no room before
    common::drain(&mut events, &mut seen);

    let mut answered: Vec<String> = seen
        .iter()
        .filter_map(Seen::json)
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let mut named_lost = Vec::new();
    for s in &seen {
        if let Seen::Overflow(_, _, ids, more) = s {
            assert!(!more, "every lost id fits in the marker here");
            named_lost.extend(
                ids.iter()
                    .map(|id| serde_json::from_slice::<String>(id).unwrap()),
            );
        }
    }
    assert!(!named_lost.is_empty(), "some responses were lost: {seen:?}");
    assert_eq!(named_lost.len() as u64, bus.stats().ring.lost.events);
    answered.extend(named_lost);
    answered.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
    let all: Vec<String> = (0..30).map(|id| format!("r{id}")).collect();
    assert_eq!(
        answered, all,
        "each request is answered or named lost, once"
    );
}
