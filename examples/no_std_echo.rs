//! The echo job from a host with neither `std` nor `alloc`: a static ring, the config
//! writer, the typestate bus, and output through the C library.
//!
//! ```text
//! cargo build --profile image --example no_std_echo --no-default-features --features prebuilt \
//!     --target x86_64-unknown-linux-musl
//! target/x86_64-unknown-linux-musl/image/examples/no_std_echo [WORKER]
//! ```
//!
//! It starts two workers (`/bin/cat`, or the program named on the command line, which must
//! echo each line it reads), sends 1 000 JSON-RPC requests one at a time, checks that each
//! comes back unchanged, stops the bus and exits 0; any failure prints a line on stderr and
//! exits 1.
//!
//! It is `no_std` and `no_main` when built as above: without the crate's `std` feature and
//! with `panic = "abort"` (the `image` profile). Built any other way (`cargo test` builds
//! every example) the same code runs from an ordinary `main`.

#![cfg_attr(all(not(feature = "std"), panic = "abort"), no_std, no_main)]

use core::ffi::{CStr, c_int};
use core::fmt::{self, Write};
use core::time::Duration;

use stdiobus_embed::{Bus, ConfigBuffer, Event, EventRing, Limits, Options, Pool};

/// Round trips to make.
const REQUESTS: u32 = 1000;
/// How long one `poll` may wait; the bus returns as soon as a worker writes.
const POLL: Duration = Duration::from_millis(100);
/// Polls without an answer before a request counts as lost (about 5 s).
const PATIENCE: u32 = 50;

/// Events land here: 64 slots of 512 bytes, in static storage.
static RING: EventRing<64, 512> = EventRing::new();

/// Writes to a file descriptor through the C library.
struct Fd(c_int);

impl Write for Fd {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            // SAFETY: `rest` is valid for reads of its length.
            let n = unsafe { libc::write(self.0, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return Err(fmt::Error);
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

/// A request line in a fixed buffer.
struct Line {
    bytes: [u8; 96],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn run(worker: &CStr) -> Result<(), &'static str> {
    let (producer, mut events) = RING.split().map_err(|_| "the ring was split before")?;
    let worker = worker
        .to_str()
        .map_err(|_| "the worker's path is not UTF-8")?;
    let mut json = ConfigBuffer::<512>::new();
    let config = json
        .write(
            &[Pool::new("echo", worker).instances(2)],
            &Limits::default(),
        )
        .map_err(|_| "the configuration was refused")?;
    let bus = Bus::create(config, Options::new(), producer).map_err(|_| "create failed")?;
    let mut bus = bus.start().map_err(|_| "start failed")?;

    for id in 0..REQUESTS {
        let mut line = Line {
            bytes: [0; 96],
            len: 0,
        };
        write!(line, r#"{{"jsonrpc":"2.0","id":{id},"method":"echo"}}"#)
            .map_err(|_| "a request did not fit its buffer")?;
        let sent = &line.bytes[..line.len];
        bus.send(sent).map_err(|_| "send failed")?;
        let mut answered = false;
        let mut polls = 0;
        while !answered {
            polls += 1;
            if polls > PATIENCE {
                return Err("a request was never answered");
            }
            bus.poll(POLL).map_err(|_| "poll failed")?;
            while let Some(event) = events.read() {
                match event.event() {
                    Event::Message { line: echo, .. } if echo.as_bytes() == sent => answered = true,
                    Event::Message { .. } => return Err("an answer did not match its request"),
                    Event::Overflow(_) => return Err("events were lost"),
                    _ => {}
                }
            }
        }
    }
    bus.stop(Duration::from_secs(1))
        .map_err(|_| "stop failed")?;
    Ok(())
}

/// Runs the job and reports; the process's exit status.
fn report(worker: &CStr) -> c_int {
    match run(worker) {
        Ok(()) => {
            let _ = writeln!(Fd(1), "no_std_echo: {REQUESTS} round trips echoed");
            0
        }
        Err(why) => {
            let _ = writeln!(Fd(2), "no_std_echo: {why}");
            1
        }
    }
}

const DEFAULT_WORKER: &CStr = c"/bin/cat";

/// The C entry point of a `no_main` program: `argv[1]`, if given, names the worker.
#[cfg(all(not(feature = "std"), panic = "abort"))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const core::ffi::c_char) -> c_int {
    let worker = if argc > 1 {
        // SAFETY: the C runtime passes `argc` valid, NUL-terminated arguments.
        unsafe { CStr::from_ptr(*argv.add(1)) }
    } else {
        DEFAULT_WORKER
    };
    report(worker)
}

#[cfg(all(not(feature = "std"), panic = "abort"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Fd(2), "no_std_echo: {info}");
    // SAFETY: ending the process; nothing is left to unwind.
    unsafe { libc::abort() }
}

// glibc's static `libc.a` calls the unwinder, in `libgcc_eh`, on its cold paths.
#[cfg(all(
    not(feature = "std"),
    panic = "abort",
    target_env = "gnu",
    target_feature = "crt-static"
))]
#[link(name = "gcc_eh", kind = "static")]
unsafe extern "C" {}

/// The prebuilt `compiler_builtins` names this personality routine when linked against
/// glibc, and on aarch64; with `panic = "abort"` nothing unwinds, so it is never called.
#[cfg(all(
    not(feature = "std"),
    panic = "abort",
    any(target_env = "gnu", target_arch = "aarch64")
))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[cfg(not(all(not(feature = "std"), panic = "abort")))]
fn main() {
    let worker = std::env::args_os().nth(1).map(|arg| {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::CString::new(arg.as_bytes()).expect("an argument has no NUL")
    });
    std::process::exit(report(worker.as_deref().unwrap_or(DEFAULT_WORKER)));
}
