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

/// A handler given to one `poll_with` borrows the test's own state, the consumer included:
/// it reads the older events first, so every line arrives once and in order, and none is
/// lost. Once the call returns the handler is gone: plain polls hold the workers back
/// again instead of handing anything over.
#[test]
fn poll_with_hands_what_does_not_fit_to_a_closure_borrowing_local_state() {
    let ring = Box::leak(EventRing::<32, 64>::boxed());
    let (mut bus, mut events) = overflowing_bus(ring);
    common::drain(&mut events, &mut Vec::new());
    let answered = |seen: &[Seen], id: u64| {
        seen.iter()
            .filter_map(Seen::json)
            .any(|m| m["id"] == id && m.get("result").is_some())
    };

    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":300}}"#)
        .unwrap();
    let mut seen = Vec::new();
    let mut handed = 0;
    let deadline = Instant::now() + DEADLINE;
    while !answered(&seen, 1) {
        assert!(Instant::now() < deadline, "no response");
        bus.poll_with(Duration::from_millis(10), |event| {
            common::drain(&mut events, &mut seen);
            seen.push(Seen::from_event(event));
            handed += 1;
        })
        .unwrap();
        common::drain(&mut events, &mut seen);
    }
    assert!(handed > 0, "the ring did overflow");
    assert_eq!(
        ticks(&seen),
        (1..=300).collect::<Vec<_>>(),
        "every tick, in order"
    );
    let stats = bus.stats().ring;
    assert_eq!(stats.lost.events, 0);
    assert_eq!(stats.handed_over, handed);

    // No handler now: a burst the ring cannot hold waits in the worker.
    bus.send(br#"{"jsonrpc":"2.0","id":2,"method":"notify","params":{"count":300}}"#)
        .unwrap();
    for _ in 0..20 {
        bus.poll(Duration::from_millis(5)).unwrap();
    }
    let stats = bus.stats().ring;
    assert_eq!((stats.handed_over, stats.lost.events), (handed, 0));
    seen.clear();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the second response",
        |seen| answered(seen, 2),
    );
    assert_eq!(ticks(&seen), (1..=300).collect::<Vec<_>>());
}

/// The same during a shutdown: what the workers wrote before they were asked to stop, and
/// the ring cannot hold, goes to the closure given to each `poll_stop_with`, in order,
/// where without one it would be counted lost.
#[test]
fn poll_stop_with_hands_the_last_output_to_a_closure_borrowing_local_state() {
    let ring = Box::leak(EventRing::<32, 64>::boxed());
    let (mut bus, mut events) = overflowing_bus(ring);
    common::drain(&mut events, &mut Vec::new());
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":300}}"#)
        .unwrap();
    // The worker writes its burst into its stdout pipe meanwhile; nothing reads it yet.
    std::thread::sleep(Duration::from_millis(300));
    let mut stopping = bus.begin_stop(Duration::from_secs(1)).unwrap();
    let mut seen = Vec::new();
    let mut handed = 0;
    let deadline = Instant::now() + DEADLINE;
    let stopped = loop {
        stopping = match stopping.try_finish() {
            Ok(stopped) => break stopped,
            Err(stopping) => stopping,
        };
        assert!(Instant::now() < deadline, "never stopped");
        stopping
            .poll_stop_with(Duration::from_millis(10), |event| {
                common::drain(&mut events, &mut seen);
                seen.push(Seen::from_event(event));
                handed += 1;
            })
            .unwrap();
        common::drain(&mut events, &mut seen);
    };
    common::drain(&mut events, &mut seen);
    assert!(handed > 0, "the ring did overflow");
    let ticks = ticks(&seen);
    assert!(ticks.len() > 32, "{} ticks", ticks.len());
    assert_eq!(
        ticks,
        (1..=ticks.len() as u64).collect::<Vec<_>>(),
        "in order"
    );
    let stats = stopped.stats().ring;
    assert_eq!(stats.lost.events, 0);
    assert_eq!(stats.handed_over, handed);
}

/// A request whose response is longer than the 4 KiB rings below hold: `pad` bytes of
/// params, echoed back.
fn request(id: &str, pad: usize) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "m", "params": "x".repeat(pad)})
        .to_string()
        .into_bytes()
}

