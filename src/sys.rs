//! The raw embedding API of `libstdio_bus` (ABI version 2), one to one with the C header.
//!
//! Everything here is `unsafe` to call and speaks in raw pointers; the safe layer in
//! [`crate::Bus`] is the only user inside this crate. Struct layouts are checked at compile
//! time against the C layout of the supported targets (LP64: linux and macOS on x86_64 and
//! aarch64).
//!
//! When no archive is configured (see `build.rs`), every function links against one
//! symbol whose name tells what to set, so a failed link says so in one line.
//!
//! On Linux the kernel's own system calls are interposed (see the README, "What the bus
//! fixes in the kernel"). Called from here, outside a [`Bus`](crate::Bus), they find no
//! bus to account to and go straight to libc, with only what needs no bookkeeping:
//! descriptors close-on-exec and numbered 3 to 1023, and workers that exec with
//! descriptors 0 to 2 alone. Everything else (foreign closes, `waitpid(-1)`, the crash in
//! `destroy`) is as the vendor built it.
#![allow(non_camel_case_types)]
// The names mirror the C header; their meaning is documented there and in the crate docs.
#![allow(missing_docs)]

use cty::{c_char, c_int, c_void, size_t};

/// Opaque kernel instance.
#[repr(C)]
pub struct stdio_bus_t {
    _opaque: [u8; 0],
    // Neither Send, Sync nor Unpin: only the kernel knows what it holds.
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// Called with each line a worker (or client) sent; `msg[len]` is NUL.
pub type stdio_bus_message_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        msg: *const c_char,
        len: size_t,
        user_data: *mut c_void,
    ),
>;
/// Called with a negative code and a NUL-terminated description.
pub type stdio_bus_error_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        code: c_int,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;
/// Called with a level (0 debug … 3 error) and a NUL-terminated line.
pub type stdio_bus_log_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        level: c_int,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;
/// Called with a worker id and a lifecycle word (`started`, `stopped`, …).
pub type stdio_bus_worker_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        worker_id: c_int,
        event: *const c_char,
        user_data: *mut c_void,
    ),
>;
/// Called when a listener client connects, with its peer description.
pub type stdio_bus_client_connect_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        client_id: c_int,
        peer_info: *const c_char,
        user_data: *mut c_void,
    ),
>;
/// Called when a listener client goes away, with the reason.
pub type stdio_bus_client_disconnect_cb = Option<
    unsafe extern "C" fn(
        bus: *mut stdio_bus_t,
        client_id: c_int,
        reason: *const c_char,
        user_data: *mut c_void,
    ),
>;

/// `stdio_bus_listen_mode_t`.
pub type stdio_bus_listen_mode_t = c_int;
/// Embedded mode: the host feeds messages with `ingest`.
pub const STDIO_BUS_LISTEN_NONE: stdio_bus_listen_mode_t = 0;
/// The kernel accepts clients on a TCP socket.
pub const STDIO_BUS_LISTEN_TCP: stdio_bus_listen_mode_t = 1;
/// The kernel accepts clients on a Unix socket.
pub const STDIO_BUS_LISTEN_UNIX: stdio_bus_listen_mode_t = 2;

/// `stdio_bus_listener_config_t`; field order is the ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stdio_bus_listener_config_t {
    pub mode: stdio_bus_listen_mode_t,
    pub tcp_host: *const c_char,
    pub tcp_port: u16,
    pub unix_path: *const c_char,
}

/// `stdio_bus_options_t`; field order is the ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct stdio_bus_options_t {
    pub config_path: *const c_char,
    pub config_json: *const c_char,
    pub listener: stdio_bus_listener_config_t,
    pub on_message: stdio_bus_message_cb,
    pub on_error: stdio_bus_error_cb,
    pub on_log: stdio_bus_log_cb,
    pub on_worker: stdio_bus_worker_cb,
    pub on_client_connect: stdio_bus_client_connect_cb,
    pub on_client_disconnect: stdio_bus_client_disconnect_cb,
    pub user_data: *mut c_void,
    pub log_level: c_int,
}

