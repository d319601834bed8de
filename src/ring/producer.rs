//! The writing half of the ring, owned by a bus and reached by the kernel callbacks.

use core::fmt;
use core::marker::PhantomData;
use core::ptr;

use super::record::{self, HEADER_LEN, Header};
use super::sync::Ordering;
use super::{KeepAlive, OverflowHandler, ProducerState, RingCore, RingStats, StoredHandler};
use crate::event::{Kind, LOSS_LEN, Loss, RestartReport, encode_loss, lost_ids};
use crate::{EventMask, LogLevel, WorkerId};

/// The writing half of an [`EventRing`](super::EventRing).
///
/// Hand it to [`Bus::create`](crate::Bus::create); the bus's callbacks copy every event
/// into the ring through it. Get it back from a bus that is done with
/// [`Bus::into_producer`](crate::Bus::into_producer) to reuse the ring.
pub struct Producer<'r> {
    pub(super) core: &'r RingCore,
    /// What keeps `core` alive when this half shares the ring's ownership.
    _ring: KeepAlive,
    // A producer may move to another thread but not be shared: the callbacks assume one
    // writer.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

// SAFETY: the producer's state is only ever reached through this one handle (or callbacks
// made on its behalf), and the storage protocol is atomic (module invariants 1-3).
unsafe impl Send for Producer<'_> {}

impl<'r> Producer<'r> {
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

    /// Events and bytes that could not be stored since the ring was split.
    pub fn lost(&self) -> Loss {
        // SAFETY: `&self` excludes the callbacks, which run only inside `&mut` bus calls.
        let state = unsafe { &*self.core.producer.get() };
        Loss {
            events: state.lost_events,
            bytes: state.lost_bytes,
        }
    }

    /// Events stored since the ring was split (overflow markers not counted).
    pub fn stored(&self) -> u64 {
        // SAFETY: as in `lost`.
        unsafe { (*self.core.producer.get()).stored }
    }

    /// Events delivered since the ring was split: stored, or handed to the overflow
    /// handler.
    pub(crate) fn delivered(&self) -> u64 {
        // SAFETY: as in `lost`.
        let state = unsafe { &*self.core.producer.get() };
        state.stored.wrapping_add(state.handed_over)
    }

