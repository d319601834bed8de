//! Which bus's kernel call runs on this thread: the interposed functions learn from here
//! whose descriptors and processes they guard.
//!
//! The kernel has no threads, so every call it makes to the system happens on the thread
//! that called into it, inside [`KernelResources::enter`](super::KernelResources::enter).
//! With `std` this is a thread-local; without it, a POSIX thread-specific key.

use super::KernelResources;

#[cfg(feature = "std")]
mod slot {
    use core::cell::Cell;
    use core::ptr;

    use super::KernelResources;

    std::thread_local! {
        static CURRENT: Cell<*mut KernelResources> = const { Cell::new(ptr::null_mut()) };
    }

    pub(super) fn get() -> *mut KernelResources {
        // During thread teardown the slot may be gone: no bus call can run then.
        CURRENT.try_with(Cell::get).unwrap_or(ptr::null_mut())
    }

    pub(super) fn replace(new: *mut KernelResources) -> *mut KernelResources {
        CURRENT
            .try_with(|slot| slot.replace(new))
            .unwrap_or(ptr::null_mut())
    }
}

#[cfg(not(feature = "std"))]
mod slot {
    use core::ptr;
    use core::sync::atomic::{AtomicUsize, Ordering};

    use super::KernelResources;

    /// The key plus one; zero until the first bus call creates it.
    static KEY: AtomicUsize = AtomicUsize::new(0);

    fn key(create: bool) -> Option<libc::pthread_key_t> {
        let known = KEY.load(Ordering::Acquire);
        if known != 0 {
            return Some((known - 1) as libc::pthread_key_t);
        }
        if !create {
            return None;
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: `new` is a valid out-parameter; no destructor is needed for a pointer
        // that is cleared before every call returns.
        if unsafe { libc::pthread_key_create(&mut new, None) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, new as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(new),
            Err(winner) => {
                // SAFETY: `new` was created above and never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((winner - 1) as libc::pthread_key_t)
            }
        }
    }

    pub(super) fn get() -> *mut KernelResources {
        match key(false) {
            // SAFETY: the key exists; the value is what `replace` stored on this thread.
            Some(key) => unsafe { libc::pthread_getspecific(key) }.cast(),
            None => ptr::null_mut(),
        }
    }

    pub(super) fn replace(new: *mut KernelResources) -> *mut KernelResources {
        let Some(key) = key(true) else {
            return ptr::null_mut();
        };
        let old = get();
        // SAFETY: the key exists; storing a pointer value has no other effect.
        unsafe { libc::pthread_setspecific(key, new.cast()) };
        old
    }
}

/// The resources of the bus whose kernel call runs on this thread, if any.
pub(super) fn get() -> *mut KernelResources {
    slot::get()
}

/// Makes `new` current on this thread; returns what was.
pub(super) fn replace(new: *mut KernelResources) -> *mut KernelResources {
    slot::replace(new)
}
