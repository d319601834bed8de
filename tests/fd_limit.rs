//! The kernel can serve descriptor numbers below 1024 only; the bus never hands it another.
//!
//! Alone in its binary because it fills the process's descriptor table.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;

use common::{WORKER, call, config, options, ring};
use serde_json::json;
use stdiobus_embed::{Bus, Error, Failed, Limits, Pool};

#[test]
fn a_host_holding_1100_descriptors_gets_a_clear_error_then_a_working_bus() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-parameter, then the same struct back with a raised soft limit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max.min(4096);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= 1200,
        "the hard limit allows too few descriptors"
    );
    let pools = [Pool::new("echo", WORKER).instances(2)];
    let (producer, mut events) = ring();

    let mut held: Vec<File> = Vec::new();
    while held.len() < 1100 {
        held.push(File::open("/dev/null").unwrap());
    }
    assert!(held.iter().any(|f| f.as_raw_fd() >= 1024));
    // Every number below 1024 is taken: `create` (its event loop) or `start` (the
    // worker pipes) says so, and hands the producer back.
    let (error, producer) =
        match Bus::create(config(&pools, &Limits::default()), options(), producer) {
            Err(Failed { error, value }) => (error, value),
            Ok(bus) => match bus.start() {
                Err(Failed { error, value }) => (error, value.into_producer()),
                Ok(_) => panic!("a bus started with no descriptor below 1024 free"),
            },
        };
    assert_eq!(error, Error::NoLowDescriptor);
    assert!(error.to_string().contains("1024"), "{error}");

    // With a few low numbers free, the bus works and keeps below 1024.
    held.retain(|file| !(100..140).contains(&file.as_raw_fd()));
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer)
        .unwrap()
        .start()
        .unwrap();
    let answer = call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "m"}),
    );
    assert_eq!(answer["id"], 1);
    assert!(bus.poll_fd().is_some_and(|fd| fd < 1024));
}