    /// Routes events that do not fit to `handler` from now on, instead of counting them
    /// lost; `None` goes back to counting.
    ///
    /// # Safety
    ///
    /// The handler must not be called after `'h` ends: the caller clears it (or replaces
    /// it) before then. The bus does so when it lets go of the producer.
    pub(crate) unsafe fn set_overflow_handler<'h>(
        &mut self,
        handler: Option<&'h mut OverflowHandler<'h>>,
    ) {
        // SAFETY: the caller keeps calls within 'h.
        let erased = handler.map(|handler| unsafe { erase(handler) });
        // SAFETY: `&mut self` is the only way in besides callbacks, which cannot run now.
        unsafe { (*self.core.producer.get()).overflow_handler = erased };
    }

    /// Routes events that do not fit to `handler` until the returned [`LentHandler`] is
    /// dropped, in place of the handler [`Producer::set_overflow_handler`] set, which comes
    /// back then.
    ///
    /// # Safety
    ///
    /// The `LentHandler` is dropped, not leaked (the borrow checker keeps it within `'h`),
    /// and neither a kernel call of the bus nor a push of this producer is running when it
    /// is: it writes the producer's state.
    pub(crate) unsafe fn lend_overflow_handler<'h>(
        &mut self,
        handler: &'h mut (dyn for<'e> FnMut(crate::Event<'e>) + 'h),
    ) -> LentHandler<'r, 'h> {
        // SAFETY: the caller drops the guard, which takes the handler back, within 'h.
        let lent = unsafe { erase(handler) };
        // SAFETY: `&mut self` is the only way in besides callbacks, which cannot run now.
        let state = unsafe { &mut *self.core.producer.get() };
        LentHandler {
            core: self.core,
            previous: state.overflow_handler.replace(lent),
            _handler: PhantomData,
        }
    }

    /// Counts of what the ring stored and lost, and its high-water mark.
    pub fn stats(&self) -> RingStats {
        // SAFETY: as in `lost`.
        let state = unsafe { &*self.core.producer.get() };
        RingStats {
            stored: state.stored,
            lost: self.lost(),
            handed_over: state.handed_over,
            high_water: state.high_water_slots * self.core.slot_size(),
        }
    }

    /// Bytes of storage a kernel step can fill right now: free slots less the one kept for
    /// an overflow marker.
    pub fn free_bytes(&self) -> usize {
        let head = self.core.head.load(Ordering::Relaxed);
        let used = head.wrapping_sub(self.core.tail.load(Ordering::Acquire));
        (self.core.slot_count() - used).saturating_sub(1) * self.core.slot_size()
    }

    /// Total storage in bytes.
    pub fn capacity(&self) -> usize {
        self.core.slot_count() * self.core.slot_size()
    }

    /// The address the kernel passes back to every callback.
    pub(crate) fn user_data(&self) -> *mut cty::c_void {
        ptr::from_ref(self.core).cast_mut().cast()
    }

    /// Readies the producer for a new bus: which kinds of event are recorded and the least
    /// severe log level among them.
    pub(crate) fn prepare(&mut self, mask: EventMask, min_log_level: LogLevel) {
        // SAFETY: `&mut self` is the only way in besides callbacks, which cannot run now.
        let state = unsafe { &mut *self.core.producer.get() };
        state.mask = mask;
        state.min_log_level = min_log_level.raw();
        state.overflow_handler = None;
    }

    /// Writes the overflow marker if events were lost and it fits.
    pub(crate) fn flush_loss(&mut self) {
        // SAFETY: `&mut self` is the producer's exclusive access (invariant 3).
        unsafe { Writer::from_core(self.core).flush_loss() }
    }

    /// Records that worker `id` was reaped with `status` (`None`: unknown).
    pub(crate) fn push_exited(&mut self, id: WorkerId, status: Option<i32>) {
        // SAFETY: `&mut self` is the producer's exclusive access (invariant 3).
        let mut writer = unsafe { Writer::from_core(self.core) };
        if writer.wants(EventMask::WORKER) {
            let (payload, len) = crate::ExitStatus::encode(status);
            writer.push(Kind::Exited, id.raw(), &payload[..len]);
        }
    }
}

impl Producer<'_> {
    /// Reports what the supervision did with worker `id`, under `EventMask::WORKER` as the
    /// kernel's own worker events.
    pub(crate) fn push_restart(&mut self, id: WorkerId, report: RestartReport) {
        // SAFETY: `&mut self` is the producer's exclusive access (invariant 3).
        let mut writer = unsafe { Writer::from_core(self.core) };
        if writer.wants(EventMask::WORKER) {
            writer.push(Kind::Restart, id.raw(), &report.encode());
        }
    }

    /// Reports that request `id` to `worker` will not be answered.
    pub(crate) fn push_unanswered(&mut self, worker: WorkerId, id: &[u8]) {
        // SAFETY: `&mut self` is the producer's exclusive access (invariant 3).
        let mut writer = unsafe { Writer::from_core(self.core) };
        if writer.wants(EventMask::WORKER) {
            writer.push(Kind::Unanswered, worker.raw(), id);
        }
    }

    /// Reports that `session` left worker `from`, gone, for worker `to`.
    pub(crate) fn push_session_moved(&mut self, from: WorkerId, to: WorkerId, session: &[u8]) {
        // SAFETY: `&mut self` is the producer's exclusive access (invariant 3).
        let mut writer = unsafe { Writer::from_core(self.core) };
        if writer.wants(EventMask::WORKER) {
            let mut payload = [0u8; 4 + crate::limits::MAX_SESSION_ID];
            payload[..4].copy_from_slice(&from.raw().to_ne_bytes());
            let end = 4 + session.len().min(crate::limits::MAX_SESSION_ID);
            payload[4..end].copy_from_slice(&session[..end - 4]);
            writer.push(Kind::SessionMoved, to.raw(), &payload[..end]);
        }
    }
}

