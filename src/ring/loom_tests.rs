//! Loom models of the producer/consumer protocol, run with
//! `RUSTFLAGS="--cfg loom" cargo test --lib --release loom`.
//!
//! Each model drives the real [`Writer`] and [`Consumer`]: a few steps on the model's own
//! thread put the ring in a known state, then a producer thread pushes while a consumer
//! thread reads, in every interleaving loom reaches within [`PREEMPTIONS`]. Then the
//! model's thread finishes alone: the consumer drains, the producer writes the marker for
//! its last losses, the consumer drains again, and everything read is checked against
//! everything pushed: stored events in order and intact, lost ones accounted for by a
//! marker (count, bytes, response ids) before the next stored event, and the producer's
//! loss counters equal to the markers' sum.
//!
//! Loom sees the atomics and, through the shadow cells of [`super::sync::SlotAccess`],
//! every access to a slot's bytes, so an ordering too weak to carry the bytes from one
//! side to the other fails as a causality violation: weakening any of the `Release`
//! stores of `head` or `tail`, or the `Acquire` loads of them, to `Relaxed` fails these
//! models.

extern crate std;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use super::{Consumer, EventRing, Loss, Producer, Writer};
use crate::event::Kind;
use crate::jsonrpc::response_id::response_id;
use crate::{Event, EventMask, LogLevel};

/// Preemptions per execution, unless `LOOM_MAX_PREEMPTIONS` says otherwise. Loom's search
/// with no bound at all misses interleavings (it never lets the producer store anything
/// in `loom_overflow_marker_reconciles_losses`, for one): the bounded search adds the
/// backtracking points that cover them. These models reach every execution they have by
/// 20 preemptions; raising the bound further finds nothing new.
const PREEMPTIONS: usize = 32;

/// Slot size of every model: 20 bytes of payload in one slot, 52 in two, 84 in three.
const SLOT: usize = 32;

