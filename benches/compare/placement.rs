//! CPU placement of the host, its threads and the workers (`BENCH_PIN`).

use crate::settings::{Pin, Settings};

/// The first two CPUs this process may run on (the second is the first on a 1-CPU box).
#[cfg(target_os = "linux")]
pub fn two_cpus() -> (usize, usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid out-parameter of the size given.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| rc == 0 && unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    let first = allowed.first().copied().unwrap_or(0);
    (first, allowed.get(1).copied().unwrap_or(first))
}

/// Pins `pid` (0: the calling thread, and what it creates afterwards) to `cpu`.
#[cfg(target_os = "linux")]
fn pin(pid: i32, cpu: usize) {
    // SAFETY: as in `two_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from the allowed set, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: a valid set of the size given; failure leaves the placement as it was.
    unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
}

#[cfg(not(target_os = "linux"))]
pub fn two_cpus() -> (usize, usize) {
    (0, 0)
}

#[cfg(not(target_os = "linux"))]
fn pin(_pid: i32, _cpu: usize) {}

/// Places the calling thread, before it starts any bus, runtime or child.
pub fn place_host(s: &Settings) {
    if s.pin != Pin::None {
        pin(0, s.cpus.0);
    }
}

/// Places freshly started workers (in `Same` they inherited the host's CPU already).
pub fn place_workers(s: &Settings, pids: &[i32]) {
    if s.pin == Pin::Split {
        for &pid in pids {
            pin(pid, s.cpus.1);
        }
    }
}