/// `stdio_bus_state_t`.
pub type stdio_bus_state_t = c_int;
pub const STDIO_BUS_STATE_CREATED: stdio_bus_state_t = 0;
pub const STDIO_BUS_STATE_STARTING: stdio_bus_state_t = 1;
pub const STDIO_BUS_STATE_RUNNING: stdio_bus_state_t = 2;
pub const STDIO_BUS_STATE_STOPPING: stdio_bus_state_t = 3;
pub const STDIO_BUS_STATE_STOPPED: stdio_bus_state_t = 4;

/// `stdio_bus_stats_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct stdio_bus_stats_t {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub worker_restarts: u64,
    pub routing_errors: u64,
    pub client_connects: u64,
    pub client_disconnects: u64,
}

pub const STDIO_BUS_OK: c_int = 0;
pub const STDIO_BUS_ERR: c_int = -1;
pub const STDIO_BUS_EAGAIN: c_int = -2;
pub const STDIO_BUS_EOF: c_int = -3;
pub const STDIO_BUS_EFULL: c_int = -4;
pub const STDIO_BUS_ENOTFOUND: c_int = -5;
pub const STDIO_BUS_EINVAL: c_int = -6;
pub const STDIO_BUS_ERR_CONFIG: c_int = -10;
pub const STDIO_BUS_ERR_WORKER: c_int = -11;
pub const STDIO_BUS_ERR_ROUTING: c_int = -12;
pub const STDIO_BUS_ERR_BUFFER: c_int = -13;
pub const STDIO_BUS_ERR_INVALID: c_int = -14;
pub const STDIO_BUS_ERR_STATE: c_int = -15;

/// Log levels understood by `stdio_bus_options_t::log_level`.
pub const STDIO_BUS_LOG_DEBUG: c_int = 0;
pub const STDIO_BUS_LOG_INFO: c_int = 1;
pub const STDIO_BUS_LOG_WARN: c_int = 2;
pub const STDIO_BUS_LOG_ERROR: c_int = 3;

/// `step`/`poll` timeouts: do not wait, or wait until something happens.
pub const STDIO_BUS_NO_WAIT: c_int = 0;
pub const STDIO_BUS_WAIT_FOREVER: c_int = -1;

// Without an archive, every declaration below resolves to this one symbol, so the linker
// reports a single, self-explaining name. `build.rs` sets the cfg.
#[cfg(stdio_bus_unlinked)]
macro_rules! kernel_symbol {
    ($item:item) => {
        #[allow(clashing_extern_declarations)]
        #[link_name = "stdiobus_embed_has_no_kernel_archive__set_STDIO_BUS_LIB_DIR_or_enable_feature_prebuilt"]
        $item
    };
}
// The rewritten archive defines its functions under the prefix `build.rs` gives them.
#[cfg(all(not(stdio_bus_unlinked), stdio_bus_interposed))]
macro_rules! kernel_symbol {
    (pub fn $name:ident $($rest:tt)*) => {
        #[link_name = concat!(env!("STDIOBUS_EMBED_KERNEL_PREFIX"), stringify!($name))]
        pub fn $name $($rest)*
    };
}
#[cfg(all(not(stdio_bus_unlinked), not(stdio_bus_interposed)))]
macro_rules! kernel_symbol {
    ($item:item) => {
        $item
    };
}

