//! Contender 1: raw `sys` calls, with a message callback that only counts and records the
//! response id. No safe layer: the kernel as it comes.

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr;
use std::time::{Duration, Instant};

use stdiobus_embed::sys;

use crate::measure::{Outcome, measure};
use crate::messages::{Messages, response_id};
use crate::placement::place_workers;
use crate::processes::{children, reap};
use crate::settings::{MAX_INPUT_BUFFER, STEP_MS, Settings, WORKER, Workload};
use crate::stepped::{Kernel, Stepped};

/// One round of `workload` on a fresh kernel instance and worker.
pub fn round(workload: Workload, s: &Settings, m: &Messages, counting: bool) -> Outcome {
    let bus = match RawBus::start(&config_json(s)) {
        Ok(bus) => bus,
        Err(e) => return Outcome::failed(format!("failed: start: {e}")),
    };
    place_workers(s, &bus.pids);
    let pids = bus.pids.clone();
    let mut contender = Stepped::new(bus);
    let mut outcome =
        measure(&mut contender, &pids, workload, s, m, counting).unwrap_or_else(Outcome::failed);
    if !contender.into_inner().shutdown() {
        outcome.shutdown = Some("raw instance leaked: workers did not stop".into());
    }
    outcome
}

/// The same configuration as JSON, for the raw contender.
fn config_json(s: &Settings) -> String {
    format!(
        r#"{{"pools":[{{"id":"echo","command":"{WORKER}","args":[],"instances":{}}}],"limits":{{"max_input_buffer":{MAX_INPUT_BUFFER}}}}}"#,
        s.workers
    )
}

/// What the callbacks record. Only the message callback matters on the hot path.
#[derive(Default)]
struct Counts {
    messages: Cell<u64>,
    last_id: Cell<u64>,
    errors: Cell<u64>,
    last_error: Cell<c_int>,
    stopped: Cell<usize>,
}

unsafe extern "C" fn on_message(
    _bus: *mut sys::stdio_bus_t,
    msg: *const c_char,
    len: usize,
    user: *mut c_void,
) {
    // SAFETY: `user` is the `Counts` of the live `RawBus` (see `start`).
    let counts = unsafe { &*user.cast::<Counts>() };
    // SAFETY: the kernel passes `len` readable bytes.
    let line = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    counts.messages.set(counts.messages.get() + 1);
    counts.last_id.set(response_id(line).unwrap_or(u64::MAX));
}

unsafe extern "C" fn on_error(
    _bus: *mut sys::stdio_bus_t,
    code: c_int,
    _text: *const c_char,
    user: *mut c_void,
) {
    // SAFETY: as for `on_message`.
    let counts = unsafe { &*user.cast::<Counts>() };
    counts.errors.set(counts.errors.get() + 1);
    counts.last_error.set(code);
}

unsafe extern "C" fn on_log(
    _bus: *mut sys::stdio_bus_t,
    _level: c_int,
    _text: *const c_char,
    _user: *mut c_void,
) {
    // Without a log callback the kernel prints every line to stderr.
}

unsafe extern "C" fn on_worker(
    _bus: *mut sys::stdio_bus_t,
    _id: c_int,
    event: *const c_char,
    user: *mut c_void,
) {
    // SAFETY: as for `on_message`; `event` is a NUL-terminated word.
    let (counts, word) = unsafe { (&*user.cast::<Counts>(), std::ffi::CStr::from_ptr(event)) };
    if word.to_bytes() == b"stopped" {
        counts.stopped.set(counts.stopped.get() + 1);
    }
}

/// One kernel instance driven by hand.
pub struct RawBus {
    bus: *mut sys::stdio_bus_t,
    counts: Box<Counts>,
    pub pids: Vec<i32>,
    _options: Box<sys::stdio_bus_options_t>,
    _json: CString,
}

