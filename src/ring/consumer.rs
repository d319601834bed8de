//! The reading half of the ring: events borrowed in place, released in order.

use core::fmt;
use core::marker::PhantomData;

use super::record::{self, HEADER_LEN, Header};
use super::sync::Ordering;
use super::{KeepAlive, RingCore};
use crate::Event;
use crate::event::Kind;

/// The reading half of an [`EventRing`](super::EventRing).
///
/// Events come out in the order the kernel reported them, each borrowed straight from the
/// ring's storage: nothing is copied. The consumer may live on another thread than the
/// bus.
pub struct Consumer<'r> {
    core: &'r RingCore,
    /// What keeps `core` alive when this half shares the ring's ownership.
    _ring: KeepAlive,
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

// SAFETY: only this handle moves `tail` and reads published slots (module invariants 1-2).
unsafe impl Send for Consumer<'_> {}

impl<'r> Consumer<'r> {
    pub(super) fn new(core: &'r RingCore, ring: KeepAlive) -> Self {
        Self {
            core,
            _ring: ring,
            _not_sync: PhantomData,
        }
    }

    /// This half, sharing the ring's ownership.
    #[cfg(feature = "std")]
    pub(super) fn keeping(self, ring: std::sync::Arc<dyn Send + Sync>) -> Self {
        Self {
            _ring: Some(ring),
            ..self
        }
    }

    /// The oldest event not yet read, or `None` when the ring is empty.
    ///
    /// The event's slots are released when the returned [`EventRef`] is dropped.
    pub fn read(&mut self) -> Option<EventRef<'_>> {
        let slots = self.core.slot_count();
        let storage = self.core.storage.load(Ordering::Acquire);
        loop {
            let tail = self.core.tail.load(Ordering::Relaxed);
            if tail == self.core.head.load(Ordering::Acquire) {
                return None;
            }
            let index = tail & (slots - 1);
            // SAFETY: slot `index` is published (`tail != head`, read with Acquire) and
            // belongs to the consumer until `tail` moves past it (invariant 2).
            let start = unsafe { storage.add(index * self.core.slot_size()) };
            self.core.access.read(index, HEADER_LEN);
            // SAFETY: every slot is at least HEADER_LEN bytes and starts with a header.
            let header = Header::decode(unsafe { &*start.cast::<[u8; HEADER_LEN]>() });
            if header.kind == Kind::Padding {
                self.core
                    .tail
                    .store(tail.wrapping_add(slots - index), Ordering::Release);
                continue;
            }
            let len = header.len as usize;
            // SAFETY: the producer wrote `len` payload bytes right after the header, inside
            // the record's contiguous, published slots.
            let payload = unsafe { core::slice::from_raw_parts(start.add(HEADER_LEN), len) };
            let span = record::slots_for(len, self.core.slot_size());
            self.core.access.read(index, HEADER_LEN + len);
            return Some(EventRef {
                core: self.core,
                header,
                payload,
                release_to: tail.wrapping_add(span),
            });
        }
    }

    /// Hands every event currently in the ring to `f`, oldest first; returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(Event<'_>)) -> usize {
        let mut count = 0;
        while let Some(event) = self.read() {
            f(event.event());
            count += 1;
        }
        count
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.core.tail.load(Ordering::Relaxed) == self.core.head.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Consumer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("is_empty", &self.is_empty())
            .finish_non_exhaustive()
    }
}

/// One event, borrowed from the ring; its storage is released when this is dropped.
///
/// It borrows the [`Consumer`] mutably, so events are released one at a time, in order.
pub struct EventRef<'c> {
    core: &'c RingCore,
    header: Header,
    payload: &'c [u8],
    release_to: usize,
}

impl EventRef<'_> {
    /// The event, borrowing its bytes from the ring.
    pub fn event(&self) -> Event<'_> {
        Event::decode(self.header.kind, self.header.value, self.payload)
    }
}

impl fmt::Debug for EventRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.event().fmt(f)
    }
}

impl Drop for EventRef<'_> {
    fn drop(&mut self) {
        // The borrow of the record's bytes ends here, before its slots go back.
        #[cfg(all(test, loom))]
        {
            let len = HEADER_LEN + self.payload.len();
            let span = len.div_ceil(self.core.slot_size());
            let index = self.release_to.wrapping_sub(span) & (self.core.slot_count() - 1);
            self.core.access.read(index, len);
        }
        self.core.tail.store(self.release_to, Ordering::Release);
    }
}
