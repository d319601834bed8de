//! The host's own children stay the host's: the kernel reaps only its workers, whatever
//! the SIGCHLD disposition.
//!
//! Alone in its binary because it changes the process-wide SIGCHLD disposition.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEADLINE, start_echo};
use stdiobus_embed::{ExitStatus, WorkerId};

extern "C" fn note_sigchld(_signal: libc::c_int) {}

#[test]
fn the_hosts_children_keep_their_exit_status_while_the_kernel_reaps() {
    let handler = note_sigchld as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for (what, disposition) in [("default", libc::SIG_DFL), ("a handler", handler)] {
        // SAFETY: a zeroed sigaction with a valid disposition; the handler does nothing.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = disposition;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
        }
        let (mut bus, mut events) = start_echo(2);
        let mut child = Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        while common::process_state(child.id()) != Some('Z') {
            assert!(Instant::now() < deadline, "the host's child never exited");
            std::thread::sleep(Duration::from_millis(1));
        }
        // A worker dies while the host's child waits to be reaped: the kernel reaps.
        common::signal_worker(&bus, WorkerId::new(1), libc::SIGKILL);
        assert_eq!(
            common::wait_for_exit(&mut bus, &mut events, WorkerId::new(1)),
            ExitStatus::Signal(libc::SIGKILL)
        );
        assert!(
            common::process_state(child.id()) == Some('Z'),
            "with SIGCHLD at {what}: left to the host"
        );
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(7), "with SIGCHLD at {what}");
        drop(bus);
    }

    // Ignored, the system reaps every child at once: the host's children are beyond
    // anyone's wait, and a dead worker's status is gone, but its death is still seen (and
    // taken for a crash: `tests/sigchld.rs`).
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let (mut bus, mut events) = start_echo(2);
    let killed = bus.worker_pid(WorkerId::new(0)).unwrap();
    common::signal_worker(&bus, WorkerId::new(0), libc::SIGKILL);
    assert_eq!(
        common::wait_for_exit(&mut bus, &mut events, WorkerId::new(0)),
        ExitStatus::Unknown
    );
    for id in 1..=2 {
        let answer = common::call(
            &mut bus,
            &mut events,
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "pid"}),
        );
        let pid = answer["result"]["pid"].as_u64();
        let live = [0, 1].map(|id| bus.worker_pid(WorkerId::new(id)).map(u64::from));
        assert!(
            live.contains(&pid) && pid != Some(u64::from(killed)),
            "a live worker serves, not the dead one: {pid:?} of {live:?}"
        );
    }
}
