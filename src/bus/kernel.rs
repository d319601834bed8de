//! The kernel instance a bus owns, and the one place that ends it: whatever state the
//! bus is in, dropping its kernel ends the workers and frees the instance.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use cty::c_int;

use crate::interpose::KernelResources;
use crate::ring::Writer;
use crate::{KernelState, sys};

/// How long a bus being dropped waits for its killed workers to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// One kernel instance and what it holds from the system.
pub(super) struct Kernel<'r> {
    pub(super) raw: NonNull<sys::stdio_bus_t>,
    /// The descriptors and processes the kernel holds (see `interpose`).
    pub(super) resources: KernelResources,
    /// Embedded workers registered and not yet unregistered.
    #[cfg(feature = "embedded-workers")]
    pub(super) embedded: super::embedded::Registered,
    /// The instance keeps pointers to what the bus borrows for `'r`: the configuration's
    /// strings and the ring.
    borrows: PhantomData<&'r ()>,
}

impl Kernel<'_> {
    /// Takes charge of `raw`, just created with `resources` current.
    pub(super) fn new(raw: NonNull<sys::stdio_bus_t>, resources: KernelResources) -> Self {
        Self {
            raw,
            resources,
            #[cfg(feature = "embedded-workers")]
            embedded: super::embedded::Registered::new(),
            borrows: PhantomData,
        }
    }

    /// The kernel's own view of its lifecycle.
    pub(super) fn state(&self) -> KernelState {
        // SAFETY: `raw` is live.
        KernelState::from_raw(unsafe { sys::stdio_bus_get_state(self.raw.as_ptr()) })
    }

    /// Workers the kernel knows.
    pub(super) fn worker_count(&self) -> usize {
        // SAFETY: `raw` is live.
        count(unsafe { sys::stdio_bus_worker_count(self.raw.as_ptr()) })
    }

    /// Writes the ring's overflow marker for events lost in the last kernel call.
    #[cfg(feature = "embedded-workers")]
    pub(super) fn flush_loss(&mut self) {
        if let Some(mut writer) = self.ring() {
            writer.flush_loss();
        }
    }

    /// The writer of the ring this instance's callbacks write into.
    fn ring(&mut self) -> Option<Writer<'_>> {
        let ring = self.resources.ring();
        // SAFETY: `ring` is the user data of this instance's callbacks: the ring of the
        // bus's producer, which no other code uses while `&mut self` is held (the bus's
        // methods reach the kernel only through its `&mut`).
        (!ring.is_null()).then(|| unsafe { Writer::from_user_data(ring) })
    }
}

impl Drop for Kernel<'_> {
    /// Ends the workers if they still run, frees the instance and collects the processes.
    fn drop(&mut self) {
        self.resources.stop_restarts();
        #[cfg(feature = "embedded-workers")]
        self.unregister_all_embedded();
        self.resources.signal_workers(libc::SIGKILL);
        // Collected first, so that `destroy` in a running state finds them gone at once.
        self.resources.reap_workers_within(REAP_LIMIT);
        // Without interposition (Apple targets) the 1.1.1 archive's `destroy` can crash
        // once workers were spawned: the instance is leaked instead.
        if cfg!(stdio_bus_interposed) || self.state() == KernelState::Created {
            let raw = self.raw.as_ptr();
            // SAFETY: `raw` is live and never used again; `destroy` is safe in every
            // state once the router's free is deferred (`interpose`).
            self.resources
                .enter(|| unsafe { sys::stdio_bus_destroy(raw) });
        }
        self.resources.forget_workers();
        if let Some(mut writer) = self.ring() {
            writer.flush_loss();
            // No callback can run any more (the instance is destroyed or leaked, never
            // called again): a handler borrowed for the bus's lifetime is let go of.
            writer.clear_overflow_handler();
        }
    }
}

/// Kernel counts are never negative; a negative one would be a kernel error code.
pub(super) fn count(raw: c_int) -> usize {
    usize::try_from(raw).unwrap_or(0)
}
