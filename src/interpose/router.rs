//! The router's free, deferred: archive A's `destroy` frees the router and then tears the
//! transport down, which still uses it (see `KernelResources::enter`).

use cty::c_void;

use super::resources;

unsafe extern "C" {
    /// The router's real destructor, in the vendor's `routing.o` (under the prefix that
    /// `build.rs` gives the archive's own symbols).
    #[link_name = concat!(env!("STDIOBUS_EMBED_KERNEL_PREFIX"), "stdio_bus_router_destroy")]
    fn kernel_router_destroy(router: *mut c_void);
}

pub(super) fn free_router(router: *mut c_void) {
    // SAFETY: `router` is what the kernel passed to its destructor, which it no longer
    // uses now that the call that released it has returned.
    unsafe { kernel_router_destroy(router) };
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "stdio_bus_router_destroy"))]
unsafe extern "C" fn deferred_router_destroy(router: *mut c_void) {
    match resources() {
        Some(resources) => {
            if !resources.deferred_router.is_null() {
                free_router(resources.deferred_router);
            }
            resources.deferred_router = router;
        }
        None => free_router(router),
    }
}
