//! Back-pressure instead of loss: a full ring stops the kernel stepping, and the workers
//! wait with their output until the host has read what it has.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, config};
use stdiobus_embed::{Bus, Error, EventRing, Limits, Pool};

#[test]
fn a_full_ring_holds_the_kernel_back_and_nothing_is_lost() {
    // 16 KiB of ring; polls stop while less than 8 KiB is free, which is more than one
    // kernel step delivers from one worker (about 4 KiB).
    let ring = Box::leak(EventRing::<64, 256>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let options = common::options().poll_reserve(8 << 10);
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
        matches!(refusal, Error::RingFull { reserve: 8192, .. }),
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
