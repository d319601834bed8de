//! A worker's launch settings applied in the forked child, right before its exec: the
//! directory, stderr, the environment (module invariant 6). Only async-signal-safe calls,
//! and nothing allocated: the settings were laid out by the parent at `create`
//! ([`LaunchTable`](crate::launch::LaunchTable)), and the environment's array is built on
//! this child's stack.

use core::ptr;

use cty::{c_char, c_int};

use crate::launch::{Launch, Stderr};
use crate::limits::MAX_WORKER_ENV;

unsafe extern "C" {
    /// The process's environment, as libc keeps it (glibc and musl both export it).
    static environ: *const *const c_char;
}

/// Enters the pool's directory, if it has one; the errno of a failure.
pub(super) fn enter_cwd(launch: &Launch<'_>) -> Result<(), c_int> {
    let Some(dir) = launch.cwd else {
        return Ok(());
    };
    // SAFETY: `dir` ends with its NUL (the table writes one after each directory).
    if unsafe { libc::chdir(dir.as_ptr().cast()) } != 0 {
        return Err(crate::os::errno());
    }
    Ok(())
}

/// Points stderr where the pool says: `/dev/null`, or left as it is (`inherit`; `tagged`
/// is the parent's pipe, put in place by [`tagged_stderr`]).
pub(super) fn redirect_stderr(launch: &Launch<'_>) {
    if launch.stderr == Stderr::Null {
        // SAFETY: opening a constant, NUL-terminated path and moving the descriptor onto
        // 2, in a process about to exec; on failure stderr stays as it was.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 2);
                libc::close(null);
            }
        }
    }
}

/// Puts `pipe` (the write end of the bus's stderr pipe for this worker) on stderr.
pub(super) fn tagged_stderr(pipe: c_int) {
    if pipe >= 0 {
        // SAFETY: moving a descriptor the parent made for this child onto 2; the original
        // is close-on-exec.
        unsafe { libc::dup2(pipe, 2) };
    }
}

/// Execs `file` with `argv` and the pool's environment: its variables, then the host's
/// whose names it does not set (none if it replaces the host's). Returns only on failure,
/// with errno set (`E2BIG` for more than [`MAX_WORKER_ENV`] variables).
///
/// # Safety
///
/// `file` and `argv` are the kernel's arguments to `execvp`.
pub(super) unsafe fn exec(
    launch: &Launch<'_>,
    file: *const c_char,
    argv: *const *const c_char,
) -> c_int {
    if !launch.sets_env() {
        // SAFETY: the caller's contract.
        return unsafe { libc::execvp(file, argv) };
    }
    let mut envp = [ptr::null::<c_char>(); MAX_WORKER_ENV + 1];
    let mut len = 0;
    let mut push = |entry: *const c_char| {
        let slot = envp.get_mut(len).filter(|_| len < MAX_WORKER_ENV);
        slot.map(|slot| {
            *slot = entry;
            len += 1;
        })
    };
    let mut fits = launch.vars().all(|var| push(var.as_ptr().cast()).is_some());
    if launch.inherit_env {
        // SAFETY: `environ` is the host's NULL-terminated array of NUL-terminated entries,
        // as the fork copied it; this child alone runs now.
        let mut host = unsafe { environ };
        while fits && !host.is_null() {
            // SAFETY: within the array, up to and including its NULL.
            let entry = unsafe { *host };
            if entry.is_null() {
                break;
            }
            // SAFETY: `entry` is NUL-terminated.
            if !launch.vars().any(|var| unsafe { same_name(var, entry) }) {
                fits = push(entry).is_some();
            }
            // SAFETY: `entry` was not the terminating NULL.
            host = unsafe { host.add(1) };
        }
    }
    if !fits {
        crate::os::set_errno(libc::E2BIG);
        return -1;
    }
    // SAFETY: the caller's contract; `envp` is NULL-terminated (its last slot is never
    // written) and every entry NUL-terminated.
    unsafe { libc::execvpe(file, argv, envp.as_ptr()) }
}

/// Whether the host's entry `entry` names the variable of `var` (`NAME=VALUE\0`).
///
/// # Safety
///
/// `entry` is NUL-terminated.
unsafe fn same_name(var: &[u8], entry: *const c_char) -> bool {
    let name = var.split(|&b| b == b'=').next().unwrap_or_default();
    for (i, &byte) in name.iter().enumerate() {
        // SAFETY: every byte up to here matched a non-NUL byte, so the entry goes on.
        if unsafe { *entry.add(i) } as u8 != byte {
            return false;
        }
    }
    // SAFETY: as above: the byte after the matched name is within the entry.
    unsafe { *entry.add(name.len()) as u8 == b'=' }
}
