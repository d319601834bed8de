//! Halves that own their ring, for a host that needs them `'static`: a consumer read on a
//! thread of its own or in an async task, a bus kept in a long-lived struct.
//!
//! The ring goes to the heap once and stays where it is; each half keeps a reference to it
//! and a share of its ownership, so the ring is freed when the second half is dropped,
//! whichever that is and on whatever thread. The halves are the same [`Producer`] and
//! [`Consumer`] as a borrowed split gives, with the lifetime `'static`: the bus, and
//! everything else, uses them unchanged.

use core::ptr::NonNull;
use std::boxed::Box;
use std::sync::Arc;

use super::{AlreadySplit, Consumer, EventRing, Producer};

impl<const SLOTS: usize, const SLOT_SIZE: usize> EventRing<SLOTS, SLOT_SIZE> {
    /// Splits a ring on the heap into halves that own it together: `'static`, so that the
    /// consumer can go to another thread or an async task and a bus over the producer is a
    /// `Bus<'static, _>` (if its configuration lives as long). The ring is freed when both
    /// halves are gone.
    ///
    /// ```
    /// use stdiobus_embed::EventRing;
    ///
    /// let (producer, mut consumer) = EventRing::<1024, 4096>::boxed().split_owned().unwrap();
    /// let reader = std::thread::spawn(move || while consumer.read().is_some() {});
    /// # drop(producer);
    /// # reader.join().unwrap();
    /// ```
    ///
    /// A ring that was split before cannot be split again: [`AlreadySplit`].
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn split_owned(
        self: Box<Self>,
    ) -> Result<(Producer<'static>, Consumer<'static>), AlreadySplit> {
        let ring = SharedRing(NonNull::from(Box::leak(self)));
        // SAFETY: the ring stays where it is until `ring` is dropped: below if the split
        // fails, otherwise when the last half that holds a clone of it is dropped, and each
        // half holds one for as long as it holds this reference.
        let shared: &'static Self = unsafe { ring.0.as_ref() };
        let (producer, consumer) = shared.split()?;
        let ring: Arc<dyn Send + Sync> = Arc::new(ring);
        Ok((producer.keeping(Arc::clone(&ring)), consumer.keeping(ring)))
    }
}

/// The ring of [`EventRing::split_owned`], owned as its `Box` owned it; freed on drop.
struct SharedRing<const SLOTS: usize, const SLOT_SIZE: usize>(NonNull<EventRing<SLOTS, SLOT_SIZE>>);

// SAFETY: it owns the ring as a `Box` does, and the ring is `Send` and `Sync`; nothing
// reaches the ring through it but its drop.
unsafe impl<const SLOTS: usize, const SLOT_SIZE: usize> Send for SharedRing<SLOTS, SLOT_SIZE> {}
// SAFETY: as above: `&SharedRing` gives access to nothing.
unsafe impl<const SLOTS: usize, const SLOT_SIZE: usize> Sync for SharedRing<SLOTS, SLOT_SIZE> {}

impl<const SLOTS: usize, const SLOT_SIZE: usize> Drop for SharedRing<SLOTS, SLOT_SIZE> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` and this is its only owner; the halves
        // that referred to the ring are gone, since each held a clone of the `Arc` this is
        // in.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}
