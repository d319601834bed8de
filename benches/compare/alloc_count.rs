//! Allocation counting: every malloc-family call of the process, Rust and C.
//!
//! `build.rs` links bench binaries with `--wrap` for malloc, calloc, realloc, strdup,
//! strndup, posix_memalign and aligned_alloc, so the linker sends every call to the
//! `__wrap_*` function here, which counts it before forwarding it to the C library's
//! `__real_*`. Calls that glibc makes to itself internally are not seen.

#[cfg(target_os = "linux")]
pub use wrap::calls;

/// Link-time wrapping is set up for Linux only.
#[cfg(not(target_os = "linux"))]
pub fn calls() -> u64 {
    0
}

/// Allocation calls so far, if counting works in this binary (checked once at startup).
pub fn alloc_calls(counting: bool) -> Option<u64> {
    counting.then(calls)
}

/// Whether the wrapped allocator sees a Rust allocation of this process.
pub fn counting_works() -> bool {
    let before = calls();
    drop(std::hint::black_box(Box::new(7u64)));
    calls() > before
}

#[cfg(target_os = "linux")]
mod wrap {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::atomic::{AtomicU64, Ordering};

    static CALLS: AtomicU64 = AtomicU64::new(0);

    /// Allocation calls so far.
    pub fn calls() -> u64 {
        CALLS.load(Ordering::Relaxed)
    }

    fn count() {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }

    // Resolved by the linker to the C library's functions (`--wrap`, see build.rs).
    unsafe extern "C" {
        fn __real_malloc(size: usize) -> *mut c_void;
        fn __real_calloc(count: usize, size: usize) -> *mut c_void;
        fn __real_realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
        fn __real_strdup(text: *const c_char) -> *mut c_char;
        fn __real_strndup(text: *const c_char, max: usize) -> *mut c_char;
        fn __real_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
        fn __real_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    }

    /// # Safety
    /// As `malloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_malloc(size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_malloc(size) }
    }

    /// # Safety
    /// As `calloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_calloc(n: usize, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_calloc(n, size) }
    }

    /// # Safety
    /// As `realloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_realloc(pointer, size) }
    }

    /// # Safety
    /// As `strdup`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_strdup(text: *const c_char) -> *mut c_char {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_strdup(text) }
    }

    /// # Safety
    /// As `strndup`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_strndup(text: *const c_char, max: usize) -> *mut c_char {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_strndup(text, max) }
    }

    /// # Safety
    /// As `posix_memalign`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_posix_memalign(
        out: *mut *mut c_void,
        align: usize,
        size: usize,
    ) -> c_int {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_posix_memalign(out, align, size) }
    }

    /// # Safety
    /// As `aligned_alloc`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_aligned_alloc(align: usize, size: usize) -> *mut c_void {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { __real_aligned_alloc(align, size) }
    }
}
