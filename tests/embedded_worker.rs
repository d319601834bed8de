//! In-process workers over a socket (newer kernel archive, feature `embedded-workers`):
//! `STDIO_BUS_LIB_DIR=<2.2.1 prebuilds> cargo test --features embedded-workers`.
#![cfg(feature = "embedded-workers")]

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use common::{Seen, WORKER, call, config, options, ring};
use serde_json::json;
use stdiobus_embed::{Bus, Limits, Pool};

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only asks whether the descriptor number is open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn an_embedded_worker_is_registered_owned_and_released_by_the_bus() {
    let (producer, mut events) = ring();
    let pools = [
        Pool::new("proc", WORKER).args(&["--name", "proc"]),
        Pool::new("inproc", "/bin/cat"),
    ];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    common::drain(&mut events, &mut Vec::new());

    let (kernel_end, host_end) = UnixStream::pair().unwrap();
    let fd = kernel_end.as_raw_fd();
    let worker = bus
        .register_embedded_worker(OwnedFd::from(kernel_end), c"inproc")
        .unwrap();
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    assert!(
        seen.contains(&Seen::Worker(worker.id(), "started".into())),
        "{seen:?}"
    );
    assert!(is_open(fd), "the kernel holds the socket");

    // The bus routes host messages to spawned workers only.
    let response = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m", "pool": "proc"}),
    );
    assert_eq!(response["result"]["worker"], "proc");

    bus.unregister_embedded_worker(worker).unwrap();
    // Other tests open descriptors meanwhile, so the number may be taken again: ask the
    // other end of the socket instead.
    assert_closed_by_the_bus(&host_end, "unregistering");
}

/// Whether every descriptor of the kernel's end is closed: then the host's end reads
/// end of file.
fn assert_closed_by_the_bus(host_end: &UnixStream, what: &str) {
    use std::io::Read;
    host_end.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let mut byte = [0u8; 1];
    let read = (&*host_end).read(&mut byte);
    assert!(
        matches!(read, Ok(0)),
        "{what} closed the kernel's end of the socket: {read:?}"
    );
}

#[test]
fn a_bus_that_stops_releases_its_embedded_workers() {
    let (producer, _events) = ring();
    let pools = [Pool::new("proc", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let (kernel_end, host_end) = UnixStream::pair().unwrap();
    let _worker = bus
        .register_embedded_worker(OwnedFd::from(kernel_end), c"proc")
        .unwrap();
    drop(bus.stop(std::time::Duration::from_secs(1)).unwrap());
    assert_closed_by_the_bus(&host_end, "stopping");
}