/// A bus with one echo worker over a ring of `SLOTS` slots of `SLOT_SIZE` bytes, with the
/// default poll reserve.
fn echo_bus<const SLOTS: usize, const SLOT_SIZE: usize>() -> (
    Bus<'static, stdiobus_embed::Running>,
    stdiobus_embed::Consumer<'static>,
) {
    let ring = Box::leak(EventRing::<SLOTS, SLOT_SIZE>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let pools = [Pool::new("echo", WORKER)];
    let bus = Bus::create(
        config(&pools, &Limits::default()),
        common::options(),
        producer,
    )
    .unwrap()
    .start()
    .unwrap();
    common::drain(&mut events, &mut Vec::new());
    (bus, events)
}

/// [`echo_bus`] over 16 slots of 256 bytes: 4 KiB.
fn small_ring_bus() -> (
    Bus<'static, stdiobus_embed::Running>,
    stdiobus_embed::Consumer<'static>,
) {
    echo_bus::<16, 256>()
}

/// The ids of the responses in `seen` and of those the overflow markers name lost, in
/// the order they came.
fn answered_and_lost(seen: &[Seen]) -> (Vec<String>, Vec<String>) {
    let answered = seen
        .iter()
        .filter_map(Seen::json)
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    let mut lost = Vec::new();
    for s in seen {
        if let Seen::Overflow(_, _, ids, more) = s {
            assert!(!more, "every lost id fits in the marker here");
            lost.extend(
                ids.iter()
                    .map(|id| serde_json::from_slice::<String>(id).unwrap()),
            );
        }
    }
    (answered, lost)
}

#[test]
fn a_line_no_ring_can_hold_is_counted_lost_and_marked_in_order() {
    let (mut bus, mut events) = small_ring_bus();
    // Every third response is longer than the whole ring; the others fit in one slot.
    let ids: Vec<String> = (0..30).map(|id| format!("r{id}")).collect();
    let large = |id: &str| id[1..].parse::<u32>().unwrap() % 3 == 0;
    for id in &ids {
        let pad = if large(id) { 5000 } else { 10 };
        bus.send(&request(id, pad)).unwrap();
    }
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "every response, seen or named lost",
        |seen| {
            let (answered, lost) = answered_and_lost(seen);
            answered.len() + lost.len() >= ids.len()
        },
    );
    let (answered, lost) = answered_and_lost(&seen);
    let small: Vec<&String> = ids.iter().filter(|id| !large(id)).collect();
    let too_large: Vec<&String> = ids.iter().filter(|id| large(id)).collect();
    assert_eq!(
        answered.iter().collect::<Vec<_>>(),
        small,
        "the responses that fit, in order"
    );
    assert_eq!(
        lost.iter().collect::<Vec<_>>(),
        too_large,
        "only the ones too large, in order"
    );
    assert_eq!(bus.stats().ring.lost.events, too_large.len() as u64);
    // Each marker stands where its response would have been.
    let mut order = Vec::new();
    for s in &seen {
        let (answered, lost) = answered_and_lost(std::slice::from_ref(s));
        order.extend(answered);
        order.extend(lost);
    }
    assert_eq!(
        order, ids,
        "responses and markers in the order the worker wrote them"
    );
}

#[test]
fn a_ring_nobody_reads_holds_the_workers_back_instead_of_losing() {
    // No reserve at all, and the ring never read while the worker answers 30 requests
    // with more than the ring holds: the kernel is given only the lines that fit.
    let ring = Box::leak(EventRing::<16, 256>::boxed());
    let (producer, mut events) = ring.split().unwrap();
    let options = common::options().poll_reserve(0);
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();
    common::drain(&mut events, &mut Vec::new());
    let ids: Vec<String> = (0..30).map(|id| format!("r{id}")).collect();
    for id in &ids {
        bus.send(&request(id, 10)).unwrap();
    }
    let before = bus.stats().ring;
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        bus.poll(Duration::from_millis(10)).unwrap();
    }
    let full = bus.stats().ring;
    assert_eq!(full.lost.events, 0, "{full:?}");
    assert!(
        full.stored > before.stored,
        "some responses were stored: {full:?}"
    );
    assert!(
        full.stored - before.stored < 30,
        "not all of them fit: {full:?}"
    );
    // Read and poll in turn: the rest comes.
    let mut seen = Vec::new();
    common::poll_until(&mut bus, &mut events, &mut seen, "every response", |seen| {
        answered_and_lost(seen).0.len() >= ids.len()
    });
    assert_eq!(answered_and_lost(&seen), (ids, Vec::new()));
    assert_eq!(bus.stats().ring.lost.events, 0);
}

/// A host that keeps up: the worker writes `count` notifications in one burst, and the
/// ring is read after every poll. Returns the ticks that arrived, in order, and how many
/// events the ring lost.
fn keep_up<const SLOTS: usize, const SLOT_SIZE: usize>(count: u32) -> (Vec<u32>, u64) {
    let (mut bus, mut events) = echo_bus::<SLOTS, SLOT_SIZE>();
    let request =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"notify","params":{{"count":{count}}}}}"#);
    bus.send(request.as_bytes()).unwrap();
    let (mut ticks, mut answered, mut lost) = (Vec::with_capacity(count as usize), false, 0);
    let deadline = Instant::now() + DEADLINE;
    while !answered {
        assert!(
            Instant::now() < deadline,
            "{} of {count} ticks after {DEADLINE:?}, {lost} events lost",
            ticks.len()
        );
        bus.poll(Duration::from_millis(10)).unwrap();
        events.drain(|event| match event {
            stdiobus_embed::Event::Message { line, .. } => match tick_seq(line.as_ref()) {
                Some(seq) => ticks.push(seq),
                None => answered |= line.as_ref().starts_with(br#"{"jsonrpc":"2.0","id":1,"#),
            },
            stdiobus_embed::Event::Overflow(overflow) => lost += overflow.loss().events,
            _ => {}
        });
    }
    assert_eq!(lost, bus.stats().ring.lost.events, "every loss is marked");
    bus.stop(Duration::from_secs(1)).unwrap();
    (ticks, lost)
}