/// `handler` as the producer's state keeps it.
///
/// # Safety
///
/// It is called only within `'h`: whoever stores it takes it back before then.
unsafe fn erase<'h>(
    handler: &'h mut (dyn for<'e> FnMut(crate::Event<'e>) + 'h),
) -> ptr::NonNull<StoredHandler> {
    let raw: *mut (dyn for<'e> FnMut(crate::Event<'e>) + 'h) = handler;
    // SAFETY: only the lifetime bound changes, not the layout; the caller keeps calls
    // within 'h.
    let raw: *mut StoredHandler = unsafe { core::mem::transmute(raw) };
    // SAFETY: it came from a reference, so it is not null.
    unsafe { ptr::NonNull::new_unchecked(raw) }
}

/// An overflow handler lent to the ring for one call of the bus: dropping this puts back
/// the handler there was before (see [`Producer::lend_overflow_handler`]).
pub(crate) struct LentHandler<'r, 'h> {
    core: &'r RingCore,
    previous: Option<ptr::NonNull<StoredHandler>>,
    _handler: PhantomData<&'h mut ()>,
}

impl Drop for LentHandler<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: by the contract of `lend_overflow_handler`, no call of the bus and no
        // push is running, so nothing else holds the producer's state; this runs on
        // unwinding too, so a panicking handler is not left behind either.
        unsafe { (*self.core.producer.get()).overflow_handler = self.previous };
    }
}

impl fmt::Debug for Producer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("stored", &self.stored())
            .field("lost", &self.lost())
            .finish()
    }
}

/// The largest marker payload: the loss and every id that can be pending.
const MARKER_MAX: usize = LOSS_LEN + 2 + lost_ids::MAX_IDS * (1 + lost_ids::MAX_ID_LEN);

/// Exclusive write access to a ring for the length of one call: what a kernel callback
/// builds from its `user_data`.
pub(crate) struct Writer<'a> {
    core: &'a RingCore,
    state: &'a mut ProducerState,
    storage: *mut u8,
}

impl<'a> Writer<'a> {
    /// # Safety
    ///
    /// `core` belongs to a split ring, and nothing else uses its producer state while the
    /// writer lives (module invariant 3).
    pub(crate) unsafe fn from_core(core: &'a RingCore) -> Self {
        Self {
            core,
            // SAFETY: exclusive by the caller's contract.
            state: unsafe { &mut *core.producer.get() },
            storage: core.storage.load(Ordering::Acquire),
        }
    }

    /// # Safety
    ///
    /// `user_data` is what [`Producer::user_data`] returned for a producer that is still
    /// alive, and the conditions of [`Writer::from_core`] hold.
    pub(crate) unsafe fn from_user_data(user_data: *mut cty::c_void) -> Self {
        // SAFETY: the caller guarantees the pointer came from a live `&RingCore`.
        unsafe { Self::from_core(&*user_data.cast::<RingCore>()) }
    }

    /// Whether events of this kind are recorded at all.
    pub(crate) fn wants(&self, mask: EventMask) -> bool {
        self.state.mask.intersects(mask)
    }

    /// Whether a log line of this level is recorded.
    pub(crate) fn wants_log(&self, level: i32) -> bool {
        self.wants(EventMask::LOG) && level >= self.state.min_log_level
    }

    /// Stores one event, or hands it to the overflow handler, or counts it as lost. Never
    /// blocks, never allocates.
    pub(crate) fn push(&mut self, kind: Kind, value: i32, payload: &[u8]) -> bool {
        self.push_answering(kind, value, payload, |_| None)
    }

