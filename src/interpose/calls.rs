//! The functions the vendor objects call instead of libc's (see the module invariants).

use core::ptr;
use core::sync::atomic::{AtomicI32, Ordering};

use cty::{c_char, c_int, c_uint, c_void};
use libc::{epoll_event, pid_t, sockaddr, socklen_t};

use super::backlog::STDIN_TAG;
use super::children::{Child, Life, Refusal};
use super::exec_report::{self, ExecReport};
use super::fd_set::KERNEL_FD_LIMIT;
use super::resources::Unwritten;
use super::{KernelResources, TIMER_TAG, WAKE_TAG, current, held};
use crate::os::set_errno;

/// Marks a worker's pidfd in the kernel's epoll set: the kernel reads an event's data as a
/// descriptor number (its low 32 bits, on a little-endian target) and skips any outside
/// `0..1024`, which every tagged value is. The low bits carry the worker id.
const PIDFD_TAG: u64 = 1 << 31;
#[cfg(target_endian = "big")]
compile_error!("the pidfd tag relies on the kernel reading the low half of epoll data");

/// The pid of the process that forks the workers, for a worker to check that its parent
/// is still there once it asked to die with it.
static PARENT: AtomicI32 = AtomicI32::new(0);

unsafe extern "C" {
    /// The router's real destructor, in the vendor's `routing.o` (under the prefix that
    /// `build.rs` gives the archive's own symbols).
    #[link_name = "stdiobus_embed_kernel_stdio_bus_router_destroy"]
    fn stdio_bus_router_destroy(router: *mut c_void);
}

pub(super) fn free_router(router: *mut c_void) {
    // SAFETY: `router` is what the kernel passed to its destructor, which it no longer
    // uses now that the call that released it has returned.
    unsafe { stdio_bus_router_destroy(router) };
}

/// The resources of the bus whose kernel call is running, if any (invariant 1).
fn resources<'a>() -> Option<&'a mut KernelResources> {
    // SAFETY: a non-null pointer is the `&mut KernelResources` that `enter` holds for the
    // length of the kernel call, on this thread; no other reference to it is used
    // meanwhile, and the kernel does not call back into itself.
    unsafe { current::get().as_mut() }
}

/// Gives `fd` a number from 3 to 1023 (invariant 3), closing the original if it moves.
fn low_fd(fd: c_int) -> c_int {
    if fd < 0 || (3..KERNEL_FD_LIMIT as c_int).contains(&fd) {
        return fd;
    }
    // SAFETY: `fd` is open and ours; F_DUPFD_CLOEXEC takes the lowest free number >= 3.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: `fd` was just created by the wrapped call and is ours to close.
    unsafe { libc::close(fd) };
    if moved < KERNEL_FD_LIMIT as c_int {
        return moved;
    }
    // SAFETY: as above, for the copy.
    unsafe { libc::close(moved) };
    if let Some(resources) = resources() {
        resources.out_of_low_fds = true;
    }
    set_errno(libc::EMFILE);
    -1
}

/// Takes a descriptor the kernel just created into its set.
fn own(fd: c_int) -> c_int {
    let fd = low_fd(fd);
    if fd >= 0
        && let Some(resources) = resources()
    {
        resources.owned.insert(fd);
    }
    fd
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_close(fd: c_int) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::close(fd) };
    };
    // The process manager, reaping a worker whose connection is kept open, closes the
    // number the transport still reads: it stays open for the replacement.
    if let Some(child) = resources
        .children
        .iter_mut()
        .find(|c| c.parked && c.stdout == fd && c.pm_stdout == fd)
    {
        child.pm_stdout = -1;
        return 0;
    }
    if !resources.owned.remove(fd) {
        set_errno(libc::EBADF);
        return -1;
    }
    if let Some(child) = resources.children.iter_mut().find(|c| c.pm_stdout == fd) {
        child.pm_stdout = -1;
    }
    // The transport closes a worker's stdout at end of output: from now on the kernel may
    // reap that worker without losing what it wrote.
    let mut lost = None;
    if let Some(child) = resources.children.iter_mut().find(|c| c.stdout == fd) {
        child.stdout = -1;
        resources.exits_seen |= child.exited;
        // The transport freed the buffer the held output was in (a shutdown that did
        // not wait for the workers to end).
        lost = child.held.take();
    }
    if let Some(held) = lost {
        resources.count_lost(held.len());
    }
    if let Some(child) = resources.children.iter_mut().find(|c| c.stdin == fd) {
        child.stdin = -1;
    }
    if fd == resources.epoll {
        resources.epoll = -1;
    }
    // SAFETY: the kernel created `fd` and had not closed it (invariant 2).
    unsafe { libc::close(fd) }
}