/// The `seq` of a `worker/tick` notification, read without a JSON parser: a host that
/// keeps up with a burst cannot afford one per line in a debug build.
fn tick_seq(line: &[u8]) -> Option<u32> {
    const PREFIX: &[u8] = br#"{"jsonrpc":"2.0","method":"worker/tick","params":{"seq":"#;
    let digits = line.strip_prefix(PREFIX)?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[test]
fn a_host_that_keeps_up_loses_nothing_with_the_default_reserve_on_any_ring_shape() {
    fn check<const SLOTS: usize, const SLOT_SIZE: usize>(count: u32) {
        let (ticks, lost) = keep_up::<SLOTS, SLOT_SIZE>(count);
        let shape = format!("{SLOTS} slots of {SLOT_SIZE} bytes");
        assert_eq!(lost, 0, "{shape}: events lost");
        assert_eq!(ticks.len(), count as usize, "{shape}: ticks missing");
        assert!(
            ticks.iter().zip(1..).all(|(&seq, want)| seq == want),
            "{shape}: ticks out of order"
        );
    }
    // The README's shape, the documentation's smallest and largest, and a ring of a few
    // large slots, where every short line takes a slot of 64 KiB.
    check::<64, 1024>(100_000);
    check::<8, 256>(20_000);
    check::<1024, 4096>(100_000);
    check::<4, 65536>(5_000);
}

#[test]
fn an_event_loop_on_the_poll_fd_is_woken_for_output_held_back() {
    // A host that sleeps on the bus's descriptor and reads the ring after each step. The
    // worker writes its whole burst at once; most of it waits for room in the bus, not in
    // the pipe, and the descriptor must say so.
    let (mut bus, mut events) = echo_bus::<8, 256>();
    let fd = bus.poll_fd().expect("the kernel's epoll descriptor");
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"notify","params":{"count":2000}}"#)
        .unwrap();
    let (mut ticks, mut answered) = (0, false);
    let deadline = Instant::now() + DEADLINE;
    while !answered {
        assert!(Instant::now() < deadline, "{ticks} ticks");
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, 2000) };
        assert_eq!(
            ready, 1,
            "the descriptor slept with {ticks} of 2000 ticks delivered"
        );
        bus.poll(Duration::ZERO).unwrap();
        events.drain(|event| {
            if let stdiobus_embed::Event::Message { line, .. } = event {
                ticks += usize::from(tick_seq(line.as_ref()).is_some());
                answered |= line.as_ref().starts_with(br#"{"jsonrpc":"2.0","id":1,"#);
            }
        });
    }
    assert_eq!((ticks, bus.stats().ring.lost.events), (2000, 0));
    // Nothing is held any more: the descriptor sleeps.
    bus.poll(Duration::ZERO).unwrap();
    events.drain(|_| {});
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(
        unsafe { libc::poll(&mut poll, 1, 50) },
        0,
        "idle, yet readable"
    );
}

#[test]
fn lines_of_most_of_the_ring_wait_for_room_and_arrive_whole() {
    // Responses of about 3 KiB in a ring of 4 KiB: each fits only in a nearly empty ring,
    // and the kernel reads them in pieces, so a line's end often waits for room while the
    // kernel holds its start.
    let (mut bus, mut events) = small_ring_bus();
    let ids: Vec<String> = (0..200).map(|id| format!("r{id}")).collect();
    let mut seen = Vec::new();
    for chunk in ids.chunks(20) {
        for id in chunk {
            bus.send(&request(id, 3000)).unwrap();
        }
        let want = seen.len() + chunk.len();
        common::poll_until(&mut bus, &mut events, &mut seen, "the responses", |seen| {
            seen.len() >= want
        });
    }
    let whole = seen
        .iter()
        .filter_map(Seen::json)
        .filter(|m| {
            m["result"]["params"]
                .as_str()
                .is_some_and(|p| p.len() == 3000)
        })
        .count();
    assert_eq!(answered_and_lost(&seen), (ids, Vec::new()));
    assert_eq!(whole, 200, "every response whole");
    assert_eq!(bus.stats().ring.lost.events, 0);
}
