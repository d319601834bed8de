//! The event ring: caller-provided, fixed-capacity storage that the kernel's callbacks
//! write into and the host reads back in place.
//!
//! # Model
//!
//! The storage is `SLOTS` preallocated buffers ("slots") of `SLOT_SIZE` bytes each, laid
//! out back to back. Every event becomes one record ([`record`]) that starts at a slot
//! boundary and covers as many contiguous slots as it needs, so a message longer than one
//! slot is still stored whole and read back as a single `&[u8]`. When a record does not fit
//! between the write position and the end of the storage, the rest of the storage is
//! marked as padding and the record starts again at slot 0 (a "bip buffer").
//!
//! One slot is always kept free for an overflow marker, so when an event cannot be stored
//! the consumer is told, in order, how many events and bytes were lost.
//!
//! # Invariants the `unsafe` code relies on
//!
//! 1. [`EventRing::split`] succeeds at most once, so there is at most one [`Producer`] and
//!    one [`Consumer`] per ring, each holding a shared borrow of it. The halves of
//!    `EventRing::split_owned` (`owned`) also hold a share of the ring's ownership, which
//!    keeps the ring where it is for as long as they hold that borrow.
//! 2. `head` (slots written, monotonic, wrapping) is stored only by the producer, `tail`
//!    (slots released) only by the consumer. Slots in `tail..head` belong to the consumer,
//!    all others to the producer. The producer publishes with a `Release` store of `head`
//!    after writing; the consumer reads `head` with `Acquire` before reading bytes, and the
//!    mirror image holds for `tail`.
//! 3. The producer's bookkeeping ([`ProducerState`]) is touched only through the one
//!    `Producer`, or by a kernel callback that runs inside a call made through the bus that
//!    owns that `Producer`: never from two places at once.
//!
//! Invariant 2 is checked by loom models of the real producer and consumer (`loom_tests`,
//! run with `RUSTFLAGS="--cfg loom" cargo test --lib --release loom`), which see every
//! access to a slot's bytes as well as the atomics.

mod consumer;
#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(feature = "std")]
mod owned;
mod producer;
pub(crate) mod record;
mod sync;

use core::cell::UnsafeCell;
use core::fmt;

pub use consumer::{Consumer, EventRef};
pub use producer::Producer;
pub(crate) use producer::{Room, Writer};
use sync::{AtomicBool, AtomicPtr, AtomicUsize, SlotAccess, const_unless_loom};

use crate::EventMask;
use crate::event::{Loss, lost_ids};

/// Fixed-capacity storage for the events of one bus: `SLOTS` buffers of `SLOT_SIZE` bytes.
///
/// `SLOTS` must be a power of two (at least 2) and `SLOT_SIZE` at least 28 bytes; both are
/// checked at compile time. A record takes 12 bytes of header plus its payload, rounded up
/// to whole slots; one slot stays reserved for the overflow marker, so the largest event
/// that can ever be stored is `(SLOTS - 1) * SLOT_SIZE - 12` bytes.
///
/// The ring can live in a `static`, on the stack, or on the heap:
///
/// ```
/// use stdiobus_embed::EventRing;
///
/// static RING: EventRing<64, 1024> = EventRing::new();
/// let (producer, consumer) = RING.split().expect("first split");
/// # drop((producer, consumer));
///
/// let local = EventRing::<8, 256>::new();
/// let (_producer, _consumer) = local.split().unwrap();
///
/// # #[cfg(feature = "std")] {
/// let boxed = EventRing::<1024, 4096>::boxed(); // 4 MiB, never on the stack
/// let (_producer, _consumer) = boxed.split().unwrap();
///
/// // Halves that own the ring between them: `'static`, for a thread or an async task.
/// let (_producer, _consumer) = EventRing::<1024, 4096>::boxed().split_owned().unwrap();
/// # }
/// ```
#[repr(C)]
pub struct EventRing<const SLOTS: usize, const SLOT_SIZE: usize> {
    core: RingCore,
    slots: UnsafeCell<[[u8; SLOT_SIZE]; SLOTS]>,
}

