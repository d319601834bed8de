//! The kernel can serve descriptor numbers below 1024 only; the bus never hands it another.
//!
//! Alone in its binary because it fills the process's descriptor table and lowers its
//! limits; its tests take turns.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;

use common::{Seen, WORKER, call, config, options, ring};
use serde_json::json;
use stdiobus_embed::{Bus, Error, Failed, Limits, Pool, WorkerId};

/// Held by each test for its whole run: the descriptor limit is the process's.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-parameter.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit
}

fn set_nofile(limit: libc::rlimit) {
    // SAFETY: a valid limit, the soft one within the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// With the descriptor limit just above what the host holds, at every step of the way, a
/// bus either refuses to start with a clear error, or starts with every worker
/// supervised: a killed worker is seen to end and comes back.
#[test]
fn a_descriptor_shortage_at_start_is_refused_or_harmless() {
    let _alone = alone();
    let pools = [Pool::new("echo", WORKER).instances(2)];
    let base = nofile();
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let (mut started, mut refused) = (0, 0);
    // Numbers below the host's highest may be free: the limit goes from the least.
    for allowed in 3..=highest + 13 {
        let (producer, mut events) = ring();
        set_nofile(libc::rlimit {
            rlim_cur: allowed,
            rlim_max: base.rlim_max,
        });
        let outcome = Bus::create(config(&pools, &Limits::default()), options(), producer)
            .map_err(|failed| failed.error)
            .and_then(|bus| bus.start().map_err(|failed| failed.error));
        set_nofile(base);
        let mut bus = match outcome {
            Err(error) => {
                assert_eq!(
                    error,
                    Error::NoLowDescriptor,
                    "with descriptors below {allowed}"
                );
                refused += 1;
                continue;
            }
            Ok(bus) => bus,
        };
        started += 1;
        let killed = WorkerId::new(0);
        let pid = bus.worker_pid(killed).expect("a supervised worker");
        // SAFETY: the bus's unreaped worker.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
        let mut seen = Vec::new();
        common::poll_until(
            &mut bus,
            &mut events,
            &mut seen,
            &format!("worker 0 to end and come back, with descriptors below {allowed}"),
            |seen| {
                let exited = seen
                    .iter()
                    .position(|s| matches!(s, Seen::Exited(id, _) if *id == killed));
                exited
                    .is_some_and(|at| seen[at..].contains(&Seen::Worker(killed, "started".into())))
            },
        );
    }
    assert!(
        refused > 0 && started > 0,
        "refused {refused}, started {started}"
    );
}

#[test]
fn a_host_holding_1100_descriptors_gets_a_clear_error_then_a_working_bus() {
    let _alone = alone();
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
