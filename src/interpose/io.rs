//! The kernel's reads of worker output and `ingest`'s writes: which worker each line
//! comes from and each message goes to, lines too long taken out, and output the ring
//! has no room for held back (module invariants 5 and 7).

use core::ptr;

use cty::{c_int, c_void};

use super::children::Output;
use super::resources::Unwritten;
use super::{KernelResources, resources};
use crate::backpressure::held;
use crate::os::set_errno;

/// `ingest`'s write of a message, then of its newline: to the worker the bus chose for it
/// (see `KernelResources::route`), whichever worker the kernel picked, and both with one
/// system call. The message's write is only noted (the caller's buffer stays valid for
/// the whole `ingest`) and reported done; the newline's write then writes both. Archive A
/// ignores the newline's result, so a failure is also noted for the bus
/// (`KernelResources::take_write_failed`); archive B reports it itself.
#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "write"))]
unsafe extern "C" fn write(fd: c_int, bytes: *const c_void, len: usize) -> isize {
    let routed = resources().and_then(|resources| Some((resources.ingest.route?, resources)));
    let Some((route, resources)) = routed else {
        // SAFETY: the kernel's arguments, forwarded.
        let write = || unsafe { libc::write(fd, bytes, len) };
        return match resources().is_none_or(|resources| resources.shield_sigpipe) {
            true => crate::sigpipe::shielded(write),
            false => write(),
        };
    };
    resources.ingest.routed = true;
    // SAFETY: the kernel's buffer of `len` bytes, valid for the call.
    let bytes = unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), len) };
    let Some(message) = resources.ingest.unwritten.take() else {
        resources.ingest.unwritten = Some(Unwritten::of(bytes));
        return len as isize;
    };
    // SAFETY: noted by the `ingest` now running, whose caller's buffer it is.
    let line = [unsafe { message.bytes() }, bytes];
    // What the pipe cannot take now is kept, when the bus said it can be (`check_room`).
    let target = (route.worker, route.generation);
    let written = resources
        .backlog
        .write(resources.epoll, route.stdin, target, line);
    if written < 0 {
        resources.ingest.write_failed = true;
        return written;
    }
    len as isize
}

/// The transport's read of a connection: every line the kernel delivers from it comes
/// before its next read, so the worker read from here is the one that wrote them.
///
/// A line longer than the kernel takes is taken out of what it reads (see `lines`), and
/// lines the ring has no room for are held back (see `held`).
///
/// The end of a worker's output is kept from the transport while the worker may be
/// restarted: the transport would close the connection, and the kernel's restart never
/// opens one for the new process. The descriptor leaves the epoll set instead, until the
/// replacement's pipe takes its number (`track`) or the bus gives the end back
/// (`KernelResources::settle_restarts`). A last line without its newline is ended by
/// one, so it is delivered rather than joined to the replacement's first line.
#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "read"))]
unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    let Some(resources) = resources() else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::read(fd, buf, len) };
    };
    let worker = resources.children.by_stdout(fd);
    resources.output.reading = worker;
    let Some(id) = worker.filter(|&id| resources.children.get(id).is_some()) else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::read(fd, buf, len) };
    };
    let buf = buf.cast::<u8>();
    let Some(filled) = read_for_kernel(resources, id, fd, buf, len) else {
        return -1;
    };
    if filled.len <= 0 || filled.end_of_output {
        return filled.len;
    }
    // SAFETY: the first `filled.len` bytes at `buf` are the kernel's, just filled.
    let data = unsafe { core::slice::from_raw_parts_mut(buf, filled.len as usize) };
    let mut room = resources.room();
    let (handed, held) = held::hand_over(data, filled.kernel_len, &mut room, filled.can_wait);
    if let Some(child) = resources.children.get_mut(id) {
        child.held = held;
    }
    if held.is_some_and(|held| !held.is_partial()) {
        resources.output.output_held = true;
    }
    if handed == 0 {
        // The ring has no room for the first line, or the line is not finished: nothing
        // this time.
        set_errno(libc::EAGAIN);
        return -1;
    }
    handed as isize
}

/// What [`read_for_kernel`] put in the kernel's buffer.
struct Filled {
    /// Bytes the kernel may get, or the end of the read (zero or less).
    len: isize,
    /// Bytes of a line the kernel holds before them.
    kernel_len: usize,
    /// Whether an unfinished line at their end may wait for more (see `held`): the
    /// buffer has room behind them, and the pipe has not ended.
    can_wait: bool,
    /// They are what ends the worker's output (see `end_of_read`): the kernel gets them
    /// as they are, never held, as the descriptor leaves the event loop.
    end_of_output: bool,
}

