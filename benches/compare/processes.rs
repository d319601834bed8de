//! The worker processes: finding them, reading their counters, collecting them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every pid that is a child of some thread of this process.
pub fn children() -> BTreeSet<i32> {
    let mut pids = BTreeSet::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Bytes the given processes have read so far (`rchar` in `/proc/PID/io`); after startup
/// an echo worker reads nothing but its stdin.
pub fn bytes_read(pids: &[i32]) -> Option<u64> {
    let mut total = 0;
    for pid in pids {
        let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        let line = text.lines().find(|l| l.starts_with("rchar:"))?;
        total += line["rchar:".len()..].trim().parse::<u64>().ok()?;
    }
    Some(total)
}

/// Waits up to two seconds for child `pid`, then kills and collects it.
pub fn reap(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc != 0 {
            return; // collected, or not ours (any more)
        }
        if Instant::now() >= deadline {
            // SAFETY: still our unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