// SAFETY: the storage is shared between exactly one producer and one consumer (invariant
// 1), which coordinate through atomics (invariant 2); `split` itself is an atomic swap.
unsafe impl<const SLOTS: usize, const SLOT_SIZE: usize> Sync for EventRing<SLOTS, SLOT_SIZE> {}

// SAFETY: a ring is bytes and atomics but for the producer's overflow handler pointer,
// which only the producer reaches (invariant 3) and only calls inside the bus's calls, on
// their thread; moving the ring, or dropping it on another thread, reaches nothing behind
// that pointer (the ring has no `Drop`).
unsafe impl<const SLOTS: usize, const SLOT_SIZE: usize> Send for EventRing<SLOTS, SLOT_SIZE> {}

impl<const SLOTS: usize, const SLOT_SIZE: usize> EventRing<SLOTS, SLOT_SIZE> {
    const VALID: () = {
        assert!(
            SLOTS >= 2 && SLOTS.is_power_of_two(),
            "EventRing: SLOTS must be a power of two, at least 2"
        );
        assert!(
            SLOT_SIZE >= record::MIN_SLOT_SIZE,
            "EventRing: SLOT_SIZE must be at least 28 bytes"
        );
        assert!(
            SLOT_SIZE <= u32::MAX as usize && SLOTS <= u32::MAX as usize,
            "EventRing: too large"
        );
    };

    const_unless_loom! {
        /// An empty ring. `const`, so it can initialise a `static`.
        pub fn new() -> Self {
            let () = Self::VALID;
            Self {
                core: RingCore::new(SLOTS, SLOT_SIZE),
                slots: UnsafeCell::new([[0; SLOT_SIZE]; SLOTS]),
            }
        }
    }

    /// An empty ring on the heap, allocated zeroed in place so that a large ring never
    /// passes through the stack.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn boxed() -> std::boxed::Box<Self> {
        use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
        if cfg!(all(test, loom)) {
            // Loom's atomics are not valid as zeroes; its models use small rings anyway.
            return std::boxed::Box::new(Self::new());
        }
        let () = Self::VALID;
        let layout = Layout::new::<Self>();
        // SAFETY: `layout` has a non-zero size (the slots are at least 2 * 28 bytes).
        let raw = unsafe { alloc_zeroed(layout) }.cast::<Self>();
        if raw.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: all zero bytes is a valid `Self`, the very value `new` builds (atomics at
        // 0, `false` and null, zero counters, zeroed storage); `raw` came from the global
        // allocator with `Self`'s layout.
        unsafe { std::boxed::Box::from_raw(raw) }
    }

    /// Splits the ring into its producer half (hand it to [`crate::Bus::create`]) and its
    /// consumer half (read events with it, on any thread). Both borrow the ring; for halves
    /// that own it, see `EventRing::split_owned` (feature `std`).
    ///
    /// A ring splits once in its life; a second call returns [`AlreadySplit`], which keeps a
    /// `static` ring from ever getting two producers.
    pub fn split(&self) -> Result<(Producer<'_>, Consumer<'_>), AlreadySplit> {
        use sync::Ordering;
        if self.core.split.swap(true, Ordering::AcqRel) {
            return Err(AlreadySplit);
        }
        let relaxed = core::sync::atomic::Ordering::Relaxed;
        self.core.slot_count.store(SLOTS, relaxed);
        self.core.slot_size.store(SLOT_SIZE, relaxed);
        self.core
            .storage
            .store(self.slots.get().cast::<u8>(), Ordering::Release);
        Ok((
            Producer::new(&self.core, KeepAlive::default()),
            Consumer::new(&self.core, KeepAlive::default()),
        ))
    }

    /// Total storage in bytes.
    pub const fn capacity(&self) -> usize {
        SLOTS * SLOT_SIZE
    }
}