    /// [`Writer::push`] of an event that may answer a request: if it is lost, the id
    /// `answers` finds in its payload goes with the loss, so that the host can fail that
    /// request at once. `answers` runs only then; the ring itself reads no payload.
    pub(crate) fn push_answering(
        &mut self,
        kind: Kind,
        value: i32,
        payload: &[u8],
        answers: impl FnOnce(&[u8]) -> Option<&[u8]>,
    ) -> bool {
        let stored = u32::try_from(payload.len()).is_ok() && self.try_push(kind, value, payload);
        // Wrapping: a callback must not panic, and 2^64 events never happen anyway.
        let state = &mut *self.state;
        if stored {
            state.stored = state.stored.wrapping_add(1);
        } else if let Some(mut handler) = state.overflow_handler {
            // SAFETY: the handler is alive (the bus that set it clears it before its
            // lifetime ends) and is reached only from here, one call at a time.
            let handler = unsafe { handler.as_mut() };
            handler(crate::Event::decode(kind, value, payload));
            state.handed_over = state.handed_over.wrapping_add(1);
        } else {
            if let Some(id) = answers(payload) {
                state.unreported_ids.push(id);
            }
            self.count_lost(payload.len());
        }
        stored
    }

    fn try_push(&mut self, kind: Kind, value: i32, payload: &[u8]) -> bool {
        let need = record::slots_for(payload.len(), self.core.slot_size());
        let Some(place) = self.reserve(need, false) else {
            return false;
        };
        self.write(place.at, kind, value, payload);
        self.publish(place);
        true
    }

    /// Makes room for a record of `need` slots: writes a pending overflow marker, then the
    /// padding that keeps the record from wrapping (`to_end`: padding up to the end of the
    /// storage, whatever `need`, and `None` when there is none to write). `None` when it
    /// does not fit with one slot kept free for a future marker. Nothing is published
    /// until [`Writer::publish`].
    fn reserve(&mut self, need: usize, to_end: bool) -> Option<Place> {
        let slots = self.core.slot_count();
        let head = self.core.head.load(Ordering::Relaxed);
        let free = slots - head.wrapping_sub(self.core.tail.load(Ordering::Acquire));
        let marker = usize::from(self.state.unreported_events > 0);
        let at = head.wrapping_add(marker);
        let padding = if to_end {
            (slots - (at & (slots - 1))) % slots
        } else {
            self.padding_before(at, need)
        };
        // The last `1` keeps a slot free for a future overflow marker.
        if (to_end && padding == 0) || marker + padding + need + 1 > free {
            return None;
        }
        if marker == 1 {
            self.write_marker(head);
        }
        if padding > 0 {
            self.write(at, Kind::Padding, 0, &[]);
        }
        Some(Place {
            at: at.wrapping_add(padding),
            head,
            end: at.wrapping_add(padding).wrapping_add(need),
            used: slots - free,
        })
    }

    /// Hands everything written up to `place`'s end to the consumer.
    fn publish(&mut self, place: Place) {
        self.core.head.store(place.end, Ordering::Release);
        self.note_use(place.used + place.end.wrapping_sub(place.head));
    }

    /// Writes the overflow marker if events were lost and one slot is free.
    /// Lets go of the overflow handler: lost events are counted again.
    pub(crate) fn clear_overflow_handler(&mut self) {
        self.state.overflow_handler = None;
    }

    pub(crate) fn flush_loss(&mut self) {
        if self.state.unreported_events == 0 {
            return;
        }
        let head = self.core.head.load(Ordering::Relaxed);
        let used = head.wrapping_sub(self.core.tail.load(Ordering::Acquire));
        if used < self.core.slot_count() {
            self.write_marker(head);
            self.core
                .head
                .store(head.wrapping_add(1), Ordering::Release);
        }
    }

    fn note_use(&mut self, used_slots: usize) {
        self.state.high_water_slots = self.state.high_water_slots.max(used_slots);
    }

