//! Workers that die together each wake an event loop asleep on the bus's descriptor.
//!
//! Alone in its binary because it measures how soon the deaths are seen: tests running
//! beside it would be measured too.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, WORKER, config, options, ring};
use stdiobus_embed::{Bus, Consumer, Event, Limits, Pool, Running, WorkerEvent, WorkerId};

/// What this test looks at: worker words and exits, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Exited(WorkerId),
    Word(WorkerId, String),
}

fn drain(events: &mut Consumer<'_>, into: &mut Vec<Seen>) {
    events.drain(|event| match event {
        Event::Worker {
            id,
            event: WorkerEvent::Exited(_),
        } => into.push(Seen::Exited(id)),
        Event::Worker { id, event } => into.push(Seen::Word(id, event.to_string())),
        _ => {}
    });
}

fn start(instances: u32) -> (Bus<'static, Running>, Consumer<'static>) {
    let (producer, events) = ring();
    let pools = [Pool::new("echo", WORKER).instances(instances)];
    let bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    (bus.start().unwrap(), events)
}

fn kill(pid: u32) {
    // SAFETY: `pid` is a live worker of the test's bus, unreaped, so not reused.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

/// Whether worker `id` was seen to exit, then to restart and start.
fn restarted(id: WorkerId) -> impl Fn(&[Seen]) -> bool {
    move |seen| {
        let after = |from: usize, wanted: &Seen| {
            Some(from + seen[from..].iter().position(|s| s == wanted)?)
        };
        seen.iter()
            .position(|s| *s == Seen::Exited(id))
            .and_then(|exited| after(exited, &Seen::Word(id, "restarting".into())))
            .and_then(|restarting| after(restarting, &Seen::Word(id, "started".into())))
            .is_some()
    }
}

/// Whether `fd` is readable now.
fn readable(fd: libc::c_int) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, 0) == 1 }
}

/// Workers that die together each wake an event loop asleep on the bus's descriptor with
/// no timeout: every exit and every restart is seen soon after the deaths, with no other
/// traffic to wake the loop. Each round starts a bus of four workers, so that every
/// restart is the first of its worker (no backoff), and kills them all at once.
#[test]
fn workers_killed_together_each_wake_a_loop_asleep_on_the_descriptor() {
    const ROUNDS: usize = 200;
    const WORKERS: u32 = 4;
    // How soon after the deaths every exit and restart must have been seen. Under
    // AddressSanitizer (the CI's instrumented pass sets ASAN_OPTIONS) every fork copies
    // the sanitizer's shadow mappings and takes ten times as long: there the test checks
    // that no death is slept through, and allows ten times the time.
    let soon = if std::env::var_os("ASAN_OPTIONS").is_some() {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(100)
    };
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        let (mut bus, mut events) = start(WORKERS);
        let fd = bus.poll_fd().expect("the kernel's epoll descriptor");
        let mut seen = Vec::new();
        while readable(fd) {
            bus.poll(Duration::ZERO).unwrap();
            drain(&mut events, &mut seen);
        }
        seen.clear();
        let pids: Vec<u32> = (0..WORKERS)
            .map(|id| bus.worker_pid(WorkerId::new(id)).unwrap())
            .collect();
        let (alarm, alarm_in) = std::os::unix::net::UnixStream::pair().unwrap();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let killer = std::thread::spawn(move || {
            let killed_at = Instant::now();
            for pid in pids {
                kill(pid);
            }
            // A loop that sleeps through a death is woken by this, and fails.
            if finished.recv_timeout(DEADLINE).is_err() {
                use std::io::Write;
                let _ = (&alarm).write_all(b"!");
            }
            killed_at
        });
        let all_restarted =
            |seen: &[Seen]| (0..WORKERS).all(|id| restarted(WorkerId::new(id))(seen));
        while !all_restarted(&seen) {
            let mut fds = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&alarm_in),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds; no timeout, as an idle event loop waits.
            assert!(unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } > 0);
            assert_eq!(
                fds[1].revents, 0,
                "round {round}: the loop slept through a death; saw {seen:#?}"
            );
            bus.poll(Duration::ZERO).unwrap();
            drain(&mut events, &mut seen);
        }
        let seen_at = Instant::now();
        done.send(()).unwrap();
        let killed_at = killer.join().unwrap();
        slowest = slowest.max(seen_at - killed_at);
    }
    assert!(
        slowest <= soon,
        "the slowest round saw its exits and restarts {slowest:?} after the deaths"
    );
}