impl<const SLOTS: usize, const SLOT_SIZE: usize> Default for EventRing<SLOTS, SLOT_SIZE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize, const SLOT_SIZE: usize> fmt::Debug for EventRing<SLOTS, SLOT_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRing")
            .field("slots", &SLOTS)
            .field("slot_size", &SLOT_SIZE)
            .finish_non_exhaustive()
    }
}

/// [`EventRing::split`] was called a second time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlreadySplit;

impl fmt::Display for AlreadySplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event ring was already split into a producer and a consumer")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AlreadySplit {}

/// What a half keeps alive besides the ring it borrows: the ring itself, for the halves of
/// `EventRing::split_owned`; nothing otherwise.
#[cfg(feature = "std")]
type KeepAlive = Option<std::sync::Arc<dyn Send + Sync>>;
#[cfg(not(feature = "std"))]
type KeepAlive = ();

/// What both halves share, with the storage's size erased so that the kernel callbacks,
/// which only get a `void *`, can reach it.
pub(crate) struct RingCore {
    /// Slots written and published by the producer.
    head: AtomicUsize,
    /// Slots released by the consumer.
    tail: AtomicUsize,
    split: AtomicBool,
    /// Start of the slot storage; set once, by `split`.
    storage: AtomicPtr<u8>,
    /// The storage's shape, zero until `split` sets it. An unsplit ring is then all zero
    /// bytes, so a `static` one lives in `.bss` and costs the executable file nothing.
    /// Plain atomics, not loom's: `split` stores them before its `Release` store of
    /// `storage`, and every reader comes after that, so `Relaxed` is enough.
    slot_count: core::sync::atomic::AtomicUsize,
    slot_size: core::sync::atomic::AtomicUsize,
    /// Owned by the single producer (invariant 3).
    producer: UnsafeCell<ProducerState>,
    /// The slots' bytes as the loom models see them; nothing in other builds.
    access: SlotAccess,
}

impl RingCore {
    const_unless_loom! {
        /// `slot_count` and `slot_size` reach only the loom models' view of the slots; the
        /// ring itself learns them at `split`.
        fn new(slot_count: usize, slot_size: usize) -> Self {
            Self {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                split: AtomicBool::new(false),
                storage: AtomicPtr::new(core::ptr::null_mut()),
                slot_count: core::sync::atomic::AtomicUsize::new(0),
                slot_size: core::sync::atomic::AtomicUsize::new(0),
                producer: UnsafeCell::new(ProducerState::new()),
                access: SlotAccess::new(slot_count, slot_size),
            }
        }
    }

    /// Slots in the storage; set by `split`.
    fn slot_count(&self) -> usize {
        self.slot_count.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes per slot; set by `split`.
    fn slot_size(&self) -> usize {
        self.slot_size.load(core::sync::atomic::Ordering::Relaxed)
    }
}

/// The producer's own bookkeeping. All zeroes is a valid (empty) state.
pub(crate) struct ProducerState {
    /// Which kinds of event are recorded; the others are skipped, not counted as lost.
    mask: EventMask,
    /// Log lines below this level are skipped: the kernel reports every level.
    min_log_level: i32,
    /// Events stored since the ring was split, overflow markers not included.
    stored: u64,
    /// The most slots ever in use at once, padding and markers included.
    high_water_slots: usize,
    /// Events handed to the overflow handler instead of being stored.
    handed_over: u64,
    /// Receives what does not fit, if set; see [`Producer::set_overflow_handler`] and
    /// [`Producer::lend_overflow_handler`]. Its real lifetime is the bus's, or a call's,
    /// and whoever set it clears it before that ends.
    overflow_handler: Option<core::ptr::NonNull<StoredHandler>>,
    /// Lost since the ring was split.
    lost_events: u64,
    lost_bytes: u64,
    /// Lost and not yet reported to the consumer by a marker.
    unreported_events: u64,
    unreported_bytes: u64,
    /// Ids of the responses among those.
    unreported_ids: lost_ids::PendingIds,
}

impl ProducerState {
    const fn new() -> Self {
        Self {
            mask: EventMask::empty(),
            min_log_level: 0,
            stored: 0,
            high_water_slots: 0,
            handed_over: 0,
            overflow_handler: None,
            lost_events: 0,
            lost_bytes: 0,
            unreported_events: 0,
            unreported_bytes: 0,
            unreported_ids: lost_ids::PendingIds::new(),
        }
    }
}

/// A function, with whatever context it captures, that receives each event the ring
/// cannot store, synchronously inside `poll`. It runs inside a kernel callback: it must
/// not block, and a panic in it aborts the process.
pub type OverflowHandler<'h> = dyn for<'e> FnMut(crate::Event<'e>) + Send + 'h;

/// An overflow handler as the producer's state keeps it: the lifetime of its borrow erased,
/// and not necessarily `Send`, because it is called only from inside the calls of the bus
/// that installed it, on that bus's thread.
type StoredHandler = dyn for<'e> FnMut(crate::Event<'e>) + 'static;

/// What the ring has seen since it was split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct RingStats {
    /// Events stored (overflow markers not counted).
    pub stored: u64,
    /// Events that could not be stored, and their payload bytes.
    pub lost: Loss,
    /// Events that did not fit and went to the overflow handler instead (not lost).
    pub handed_over: u64,
    /// The most storage ever in use at once, in bytes of whole slots.
    pub high_water: usize,
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::record;
    use super::*;
    use crate::Event;
    use crate::Overflow;
    use crate::event::Kind;
    use crate::jsonrpc::response_id::response_id;