    /// Writes the marker into the one slot at `at`: the loss, then the lost responses'
    /// ids that fit in the slot.
    fn write_marker(&mut self, at: usize) {
        let mut marker = [0u8; MARKER_MAX];
        let loss = encode_loss(self.state.unreported_events, self.state.unreported_bytes);
        marker[..LOSS_LEN].copy_from_slice(&loss);
        let room = (self.core.slot_size() - HEADER_LEN).min(MARKER_MAX);
        let ids = self
            .state
            .unreported_ids
            .encode_into(&mut marker[LOSS_LEN..room]);
        self.write(at, Kind::Overflow, 0, &marker[..LOSS_LEN + ids]);
        self.state.unreported_events = 0;
        self.state.unreported_bytes = 0;
        self.state.unreported_ids.clear();
    }

    /// Slots of padding needed before a record of `need` slots at position `at`.
    fn padding_before(&self, at: usize, need: usize) -> usize {
        padding_before(at, need, self.core.slot_count())
    }

    /// The room worker lines have in the ring now, for the kernel step that is running.
    pub(crate) fn into_room(self) -> Room<'a> {
        let slot_count = self.core.slot_count();
        let head = self.core.head.load(Ordering::Relaxed);
        let unbounded = self.state.overflow_handler.is_some() || !self.wants(EventMask::MESSAGE);
        Room {
            free: slot_count - head.wrapping_sub(self.core.tail.load(Ordering::Acquire)),
            marker: usize::from(self.state.unreported_events > 0),
            head,
            admitted: false,
            writer: (!unbounded).then_some(self),
        }
    }

    /// Records that `worker` wrote a line longer than `limit`, which was dropped: the
    /// limit, then the `id` of the response it was, if known.
    pub(crate) fn push_line_too_long(&mut self, worker: i32, limit: usize, id: Option<&[u8]>) {
        if self.wants(EventMask::MESSAGE) {
            let mut payload = [0u8; 8 + crate::limits::MAX_REQUEST_ID];
            payload[..8].copy_from_slice(&(limit as u64).to_ne_bytes());
            let id = id
                .filter(|id| id.len() <= crate::limits::MAX_REQUEST_ID)
                .unwrap_or(&[]);
            payload[8..8 + id.len()].copy_from_slice(id);
            self.push(Kind::LineTooLong, worker, &payload[..8 + id.len()]);
        }
    }

    /// Fills the slots from the write position to the end of the storage with padding (after
    /// a pending marker), if they are free: a record that cannot fit before the end then
    /// starts at slot 0 once the consumer gets there.
    fn pad_to_end(&mut self) {
        if let Some(place) = self.reserve(0, true) {
            self.publish(place);
        }
    }

    /// Counts an event of `bytes` as lost without looking at it.
    pub(crate) fn count_lost(&mut self, bytes: usize) {
        let state = &mut *self.state;
        state.lost_events = state.lost_events.wrapping_add(1);
        state.lost_bytes = state.lost_bytes.wrapping_add(bytes as u64);
        state.unreported_events = state.unreported_events.wrapping_add(1);
        state.unreported_bytes = state.unreported_bytes.wrapping_add(bytes as u64);
    }

    /// Copies one record into the slots starting at position `at`.
    fn write(&mut self, at: usize, kind: Kind, value: i32, payload: &[u8]) {
        let index = at & (self.core.slot_count() - 1);
        let header = Header {
            kind,
            value,
            len: payload.len() as u32,
        }
        .encode();
        self.core.access.write(index, HEADER_LEN + payload.len());
        // SAFETY: the caller checked that the record's slots are free (they belong to the
        // producer, invariant 2) and contiguous: `index * slot_size + HEADER_LEN +
        // payload.len()` is within `slot_count * slot_size` bytes of storage.
        unsafe {
            let start = self.storage.add(index * self.core.slot_size());
            ptr::copy_nonoverlapping(header.as_ptr(), start, HEADER_LEN);
            ptr::copy_nonoverlapping(payload.as_ptr(), start.add(HEADER_LEN), payload.len());
        }
    }
}

