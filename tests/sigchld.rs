//! A host that ignores SIGCHLD, or reaps every child itself, still gets its crashed workers
//! restarted: the bus cannot learn how such a worker ended (its status is gone with the
//! reap), so it takes the end for a crash.
//!
//! Alone in its binary because a signal disposition and a `waitpid(-1)` are process-wide.

mod common;

use common::{Seen, WORKER, call, config, options, ring, signal_worker};
use serde_json::json;
use stdiobus_embed::{Bus, Consumer, ExitStatus, Limits, Pool, Running, WorkerId};

fn start(instances: u32) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, events) = ring();
    let pools = [Pool::new("echo", WORKER).instances(instances)];
    let bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    (bus.start().unwrap(), events)
}

/// Kills worker `id`, lets the host do `after_kill` with its pid, and waits until the
/// worker is reported ended, then restarted, and answers.
fn crash_and_come_back(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    id: WorkerId,
    after_kill: impl FnOnce(u32),
) {
    let old = bus.worker_pid(id).unwrap();
    signal_worker(bus, id, libc::SIGKILL);
    after_kill(old);
    let mut seen = Vec::new();
    let back = |seen: &[Seen]| {
        let after = |from: usize, wanted: &Seen| {
            Some(from + seen[from..].iter().position(|s| s == wanted)?)
        };
        let Some(exited) = seen
            .iter()
            .position(|s| matches!(s, Seen::Exited(i, ExitStatus::Unknown) if *i == id))
        else {
            return false;
        };
        after(exited, &Seen::Worker(id, "restarting".into()))
            .and_then(|restarting| after(restarting, &Seen::Worker(id, "started".into())))
            .is_some()
    };
    common::poll_until(bus, events, &mut seen, "the crash, then the restart", back);
    let new = bus.worker_pid(id).expect("the restarted worker");
    assert_ne!(new, old);
    let answer = call(
        bus,
        events,
        &json!({"jsonrpc":"2.0","id":7,"method":"ping","pool":"echo"}),
    );
    assert_eq!(answer["id"], 7, "{answer}");
}

#[test]
fn crashed_workers_are_restarted_whoever_reaps_them() {
    // A host that ignores SIGCHLD: the system reaps every child at once.
    // SAFETY: setting a standard disposition; this binary's only test runs alone.
    let previous = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let (mut bus, mut events) = start(1);
    crash_and_come_back(&mut bus, &mut events, WorkerId::new(0), |_| {});
    drop(bus);
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGCHLD, previous) };

    // A host that reaps every child of its own with `waitpid(-1)`, here before the bus
    // could look.
    let (mut bus, mut events) = start(3);
    crash_and_come_back(&mut bus, &mut events, WorkerId::new(1), |pid| {
        let mut status = 0;
        // SAFETY: a valid status pointer; blocks until a child ends, as the killed one does.
        while unsafe { libc::waitpid(-1, &mut status, 0) } != pid as libc::pid_t {}
    });
    assert_eq!(
        (0..3)
            .filter(|&id| bus.worker_pid(WorkerId::new(id)).is_some())
            .count(),
        3,
        "the pool serves with all its workers"
    );
}