    /// Pushes through the same path the kernel callbacks use.
    fn push(producer: &mut Producer<'_>, payload: &[u8]) -> bool {
        // SAFETY: the test holds the only producer and no bus exists.
        let mut writer = unsafe { Writer::from_core(producer.core) };
        writer.push_answering(Kind::Message, 0, payload, response_id)
    }

    fn read_all(consumer: &mut Consumer<'_>) -> Vec<Event<'static>> {
        let mut out = Vec::new();
        consumer.drain(|event| {
            out.push(match event {
                Event::Message { line, .. } => message(line.as_bytes()),
                Event::Overflow(overflow) => {
                    Event::Overflow(lost(overflow.loss().events, overflow.loss().bytes))
                }
                other => panic!("unexpected {other:?}"),
            })
        });
        out
    }

    /// A marker for `events` and `bytes` lost, with no response ids.
    fn lost(events: u64, bytes: u64) -> Overflow<'static> {
        let mut payload = std::vec::Vec::from(crate::event::encode_loss(events, bytes));
        payload.extend_from_slice(&[0, 0]);
        Overflow::decode(std::vec::Vec::leak(payload))
    }

    fn message(bytes: &[u8]) -> Event<'static> {
        Event::Message {
            worker: Some(crate::WorkerId::new(0)),
            line: crate::Bytes::leak(bytes.to_vec()),
        }
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn events_come_out_in_order_and_intact() {
        let ring = EventRing::<8, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        producer.prepare(EventMask::ALL, crate::LogLevel::Debug);
        assert!(push(&mut producer, b"one"));
        assert!(push(&mut producer, b""));
        assert!(push(&mut producer, b"three"));
        assert_eq!(
            read_all(&mut consumer),
            [message(b"one"), message(b""), message(b"three")]
        );
        assert!(consumer.is_empty());
        assert_eq!(producer.stored(), 3);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_record_longer_than_a_slot_reads_back_whole() {
        let ring = EventRing::<8, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        let long: Vec<u8> = (0..150).collect(); // 12 + 150 bytes: 6 slots
        assert!(push(&mut producer, &long));
        assert_eq!(read_all(&mut consumer), [message(&long)]);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_record_that_does_not_fit_at_the_tail_starts_at_slot_zero() {
        let ring = EventRing::<8, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        // Move both positions to slot 5 of 8.
        for _ in 0..5 {
            assert!(push(&mut producer, b"x"));
        }
        assert_eq!(read_all(&mut consumer).len(), 5);
        // Four slots do not fit in slots 5..8: three slots of padding, then slots 0..4.
        let four_slots = [7u8; 32 * 4 - 12];
        assert!(push(&mut producer, &four_slots));
        // Padding, record and the reserved slot fill the ring until the record is read.
        assert!(!push(&mut producer, b"refused"));
        assert_eq!(read_all(&mut consumer), [message(&four_slots)]);
        assert!(push(&mut producer, b"after"));
        assert_eq!(
            read_all(&mut consumer),
            [Event::Overflow(lost(1, 7)), message(b"after")]
        );
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn loss_is_counted_and_reported_in_order() {
        let ring = EventRing::<4, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        // Three one-slot events fill the ring up to its reserved slot.
        assert!(push(&mut producer, b"a"));
        assert!(push(&mut producer, b"b"));
        assert!(push(&mut producer, b"c"));
        assert!(!push(&mut producer, b"lost-1"));
        assert!(!push(&mut producer, b"lost-22"));
        assert_eq!(
            producer.lost(),
            Loss {
                events: 2,
                bytes: 13
            }
        );
        // The marker goes into the reserved slot.
        producer.flush_loss();
        assert_eq!(
            read_all(&mut consumer),
            [
                message(b"a"),
                message(b"b"),
                message(b"c"),
                Event::Overflow(lost(2, 13))
            ]
        );
        assert!(push(&mut producer, b"d"));
        assert_eq!(read_all(&mut consumer), [message(b"d")]);
        assert_eq!(
            producer.lost(),
            Loss {
                events: 2,
                bytes: 13
            }
        );
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_marker_precedes_the_next_stored_event() {
        let ring = EventRing::<4, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        for byte in [b"a", b"b", b"c"] {
            assert!(push(&mut producer, byte));
        }
        assert!(!push(&mut producer, b"lost"));
        assert_eq!(read_all(&mut consumer).len(), 3);
        // No flush in between: the next push writes the marker first.
        assert!(push(&mut producer, b"next"));
        assert_eq!(
            read_all(&mut consumer),
            [Event::Overflow(lost(1, 4)), message(b"next")]
        );
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn free_space_and_high_water_follow_the_slots_in_use() {
        let ring = EventRing::<8, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        assert_eq!(producer.capacity(), 256);
        assert_eq!(producer.free_bytes(), 7 * 32, "one slot is the marker's");
        assert!(push(&mut producer, &[0; 50])); // 2 slots
        assert!(push(&mut producer, b"x"));
        assert_eq!(producer.free_bytes(), 4 * 32);
        read_all(&mut consumer);
        assert_eq!(producer.free_bytes(), 7 * 32);
        let stats = producer.stats();
        assert_eq!(stats.stored, 2);
        assert_eq!(stats.high_water, 3 * 32);
        assert_eq!(stats.lost, Loss::default());
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn an_event_larger_than_the_ring_is_lost_not_cut() {
        let ring = EventRing::<4, 32>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        assert!(!push(&mut producer, &[1u8; 4 * 32]));
        producer.flush_loss();
        assert_eq!(read_all(&mut consumer), [Event::Overflow(lost(1, 128))]);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_consumer_on_another_thread_sees_every_byte_in_order_or_a_loss_count() {
        use core::sync::atomic::{AtomicBool, Ordering};
        const EVENTS: u64 = 1_000_000;
        let ring = EventRing::boxed_for_test();
        let (mut producer, mut consumer) = ring.split().unwrap();
        let done = AtomicBool::new(false);
        let body = |seq: u64, buffer: &mut Vec<u8>| {
            // Sizes from 0 to a little over 3 slots, every byte derived from `seq`.
            let len = (seq as usize * 37) % 200;
            buffer.clear();
            buffer.extend((0..len).map(|i| (seq as usize + i) as u8));
            buffer.extend_from_slice(&seq.to_le_bytes());
        };
        let (lost, delivered) = std::thread::scope(|scope| {
            let producer_thread = scope.spawn(|| {
                let mut buffer = Vec::new();
                for seq in 0..EVENTS {
                    body(seq, &mut buffer);
                    push(&mut producer, &buffer);
                }
                // Whatever was lost last is reported once a slot frees up.
                while !done.load(Ordering::Acquire) {
                    producer.flush_loss();
                    std::thread::yield_now();
                }
                producer.lost()
            });
            let (mut next, mut delivered, mut skipped) = (0u64, 0u64, 0u64);
            let mut expected = Vec::new();
            while next < EVENTS {
                let Some(event) = consumer.read() else {
                    std::thread::yield_now();
                    continue;
                };
                match event.event() {
                    Event::Overflow(overflow) => {
                        next += overflow.loss().events;
                        skipped += overflow.loss().events;
                    }
                    Event::Message { line, .. } => {
                        let bytes = line.as_bytes();
                        let seq = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
                        assert!(seq >= next, "event {seq} after {next}: out of order");
                        assert_eq!(seq, next, "events lost without a marker");
                        body(seq, &mut expected);
                        assert!(bytes == expected.as_slice(), "event {seq} corrupted");
                        next += 1;
                        delivered += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            done.store(true, Ordering::Release);
            let lost = producer_thread.join().unwrap();
            assert_eq!(lost.events, skipped, "markers account for every loss");
            (lost, delivered)
        });
        assert_eq!(lost.events + delivered, EVENTS);
        assert!(delivered > 0);
    }

    /// The payloads of the messages among `events`.
    fn lines_of(event: Event<'_>, into: &mut Vec<Vec<u8>>) {
        if let Event::Message { line, .. } = event {
            into.push(line.as_bytes().to_vec());
        }
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_lent_handler_takes_what_does_not_fit_until_it_is_given_back() {
        let ring = EventRing::<4, 32>::new();
        let (mut producer, _consumer) = ring.split().unwrap();
        producer.prepare(EventMask::ALL, crate::LogLevel::Debug);
        for byte in [b"a", b"b", b"c"] {
            assert!(push(&mut producer, byte));
        }
        let (mut for_the_bus, mut for_the_call) = (Vec::new(), Vec::new());
        let mut set = |event: Event<'_>| lines_of(event, &mut for_the_bus);
        // SAFETY: the test holds the only producer, and clears the handler below, before
        // `set` goes.
        unsafe { producer.set_overflow_handler(Some(&mut set)) };
        {
            let mut lent = |event: Event<'_>| lines_of(event, &mut for_the_call);
            // SAFETY: the guard is dropped below, while `lent` lives, with no push running.
            let guard = unsafe { producer.lend_overflow_handler(&mut lent) };
            assert!(!push(&mut producer, b"one call"));
            drop(guard);
        }
        assert!(!push(&mut producer, b"the bus"));
        // A handler that panics is given back all the same.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut panics = |_: Event<'_>| panic!("a handler that panics");
            // SAFETY: as above; the guard drops as the panic unwinds out of the push.
            let _guard = unsafe { producer.lend_overflow_handler(&mut panics) };
            push(&mut producer, b"panics")
        }));
        assert!(outcome.is_err());
        assert!(!push(&mut producer, b"the bus again"));
        // SAFETY: clearing cannot dangle.
        unsafe { producer.set_overflow_handler(None) };
        assert!(!push(&mut producer, b"lost"));
        assert_eq!(for_the_call, [b"one call".to_vec()]);
        assert_eq!(
            for_the_bus,
            [b"the bus".to_vec(), b"the bus again".to_vec()]
        );
        assert_eq!(producer.stats().handed_over, 3);
        assert_eq!(producer.lost().events, 1);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn owned_halves_go_to_threads_of_their_own_and_keep_the_ring_alive() {
        const EVENTS: u64 = 20_000;
        let (mut producer, mut consumer) = EventRing::<16, 64>::boxed().split_owned().unwrap();
        producer.prepare(EventMask::ALL, crate::LogLevel::Debug);
        // `'static`: the producer moves into a thread of its own.
        let writer = std::thread::spawn(move || {
            for seq in 0..EVENTS {
                while !push(&mut producer, &seq.to_le_bytes()) {
                    // Full: the loss is counted; wait for room and send it again, so that
                    // every event arrives.
                    std::thread::yield_now();
                }
            }
            producer
        });
        let (mut next, mut lost) = (0, 0);
        while next < EVENTS {
            let Some(event) = consumer.read() else {
                std::thread::yield_now();
                continue;
            };
            match event.event() {
                Event::Message { line, .. } => {
                    let seq = u64::from_le_bytes(line.as_bytes().try_into().unwrap());
                    assert_eq!(seq, next, "in order, each once");
                    next += 1;
                }
                Event::Overflow(overflow) => lost += overflow.loss().events,
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut producer = writer.join().unwrap();
        // The consumer goes first; the producer's share keeps the ring for it.
        drop(consumer);
        producer.flush_loss();
        assert!(push(&mut producer, b"after the consumer"));
        assert_eq!(producer.stored(), EVENTS + 1);
        assert!(lost <= producer.lost().events);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_ring_split_before_is_not_split_again_owned() {
        let ring = EventRing::<4, 32>::boxed();
        drop(ring.split().unwrap());
        assert_eq!(ring.split_owned().unwrap_err(), AlreadySplit);
    }

    impl EventRing<16, 64> {
        fn boxed_for_test() -> std::boxed::Box<Self> {
            Self::boxed()
        }
    }

    /// The room the bus would see now, for lines of a kernel step.
    fn room<'a>(producer: &Producer<'a>) -> Room<'a> {
        // SAFETY: the test holds the only producer and no bus exists; the room is dropped
        // before the next push.
        unsafe { Writer::from_core(producer.core) }.into_room()
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn lines_admitted_together_are_all_stored_when_a_later_one_waits_for_the_wrap() {
        // 16 slots of 64 bytes, written up to slot 8 and read up to slot 3: 11 free.
        let ring = EventRing::<16, 64>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        producer.prepare(EventMask::ALL, crate::LogLevel::Debug);
        for _ in 0..8 {
            assert!(push(&mut producer, b"one slot"));
        }
        for _ in 0..3 {
            drop(consumer.read().expect("an event"));
        }
        let three = [b'a'; 3 * 64 - 12];
        let six = [b'b'; 6 * 64 - 12];
        {
            let mut room = room(&producer);
            assert!(room.admits(three.len()));
            assert!(!room.admits(six.len()), "it would need the end padded");
        }
        // The kernel now stores the line admitted first: it must fit.
        assert!(push(&mut producer, &three));
        assert_eq!(producer.lost().events, 0);
    }

    #[test]
    #[cfg_attr(loom, ignore = "loom's atomics work only inside a model")]
    fn a_line_the_room_admits_is_stored_and_every_line_that_fits_is_admitted_in_time() {
        // Line lengths from one byte to more than the ring, read at random moments: an
        // admitted line is never lost, a refused one is admitted once the ring has been
        // read empty (twice at most: once for the padding at the end), and only a line
        // larger than the ring is lost.
        let ring = EventRing::<16, 64>::new();
        let (mut producer, mut consumer) = ring.split().unwrap();
        producer.prepare(EventMask::ALL, crate::LogLevel::Debug);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let line = [b'x'; 16 * 64];
        for _ in 0..20_000 {
            let len = (next() % (16 * 64)) as usize;
            let never = record::slots_for(len, 64) + 1 > 16;
            let mut drains = 0;
            while !room(&producer).admits(len) {
                assert!(drains < 2, "a {len}-byte line was never admitted");
                consumer.drain(|_| {});
                drains += 1;
            }
            let lost = producer.lost().events;
            push(&mut producer, &line[..len]);
            assert_eq!(
                producer.lost().events - lost,
                u64::from(never),
                "{len} bytes"
            );
            // As at the end of every step.
            producer.flush_loss();
            if next() % 4 == 0 {
                consumer.drain(|_| {});
            }
        }
    }
}