#[derive(Clone, Copy, Debug)]
enum Step {
    /// The producer pushes one message.
    Push(&'static [u8]),
    /// The producer pushes one message that fits whatever the consumer did: the step
    /// fails unless it is stored, so the path the model is about is always taken.
    Fits(&'static [u8]),
    /// The producer writes the marker for its losses, if it fits.
    Flush,
    /// The consumer reads everything there is (setup only).
    Drain,
}
use Step::{Drain, Fits, Flush, Push};

/// A message of `N` bytes, each `fill`.
const fn bytes<const N: usize>(fill: u8) -> [u8; N] {
    [fill; N]
}

/// One slot, full.
const ONE_SLOT: &[u8] = &bytes::<20>(b'1');
/// Two slots.
const TWO_SLOTS: &[u8] = &bytes::<40>(b'2');
/// Three slots, the most a four-slot ring can store.
const THREE_SLOTS: &[u8] = &bytes::<84>(b'3');
/// Seven slots: never fits next to the reserved slot of an eight-slot ring.
const SEVEN_SLOTS: &[u8] = &bytes::<200>(b'7');
/// A response, whose id a marker carries when it is lost: exactly one slot's worth.
const RESPONSE: &[u8] = br#"{"id":7,"result":1}"#;

/// What the consumer read, copied out of the ring.
#[derive(Debug)]
enum Seen {
    Message(Vec<u8>),
    Lost {
        loss: Loss,
        ids: Vec<Vec<u8>>,
        more_ids: bool,
    },
}

/// Pushes through the same path the kernel callbacks use.
fn push(producer: &mut Producer<'_>, payload: &[u8]) -> bool {
    // SAFETY: the model holds the only producer and no bus exists.
    let mut writer = unsafe { Writer::from_core(producer.core) };
    writer.push_answering(Kind::Message, 0, payload, response_id)
}

fn read_one(consumer: &mut Consumer<'_>) -> Option<Seen> {
    let event = consumer.read()?;
    Some(match event.event() {
        Event::Message { line, .. } => Seen::Message(line.as_bytes().to_vec()),
        Event::Overflow(overflow) => Seen::Lost {
            loss: overflow.loss(),
            ids: overflow
                .lost_ids()
                .map(|id| id.as_bytes().to_vec())
                .collect(),
            more_ids: overflow.more_ids_lost(),
        },
        other => panic!("unexpected {other:?}"),
    })
}

fn drain(consumer: &mut Consumer<'_>, seen: &mut Vec<Seen>) {
    while let Some(event) = read_one(consumer) {
        seen.push(event);
    }
}

/// Runs the producer's steps, recording each push and whether it was stored.
fn produce(producer: &mut Producer<'_>, steps: &[Step], pushed: &mut Vec<(&'static [u8], bool)>) {
    for step in steps {
        match *step {
            Push(payload) => pushed.push((payload, push(producer, payload))),
            Fits(payload) => {
                assert!(push(producer, payload), "refused: {:?}", *step);
                pushed.push((payload, true));
            }
            Flush => producer.flush_loss(),
            Drain => unreachable!("the producer does not read"),
        }
    }
}

/// Checks what was read against what was pushed.
fn check(pushed: &[(&[u8], bool)], seen: &[Seen], lost: Loss) {
    let mut next = 0;
    let mut reported = Loss::default();
    for event in seen {
        match event {
            Seen::Message(bytes) => {
                let (payload, stored) = pushed[next];
                assert!(stored, "event {next} was refused but read: {seen:?}");
                assert_eq!(bytes.as_slice(), payload, "event {next}: {seen:?}");
                next += 1;
            }
            Seen::Lost {
                loss,
                ids,
                more_ids,
            } => {
                let count = usize::try_from(loss.events).unwrap();
                assert!(count > 0, "an empty marker: {seen:?}");
                let gap = &pushed[next..next + count];
                assert!(
                    gap.iter().all(|&(_, stored)| !stored),
                    "a marker at event {next} covers a stored event: {seen:?}"
                );
                let bytes: u64 = gap.iter().map(|(payload, _)| payload.len() as u64).sum();
                assert_eq!(loss.bytes, bytes, "bytes lost at event {next}");
                let expected: Vec<&[u8]> = gap
                    .iter()
                    .filter_map(|(payload, _)| response_id(payload))
                    .collect();
                assert!(
                    expected.starts_with(&ids.iter().map(Vec::as_slice).collect::<Vec<_>>()),
                    "ids lost at event {next}: {ids:?}, expected {expected:?}"
                );
                assert_eq!(*more_ids, ids.len() < expected.len());
                reported.events += loss.events;
                reported.bytes += loss.bytes;
                next += count;
            }
        }
    }
    assert_eq!(next, pushed.len(), "events lost without a marker: {seen:?}");
    assert_eq!(lost, reported, "the markers account for every loss");
}

/// The courses the executions of one model took: which of the concurrent pushes were
/// stored, and how many events the consumer read meanwhile. A model that loom ran only
/// once, or that never took the path it is about, would prove nothing.
#[derive(Debug, Default)]
struct Courses {
    executions: usize,
    outcomes: BTreeSet<(Vec<bool>, usize)>,
}

impl Courses {
    /// Whether the `n`th push of the concurrent phase was stored in some execution and
    /// refused in another.
    fn stored_or_not(&self, n: usize) -> bool {
        let stored = |wanted| self.outcomes.iter().any(|(pushes, _)| pushes[n] == wanted);
        stored(true) && stored(false)
    }

