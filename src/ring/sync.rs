//! What the ring synchronises with: `core`'s atomics, or loom's in the crate's own tests
//! under `--cfg loom`, so that the models in `loom_tests`
//! (`RUSTFLAGS="--cfg loom" cargo test --lib --release loom`) run the real producer and
//! consumer through every interleaving loom can reach. Loom is a dev-dependency, so a
//! build that is not a test uses `core`'s atomics whatever the cfg.
//!
//! The slot storage is raw memory, which loom cannot see. In the models every slot
//! gets a shadow `loom::cell::UnsafeCell` that the producer "writes" when it writes the
//! slot and the consumer "reads" when it reads it, so loom reports a read or a write that
//! the `head`/`tail` protocol does not order. Outside loom the shadow is zero-sized and
//! its methods are empty.

#[cfg(all(test, loom))]
extern crate std;

#[cfg(not(all(test, loom)))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Declares a `const fn`, or under `--cfg loom` a plain `fn`: loom's atomics cannot be
/// built in a constant.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(all(test, loom)))]
        $(#[$attr])*
        $vis const fn $($rest)*

        #[cfg(all(test, loom))]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;

/// Stands for the slots' bytes in the model; nothing outside it.
#[cfg(not(all(test, loom)))]
pub(crate) struct SlotAccess;

#[cfg(not(all(test, loom)))]
impl SlotAccess {
    pub(crate) const fn new(_slot_count: usize, _slot_size: usize) -> Self {
        Self
    }

    /// The producer writes `len` bytes from the start of slot `index` on.
    #[inline(always)]
    pub(crate) fn write(&self, _index: usize, _len: usize) {}

    /// The consumer reads `len` bytes from the start of slot `index` on.
    #[inline(always)]
    pub(crate) fn read(&self, _index: usize, _len: usize) {}
}

/// One loom cell per slot, accessed wherever the real code touches that slot's bytes.
#[cfg(all(test, loom))]
pub(crate) struct SlotAccess {
    slots: std::boxed::Box<[loom::cell::UnsafeCell<()>]>,
    slot_size: usize,
}

#[cfg(all(test, loom))]
impl SlotAccess {
    pub(crate) fn new(slot_count: usize, slot_size: usize) -> Self {
        Self {
            slots: (0..slot_count)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
            slot_size,
        }
    }

    /// The cells of the slots that `len` bytes from the start of slot `index` touch.
    fn cells(&self, index: usize, len: usize) -> &[loom::cell::UnsafeCell<()>] {
        &self.slots[index..index + len.div_ceil(self.slot_size)]
    }

    /// The producer writes `len` bytes from the start of slot `index` on.
    pub(crate) fn write(&self, index: usize, len: usize) {
        for slot in self.cells(index, len) {
            slot.with_mut(|_| ());
        }
    }

    /// The consumer reads `len` bytes from the start of slot `index` on.
    pub(crate) fn read(&self, index: usize, len: usize) {
        for slot in self.cells(index, len) {
            slot.with(|_| ());
        }
    }
}