unsafe extern "C" {
    kernel_symbol! { pub fn stdio_bus_create(options: *const stdio_bus_options_t) -> *mut stdio_bus_t; }
    kernel_symbol! { pub fn stdio_bus_start(bus: *mut stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_step(bus: *mut stdio_bus_t, timeout_ms: c_int) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_stop(bus: *mut stdio_bus_t, timeout_sec: c_int) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_destroy(bus: *mut stdio_bus_t); }
    kernel_symbol! { pub fn stdio_bus_ingest(bus: *mut stdio_bus_t, msg: *const c_char, len: size_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_get_state(bus: *const stdio_bus_t) -> stdio_bus_state_t; }
    kernel_symbol! { pub fn stdio_bus_worker_count(bus: *const stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_session_count(bus: *const stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_pending_count(bus: *const stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_client_count(bus: *const stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_get_poll_fd(bus: *const stdio_bus_t) -> c_int; }
    kernel_symbol! { pub fn stdio_bus_get_stats(bus: *const stdio_bus_t, out: *mut stdio_bus_stats_t); }
    // Tells the instance that SIGCHLD arrived: its next `step` reaps exited children with
    // `waitpid(-1)` (any child of the process) and restarts its workers within the
    // configured limits. Exported by the archive but not part of the documented API. The
    // safe layer does not call it: in embedded mode the 1.1.1 archive spawns the restarted
    // process but never connects its pipes, so it serves nothing (observed).
    kernel_symbol! { pub fn stdio_bus_notify_sigchld(bus: *mut stdio_bus_t); }
}

// Workers served in-process over a pair of file descriptors (newer archive only).
#[cfg(feature = "embedded-workers")]
unsafe extern "C" {
    kernel_symbol! {
        pub fn stdio_bus_register_embedded_worker(
            bus: *mut stdio_bus_t,
            fd_to_worker: c_int,
            fd_from_worker: c_int,
            pool_id: *const c_char,
        ) -> c_int;
    }
    kernel_symbol! { pub fn stdio_bus_unregister_embedded_worker(bus: *mut stdio_bus_t, worker_id: c_int) -> c_int; }
}

// Layout checks against the C ABI of the LP64 targets the archives exist for.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};

    assert!(size_of::<stdio_bus_listener_config_t>() == 32);
    assert!(align_of::<stdio_bus_listener_config_t>() == 8);
    assert!(offset_of!(stdio_bus_listener_config_t, mode) == 0);
    assert!(offset_of!(stdio_bus_listener_config_t, tcp_host) == 8);
    assert!(offset_of!(stdio_bus_listener_config_t, tcp_port) == 16);
    assert!(offset_of!(stdio_bus_listener_config_t, unix_path) == 24);

    assert!(size_of::<stdio_bus_options_t>() == 112);
    assert!(align_of::<stdio_bus_options_t>() == 8);
    assert!(offset_of!(stdio_bus_options_t, config_path) == 0);
    assert!(offset_of!(stdio_bus_options_t, config_json) == 8);
    assert!(offset_of!(stdio_bus_options_t, listener) == 16);
    assert!(offset_of!(stdio_bus_options_t, on_message) == 48);
    assert!(offset_of!(stdio_bus_options_t, on_error) == 56);
    assert!(offset_of!(stdio_bus_options_t, on_log) == 64);
    assert!(offset_of!(stdio_bus_options_t, on_worker) == 72);
    assert!(offset_of!(stdio_bus_options_t, on_client_connect) == 80);
    assert!(offset_of!(stdio_bus_options_t, on_client_disconnect) == 88);
    assert!(offset_of!(stdio_bus_options_t, user_data) == 96);
    assert!(offset_of!(stdio_bus_options_t, log_level) == 104);

    assert!(size_of::<stdio_bus_stats_t>() == 64);
    assert!(align_of::<stdio_bus_stats_t>() == 8);
    assert!(offset_of!(stdio_bus_stats_t, messages_in) == 0);
    assert!(offset_of!(stdio_bus_stats_t, messages_out) == 8);
    assert!(offset_of!(stdio_bus_stats_t, bytes_in) == 16);
    assert!(offset_of!(stdio_bus_stats_t, bytes_out) == 24);
    assert!(offset_of!(stdio_bus_stats_t, worker_restarts) == 32);
    assert!(offset_of!(stdio_bus_stats_t, routing_errors) == 40);
    assert!(offset_of!(stdio_bus_stats_t, client_connects) == 48);
    assert!(offset_of!(stdio_bus_stats_t, client_disconnects) == 56);

    // Every callback slot is one nullable function pointer.
    assert!(size_of::<stdio_bus_message_cb>() == size_of::<*const ()>());
    assert!(size_of::<stdio_bus_state_t>() == 4);
};