/// `ingest`'s write of a message, then of its newline: to the worker the bus chose for it
/// (see `KernelResources::route`), whichever worker the kernel picked, and both with one
/// system call. The message's write is only noted (the caller's buffer stays valid for
/// the whole `ingest`) and reported done; the newline's write then writes both. Archive A
/// ignores the newline's result, so a failure is also noted for the bus
/// (`KernelResources::take_write_failed`); archive B reports it itself.
#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_write(fd: c_int, bytes: *const c_void, len: usize) -> isize {
    let routed = resources().and_then(|resources| Some((resources.route?, resources)));
    let Some((route, resources)) = routed else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::write(fd, bytes, len) };
    };
    resources.routed = true;
    // SAFETY: the kernel's buffer of `len` bytes, valid for the call.
    let bytes = unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), len) };
    let Some(message) = resources.unwritten.take() else {
        resources.unwritten = Some(Unwritten::of(bytes));
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
        resources.write_failed = true;
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
#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    let Some(resources) = resources() else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::read(fd, buf, len) };
    };
    let worker = resources.children.by_stdout(fd);
    resources.reading = worker;
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
        resources.output_held = true;
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
    let limit = resources.line_limit;
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
    let ids = (&mut resources.line_ids, id);
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
    let restarts_allowed = resources.restarts_allowed;
    let too_long = resources.too_long();
    let Some(child) = resources.children.get_mut(id) else {
        return read;
    };
    if read == 0 {
        let ids = (&mut resources.line_ids, id);
        child
            .lines
            .end_of_output(ids, &mut |line_id| too_long.report(id, line_id));
    }
    if read < 0 || !restarts_allowed || child.ended_by_bus || child.life != Life::Alive {
        return read;
    }
    // SAFETY: taking a descriptor the kernel's event loop registered out of its set.
    unsafe { libc::epoll_ctl(resources.epoll, libc::EPOLL_CTL_DEL, fd, ptr::null_mut()) };
    child.parked = true;
    resources.exits_seen = true;
    if core::mem::take(&mut child.lines.len) > 0 && len > 0 {
        // SAFETY: the kernel passed room for `len` bytes.
        unsafe { *buf = b'\n' };
        return 1;
    }
    set_errno(libc::EAGAIN);
    -1
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the kernel passes room for two descriptors.
    if unsafe { libc::pipe2(fds, libc::O_CLOEXEC) } != 0 {
        return -1;
    }
    // SAFETY: as above; pipe2 filled both.
    let ends = unsafe { &mut *fds.cast::<[c_int; 2]>() };
    let read = low_fd(ends[0]);
    let write = low_fd(ends[1]);
    if read < 0 || write < 0 {
        for end in [read, write].into_iter().filter(|&end| end >= 0) {
            // SAFETY: created above and not handed out.
            unsafe { libc::close(end) };
        }
        set_errno(libc::EMFILE);
        return -1;
    }
    *ends = [read, write];
    if let Some(resources) = resources() {
        resources.owned.insert(read);
        resources.owned.insert(write);
        resources.fresh_pipes = [resources.fresh_pipes[1], *ends];
        resources.fresh_count = (resources.fresh_count + 1).min(2);
    }
    0
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's arguments.
    own(unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_accept(
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: the kernel's arguments, forwarded; accept4 takes the same ones.
    own(unsafe { libc::accept4(fd, address, len, libc::SOCK_CLOEXEC) })
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_eventfd(initial: c_uint, flags: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's arguments.
    own(unsafe { libc::eventfd(initial, flags | libc::EFD_CLOEXEC) })
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_epoll_create1(flags: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's flags.
    let fd = own(unsafe { libc::epoll_create1(flags | libc::EPOLL_CLOEXEC) });
    if let Some(resources) = resources()
        && fd >= 0
        && resources.epoll < 0
    {
        resources.epoll = fd;
    }
    fd
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_epoll_wait(
    epoll: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: the kernel's arguments, forwarded.
        return unsafe { libc::epoll_wait(epoll, events, max, timeout) };
    };
    // Workers whose held output the ring has room for now: the kernel is to read them,
    // whether or not their pipes have more.
    let mut due = heapless::Vec::<c_int, { crate::limits::MAX_WORKERS }>::new();
    if resources.output_held {
        let mut room = resources.room();
        for child in resources.children.iter() {
            // SAFETY: a worker's output is held only while its connection is open (the
            // close of its stdout drops it).
            if let Some(held) = child.held.filter(|held| !held.is_partial())
                && room.admits(unsafe { held.first_line_len() })
            {
                let _ = due.push(child.stdout);
            }
        }
    }
    let timeout = if due.is_empty() { timeout } else { 0 };
    // SAFETY: the kernel's arguments, forwarded.
    let mut ready = unsafe { libc::epoll_wait(epoll, events, max, timeout) };
    if ready >= 0 {
        for fd in due {
            // SAFETY: epoll_wait (or this loop) filled `ready` events at `events`.
            let filled = unsafe { core::slice::from_raw_parts(events, ready as usize) };
            let listed = filled.iter().any(|event| event.u64 == fd as u64);
            if ready < max && !listed {
                let event = epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: fd as u64,
                };
                // SAFETY: the kernel passed room for `max` events, and `ready < max`.
                unsafe { events.add(ready as usize).write(event) };
                ready += 1;
            }
        }
    }
    if ready > 0 {
        // SAFETY: epoll_wait filled `ready` events at `events`, or the bus did.
        let events = unsafe { core::slice::from_raw_parts(events, ready as usize) };
        for event in events {
            let data = event.u64;
            if data == TIMER_TAG {
                resources.exits_seen = true;
            } else if data == WAKE_TAG {
                // Held output: `due` had the workers the kernel can read now.
            } else if data & STDIN_TAG == STDIN_TAG {
                // Room in a pipe with a backlog: the step writes more of it after this.
            } else if data & PIDFD_TAG != 0 {
                let id = (data & (PIDFD_TAG - 1)) as usize;
                if let Some(child) = resources.children.get_mut(id) {
                    child.exited = true;
                    resources.exits_seen = true;
                }
            }
        }
    }
    ready
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_fork() -> pid_t {
    // SAFETY: getpid cannot fail.
    PARENT.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::fork() };
    };
    // A restart is let through only for the worker the bus just told the kernel about,
    // whose connection it kept open; any other the kernel logs as "Fork failed: Operation
    // canceled", marking the worker stopped.
    let restart = resources.restarting.take();
    let new_worker = resources.forks_allowed && !resources.children.is_full();
    if restart.is_none() && !new_worker {
        set_errno(libc::ECANCELED);
        return -1;
    }
    let [stdin, stdout] = fresh_worker_pipes(resources);
    let report = ExecReport::open();
    resources.exec_report = report.write_end();
    // SAFETY: the kernel forks to exec a worker; the child makes only async-signal-safe
    // calls here (invariant 6).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        return 0;
    }
    resources.exec_report = -1;
    let exec_errno = report.wait();
    if pid > 0 {
        track(resources, restart, pid, stdin, stdout, exec_errno);
    } else if pid < 0
        && let Some(child) = restart.and_then(|id| resources.children.get_mut(id))
    {
        child.restart = Some(Refusal::SpawnFailed);
    }
    pid
}

