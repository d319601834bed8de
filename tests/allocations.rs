//! Steady-state traffic makes no heap allocation in this crate.
//!
//! A counting global allocator sees every Rust allocation of the thread that drives the
//! bus; the kernel's own C allocations do not go through it (the kernel was measured to
//! make none per message either, see the README).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{DEADLINE, start_echo};
use stdiobus_embed::Event;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUND_TRIPS: usize = 10_000;

#[test]
fn ten_thousand_round_trips_allocate_nothing() {
    let (mut bus, mut events) = start_echo(1);
    // Requests are built up front; each carries its number as a fixed-width string id so
    // the response can be matched without parsing.
    let requests: Vec<Vec<u8>> = (0..ROUND_TRIPS + 100)
        .map(|n| format!(r#"{{"jsonrpc":"2.0","id":"{n:08}","method":"m"}}"#).into_bytes())
        .collect();
    let deadline = Instant::now() + DEADLINE * 6;

    let mut round_trip = |request: &[u8], counting: bool| {
        COUNTING.with(|c| c.set(counting));
        bus.send(request).unwrap();
        let id = &request[22..32]; // `"NNNNNNNN"`, quotes included
        let mut answered = false;
        while !answered {
            bus.poll(Duration::from_millis(100)).unwrap();
            while let Some(event) = events.read() {
                if let Event::Message { line, .. } = event.event() {
                    answered |= line.as_bytes().windows(id.len()).any(|w| w == id);
                }
            }
            assert!(Instant::now() < deadline, "no response to {request:?}");
        }
        COUNTING.with(|c| c.set(false));
    };

    for request in &requests[..100] {
        round_trip(request, false); // warm-up: first-use allocations are not steady state
    }
    for request in &requests[100..] {
        round_trip(request, true);
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
    // The counter does count: the same thread allocating is seen.
    COUNTING.with(|c| c.set(true));
    drop(std::hint::black_box(Box::new(1u8)));
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 1);
}