/// Where [`Writer::reserve`] made room for a record: its first slot, the head before and
/// after it, and the slots in use before.
struct Place {
    at: usize,
    head: usize,
    end: usize,
    used: usize,
}

/// Slots of padding needed before a record of `need` slots at position `at` of a ring of
/// `slot_count` slots, so that the record does not wrap around the end of the storage.
fn padding_before(at: usize, need: usize, slot_count: usize) -> usize {
    let index = at & (slot_count - 1);
    if index + need > slot_count {
        slot_count - index
    } else {
        0
    }
}

/// How many more worker lines a kernel step can store: a snapshot of the ring's free
/// slots, which [`Room::admits`] hands out one line at a time, exactly as [`Writer::push`]
/// will fill them (padding and the marker's slot included).
///
/// Lines are admitted while the ring keeps a sixteenth of its slots (at least one) free
/// besides the marker's: the kernel's other events of the same step (a worker's end, an
/// error) need room too.
pub(crate) struct Room<'a> {
    /// The ring's writer; `None`: every line is admitted, because an overflow handler
    /// takes what does not fit, or messages are not recorded at all.
    writer: Option<Writer<'a>>,
    head: usize,
    free: usize,
    /// 1 while an overflow marker waits to be written before the next record.
    marker: usize,
    /// Lines were admitted that the kernel has not stored yet.
    admitted: bool,
}

impl Room<'_> {
    /// Room that admits every line: where no ring bounds what a step delivers.
    pub(crate) const UNBOUNDED: Self = Self {
        writer: None,
        head: 0,
        free: 0,
        marker: 0,
        admitted: false,
    };

    /// Whether every line is admitted without a look.
    pub(crate) fn is_unbounded(&self) -> bool {
        self.writer.is_none()
    }

    /// Whether a line of `len` bytes (its newline not counted) is to be delivered now,
    /// and if so takes its slots.
    ///
    /// A line that waits only because it cannot wrap around the end of the storage has
    /// the end padded now, if those slots are free and no line admitted by this room is
    /// still to be stored before it: so every line that fits in the ring finds room once
    /// the consumer has read enough. A line that does not fit even in an
    /// empty ring is admitted once the ring is empty: waiting would not help, and it goes
    /// to the overflow handler or is counted lost.
    pub(crate) fn admits(&mut self, len: usize) -> bool {
        let Some(writer) = self.writer.as_mut() else {
            return true;
        };
        let (slot_count, slot_size) = (writer.core.slot_count(), writer.core.slot_size());
        let need = record::slots_for(len, slot_size);
        let kept = (slot_count / 16).max(1);
        let at = self.head.wrapping_add(self.marker);
        let padding = padding_before(at, need, slot_count);
        let take = self.marker + padding + need;
        let empty = self.free == slot_count;
        // Not even slot 0 of an empty ring holds it (the marker's slot kept).
        let never = need + 1 > slot_count;
        // The last `1` of each is the marker's slot; the share kept for other events is
        // no use to an empty ring.
        let fits = take + kept < self.free || (empty && take < self.free);
        if !(fits || empty && never) {
            // Not while lines admitted here wait to be stored in front of the padding:
            // the next read's room pads.
            if padding > 0 && !never && !self.admitted {
                writer.pad_to_end();
                *self = writer_room(self.writer.take());
            }
            return false;
        }
        self.free = self.free.saturating_sub(take);
        self.head = at.wrapping_add(padding).wrapping_add(need);
        self.marker = 0;
        self.admitted = true;
        true
    }
}

/// A fresh snapshot of the ring `writer` writes.
fn writer_room(writer: Option<Writer<'_>>) -> Room<'_> {
    writer.map_or(Room::UNBOUNDED, Writer::into_room)
}