/// The kernel's ends of the worker pipes made just before this fork: the stdin pipe's
/// write end and the stdout pipe's read end.
fn fresh_worker_pipes(resources: &mut KernelResources) -> [c_int; 2] {
    let pipes = if resources.fresh_count == 2 {
        [resources.fresh_pipes[0][1], resources.fresh_pipes[1][0]]
    } else {
        [-1, -1]
    };
    resources.fresh_count = 0;
    pipes
}

/// Records a worker just forked, with a pidfd in the kernel's epoll set so that its exit
/// wakes the event loop, and its pipes enlarged: a new worker, or the replacement of
/// worker `restart`'s ended process.
fn track(
    resources: &mut KernelResources,
    restart: Option<usize>,
    pid: pid_t,
    stdin: c_int,
    stdout: c_int,
    exec_errno: u16,
) {
    // SAFETY: pidfd_open takes a pid and flags; the result is a close-on-exec descriptor.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as c_int;
    let mut child = Child::new(pid, pidfd, stdin, stdout);
    child.exec_errno = exec_errno;
    child.stdin_capacity = enlarge_pipe(stdin) as u32;
    // A large answer then goes out in one write instead of waiting for the host in 64 KiB
    // pieces.
    enlarge_pipe(stdout);
    // The worker also does this itself before it execs; whichever comes first wins, and
    // the group exists before anyone can signal it.
    // SAFETY: making our new child the leader of a process group of its own.
    unsafe { libc::setpgid(pid, pid) };
    let id = match restart.and_then(|id| Some((id, *resources.children.get(id)?))) {
        Some((id, old)) => {
            // The transport still reads the old process's descriptor number (parked at
            // its end): the new pipe takes that number, and the kernel's own copy stays
            // with the process manager, which closes it at the next reap.
            // SAFETY: both are open pipe ends the kernel holds; dup3 closes what
            // `old.stdout` was (the ended pipe) and makes it the new pipe's read end.
            let moved = unsafe { libc::dup3(stdout, old.stdout, libc::O_CLOEXEC) };
            child.stdout = old.stdout;
            child.pm_stdout = stdout;
            if moved == old.stdout {
                watch(resources.epoll, old.stdout);
            } else {
                // Its output cannot reach the transport: end it, and the slot, still
                // parked at the old end, goes through another restart.
                child.parked = true;
                child.signal(libc::SIGKILL);
            }
            child.generation = old.generation.wrapping_add(1);
            child.quick_restarts = old.quick_restarts;
            child.respawned = true;
            resources.children.respawn(id, child);
            id
        }
        None => match resources.children.push(child) {
            Some(id) => id,
            None => return, // cannot happen: `fork` refused when full
        },
    };
    if pidfd >= 0 && resources.epoll >= 0 {
        let events = libc::EPOLLIN | libc::EPOLLONESHOT;
        super::epoll_add(resources.epoll, pidfd, events, PIDFD_TAG | id as u64);
    }
}

