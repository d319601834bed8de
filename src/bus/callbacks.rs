//! The six C callbacks: each copies one event into the bus's ring and returns.
//!
//! They run synchronously inside kernel calls that the bus makes through `&mut self` (or
//! while dropping), which is what makes the ring writer they build from `user_data`
//! exclusive (ring invariant 3). They allocate nothing, take no lock, never block, and
//! contain no operation that can panic; were one to panic anyway, `extern "C"` turns the
//! unwind into an abort rather than undefined behaviour.

use core::ffi::CStr;

use cty::{c_char, c_int, c_void, size_t};

use crate::EventMask;
use crate::event::Kind;
use crate::jsonrpc::response_id::response_id;
use crate::ring::{Producer, Writer};
use crate::sys;

/// Points every callback of `options` at this module and `user_data` at the ring.
pub(super) fn install(options: &mut sys::stdio_bus_options_t, producer: &Producer<'_>) {
    options.on_message = Some(on_message);
    options.on_error = Some(on_error);
    options.on_log = Some(on_log);
    options.on_worker = Some(on_worker);
    options.on_client_connect = Some(on_client_connect);
    options.on_client_disconnect = Some(on_client_disconnect);
    options.user_data = producer.user_data();
}

unsafe extern "C" fn on_message(
    _bus: *mut sys::stdio_bus_t,
    msg: *const c_char,
    len: size_t,
    user_data: *mut c_void,
) {
    let payload = if msg.is_null() {
        &[][..]
    } else {
        // SAFETY: the kernel passes `len` readable bytes at `msg`, valid for this call.
        unsafe { core::slice::from_raw_parts(msg.cast::<u8>(), len) }
    };
    let crate::interpose::Line::From(worker) = crate::interpose::take_line(payload) else {
        return;
    };
    // SAFETY: `user_data` is the ring of the bus whose call is running (see `install`).
    let mut writer = unsafe { Writer::from_user_data(user_data) };
    if writer.wants(EventMask::MESSAGE) {
        let worker = worker.map_or(-1, |id| id as c_int);
        writer.push_answering(Kind::Message, worker, payload, response_id);
    }
}

/// The five callbacks that carry an integer and a C string share this body.
///
/// # Safety
///
/// `user_data` is as in [`install`]; `text` is NULL or a NUL-terminated string valid for
/// the duration of the call.
unsafe fn record_text(
    user_data: *mut c_void,
    mask: EventMask,
    kind: Kind,
    value: c_int,
    text: *const c_char,
) {
    // SAFETY: forwarded from the caller.
    let mut writer = unsafe { Writer::from_user_data(user_data) };
    let payload = if text.is_null() {
        &[][..]
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { CStr::from_ptr(text) }.to_bytes()
    };
    let wanted = match kind {
        Kind::Log => writer.wants_log(value),
        _ => writer.wants(mask),
    };
    if wanted {
        writer.push(kind, value, payload);
    }
}

unsafe extern "C" fn on_error(
    _bus: *mut sys::stdio_bus_t,
    code: c_int,
    text: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the kernel's contract for this callback is `record_text`'s.
    unsafe { record_text(user_data, EventMask::ERROR, Kind::Error, code, text) }
}

unsafe extern "C" fn on_log(
    _bus: *mut sys::stdio_bus_t,
    level: c_int,
    text: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the kernel's contract for this callback is `record_text`'s.
    unsafe { record_text(user_data, EventMask::LOG, Kind::Log, level, text) }
}

unsafe extern "C" fn on_worker(
    _bus: *mut sys::stdio_bus_t,
    id: c_int,
    event: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the kernel's contract for this callback is `record_text`'s.
    unsafe { record_text(user_data, EventMask::WORKER, Kind::Worker, id, event) }
}

unsafe extern "C" fn on_client_connect(
    _bus: *mut sys::stdio_bus_t,
    id: c_int,
    peer: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the kernel's contract for this callback is `record_text`'s.
    unsafe {
        record_text(
            user_data,
            EventMask::CLIENT_CONNECTED,
            Kind::ClientConnected,
            id,
            peer,
        )
    }
}

unsafe extern "C" fn on_client_disconnect(
    _bus: *mut sys::stdio_bus_t,
    id: c_int,
    reason: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the kernel's contract for this callback is `record_text`'s.
    unsafe {
        record_text(
            user_data,
            EventMask::CLIENT_DISCONNECTED,
            Kind::ClientDisconnected,
            id,
            reason,
        )
    }
}