impl RawBus {
    pub fn start(json: &str) -> Result<Self, String> {
        let json = CString::new(json).map_err(|e| e.to_string())?;
        let counts = Box::<Counts>::default();
        let options = Box::new(sys::stdio_bus_options_t {
            config_path: ptr::null(),
            config_json: json.as_ptr(),
            listener: sys::stdio_bus_listener_config_t {
                mode: sys::STDIO_BUS_LISTEN_NONE,
                tcp_host: ptr::null(),
                tcp_port: 0,
                unix_path: ptr::null(),
            },
            on_message: Some(on_message),
            on_error: Some(on_error),
            on_log: Some(on_log),
            on_worker: Some(on_worker),
            on_client_connect: None,
            on_client_disconnect: None,
            user_data: ptr::from_ref::<Counts>(&counts).cast_mut().cast(),
            log_level: sys::STDIO_BUS_LOG_ERROR,
        });
        let before = children();
        // SAFETY: the options and every string they point to outlive the instance.
        let bus = unsafe { sys::stdio_bus_create(&*options) };
        if bus.is_null() {
            return Err("stdio_bus_create returned NULL".into());
        }
        // SAFETY: a live, created instance.
        let rc = unsafe { sys::stdio_bus_start(bus) };
        let pids = children().difference(&before).copied().collect();
        if rc < 0 {
            return Err(format!("stdio_bus_start: {rc}"));
        }
        Ok(RawBus {
            bus,
            counts,
            pids,
            _options: options,
            _json: json,
        })
    }

    /// Shuts down the way the 1.1.1 archive survives: SIGTERM to the workers, step
    /// until the kernel saw every one stop, then `stop`, step to STOPPED, `destroy`.
    /// Returns whether the instance could be destroyed (it is leaked otherwise).
    pub fn shutdown(self) -> bool {
        for &pid in &self.pids {
            // SAFETY: our unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.counts.stopped.get() < self.pids.len() && Instant::now() < deadline {
            // SAFETY: a live instance.
            unsafe { sys::stdio_bus_step(self.bus, 10) };
        }
        // SAFETY: a live instance.
        unsafe { sys::stdio_bus_stop(self.bus, 0) };
        // SAFETY: a live instance.
        while unsafe { sys::stdio_bus_get_state(self.bus) } != sys::STDIO_BUS_STATE_STOPPED
            && Instant::now() < deadline
        {
            // SAFETY: a live instance.
            unsafe { sys::stdio_bus_step(self.bus, 10) };
        }
        // SAFETY: a live instance.
        let stopped = unsafe { sys::stdio_bus_get_state(self.bus) } == sys::STDIO_BUS_STATE_STOPPED;
        let safe = stopped && self.counts.stopped.get() >= self.pids.len();
        if safe {
            // SAFETY: STOPPED, every worker connection closed; never used again.
            unsafe { sys::stdio_bus_destroy(self.bus) };
        } else {
            // Leaked with its counts: destroying it could crash the archive.
            std::mem::forget(self.counts);
            std::mem::forget(self._options);
            std::mem::forget(self._json);
        }
        for &pid in &self.pids {
            reap(pid);
        }
        safe
    }
}

impl Kernel for RawBus {
    type Message = Vec<u8>;

    #[inline]
    fn ingest(&mut self, message: &Vec<u8>) -> Result<(), String> {
        // SAFETY: a live instance; the kernel reads `len` bytes during the call.
        let rc = unsafe { sys::stdio_bus_ingest(self.bus, message.as_ptr().cast(), message.len()) };
        if rc < 0 {
            return Err(format!("stdio_bus_ingest: {rc}"));
        }
        Ok(())
    }

    #[inline]
    fn step(&mut self) -> Result<(), String> {
        // SAFETY: a live instance; callbacks reach `counts`, which outlives it.
        let rc = unsafe { sys::stdio_bus_step(self.bus, STEP_MS) };
        if rc < 0 {
            return Err(format!("stdio_bus_step: {rc}"));
        }
        if self.counts.errors.get() > 0 {
            return Err(format!(
                "error callback: code {}",
                self.counts.last_error.get()
            ));
        }
        Ok(())
    }

    #[inline]
    fn replies(&self) -> u64 {
        self.counts.messages.get()
    }

    #[inline]
    fn last_id(&self) -> u64 {
        self.counts.last_id.get()
    }
}