/// Puts a worker's stdout back in the kernel's epoll set as its event loop registers
/// descriptors: readable, level-triggered, the number as data.
pub(super) fn watch(epoll: c_int, fd: c_int) {
    super::epoll_add(epoll, fd, libc::EPOLLIN, fd as u64);
}

/// Ends the input of the pipe whose write end is `fd` and keeps the number open: a pipe
/// with no reader takes its place, so the worker reading the old pipe sees its end while
/// the kernel's later writes to `fd` fail with EPIPE instead of reaching another file.
/// Whether it could.
pub(super) fn end_input(fd: c_int) -> bool {
    let mut ends = [-1; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: both ends were made above; `fd` is a pipe end the kernel holds, and dup3
    // closes what it was (the worker's pipe) as it takes the reader-less pipe's end.
    unsafe {
        libc::close(ends[0]);
        let moved = libc::dup3(ends[1], fd, libc::O_CLOEXEC) == fd;
        libc::close(ends[1]);
        moved
    }
}

/// Makes a worker's pipe as large as the system allows: for stdin, so that a message the
/// kernel writes in one non-blocking `write` is cut only when it could never fit. Returns
/// the size it has.
fn enlarge_pipe(fd: c_int) -> usize {
    if fd < 0 {
        return 0;
    }
    /// Largest first: above `/proc/sys/fs/pipe-max-size` (1 MiB by default) only a
    /// privileged process succeeds.
    const SIZES: [c_int; 3] = [4 << 20, 2 << 20, 1 << 20];
    for size in SIZES {
        // SAFETY: resizing a pipe the kernel holds changes only its capacity.
        if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } >= 0 {
            break;
        }
    }
    // SAFETY: F_GETPIPE_SZ only reads.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    usize::try_from(size).unwrap_or(0)
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_execvp(
    file: *const c_char,
    argv: *const *const c_char,
) -> c_int {
    let report = resources().map_or(-1, |resources| resources.exec_report);
    prepare_worker(report);
    // SAFETY: the kernel's arguments, forwarded.
    let failed = unsafe { libc::execvp(file, argv) };
    exec_report::child_failed(report, crate::os::errno());
    failed
}

/// In a worker between fork and exec: what `std::process::Command` gives its children, and
/// death with the parent (invariant 6). Only async-signal-safe calls. `report`, the exec
/// report's write end, stays open.
fn prepare_worker(report: c_int) {
    // Everything but stdin, stdout and stderr goes: the host's descriptors that are not
    // close-on-exec, and any the kernel made before this module saw them. The exec report
    // stays until the exec closes it.
    let close_range = |first: c_int, last: c_uint| {
        // SAFETY: closing a range of descriptors in a process about to exec.
        unsafe { libc::syscall(libc::SYS_close_range, first as c_uint, last, 0) }
    };
    let closed = if report >= 3 {
        let below = if report > 3 {
            close_range(3, (report - 1) as c_uint)
        } else {
            0
        };
        below.min(close_range(report + 1, c_uint::MAX))
    } else {
        close_range(3, c_uint::MAX)
    };
    if closed != 0 {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid out-parameter.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let highest = limit.rlim_cur.min(1 << 16) as c_int;
        for fd in (3..highest).filter(|&fd| fd != report) {
            // SAFETY: closing descriptors in a process about to exec.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: zeroed sigset and sigaction are valid arguments; SIGPIPE is a valid signal;
    // `setpgid(0, 0)` makes this process the leader of a process group of its own.
    unsafe {
        libc::setpgid(0, 0);
        let mut none: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, ptr::null_mut());
        let mut default: libc::sigaction = core::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &default, ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent may have gone before the request above: then die now.
        if libc::getppid() != PARENT.load(Ordering::Relaxed) {
            libc::_exit(127);
        }
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_waitpid(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
) -> pid_t {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::waitpid(pid, status, options) };
    };
    // Any child of ours not yet reported counts, like an unreaped child for libc.
    let reaped = if pid == -1 {
        reap_any(resources)
    } else {
        let id = resources.children.iter().position(|child| child.pid == pid);
        id.and_then(|id| reap(resources, id, options))
    };
    match reaped {
        Some((pid, code)) => {
            if !status.is_null() {
                // SAFETY: the kernel passed a valid status pointer.
                unsafe { *status = code };
            }
            pid
        }
        // Like libc: 0 while a child of ours that the kernel has not collected is still
        // running (the kernel waits only with WNOHANG).
        None if pid == -1 && resources.children.iter().any(|c| !c.kernel_told) => 0,
        None if resources
            .children
            .iter()
            .any(|c| c.pid == pid && !c.kernel_told) =>
        {
            0
        }
        None => {
            set_errno(libc::ECHILD);
            -1
        }
    }
}

/// The kernel's `waitpid(-1, WNOHANG)`: one of its workers that the bus reaped already
/// and whose restart may start, or, in the kernel's own waits, any that has ended
/// (invariant 4).
fn reap_any(resources: &mut KernelResources) -> Option<(pid_t, c_int)> {
    (0..resources.children.len()).find_map(|id| {
        let child = resources.children.get(id)?;
        let ready = (child.life != Life::Alive
            && !child.kernel_told
            && (!resources.bus_reaping || child.restart_at.has_passed()))
            || resources.reapable(child);
        if ready {
            reap(resources, id, libc::WNOHANG)
        } else {
            None
        }
    })
}

/// Reaps worker `id` as `waitpid` would with `options`, once for the kernel.
fn reap(resources: &mut KernelResources, id: usize, options: c_int) -> Option<(pid_t, c_int)> {
    // Whatever the kernel was told before, it forks (or not) right after the `waitpid` that
    // told it: a restart is only ever for the worker of the latest report.
    resources.restarting = None;
    let told = resources.children.get(id)?.kernel_told;
    if told || !resources.children.reap(id, options) {
        return None;
    }
    resources.children.get_mut(id)?.kernel_told = true;
    let reaped = reaped_status(resources, id);
    // A crash (any status but a clean exit) makes the kernel restart the worker: let that
    // fork through if the transport's connection was kept for it.
    let restarts = resources.bus_reaping && resources.restarts_allowed;
    if let Some((_, status)) = reaped
        && status != 0
        && restarts
        && let Some(child) = resources.children.get_mut(id)
    {
        if child.parked {
            // Until the fork comes, the kernel is taken to have refused (its limit).
            child.restart = Some(Refusal::LimitReached);
            resources.restarting = Some(id);
        } else {
            child.restart = Some(Refusal::OutputClosed);
        }
    }
    reaped
}

/// The status the kernel is told for worker `id`, just reaped: its own, unless the bus
/// ended it, it could not execute its command, or nobody knows it (the host reaped it
/// first). Then the kernel hears "exited with 0", which it does not try to restart.
fn reaped_status(resources: &mut KernelResources, id: usize) -> Option<(pid_t, c_int)> {
    let child = resources.children.get_mut(id)?;
    match child.life {
        Life::Reaped(Some(status)) | Life::Reported(Some(status))
            if !child.ended_by_bus && child.exec_errno == 0 =>
        {
            Some((child.pid, status))
        }
        Life::Reaped(_) | Life::Reported(_) => Some((child.pid, 0)),
        Life::Alive => None,
    }
}

#[unsafe(no_mangle)]
extern "C" fn stdiobus_embed_kill(pid: pid_t, signal: c_int) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::kill(pid, signal) };
    };
    match resources.children.alive_mut(pid) {
        Some(child) => child.signal(signal),
        None => {
            set_errno(libc::ESRCH);
            -1
        }
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn stdiobus_embed_stdio_bus_router_destroy(router: *mut c_void) {
    match resources() {
        Some(resources) => {
            if !resources.deferred_router.is_null() {
                free_router(resources.deferred_router);
            }
            resources.deferred_router = router;
        }
        None => free_router(router),
    }
}