/// Fills the kernel's `buf` (room for `len` bytes) for worker `id`'s stdout `fd`: with its
/// held output if any, and from the pipe unless that output waits for room in the ring,
/// less any line too long. `None`: -1 with errno set.
fn read_for_kernel(
    resources: &mut KernelResources,
    id: usize,
    fd: c_int,
    buf: *mut u8,
    len: usize,
) -> Option<Filled> {
    let limit = resources.output.line_limit;
    let child = resources.children.get_mut(id)?;
    // The kernel delivered every line of the last read before this one: a line ended by
    // the bus and not delivered must not take a later one with it. Unless that line was
    // held back: it is still to come.
    if child.held.is_none() {
        child.lines.drop_next = false;
    }
    let (mut restored, mut kernel_len) = (0, child.lines.len);
    if let Some(held) = child.held.take() {
        // SAFETY: the kernel reads into its connection's buffer, with room for `len`; the
        // connection is open, as the kernel reads it.
        let Some(kept) = (unsafe { held.restore(buf, len) }) else {
            resources.count_lost(held.len());
            set_errno(libc::EAGAIN);
            return None;
        };
        (restored, kernel_len) = (kept, held.kernel_len());
        if !held.is_partial() || restored == len {
            // Output that waits for the ring goes first; the pipe is read again once all
            // of it has gone.
            return Some(Filled {
                len: kept as isize,
                kernel_len,
                can_wait: kept < len,
                end_of_output: false,
            });
        }
    }
    // Behind the start of a line held back, if any: `Lines::len` counts it.
    let room = child.lines.room(len - restored, limit);
    // SAFETY: the kernel's buffer has room for its `len`, and `restored + room <= len`.
    let read = unsafe { libc::read(fd, buf.add(restored).cast(), room) };
    if read <= 0 && restored > 0 {
        // The line's start goes now; the end of the output is read again next time.
        return Some(Filled {
            len: restored as isize,
            kernel_len,
            can_wait: false,
            end_of_output: false,
        });
    }
    if read <= 0 {
        let end = end_of_read(resources, id, fd, buf, room, read);
        return Some(Filled {
            len: end,
            kernel_len: 0,
            can_wait: false,
            end_of_output: true,
        });
    }
    // Output seen, for the liveness check: one increment per read.
    child.output_seen = child.output_seen.wrapping_add(1);
    let line_len = child.lines.len;
    // SAFETY: the read filled `read` bytes at `buf + restored`, which nothing else uses
    // now; the `line_len` bytes before them are the start of the current line, in the
    // same buffer: what the kernel holds of it, then what was held back.
    let (data, held) = unsafe {
        let at = buf.add(restored);
        (
            core::slice::from_raw_parts_mut(at, read as usize),
            core::slice::from_raw_parts(at.sub(line_len), line_len),
        )
    };
    let too_long = resources.too_long();
    let child = resources.children.get_mut(id)?;
    let ids = (&mut resources.output.line_ids, id);
    let kept = child.lines.filter(data, limit, held, ids, &mut |line_id| {
        too_long.report(id, line_id)
    });
    let total = restored + kept;
    if total == 0 {
        // All of it was a line too long: nothing for the kernel this time.
        set_errno(libc::EAGAIN);
        return None;
    }
    Some(Filled {
        len: total as isize,
        kernel_len,
        can_wait: total < len,
        end_of_output: false,
    })
}

/// What the transport's read of worker `id`'s stdout `fd` (into `buf`, of `len`) gets
/// when the pipe's `read` gave `read`, zero or less.
fn end_of_read(
    resources: &mut KernelResources,
    id: usize,
    fd: c_int,
    buf: *mut u8,
    len: usize,
    read: isize,
) -> isize {
    let restarts_allowed = resources.supervision.restarts_allowed;
    let too_long = resources.too_long();
    let Some(child) = resources.children.get_mut(id) else {
        return read;
    };
    if read == 0 {
        let ids = (&mut resources.output.line_ids, id);
        child
            .lines
            .end_of_output(ids, &mut |line_id| too_long.report(id, line_id));
    }
    // A worker the bus ends itself (a stop, a drop) is not restarted: restarts are off.
    if read < 0 || !restarts_allowed || !child.life.is_unreaped() {
        return read;
    }
    // SAFETY: taking a descriptor the kernel's event loop registered out of its set.
    unsafe { libc::epoll_ctl(resources.epoll, libc::EPOLL_CTL_DEL, fd, ptr::null_mut()) };
    child.output = Output::Parked;
    resources.supervision.exits_seen = true;
    if core::mem::take(&mut child.lines.len) > 0 && len > 0 {
        // SAFETY: the kernel passed room for `len` bytes.
        unsafe { *buf = b'\n' };
        return 1;
    }
    set_errno(libc::EAGAIN);
    -1
}