    /// The most events the consumer read during the concurrent phase.
    fn most_read(&self) -> usize {
        self.outcomes
            .iter()
            .map(|&(_, read)| read)
            .max()
            .unwrap_or(0)
    }
}

/// `setup` on the model's thread, which must leave `head` at `head_after_setup`; then
/// `during` on a producer thread while a consumer thread makes `reads` attempts to read;
/// then the model's thread finishes alone and checks the result. Panics (loom reports the
/// interleaving) on any failure; returns the courses the executions took.
///
/// Both sides run on threads of their own: when the model's thread itself reads while a
/// thread it just spawned loads an atomic, loom 0.7 explores one interleaving only
/// (tokio-rs/loom#392).
fn model<const SLOTS: usize>(
    setup: &'static [Step],
    head_after_setup: usize,
    during: &'static [Step],
    reads: usize,
) -> Courses {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    let courses = Arc::new(Mutex::new(Courses::default()));
    let record = Arc::clone(&courses);
    builder.check(move || {
        // Halves that own the ring, `'static` for loom's threads; it is freed with them.
        let (producer, consumer) = EventRing::<SLOTS, SLOT>::boxed().split_owned().unwrap();
        let outcome = run(producer, consumer, setup, head_after_setup, during, reads);
        let mut courses = record.lock().unwrap();
        courses.executions += 1;
        courses.outcomes.insert(outcome);
    });
    let courses = Arc::into_inner(courses).unwrap().into_inner().unwrap();
    assert!(courses.executions > 1, "loom explored nothing: {courses:?}");
    courses
}

/// One execution of [`model`] on the ring of `producer` and `consumer`; returns its course.
fn run(
    mut producer: Producer<'static>,
    mut consumer: Consumer<'static>,
    setup: &'static [Step],
    head_after_setup: usize,
    during: &'static [Step],
    reads: usize,
) -> (Vec<bool>, usize) {
    producer.prepare(EventMask::ALL, LogLevel::Debug);
    let (mut pushed, mut seen) = (Vec::new(), Vec::new());
    for step in setup {
        match step {
            Drain => drain(&mut consumer, &mut seen),
            step => produce(&mut producer, core::slice::from_ref(step), &mut pushed),
        }
    }
    assert_eq!(
        producer.core.head.load(super::sync::Ordering::Relaxed),
        head_after_setup
    );

    let writer = loom::thread::spawn(move || {
        let mut pushed = Vec::new();
        produce(&mut producer, during, &mut pushed);
        (producer, pushed)
    });
    let reader = loom::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..reads {
            seen.extend(read_one(&mut consumer));
        }
        (consumer, seen)
    });
    let (mut producer, during_pushed) = writer.join().unwrap();
    let (mut consumer, during_seen) = reader.join().unwrap();
    let outcome = (
        during_pushed.iter().map(|&(_, stored)| stored).collect(),
        during_seen.len(),
    );
    pushed.extend(during_pushed);
    seen.extend(during_seen);

    drain(&mut consumer, &mut seen);
    producer.flush_loss();
    drain(&mut consumer, &mut seen);
    check(&pushed, &seen, producer.lost());
    outcome
}

/// Single- and multi-slot records pushed into an empty ring while the consumer reads:
/// the fourth wraps around to slot 0 if the consumer made room, or is lost and reported.
#[test]
fn loom_push_pop_multi_slot_and_wrap_around() {
    let courses = model::<4>(
        &[],
        0,
        &[Fits(b"a"), Fits(TWO_SLOTS), Push(ONE_SLOT), Push(b"")],
        4,
    );
    assert!(
        courses.stored_or_not(2) && courses.stored_or_not(3),
        "{courses:?}"
    );
    assert_eq!(courses.most_read(), 4, "{courses:?}");
}

/// With both positions at slot 3 of 4, a two-slot record does not fit at the tail: slot 3
/// becomes padding and the record starts at slot 0, while the consumer reads the padding,
/// the record and whatever follows.
#[test]
fn loom_skip_to_start_for_a_record_that_does_not_fit_at_the_tail() {
    let courses = model::<4>(
        &[Fits(b"x"), Fits(b"y"), Fits(b"z"), Drain],
        3,
        &[Fits(TWO_SLOTS), Push(b"after"), Push(TWO_SLOTS)],
        3,
    );
    // The last record skips to slot 0 again when the consumer has emptied the ring.
    assert!(
        courses.stored_or_not(1) && courses.stored_or_not(2),
        "{courses:?}"
    );
}

/// A full ring loses a response; as the consumer frees slots the producer writes the
/// marker (with the response's id) ahead of its next event, or flushes it on its own, or
/// loses more and reports them together.
#[test]
fn loom_overflow_marker_reconciles_losses() {
    let courses = model::<4>(
        &[Fits(b"a"), Fits(b"b"), Fits(b"c"), Push(RESPONSE)],
        3,
        &[Push(b"d"), Flush, Push(ONE_SLOT)],
        4,
    );
    assert!(
        courses.stored_or_not(0) && courses.stored_or_not(1),
        "{courses:?}"
    );
}

/// One push writes the marker, padding and the record: the marker takes slot 6 of 8, slot
/// 7 is padding and the two-slot record wraps to slots 0-1.
#[test]
fn loom_marker_and_padding_in_one_push() {
    let courses = model::<8>(
        &[
            Fits(b"1"),
            Fits(b"2"),
            Fits(b"3"),
            Fits(b"4"),
            Fits(b"5"),
            Drain,
            Fits(b"6"),
            Push(SEVEN_SLOTS),
        ],
        6,
        &[Fits(TWO_SLOTS), Push(THREE_SLOTS), Push(b"last")],
        3,
    );
    assert!(
        courses.stored_or_not(1) && courses.stored_or_not(2),
        "{courses:?}"
    );
}
